#pragma once

// Where delivered events go: the app's AppCallback service (Layotto's or Dapr's), a
// SubscribeTopicEvents stream or a Dapr HTTP app. The event is protocol-neutral; each sink
// converts it to its wire form.

#include <functional>
#include <memory>
#include <string>

#include "components/component.h"
#include "runtime/api/cloud_event.h"

namespace ottava::runtime::callback {

/// The app's verdict on one event.
enum class Outcome { kSuccess, kRetry, kDrop };

/// One event as handed to the app.
struct Event {
  /// The envelope taken apart. `topic` is the topic the message was read from (a dead-lettered
  /// envelope still names its original topic inside) and `pubsub_name` the subscription's.
  api::CloudEvent cloud_event;
  /// The broker message's metadata (headers, partition ...), passed through to the app.
  components::Metadata metadata;
  /// The route the subscription's rules chose (Dapr's `path`); empty when it has none.
  std::string path;
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  /// Hands one event to the app. `done` runs exactly once, on any thread, with the verdict: a
  /// timeout or transport error is kRetry, UNIMPLEMENTED is kDrop. Must not block.
  virtual void Deliver(std::shared_ptr<const Event> event, std::function<void(Outcome)> done) = 0;
};

using EventSinkPtr = std::shared_ptr<EventSink>;

}  // namespace ottava::runtime::callback
