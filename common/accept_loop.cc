#include "common/accept_loop.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ottava {

absl::StatusOr<int> BindListenSocket(const Address& address, int backlog) {
  sockaddr_storage storage;
  socklen_t length = 0;
  if (absl::Status status = address.ToSockaddr(&storage, &length); !status.ok()) {
    return status;
  }
  int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError("socket for " + address.ToString() + ": " + std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      ::listen(fd, backlog) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError("cannot listen on " + address.ToString() + ": " +
                                  std::strerror(error));
  }
  return fd;
}

bool ListenSocketMatches(int fd, const Address& address) {
  int listening = 0;
  socklen_t size = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || listening == 0) {
    return false;
  }
  absl::StatusOr<Address> bound = SocketAddress(fd);
  if (!bound.ok()) {
    return false;
  }
  std::string host = address.host == "localhost" ? "127.0.0.1" : address.host;
  if (bound->host != host) {
    return false;
  }
  return address.port == 0 || address.port == bound->port;
}

AcceptLoop::AcceptLoop(int listen_fd, std::string thread_name, AcceptCallback on_accept)
    : listen_fd_(listen_fd),
      thread_name_(std::move(thread_name)),
      on_accept_(std::move(on_accept)) {}

AcceptLoop::~AcceptLoop() {
  Stop();
}

absl::Status AcceptLoop::Start() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    return absl::InternalError(std::string("eventfd: ") + std::strerror(errno));
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void AcceptLoop::Stop() {
  if (!thread_.joinable()) {
    return;
  }
  stopping_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  ::close(wake_fd_);
  wake_fd_ = -1;
}

void AcceptLoop::Run() {
  pthread_setname_np(pthread_self(), thread_name_.substr(0, 15).c_str());
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stopping_.load()) {
    int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[1].revents != 0 || stopping_.load()) {
      return;
    }
    // Drain the queue: another process accepting from the same socket makes some of these fail
    // with EAGAIN, which only means it took that connection.
    for (int i = 0; i < 64 && !stopping_.load(); ++i) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          // Out of fds: back off briefly instead of spinning on a readable socket.
          ::poll(nullptr, 0, 5);
        }
        break;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      on_accept_(fd);
    }
  }
}

}  // namespace ottava
