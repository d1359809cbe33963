#pragma once

// An event loop on its own thread, over libevent (as Envoy's Dispatcher). The runtime owns one
// shared by the components (I/O, timers, deliveries); what they touch from the loop belongs to the
// loop's thread.

#include <chrono>
#include <cstdint>
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

/// Readiness kinds of a file event, combined as a bit mask.
struct FileReadyType {
  static constexpr uint32_t kRead = 1;
  static constexpr uint32_t kWrite = 2;
  /// The peer closed its side (EPOLLRDHUP); delivered together with kRead when both hold.
  static constexpr uint32_t kClosed = 4;
};

/// Level: the callback runs while the fd is ready. Edge: it runs when the fd becomes ready, so
/// the callee must read or write until EAGAIN (as Envoy's connections do).
enum class FileTriggerType { kLevel, kEdge };

/// Watches one file descriptor on its dispatcher's loop. Created, changed and destroyed on the
/// loop thread only. Destroying it stops the watch; it never closes the fd.
class FileEvent {
 public:
  virtual ~FileEvent() = default;
  /// Watches exactly `events` (a FileReadyType mask) from now on; 0 watches nothing.
  virtual void SetEnabled(uint32_t events) = 0;
  /// Runs the callback with `events` on a later loop iteration, as if they had become ready.
  virtual void Activate(uint32_t events) = 0;
};
using FileEventPtr = std::unique_ptr<FileEvent>;

/// Something whose destruction must wait until the callback on the stack has returned (a
/// connection closing itself from its own read callback). See Dispatcher::DeferredDelete.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};
using DeferredDeletablePtr = std::unique_ptr<DeferredDeletable>;

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
  /// Watches `fd` for `events`; `callback` receives the mask of what is ready. Loop thread only
  /// (or before Start).
  FileEventPtr CreateFileEvent(int fd,
                               std::function<void(uint32_t events)> callback,
                               FileTriggerType trigger,
                               uint32_t events);
  /// Destroys `object` on the loop thread after the current callback returns (in the same loop
  /// iteration). Loop thread only. Objects still pending at Stop() are destroyed then.
  void DeferredDelete(DeferredDeletablePtr object);
  /// Whether the caller runs on this dispatcher's loop thread.
  bool IsLoopThread() const;

  const std::string& name() const { return name_; }
  /// The libevent base, for adapters that attach to it (hiredis). Use on the loop thread only.
  event_base* base() const { return base_; }

 private:
  struct Delayed;

  Dispatcher(std::string name, event_base* base);
  void RunPosted();
  void ClearDeferred();
  static void FireDelayed(int fd, short what, void* arg);  // libevent callback

  const std::string name_;
  event_base* base_;
  event* wakeup_ = nullptr;
  event* deferred_event_ = nullptr;
  // Objects waiting for deferred deletion (loop thread).
  std::vector<DeferredDeletablePtr> deferred_;
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
