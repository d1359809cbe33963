#include "runtime/callback/stream_subscription.h"

namespace ottava::runtime::callback {

// Outlives the stream (the Subscriber holds it): Close() detaches `send` and fails whatever was
// still waiting for a verdict.
class StreamSubscription::Sink final : public EventSink {
 public:
  explicit Sink(Send send) : send_(std::move(send)) {}

  void Deliver(std::shared_ptr<const Event> event, std::function<void(Outcome)> done) override {
    {
      absl::MutexLock lock(&mu_);
      if (send_) {
        pending_.emplace(event->cloud_event.id, std::move(done));
        send_(*event);
        return;
      }
    }
    done(Outcome::kRetry);
  }

  /// A stream has no bulk message: the batch goes out event by event.
  void DeliverBulk(std::shared_ptr<const EventBatch> batch, BulkDone done) override {
    DeliverEach(*this, batch, std::move(done));
  }

  bool OnProcessed(const std::string& id, Outcome outcome) {
    std::function<void(Outcome)> done;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) {
        return false;
      }
      done = std::move(it->second);
      pending_.erase(it);
    }
    done(outcome);
    return true;
  }

  void Close() {
    std::unordered_multimap<std::string, std::function<void(Outcome)>> pending;
    {
      absl::MutexLock lock(&mu_);
      send_ = nullptr;
      pending.swap(pending_);
    }
    for (auto& [id, done] : pending) {
      done(Outcome::kRetry);
    }
  }

 private:
  absl::Mutex mu_;
  Send send_ ABSL_GUARDED_BY(mu_);
  std::unordered_multimap<std::string, std::function<void(Outcome)>> pending_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<StreamSubscription>> StreamSubscription::Start(
    const api::PubSubApi& pubsub,
    SubscriptionOptions options,
    Send send,
    Dispatcher* dispatcher,
    stats::Store* stats,
    const std::string& app_id) {
  absl::StatusOr<components::pubsub::PubSub*> component = pubsub.Find(options.pubsub_name);
  if (!component.ok()) {
    return component.status();
  }
  return StartOn(*component, std::move(options), std::move(send), dispatcher, stats, app_id);
}

absl::StatusOr<std::unique_ptr<StreamSubscription>> StreamSubscription::StartOn(
    components::pubsub::PubSub* pubsub,
    SubscriptionOptions options,
    Send send,
    Dispatcher* dispatcher,
    stats::Store* stats,
    const std::string& app_id) {
  auto sink = std::make_shared<Sink>(std::move(send));
  auto subscriber = Subscriber::Create(pubsub, std::move(options), sink, dispatcher, stats, app_id);
  std::unique_ptr<StreamSubscription> subscription(
      new StreamSubscription(std::move(sink), subscriber));
  if (absl::Status status = subscriber->Start(); !status.ok()) {
    return status;  // the destructor closes the sink
  }
  return subscription;
}

StreamSubscription::~StreamSubscription() {
  Stop();
}

bool StreamSubscription::OnProcessed(const std::string& id, Outcome outcome) {
  return sink_->OnProcessed(id, outcome);
}

void StreamSubscription::Stop() {
  subscriber_->Stop();
  sink_->Close();
}

}  // namespace ottava::runtime::callback
