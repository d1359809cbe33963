#pragma once

// Listening sockets we own, and a thread that accepts from one. The runtime's servers (gRPC API,
// actuator, Dapr HTTP) listen on sockets made here instead of letting their libraries bind, so
// the fd can be handed to the next process on upgrade (runtime/upgrade/) and a new process can
// serve on a socket it inherited. Two processes may accept from the same socket at once: the
// socket is non-blocking, so whoever loses a race for a connection sees EAGAIN and waits again.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/address.h"

namespace ottava {

/// Binds `address` (port 0 picks a free port) with SO_REUSEADDR (never SO_REUSEPORT), listens,
/// and returns the non-blocking, close-on-exec fd. The caller owns it. Errors name the address.
absl::StatusOr<int> BindListenSocket(const Address& address, int backlog = 1024);

/// Whether `fd` is a listening TCP socket bound to `address`, or to its host with any port when
/// `address.port` is 0 (the check that an inherited socket may serve a configured address).
bool ListenSocketMatches(int fd, const Address& address);

/// Accepts connections from a listening fd (not owned) on its own thread and hands each accepted
/// fd (non-blocking, close-on-exec, TCP_NODELAY; owned by the callee) to `on_accept` on that
/// thread. Start/Stop from one owner thread.
class AcceptLoop {
 public:
  using AcceptCallback = std::function<void(int fd)>;

  AcceptLoop(int listen_fd, std::string thread_name, AcceptCallback on_accept);
  /// Stops (see Stop()).
  ~AcceptLoop();
  AcceptLoop(const AcceptLoop&) = delete;
  AcceptLoop& operator=(const AcceptLoop&) = delete;

  /// Starts the thread. Fails only when the wake-up eventfd cannot be made.
  absl::Status Start();
  /// Stops accepting: when it returns, no accept() of ours runs or will run, and the socket
  /// stays open (another process may be accepting from it). Idempotent.
  void Stop();
  bool running() const { return thread_.joinable(); }

 private:
  void Run();

  const int listen_fd_;
  const std::string thread_name_;
  AcceptCallback on_accept_;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace ottava
