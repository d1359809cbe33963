#pragma once

// What one subscription asks of its delivery loop, and the one parser that reads it from the
// metadata a subscription carries (the app's ListTopicSubscriptions answer, a
// SubscribeTopicEvents initial request, a Dapr subscription).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "components/component.h"
#include "runtime/callback/route_match.h"

namespace ottava::runtime::callback {

struct SubscriptionOptions {
  std::string pubsub_name;
  std::string topic;
  std::string dead_letter_topic;  // empty: none
  int64_t max_retries = -1;       // -1: forever
  int64_t concurrency = 1;
  int64_t retry_initial_ms = 100;
  int64_t retry_max_ms = 30000;
  std::string consumer_group;  // empty: the app id
  components::Metadata metadata;
  /// Dapr's routing: the first rule whose match holds gives the event's path, else
  /// `default_route`. With rules but no match and no default the event is skipped (acked). No
  /// rules and no default: the path stays empty.
  std::vector<RouteRule> rules;
  std::string default_route;
  /// Dapr's DROP: the event moves to `dead_letter_topic` (when set) before it is acked. Layotto's
  /// DROP just acks.
  bool dead_letter_on_drop = false;

  /// Reads the options from subscription metadata: "maxRetries" (an integer >= -1),
  /// "concurrency" (an integer >= 1), "deadLetterTopic" and "consumerID". Every key, these
  /// included, stays in `metadata` for the component. A value that is not a whole number in range
  /// ("abc", "3x", "") is INVALID_ARGUMENT naming the key; so are an empty pubsub name or topic.
  static absl::StatusOr<SubscriptionOptions> FromMetadata(std::string pubsub_name,
                                                          std::string topic,
                                                          components::Metadata metadata);
};

}  // namespace ottava::runtime::callback
