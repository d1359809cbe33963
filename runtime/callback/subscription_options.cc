#include "runtime/callback/subscription_options.h"

#include <charconv>

namespace ottava::runtime::callback {
namespace {

// Reads `key` as a whole number in [min, max] when present; the whole value must be the number.
absl::Status ReadInt(
    const components::Metadata& metadata, const char* key, int64_t min, int64_t max, int64_t* out) {
  auto it = metadata.find(key);
  if (it == metadata.end()) {
    return absl::OkStatus();
  }
  const std::string& text = it->second;
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    return absl::InvalidArgumentError("subscription metadata " + std::string(key) + "=\"" + text +
                                      "\": expected a whole number from " + std::to_string(min) +
                                      " to " + std::to_string(max));
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status CheckRange(int64_t value, int64_t max, const std::string& name) {
  if (value < 0 || value > max) {
    return absl::InvalidArgumentError(name + "=" + std::to_string(value) +
                                      ": expected a whole number from 0 (the default) to " +
                                      std::to_string(max));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status BulkSubscribe::Validate(const std::string& count_name,
                                     const std::string& await_name) const {
  if (absl::Status status = CheckRange(max_messages_count, kMaxMessagesLimit, count_name);
      !status.ok()) {
    return status;
  }
  return CheckRange(max_await_duration_ms, kMaxAwaitLimitMs, await_name);
}

absl::StatusOr<SubscriptionOptions> SubscriptionOptions::FromMetadata(
    std::string pubsub_name, std::string topic, components::Metadata metadata) {
  if (pubsub_name.empty()) {
    return absl::InvalidArgumentError("subscription: pubsub name is empty");
  }
  if (topic.empty()) {
    return absl::InvalidArgumentError("subscription to " + pubsub_name + ": topic is empty");
  }
  SubscriptionOptions options;
  options.pubsub_name = std::move(pubsub_name);
  options.topic = std::move(topic);
  if (absl::Status status = ReadInt(metadata, "maxRetries", -1, INT32_MAX, &options.max_retries);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = ReadInt(metadata, "concurrency", 1, 1024, &options.concurrency);
      !status.ok()) {
    return status;
  }
  if (auto it = metadata.find("deadLetterTopic"); it != metadata.end()) {
    options.dead_letter_topic = it->second;
  }
  if (auto it = metadata.find("consumerID"); it != metadata.end()) {
    options.consumer_group = it->second;
  }
  options.metadata = std::move(metadata);
  return options;
}

}  // namespace ottava::runtime::callback
