#pragma once

// Blocking waits on a dispatcher's loop, shared by the Redis Client and Subscriber Connect().
// Never call them on the dispatcher thread.

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "common/dispatcher.h"

namespace ottava::components::redis {

/// Runs `fn` on the dispatcher thread and waits until it has run.
inline void RunOnLoopAndWait(Dispatcher& dispatcher, Dispatcher::Closure fn) {
  absl::Notification done;
  dispatcher.Post([fn = std::move(fn), &done]() mutable {
    fn();
    done.Notify();
  });
  done.WaitForNotification();
}

/// Polls `flag` every 2 ms until it is set or `timeout` has passed; returns its last value.
inline bool WaitForFlag(const std::atomic<bool>& flag, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!flag.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return flag.load();
}

}  // namespace ottava::components::redis
