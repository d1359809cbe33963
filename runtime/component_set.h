#pragma once

// The component instances of one sidecar: built from the bootstrap by the registry's factories,
// initialised in a fixed order (state, lock, sequencer, config_store, pub_subs; by name within a
// kind, as JSON objects are read sorted), looked up by the API layer, shut down in reverse order.
//
// Threading: built and initialised on the main thread before the API serves; afterwards the set
// itself is immutable, so lookups from gRPC threads take no lock.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "components/registry.h"
#include "runtime/config/bootstrap.h"

namespace ottava::runtime {

/// One configured instance of kind T.
template <class T>
struct Instance {
  const config::ComponentConfig* config = nullptr;
  std::unique_ptr<T> component;
  components::HealthIndicator* health = nullptr;
};

/// A failure to build or initialise a component.
struct ComponentError {
  enum class Phase { kConfig, kInit };
  Phase phase;
  absl::Status status;  // the message names kind/name (and the JSON pointer for kConfig)
};

class ComponentSet {
 public:
  /// Builds every component of `bootstrap` (which must outlive the set). A bad type or bad
  /// metadata is a kConfig error; nothing is initialised yet.
  static absl::StatusOr<std::unique_ptr<ComponentSet>> Create(const config::Bootstrap& bootstrap,
                                                              const components::Registry& registry,
                                                              Dispatcher* dispatcher,
                                                              stats::Store* stats);

  /// Initialises every component in order. A required component that fails stops the sequence
  /// and is returned; an optional one is marked DOWN and the rest go on.
  absl::Status InitAll();
  /// Shuts down in reverse order of initialisation.
  void ShutdownAll();

  /// The instance named `name`, or nullptr.
  components::state::StateStore* FindState(std::string_view name) const;
  components::lock::LockStore* FindLock(std::string_view name) const;
  components::sequencer::Sequencer* FindSequencer(std::string_view name) const;
  components::config_store::ConfigStore* FindConfigStore(std::string_view name) const;
  components::pubsub::PubSub* FindPubSub(std::string_view name) const;

  const std::vector<Instance<components::state::StateStore>>& states() const { return states_; }
  const std::vector<Instance<components::lock::LockStore>>& locks() const { return locks_; }
  const std::vector<Instance<components::sequencer::Sequencer>>& sequencers() const {
    return sequencers_;
  }
  const std::vector<Instance<components::config_store::ConfigStore>>& config_stores() const {
    return config_stores_;
  }
  const std::vector<Instance<components::pubsub::PubSub>>& pubsubs() const { return pubsubs_; }

  /// Every instance's identity and health, in initialisation order.
  struct Summary {
    const config::ComponentConfig* config;
    components::HealthIndicator* health;
  };
  std::vector<Summary> Summaries() const;

 private:
  ComponentSet() = default;

  template <class T>
  static T* Find(const std::vector<Instance<T>>& list, std::string_view name) {
    for (const auto& instance : list) {
      if (instance.config->name == name) {
        return instance.component.get();
      }
    }
    return nullptr;
  }

  std::vector<std::unique_ptr<components::HealthIndicator>> health_;
  std::vector<Instance<components::state::StateStore>> states_;
  std::vector<Instance<components::lock::LockStore>> locks_;
  std::vector<Instance<components::sequencer::Sequencer>> sequencers_;
  std::vector<Instance<components::config_store::ConfigStore>> config_stores_;
  std::vector<Instance<components::pubsub::PubSub>> pubsubs_;
  // Initialisation order, for InitAll and the reverse ShutdownAll.
  std::vector<std::pair<components::Component*, Summary>> order_;
  size_t initialised_ = 0;
};

}  // namespace ottava::runtime
