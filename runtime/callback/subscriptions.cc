#include "runtime/callback/subscriptions.h"

#include "common/logging.h"

namespace ottava::runtime::callback {

SubscriptionManager::SubscriptionManager(const api::PubSubApi& pubsub,
                                         AppChannelPtr app,
                                         Dispatcher* dispatcher,
                                         stats::Store* stats,
                                         std::string app_id)
    : pubsub_(pubsub),
      app_(std::move(app)),
      dispatcher_(dispatcher),
      stats_(stats),
      app_id_(std::move(app_id)) {}

absl::Status SubscriptionManager::AddFromConfig(const config::SubscriptionConfig& config) {
  SubscriptionOptions options;
  options.pubsub_name = config.pubsub_name;
  options.topic = config.topic;
  options.dead_letter_topic = config.dead_letter_topic;
  options.max_retries = config.max_retries;
  options.concurrency = config.concurrency;
  options.retry_initial_ms = config.retry_initial_ms;
  options.retry_max_ms = config.retry_max_ms;
  options.metadata = config.metadata;
  for (const auto& rule : config.rules) {
    options.rules.push_back(RouteRule{rule.match, rule.path});
  }
  options.default_route = config.default_route;
  options.bulk.enabled = config.bulk.enabled;
  options.bulk.max_messages_count = config.bulk.max_messages_count;
  options.bulk.max_await_duration_ms = config.bulk.max_await_duration_ms;
  if (auto it = config.metadata.find("consumerID"); it != config.metadata.end()) {
    options.consumer_group = it->second;
  }
  return Add(std::move(options), "config");
}

absl::Status SubscriptionManager::Add(SubscriptionOptions options, const char* source) {
  if (!app_) {
    return absl::FailedPreconditionError("subscription to " + options.pubsub_name + "/" +
                                         options.topic + " needs app.callback to deliver to");
  }
  absl::StatusOr<components::pubsub::PubSub*> pubsub = pubsub_.Find(options.pubsub_name);
  if (!pubsub.ok()) {
    return pubsub.status();
  }
  absl::MutexLock lock(&mu_);
  if (stopped_) {
    return absl::CancelledError("shutting down");
  }
  for (const auto& entry : entries_) {
    if (entry.subscriber->options().pubsub_name == options.pubsub_name &&
        entry.subscriber->options().topic == options.topic) {
      // The same topic from the config file and the app: one delivery loop is enough.
      return absl::OkStatus();
    }
  }
  options.dead_letter_on_drop = app_->DaprSemantics();
  auto subscriber =
      Subscriber::Create(*pubsub, std::move(options), app_, dispatcher_, stats_, app_id_);
  if (absl::Status status = subscriber->Start(); !status.ok()) {
    return status;
  }
  entries_.push_back(Entry{std::move(subscriber), source});
  return absl::OkStatus();
}

void SubscriptionManager::DiscoverFromApp() {
  if (!app_) {
    return;
  }
  app_->ListSubscriptions([this](std::vector<AppSubscription> subscriptions) {
    for (auto& subscription : subscriptions) {
      const std::string name = subscription.pubsub_name + "/" + subscription.topic;
      absl::StatusOr<SubscriptionOptions> options = SubscriptionOptions::FromMetadata(
          subscription.pubsub_name, subscription.topic, std::move(subscription.metadata));
      if (options.ok()) {
        if (!subscription.dead_letter_topic.empty()) {
          options->dead_letter_topic = subscription.dead_letter_topic;
        }
        options->rules = std::move(subscription.rules);
        options->default_route = std::move(subscription.default_route);
        options->bulk = subscription.bulk;
        if (absl::Status status = options->bulk.Validate("bulkSubscribe.maxMessagesCount",
                                                         "bulkSubscribe.maxAwaitDurationMs");
            !status.ok()) {
          options = status;
        }
      }
      if (!options.ok()) {
        OTTAVA_LOG(Callback, error, "cannot subscribe to {} as the app asked: {}", name,
                   options.status().message());
        continue;
      }
      if (absl::Status status = Add(std::move(*options), "app"); !status.ok()) {
        OTTAVA_LOG(Callback, error, "cannot subscribe to {} as the app asked: {}", name,
                   status.message());
      }
    }
  });
}

void SubscriptionManager::StopAll() {
  std::vector<Entry> entries;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    entries.swap(entries_);
  }
  if (app_) {
    app_->Stop();
  }
  for (auto& entry : entries) {
    entry.subscriber->Stop();
  }
}

std::vector<api::SubscriptionInfo> SubscriptionManager::Describe() const {
  std::vector<api::SubscriptionInfo> out;
  absl::MutexLock lock(&mu_);
  for (const auto& entry : entries_) {
    const auto& options = entry.subscriber->options();
    out.push_back(api::SubscriptionInfo{
        options.pubsub_name, options.topic, entry.source, options.consumer_group,
        options.concurrency, options.max_retries, options.dead_letter_topic, options.metadata});
  }
  return out;
}

}  // namespace ottava::runtime::callback
