#pragma once

// Exponential backoff with full jitter, for redelivery and reconnect loops.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace ottava {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max) {}

  /// The delay before attempt number `attempt` (1 = first retry): a random value in
  /// [base/2, base] where base = initial * 2^(attempt-1), capped at max.
  std::chrono::milliseconds Delay(uint32_t attempt) {
    int64_t base = initial_.count();
    for (uint32_t i = 1; i < attempt && base < max_.count(); ++i) {
      base *= 2;
    }
    base = std::min<int64_t>(base, max_.count());
    std::uniform_int_distribution<int64_t> dist(base / 2, base);
    return std::chrono::milliseconds(dist(rng_));
  }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::minstd_rand rng_{std::random_device{}()};
};

}  // namespace ottava
