#pragma once

// A blocking wait shared by the Redis Client and Subscriber Connect(). Never call it on the
// dispatcher thread.

#include <atomic>
#include <chrono>
#include <thread>

namespace ottava::components::redis {

/// Polls `flag` every 2 ms until it is set or `timeout` has passed; returns its last value.
inline bool WaitForFlag(const std::atomic<bool>& flag, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!flag.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return flag.load();
}

}  // namespace ottava::components::redis
