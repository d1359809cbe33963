#pragma once

// The "in-memory" pub/sub: process-local topics with consumer groups and acknowledgements, for
// development and as a fake in tests. Messages are lost on restart.
//
// Semantics:
// - A consumer group is created by the first Subscribe naming it and lives as long as the
//   component. Publish copies the message into every existing group of the topic (none: the
//   message is dropped, as a broker with no consumer would). A group keeps queueing while it has
//   no subscriber, up to `max_queued_per_group` messages; beyond that the oldest is dropped
//   (logged, and counted in ottava_pubsub_dropped_messages_total when the context has a stats
//   store).
// - Within a group messages go round-robin to the subscribers that have fewer than their
//   `max_in_flight` messages un-acked. With one subscriber and max_in_flight = 1 the publish order
//   is kept.
// - Unsubscribe puts the subscriber's un-acked messages back at the front of its group's queue, in
//   their original order, for the group's other (or future) subscribers. Later acks of those
//   messages are ignored.
// - Message ids are "<topic>-<sequence>", unique within the component. Message metadata is the
//   publish metadata plus "contentType" (when the request has one and the metadata does not).
// - No redelivery timer and no dead-lettering: the runtime's delivery layer does both.
//
// Threading: all state belongs to the context's dispatcher thread (required; the factory refuses a
// context without one). Publish and Subscribe post to it; Publish's callback runs there once the
// message is queued. Handlers run there, never inline in Publish. An ack may be called from any
// thread and is posted back. Unsubscribe and Shutdown called from another thread post to the loop
// and wait, so when they return no handler call is running or will start; called on the loop
// thread (from inside a handler, say) they act at once. The dispatcher must be running (or
// stopped) when they are called from another thread.
//
// Metadata: `maxQueuedMessages` (optional, default 10000) bounds each group's queue.
//
// Hot upgrade (Transferable, format 1): records 'G' {topic, group} for every consumer group,
// 'Q' {topic, group, u64 sequence, id, data, u32 n, n × {key, value}} for every message a group
// still owes (queued, and handed out but not acked, in sequence order) and 'N' {u64 last
// sequence}. Frozen, the component refuses Publish (UNAVAILABLE) and hands out nothing more; the
// new process queues the records in their groups, so every un-acked message is delivered there
// (again, for those the old process had handed out: at least once). Acks after the freeze are
// ignored.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "components/common/metadata.h"
#include "components/pubsub/pubsub.h"
#include "components/transferable.h"

namespace ottava::components::pubsub {

struct InMemoryPubSubSettings {
  size_t max_queued_per_group = 10000;

  /// Reads the metadata; errors name the metadata key.
  static absl::StatusOr<InMemoryPubSubSettings> Parse(const Metadata& metadata);
  /// As Parse, through `reader`, which then knows which keys were read.
  static absl::StatusOr<InMemoryPubSubSettings> Read(MetadataReader& reader);
};

class InMemoryPubSub : public PubSub, public Transferable {
 public:
  /// `context.dispatcher` must not be null.
  InMemoryPubSub(const ComponentContext& context, InMemoryPubSubSettings settings);
  ~InMemoryPubSub() override;

  absl::Status Init() override;
  void Shutdown() override;

  void Publish(PublishRequest request, DoneCallback done) override;
  absl::StatusOr<uint64_t> Subscribe(SubscribeRequest request, MessageHandler handler) override;
  void Unsubscribe(uint64_t subscription_id) override;

  uint32_t StateFormat() const override { return 1; }
  std::vector<std::string> FreezeAndExport(size_t chunk_bytes) override;
  absl::Status ImportState(uint32_t format, std::string_view chunk) override;

 private:
  // Everything owned by the loop thread (defined in the .cc). Shared with posted closures, which
  // may outlive the component; acks hold it weakly.
  struct Core;

  // Runs `fn` on the loop and returns once it ran (or was dropped because the loop stopped);
  // runs it inline when called on the loop thread.
  void RunOnLoopAndWait(std::function<void(Core&)> fn);

  const std::string label_;
  HealthIndicator* const health_;
  Dispatcher& dispatcher_;
  std::shared_ptr<Core> core_;
  std::atomic<uint64_t> next_subscription_id_{1};
  std::atomic<bool> shut_down_{false};
};

class InMemoryPubSubFactory : public PubSubFactory {
 public:
  std::string_view type() const override { return "in-memory"; }
  absl::StatusOr<std::unique_ptr<PubSub>> Create(const ComponentContext& context) const override;
};

}  // namespace ottava::components::pubsub
