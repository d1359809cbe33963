#include "components/periodic_task.h"

#include <utility>

namespace ottava::components {

PeriodicTask::PeriodicTask(Dispatcher& dispatcher,
                           std::chrono::milliseconds interval,
                           std::function<void()> task)
    : dispatcher_(dispatcher), shared_(std::make_shared<Shared>()) {
  absl::MutexLock lock(&shared_->mu);
  shared_->task = std::move(task);
  shared_->interval = interval;
}

PeriodicTask::~PeriodicTask() {
  Stop();
}

void PeriodicTask::Start() {
  if (started_) {
    return;
  }
  started_ = true;
  // Timers may only be created on the loop thread (or before the loop starts, which we cannot
  // tell from here), so creation is posted too.
  dispatcher_.Post([shared = shared_, dispatcher = &dispatcher_] {
    Shared* raw = shared.get();
    shared->timer = dispatcher->CreateTimer([raw] { raw->Fire(); });
    shared->timer->Enable(shared->interval);
  });
}

void PeriodicTask::Stop() {
  if (shared_ == nullptr) {
    return;
  }
  {
    // Waits for a running task; afterwards Fire() finds no task and does not re-arm.
    absl::MutexLock lock(&shared_->mu);
    shared_->task = nullptr;
  }
  // The timer belongs to the loop thread: destroy it there. If the loop is already stopped the
  // closure is dropped on this thread, which is safe because nothing runs on the loop any more.
  dispatcher_.Post([shared = std::move(shared_)]() mutable { shared->timer.reset(); });
  shared_ = nullptr;
}

void PeriodicTask::Shared::Fire() {
  {
    absl::MutexLock lock(&mu);
    if (!task) {
      return;
    }
    task();
  }
  timer->Enable(interval);
}

}  // namespace ottava::components
