#pragma once

// The component registry: which factory builds each (kind, type). An object passed in, never a
// global; filled once at startup by RegisterBuiltins() (builtin.cc), one line per implementation.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "components/component.h"
#include "components/config_store/config_store.h"
#include "components/lock/lock.h"
#include "components/pubsub/pubsub.h"
#include "components/sequencer/sequencer.h"
#include "components/state/state.h"

namespace ottava::components {

class Registry {
 public:
  void Add(std::unique_ptr<state::StateFactory> factory) { Put(state_, std::move(factory)); }
  void Add(std::unique_ptr<lock::LockFactory> factory) { Put(lock_, std::move(factory)); }
  void Add(std::unique_ptr<sequencer::SequencerFactory> factory) {
    Put(sequencer_, std::move(factory));
  }
  void Add(std::unique_ptr<config_store::ConfigStoreFactory> factory) {
    Put(config_store_, std::move(factory));
  }
  void Add(std::unique_ptr<pubsub::PubSubFactory> factory) { Put(pubsub_, std::move(factory)); }

  const state::StateFactory* FindState(std::string_view type) const { return Find(state_, type); }
  const lock::LockFactory* FindLock(std::string_view type) const { return Find(lock_, type); }
  const sequencer::SequencerFactory* FindSequencer(std::string_view type) const {
    return Find(sequencer_, type);
  }
  const config_store::ConfigStoreFactory* FindConfigStore(std::string_view type) const {
    return Find(config_store_, type);
  }
  const pubsub::PubSubFactory* FindPubSub(std::string_view type) const {
    return Find(pubsub_, type);
  }

  /// The registered types of a kind, sorted (for error messages and /actuator/info).
  std::vector<std::string> Types(Kind kind) const;

 private:
  template <class T>
  using FactoryMap = std::map<std::string, std::unique_ptr<Factory<T>>, std::less<>>;

  template <class T>
  static void Put(FactoryMap<T>& map, std::unique_ptr<Factory<T>> factory) {
    std::string type(factory->type());
    map[type] = std::move(factory);
  }
  template <class T>
  static const Factory<T>* Find(const FactoryMap<T>& map, std::string_view type) {
    auto it = map.find(type);
    return it == map.end() ? nullptr : it->second.get();
  }
  template <class T>
  static std::vector<std::string> Keys(const FactoryMap<T>& map) {
    std::vector<std::string> keys;
    for (const auto& [type, factory] : map) {
      keys.push_back(type);
    }
    return keys;
  }

  FactoryMap<state::StateStore> state_;
  FactoryMap<lock::LockStore> lock_;
  FactoryMap<sequencer::Sequencer> sequencer_;
  FactoryMap<config_store::ConfigStore> config_store_;
  FactoryMap<pubsub::PubSub> pubsub_;
};

/// Registers every implementation Ottava ships (builtin.cc).
void RegisterBuiltins(Registry& registry);

}  // namespace ottava::components
