#include "common/timeout_queue.h"

#include <algorithm>

namespace ottava {

void TimeoutEntry::Cancel() {
  if (queue_ != nullptr) {
    queue_->Unlink(*this);
  }
}

TimeoutQueue::TimeoutQueue(Dispatcher& dispatcher, std::chrono::milliseconds timeout)
    : dispatcher_(dispatcher),
      timeout_(timeout),
      timer_(dispatcher.CreateTimer([this] { OnTimer(); })) {}

TimeoutQueue::~TimeoutQueue() {
  while (head_ != nullptr) {
    Unlink(*head_);
  }
}

void TimeoutQueue::Arm(TimeoutEntry& entry) {
  entry.Cancel();
  // A deadline up to one callback's work early, for one clock read per batch of requests.
  const MonotonicTime now = dispatcher_.ApproximateTime();
  entry.deadline_ = now + timeout_;
  entry.queue_ = this;
  entry.prev_ = tail_;
  entry.next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->next_ = &entry;
  } else {
    head_ = &entry;
  }
  tail_ = &entry;
  // The timer stays armed while entries wait; a cancelled head leaves it early, not late.
  if (!timer_->Enabled()) {
    ArmTimerFor(now);
  }
}

void TimeoutQueue::Unlink(TimeoutEntry& entry) {
  (entry.prev_ != nullptr ? entry.prev_->next_ : head_) = entry.next_;
  (entry.next_ != nullptr ? entry.next_->prev_ : tail_) = entry.prev_;
  entry.prev_ = nullptr;
  entry.next_ = nullptr;
  entry.queue_ = nullptr;
}

void TimeoutQueue::OnTimer() {
  const MonotonicTime now = dispatcher_.time_source().MonotonicTime();
  // Callbacks may cancel or arm other entries; new ones go to the back with later deadlines.
  while (head_ != nullptr && head_->deadline_ <= now) {
    TimeoutEntry& expired = *head_;
    Unlink(expired);
    // A copy runs: the callback may destroy its own entry (a request ending on its timeout).
    std::function<void()> callback = expired.callback_;
    callback();
  }
  if (head_ != nullptr && !timer_->Enabled()) {
    ArmTimerFor(now);
  }
}

void TimeoutQueue::ArmTimerFor(MonotonicTime now) {
  if (head_ == nullptr) {
    return;
  }
  // Rounded up: a timer never fires before the deadline it serves.
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(head_->deadline_ - now);
  timer_->Enable(std::max(wait, std::chrono::milliseconds(0)));
}

}  // namespace ottava
