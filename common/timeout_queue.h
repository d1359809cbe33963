#pragma once

// Many timeouts of one duration on one dispatcher, with one timer between them. Route timeouts
// are the case: every request on a route waits the same time, so deadlines arrive in order and
// a FIFO list keeps them sorted. Arming and cancelling an entry is a list link and unlink: no
// allocation and no event-loop call per request (a libevent timer per request cost an
// allocation, the base's lock on every add and delete, and a heap insert).
//
// Threading: a queue and its entries belong to the dispatcher's loop thread.

#include <chrono>
#include <functional>

#include "common/dispatcher.h"
#include "common/time.h"

namespace ottava {

class TimeoutQueue;

/// One waiter's slot in a TimeoutQueue, owned by the waiter; its destructor cancels it.
class TimeoutEntry {
 public:
  /// `callback` runs on the loop thread when the entry expires (after it was unlinked).
  explicit TimeoutEntry(std::function<void()> callback) : callback_(std::move(callback)) {}
  ~TimeoutEntry() { Cancel(); }
  TimeoutEntry(const TimeoutEntry&) = delete;
  TimeoutEntry& operator=(const TimeoutEntry&) = delete;

  /// Removes the entry from its queue if it waits in one; nothing fires afterwards.
  void Cancel();
  /// Whether the entry waits in a queue.
  bool armed() const { return queue_ != nullptr; }

 private:
  friend class TimeoutQueue;
  std::function<void()> callback_;
  TimeoutQueue* queue_ = nullptr;
  TimeoutEntry* prev_ = nullptr;
  TimeoutEntry* next_ = nullptr;
  MonotonicTime deadline_{};
};

class TimeoutQueue {
 public:
  /// Every entry armed here expires `timeout` after it was armed (read from the dispatcher's
  /// time source, so simulated time drives it in tests).
  TimeoutQueue(Dispatcher& dispatcher, std::chrono::milliseconds timeout);
  /// Entries still waiting are unlinked; none fires.
  ~TimeoutQueue();
  TimeoutQueue(const TimeoutQueue&) = delete;
  TimeoutQueue& operator=(const TimeoutQueue&) = delete;

  /// Arms `entry` (re-arming one that waits, here or elsewhere, moves it to the back).
  void Arm(TimeoutEntry& entry);
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  friend class TimeoutEntry;
  void Unlink(TimeoutEntry& entry);
  void OnTimer();
  void ArmTimerFor(MonotonicTime now);

  Dispatcher& dispatcher_;
  const std::chrono::milliseconds timeout_;
  TimerPtr timer_;  // armed for the head's deadline or earlier (cancelling never re-arms it)
  TimeoutEntry* head_ = nullptr;
  TimeoutEntry* tail_ = nullptr;
};

}  // namespace ottava
