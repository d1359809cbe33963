#pragma once

// The Pub/Sub building block, at-least-once.
//
// A component moves opaque payloads (the API layer has already wrapped them in a CloudEvents
// envelope) and tracks acknowledgement. Redelivery with backoff, dead-lettering and the app
// protocol live in the runtime's delivery layer, so every broker gets them the same way: the
// component hands a message to the handler and waits until the runtime acks it.

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "components/component.h"

namespace ottava::components::pubsub {

struct PublishRequest {
  std::string topic;
  std::string data;
  std::string content_type;
  Metadata metadata;  // "key" = the message key, where the broker has one
};

struct Message {
  std::string id;  // unique within the broker (offset, stream id, sequence)
  std::string topic;
  std::string data;
  Metadata metadata;
};

struct SubscribeRequest {
  std::string topic;
  /// Subscribers sharing a group share the work; each group gets every message.
  std::string consumer_group;
  /// At most this many messages of the subscription are handed out and not yet acked. 1 keeps
  /// the publish order.
  uint32_t max_in_flight = 1;
  Metadata metadata;
};

/// Called on the component's thread for each message. `ack` must be called exactly once, from any
/// thread, when the runtime is done with the message (delivered, dropped or dead-lettered); until
/// then the broker keeps it. The handler must not block.
using MessageHandler = std::function<void(const Message& message, std::function<void()> ack)>;

using DoneCallback = std::function<void(absl::Status)>;

class PubSub : public Component {
 public:
  /// Publishes; `done` runs after the broker has acknowledged the message.
  virtual void Publish(PublishRequest request, DoneCallback done) = 0;
  /// Starts delivering `request.topic` to `handler`. Any thread.
  virtual absl::StatusOr<uint64_t> Subscribe(SubscribeRequest request, MessageHandler handler) = 0;
  /// Stops one subscription. Messages handed out and not acked go back to the group (or are
  /// redelivered to the next subscriber). When this returns the handler is not running and is
  /// never called again; acks of earlier messages may still arrive and are ignored or honoured.
  virtual void Unsubscribe(uint64_t subscription_id) = 0;
};

using PubSubPtr = std::unique_ptr<PubSub>;
using PubSubFactory = Factory<PubSub>;

}  // namespace ottava::components::pubsub
