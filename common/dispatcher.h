#pragma once

// An event loop over libevent (as Envoy's Dispatcher), run either on a thread it owns (Start/Stop)
// or on the caller's thread (Run/Exit, as a mesh worker does). The runtime owns one shared by the
// components (I/O, timers, deliveries); what they touch from the loop belongs to the loop's thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/time_source.h"

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
  /// Timers read `time_source` (not owned; it must outlive the dispatcher); nullptr means the real
  /// clocks. On a SimulatedTimeSource, timers fire when simulated time passes their deadlines.
  ///
  /// `loop_thread_only`: the caller promises that every libevent object of this dispatcher
  /// (timers, file events) is touched only on the loop thread or before Start, as the contracts
  /// below say; libevent then takes no lock in each of its calls (EVENT_BASE_FLAG_NOLOCK). Post and
  /// the calls built on it stay safe from any thread: they wake the loop through an eventfd. The
  /// mesh workers run so; a busy proxy worker makes several libevent calls per request.
  static absl::StatusOr<std::unique_ptr<Dispatcher>> Create(std::string name,
                                                            TimeSource* time_source = nullptr,
                                                            bool loop_thread_only = false);
  /// Stops the loop (see Stop()). With Run(), the loop must have returned first.
  ~Dispatcher();

  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Starts the loop on a thread the dispatcher owns. Called once, from the owner's thread; not
  /// together with Run().
  void Start();
  /// Runs what is already posted, stops the loop and joins its thread. Idempotent. Closures posted
  /// afterwards are dropped (and destroyed on the caller's thread). After a Run() loop, call it
  /// once Run() has returned (or leave it to the destructor).
  void Stop();

  /// Runs the loop on the calling thread until Exit(); the alternative to Start() for an owner
  /// that brings its own thread (a mesh worker, or main). While it runs, IsLoopThread() is true
  /// on the caller and Post/RunAndWait/timers behave as with Start(). May be called again after it
  /// returned, from any one thread at a time; not after Start() or Stop().
  void Run();
  /// Makes Run() return once what was posted before this call has run. Any thread; an Exit()
  /// before Run() makes the next Run() return after running what was posted.
  void Exit();

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
  /// The clocks this dispatcher's timers follow. Any thread.
  TimeSource& time_source() const { return *time_source_; }
  /// time_source()'s monotonic time, read once per loop callback on real clocks (LoopClock): for
  /// stamping the many requests a callback handles (their deadlines may be a callback's work
  /// early). Loop thread only.
  MonotonicTime ApproximateTime() const;

 private:
  struct Delayed;
  class SimulatedTimer;
  // An armed simulated timer: deadline, arming sequence (ties fire in arming order), timer.
  using SimulatedEntry = std::tuple<MonotonicTime, uint64_t, SimulatedTimer*>;

  Dispatcher(std::string name, event_base* base, TimeSource* time_source);
  void RunPosted();
  void ClearDeferred();
  void FireDelayed(Delayed* fired);
  void RunSimulatedTimers();

  const std::string name_;
  event_base* base_;
  // Owned when the caller passed none.
  std::unique_ptr<RealTimeSource> real_time_;
  TimeSource* time_source_;
  // Set when time_source_ is simulated: timers live in simulated_timers_ instead of libevent.
  SimulatedTimeSource* simulated_ = nullptr;
  // Whether time_source_ is the real clocks (LoopClock may then stand in for it).
  bool real_clock_ = false;
  int simulated_listener_ = -1;
  // Armed simulated timers by deadline (loop thread).
  std::set<SimulatedEntry> simulated_timers_;
  uint64_t next_sequence_ = 0;
  // Post wakes the loop: from another thread by writing wakeup_fd_ (an eventfd), on the loop
  // thread by activating wakeup_ (no syscall).
  int wakeup_fd_ = -1;
  event* wakeup_ = nullptr;
  event* deferred_event_ = nullptr;
  // Objects waiting for deferred deletion (loop thread).
  std::vector<DeferredDeletablePtr> deferred_;
  std::vector<DeferredDeletablePtr> deferred_batch_;  // the batch being destroyed
  std::thread thread_;
  // Read by any thread in IsLoopThread(); set by Start()'s thread or by Run().
  std::atomic<std::thread::id> loop_thread_id_{};
  absl::Mutex mu_;
  std::vector<Closure> posted_ ABSL_GUARDED_BY(mu_);
  // PostDelayed closures waiting for their timer; loop thread (and the destructor, after it).
  std::unordered_map<Delayed*, std::unique_ptr<Delayed>> delayed_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};
using DispatcherPtr = std::unique_ptr<Dispatcher>;

}  // namespace ottava
