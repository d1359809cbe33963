#include "runtime/callback/subscriber.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "components/pubsub/in_memory/in_memory_pubsub.h"
#include "runtime/api/cloud_event.h"
#include "runtime/callback/app_callback.h"
#include "runtime/callback/stream_subscription.h"

namespace ottava::runtime::callback {
namespace {

namespace v1 = spec::proto::runtime::v1;

bool WaitUntil(const std::function<bool()>& ready) {
  for (int i = 0; i < 2500; ++i) {
    if (ready()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}
using components::pubsub::InMemoryPubSub;
using components::pubsub::InMemoryPubSubSettings;

// A sink that answers from a script (then SUCCESS) and records what it saw.
class ScriptedSink : public EventSink {
 public:
  void Script(std::string data, std::deque<Outcome> outcomes) {
    absl::MutexLock lock(&mu_);
    scripts_[std::move(data)] = std::move(outcomes);
  }

  void Deliver(std::shared_ptr<const Event> event, std::function<void(Outcome)> done) override {
    Outcome outcome = Outcome::kSuccess;
    {
      absl::MutexLock lock(&mu_);
      outcome = Next(event->cloud_event.data);
    }
    done(outcome);
  }

  // Each entry answered from its script, as one call.
  void DeliverBulk(std::shared_ptr<const EventBatch> batch, BulkDone done) override {
    std::vector<Outcome> outcomes;
    {
      absl::MutexLock lock(&mu_);
      std::vector<std::string> data;
      for (const BulkEntry& entry : batch->entries) {
        EXPECT_EQ(entry.event->path, batch->path);
        data.push_back(entry.event->cloud_event.data);
        outcomes.push_back(Next(entry.event->cloud_event.data));
      }
      batches_.push_back({batch->path, std::move(data)});
    }
    done(std::move(outcomes));
  }

  struct SeenBatch {
    std::string path;
    std::vector<std::string> data;
  };
  std::vector<SeenBatch> Batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

  std::vector<std::string> Seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

  bool WaitForBatches(size_t n, std::chrono::milliseconds timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return batches_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Milliseconds(timeout.count()));
  }

  bool WaitForCount(size_t n, std::chrono::milliseconds timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return seen_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Milliseconds(timeout.count()));
  }

 private:
  Outcome Next(const std::string& data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    seen_.push_back(data);
    auto& script = scripts_[data];
    if (script.empty()) {
      return Outcome::kSuccess;
    }
    Outcome outcome = script.front();
    script.pop_front();
    return outcome;
  }

  absl::Mutex mu_;
  std::map<std::string, std::deque<Outcome>> scripts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::vector<SeenBatch> batches_ ABSL_GUARDED_BY(mu_);
};

class SubscriberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dispatcher_ = *Dispatcher::Create("test");
    dispatcher_->Start();
    components::ComponentContext context;
    context.kind = components::Kind::kPubSub;
    context.name = "bus";
    context.type = "in-memory";
    context.app_id = "app";
    context.health = &health_;
    context.dispatcher = dispatcher_.get();
    context.stats = &stats_;
    pubsub_ = std::make_unique<InMemoryPubSub>(context, InMemoryPubSubSettings{});
    ASSERT_TRUE(pubsub_->Init().ok());
    sink_ = std::make_shared<ScriptedSink>();
  }
  void TearDown() override {
    if (subscriber_) {
      subscriber_->Stop();
    }
    if (dead_letters_) {
      pubsub_->Unsubscribe(*dead_letters_);
    }
    pubsub_->Shutdown();
    dispatcher_->Stop();
  }

  void Subscribe(SubscriptionOptions options) {
    options.pubsub_name = "bus";
    options.topic = "orders";
    options.retry_initial_ms = 5;
    options.retry_max_ms = 20;
    subscriber_ =
        Subscriber::Create(pubsub_.get(), options, sink_, dispatcher_.get(), &stats_, "app");
    ASSERT_TRUE(subscriber_->Start().ok());
  }

  void Publish(const std::string& data, const std::string& content_type = "text/plain") {
    absl::Notification published;
    const std::string id = "id-" + data;  // EnvelopeInput holds views
    api::EnvelopeInput input{id, "app", "orders", "bus", content_type, data, ""};
    pubsub_->Publish({"orders", api::BuildEnvelope(input), "application/cloudevents+json", {}},
                     [&published](absl::Status status) {
                       EXPECT_TRUE(status.ok());
                       published.Notify();
                     });
    published.WaitForNotification();
  }

  // Collects everything published to the dead-letter topic.
  void WatchDeadLetters(const std::string& topic) {
    auto id = pubsub_->Subscribe(
        {topic, "dlq-watcher", 16, {}},
        [this](const components::pubsub::Message& message, std::function<void()> ack) {
          absl::MutexLock lock(&dlq_mu_);
          dead_lettered_.push_back(
              api::ParseEnvelope(message.data, message.id, message.topic, "bus").data);
          ack();
        });
    ASSERT_TRUE(id.ok());
    dead_letters_ = *id;
  }

  // What reached the dead-letter topic, once at least `n` events did (or the wait timed out).
  std::vector<std::string> AwaitDeadLetters(size_t n) {
    absl::MutexLock lock(&dlq_mu_);
    auto landed = [this, n]()
                      ABSL_SHARED_LOCKS_REQUIRED(dlq_mu_) { return dead_lettered_.size() >= n; };
    dlq_mu_.AwaitWithTimeout(absl::Condition(&landed), absl::Seconds(5));
    return dead_lettered_;
  }

  uint64_t Count(const char* outcome) {
    return stats_
        .CounterFor("ottava_pubsub_deliveries_total", "",
                    {{"pubsub", "bus"}, {"topic", "orders"}, {"outcome", outcome}})
        .Value();
  }

  stats::Store stats_;
  components::HealthIndicator health_;
  DispatcherPtr dispatcher_;
  std::unique_ptr<InMemoryPubSub> pubsub_;
  std::shared_ptr<ScriptedSink> sink_;
  std::shared_ptr<Subscriber> subscriber_;
  std::optional<uint64_t> dead_letters_;
  absl::Mutex dlq_mu_;
  std::vector<std::string> dead_lettered_ ABSL_GUARDED_BY(dlq_mu_);
};

TEST_F(SubscriberTest, RetryRedeliversUntilSuccessAndKeepsOrder) {
  Subscribe({});
  sink_->Script("a", {Outcome::kRetry, Outcome::kRetry});
  Publish("a");
  Publish("b");
  ASSERT_TRUE(sink_->WaitForCount(4, std::chrono::seconds(5)));
  // With concurrency 1, "b" waits until "a" is acknowledged.
  EXPECT_EQ(sink_->Seen(), (std::vector<std::string>{"a", "a", "a", "b"}));
  EXPECT_EQ(Count("retry"), 2u);
  // The last verdict is counted on the loop after the sink saw the event.
  for (int i = 0; i < 500 && Count("success") < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(Count("success"), 2u);
}

TEST_F(SubscriberTest, DropAcksWithoutRedelivery) {
  Subscribe({});
  sink_->Script("poison", {Outcome::kDrop});
  Publish("poison");
  Publish("next");
  ASSERT_TRUE(sink_->WaitForCount(2, std::chrono::seconds(5)));
  EXPECT_EQ(sink_->Seen(), (std::vector<std::string>{"poison", "next"}));
  EXPECT_EQ(Count("drop"), 1u);
}

TEST_F(SubscriberTest, ExhaustedRetriesGoToTheDeadLetterTopicOnce) {
  WatchDeadLetters("orders-dlq");
  SubscriptionOptions options;
  options.max_retries = 3;
  options.dead_letter_topic = "orders-dlq";
  Subscribe(options);
  sink_->Script("poison", std::deque<Outcome>(100, Outcome::kRetry));
  Publish("poison");
  Publish("after");
  // 1 delivery + 3 redeliveries of the poison event, then "after".
  ASSERT_TRUE(sink_->WaitForCount(5, std::chrono::seconds(5)));
  EXPECT_EQ(sink_->Seen(),
            (std::vector<std::string>{"poison", "poison", "poison", "poison", "after"}));
  EXPECT_EQ(AwaitDeadLetters(1), (std::vector<std::string>{"poison"}));
  EXPECT_EQ(Count("dead_letter"), 1u);
}

// The in-memory pub/sub, with the broker's report of a publish to `slow_topic` held back by
// `delay` (a broker slow to confirm a dead-letter copy).
class SlowTopicPubSub : public components::pubsub::PubSub {
 public:
  SlowTopicPubSub(components::pubsub::PubSub& inner, std::string slow_topic, absl::Duration delay)
      : inner_(inner), slow_topic_(std::move(slow_topic)), delay_(delay) {}
  ~SlowTopicPubSub() override {
    for (std::thread& thread : reports_) {
      thread.join();
    }
  }
  absl::Status Init() override { return absl::OkStatus(); }
  void Publish(components::pubsub::PublishRequest request,
               components::pubsub::DoneCallback done) override {
    if (request.topic != slow_topic_) {
      inner_.Publish(std::move(request), std::move(done));
      return;
    }
    slow_started_.Notify();
    inner_.Publish(std::move(request), [this, done = std::move(done)](absl::Status status) {
      absl::MutexLock lock(&mu_);
      reports_.emplace_back([this, done, status] {
        absl::SleepFor(delay_);
        done(status);
      });
    });
  }
  absl::StatusOr<uint64_t> Subscribe(components::pubsub::SubscribeRequest request,
                                     components::pubsub::MessageHandler handler) override {
    return inner_.Subscribe(std::move(request), std::move(handler));
  }
  void Unsubscribe(uint64_t id) override { inner_.Unsubscribe(id); }
  absl::Notification slow_started_;

 private:
  components::pubsub::PubSub& inner_;
  const std::string slow_topic_;
  const absl::Duration delay_;
  absl::Mutex mu_;
  std::vector<std::thread> reports_ ABSL_GUARDED_BY(mu_);
};

// Stopping while the broker has not yet confirmed a dead-letter copy: the stop waits for the
// report, so the source is acked and never comes back to be dead-lettered a second time.
TEST_F(SubscriberTest, StopWaitsForTheDeadLetterReportSoTheSourceIsNotReplayed) {
  WatchDeadLetters("orders-dlq");
  SlowTopicPubSub slow(*pubsub_, "orders-dlq", absl::Milliseconds(300));
  SubscriptionOptions options;
  options.pubsub_name = "bus";
  options.topic = "orders";
  options.max_retries = 0;
  options.dead_letter_topic = "orders-dlq";
  auto subscriber = Subscriber::Create(&slow, options, sink_, dispatcher_.get(), &stats_, "app");
  ASSERT_TRUE(subscriber->Start().ok());
  sink_->Script("poison", std::deque<Outcome>(100, Outcome::kRetry));
  Publish("poison");
  ASSERT_TRUE(slow.slow_started_.WaitForNotificationWithTimeout(absl::Seconds(5)));
  subscriber->Stop();  // the report is still 300 ms away
  EXPECT_EQ(Count("dead_letter"), 1u) << "Stop returned before the dead-letter report";
  subscriber.reset();
  // A new member of the group: the poison event was acked, so it does not come back.
  auto second = std::make_shared<ScriptedSink>();
  auto next = Subscriber::Create(pubsub_.get(), options, second, dispatcher_.get(), &stats_, "app");
  ASSERT_TRUE(next->Start().ok());
  Publish("after");
  ASSERT_TRUE(second->WaitForCount(1, std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(second->Seen(), (std::vector<std::string>{"after"}));
  EXPECT_EQ(AwaitDeadLetters(1), (std::vector<std::string>{"poison"}));
  next->Stop();
}

TEST_F(SubscriberTest, ExhaustedRetriesWithoutDeadLetterTopicDrop) {
  SubscriptionOptions options;
  options.max_retries = 1;
  Subscribe(options);
  sink_->Script("poison", std::deque<Outcome>(100, Outcome::kRetry));
  Publish("poison");
  Publish("after");
  ASSERT_TRUE(sink_->WaitForCount(3, std::chrono::seconds(5)));
  EXPECT_EQ(sink_->Seen(), (std::vector<std::string>{"poison", "poison", "after"}));
  EXPECT_EQ(Count("drop"), 1u);
}

TEST_F(SubscriberTest, StopReturnsUnackedMessagesToTheGroup) {
  Subscribe({});
  sink_->Script("a", std::deque<Outcome>(1000, Outcome::kRetry));
  Publish("a");
  ASSERT_TRUE(sink_->WaitForCount(1, std::chrono::seconds(5)));
  subscriber_->Stop();
  subscriber_.reset();
  // A new subscriber of the same group gets the message that was never acknowledged.
  auto second = std::make_shared<ScriptedSink>();
  SubscriptionOptions options;
  options.pubsub_name = "bus";
  options.topic = "orders";
  auto subscriber =
      Subscriber::Create(pubsub_.get(), options, second, dispatcher_.get(), &stats_, "app");
  ASSERT_TRUE(subscriber->Start().ok());
  EXPECT_TRUE(second->WaitForCount(1, std::chrono::seconds(5)));
  EXPECT_EQ(second->Seen().front(), "a");
  subscriber->Stop();
}

TEST_F(SubscriberTest, StreamSubscriptionRoutesVerdictsByIdAndRetriesOnStop) {
  absl::Mutex mu;
  std::vector<std::string> sent;  // event ids, in order
  SubscriptionOptions options;
  options.pubsub_name = "bus";
  options.topic = "orders";
  options.retry_initial_ms = 5;
  options.retry_max_ms = 20;
  auto subscription = StreamSubscription::StartOn(
      pubsub_.get(), options,
      [&](const Event& event) {
        absl::MutexLock lock(&mu);
        sent.push_back(event.cloud_event.id);
      },
      dispatcher_.get(), &stats_, "app");
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  Publish("a");
  auto sent_count = [&](size_t n) {
    return WaitUntil([&] {
      absl::MutexLock lock(&mu);
      return sent.size() >= n;
    });
  };
  ASSERT_TRUE(sent_count(1));
  EXPECT_FALSE((*subscription)->OnProcessed("no-such-id", Outcome::kSuccess));
  // RETRY: the same event comes again; SUCCESS then lets the next one through.
  EXPECT_TRUE((*subscription)->OnProcessed("id-a", Outcome::kRetry));
  ASSERT_TRUE(sent_count(2));
  EXPECT_FALSE((*subscription)->OnProcessed("id-b", Outcome::kSuccess));  // not sent yet
  EXPECT_TRUE((*subscription)->OnProcessed("id-a", Outcome::kSuccess));
  Publish("b");
  ASSERT_TRUE(sent_count(3));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(sent, (std::vector<std::string>{"id-a", "id-a", "id-b"}));
  }
  // Stopping with "b" unanswered: it stays with the broker for the next subscriber of the group.
  (*subscription)->Stop();
  EXPECT_FALSE((*subscription)->OnProcessed("id-b", Outcome::kSuccess));
  subscription->reset();
  auto second = std::make_shared<ScriptedSink>();
  auto subscriber =
      Subscriber::Create(pubsub_.get(), options, second, dispatcher_.get(), &stats_, "app");
  ASSERT_TRUE(subscriber->Start().ok());
  EXPECT_TRUE(second->WaitForCount(1, std::chrono::seconds(5)));
  EXPECT_EQ(second->Seen().front(), "b");
  subscriber->Stop();
}

SubscriptionOptions Bulk(int64_t max_messages, int64_t max_await_ms) {
  SubscriptionOptions options;
  options.bulk.enabled = true;
  options.bulk.max_messages_count = max_messages;
  options.bulk.max_await_duration_ms = max_await_ms;
  return options;
}

std::vector<size_t> Sizes(const std::vector<ScriptedSink::SeenBatch>& batches) {
  std::vector<size_t> sizes;
  for (const auto& batch : batches) {
    sizes.push_back(batch.data.size());
  }
  return sizes;
}

TEST_F(SubscriberTest, BulkBatchesByCount) {
  // The timer would wait a minute: only a full batch can go out within the test.
  Subscribe(Bulk(5, 60000));
  for (int i = 0; i < 10; ++i) {
    Publish("e" + std::to_string(i));
  }
  ASSERT_TRUE(sink_->WaitForBatches(2, std::chrono::seconds(5)));
  auto batches = sink_->Batches();
  EXPECT_EQ(Sizes(batches), (std::vector<size_t>{5, 5}));
  // With concurrency 1 the component hands out a batch's worth of messages in publish order.
  EXPECT_EQ(batches[0].data, (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4"}));
  EXPECT_TRUE(WaitUntil([this] { return Count("success") == 10; }));
}

TEST_F(SubscriberTest, BulkBatchesByTime) {
  Subscribe(Bulk(100, 300));
  const auto start = std::chrono::steady_clock::now();
  Publish("a");
  Publish("b");
  Publish("c");
  ASSERT_TRUE(sink_->WaitForBatches(1, std::chrono::seconds(5)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(250));  // the batch waited for more events
  EXPECT_EQ(sink_->Batches()[0].data, (std::vector<std::string>{"a", "b", "c"}));
  // A later event starts a new batch and its own timer.
  Publish("d");
  ASSERT_TRUE(sink_->WaitForBatches(2, std::chrono::seconds(5)));
  EXPECT_EQ(sink_->Batches()[1].data, (std::vector<std::string>{"d"}));
}

TEST_F(SubscriberTest, BulkAppliesEachEntrysVerdict) {
  WatchDeadLetters("orders-dlq");
  SubscriptionOptions options = Bulk(4, 50);
  options.dead_letter_topic = "orders-dlq";
  options.dead_letter_on_drop = true;
  Subscribe(options);
  sink_->Script("retry", {Outcome::kRetry, Outcome::kRetry});
  sink_->Script("drop", {Outcome::kDrop});
  Publish("ok");
  Publish("retry");
  Publish("drop");
  Publish("ok2");
  // One batch of four; "retry" alone comes back twice more (after its backoff, in new batches).
  ASSERT_TRUE(sink_->WaitForCount(6, std::chrono::seconds(5)));
  auto batches = sink_->Batches();
  ASSERT_GE(batches.size(), 3u);
  EXPECT_EQ(batches[0].data, (std::vector<std::string>{"ok", "retry", "drop", "ok2"}));
  for (size_t i = 1; i < batches.size(); ++i) {
    EXPECT_EQ(batches[i].data, (std::vector<std::string>{"retry"}));
  }
  EXPECT_TRUE(WaitUntil([this] { return Count("success") == 3; }));
  EXPECT_EQ(Count("retry"), 2u);
  EXPECT_EQ(AwaitDeadLetters(1), (std::vector<std::string>{"drop"}));
  EXPECT_EQ(sink_->Seen().size(), 6u);  // nothing else came back
}

TEST_F(SubscriberTest, BulkExhaustedRetriesGoToTheDeadLetterTopic) {
  WatchDeadLetters("orders-dlq");
  SubscriptionOptions options = Bulk(2, 20);
  options.max_retries = 2;
  options.dead_letter_topic = "orders-dlq";
  Subscribe(options);
  sink_->Script("poison", std::deque<Outcome>(100, Outcome::kRetry));
  Publish("poison");
  Publish("fine");
  EXPECT_EQ(AwaitDeadLetters(1), (std::vector<std::string>{"poison"}));
  auto seen = sink_->Seen();
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "poison"), 3);  // 1 + 2 redeliveries
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "fine"), 1);
}

TEST_F(SubscriberTest, BulkGroupsBatchesByRoute) {
  SubscriptionOptions options = Bulk(100, 200);
  options.rules.push_back(RouteRule{R"(event.data.size == "big")", "/big"});
  options.default_route = "/small";
  Subscribe(options);
  Publish(R"({"size": "big", "n": 1})", "application/json");
  Publish(R"({"size": "small", "n": 2})", "application/json");
  Publish(R"({"size": "big", "n": 3})", "application/json");
  ASSERT_TRUE(sink_->WaitForBatches(2, std::chrono::seconds(5)));
  std::map<std::string, size_t> by_path;
  for (const auto& batch : sink_->Batches()) {
    by_path[batch.path] += batch.data.size();
  }
  EXPECT_EQ(by_path, (std::map<std::string, size_t>{{"/big", 2}, {"/small", 1}}));
}

TEST(EventSinkTest, OutcomesByEntryRetriesWhatTheAnswerLeavesOut) {
  EventBatch batch;
  for (const char* id : {"a", "b", "c"}) {
    batch.entries.push_back(BulkEntry{id, std::make_shared<Event>()});
  }
  EXPECT_EQ(OutcomesByEntry(
                batch, {{"c", Outcome::kDrop}, {"zz", Outcome::kDrop}, {"a", Outcome::kSuccess}}),
            (std::vector<Outcome>{Outcome::kSuccess, Outcome::kRetry, Outcome::kDrop}));
}

TEST(EventSinkTest, DeliverEachGathersEveryVerdict) {
  auto sink = std::make_shared<ScriptedSink>();
  sink->Script("b", {Outcome::kDrop});
  auto batch = std::make_shared<EventBatch>();
  for (const char* data : {"a", "b"}) {
    auto event = std::make_shared<Event>();
    event->cloud_event.data = data;
    batch->entries.push_back(BulkEntry{data, event});
  }
  std::vector<Outcome> outcomes;
  DeliverEach(*sink, batch, [&outcomes](std::vector<Outcome> got) { outcomes = std::move(got); });
  EXPECT_EQ(outcomes, (std::vector<Outcome>{Outcome::kSuccess, Outcome::kDrop}));
  EXPECT_EQ(sink->Seen(), (std::vector<std::string>{"a", "b"}));
}

TEST(SubscriptionOptionsTest, FromMetadataIsStrict) {
  auto options = SubscriptionOptions::FromMetadata("bus", "orders",
                                                   {{"maxRetries", "3"},
                                                    {"concurrency", "4"},
                                                    {"deadLetterTopic", "dlq"},
                                                    {"consumerID", "g1"},
                                                    {"other", "x"}});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->max_retries, 3);
  EXPECT_EQ(options->concurrency, 4);
  EXPECT_EQ(options->dead_letter_topic, "dlq");
  EXPECT_EQ(options->consumer_group, "g1");
  EXPECT_EQ(options->metadata.at("other"), "x");

  auto defaults = SubscriptionOptions::FromMetadata("bus", "orders", {});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->max_retries, -1);
  EXPECT_EQ(defaults->concurrency, 1);

  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"maxRetries", "abc"},
                                                        {"maxRetries", "3x"},
                                                        {"maxRetries", ""},
                                                        {"maxRetries", "-2"},
                                                        {"concurrency", "0"},
                                                        {"concurrency", "1.5"}}) {
    auto bad = SubscriptionOptions::FromMetadata("bus", "orders", {{key, value}});
    ASSERT_FALSE(bad.ok()) << key << "=" << value;
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find(key), std::string_view::npos) << bad.status();
  }
  EXPECT_FALSE(SubscriptionOptions::FromMetadata("bus", "", {}).ok());
  EXPECT_FALSE(SubscriptionOptions::FromMetadata("", "orders", {}).ok());
}

TEST(OutcomeTest, GrpcResultsMapPerDesign) {
  v1::TopicEventResponse response;
  response.set_status(v1::TopicEventResponse::SUCCESS);
  EXPECT_EQ(OutcomeOf(grpc::Status::OK, response), Outcome::kSuccess);
  response.set_status(v1::TopicEventResponse::RETRY);
  EXPECT_EQ(OutcomeOf(grpc::Status::OK, response), Outcome::kRetry);
  response.set_status(v1::TopicEventResponse::DROP);
  EXPECT_EQ(OutcomeOf(grpc::Status::OK, response), Outcome::kDrop);
  response.set_status(static_cast<v1::TopicEventResponse::TopicEventResponseStatus>(7));
  EXPECT_EQ(OutcomeOf(grpc::Status::OK, response), Outcome::kRetry);
  EXPECT_EQ(OutcomeOf(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""), response), Outcome::kDrop);
  EXPECT_EQ(OutcomeOf(grpc::Status(grpc::StatusCode::UNAVAILABLE, ""), response), Outcome::kRetry);
  EXPECT_EQ(OutcomeOf(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, ""), response),
            Outcome::kRetry);
}

}  // namespace
}  // namespace ottava::runtime::callback
