// bench_bolt_load: a Bolt v1 load generator for the Bolt benchmarks (bolt.sh). One epoll thread
// drives C connections, each keeping K requests in flight (pipelined: a request is sent as soon as
// one is answered, the answers of one read are replaced with one write). Request ids come from one
// per-process counter, as sofa-rpc-node's do, so two connections never carry the same id at once
// but the ids of one connection are not consecutive.
//
//   bench_bolt_load --target 127.0.0.1:P [--connections 4] [--inflight 16] [--duration 5]
//                   [--warmup 0.5] [--timeout-ms 3000] [--service com.example.Echo:1.0]
//
// The request is com.example.Echo:1.0 echo("hi") with sofa-rpc-node's own content. Prints one
// JSON line: requests (answered with status 0 within the measured window, warm-up excluded),
// errors (non-zero status, unknown ids, connection failures, requests unanswered 5 s after the
// end), throughput (requests/s), p50/p90/p99/mean/max latency in microseconds. Exit 1 on errors.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "test/bench/bench_util.h"
#include "test/bench/bolt_wire.h"

namespace ottava::bench {
namespace {

namespace bolt = ottava::bench::bolt;
using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Connection {
  int fd = -1;
  uint32_t index = 0;  // in Load::connections_, the epoll cookie
  bool open = false;
  std::string in;
  size_t in_start = 0;
  std::string out;
  size_t out_start = 0;
  bool want_write = false;
  std::unordered_map<uint32_t, int64_t> pending;  // request id -> send time (ns)
};

struct Stats {
  int64_t requests = 0;  // status 0, sent after the warm-up, answered before the end
  int64_t status_errors = 0;
  int64_t unknown_ids = 0;
  int64_t connection_errors = 0;
  int64_t unanswered = 0;
  std::vector<int64_t> latencies_ns;
};

class Load {
 public:
  Load(std::string service, int32_t timeout_ms)
      : service_(std::move(service)), timeout_ms_(timeout_ms) {}

  bool Connect(const std::string& host, int port, int count) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
      std::fprintf(stderr, "bench_bolt_load: bad host %s\n", host.c_str());
      return false;
    }
    for (int i = 0; i < count; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        std::fprintf(stderr, "bench_bolt_load: cannot connect to %s:%d: %s\n", host.c_str(), port,
                     std::strerror(errno));
        close(fd);
        return false;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
      auto c = std::make_unique<Connection>();
      c->fd = fd;
      c->index = static_cast<uint32_t>(connections_.size());
      c->open = true;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(connections_.size());
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
      connections_.push_back(std::move(c));
    }
    return true;
  }

  void Run(int inflight, double warmup_s, double duration_s, Stats* stats) {
    stats_ = stats;
    const int64_t start = NowNs();
    measure_from_ = start + static_cast<int64_t>(warmup_s * 1e9);
    end_ = measure_from_ + static_cast<int64_t>(duration_s * 1e9);
    for (auto& c : connections_) {
      for (int i = 0; i < inflight; ++i) {
        Send(*c, start);
      }
      Flush(*c);
    }
    const int64_t drain_until = end_ + 5'000'000'000;
    std::vector<epoll_event> events(64);
    while (true) {
      const int64_t now = NowNs();
      if (now >= end_ && Pending() == 0) {
        break;
      }
      if (now >= drain_until) {
        break;
      }
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 10);
      for (int i = 0; i < n; ++i) {
        Connection& c = *connections_[events[i].data.u32];
        bool alive = true;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          alive = OnReadable(c);
        }
        if (alive && (events[i].events & EPOLLOUT)) {
          alive = Flush(c);
        }
        if (!alive) {
          Fail(c);
        }
      }
    }
    stats_->unanswered += static_cast<int64_t>(Pending());
    measured_ns_ = std::min(NowNs(), end_) - measure_from_;
  }

  double measured_seconds() const { return static_cast<double>(measured_ns_) / 1e9; }

 private:
  size_t Pending() const {
    size_t n = 0;
    for (const auto& c : connections_) {
      n += c->open ? c->pending.size() : 0;
    }
    return n;
  }

  void Send(Connection& c, int64_t now) {
    const uint32_t id = next_id_++;
    bolt::AppendRequest(&c.out, id, timeout_ms_, service_, bolt::EchoRequestContent());
    c.pending[id] = now;
  }

  bool OnReadable(Connection& c) {
    char buf[65536];
    while (true) {
      ssize_t n = read(c.fd, buf, sizeof(buf));
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof(buf)) {
          break;
        }
        continue;
      }
      if (n == 0) {
        return false;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      }
      if (errno != EINTR) {
        return false;
      }
    }
    const int64_t now = NowNs();
    while (true) {
      bolt::FrameHead head;
      const auto* data = reinterpret_cast<const uint8_t*>(c.in.data()) + c.in_start;
      bolt::Parse p = bolt::ParseFrame(data, c.in.size() - c.in_start, 64 << 20, &head);
      if (p == bolt::Parse::kBad) {
        return false;
      }
      if (p == bolt::Parse::kNeedMore) {
        break;
      }
      c.in_start += head.size;
      if (head.type != bolt::kTypeResponse) {
        continue;
      }
      auto it = c.pending.find(head.request_id);
      if (it == c.pending.end()) {
        ++stats_->unknown_ids;
        continue;
      }
      const int64_t sent = it->second;
      c.pending.erase(it);
      if (head.cmdcode != bolt::kCmdResponse || head.status != 0) {
        ++stats_->status_errors;
      } else if (sent >= measure_from_ && now <= end_) {
        ++stats_->requests;
        stats_->latencies_ns.push_back(now - sent);
      }
      if (now < end_) {
        Send(c, now);
      }
    }
    if (c.in_start == c.in.size()) {
      c.in.clear();
      c.in_start = 0;
    } else if (c.in_start > 65536) {
      c.in.erase(0, c.in_start);
      c.in_start = 0;
    }
    return Flush(c);
  }

  bool Flush(Connection& c) {
    while (c.out_start < c.out.size()) {
      ssize_t n = write(c.fd, c.out.data() + c.out_start, c.out.size() - c.out_start);
      if (n > 0) {
        c.out_start += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        SetWantWrite(c, true);
        return true;
      }
      return false;
    }
    c.out.clear();
    c.out_start = 0;
    SetWantWrite(c, false);
    return true;
  }

  void SetWantWrite(Connection& c, bool want) {
    if (c.want_write == want) {
      return;
    }
    c.want_write = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u32 = c.index;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  // A lost connection fails what it carried; the run goes on with the others.
  void Fail(Connection& c) {
    if (!c.open) {
      return;
    }
    ++stats_->connection_errors;
    stats_->unanswered += static_cast<int64_t>(c.pending.size());
    c.pending.clear();
    c.open = false;
    epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
  }

  std::string service_;
  int32_t timeout_ms_;
  int epoll_ = -1;
  std::vector<std::unique_ptr<Connection>> connections_;
  uint32_t next_id_ = 1;
  int64_t measure_from_ = 0;
  int64_t end_ = 0;
  int64_t measured_ns_ = 0;
  Stats* stats_ = nullptr;
};

double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) {
    return 0;
  }
  const size_t at =
      std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[at]) / 1000.0;
}

int Main(int argc, char** argv) {
  auto flags = Flags::Parse(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_bolt_load: %s\n", flags.status().ToString().c_str());
    return 2;
  }
  const std::string target = flags->String("target", "");
  const std::string service = flags->String("service", bolt::kService);
  auto connections = flags->Int("connections", 4, 1, 10000);
  auto inflight = flags->Int("inflight", 16, 1, 100000);
  auto duration = flags->Double("duration", 5, 0.01, 3600);
  auto warmup = flags->Double("warmup", 0.5, 0, 3600);
  auto timeout_ms = flags->Int("timeout-ms", 3000, -1, 86400000);
  for (const absl::Status& s : {connections.status(), inflight.status(), duration.status(),
                                warmup.status(), timeout_ms.status(), flags->CheckAllRead()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "bench_bolt_load: %s\n", s.ToString().c_str());
      return 2;
    }
  }
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "bench_bolt_load: --target HOST:PORT is required\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  Load load(service, static_cast<int32_t>(*timeout_ms));
  if (!load.Connect(target.substr(0, colon), std::stoi(target.substr(colon + 1)),
                    static_cast<int>(*connections))) {
    return 1;
  }
  Stats stats;
  load.Run(static_cast<int>(*inflight), *warmup, *duration, &stats);
  std::sort(stats.latencies_ns.begin(), stats.latencies_ns.end());
  double sum = 0;
  for (int64_t v : stats.latencies_ns) {
    sum += static_cast<double>(v);
  }
  const int64_t errors =
      stats.status_errors + stats.unknown_ids + stats.connection_errors + stats.unanswered;
  const double seconds = load.measured_seconds();
  nlohmann::ordered_json out;
  out["target"] = target;
  out["connections"] = *connections;
  out["inflight"] = *inflight;
  out["duration_s"] = seconds;
  out["requests"] = stats.requests;
  out["errors"] = errors;
  out["status_errors"] = stats.status_errors;
  out["unknown_ids"] = stats.unknown_ids;
  out["connection_errors"] = stats.connection_errors;
  out["unanswered"] = stats.unanswered;
  out["throughput"] = seconds > 0 ? static_cast<double>(stats.requests) / seconds : 0.0;
  out["p50_us"] = Percentile(stats.latencies_ns, 0.50);
  out["p90_us"] = Percentile(stats.latencies_ns, 0.90);
  out["p99_us"] = Percentile(stats.latencies_ns, 0.99);
  out["mean_us"] = stats.latencies_ns.empty()
                       ? 0.0
                       : sum / static_cast<double>(stats.latencies_ns.size()) / 1000.0;
  out["max_us"] =
      stats.latencies_ns.empty() ? 0.0 : static_cast<double>(stats.latencies_ns.back()) / 1000.0;
  std::printf("%s\n", out.dump().c_str());
  return errors == 0 && stats.requests > 0 ? 0 : 1;
}

}  // namespace
}  // namespace ottava::bench

int main(int argc, char** argv) {
  return ottava::bench::Main(argc, argv);
}
