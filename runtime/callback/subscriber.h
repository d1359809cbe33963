#pragma once

// One subscription's delivery loop (DESIGN.md §7): takes messages from a pub/sub component, hands
// them to an EventSink, and acts on the verdict. SUCCESS acks; DROP acks (or, with Dapr semantics
// and a dead-letter topic, dead-letters); RETRY (or an error)
// redelivers after exponential backoff; after `max_retries` redeliveries the message goes to the
// dead-letter topic (then acks) when one is set, else it is dropped with a warning. The component
// limits how many messages are in flight (`concurrency`, 1 = publish order).
//
// A bulk subscription (`options.bulk`) gathers events per route until `max_messages_count` are
// waiting or `max_await_duration_ms` passed since the first, then hands them to the sink in one
// DeliverBulk() call; each entry's verdict then goes through the same rules as a single event's,
// and an entry to redeliver joins a later batch after its backoff. The component then hands out
// up to `concurrency` x `max_messages_count` messages at once.
//
// Threading: all state lives on the component dispatcher's thread; sink verdicts are posted there.
// Stop() may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/backoff.h"
#include "common/dispatcher.h"
#include "common/stats.h"
#include "components/pubsub/pubsub.h"
#include "runtime/callback/event_sink.h"
#include "runtime/callback/subscription_options.h"

namespace ottava::runtime::callback {

class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  static std::shared_ptr<Subscriber> Create(components::pubsub::PubSub* pubsub,
                                            SubscriptionOptions options,
                                            EventSinkPtr sink,
                                            Dispatcher* dispatcher,
                                            stats::Store* stats,
                                            const std::string& app_id);

  /// Compiles the routing rules (INVALID_ARGUMENT for one it cannot read) and subscribes to the
  /// component; deliveries start. Called once.
  absl::Status Start();
  /// Unsubscribes. Messages not yet acked return to the broker (redelivered to the next subscriber
  /// of the group); verdicts arriving later are ignored. Idempotent; any thread.
  void Stop();

  const SubscriptionOptions& options() const { return options_; }

 private:
  struct Delivery;

  Subscriber(components::pubsub::PubSub* pubsub,
             SubscriptionOptions options,
             EventSinkPtr sink,
             Dispatcher* dispatcher,
             stats::Store* stats);

  void OnMessage(const components::pubsub::Message& message, std::function<void()> ack);
  void Attempt(std::shared_ptr<Delivery> delivery);
  // Bulk: adds to the batch of the delivery's route; flushes a full batch, or arms its timer.
  void Gather(std::shared_ptr<Delivery> delivery);
  // Bulk: hands the route's waiting deliveries to the sink in one call. `generation` is the
  // batch's when a timer fires (a batch flushed since is left alone), 0 for a full batch.
  void Flush(const std::string& path, uint64_t generation);
  void OnVerdict(std::shared_ptr<Delivery> delivery, Outcome outcome);
  void DeadLetter(std::shared_ptr<Delivery> delivery);

  components::pubsub::PubSub* pubsub_;
  const SubscriptionOptions options_;
  EventSinkPtr sink_;
  Dispatcher* dispatcher_;
  Backoff backoff_;
  std::vector<std::pair<RouteMatcher, std::string>> routes_;  // compiled options_.rules
  std::atomic<bool> stopped_{false};
  // Dead-letter publishes whose delivery report is not handled yet; Stop() waits for them
  // (bounded by kDeadLetterDrain).
  std::atomic<int> dead_lettering_{0};
  static constexpr std::chrono::milliseconds kDeadLetterDrain{2000};
  std::atomic<uint64_t> subscription_id_{0};
  std::atomic<bool> subscribed_{false};

  // Bulk batches being gathered, by route; dispatcher thread only.
  struct Batch {
    std::vector<std::shared_ptr<Delivery>> deliveries;
    uint64_t generation = 0;
  };
  std::map<std::string, Batch> batches_;
  uint64_t next_generation_ = 0;

  stats::Counter& delivered_;
  stats::Counter& retried_;
  stats::Counter& dropped_;
  stats::Counter& dead_lettered_;
  stats::Counter& batches_delivered_;
};

}  // namespace ottava::runtime::callback
