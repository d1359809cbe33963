#pragma once

// An httplib::Server that serves on a listening socket we own instead of one it binds itself, so
// the socket can be inherited from the previous process and handed to the next one on upgrade
// (runtime/upgrade/). cpp-httplib 0.11 (Debian) cannot adopt a bound socket: its accept loop and
// stop() work on a socket it made, and stop() calls shutdown(2) on it, which on a socket shared
// with another process would stop that process's listener too. So this class runs its own
// accept loop (common/accept_loop.h) and its own keep-alive loop per connection, and reuses
// httplib only for what it is good at: parsing one request, routing it, writing the response
// (the protected Server::process_request, fed through a Stream over the accepted fd).
//
// Threading: Serve/StopAccepting/Stop on the owner's thread; handlers run on the task queue made
// by `new_task_queue` (one task per connection, as httplib does).

#include <httplib.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include "absl/status/status.h"
#include "common/accept_loop.h"

namespace ottava::actuator {

class SocketHttpServer : public httplib::Server {
 public:
  SocketHttpServer() = default;
  ~SocketHttpServer() override;

  /// Starts accepting from `listen_fd` (not owned; must outlive Stop()).
  absl::Status Serve(int listen_fd);
  /// Stops accepting; open connections go on. When it returns no accept() of ours runs.
  void StopAccepting();
  /// Asks every connection to close after its current response (which then says
  /// `Connection: close`); idle keep-alive connections close at once, or with `close_idle`
  /// false (an upgrade whose requests are forwarded) after their next request, or at Stop():
  /// a client may be sending on an idle connection as it is closed.
  void Drain(bool close_idle = true) {
    close_idle_.store(close_idle);
    draining_.store(true);
  }
  /// Runs after each request, on the thread that served it (set before Serve()).
  void set_after_request(std::function<void()> after) { after_request_ = std::move(after); }
  /// StopAccepting + Drain, then waits for the requests in progress. Idempotent.
  void Stop();

 private:
  void ServeConnection(int fd);

  std::unique_ptr<AcceptLoop> accept_;
  std::unique_ptr<httplib::TaskQueue> tasks_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> close_idle_{true};
  std::function<void()> after_request_;
};

}  // namespace ottava::actuator
