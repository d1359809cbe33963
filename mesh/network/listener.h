#pragma once

// Listening sockets and the per-worker listeners that accept from them. One ListenSocket is
// bound per configured listener (its fd is what the hot upgrade hands to the next process); every
// worker adds a Listener on that same fd, so whichever worker is free accepts the connection, and
// the connection then stays on that worker for life.

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "common/address.h"
#include "common/dispatcher.h"

namespace ottava::mesh {

/// A bound, listening, non-blocking socket. Owns its fd. Any thread.
class ListenSocket {
 public:
  /// Binds `address` (port 0 picks a free port) and listens. SO_REUSEADDR, never SO_REUSEPORT:
  /// a second process cannot silently share the port.
  static absl::StatusOr<std::unique_ptr<ListenSocket>> Bind(const Address& address,
                                                            int backlog = 1024);
  /// Adopts an already listening fd (received from the previous process on upgrade).
  static absl::StatusOr<std::unique_ptr<ListenSocket>> Adopt(int fd);
  ~ListenSocket();

  ListenSocket(const ListenSocket&) = delete;
  ListenSocket& operator=(const ListenSocket&) = delete;

  int fd() const { return fd_; }
  /// The bound address, with the real port.
  const Address& address() const { return address_; }

 private:
  ListenSocket(int fd, Address address) : fd_(fd), address_(std::move(address)) {}
  int fd_;
  Address address_;
};

/// Accepts connections from a ListenSocket on one worker. Worker thread only.
class Listener {
 public:
  /// Receives each accepted socket (non-blocking, TCP_NODELAY set) with its peer address; the
  /// callee owns the fd.
  using AcceptCallback = std::function<void(int fd, const Address& remote)>;

  Listener(Dispatcher& dispatcher, const ListenSocket& socket, AcceptCallback on_accept);
  ~Listener();

  /// Stops or resumes accepting (draining, upgrade).
  void Enable(bool enabled);

 private:
  void OnReadable();

  const ListenSocket& socket_;
  AcceptCallback on_accept_;
  FileEventPtr event_;
};

}  // namespace ottava::mesh
