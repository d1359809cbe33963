#include "runtime/api/lock_api.h"

namespace ottava::runtime::api {

namespace lock = components::lock;

LockApi::LockApi(const ComponentSet& components, const std::string& app_id) {
  for (const auto& instance : components.locks()) {
    stores_.push_back(
        Store{instance.config->name, instance.component.get(),
              KeyPrefix::Create(instance.config->metadata, app_id, instance.config->name, "lock")});
  }
}

absl::StatusOr<const LockApi::Store*> LockApi::Resolve(std::string_view name,
                                                       std::string_view resource,
                                                       std::string_view owner) const {
  absl::StatusOr<const Store*> found =
      FindForKey(stores_, components::Kind::kLock, name, resource, "resource_id");
  if (!found.ok()) {
    return found.status();
  }
  if (owner.empty()) {
    return absl::InvalidArgumentError("lock_owner is empty");
  }
  return found;
}

absl::StatusOr<const LockApi::Store*> LockApi::Resolve(std::string_view name,
                                                       std::string_view resource,
                                                       std::string_view owner,
                                                       int32_t expire_seconds) const {
  absl::StatusOr<const Store*> found = Resolve(name, resource, owner);
  if (!found.ok()) {
    return found.status();
  }
  if (expire_seconds <= 0) {
    return absl::InvalidArgumentError("expire must be > 0 seconds, got " +
                                      std::to_string(expire_seconds));
  }
  return found;
}

void LockApi::TryLock(std::string_view store_name,
                      std::string_view resource,
                      std::string_view owner,
                      int32_t expire_seconds,
                      std::function<void(absl::StatusOr<bool>)> done) {
  absl::StatusOr<const Store*> store = Resolve(store_name, resource, owner, expire_seconds);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  (*store)->component->TryLock(
      lock::TryLockRequest{(*store)->prefix.Apply(resource), std::string(owner), expire_seconds},
      std::move(done));
}

void LockApi::Unlock(std::string_view store_name,
                     std::string_view resource,
                     std::string_view owner,
                     std::function<void(absl::StatusOr<LockStatus>)> done) {
  absl::StatusOr<const Store*> store = Resolve(store_name, resource, owner);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  (*store)->component->Unlock(
      lock::UnlockRequest{(*store)->prefix.Apply(resource), std::string(owner)}, std::move(done));
}

void LockApi::KeepAlive(std::string_view store_name,
                        std::string_view resource,
                        std::string_view owner,
                        int32_t expire_seconds,
                        std::function<void(absl::StatusOr<LockStatus>)> done) {
  absl::StatusOr<const Store*> store = Resolve(store_name, resource, owner, expire_seconds);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  (*store)->component->KeepAlive(
      lock::KeepAliveRequest{(*store)->prefix.Apply(resource), std::string(owner), expire_seconds},
      std::move(done));
}

}  // namespace ottava::runtime::api
