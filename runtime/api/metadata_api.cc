#include "runtime/api/metadata_api.h"

#include "runtime/version.h"

namespace ottava::runtime::api {

MetadataApi::MetadataApi(const ComponentSet& components,
                         const components::Registry& registry,
                         std::string app_id)
    : components_(components), registry_(registry), app_id_(std::move(app_id)) {}

void MetadataApi::SetSubscriptionSource(std::function<std::vector<SubscriptionInfo>()> source) {
  absl::MutexLock lock(&mu_);
  subscriptions_ = std::move(source);
}

RuntimeInfo MetadataApi::Describe() const {
  RuntimeInfo info;
  info.app_id = app_id_;
  info.version = kVersion;
  for (const auto& summary : components_.Summaries()) {
    ComponentInfo component;
    component.kind = summary.config->kind;
    component.name = summary.config->name;
    component.type = summary.config->type;
    component.required = summary.config->required;
    component.health = summary.health->state();
    info.components.push_back(std::move(component));
  }
  // Capabilities are what the state stores say they support.
  for (const auto& instance : components_.states()) {
    for (auto& component : info.components) {
      if (component.kind == components::Kind::kState && component.name == instance.config->name) {
        const components::state::Features features = instance.component->features();
        if (features.etag) {
          component.capabilities.push_back("ETAG");
        }
        if (features.transactional) {
          component.capabilities.push_back("TRANSACTIONAL");
        }
        if (features.ttl) {
          component.capabilities.push_back("TTL");
        }
      }
    }
  }
  for (auto kind : {components::Kind::kState, components::Kind::kLock, components::Kind::kSequencer,
                    components::Kind::kConfigStore, components::Kind::kPubSub}) {
    info.available_types[std::string(components::KindName(kind))] = registry_.Types(kind);
  }
  std::function<std::vector<SubscriptionInfo>()> source;
  {
    absl::MutexLock lock(&mu_);
    source = subscriptions_;
    info.attributes = attributes_;
  }
  if (source) {
    info.subscriptions = source();
  }
  return info;
}

absl::Status MetadataApi::Set(const std::string& key, const std::string& value) {
  if (key.empty()) {
    return absl::InvalidArgumentError("metadata key is empty");
  }
  absl::MutexLock lock(&mu_);
  attributes_[key] = value;
  return absl::OkStatus();
}

nlohmann::json ToInfoJson(const RuntimeInfo& info) {
  nlohmann::json out;
  out["app"] = {{"name", "Ottava"},
                {"version", info.version},
                {"build", {{"commit", kGitCommit}, {"type", kBuildType}, {"compiled", kBuildDate}}},
                {"id", info.app_id}};
  nlohmann::json list = nlohmann::json::array();
  for (const auto& component : info.components) {
    list.push_back({{"kind", components::KindName(component.kind)},
                    {"name", component.name},
                    {"type", component.type},
                    {"required", component.required},
                    {"status", components::HealthStateName(component.health)}});
  }
  out["components"] = std::move(list);
  out["available_types"] = info.available_types;
  nlohmann::json subscriptions = nlohmann::json::array();
  for (const auto& s : info.subscriptions) {
    nlohmann::json item{{"pubsub_name", s.pubsub_name}, {"topic", s.topic},
                        {"source", s.source},           {"consumer_group", s.consumer_group},
                        {"concurrency", s.concurrency}, {"max_retries", s.max_retries}};
    if (!s.dead_letter_topic.empty()) {
      item["dead_letter_topic"] = s.dead_letter_topic;
    }
    subscriptions.push_back(std::move(item));
  }
  out["subscriptions"] = std::move(subscriptions);
  if (!info.attributes.empty()) {
    out["attributes"] = info.attributes;
  }
  return out;
}

std::string DaprComponentType(components::Kind kind, std::string_view type) {
  std::string block;
  switch (kind) {
    case components::Kind::kState:
      block = "state";
      break;
    case components::Kind::kLock:
      block = "lock";
      break;
    case components::Kind::kSequencer:
      block = "sequencer";
      break;
    case components::Kind::kConfigStore:
      block = "configuration";
      break;
    case components::Kind::kPubSub:
      block = "pubsub";
      break;
  }
  return block + "." + std::string(type);
}

}  // namespace ottava::runtime::api
