#include "test/support/bolt_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "mesh/codec/bolt/bolt_frame.h"

namespace ottava::test {
namespace {

bool WriteAll(int fd, const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    at += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BoltUpstream>> BoltUpstream::Start(std::string name) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError("socket failed");
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 128) != 0) {
    ::close(fd);
    return absl::InternalError("bind/listen failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return std::unique_ptr<BoltUpstream>(new BoltUpstream(std::move(name), fd, ntohs(addr.sin_port)));
}

BoltUpstream::BoltUpstream(std::string name, int fd, uint16_t port)
    : name_(std::move(name)), listen_fd_(fd), port_(port) {
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

BoltUpstream::~BoltUpstream() {
  Stop();
}

void BoltUpstream::Stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) {
    accept_thread_.join();
  }
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : connections_) {
      ::shutdown(fd, SHUT_RDWR);
    }
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    t.join();
  }
}

void BoltUpstream::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      continue;
    }
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.load()) {
      ::close(fd);
      return;
    }
    connections_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void BoltUpstream::Serve(int fd) {
  mesh::Buffer in;
  std::mutex write_mu;
  std::vector<std::thread> delayed;
  char chunk[65536];
  while (!stopping_.load()) {
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      break;
    }
    in.Add(chunk, static_cast<size_t>(n));
    while (true) {
      mesh::bolt::Frame frame;
      auto decoded = mesh::bolt::DecodeFrame(in, 64 << 20, frame);
      if (!decoded.ok() || !*decoded) {
        if (!decoded.ok()) {
          ::shutdown(fd, SHUT_RDWR);
        }
        break;
      }
      if (frame.is_heartbeat()) {
        if (frame.is_request()) {
          heartbeats_.fetch_add(1);
          mesh::Buffer out;
          mesh::bolt::EncodeHeartbeat(frame.head, frame.request_id, true, out);
          std::lock_guard<std::mutex> lock(write_mu);
          WriteAll(fd, out.ToString());
        }
        continue;
      }
      requests_.fetch_add(1);
      const std::string content = frame.content.ToString();
      mesh::RpcHead head;
      head.proto = frame.head.proto;
      head.ver1 = frame.head.ver1;
      head.switches = frame.head.switches;
      head.codec = frame.head.codec;
      head.type = mesh::bolt::kTypeResponse;
      head.cmd_code = mesh::bolt::kCmdResponse;
      head.set_class_name("com.alipay.sofa.rpc.core.response.SofaResponse");
      std::string answer = name_ + ":" + content;
      int delay_ms = 0;
      if (content.rfind("never:", 0) == 0) {
        continue;
      }
      if (content.rfind("fail:", 0) == 0) {
        head.status = mesh::bolt::kServerException;
        answer = content.substr(5);
      } else if (content.rfind("stall:", 0) == 0) {
        // Stops reading this connection for N ms (its thread sleeps), then answers.
        const size_t colon = content.find(':', 6);
        const int stall_ms = std::atoi(content.substr(6, colon - 6).c_str());
        for (int waited = 0; waited < stall_ms && !stopping_.load(); waited += 10) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        answer = "echo:" + (colon == std::string::npos ? "" : content.substr(colon + 1));
      } else if (content.rfind("sleep:", 0) == 0) {
        const size_t colon = content.find(':', 6);
        delay_ms = std::atoi(content.substr(6, colon - 6).c_str());
        answer = "echo:" + (colon == std::string::npos ? "" : content.substr(colon + 1));
      }
      const bool oneway = frame.head.oneway();
      mesh::HeaderMap headers;
      headers.AddCased("upstream", name_);
      mesh::Buffer body;
      body.Add(answer);
      mesh::Buffer out;
      mesh::bolt::EncodeFrame(head, frame.request_id, headers, body, out);
      std::string bytes = out.ToString();
      if (oneway) {
        continue;
      }
      if (delay_ms > 0) {
        delayed.emplace_back([this, fd, bytes, delay_ms, &write_mu] {
          for (int waited = 0; waited < delay_ms && !stopping_.load(); waited += 10) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
          std::lock_guard<std::mutex> lock(write_mu);
          WriteAll(fd, bytes);
        });
        continue;
      }
      std::lock_guard<std::mutex> lock(write_mu);
      WriteAll(fd, bytes);
    }
  }
  ::shutdown(fd, SHUT_RDWR);
  for (auto& t : delayed) {
    t.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::erase(connections_, fd);
  ::close(fd);
}

}  // namespace ottava::test
