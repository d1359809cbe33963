#pragma once

// The Lock building block: non-reentrant, owner-checked, expiring locks. No fencing token is
// given: a holder whose lock expired may still believe it holds it.
//
// Resource ids reach the store already prefixed (`lock||<app-id>||<resource>`). Callbacks run
// exactly once, inline or on the component's thread, and must not block.

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "components/component.h"

namespace ottava::components::lock {

struct TryLockRequest {
  std::string resource_id;
  std::string owner;
  int32_t expire_seconds = 0;  // > 0, checked by the API layer
};

struct UnlockRequest {
  std::string resource_id;
  std::string owner;
};

struct KeepAliveRequest {
  std::string resource_id;
  std::string owner;
  int32_t expire_seconds = 0;
};

enum class LockStatus { kSuccess, kLockDoesNotExist, kLockBelongsToOthers };

/// A backend failure is an error status, never `true`/`kSuccess`.
class LockStore : public Component {
 public:
  /// Takes the lock if nobody holds it (the same owner included: not re-entrant). false = held.
  virtual void TryLock(TryLockRequest request, std::function<void(absl::StatusOr<bool>)> done) = 0;
  /// Releases the lock if `owner` holds it.
  virtual void Unlock(UnlockRequest request,
                      std::function<void(absl::StatusOr<LockStatus>)> done) = 0;
  /// Resets the expiry of a lock `owner` holds to `expire_seconds` from now.
  virtual void KeepAlive(KeepAliveRequest request,
                         std::function<void(absl::StatusOr<LockStatus>)> done) = 0;
};

using LockStorePtr = std::unique_ptr<LockStore>;
using LockFactory = Factory<LockStore>;

}  // namespace ottava::components::lock
