#include "runtime/component_set.h"

#include "common/logging.h"
#include "common/status.h"

namespace ottava::runtime {
namespace {

template <class T>
absl::Status Build(const config::ComponentConfig& config,
                   const components::Factory<T>* factory,
                   const components::Registry& registry,
                   const components::ComponentContext& base,
                   components::HealthIndicator* health,
                   std::vector<Instance<T>>* out) {
  if (factory == nullptr) {
    std::string known;
    for (const auto& type : registry.Types(config.kind)) {
      known += (known.empty() ? "" : ", ") + type;
    }
    return absl::InvalidArgumentError(config.pointer + "/type: unknown " +
                                      std::string(components::KindName(config.kind)) + " type '" +
                                      config.type + "' (known: " + known + ")");
  }
  components::ComponentContext context = base;
  context.kind = config.kind;
  context.name = config.name;
  context.type = config.type;
  context.metadata = config.metadata;
  context.health = health;
  absl::StatusOr<std::unique_ptr<T>> component = factory->Create(context);
  if (!component.ok()) {
    // Factories usually name the component themselves; do not say it twice.
    std::string message(component.status().message());
    if (message.rfind(context.Label() + ":", 0) != 0) {
      message = context.Label() + ": " + message;
    }
    return absl::InvalidArgumentError(config.pointer + "/metadata: " + message);
  }
  out->push_back(Instance<T>{&config, std::move(*component), health});
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ComponentSet>> ComponentSet::Create(
    const config::Bootstrap& bootstrap,
    const components::Registry& registry,
    Dispatcher* dispatcher,
    stats::Store* stats) {
  std::unique_ptr<ComponentSet> set(new ComponentSet());
  components::ComponentContext base;
  base.app_id = bootstrap.app.id;
  base.dispatcher = dispatcher;
  base.stats = stats;

  using components::Kind;
  for (Kind kind :
       {Kind::kState, Kind::kLock, Kind::kSequencer, Kind::kConfigStore, Kind::kPubSub}) {
    for (const auto& config : bootstrap.components) {
      if (config.kind != kind) {
        continue;
      }
      set->health_.push_back(std::make_unique<components::HealthIndicator>());
      components::HealthIndicator* health = set->health_.back().get();
      components::Component* component = nullptr;
      switch (kind) {
        case Kind::kState:
          OTTAVA_RETURN_IF_ERROR(Build(config, registry.FindState(config.type), registry, base,
                                       health, &set->states_));
          component = set->states_.back().component.get();
          break;
        case Kind::kLock:
          OTTAVA_RETURN_IF_ERROR(
              Build(config, registry.FindLock(config.type), registry, base, health, &set->locks_));
          component = set->locks_.back().component.get();
          break;
        case Kind::kSequencer:
          OTTAVA_RETURN_IF_ERROR(Build(config, registry.FindSequencer(config.type), registry, base,
                                       health, &set->sequencers_));
          component = set->sequencers_.back().component.get();
          break;
        case Kind::kConfigStore:
          OTTAVA_RETURN_IF_ERROR(Build(config, registry.FindConfigStore(config.type), registry,
                                       base, health, &set->config_stores_));
          component = set->config_stores_.back().component.get();
          break;
        case Kind::kPubSub:
          OTTAVA_RETURN_IF_ERROR(Build(config, registry.FindPubSub(config.type), registry, base,
                                       health, &set->pubsubs_));
          component = set->pubsubs_.back().component.get();
          break;
      }
      set->order_.emplace_back(component, Summary{&config, health});
    }
  }
  return set;
}

absl::Status ComponentSet::InitAll() {
  for (; initialised_ < order_.size(); ++initialised_) {
    auto& [component, summary] = order_[initialised_];
    const std::string label =
        std::string(components::KindName(summary.config->kind)) + "/" + summary.config->name;
    absl::Status status = component->Init();
    if (status.ok()) {
      // A component that reports its own health (a backend connection) may already say DOWN.
      if (summary.health->state() == components::HealthState::kInit) {
        summary.health->Set(components::HealthState::kUp);
      }
      OTTAVA_LOG(Runtime, info, "component {} ({}) initialised", label, summary.config->type);
      continue;
    }
    summary.health->Set(components::HealthState::kDown, std::string(status.message()));
    if (summary.config->required) {
      return absl::Status(status.code(),
                          label + " (" + summary.config->type +
                              ") failed to initialise: " + std::string(status.message()));
    }
    OTTAVA_LOG(Runtime, warn, "optional component {} failed to initialise: {}", label,
               status.message());
  }
  return absl::OkStatus();
}

void ComponentSet::ShutdownAll() {
  size_t count = std::min(initialised_ + 1, order_.size());
  for (size_t i = count; i-- > 0;) {
    order_[i].first->Shutdown();
  }
  initialised_ = 0;
}

components::state::StateStore* ComponentSet::FindState(std::string_view name) const {
  return Find(states_, name);
}
components::lock::LockStore* ComponentSet::FindLock(std::string_view name) const {
  return Find(locks_, name);
}
components::sequencer::Sequencer* ComponentSet::FindSequencer(std::string_view name) const {
  return Find(sequencers_, name);
}
components::config_store::ConfigStore* ComponentSet::FindConfigStore(std::string_view name) const {
  return Find(config_stores_, name);
}
components::pubsub::PubSub* ComponentSet::FindPubSub(std::string_view name) const {
  return Find(pubsubs_, name);
}

std::vector<ComponentSet::Summary> ComponentSet::Summaries() const {
  std::vector<Summary> out;
  out.reserve(order_.size());
  for (const auto& [component, summary] : order_) {
    out.push_back(summary);
  }
  return out;
}

}  // namespace ottava::runtime
