#pragma once

// A task that runs every `interval` on a Dispatcher's thread until stopped. In-memory components
// use it to sweep expired entries so memory stays bounded even for keys nobody reads again.

#include <chrono>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/dispatcher.h"

namespace ottava::components {

class PeriodicTask {
 public:
  /// `dispatcher` must outlive this object. Nothing runs before Start().
  PeriodicTask(Dispatcher& dispatcher,
               std::chrono::milliseconds interval,
               std::function<void()> task);
  /// Stops the task (see Stop()).
  ~PeriodicTask();

  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  /// Schedules the first run `interval` from now. Any thread; at most once.
  void Start();
  /// When this returns the task is not running and never runs again. Idempotent. Any thread except
  /// from inside the task itself.
  void Stop();

 private:
  // Shared with the closures posted to the loop, so a late timer firing never touches a destroyed
  // owner. `mu` is held while the task runs, which is what lets Stop() wait for a running task.
  struct Shared {
    absl::Mutex mu;
    std::function<void()> task ABSL_GUARDED_BY(mu);
    std::chrono::milliseconds interval{0};
    TimerPtr timer;  // created, armed and destroyed on the loop thread only
    void Fire();
  };

  Dispatcher& dispatcher_;
  std::shared_ptr<Shared> shared_;
  bool started_ = false;
};

}  // namespace ottava::components
