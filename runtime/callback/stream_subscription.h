#pragma once

// A subscription whose events go to a client stream (Layotto's SubscribeTopicEvents, Dapr's
// SubscribeTopicEventsAlpha1) instead of the app's callback: the delivery loop of Subscriber plus
// the routing of the client's verdicts back to the waiting deliveries by event id. The front end
// only converts: events to its wire form (`send`), the client's acknowledgements to Outcome.
//
// Threading: Start() and OnProcessed() from any gRPC thread; `send` runs on the component
// dispatcher, under the subscription's lock (it must only queue the message). After Stop()
// returns, `send` is never called again.

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/synchronization/mutex.h"
#include "runtime/api/pubsub_api.h"
#include "runtime/callback/subscriber.h"

namespace ottava::runtime::callback {

class StreamSubscription {
 public:
  using Send = std::function<void(const Event& event)>;

  /// Subscribes `options` (the pub/sub must exist, see PubSubApi::Find) and starts delivering to
  /// `send`. Errors: the lookup error of the pub/sub, or the component's subscribe error.
  static absl::StatusOr<std::unique_ptr<StreamSubscription>> Start(const api::PubSubApi& pubsub,
                                                                   SubscriptionOptions options,
                                                                   Send send,
                                                                   Dispatcher* dispatcher,
                                                                   stats::Store* stats,
                                                                   const std::string& app_id);
  /// Start() on a component already looked up.
  static absl::StatusOr<std::unique_ptr<StreamSubscription>> StartOn(
      components::pubsub::PubSub* pubsub,
      SubscriptionOptions options,
      Send send,
      Dispatcher* dispatcher,
      stats::Store* stats,
      const std::string& app_id);
  /// Stop()s.
  ~StreamSubscription();

  /// The client's verdict on event `id`. An unknown id (already answered, or never sent) is
  /// ignored and returns false.
  bool OnProcessed(const std::string& id, Outcome outcome);

  /// Unsubscribes and fails every delivery still waiting for a verdict (kRetry, so the broker
  /// redelivers). Idempotent.
  void Stop();

 private:
  class Sink;

  StreamSubscription(std::shared_ptr<Sink> sink, std::shared_ptr<Subscriber> subscriber)
      : sink_(std::move(sink)), subscriber_(std::move(subscriber)) {}

  std::shared_ptr<Sink> sink_;
  std::shared_ptr<Subscriber> subscriber_;
};

}  // namespace ottava::runtime::callback
