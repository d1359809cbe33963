#include "common/time_source.h"

#include "common/assert.h"

namespace ottava {

MonotonicTime RealTimeSource::MonotonicTime() const {
  return std::chrono::steady_clock::now();
}

SystemTime RealTimeSource::SystemTime() const {
  return std::chrono::system_clock::now();
}

SimulatedTimeSource::SimulatedTimeSource(::ottava::SystemTime system_start)
    // Not the epoch of steady_clock: code that treats a zero time point as "unset" keeps working.
    : monotonic_(::ottava::MonotonicTime(std::chrono::hours(24))), system_(system_start) {}

SimulatedTimeSource::~SimulatedTimeSource() {
  absl::MutexLock lock(&mu_);
  OTTAVA_RELEASE_ASSERT(listeners_.empty(), "a dispatcher outlives its simulated time source");
}

MonotonicTime SimulatedTimeSource::MonotonicTime() const {
  absl::MutexLock lock(&mu_);
  return monotonic_;
}

SystemTime SimulatedTimeSource::SystemTime() const {
  absl::MutexLock lock(&mu_);
  return system_;
}

void SimulatedTimeSource::Advance(std::chrono::nanoseconds duration) {
  if (duration.count() <= 0) {
    return;
  }
  // The lock is held while waking so a dispatcher cannot be destroyed between the copy of its
  // listener and the call; wake only posts, so no lock is taken in the other order.
  absl::MutexLock lock(&mu_);
  monotonic_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(duration);
  system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(duration);
  for (auto& [key, wake] : listeners_) {
    wake();
  }
}

int SimulatedTimeSource::AddListener(std::function<void()> wake) {
  absl::MutexLock lock(&mu_);
  int key = next_key_++;
  listeners_.emplace(key, std::move(wake));
  return key;
}

void SimulatedTimeSource::RemoveListener(int key) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(key);
}

}  // namespace ottava
