#pragma once

// What the sidecar says about itself: app id, version, components, subscriptions and the
// attributes set at run time. One description for every front end: the actuator's /actuator/info,
// Dapr's GetMetadata (gRPC) and GET /v1.0/metadata (HTTP).
//
// Threading: Describe() and Set() from any thread; the subscription source is set on the main
// thread before the front ends serve.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "components/registry.h"
#include "runtime/component_set.h"

namespace ottava::runtime::api {

struct ComponentInfo {
  components::Kind kind;
  std::string name;
  std::string type;  // ours: "in-memory", "redis" ...
  bool required = true;
  components::HealthState health = components::HealthState::kInit;
  std::vector<std::string> capabilities;  // Dapr's names: ETAG, TRANSACTIONAL, TTL
};

struct SubscriptionInfo {
  std::string pubsub_name;
  std::string topic;
  std::string source;  // "config" (declared in the config file) or "app" (the app asked)
  std::string consumer_group;
  int64_t concurrency = 1;
  int64_t max_retries = -1;
  std::string dead_letter_topic;
  components::Metadata metadata;
};

struct RuntimeInfo {
  std::string app_id;
  std::string version;
  std::vector<ComponentInfo> components;
  std::map<std::string, std::vector<std::string>> available_types;  // kind name -> types
  std::vector<SubscriptionInfo> subscriptions;
  std::map<std::string, std::string> attributes;  // set with Set()
};

class MetadataApi {
 public:
  /// `components` and `registry` must outlive the API.
  MetadataApi(const ComponentSet& components,
              const components::Registry& registry,
              std::string app_id);

  /// Where the subscriptions come from (the subscription manager); unset: none.
  void SetSubscriptionSource(std::function<std::vector<SubscriptionInfo>()> source);

  RuntimeInfo Describe() const;
  /// Sets a run-time attribute (Dapr's SetMetadata); an empty key is INVALID_ARGUMENT.
  absl::Status Set(const std::string& key, const std::string& value);

  const std::string& app_id() const { return app_id_; }

 private:
  const ComponentSet& components_;
  const components::Registry& registry_;
  const std::string app_id_;
  mutable absl::Mutex mu_;
  std::function<std::vector<SubscriptionInfo>()> subscriptions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> attributes_ ABSL_GUARDED_BY(mu_);
};

/// The body of /actuator/info.
nlohmann::json ToInfoJson(const RuntimeInfo& info);

/// Dapr's name of a component's type: "<block>.<type>", e.g. "state.in-memory", "pubsub.redis",
/// "configuration.redis", "lock.redis" (sequencers, which Dapr lacks, become "sequencer.<type>").
std::string DaprComponentType(components::Kind kind, std::string_view type);

}  // namespace ottava::runtime::api
