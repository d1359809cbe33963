// bench_handoff: what one hand-off between threads costs on this machine, the floor under any
// path that crosses from a gRPC thread to a mesh worker and back (InvokeService does both ways;
// a gRPC echo does neither).
//
//   bench_handoff [--iterations N]
//
// A caller thread posts a closure to a Dispatcher loop thread and waits (blocking, not spinning)
// until the loop has run it and signalled back: one round trip = two wake-ups, as InvokeService's
// gRPC thread → worker → gRPC completion. Prints JSON: p50_us, p90_us, p99_us of the round trip.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/dispatcher.h"

int main(int argc, char** argv) {
  int iterations = 20000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--iterations") == 0) {
      iterations = std::atoi(argv[i + 1]);
    }
  }
  auto dispatcher = ottava::Dispatcher::Create("handoff");
  if (!dispatcher.ok()) {
    std::fprintf(stderr, "bench_handoff: %s\n", std::string(dispatcher.status().message()).c_str());
    return 1;
  }
  (*dispatcher)->Start();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(iterations));
  for (int i = 0; i < iterations + 1000; ++i) {
    bool done = false;
    auto start = std::chrono::steady_clock::now();
    (*dispatcher)->Post([&] {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      cv.notify_one();
    });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
    }
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (i >= 1000) {  // warm-up
      samples.push_back(std::chrono::duration<double, std::micro>(elapsed).count());
    }
  }
  (*dispatcher)->Stop();
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) { return samples[static_cast<size_t>(q * (samples.size() - 1))]; };
  std::printf("{\"iterations\":%d,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f}\n", iterations,
              at(0.5), at(0.9), at(0.99));
  return 0;
}
