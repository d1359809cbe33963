#include "components/config_store/in_memory/in_memory_config_store.h"
#include "components/config_store/redis/redis_config_store.h"
#include "components/lock/in_memory/in_memory_lock.h"
#include "components/lock/redis/redis_lock.h"
#include "components/pubsub/in_memory/in_memory_pubsub.h"
#include "components/pubsub/kafka/kafka_pubsub.h"
#include "components/pubsub/redis/redis_pubsub.h"
#include "components/registry.h"
#include "components/sequencer/in_memory/in_memory_sequencer.h"
#include "components/sequencer/redis/redis_sequencer.h"
#include "components/state/in_memory/in_memory_state.h"
#include "components/state/redis/redis_state.h"

namespace ottava::components {

// One line per implementation (STYLE.md, "Principles" 4).
void RegisterBuiltins(Registry& registry) {
  registry.Add(std::make_unique<state::InMemoryStateFactory>());
  registry.Add(std::make_unique<state::RedisStateFactory>());
  registry.Add(std::make_unique<lock::InMemoryLockFactory>());
  registry.Add(std::make_unique<lock::RedisLockFactory>());
  registry.Add(std::make_unique<sequencer::InMemorySequencerFactory>());
  registry.Add(std::make_unique<sequencer::RedisSequencerFactory>());
  registry.Add(std::make_unique<config_store::InMemoryConfigStoreFactory>());
  registry.Add(std::make_unique<config_store::RedisConfigStoreFactory>());
  registry.Add(std::make_unique<pubsub::InMemoryPubSubFactory>());
  registry.Add(std::make_unique<pubsub::RedisPubSubFactory>());
  registry.Add(std::make_unique<pubsub::KafkaPubSubFactory>());
}

}  // namespace ottava::components
