#pragma once

// The Pub/Sub publish path: validation, lookup and the CloudEvents envelope (metadata
// `rawPayload=true` sends the bytes as they are). Delivery lives in runtime/callback/.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "components/pubsub/pubsub.h"
#include "runtime/api/common.h"
#include "runtime/component_set.h"

namespace ottava::runtime::api {

class PubSubApi {
 public:
  PubSubApi(const ComponentSet& components, std::string app_id);

  struct PublishRequest {
    std::string pubsub_name;
    std::string topic;
    std::string data;
    std::string content_type;
    components::Metadata metadata;
  };

  /// Publishes; `done` runs once the broker acknowledged.
  void Publish(PublishRequest request, std::function<void(absl::Status)> done);

  /// The pub/sub component named `name`, or the lookup error.
  absl::StatusOr<components::pubsub::PubSub*> Find(std::string_view name) const;

 private:
  struct Entry {
    std::string name;
    components::pubsub::PubSub* component;
  };
  std::string app_id_;
  std::vector<Entry> entries_;
};

}  // namespace ottava::runtime::api
