#pragma once

// Where delivered events go: the app's AppCallback service (Layotto's or Dapr's), a
// SubscribeTopicEvents stream or a Dapr HTTP app. The event is protocol-neutral; each sink
// converts it to its wire form. A bulk subscription's events arrive as a batch (Dapr's bulk
// subscribe); a sink whose protocol has no bulk call delivers the batch one event at a time.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

/// One event of a batch, named by an id unique within the batch (the app's answer echoes it).
struct BulkEntry {
  std::string entry_id;
  std::shared_ptr<const Event> event;
};

/// Events of one bulk subscription handed to the app in one call. Every entry has the batch's
/// pubsub, topic and path (the subscriber groups events by the route their rules chose).
struct EventBatch {
  std::string id;  // unique per call
  std::string pubsub_name;
  std::string topic;
  std::string path;  // empty when the subscription has no routes
  std::vector<BulkEntry> entries;
};

/// One verdict per entry of a batch, in the batch's order.
using BulkDone = std::function<void(std::vector<Outcome>)>;

class EventSink {
 public:
  virtual ~EventSink() = default;
  /// Hands one event to the app. `done` runs exactly once, on any thread, with the verdict: a
  /// timeout or transport error is kRetry, UNIMPLEMENTED is kDrop. Must not block.
  virtual void Deliver(std::shared_ptr<const Event> event, std::function<void(Outcome)> done) = 0;

  /// Hands a batch to the app in one call where the protocol has one, else one Deliver() per
  /// entry (DeliverEach). `done` runs exactly once, on any thread, with one verdict per entry:
  /// an entry the app's answer leaves out is kRetry; a call that failed as a whole gives every
  /// entry the verdict Deliver() would give one event. Must not block.
  virtual void DeliverBulk(std::shared_ptr<const EventBatch> batch, BulkDone done) = 0;
};

using EventSinkPtr = std::shared_ptr<EventSink>;

/// DeliverBulk() for a sink without a bulk call: every entry through `sink.Deliver()` at once,
/// `done` once the last verdict is in.
void DeliverEach(EventSink& sink, const std::shared_ptr<const EventBatch>& batch, BulkDone done);

/// The verdicts of a batch from the app's answer: `answered` pairs entry ids with verdicts; an
/// entry it does not name is kRetry (as daprd treats it), an id not in the batch is ignored.
std::vector<Outcome> OutcomesByEntry(const EventBatch& batch,
                                     const std::vector<std::pair<std::string, Outcome>>& answered);

}  // namespace ottava::runtime::callback
