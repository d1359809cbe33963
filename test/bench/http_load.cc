// bench_http_load: a closed-loop load generator for Dapr's HTTP GetState
// (GET /v1.0/state/{store}/{key}), used by `make bench` (test/bench/dapr.sh).
//
//   bench_http_load --target HOST:PORT [--connections 1] [--duration 5] [--warmup 1]
//                   [--value-bytes 64] [--store state] [--key bench-http]
//
// It first saves the key (POST /v1.0/state/{store}, a JSON string of --value-bytes 'v's), then
// runs one thread per connection, each with its own keep-alive connection and one request in
// flight at a time. Only answers inside the measured window (after --warmup) count toward
// throughput and latency. An answer that is not 200 with the saved value counts as an error.
//
// Output: one JSON object on stdout (requests, all_requests (every good answer, warmup included),
// errors, throughput, p50_us/p90_us/p99_us/mean_us/max_us). Exit 0 when the run completed, 2 on bad
// flags, 1 when the key cannot be saved.

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test/bench/bench_util.h"

namespace ottava::bench {
namespace {

using Clock = std::chrono::steady_clock;

enum class Phase { kWarmup, kMeasure, kStop };

struct Worker {
  std::vector<int64_t> latencies_ns;
  int64_t all_ok = 0;
  int64_t errors = 0;
};

double PercentileUs(const std::vector<int64_t>& sorted_ns, double q) {
  if (sorted_ns.empty()) {
    return 0;
  }
  const auto rank = static_cast<size_t>(q * static_cast<double>(sorted_ns.size() - 1) + 0.5);
  return static_cast<double>(sorted_ns[std::min(rank, sorted_ns.size() - 1)]) / 1000.0;
}

int Run(int argc, char** argv) {
  auto flags = Flags::Parse(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_http_load: %s\n", flags.status().ToString().c_str());
    return 2;
  }
  const std::string target = flags->String("target", "");
  const std::string store = flags->String("store", "state");
  const std::string key = flags->String("key", "bench-http");
  const auto connections = flags->Int("connections", 1, 1, 256);
  const auto value_bytes = flags->Int("value-bytes", 64, 0, 1 << 20);
  const auto duration = flags->Double("duration", 5, 0.1, 3600);
  const auto warmup = flags->Double("warmup", 1, 0, 3600);
  for (const absl::Status& status : {connections.status(), value_bytes.status(), duration.status(),
                                     warmup.status(), flags->CheckAllRead()}) {
    if (!status.ok()) {
      std::fprintf(stderr, "bench_http_load: %s\n", status.ToString().c_str());
      return 2;
    }
  }
  const size_t colon = target.rfind(':');
  if (target.empty() || colon == std::string::npos) {
    std::fprintf(stderr, "bench_http_load: --target HOST:PORT is required\n");
    return 2;
  }
  const std::string host = target.substr(0, colon);
  const int port = std::atoi(target.c_str() + colon + 1);

  // The stored value is a JSON string, so the answer is it quoted.
  const std::string value(static_cast<size_t>(*value_bytes), 'v');
  const std::string expected = "\"" + value + "\"";
  {
    httplib::Client client(host, port);
    client.set_connection_timeout(10);
    const nlohmann::json body = nlohmann::json::array({{{"key", key}, {"value", value}}});
    auto saved = client.Post("/v1.0/state/" + store, body.dump(), "application/json");
    if (!saved || saved->status != 204) {
      std::fprintf(stderr, "bench_http_load: saving key '%s' failed: %s\n", key.c_str(),
                   saved ? saved->body.c_str() : httplib::to_string(saved.error()).c_str());
      return 1;
    }
  }

  const std::string path = "/v1.0/state/" + store + "/" + key;
  std::atomic<Phase> phase{Phase::kWarmup};
  std::vector<Worker> workers(static_cast<size_t>(*connections));
  std::vector<std::thread> threads;
  for (auto& worker : workers) {
    threads.emplace_back([&, w = &worker] {
      httplib::Client client(host, port);
      client.set_keep_alive(true);
      client.set_read_timeout(10);
      while (true) {
        const Phase now = phase.load(std::memory_order_acquire);
        if (now == Phase::kStop) {
          return;
        }
        const Clock::time_point start = Clock::now();
        auto res = client.Get(path);
        const Clock::time_point end = Clock::now();
        if (!res || res->status != 200 || res->body != expected) {
          ++w->errors;
          continue;
        }
        ++w->all_ok;
        if (phase.load(std::memory_order_acquire) == Phase::kMeasure) {
          w->latencies_ns.push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(*warmup));
  const Clock::time_point measure_start = Clock::now();
  phase.store(Phase::kMeasure, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(*duration));
  phase.store(Phase::kStop, std::memory_order_release);
  const Clock::time_point measure_end = Clock::now();
  for (auto& thread : threads) {
    thread.join();
  }

  std::vector<int64_t> latencies;
  int64_t all_ok = 0;
  int64_t errors = 0;
  for (const auto& worker : workers) {
    latencies.insert(latencies.end(), worker.latencies_ns.begin(), worker.latencies_ns.end());
    all_ok += worker.all_ok;
    errors += worker.errors;
  }
  std::sort(latencies.begin(), latencies.end());
  const double seconds = std::chrono::duration<double>(measure_end - measure_start).count();
  double sum_ns = 0;
  for (const int64_t ns : latencies) {
    sum_ns += static_cast<double>(ns);
  }
  nlohmann::ordered_json out;
  out["target"] = target;
  out["method"] = "http-get";
  out["value_bytes"] = *value_bytes;
  out["connections"] = *connections;
  out["duration_s"] = seconds;
  out["requests"] = latencies.size();
  out["all_requests"] = all_ok;
  out["errors"] = errors;
  out["bad_responses"] = 0;
  out["throughput"] = static_cast<double>(latencies.size()) / seconds;
  out["p50_us"] = PercentileUs(latencies, 0.50);
  out["p90_us"] = PercentileUs(latencies, 0.90);
  out["p99_us"] = PercentileUs(latencies, 0.99);
  out["mean_us"] = latencies.empty() ? 0.0 : sum_ns / static_cast<double>(latencies.size()) / 1000;
  out["max_us"] = PercentileUs(latencies, 1.0);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace ottava::bench

int main(int argc, char** argv) {
  return ottava::bench::Run(argc, argv);
}
