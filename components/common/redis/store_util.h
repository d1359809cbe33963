#pragma once

// Small pieces shared by the Redis state and lock stores: mapping a Redis error reply to a status
// and the factories' parse-then-create step.
//
// Header-only so that each Redis component library can use it without a library of its own.

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "components/component.h"

namespace ottava::components::redis {

/// The status for the Redis error reply `error`; `message` describes it. WRONGTYPE gives
/// `wrong_type` (its message names the type the caller expected); OOM RESOURCE_EXHAUSTED; the
/// transient READONLY, LOADING, BUSY, MASTERDOWN and NOSCRIPT UNAVAILABLE; anything else INTERNAL.
inline absl::Status ReplyErrorStatus(std::string_view error,
                                     const std::string& message,
                                     absl::Status wrong_type) {
  if (error.starts_with("WRONGTYPE")) {
    return wrong_type;
  }
  if (error.starts_with("OOM")) {
    return absl::ResourceExhaustedError(message);
  }
  if (error.starts_with("READONLY") || error.starts_with("LOADING") || error.starts_with("BUSY") ||
      error.starts_with("MASTERDOWN") || error.starts_with("NOSCRIPT")) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

/// A factory's Create: parses `Settings` from the context's metadata (a bad value is
/// INVALID_ARGUMENT naming the component) and creates the `Store` as its `Interface`.
template <class Interface, class Store, class Settings>
absl::StatusOr<std::unique_ptr<Interface>> CreateStore(const ComponentContext& context) {
  absl::StatusOr<Settings> settings = Settings::Parse(context.metadata);
  if (!settings.ok()) {
    return absl::InvalidArgumentError(context.Label() + ": " +
                                      std::string(settings.status().message()));
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Create(context, std::move(*settings));
  if (!store.ok()) {
    return store.status();
  }
  return std::unique_ptr<Interface>(std::move(*store));
}

}  // namespace ottava::components::redis
