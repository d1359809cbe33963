#pragma once

// What every component shares: its identity, its context and its health.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ottava {
class Dispatcher;
namespace stats {
class Store;
}
}  // namespace ottava

namespace ottava::components {

/// Component metadata: string values, as in Layotto and Dapr.
using Metadata = std::map<std::string, std::string>;

/// The building blocks, named as in Layotto's configuration.
enum class Kind { kState, kLock, kSequencer, kConfigStore, kPubSub };

/// "state", "lock", "sequencer", "config_store", "pub_subs".
std::string_view KindName(Kind kind);

enum class HealthState { kInit, kUp, kDown };

/// "INIT", "UP", "DOWN".
std::string_view HealthStateName(HealthState state);

/// The health of one component instance. Written by the component from any of its threads, read by
/// the actuator at any time.
class HealthIndicator {
 public:
  void Set(HealthState state, std::string reason = "") {
    absl::MutexLock lock(&mu_);
    state_.store(state, std::memory_order_release);
    reason_ = std::move(reason);
  }
  HealthState state() const { return state_.load(std::memory_order_acquire); }
  std::string reason() const {
    absl::MutexLock lock(&mu_);
    return reason_;
  }

 private:
  std::atomic<HealthState> state_{HealthState::kInit};
  mutable absl::Mutex mu_;
  std::string reason_ ABSL_GUARDED_BY(mu_);
};

/// Everything a factory may use to build a component. Pointers are owned by the runtime and outlive
/// the component.
struct ComponentContext {
  Kind kind = Kind::kState;
  std::string name;    // instance name from the config ("main")
  std::string type;    // factory type ("in-memory", "redis")
  Metadata metadata;   // the config's metadata
  std::string app_id;  // the application's id
  HealthIndicator* health = nullptr;
  Dispatcher* dispatcher = nullptr;  // the shared component event loop (timers, deliveries)
  stats::Store* stats = nullptr;

  /// "state/main": how error messages and logs name the instance.
  std::string Label() const { return std::string(KindName(kind)) + "/" + name; }
};

/// Lifecycle of every component.
class Component {
 public:
  virtual ~Component() = default;
  /// Connects to the backend and prepares. Called once on the main thread before any request; may
  /// block, bounded by the component's own timeouts. Reports health through the context.
  virtual absl::Status Init() = 0;
  /// Stops background work. Called once on the main thread after the API stopped serving; after it
  /// returns no callback of this component runs.
  virtual void Shutdown() {}
};

/// Builds one type of component of kind T.
template <class T>
class Factory {
 public:
  virtual ~Factory() = default;
  /// The `type` this factory answers to in the config ("in-memory").
  virtual std::string_view type() const = 0;
  /// Parses the metadata and builds an instance; errors name the metadata key. Main thread.
  virtual absl::StatusOr<std::unique_ptr<T>> Create(const ComponentContext& context) const = 0;
};

}  // namespace ottava::components
