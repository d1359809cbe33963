// bench_bolt_server: a Bolt v1 echo server for the Bolt benchmarks (bolt.sh). N threads, each with
// its own epoll loop, share one non-blocking listening socket (EPOLLEXCLUSIVE wakes one loop per
// connection). Every RPC request is answered with a response of the same id, status 0, class
// SofaResponse and a fixed SofaResponse content ("echo:hi"); heartbeats get their ack; one-way
// requests get nothing. All answers to the frames of one read leave in one write.
//
//   bench_bolt_server [--address 127.0.0.1] [--port 0] [--threads 1] [--ready-file F]
//                     [--max-frame 16777216]
//
// The ready file (written atomically once listening) is {"address": "127.0.0.1:P", "port": P}.
// SIGTERM or SIGINT stops it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test/bench/bench_util.h"
#include "test/bench/bolt_wire.h"

namespace ottava::bench {
namespace {

namespace bolt = ottava::bench::bolt;

struct Connection {
  int fd = -1;
  std::string in;
  size_t in_start = 0;
  std::string out;
  size_t out_start = 0;
  bool want_write = false;
};

class Loop {
 public:
  Loop(int listen_fd, int stop_fd, size_t max_frame)
      : listen_fd_(listen_fd), stop_fd_(stop_fd), max_frame_(max_frame) {}

  void Run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.fd = listen_fd_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, listen_fd_, &ev);
    ev.events = EPOLLIN;
    ev.data.fd = stop_fd_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, stop_fd_, &ev);
    std::vector<epoll_event> events(256);
    while (true) {
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_fd_) {
          Shutdown();
          return;
        }
        if (fd == listen_fd_) {
          Accept();
          continue;
        }
        auto it = connections_.find(fd);
        if (it == connections_.end()) {
          continue;
        }
        Connection& c = *it->second;
        bool alive = true;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          alive = OnReadable(c);
        }
        if (alive && (events[i].events & EPOLLOUT)) {
          alive = Flush(c);
        }
        if (!alive) {
          Close(fd);
        }
      }
    }
  }

 private:
  void Accept() {
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        return;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto c = std::make_unique<Connection>();
      c->fd = fd;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
      connections_[fd] = std::move(c);
    }
  }

  // Reads what is there, answers every complete frame, writes the answers at once.
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
    while (true) {
      bolt::FrameHead head;
      const auto* data = reinterpret_cast<const uint8_t*>(c.in.data()) + c.in_start;
      bolt::Parse p = bolt::ParseFrame(data, c.in.size() - c.in_start, max_frame_, &head);
      if (p == bolt::Parse::kBad) {
        return false;
      }
      if (p == bolt::Parse::kNeedMore) {
        break;
      }
      c.in_start += head.size;
      if (head.type == bolt::kTypeRequest && head.cmdcode == bolt::kCmdHeartbeat) {
        bolt::AppendHeartbeatAck(&c.out, head.request_id);
      } else if (head.type == bolt::kTypeRequest && head.cmdcode == bolt::kCmdRequest) {
        bolt::AppendResponse(&c.out, head.request_id, 0, bolt::EchoResponseContent());
      }
      // One-way requests and stray responses get no answer.
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
    ev.data.fd = c.fd;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void Close(int fd) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    connections_.erase(fd);
  }

  void Shutdown() {
    for (auto& [fd, c] : connections_) {
      close(fd);
    }
    connections_.clear();
    close(epoll_);
  }

  int listen_fd_;
  int stop_fd_;
  size_t max_frame_;
  int epoll_ = -1;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
};

int Main(int argc, char** argv) {
  auto flags = Flags::Parse(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_bolt_server: %s\n", flags.status().ToString().c_str());
    return 2;
  }
  const std::string address = flags->String("address", "127.0.0.1");
  auto port = flags->Int("port", 0, 0, 65535);
  auto threads = flags->Int("threads", 1, 1, 64);
  auto max_frame = flags->Int("max-frame", 16 << 20, 64, int64_t{1} << 31);
  const std::string ready_file = flags->String("ready-file", "");
  for (const absl::Status& s :
       {port.status(), threads.status(), max_frame.status(), flags->CheckAllRead()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "bench_bolt_server: %s\n", s.ToString().c_str());
      return 2;
    }
  }

  int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(*port));
  if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1 ||
      bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd, 4096) != 0) {
    std::fprintf(stderr, "bench_bolt_server: cannot listen on %s:%lld: %s\n", address.c_str(),
                 static_cast<long long>(*port), std::strerror(errno));
    return 1;
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int bound = ntohs(addr.sin_port);

  // Signals are taken synchronously by this thread; the loops stop on an eventfd.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

  std::vector<std::unique_ptr<Loop>> loops;
  std::vector<std::thread> workers;
  for (int64_t i = 0; i < *threads; ++i) {
    loops.push_back(std::make_unique<Loop>(listen_fd, stop_fd, static_cast<size_t>(*max_frame)));
    workers.emplace_back([loop = loops.back().get()] { loop->Run(); });
  }
  const std::string where = address + ":" + std::to_string(bound);
  if (!ready_file.empty()) {
    absl::Status s = WriteFileAtomically(
        ready_file, "{\"address\": \"" + where + "\", \"port\": " + std::to_string(bound) + "}\n");
    if (!s.ok()) {
      std::fprintf(stderr, "bench_bolt_server: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "bench_bolt_server: listening on %s, %lld threads\n", where.c_str(),
               static_cast<long long>(*threads));
  int sig = 0;
  sigwait(&set, &sig);
  uint64_t value = 1;
  if (write(stop_fd, &value, sizeof(value)) != sizeof(value)) {
    return 1;
  }
  for (auto& t : workers) {
    t.join();
  }
  close(listen_fd);
  return 0;
}

}  // namespace
}  // namespace ottava::bench

int main(int argc, char** argv) {
  return ottava::bench::Main(argc, argv);
}
