#pragma once

// The app's declarative subscriptions: those of the config file (started at boot) and those the
// app answers to ListTopicSubscriptions (started when it answers). Each becomes a Subscriber that
// delivers through the AppCallback client.
//
// Threading: Add* and StopAll on the main thread; the app's answer arrives on the dispatcher;
// Describe() from any thread.

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "runtime/api/metadata_api.h"
#include "runtime/api/pubsub_api.h"
#include "runtime/callback/app_channel.h"
#include "runtime/callback/subscriber.h"
#include "runtime/config/bootstrap.h"

namespace ottava::runtime::callback {

class SubscriptionManager {
 public:
  SubscriptionManager(const api::PubSubApi& pubsub,
                      AppChannelPtr app,
                      Dispatcher* dispatcher,
                      stats::Store* stats,
                      std::string app_id);
  ~SubscriptionManager() { StopAll(); }

  /// Starts a subscription of the config file.
  absl::Status AddFromConfig(const config::SubscriptionConfig& config);
  /// Asks the app for its subscriptions (retried until it answers) and starts each new one.
  void DiscoverFromApp();
  /// Stops every subscription; un-acked messages stay with the broker.
  void StopAll();
  /// Every running subscription (source "config" or "app").
  std::vector<api::SubscriptionInfo> Describe() const;

 private:
  absl::Status Add(SubscriptionOptions options, const char* source);

  const api::PubSubApi& pubsub_;
  AppChannelPtr app_;
  Dispatcher* dispatcher_;
  stats::Store* stats_;
  const std::string app_id_;

  mutable absl::Mutex mu_;
  struct Entry {
    std::shared_ptr<Subscriber> subscriber;
    std::string source;
  };
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ottava::runtime::callback
