#include "components/registry.h"

namespace ottava::components {

std::vector<std::string> Registry::Types(Kind kind) const {
  switch (kind) {
    case Kind::kState:
      return Keys(state_);
    case Kind::kLock:
      return Keys(lock_);
    case Kind::kSequencer:
      return Keys(sequencer_);
    case Kind::kConfigStore:
      return Keys(config_store_);
    case Kind::kPubSub:
      return Keys(pubsub_);
  }
  return {};
}

}  // namespace ottava::components
