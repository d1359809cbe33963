// bench_upgrade_load: paced HTTP/1.1 keep-alive load for the hot-upgrade benchmark (upgrade.sh).
//
//   bench_upgrade_load --target HOST:PORT --rate 2000 --connections 20 --duration 12
//                      [--header "id: echo"] [--samples FILE]
//
// Each connection sends its share of `rate` on a fixed schedule (request i at start + i *
// connections / rate). Latency is measured from the scheduled time, not the send time, so a
// stall (an upgrade's pause) shows in full instead of being hidden by the requests it delayed.
// A response with `Connection: close` makes the client reconnect (the draining process's
// goodbye). Failures, never retried: a refused or failed connect, a send error, a connection
// that ends without a whole response, a non-200 status.
//
// stdout: one JSON object {sent, ok, failed, refused, reconnects, p50_us, p99_us, max_us};
// --samples: one line per request, "<scheduled epoch µs> <latency µs> <1 ok | 0 failed>".

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  int64_t scheduled_epoch_us;
  int64_t latency_us;
  bool ok;
};

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  double rate = 2000;
  int connections = 20;
  double duration = 10;
  std::string header = "id: echo";
  std::string samples;
};

struct Totals {
  std::atomic<int64_t> sent{0}, ok{0}, failed{0}, refused{0}, reconnects{0};
};

int Connect(const Options& options, Totals& totals) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(options.port);
  inet_pton(AF_INET, options.host.c_str(), &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    (errno == ECONNREFUSED ? totals.refused : totals.failed).fetch_add(1);
    close(fd);
    return -1;
  }
  return fd;
}

// One request/response on `fd`; returns 1 ok, 0 failed, and sets `close_after`.
bool Exchange(int fd, const std::string& request, bool* close_after) {
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
    return false;
  }
  std::string in;
  size_t head_end = std::string::npos;
  size_t body_length = 0;
  char buffer[8192];
  while (true) {
    ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) {
      return false;
    }
    in.append(buffer, size_t(got));
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      std::string head = in.substr(0, head_end);
      std::transform(head.begin(), head.end(), head.begin(), ::tolower);
      const size_t length = head.find("content-length:");
      body_length = length == std::string::npos ? 0 : std::stoul(head.substr(length + 15));
      *close_after = head.find("connection: close") != std::string::npos;
      if (head.rfind("http/1.1 200", 0) != 0) {
        *close_after = true;
        return false;
      }
    }
    if (head_end != std::string::npos && in.size() >= head_end + 4 + body_length) {
      return true;
    }
  }
}

void Connection(const Options& options,
                int index,
                Clock::time_point start,
                int64_t start_epoch_us,
                Totals& totals,
                std::vector<Sample>& samples) {
  const auto interval = std::chrono::duration<double>(double(options.connections) / options.rate);
  const auto end = start + std::chrono::duration<double>(options.duration);
  // Spread the connections' schedules over one interval.
  const auto offset = interval * (double(index) / options.connections);
  int fd = -1;
  for (int64_t i = 0;; ++i) {
    const auto scheduled =
        start + std::chrono::duration_cast<Clock::duration>(offset + interval * double(i));
    if (scheduled >= end) {
      break;
    }
    std::this_thread::sleep_until(scheduled);
    const std::string request = "GET /u" + std::to_string(index) + "/" + std::to_string(i) +
                                " HTTP/1.1\r\nHost: bench\r\n" + options.header + "\r\n\r\n";
    totals.sent.fetch_add(1);
    bool ok = false;
    bool close_after = false;
    if (fd < 0) {
      fd = Connect(options, totals);
    }
    if (fd >= 0) {
      ok = Exchange(fd, request, &close_after);
      if (!ok) {
        totals.failed.fetch_add(1);
      }
      if (!ok || close_after) {
        totals.reconnects.fetch_add(close_after ? 1 : 0);
        close(fd);
        fd = -1;
      }
    }
    if (ok) {
      totals.ok.fetch_add(1);
    }
    const auto scheduled_us =
        std::chrono::duration_cast<std::chrono::microseconds>(scheduled - start).count();
    samples.push_back(
        {start_epoch_us + scheduled_us,
         std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - scheduled).count(),
         ok});
  }
  if (fd >= 0) {
    close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--target") {
      const size_t colon = value.rfind(':');
      options.host = value.substr(0, colon);
      options.port = static_cast<uint16_t>(std::stoi(value.substr(colon + 1)));
    } else if (flag == "--rate") {
      options.rate = std::stod(value);
    } else if (flag == "--connections") {
      options.connections = std::stoi(value);
    } else if (flag == "--duration") {
      options.duration = std::stod(value);
    } else if (flag == "--header") {
      options.header = value;
    } else if (flag == "--samples") {
      options.samples = value;
    } else {
      std::fprintf(stderr, "bench_upgrade_load: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (options.port == 0 || options.rate <= 0 || options.connections <= 0) {
    std::fprintf(stderr,
                 "usage: bench_upgrade_load --target HOST:PORT [--rate R] "
                 "[--connections C] [--duration S] [--header H] [--samples FILE]\n");
    return 2;
  }
  Totals totals;
  std::vector<std::vector<Sample>> samples(options.connections);
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  const int64_t start_epoch_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count() +
                                 50000;
  std::vector<std::thread> threads;
  for (int i = 0; i < options.connections; ++i) {
    threads.emplace_back(
        [&, i] { Connection(options, i, start, start_epoch_us, totals, samples[size_t(i)]); });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  std::vector<int64_t> latencies;
  std::ofstream out;
  if (!options.samples.empty()) {
    out.open(options.samples);
  }
  for (const auto& list : samples) {
    for (const Sample& sample : list) {
      if (sample.ok) {
        latencies.push_back(sample.latency_us);
      }
      if (out.is_open()) {
        out << sample.scheduled_epoch_us << ' ' << sample.latency_us << ' ' << (sample.ok ? 1 : 0)
            << '\n';
      }
    }
  }
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) -> int64_t {
    if (latencies.empty()) {
      return 0;
    }
    return latencies[std::min(latencies.size() - 1, size_t(p * double(latencies.size())))];
  };
  nlohmann::json result{{"sent", totals.sent.load()},
                        {"ok", totals.ok.load()},
                        {"failed", totals.failed.load()},
                        {"refused", totals.refused.load()},
                        {"reconnects", totals.reconnects.load()},
                        {"p50_us", percentile(0.5)},
                        {"p99_us", percentile(0.99)},
                        {"max_us", latencies.empty() ? 0 : latencies.back()}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
