#include "actuator/socket_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

namespace ottava::actuator {
namespace {

// While a connection waits for its next request it wakes this often to see a drain.
constexpr int kIdlePollMs = 50;

void Endpoint(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage storage;
  socklen_t length = sizeof(storage);
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
  if (rc != 0) {
    return;
  }
  char text[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    port = ntohs(in->sin_port);
  } else if (storage.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    port = ntohs(in6->sin6_port);
  }
  ip = text;
}

bool WaitFd(int fd, short events, time_t sec, time_t usec) {
  pollfd p{fd, events, 0};
  const int timeout = static_cast<int>(sec * 1000 + usec / 1000);
  while (true) {
    int rc = ::poll(&p, 1, timeout);
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    return rc > 0;
  }
}

// httplib's Stream over a non-blocking accepted socket, with timeouts and a read buffer (the
// request-line reader asks for one byte at a time).
class FdStream : public httplib::Stream {
 public:
  FdStream(int fd, time_t read_sec, time_t read_usec, time_t write_sec, time_t write_usec)
      : fd_(fd),
        read_sec_(read_sec),
        read_usec_(read_usec),
        write_sec_(write_sec),
        write_usec_(write_usec) {}

  bool is_readable() const override {
    return begin_ < end_ || WaitFd(fd_, POLLIN, read_sec_, read_usec_);
  }
  bool is_writable() const override { return WaitFd(fd_, POLLOUT, write_sec_, write_usec_); }

  ssize_t read(char* ptr, size_t size) override {
    if (body_without_length_) {
      // httplib reads a POST/PUT/PATCH/DELETE body that has neither Content-Length nor chunked
      // encoding until the peer closes; `curl -X POST URL` sends such bodiless requests on a
      // kept-alive connection. Such a request has no body: end it here.
      return 0;
    }
    if (begin_ == end_) {
      if (!Fill()) {
        return -1;
      }
      if (begin_ == end_) {
        return 0;  // peer closed
      }
    }
    size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_ + begin_, n);
    begin_ += n;
    if (in_head_) {
      ScanHead(ptr, n);
    }
    return static_cast<ssize_t>(n);
  }

  /// Called before each request: its head is scanned for how its body is delimited.
  void StartRequest() {
    in_head_ = true;
    body_delimited_ = false;
    body_without_length_ = false;
    line_.clear();
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
          WaitFd(fd_, POLLOUT, write_sec_, write_usec_)) {
        continue;
      }
      return -1;
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Endpoint(fd_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Endpoint(fd_, false, ip, port);
  }
  socket_t socket() const override { return fd_; }

  /// Bytes already read and not consumed (a pipelined next request).
  bool HasBuffered() const { return begin_ < end_; }

 private:
  // httplib reads the head a byte at a time; `line_` keeps the start of the current line, enough
  // to recognise the two headers that delimit a body.
  void ScanHead(const char* data, size_t n) {
    for (size_t i = 0; i < n && in_head_; ++i) {
      const char c = data[i];
      if (c != '\n') {
        if (line_.size() < 32) {
          line_.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        }
        continue;
      }
      if (line_.empty() || line_ == "\r") {
        in_head_ = false;
        body_without_length_ = !body_delimited_;
      } else if (line_.rfind("content-length:", 0) == 0 ||
                 line_.rfind("transfer-encoding:", 0) == 0) {
        body_delimited_ = true;
      }
      line_.clear();
    }
  }

  bool Fill() {
    begin_ = end_ = 0;
    while (true) {
      ssize_t n = ::recv(fd_, buffer_, sizeof(buffer_), 0);
      if (n >= 0) {
        end_ = static_cast<size_t>(n);
        return true;
      }
      if (errno == EINTR) {
        continue;
      }
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && WaitFd(fd_, POLLIN, read_sec_, read_usec_)) {
        continue;
      }
      return false;
    }
  }

  const int fd_;
  const time_t read_sec_, read_usec_, write_sec_, write_usec_;
  char buffer_[4096];
  size_t begin_ = 0;
  size_t end_ = 0;
  bool in_head_ = true;
  bool body_delimited_ = false;
  bool body_without_length_ = false;
  std::string line_;
};

}  // namespace

SocketHttpServer::~SocketHttpServer() {
  Stop();
}

absl::Status SocketHttpServer::Serve(int listen_fd) {
  tasks_.reset(new_task_queue());
  accept_ = std::make_unique<AcceptLoop>(listen_fd, "http-accept", [this](int fd) {
    tasks_->enqueue([this, fd] { ServeConnection(fd); });
  });
  return accept_->Start();
}

void SocketHttpServer::StopAccepting() {
  if (accept_ != nullptr) {
    accept_->Stop();
  }
}

void SocketHttpServer::Stop() {
  StopAccepting();
  Drain(/*close_idle=*/true);
  if (tasks_ != nullptr) {
    tasks_->shutdown();  // runs what is queued, joins the threads
    tasks_.reset();
  }
}

void SocketHttpServer::ServeConnection(int fd) {
  FdStream stream(fd, read_timeout_sec_, read_timeout_usec_, write_timeout_sec_,
                  write_timeout_usec_);
  size_t remaining = keep_alive_max_count_;
  const auto keep_alive = std::chrono::seconds(keep_alive_timeout_sec_);
  while (remaining > 0) {
    // Wait for the next request, waking to notice a drain (then an idle connection closes).
    const auto idle_until = std::chrono::steady_clock::now() + keep_alive;
    bool readable = stream.HasBuffered();
    while (!readable && !(draining_.load() && close_idle_.load()) &&
           std::chrono::steady_clock::now() < idle_until) {
      readable = WaitFd(fd, POLLIN, 0, kIdlePollMs * 1000);
    }
    if (!readable) {
      break;
    }
    --remaining;
    const bool close_connection = remaining == 0 || draining_.load();
    bool connection_closed = false;
    stream.StartRequest();
    const bool processed = process_request(stream, close_connection, connection_closed, nullptr);
    if (after_request_) {
      after_request_();
    }
    if (!processed || connection_closed || close_connection) {
      break;
    }
  }
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

}  // namespace ottava::actuator
