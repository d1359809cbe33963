#include "test/support/dubbo_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "mesh/codec/dubbo/dubbo_frame.h"
#include "mesh/codec/dubbo/hessian2.h"

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

absl::StatusOr<std::unique_ptr<DubboUpstream>> DubboUpstream::Start(std::string name) {
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
  return std::unique_ptr<DubboUpstream>(
      new DubboUpstream(std::move(name), fd, ntohs(addr.sin_port)));
}

DubboUpstream::DubboUpstream(std::string name, int fd, uint16_t port)
    : name_(std::move(name)), listen_fd_(fd), port_(port) {
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

DubboUpstream::~DubboUpstream() {
  Stop();
}

void DubboUpstream::Stop() {
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

void DubboUpstream::AcceptLoop() {
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

void DubboUpstream::Serve(int fd) {
  namespace dubbo = mesh::dubbo;
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
      dubbo::Frame frame;
      auto decoded = dubbo::DecodeFrame(in, 64 << 20, frame);
      if (!decoded.ok() || !*decoded) {
        if (!decoded.ok()) {
          ::shutdown(fd, SHUT_RDWR);
        }
        break;
      }
      if (frame.is_event()) {
        if (frame.is_request() && frame.two_way()) {
          heartbeats_.fetch_add(1);
          mesh::Buffer out;
          dubbo::EncodeHeartbeat(frame.request_id, /*response=*/true, out);
          std::lock_guard<std::mutex> lock(write_mu);
          WriteAll(fd, out.ToString());
        }
        continue;
      }
      if (!frame.is_request()) {
        continue;
      }
      requests_.fetch_add(1);
      // dubbo version, path, version, method, parameter types, then the first argument.
      const std::string body = frame.body.ToString();
      mesh::hessian2::Reader reader(body);
      std::string argument;
      bool readable = true;
      for (int i = 0; i < 6 && readable; ++i) {
        auto value = reader.ReadString();
        readable = value.ok();
        if (readable && i == 5) {
          argument = *value;
        }
      }
      mesh::Buffer out;
      int delay_ms = 0;
      if (!readable) {
        dubbo::EncodeErrorResponse(frame.request_id, 2, dubbo::kBadRequest,
                                   "first argument is not a string", out);
      } else if (argument.rfind("never:", 0) == 0) {
        continue;
      } else if (argument.rfind("fail:", 0) == 0) {
        dubbo::EncodeErrorResponse(frame.request_id, 2, dubbo::kServiceError, argument.substr(5),
                                   out);
      } else {
        std::string answer = name_ + ":" + argument;
        if (argument.rfind("sleep:", 0) == 0) {
          const size_t colon = argument.find(':', 6);
          delay_ms = std::atoi(argument.substr(6, colon - 6).c_str());
          answer = "echo:" + (colon == std::string::npos ? "" : argument.substr(colon + 1));
        }
        std::string value;
        mesh::hessian2::WriteInt(1, value);  // RESPONSE_VALUE
        mesh::hessian2::WriteString(answer, value);
        mesh::Buffer response;
        response.Add(value);
        dubbo::EncodeFrame(dubbo::kSerializationHessian2, dubbo::kOk, frame.request_id, response,
                           out);
      }
      if (!frame.two_way()) {
        continue;
      }
      std::string bytes = out.ToString();
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
