#pragma once

// The "kafka" pub/sub on librdkafka, at-least-once (DESIGN.md §7, issue 11).
//
// Publish:
// - One idempotent producer per component (enable.idempotence=true, so acks=all, retries and
//   per-partition order). `done` runs from the delivery report, never on enqueue: OK once every
//   in-sync replica has the message; NOT_FOUND for a topic the cluster does not have;
//   RESOURCE_EXHAUSTED for a message over maxMessageBytes (checked before sending, and by the
//   broker); UNAVAILABLE when the cluster did not acknowledge within publishTimeout (brokers
//   unreachable) or the component shut down first.
// - The message key is metadata `partitionKey` (Dapr's name) or `key`; every metadata entry and
//   the content type (`contentType`) travel as Kafka headers.
//
// Subscribe:
// - Each subscription is one member of a consumer group (`consumerGroup` metadata, else the
//   request's group, which the runtime sets to the app id) with cooperative (incremental)
//   rebalancing. A group with no committed offset starts at `initialOffset`: `oldest` (default,
//   so nothing published before the first assignment is skipped) or `newest` (Dapr's default).
// - Offsets are stored (enable.auto.offset.store=false) only as the contiguous watermark of
//   app-acked messages per partition (OffsetTracker) and committed by librdkafka's background
//   committer, on revoke and on close. A message being retried holds its partition's watermark
//   back, so a crash at any moment redelivers it and nothing after it is lost.
// - At most the request's max_in_flight messages are handed out and not acked; 1 keeps the order
//   of each partition (and of the subscription). Messages fetched beyond that wait in a
//   per-partition queue; a partition whose queue holds `queueDepth` messages or `queueBytes` bytes
//   is paused and resumed at half of both, so the consumer keeps polling (and stays in the group)
//   however slow the app is. Each resume costs a fetch round trip (up to fetch.wait.max.ms, which
//   consumers default to 100 ms instead of librdkafka's 500), so the half left queued must cover
//   it: a depth of 100 let a backlog drain at ~500 events/s on the mock cluster, 1000 at ~5,000.
// - On revoke (or loss) the partition's queued and in-flight messages are forgotten: its acked
//   watermark is already stored and is committed by librdkafka before the partition moves; later
//   acks of its messages are ignored, and the new owner re-reads the rest (duplicates, never loss).
// - Unsubscribe and Shutdown close the consumer without blocking the loop: its acked offsets are
//   committed while it is still a group member (retried across a rebalance, for at most
//   min(sessionTimeout, 8 s)), and the closing members of one group leave it
//   (rd_kafka_consumer_close_queue) only once all of them have committed, so one member's leaving
//   cannot get another's final commit refused. The rest is redelivered.
//
// Threading: librdkafka's queues (the producer's main queue, each consumer's queue) signal a pipe
// that a file event on the context's dispatcher watches; delivery reports, rebalances, messages,
// errors and statistics are all served on that loop thread, and no thread of ours waits on a
// broker. Handlers run on the loop thread; an ack may be called from any thread. Publish and
// Subscribe may be called from any thread; Unsubscribe from another thread waits for the loop.
// Init and Shutdown run on the main thread (Init may block up to initTimeout).
//
// Health: UP while at least one broker connection is up (librdkafka statistics, every second),
// DOWN when none is; it comes back by itself.
//
// Metadata (Dapr's names where they overlap): brokers (required, "host:port,..."),
// consumerGroup, clientID, initialOffset (oldest|newest), maxMessageBytes, authType
// (none|password|mtls) with saslUsername, saslPassword, saslMechanism (PLAIN|SHA-256|SHA-512) and
// disableTls for password, caCert, clientCert, clientKey (PEM) for mtls; sessionTimeout,
// heartbeatInterval; ours: publishTimeout (default 10s), initTimeout (5s), queueDepth (1000),
// queueBytes (16 MiB); and
// `kafka.<property>` passes any librdkafka property through (applied last, to both clients).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "components/common/metadata.h"
#include "components/pubsub/pubsub.h"

namespace ottava::components::pubsub {

struct KafkaPubSubSettings {
  std::string brokers;
  std::string consumer_group;  // empty: the subscribe request's group
  std::string client_id = "ottava";
  std::string initial_offset = "oldest";
  int64_t max_message_bytes = 1000000;  // librdkafka's message.max.bytes default
  std::string auth_type = "none";
  std::string sasl_username;
  std::string sasl_password;
  std::string sasl_mechanism = "PLAIN";
  bool disable_tls = false;
  std::string ca_cert;
  std::string client_cert;
  std::string client_key;
  std::chrono::milliseconds session_timeout{45000};
  std::chrono::milliseconds heartbeat_interval{3000};
  std::chrono::milliseconds publish_timeout{10000};
  std::chrono::milliseconds init_timeout{5000};
  uint32_t queue_depth = 1000;
  int64_t queue_bytes = 16 << 20;  // per partition
  /// `kafka.*` metadata, prefix removed: librdkafka properties.
  std::map<std::string, std::string> passthrough;

  /// Reads the metadata; errors name the metadata key.
  static absl::StatusOr<KafkaPubSubSettings> Parse(const Metadata& metadata);
  /// As Parse, through `reader`, which then knows which keys were read.
  static absl::StatusOr<KafkaPubSubSettings> Read(MetadataReader& reader);
};

class KafkaPubSub : public PubSub {
 public:
  /// `context.dispatcher` must not be null.
  KafkaPubSub(const ComponentContext& context, KafkaPubSubSettings settings);
  ~KafkaPubSub() override;

  /// Creates the producer and waits (at most initTimeout) for the cluster's metadata; UNAVAILABLE
  /// when no broker answers (the producer keeps trying and health turns UP when one does);
  /// INVALID_ARGUMENT when librdkafka rejects a property. Main thread.
  absl::Status Init() override;
  /// Closes every consumer (committing acked offsets first), waits at most publishTimeout for
  /// outstanding publishes, fails the rest with UNAVAILABLE. Main thread.
  void Shutdown() override;

  void Publish(PublishRequest request, DoneCallback done) override;
  absl::StatusOr<uint64_t> Subscribe(SubscribeRequest request, MessageHandler handler) override;
  void Unsubscribe(uint64_t subscription_id) override;

  /// For tests: fails the current producer as librdkafka's fatal errors do
  /// (`rd_kafka_test_fatal_error`); the component replaces it on its loop.
  absl::Status InjectFatalProducerErrorForTest(const std::string& reason);
  /// How many producers were replaced after a fatal error.
  uint64_t producers_replaced() const;

 private:
  // Loop-thread state (defined in the .cc); posted closures and acks hold it weakly.
  struct Core;

  const std::string label_;
  const std::string app_id_;
  const KafkaPubSubSettings settings_;
  HealthIndicator* const health_;
  Dispatcher& dispatcher_;
  std::shared_ptr<Core> core_;
  std::atomic<uint64_t> next_subscription_id_{1};
  std::atomic<bool> initialized_{false};
  std::atomic<bool> shut_down_{false};
};

class KafkaPubSubFactory : public PubSubFactory {
 public:
  std::string_view type() const override { return "kafka"; }
  absl::StatusOr<std::unique_ptr<PubSub>> Create(const ComponentContext& context) const override;
};

}  // namespace ottava::components::pubsub
