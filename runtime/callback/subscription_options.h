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

/// Dapr's bulk subscribe: the subscriber gathers up to `max_messages_count` events (or what came
/// within `max_await_duration_ms` of the first) and hands them to the app in one call. A count or
/// duration of 0 takes Dapr's default.
struct BulkSubscribe {
  static constexpr int64_t kDefaultMaxMessages = 100;
  static constexpr int64_t kDefaultMaxAwaitMs = 1000;
  static constexpr int64_t kMaxMessagesLimit = 10000;
  static constexpr int64_t kMaxAwaitLimitMs = 600000;

  bool enabled = false;
  int64_t max_messages_count = 0;
  int64_t max_await_duration_ms = 0;

  int64_t MaxMessages() const {
    return max_messages_count > 0 ? max_messages_count : kDefaultMaxMessages;
  }
  int64_t MaxAwaitMs() const {
    return max_await_duration_ms > 0 ? max_await_duration_ms : kDefaultMaxAwaitMs;
  }
  /// INVALID_ARGUMENT when a value is negative or over its limit (10000 messages, 600000 ms),
  /// naming `count_name` or `await_name`, the field as the caller spells it.
  absl::Status Validate(const std::string& count_name, const std::string& await_name) const;
};

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
  /// Batched delivery (DeliverBulk) when enabled; each entry's verdict is applied on its own.
  BulkSubscribe bulk;

  /// Reads the options from subscription metadata: "maxRetries" (an integer >= -1),
  /// "concurrency" (an integer >= 1), "deadLetterTopic" and "consumerID". Every key, these
  /// included, stays in `metadata` for the component. A value that is not a whole number in range
  /// ("abc", "3x", "") is INVALID_ARGUMENT naming the key; so are an empty pubsub name or topic.
  static absl::StatusOr<SubscriptionOptions> FromMetadata(std::string pubsub_name,
                                                          std::string topic,
                                                          components::Metadata metadata);
};

}  // namespace ottava::runtime::callback
