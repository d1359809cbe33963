#include "runtime/callback/subscriber.h"

#include <algorithm>
#include <thread>

#include "common/encoding.h"
#include "common/logging.h"
#include "runtime/api/cloud_event.h"

namespace ottava::runtime::callback {

struct Subscriber::Delivery {
  components::pubsub::Message message;
  std::shared_ptr<const Event> event;
  std::function<void()> ack;
  uint32_t redeliveries = 0;
  std::string entry_id;  // bulk: the id of its entry in every batch it joins
};

namespace {

stats::Counter& DeliveryCounter(stats::Store* stats,
                                const SubscriptionOptions& options,
                                const char* outcome) {
  return stats->CounterFor(
      "ottava_pubsub_deliveries_total", "Events handed to the app, by verdict",
      {{"pubsub", options.pubsub_name}, {"topic", options.topic}, {"outcome", outcome}});
}

}  // namespace

std::shared_ptr<Subscriber> Subscriber::Create(components::pubsub::PubSub* pubsub,
                                               SubscriptionOptions options,
                                               EventSinkPtr sink,
                                               Dispatcher* dispatcher,
                                               stats::Store* stats,
                                               const std::string& app_id) {
  if (options.consumer_group.empty()) {
    options.consumer_group = app_id;
  }
  return std::shared_ptr<Subscriber>(
      new Subscriber(pubsub, std::move(options), std::move(sink), dispatcher, stats));
}

Subscriber::Subscriber(components::pubsub::PubSub* pubsub,
                       SubscriptionOptions options,
                       EventSinkPtr sink,
                       Dispatcher* dispatcher,
                       stats::Store* stats)
    : pubsub_(pubsub),
      options_(std::move(options)),
      sink_(std::move(sink)),
      dispatcher_(dispatcher),
      backoff_(std::chrono::milliseconds(options_.retry_initial_ms),
               std::chrono::milliseconds(options_.retry_max_ms)),
      delivered_(DeliveryCounter(stats, options_, "success")),
      retried_(DeliveryCounter(stats, options_, "retry")),
      dropped_(DeliveryCounter(stats, options_, "drop")),
      dead_lettered_(DeliveryCounter(stats, options_, "dead_letter")),
      batches_delivered_(
          stats->CounterFor("ottava_pubsub_bulk_batches_total",
                            "Bulk subscribe batches handed to the app",
                            {{"pubsub", options_.pubsub_name}, {"topic", options_.topic}})) {}

absl::Status Subscriber::Start() {
  for (const RouteRule& rule : options_.rules) {
    absl::StatusOr<RouteMatcher> matcher = RouteMatcher::Parse(rule.match);
    if (!matcher.ok()) {
      return absl::InvalidArgumentError("subscription to " + options_.pubsub_name + "/" +
                                        options_.topic + ": " +
                                        std::string(matcher.status().message()));
    }
    routes_.emplace_back(std::move(*matcher), rule.path);
  }
  components::pubsub::SubscribeRequest request;
  request.topic = options_.topic;
  request.consumer_group = options_.consumer_group;
  // A bulk subscription needs a batch's worth of messages handed out at once.
  const int64_t per_slot = options_.bulk.enabled ? options_.bulk.MaxMessages() : 1;
  request.max_in_flight = static_cast<uint32_t>(
      std::min<int64_t>(options_.concurrency * per_slot, BulkSubscribe::kMaxMessagesLimit * 16));
  request.metadata = options_.metadata;
  std::weak_ptr<Subscriber> weak = weak_from_this();
  absl::StatusOr<uint64_t> id = pubsub_->Subscribe(
      std::move(request),
      [weak](const components::pubsub::Message& message, std::function<void()> ack) {
        if (auto self = weak.lock()) {
          self->OnMessage(message, std::move(ack));
        }
      });
  if (!id.ok()) {
    return id.status();
  }
  subscription_id_ = *id;
  subscribed_ = true;
  if (options_.bulk.enabled) {
    OTTAVA_LOG(Pubsub, info,
               "subscribed to {}/{} (group {}, concurrency {}, bulk: up to {} events or {} ms)",
               options_.pubsub_name, options_.topic, options_.consumer_group, options_.concurrency,
               options_.bulk.MaxMessages(), options_.bulk.MaxAwaitMs());
  } else {
    OTTAVA_LOG(Pubsub, info, "subscribed to {}/{} (group {}, concurrency {})", options_.pubsub_name,
               options_.topic, options_.consumer_group, options_.concurrency);
  }
  return absl::OkStatus();
}

void Subscriber::Stop() {
  if (stopped_.exchange(true)) {
    return;
  }
  // A dead-letter copy on its way to the broker: its delivery report acks the source, which the
  // subscription must still be there to take (else the source comes back after a restart and is
  // dead-lettered twice). Not waited for on the loop thread, which runs the report.
  if (!dispatcher_->IsLoopThread()) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadLetterDrain;
    while (dead_lettering_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (subscribed_.exchange(false)) {
    pubsub_->Unsubscribe(subscription_id_);
  }
}

void Subscriber::OnMessage(const components::pubsub::Message& message, std::function<void()> ack) {
  auto delivery = std::make_shared<Delivery>();
  delivery->message = message;
  delivery->ack = std::move(ack);
  auto event = std::make_shared<Event>();
  event->cloud_event =
      api::ParseEnvelope(message.data, message.id, message.topic, options_.pubsub_name);
  // The topic the event was read from, not the envelope's: a dead-lettered envelope still names
  // its original topic.
  event->cloud_event.topic = message.topic;
  event->cloud_event.pubsub_name = options_.pubsub_name;
  event->metadata = message.metadata;
  if (!routes_.empty() || !options_.default_route.empty()) {
    for (const auto& [matcher, path] : routes_) {
      if (matcher.Matches(event->cloud_event)) {
        event->path = path;
        break;
      }
    }
    if (event->path.empty()) {
      event->path = options_.default_route;
    }
    if (event->path.empty()) {
      // Dapr: an event no rule matches, on a subscription without a default route, is skipped.
      dropped_.Inc();
      OTTAVA_LOG(Pubsub, debug, "event {} of {}/{} matches no routing rule: skipped",
                 event->cloud_event.id, options_.pubsub_name, options_.topic);
      delivery->ack();
      return;
    }
  }
  delivery->event = std::move(event);
  Attempt(std::move(delivery));
}

void Subscriber::Attempt(std::shared_ptr<Delivery> delivery) {
  if (stopped_) {
    return;
  }
  if (options_.bulk.enabled) {
    Gather(std::move(delivery));
    return;
  }
  std::weak_ptr<Subscriber> weak = weak_from_this();
  sink_->Deliver(delivery->event, [weak, delivery](Outcome outcome) {
    auto self = weak.lock();
    if (!self || self->stopped_) {
      return;
    }
    self->dispatcher_->Post([weak, delivery, outcome] {
      if (auto s = weak.lock()) {
        s->OnVerdict(delivery, outcome);
      }
    });
  });
}

void Subscriber::Gather(std::shared_ptr<Delivery> delivery) {
  if (!dispatcher_->IsLoopThread()) {
    std::weak_ptr<Subscriber> weak = weak_from_this();
    dispatcher_->Post([weak, delivery = std::move(delivery)]() mutable {
      if (auto self = weak.lock()) {
        self->Gather(std::move(delivery));
      }
    });
    return;
  }
  if (delivery->entry_id.empty()) {
    delivery->entry_id = RandomUuid();
  }
  const std::string path = delivery->event->path;
  Batch& batch = batches_[path];
  batch.deliveries.push_back(std::move(delivery));
  if (static_cast<int64_t>(batch.deliveries.size()) >= options_.bulk.MaxMessages()) {
    Flush(path, 0);
    return;
  }
  if (batch.deliveries.size() == 1) {
    batch.generation = ++next_generation_;
    std::weak_ptr<Subscriber> weak = weak_from_this();
    dispatcher_->PostDelayed(std::chrono::milliseconds(options_.bulk.MaxAwaitMs()),
                             [weak, path, generation = batch.generation] {
                               if (auto self = weak.lock()) {
                                 self->Flush(path, generation);
                               }
                             });
  }
}

void Subscriber::Flush(const std::string& path, uint64_t generation) {
  auto it = batches_.find(path);
  if (stopped_ || it == batches_.end() || it->second.deliveries.empty() ||
      (generation != 0 && it->second.generation != generation)) {
    return;
  }
  std::vector<std::shared_ptr<Delivery>> deliveries;
  deliveries.swap(it->second.deliveries);
  it->second.generation = 0;
  auto batch = std::make_shared<EventBatch>();
  batch->id = RandomUuid();
  batch->pubsub_name = options_.pubsub_name;
  batch->topic = options_.topic;
  batch->path = path;
  batch->entries.reserve(deliveries.size());
  for (const auto& delivery : deliveries) {
    batch->entries.push_back(BulkEntry{delivery->entry_id, delivery->event});
  }
  batches_delivered_.Inc();
  std::weak_ptr<Subscriber> weak = weak_from_this();
  sink_->DeliverBulk(batch, [weak, deliveries = std::move(deliveries)](
                                std::vector<Outcome> outcomes) mutable {
    auto self = weak.lock();
    if (!self || self->stopped_) {
      return;
    }
    self->dispatcher_->Post([weak, deliveries = std::move(deliveries),
                             outcomes = std::move(outcomes)]() mutable {
      auto s = weak.lock();
      if (!s) {
        return;
      }
      for (size_t i = 0; i < deliveries.size(); ++i) {
        s->OnVerdict(std::move(deliveries[i]), i < outcomes.size() ? outcomes[i] : Outcome::kRetry);
      }
    });
  });
}

void Subscriber::OnVerdict(std::shared_ptr<Delivery> delivery, Outcome outcome) {
  if (stopped_) {
    return;
  }
  switch (outcome) {
    case Outcome::kSuccess:
      delivered_.Inc();
      delivery->ack();
      return;
    case Outcome::kDrop:
      if (options_.dead_letter_on_drop && !options_.dead_letter_topic.empty()) {
        DeadLetter(std::move(delivery));
        return;
      }
      dropped_.Inc();
      OTTAVA_LOG(Pubsub, warn, "app dropped event {} of {}/{}", delivery->event->cloud_event.id,
                 options_.pubsub_name, options_.topic);
      delivery->ack();
      return;
    case Outcome::kRetry:
      break;
  }
  retried_.Inc();
  if (options_.max_retries >= 0 && delivery->redeliveries >= options_.max_retries) {
    if (!options_.dead_letter_topic.empty()) {
      DeadLetter(std::move(delivery));
    } else {
      dropped_.Inc();
      OTTAVA_LOG(Pubsub, warn,
                 "event {} of {}/{} dropped after {} redeliveries (no dead_letter_topic)",
                 delivery->event->cloud_event.id, options_.pubsub_name, options_.topic,
                 delivery->redeliveries);
      delivery->ack();
    }
    return;
  }
  ++delivery->redeliveries;
  std::weak_ptr<Subscriber> weak = weak_from_this();
  dispatcher_->PostDelayed(backoff_.Delay(delivery->redeliveries), [weak, delivery] {
    if (auto self = weak.lock()) {
      self->Attempt(delivery);
    }
  });
}

// The original envelope moves to the dead-letter topic unchanged; the source message is acked only
// once the broker has the copy, so a failure here retries instead of losing the event.
void Subscriber::DeadLetter(std::shared_ptr<Delivery> delivery) {
  components::pubsub::PublishRequest request;
  request.topic = options_.dead_letter_topic;
  request.data = delivery->message.data;
  request.content_type = "application/cloudevents+json";
  request.metadata = delivery->message.metadata;
  std::weak_ptr<Subscriber> weak = weak_from_this();
  dead_lettering_.fetch_add(1);
  pubsub_->Publish(std::move(request), [weak, delivery](absl::Status status) {
    auto self = weak.lock();
    if (!self) {
      return;
    }
    self->dispatcher_->Post([weak, delivery, status] {
      auto s = weak.lock();
      if (!s) {
        return;
      }
      // Counted down once this report is handled (the source acked, or a retry scheduled).
      struct Done {
        std::atomic<int>& count;
        ~Done() { count.fetch_sub(1); }
      } done{s->dead_lettering_};
      if (status.ok()) {
        // Acked even while stopping: the broker has the copy, so the source must not come back
        // (a stop racing the delivery report would otherwise dead-letter it twice).
        s->dead_lettered_.Inc();
        OTTAVA_LOG(Pubsub, warn, "event {} of {}/{} moved to dead-letter topic {}",
                   delivery->event->cloud_event.id, s->options_.pubsub_name, s->options_.topic,
                   s->options_.dead_letter_topic);
        delivery->ack();
        return;
      }
      if (s->stopped_) {
        return;  // not acked: redelivered after the restart, and dead-lettered then
      }
      OTTAVA_LOG(Pubsub, error, "dead-lettering event {} failed: {}; will retry",
                 delivery->event->cloud_event.id, status.message());
      s->dispatcher_->PostDelayed(s->backoff_.Delay(delivery->redeliveries), [weak, delivery] {
        if (auto again = weak.lock()) {
          again->DeadLetter(delivery);
        }
      });
    });
  });
}

}  // namespace ottava::runtime::callback
