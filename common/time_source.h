#pragma once

// Where a dispatcher's timers read the time. Production uses the real clocks; tests hand a
// SimulatedTimeSource to Dispatcher::Create and move time forward by hand, so timeouts and retries
// are tested without sleeping (as Envoy's SimulatedTimeSystem).

#include <chrono>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/time.h"

namespace ottava {

/// A source of the current time. Implementations are thread-safe: any thread may read them.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  /// The time for deadlines and durations; never goes backwards. Any thread.
  virtual ::ottava::MonotonicTime MonotonicTime() const = 0;
  /// The wall-clock time, for timestamps shown to people and peers. Any thread.
  virtual ::ottava::SystemTime SystemTime() const = 0;
};

/// The process' clocks (std::chrono::steady_clock and system_clock). Stateless; any thread.
class RealTimeSource : public TimeSource {
 public:
  ::ottava::MonotonicTime MonotonicTime() const override;
  ::ottava::SystemTime SystemTime() const override;
};

/// Time that moves only when Advance() is called. Dispatchers created on it fire their timers
/// when simulated time passes the deadlines, on their loop threads, in deadline order.
///
/// Threading: any thread may read the time or call Advance(). It must outlive every dispatcher
/// created on it.
class SimulatedTimeSource : public TimeSource {
 public:
  /// Starts at `system_start` on the wall clock (and at an arbitrary monotonic origin).
  explicit SimulatedTimeSource(::ottava::SystemTime system_start =
                                   ::ottava::SystemTime(std::chrono::seconds(1'800'000'000)));
  ~SimulatedTimeSource() override;

  SimulatedTimeSource(const SimulatedTimeSource&) = delete;
  SimulatedTimeSource& operator=(const SimulatedTimeSource&) = delete;

  ::ottava::MonotonicTime MonotonicTime() const override;
  ::ottava::SystemTime SystemTime() const override;

  /// Moves both clocks forward by `duration` (a negative one is ignored) and posts a timer check to
  /// every dispatcher on this source. Returns without waiting for the timers: a
  /// `dispatcher.RunAndWait([] {})` afterwards returns once every timer due by then has fired.
  void Advance(std::chrono::nanoseconds duration);

  /// Called by dispatchers on this source (not by tests): `wake` runs on Advance()'s caller with
  /// this source's lock held, so it may only post to a loop. Returns a key for RemoveListener.
  int AddListener(std::function<void()> wake);
  void RemoveListener(int key);

 private:
  mutable absl::Mutex mu_;
  ::ottava::MonotonicTime monotonic_ ABSL_GUARDED_BY(mu_);
  ::ottava::SystemTime system_ ABSL_GUARDED_BY(mu_);
  int next_key_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::function<void()>> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ottava
