#pragma once

// An event loop on its own thread, over libevent (as Envoy's Dispatcher). The runtime owns one
// shared by the components (I/O, timers, deliveries); what they touch from the loop belongs to the
// loop's thread.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

struct event_base;
struct event;

namespace ottava {

/// A re-armable one-shot timer. Created, armed and destroyed on its dispatcher's thread only.
class Timer {
 public:
  virtual ~Timer() = default;
  /// Fires the callback once after `delay`; re-arming replaces the previous deadline.
  virtual void Enable(std::chrono::milliseconds delay) = 0;
  /// Cancels a pending firing.
  virtual void Disable() = 0;
  /// Whether a firing is pending.
  virtual bool Enabled() const = 0;
};
using TimerPtr = std::unique_ptr<Timer>;

class Dispatcher {
 public:
  using Closure = std::function<void()>;

  /// Creates a stopped dispatcher; `name` names its thread (at most 15 characters are kept).
  static absl::StatusOr<std::unique_ptr<Dispatcher>> Create(std::string name);
  ~Dispatcher();

  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Starts the loop thread. Called once, from the owner's thread.
  void Start();
  /// Runs what is already posted, stops the loop and joins its thread. Idempotent. Closures posted
  /// afterwards are dropped (and destroyed on the caller's thread).
  void Stop();

  /// Runs `closure` on the loop thread, in posting order. Any thread.
  void Post(Closure closure);
  /// Runs `closure` on the loop thread after `delay`. Any thread. Closures still waiting when the
  /// loop stops are destroyed unrun with the dispatcher.
  void PostDelayed(std::chrono::milliseconds delay, Closure closure);
  /// Runs `closure` on the loop thread (inline when called there) and waits until it has run, or
  /// at most `timeout`. Returns whether it ran: false at once when the dispatcher is stopped and
  /// drops it unrun, false after `timeout` when the loop is stuck (the closure may still run
  /// later). Never blocks the loop thread.
  bool RunAndWait(Closure closure,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds::max());
  /// Creates a timer that runs `callback` on the loop thread. Loop thread only (or before Start).
  TimerPtr CreateTimer(Closure callback);
  /// Whether the caller runs on this dispatcher's loop thread.
  bool IsLoopThread() const;

  const std::string& name() const { return name_; }
  /// The libevent base, for adapters that attach to it (hiredis). Use on the loop thread only.
  event_base* base() const { return base_; }

 private:
  struct Delayed;

  Dispatcher(std::string name, event_base* base);
  void RunPosted();
  static void FireDelayed(int fd, short what, void* arg);  // libevent callback

  const std::string name_;
  event_base* base_;
  event* wakeup_ = nullptr;
  std::thread thread_;
  std::thread::id loop_thread_id_;
  absl::Mutex mu_;
  std::vector<Closure> posted_ ABSL_GUARDED_BY(mu_);
  // PostDelayed closures waiting for their timer; loop thread (and the destructor, after it).
  std::unordered_map<Delayed*, std::unique_ptr<Delayed>> delayed_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};
using DispatcherPtr = std::unique_ptr<Dispatcher>;

}  // namespace ottava
