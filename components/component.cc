#include "components/component.h"

namespace ottava::components {

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kState:
      return "state";
    case Kind::kLock:
      return "lock";
    case Kind::kSequencer:
      return "sequencer";
    case Kind::kConfigStore:
      return "config_store";
    case Kind::kPubSub:
      return "pub_subs";
  }
  return "unknown";
}

std::string_view HealthStateName(HealthState state) {
  switch (state) {
    case HealthState::kInit:
      return "INIT";
    case HealthState::kUp:
      return "UP";
    case HealthState::kDown:
      return "DOWN";
  }
  return "UNKNOWN";
}

}  // namespace ottava::components
