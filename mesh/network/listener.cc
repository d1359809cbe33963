#include "mesh/network/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ottava::mesh {
namespace {

// Connections one worker accepts per readiness event before letting its other work run.
constexpr int kMaxAcceptsPerEvent = 64;

absl::Status Errno(const std::string& what, const Address& address) {
  return absl::UnavailableError(what + " " + address.ToString() + ": " + std::strerror(errno));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ListenSocket>> ListenSocket::Bind(const Address& address,
                                                                 int backlog) {
  sockaddr_storage storage;
  socklen_t length = 0;
  if (absl::Status status = address.ToSockaddr(&storage, &length); !status.ok()) {
    return status;
  }
  int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Errno("socket for", address);
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    absl::Status status = Errno("cannot bind", address);
    ::close(fd);
    return status;
  }
  if (::listen(fd, backlog) != 0) {
    absl::Status status = Errno("cannot listen on", address);
    ::close(fd);
    return status;
  }
  absl::StatusOr<Address> bound = SocketAddress(fd);
  if (!bound.ok()) {
    ::close(fd);
    return bound.status();
  }
  return std::unique_ptr<ListenSocket>(new ListenSocket(fd, std::move(*bound)));
}

absl::StatusOr<std::unique_ptr<ListenSocket>> ListenSocket::Adopt(int fd) {
  absl::StatusOr<Address> bound = SocketAddress(fd);
  if (!bound.ok()) {
    return bound.status();
  }
  return std::unique_ptr<ListenSocket>(new ListenSocket(fd, std::move(*bound)));
}

ListenSocket::~ListenSocket() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

Listener::Listener(Dispatcher& dispatcher, const ListenSocket& socket, AcceptCallback on_accept)
    : socket_(socket), on_accept_(std::move(on_accept)) {
  // Level-triggered: every worker watching the fd wakes, one wins each accept, the rest see
  // EAGAIN. With a handful of workers that costs less than a hand-off between threads.
  event_ = dispatcher.CreateFileEvent(
      socket_.fd(), [this](uint32_t) { OnReadable(); }, FileTriggerType::kLevel,
      FileReadyType::kRead);
}

Listener::~Listener() = default;

void Listener::Enable(bool enabled) {
  event_->SetEnabled(enabled ? FileReadyType::kRead : 0);
}

void Listener::OnReadable() {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    sockaddr_storage storage;
    socklen_t length = sizeof(storage);
    int fd = ::accept4(socket_.fd(), reinterpret_cast<sockaddr*>(&storage), &length,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      return;  // EAGAIN (another worker won), or a transient error such as EMFILE
    }
    absl::StatusOr<Address> remote = SocketAddress(fd, /*peer=*/true);
    on_accept_(fd, remote.ok() ? *remote : Address{"unknown", 0});
  }
}

}  // namespace ottava::mesh
