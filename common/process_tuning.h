#pragma once

// Process-wide settings for production binaries (the sidecar, and the benchmark's echo server so
// that it stays a like-for-like floor). Tests leave them alone.

#include "absl/synchronization/mutex.h"

namespace ottava {

/// Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detector on: every
/// lock and unlock updates a process-wide lock graph under a global lock. gRPC's own locks are
/// absl::Mutex too, so the detector shows up in every request's profile. Call first thing in
/// main(), before any thread starts.
inline void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace ottava
