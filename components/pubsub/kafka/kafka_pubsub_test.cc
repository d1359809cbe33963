// The Kafka pub/sub against librdkafka's mock cluster (the kafka_mock helper, real TCP).

#include "components/pubsub/kafka/kafka_pubsub.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/dispatcher.h"
#include "components/pubsub/pubsub_conformance.h"
#include "test/support/kafka_cluster.h"
#include "test/support/process.h"

namespace ottava::components::pubsub {
namespace {

using conformance::PubSubConformanceTest;

using test::KafkaCluster;
using ::testing::HasSubstr;

constexpr auto kTimeout = std::chrono::seconds(20);

// What one subscription received; acks inline or holds the acks until told.
class Recorder {
 public:
  explicit Recorder(bool hold) : hold_(hold) {}

  MessageHandler Handler() {
    return [this](const Message& message, std::function<void()> ack) {
      absl::MutexLock lock(&mu_);
      messages_.push_back(message);
      if (hold_) {
        held_[message.id] = std::move(ack);
      } else {
        ack();
      }
    };
  }
  std::vector<Message> Messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  size_t Count() {
    absl::MutexLock lock(&mu_);
    return messages_.size();
  }
  // Acks a held message by id; false when it is not held.
  bool Ack(const std::string& id) {
    std::function<void()> ack;
    {
      absl::MutexLock lock(&mu_);
      auto it = held_.find(id);
      if (it == held_.end()) {
        return false;
      }
      ack = std::move(it->second);
      held_.erase(it);
    }
    ack();
    return true;
  }

 private:
  const bool hold_;
  absl::Mutex mu_;
  std::vector<Message> messages_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::function<void()>> held_ ABSL_GUARDED_BY(mu_);
};

// The shared pub/sub conformance suite on a fresh mock cluster per test.
class KafkaHarness : public conformance::PubSubHarness {
 public:
  static std::unique_ptr<conformance::PubSubHarness> Make() {
    auto harness = std::make_unique<KafkaHarness>();
    auto cluster = KafkaCluster::Start(1);
    auto dispatcher = Dispatcher::Create("kafka-conf");
    if (!cluster.ok() || !dispatcher.ok()) {
      ADD_FAILURE() << "no mock cluster or loop: " << cluster.status();
      return nullptr;
    }
    harness->cluster_ = std::move(*cluster);
    harness->dispatcher_ = std::move(*dispatcher);
    harness->dispatcher_->Start();
    ComponentContext context;
    context.kind = Kind::kPubSub;
    context.name = "conformance";
    context.app_id = "app";
    context.metadata = {{"brokers", harness->cluster_->bootstrap()},
                        {"sessionTimeout", "6s"},
                        {"heartbeatInterval", "1s"},
                        {"kafka.linger.ms", "0"}};
    context.dispatcher = harness->dispatcher_.get();
    auto pubsub = KafkaPubSubFactory().Create(context);
    if (!pubsub.ok() || !(*pubsub)->Init().ok()) {
      ADD_FAILURE() << "kafka pub/sub did not start";
      return nullptr;
    }
    harness->pubsub_ = std::move(*pubsub);
    return harness;
  }
  ~KafkaHarness() override {
    if (pubsub_) {
      pubsub_->Shutdown();
    }
    pubsub_.reset();
    if (dispatcher_) {
      dispatcher_->Stop();
    }
  }
  PubSub& pubsub() override { return *pubsub_; }

 private:
  std::unique_ptr<KafkaCluster> cluster_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<PubSub> pubsub_;
};

INSTANTIATE_TEST_SUITE_P(Kafka,
                         PubSubConformanceTest,
                         ::testing::Values(conformance::PubSubConformanceParam{
                             "Kafka", &KafkaHarness::Make}),
                         conformance::PubSubConformanceName());

TEST(KafkaPubSubSettingsTest, ParsesMetadataAndNamesBadKeys) {
  auto settings = KafkaPubSubSettings::Parse({{"brokers", "a:9092,b:9092"},
                                              {"consumerGroup", "orders"},
                                              {"clientID", "me"},
                                              {"initialOffset", "newest"},
                                              {"maxMessageBytes", "2048"},
                                              {"authType", "password"},
                                              {"saslUsername", "u"},
                                              {"saslPassword", "p"},
                                              {"saslMechanism", "SHA-512"},
                                              {"sessionTimeout", "10s"},
                                              {"heartbeatInterval", "1s"},
                                              {"publishTimeout", "3s"},
                                              {"kafka.linger.ms", "0"}});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->brokers, "a:9092,b:9092");
  EXPECT_EQ(settings->consumer_group, "orders");
  EXPECT_EQ(settings->initial_offset, "newest");
  EXPECT_EQ(settings->max_message_bytes, 2048);
  EXPECT_EQ(settings->sasl_mechanism, "SHA-512");
  EXPECT_EQ(settings->session_timeout.count(), 10000);
  EXPECT_EQ(settings->publish_timeout.count(), 3000);
  EXPECT_EQ(settings->passthrough, (std::map<std::string, std::string>{{"linger.ms", "0"}}));

  for (auto [key, value] : {std::pair{"initialOffset", "latest"}, std::pair{"maxMessageBytes", "0"},
                            std::pair{"authType", "oidc"}, std::pair{"sessionTimeout", "soon"},
                            std::pair{"publishTimeout", "0"}, std::pair{"queueDepth", "0"},
                            std::pair{"queueBytes", "1"}}) {
    auto bad = KafkaPubSubSettings::Parse({{"brokers", "a:1"}, {key, value}});
    ASSERT_FALSE(bad.ok()) << key;
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(key));
  }
  EXPECT_THAT(std::string(KafkaPubSubSettings::Parse({}).status().message()), HasSubstr("brokers"));
  EXPECT_THAT(std::string(KafkaPubSubSettings::Parse({{"brokers", "a:1"}, {"authType", "mtls"}})
                              .status()
                              .message()),
              HasSubstr("clientCert"));
}

class KafkaPubSubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = KafkaCluster::Start(3, {{"ordered", 1},
                                           {"watermark", 1},
                                           {"errors", 1},
                                           {"left", 1},
                                           {"stays", 1},
                                           {"fatal", 1},
                                           {"backlog", 1}});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    auto dispatcher = Dispatcher::Create("kafka-test");
    ASSERT_TRUE(dispatcher.ok());
    dispatcher_ = std::move(*dispatcher);
    dispatcher_->Start();
  }
  void TearDown() override {
    for (auto& pubsub : pubsubs_) {
      pubsub->Shutdown();
    }
    pubsubs_.clear();
    recorders_.clear();
    dispatcher_->Stop();
  }

  KafkaPubSub* Make(const Metadata& extra = {}, HealthIndicator* health = nullptr) {
    // The mock cluster (librdkafka 2.0.2) holds a rejoining group until the session timeout of
    // the member that left has passed, so tests that restart a group member keep it short.
    Metadata metadata = {{"brokers", cluster_->bootstrap()},
                         {"publishTimeout", "3s"},
                         {"sessionTimeout", "6s"},
                         {"heartbeatInterval", "1s"},
                         {"kafka.linger.ms", "0"}};
    for (const auto& [key, value] : extra) {
      metadata[key] = value;
    }
    ComponentContext context;
    context.kind = Kind::kPubSub;
    context.name = "bus";
    context.type = "kafka";
    context.app_id = "app";
    context.metadata = std::move(metadata);
    context.dispatcher = dispatcher_.get();
    context.health = health;
    auto pubsub = KafkaPubSubFactory().Create(context);
    EXPECT_TRUE(pubsub.ok()) << pubsub.status();
    if (!pubsub.ok()) {
      return nullptr;
    }
    absl::Status init = (*pubsub)->Init();
    EXPECT_TRUE(init.ok()) << init;
    pubsubs_.push_back(std::unique_ptr<KafkaPubSub>(static_cast<KafkaPubSub*>(pubsub->release())));
    return pubsubs_.back().get();
  }

  Recorder& MakeRecorder(bool hold) {
    recorders_.push_back(std::make_unique<Recorder>(hold));
    return *recorders_.back();
  }

  static absl::Status Publish(PubSub& pubsub,
                              const std::string& topic,
                              const std::string& data,
                              const Metadata& metadata = {}) {
    std::promise<absl::Status> done;
    PublishRequest request;
    request.topic = topic;
    request.data = data;
    request.content_type = "text/plain";
    request.metadata = metadata;
    pubsub.Publish(std::move(request), [&done](absl::Status status) { done.set_value(status); });
    auto future = done.get_future();
    if (future.wait_for(kTimeout) != std::future_status::ready) {
      return absl::DeadlineExceededError("publish never completed");
    }
    return future.get();
  }

  static SubscribeRequest Request(const std::string& topic,
                                  const std::string& group,
                                  uint32_t max_in_flight = 1) {
    SubscribeRequest request;
    request.topic = topic;
    request.consumer_group = group;
    request.max_in_flight = max_in_flight;
    return request;
  }

  std::unique_ptr<KafkaCluster> cluster_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::vector<std::unique_ptr<KafkaPubSub>> pubsubs_;
  std::vector<std::unique_ptr<Recorder>> recorders_;
};

TEST_F(KafkaPubSubTest, DeliversInPublishOrderWithKeyAndMetadataAsHeaders) {
  KafkaPubSub* pubsub = Make();
  ASSERT_NE(pubsub, nullptr);
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(Publish(*pubsub, "ordered", "m" + std::to_string(i),
                        {{"partitionKey", "customer-7"}, {"traceid", std::to_string(i)}})
                    .ok());
  }
  Recorder& recorder = MakeRecorder(false);
  ASSERT_TRUE(pubsub->Subscribe(Request("ordered", "g-order"), recorder.Handler()).ok());
  ASSERT_TRUE(test::WaitFor([&] { return recorder.Count() >= kCount; }, kTimeout));
  std::vector<Message> messages = recorder.Messages();
  ASSERT_EQ(messages.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(messages[i].data, "m" + std::to_string(i));
    EXPECT_EQ(messages[i].topic, "ordered");
    EXPECT_EQ(messages[i].id, "ordered/0/" + std::to_string(i));
    EXPECT_EQ(messages[i].metadata["partitionKey"], "customer-7");
    EXPECT_EQ(messages[i].metadata["traceid"], std::to_string(i));
    EXPECT_EQ(messages[i].metadata["contentType"], "text/plain");
  }
}

// The app acks everything but offset 2 (it keeps answering RETRY). After the subscription closes
// (committing what is acked), the group resumes exactly at offset 2: 0 and 1 are not replayed,
// and nothing after 2 was committed past it.
TEST_F(KafkaPubSubTest, AnUnackedMessageHoldsTheCommittedOffset) {
  KafkaPubSub* pubsub = Make();
  ASSERT_NE(pubsub, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Publish(*pubsub, "watermark", "w" + std::to_string(i)).ok());
  }
  Recorder& first = MakeRecorder(true);
  auto id = pubsub->Subscribe(Request("watermark", "g-watermark", 10), first.Handler());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(test::WaitFor([&] { return first.Count() >= 10; }, kTimeout));
  for (int i = 0; i < 10; ++i) {
    if (i != 2) {
      EXPECT_TRUE(first.Ack("watermark/0/" + std::to_string(i)));
    }
  }
  pubsub->Unsubscribe(*id);

  Recorder& second = MakeRecorder(false);
  ASSERT_TRUE(pubsub->Subscribe(Request("watermark", "g-watermark"), second.Handler()).ok());
  ASSERT_TRUE(test::WaitFor([&] { return second.Count() >= 8; }, kTimeout));
  std::vector<Message> again = second.Messages();
  EXPECT_EQ(again.front().id, "watermark/0/2");
  EXPECT_EQ(again.size(), 8u) << "offsets 2..9 and nothing before";
  // Everything is acked now: a third member of the group reads nothing.
  pubsub->Shutdown();
  KafkaPubSub* restarted = Make();
  Recorder& third = MakeRecorder(false);
  ASSERT_TRUE(restarted->Subscribe(Request("watermark", "g-watermark"), third.Handler()).ok());
  ASSERT_TRUE(Publish(*restarted, "watermark", "w10").ok());
  ASSERT_TRUE(test::WaitFor([&] { return third.Count() >= 1; }, kTimeout));
  EXPECT_EQ(third.Messages().front().id, "watermark/0/10");
}

// Two subscriptions of one app share a consumer group (the runtime's default). When one member
// has left, the group rebalances, and a commit the other sends meanwhile is refused
// (REBALANCE_IN_PROGRESS). Closing the second one must still commit what its app acked before it
// leaves: the group does not replay it.
TEST_F(KafkaPubSubTest, ClosingCommitsAckedOffsetsWhileTheGroupRebalances) {
  KafkaPubSub* first = Make({{"consumerGroup", "g-shared"}});
  KafkaPubSub* second = Make({{"consumerGroup", "g-shared"}});
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(Publish(*first, "left", "l0").ok());
  ASSERT_TRUE(Publish(*first, "stays", "s0").ok());
  Recorder& left = MakeRecorder(false);
  Recorder& stays = MakeRecorder(false);
  ASSERT_TRUE(first->Subscribe(Request("left", "g-shared"), left.Handler()).ok());
  auto id = second->Subscribe(Request("stays", "g-shared"), stays.Handler());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(test::WaitFor([&] { return left.Count() >= 1 && stays.Count() >= 1; }, kTimeout));
  // The first member leaves the group (Shutdown returns once it has), and the group rebalances
  // while the second member closes.
  first->Shutdown();
  second->Unsubscribe(*id);
  second->Shutdown();

  KafkaPubSub* restarted = Make({{"consumerGroup", "g-shared"}});
  ASSERT_NE(restarted, nullptr);
  Recorder& again = MakeRecorder(false);
  ASSERT_TRUE(restarted->Subscribe(Request("stays", "g-shared"), again.Handler()).ok());
  ASSERT_TRUE(Publish(*restarted, "stays", "s1").ok());
  ASSERT_TRUE(test::WaitFor([&] { return again.Count() >= 1; }, kTimeout));
  EXPECT_EQ(again.Messages().front().data, "s1") << "the acked s0 was replayed";
}

TEST_F(KafkaPubSubTest, PublishErrorsAreClear) {
  KafkaPubSub* pubsub = Make({{"maxMessageBytes", "1000"}, {"publishTimeout", "1500ms"}});
  ASSERT_NE(pubsub, nullptr);
  absl::Status big = Publish(*pubsub, "errors", std::string(1001, 'x'));
  EXPECT_EQ(big.code(), absl::StatusCode::kResourceExhausted) << big;
  EXPECT_THAT(std::string(big.message()), HasSubstr("maxMessageBytes"));

  ASSERT_TRUE(cluster_->Command("topic-error nosuch UNKNOWN_TOPIC_OR_PART").ok());
  absl::Status unknown = Publish(*pubsub, "nosuch", "x");
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound) << unknown;
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("nosuch"));

  ASSERT_TRUE(cluster_->Command("down -1").ok());
  absl::Status unreachable = Publish(*pubsub, "errors", "x");
  EXPECT_EQ(unreachable.code(), absl::StatusCode::kUnavailable) << unreachable;
  EXPECT_THAT(std::string(unreachable.message()), HasSubstr("publishTimeout"));
  ASSERT_TRUE(cluster_->Command("up -1").ok());
  EXPECT_TRUE(test::WaitFor([&] { return Publish(*pubsub, "errors", "back").ok(); }, kTimeout));
}

// A backlog larger than the per-partition queue drains through pause and resume without stalling:
// with a queue of 100 and librdkafka's 500 ms fetch long poll, each resume waited for the broker's
// next fetch response and this partition delivered ~110 events a second (the mock cluster holds a
// fetch for its whole wait).
TEST_F(KafkaPubSubTest, ABacklogDrainsThroughPauseAndResume) {
  KafkaPubSub* pubsub = Make({});
  ASSERT_NE(pubsub, nullptr);
  constexpr int kBacklog = 3000;
  std::atomic<int> acked{0};
  std::atomic<int> failed{0};
  for (int i = 0; i < kBacklog; ++i) {
    PublishRequest request;
    request.topic = "backlog";
    request.data = std::string(200, 'b') + std::to_string(i);
    pubsub->Publish(std::move(request),
                    [&](absl::Status status) { ++(status.ok() ? acked : failed); });
  }
  ASSERT_TRUE(test::WaitFor([&] { return acked + failed == kBacklog; }, kTimeout));
  ASSERT_EQ(failed.load(), 0);
  Recorder& recorder = MakeRecorder(false);
  ASSERT_TRUE(pubsub->Subscribe(Request("backlog", "g-backlog", 16), recorder.Handler()).ok());
  // About 1 s; the stalling settings (queueDepth 100, fetch.wait.max.ms 500) delivered 900 in 8 s.
  EXPECT_TRUE(test::WaitFor([&] { return recorder.Count() >= kBacklog; }, std::chrono::seconds(8)))
      << recorder.Count() << " of " << kBacklog << " delivered";
}

// An idempotent producer that fails fatally refuses every later message; the component puts a
// new one in its place, and publishing works again without a restart.
TEST_F(KafkaPubSubTest, AFatallyFailedProducerIsReplaced) {
  KafkaPubSub* pubsub = Make({});
  ASSERT_NE(pubsub, nullptr);
  Recorder& recorder = MakeRecorder(false);
  ASSERT_TRUE(pubsub->Subscribe(Request("fatal", "g-fatal"), recorder.Handler()).ok());
  ASSERT_TRUE(Publish(*pubsub, "fatal", "before").ok());
  ASSERT_TRUE(pubsub->InjectFatalProducerErrorForTest("injected by the test").ok());
  EXPECT_TRUE(test::WaitFor([&] { return pubsub->producers_replaced() == 1; }, kTimeout));
  EXPECT_TRUE(test::WaitFor([&] { return Publish(*pubsub, "fatal", "after").ok(); }, kTimeout));
  EXPECT_TRUE(test::WaitFor(
      [&] {
        std::set<std::string> seen;
        for (const auto& message : recorder.Messages()) {
          seen.insert(message.data);
        }
        return seen.contains("before") && seen.contains("after");
      },
      kTimeout));
  EXPECT_EQ(pubsub->producers_replaced(), 1u);
}

TEST_F(KafkaPubSubTest, HealthFollowsTheBrokers) {
  HealthIndicator health;
  KafkaPubSub* pubsub = Make({}, &health);
  ASSERT_NE(pubsub, nullptr);
  EXPECT_EQ(health.state(), HealthState::kUp);
  ASSERT_TRUE(cluster_->Command("down -1").ok());
  EXPECT_TRUE(test::WaitFor([&] { return health.state() == HealthState::kDown; }, kTimeout));
  ASSERT_TRUE(cluster_->Command("up -1").ok());
  EXPECT_TRUE(test::WaitFor([&] { return health.state() == HealthState::kUp; }, kTimeout));
}

TEST_F(KafkaPubSubTest, InitFailsWithUnavailableWhenNoBrokerAnswers) {
  ComponentContext context;
  context.kind = Kind::kPubSub;
  context.name = "bus";
  context.metadata = {{"brokers", "127.0.0.1:" + std::to_string(1)}, {"initTimeout", "300ms"}};
  context.dispatcher = dispatcher_.get();
  HealthIndicator health;
  context.health = &health;
  auto pubsub = KafkaPubSubFactory().Create(context);
  ASSERT_TRUE(pubsub.ok());
  absl::Status init = (*pubsub)->Init();
  EXPECT_EQ(init.code(), absl::StatusCode::kUnavailable) << init;
  EXPECT_THAT(std::string(init.message()), HasSubstr("pub_subs/bus"));
  EXPECT_EQ(health.state(), HealthState::kDown);
  (*pubsub)->Shutdown();
}

}  // namespace
}  // namespace ottava::components::pubsub
