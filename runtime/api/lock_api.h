#pragma once

// The Lock API core. Validation follows Layotto: no lock store -> FAILED_PRECONDITION; unknown
// store, empty resource or owner, expire <= 0 -> INVALID_ARGUMENT. A backend failure is an error,
// never a granted lock.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "components/lock/lock.h"
#include "runtime/api/common.h"
#include "runtime/component_set.h"

namespace ottava::runtime::api {

class LockApi {
 public:
  LockApi(const ComponentSet& components, const std::string& app_id);

  using LockStatus = components::lock::LockStatus;

  void TryLock(std::string_view store,
               std::string_view resource,
               std::string_view owner,
               int32_t expire_seconds,
               std::function<void(absl::StatusOr<bool>)> done);
  void Unlock(std::string_view store,
              std::string_view resource,
              std::string_view owner,
              std::function<void(absl::StatusOr<LockStatus>)> done);
  void KeepAlive(std::string_view store,
                 std::string_view resource,
                 std::string_view owner,
                 int32_t expire_seconds,
                 std::function<void(absl::StatusOr<LockStatus>)> done);

 private:
  struct Store {
    std::string name;
    components::lock::LockStore* component;
    KeyPrefix prefix;
  };
  absl::StatusOr<const Store*> Resolve(std::string_view name,
                                       std::string_view resource,
                                       std::string_view owner) const;
  // Resolve, then rejects a non-positive expiry (TryLock and KeepAlive).
  absl::StatusOr<const Store*> Resolve(std::string_view name,
                                       std::string_view resource,
                                       std::string_view owner,
                                       int32_t expire_seconds) const;

  std::vector<Store> stores_;
};

}  // namespace ottava::runtime::api
