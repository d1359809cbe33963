#pragma once

// Helpers every API core shares: component lookup errors, key validation and prefixes, and a
// join for fanned-out component calls.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "components/component.h"

namespace ottava::runtime::api {

/// FAILED_PRECONDITION: no component of this kind is configured.
absl::Status NoComponentError(components::Kind kind);
/// INVALID_ARGUMENT: the request names a component that does not exist (or names none).
absl::Status UnknownComponentError(components::Kind kind, std::string_view name);

/// What a lookup error says, for front ends whose error codes tell the cases apart (Dapr's
/// ERR_STATE_STORE_NOT_FOUND, ...). Read from a payload the two functions above attach.
enum class LookupFailure { kNone, kNotConfigured, kNotFound };
LookupFailure LookupFailureOf(const absl::Status& status);

/// Rejects an empty key and a key containing "||" (the prefix separator). `what` names the field.
absl::Status ValidateKey(std::string_view key, std::string_view what);

/// How a component's keys are namespaced (metadata `keyPrefix`):
///   appid (the default) -> "<app-id>||<key>", name -> "<component>||<key>", none -> "<key>",
///   any other value -> "<value>||<key>". Locks and sequencers put "lock||" or "sequencer||" first.
class KeyPrefix {
 public:
  KeyPrefix() = default;
  /// `block` is "" for state, "lock" or "sequencer".
  static KeyPrefix Create(const components::Metadata& metadata,
                          std::string_view app_id,
                          std::string_view component_name,
                          std::string_view block);

  std::string Apply(std::string_view key) const {
    std::string out;
    out.reserve(prefix_.size() + key.size());
    out.append(prefix_).append(key);
    return out;
  }
  /// Removes the prefix from a stored key (keys the store returns).
  std::string_view Strip(std::string_view stored) const {
    if (stored.substr(0, prefix_.size()) == prefix_) {
      stored.remove_prefix(prefix_.size());
    }
    return stored;
  }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
};

/// The entry of `stores` (anything with a `name` member) named `name`, or the error for no
/// components of `kind` / an unknown name.
template <class Store>
absl::StatusOr<const Store*> FindByName(const std::vector<Store>& stores,
                                        components::Kind kind,
                                        std::string_view name) {
  if (stores.empty()) {
    return NoComponentError(kind);
  }
  for (const auto& store : stores) {
    if (store.name == name) {
      return &store;
    }
  }
  return UnknownComponentError(kind, name);
}

/// FindByName, then ValidateKey(key, what): the store a one-key request goes to.
template <class Store>
absl::StatusOr<const Store*> FindForKey(const std::vector<Store>& stores,
                                        components::Kind kind,
                                        std::string_view name,
                                        std::string_view key,
                                        std::string_view what) {
  absl::StatusOr<const Store*> found = FindByName(stores, kind, name);
  if (!found.ok()) {
    return found.status();
  }
  if (absl::Status status = ValidateKey(key, what); !status.ok()) {
    return status;
  }
  return found;
}

/// Joins N asynchronous completions: `done` runs once, after the last, with the first error.
class Join {
 public:
  static std::shared_ptr<Join> Create(size_t count, std::function<void(absl::Status)> done);

  /// Records one completion; any thread.
  void Complete(const absl::Status& status);

 private:
  Join(size_t count, std::function<void(absl::Status)> done)
      : remaining_(count), done_(std::move(done)) {}

  std::atomic<size_t> remaining_;
  std::function<void(absl::Status)> done_;
  absl::Mutex mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ottava::runtime::api
