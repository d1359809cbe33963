#pragma once

// The "redis" pub/sub: Redis Streams with consumer groups, at-least-once. The stream layout is
// Dapr's (pubsub.redis), so either runtime can read what the other published.
//
// Layout:
// - A topic is a stream. Publish runs `XADD topic [MAXLEN ~ n] * data <payload>` plus the fields
//   `contentType` and `metadata` (a JSON object of strings) when the request has them; `done` runs
//   once Redis has replied to the XADD.
// - A subscription reads through the consumer group `consumerID` (metadata), or else the request's
//   consumer_group (the runtime sets the app id): groups share nothing, consumers of one group
//   share the work.
// - New groups start at `0`, as in Dapr: a group created after messages were published still gets
//   every entry the stream holds (bounded by maxLenApprox). Starting at `$` would drop whatever was
//   published between the publisher's start and the subscriber's first Subscribe, and would make
//   "no message published after Subscribe returned is missed" depend on the group being created
//   before Subscribe returns, which would mean blocking in Subscribe.
//
// Consumers and recovery:
// - The consumer name is `consumerName` (metadata) or `<host>-<pid>-<random>`: a restarted sidecar
//   is a new consumer. A second subscription of this component to the same topic and group gets
//   `<name>-<subscription id>`, because a consumer's pending list must belong to one subscription.
// - A subscription first re-reads its own pending entries (`XREADGROUP ... 0`: what an earlier
//   subscription with the same consumer name left un-acked), then blocks on new ones
//   (`XREADGROUP ... BLOCK 1000 ... >`) on its own connection, so blocking reads never delay other
//   commands. It keeps at most `queueDepth` read-but-not-handed-out entries and at most the
//   request's max_in_flight handed-out-but-not-acked ones; entries go out in stream order, so
//   max_in_flight = 1 keeps the publish order (entries reclaimed from a dead consumer excepted).
// - Every `redeliverInterval` it runs `XAUTOCLAIM` for entries idle longer than
//   `processingTimeout` (a dead consumer's), and delivers them. Entries this consumer still holds
//   are touched (XCLAIM JUSTID, only while still ours) every processingTimeout / 3, so a live but
//   slow consumer (the runtime retrying an app with backoff) does not lose them to its peers.
//   processingTimeout = 0 disables both; redeliverInterval = 0 disables reclaiming only.
// - An ack is an `XACK` once the runtime acked; an XACK that fails is retried until Redis takes
//   it. Acks of a removed subscription are still honoured.
// - Unsubscribe forgets the subscription's queued and in-flight entries: they stay pending under
//   its consumer name, to be re-read by the next subscription with that name or reclaimed by a
//   peer after processingTimeout.
// - Entries trimmed by MAXLEN while pending cannot be delivered: they are acked, logged and
//   counted (ottava_pubsub_redis_trimmed_pending_total).
// - While Redis is unreachable publishes fail with UNAVAILABLE, reads retry with backoff (50 ms
//   doubling to 1 s) and resume by themselves, and health is DOWN (the command connection's).
//
// Metadata: the redis client's keys (redisHost, redisPassword, redisDB, dialTimeout, timeout,
// poolSize) and consumerID, consumerName, processingTimeout (default 60s), redeliverInterval
// (default 15s), maxLenApprox (default 0 = no trimming), queueDepth (default 100). Other keys are
// ignored (Dapr's `concurrency` is the subscription's max_in_flight here).
//
// Threading: all subscription state belongs to the context's dispatcher thread. Handlers run
// there, never inline in Publish or Subscribe. An ack may be called from any thread. Subscribe
// never blocks: the subscription's reading connection is dialled by a helper thread of the
// component. Unsubscribe from another thread waits for the loop, so when it returns no handler
// call is running or will start; from the loop thread (inside a handler) it acts at once.
// Init and Shutdown are called on the main thread while the dispatcher runs.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "components/common/redis/redis_client.h"
#include "components/pubsub/pubsub.h"

namespace ottava::components::pubsub {

struct RedisPubSubSettings {
  redis::ClientSettings client;
  std::string consumer_id;    // the group for every subscription; empty = the request's group
  std::string consumer_name;  // empty = unique per process
  std::chrono::milliseconds processing_timeout{60000};
  std::chrono::milliseconds redeliver_interval{15000};
  // Consumers idle this long with nothing pending are removed from their group; 0 = never.
  std::chrono::milliseconds idle_consumer_ttl{3600000};
  int64_t max_len_approx = 0;  // 0 = no trimming
  uint32_t queue_depth = 100;

  /// Reads the metadata; errors name the metadata key.
  static absl::StatusOr<RedisPubSubSettings> Parse(const Metadata& metadata);
  /// As Parse, through `reader`, which then knows which keys were read.
  static absl::StatusOr<RedisPubSubSettings> Read(MetadataReader& reader);
};

class RedisPubSub : public PubSub {
 public:
  /// `context.dispatcher` must not be null.
  RedisPubSub(const ComponentContext& context, RedisPubSubSettings settings);
  ~RedisPubSub() override;

  /// Connects the command connection; fails with UNAVAILABLE if Redis does not answer within
  /// dialTimeout (the client keeps retrying in the background). Main thread.
  absl::Status Init() override;
  /// Closes every connection; un-acked entries stay pending in their groups. Main thread.
  void Shutdown() override;

  void Publish(PublishRequest request, DoneCallback done) override;
  absl::StatusOr<uint64_t> Subscribe(SubscribeRequest request, MessageHandler handler) override;
  void Unsubscribe(uint64_t subscription_id) override;

  /// The consumer name this instance reads as (before any per-subscription suffix).
  const std::string& consumer_name() const { return settings_.consumer_name; }

 private:
  // Subscription state, owned by the loop thread (defined in the .cc). Shared with posted
  // closures and client callbacks, which hold it weakly.
  struct Core;
  // The helper thread that dials subscriptions' reading connections.
  class Connector;

  void RunOnLoopAndWait(std::function<void(Core&)> fn);

  const std::string label_;
  RedisPubSubSettings settings_;
  HealthIndicator* const health_;
  Dispatcher& dispatcher_;
  std::shared_ptr<Core> core_;
  std::unique_ptr<Connector> connector_;
  std::atomic<uint64_t> next_subscription_id_{1};
  std::atomic<bool> initialized_{false};
  std::atomic<bool> shut_down_{false};
};

class RedisPubSubFactory : public PubSubFactory {
 public:
  std::string_view type() const override { return "redis"; }
  absl::StatusOr<std::unique_ptr<PubSub>> Create(const ComponentContext& context) const override;
};

}  // namespace ottava::components::pubsub
