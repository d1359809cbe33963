#include "components/pubsub/redis/redis_pubsub.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/dispatcher.h"
#include "common/stats.h"
#include "components/common/redis/redis_component_test_env.h"
#include "components/pubsub/pubsub_conformance.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::components::pubsub {
namespace {

using conformance::PubSubConformanceTest;

using test::RedisServer;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr auto kTimeout = std::chrono::seconds(10);

// The shared pub/sub conformance suite on a fresh redis-server per test.
class RedisHarness : public conformance::PubSubHarness,
                     private RedisComponentTestEnv<PubSub, RedisPubSubFactory> {
 public:
  RedisHarness() : RedisComponentTestEnv(Kind::kPubSub, "conformance", "pubsub-conf", "2s") {}
  static std::unique_ptr<conformance::PubSubHarness> Make() {
    auto harness = std::make_unique<RedisHarness>();
    return harness->Start() ? std::move(harness) : nullptr;
  }
  ~RedisHarness() override {
    if (store_ != nullptr) {
      store_->Shutdown();
    }
    Stop();
  }
  PubSub& pubsub() override { return *store_; }
};

INSTANTIATE_TEST_SUITE_P(Redis,
                         PubSubConformanceTest,
                         ::testing::Values(conformance::PubSubConformanceParam{
                             "Redis", &RedisHarness::Make}),
                         conformance::PubSubConformanceName());

// What one subscriber received. Acks inline, from its own thread (as the runtime does once the
// app answered), or holds them until told.
class Consumer {
 public:
  enum class Mode { kAckInline, kAckFromThread, kHold };

  explicit Consumer(Mode mode) : mode_(mode) {
    if (mode_ == Mode::kAckFromThread) {
      acker_ = std::thread([this] { AckLoop(); });
    }
  }
  ~Consumer() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (acker_.joinable()) {
      acker_.join();
    }
  }

  MessageHandler Handler() {
    return [this](const Message& message, std::function<void()> ack) {
      auto counted_ack = [this, ack = std::move(ack)] {
        {
          absl::MutexLock lock(&mu_);
          --outstanding_;
        }
        ack();
      };
      {
        absl::MutexLock lock(&mu_);
        received_.push_back(message);
        distinct_.insert(message.data);
        max_outstanding_ = std::max(max_outstanding_, ++outstanding_);
        if (mode_ != Mode::kAckInline) {
          held_.push_back(std::move(counted_ack));
          return;
        }
      }
      counted_ack();
    };
  }

  bool WaitFor(size_t n, std::chrono::milliseconds timeout = kTimeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return received_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Milliseconds(timeout.count()));
  }
  // Waits until `n` distinct payloads arrived.
  bool WaitForDistinct(size_t n, std::chrono::milliseconds timeout = kTimeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return distinct_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Milliseconds(timeout.count()));
  }

  std::vector<Message> Messages() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  std::vector<std::string> Data() {
    std::vector<std::string> data;
    for (const Message& message : Messages()) {
      data.push_back(message.data);
    }
    return data;
  }
  std::set<std::string> Distinct() {
    absl::MutexLock lock(&mu_);
    return distinct_;
  }
  size_t distinct_count() {
    absl::MutexLock lock(&mu_);
    return distinct_.size();
  }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return received_.size();
  }
  int max_outstanding() {
    absl::MutexLock lock(&mu_);
    return max_outstanding_;
  }
  void AckAll() {
    std::deque<std::function<void()>> acks;
    {
      absl::MutexLock lock(&mu_);
      acks.swap(held_);
    }
    for (auto& ack : acks) {
      ack();
    }
  }

 private:
  void AckLoop() {
    while (true) {
      std::deque<std::function<void()>> acks;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]()
                         ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !held_.empty(); };
        mu_.Await(absl::Condition(&ready));
        if (stopping_) {
          return;
        }
        acks.swap(held_);
      }
      for (auto& ack : acks) {
        ack();
      }
    }
  }

  const Mode mode_;
  absl::Mutex mu_;
  std::vector<Message> received_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> distinct_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> held_ ABSL_GUARDED_BY(mu_);
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  int max_outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread acker_;
};

TEST(RedisPubSubSettingsTest, ParsesMetadataAndNamesBadKeys) {
  auto settings = RedisPubSubSettings::Parse({{"redisHost", "10.0.0.1:6380"},
                                              {"consumerID", "orders"},
                                              {"consumerName", "pod-1"},
                                              {"processingTimeout", "500ms"},
                                              {"redeliverInterval", "2s"},
                                              {"maxLenApprox", "1000"},
                                              {"queueDepth", "7"},
                                              {"idleConsumerTTL", "10m"}});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->idle_consumer_ttl.count(), 600000);
  EXPECT_EQ(settings->client.port, 6380);
  EXPECT_EQ(settings->consumer_id, "orders");
  EXPECT_EQ(settings->consumer_name, "pod-1");
  EXPECT_EQ(settings->processing_timeout.count(), 500);
  EXPECT_EQ(settings->redeliver_interval.count(), 2000);
  EXPECT_EQ(settings->max_len_approx, 1000);
  EXPECT_EQ(settings->queue_depth, 7u);

  auto defaults = RedisPubSubSettings::Parse({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->processing_timeout.count(), 60000);
  EXPECT_EQ(defaults->redeliver_interval.count(), 15000);
  EXPECT_EQ(defaults->max_len_approx, 0);

  for (auto [key, value] : {std::pair{"processingTimeout", "soon"},
                            std::pair{"redeliverInterval", "-1s"}, std::pair{"maxLenApprox", "-5"},
                            std::pair{"queueDepth", "0"}, std::pair{"redisHost", "h:notaport"}}) {
    auto bad = RedisPubSubSettings::Parse({{key, value}});
    ASSERT_FALSE(bad.ok()) << key;
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(key));
  }
}

class RedisPubSubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto dispatcher = Dispatcher::Create("pubsub-test");
    ASSERT_TRUE(dispatcher.ok());
    dispatcher_ = std::move(*dispatcher);
    dispatcher_->Start();
  }
  void TearDown() override {
    for (auto& pubsub : pubsubs_) {
      pubsub->Shutdown();
    }
    pubsubs_.clear();
    consumers_.clear();  // after the components: no handler runs any more
    dispatcher_->Stop();
  }

  // A new component instance (a new sidecar: a new consumer name), initialised. Owned by the
  // fixture; `Crash` takes it away early.
  RedisPubSub* Make(const Metadata& extra = {}, HealthIndicator* health = nullptr) {
    Metadata metadata = {{"redisHost", server_->address()},
                         {"timeout", "2s"},
                         {"dialTimeout", "2s"},
                         {"processingTimeout", "500ms"},
                         {"redeliverInterval", "200ms"}};
    for (const auto& [key, value] : extra) {
      metadata[key] = value;
    }
    ComponentContext context;
    context.kind = Kind::kPubSub;
    context.name = "bus";
    context.type = "redis";
    context.app_id = "app";
    context.metadata = std::move(metadata);
    context.dispatcher = dispatcher_.get();
    context.stats = &stats_;
    context.health = health;
    auto pubsub = RedisPubSubFactory().Create(context);
    EXPECT_TRUE(pubsub.ok()) << pubsub.status();
    if (!pubsub.ok()) {
      return nullptr;
    }
    EXPECT_TRUE((*pubsub)->Init().ok());
    pubsubs_.push_back(std::unique_ptr<RedisPubSub>(static_cast<RedisPubSub*>(pubsub->release())));
    return pubsubs_.back().get();
  }

  Consumer& MakeConsumer(Consumer::Mode mode) {
    consumers_.push_back(std::make_unique<Consumer>(mode));
    return *consumers_.back();
  }

  // Simulates a sidecar killed with SIGKILL: its connections close and nothing it held is acked.
  void Crash(RedisPubSub* pubsub) {
    for (auto it = pubsubs_.begin(); it != pubsubs_.end(); ++it) {
      if (it->get() == pubsub) {
        (*it)->Shutdown();
        pubsubs_.erase(it);
        return;
      }
    }
  }

  static absl::Status Publish(PubSub& pubsub,
                              const std::string& topic,
                              const std::string& data,
                              std::string content_type = "",
                              Metadata metadata = {}) {
    std::promise<absl::Status> done;
    pubsub.Publish(PublishRequest{.topic = topic,
                                  .data = data,
                                  .content_type = std::move(content_type),
                                  .metadata = std::move(metadata)},
                   [&](absl::Status status) { done.set_value(status); });
    auto future = done.get_future();
    if (future.wait_for(kTimeout) != std::future_status::ready) {
      return absl::DeadlineExceededError("publish did not complete");
    }
    return future.get();
  }

  // Publishes `count` payloads "<prefix><i>" with up to 256 in flight; every publish must succeed.
  static void PublishMany(PubSub& pubsub, const std::string& topic, int count, int first = 0) {
    struct State {
      std::atomic<int> failed{0};
      std::atomic<int> outstanding{0};
    };
    auto state = std::make_shared<State>();
    for (int i = first; i < first + count; ++i) {
      ASSERT_TRUE(test::WaitFor([&] { return state->outstanding.load() < 256; }));
      ++state->outstanding;
      pubsub.Publish(PublishRequest{.topic = topic, .data = std::to_string(i)},
                     [state](absl::Status status) {
                       if (!status.ok()) {
                         ++state->failed;
                       }
                       --state->outstanding;
                     });
    }
    ASSERT_TRUE(test::WaitFor([&] { return state->outstanding.load() == 0; }));
    ASSERT_EQ(state->failed.load(), 0);
  }

  static uint64_t Subscribe(PubSub& pubsub,
                            const std::string& topic,
                            const std::string& group,
                            uint32_t max_in_flight,
                            Consumer& consumer) {
    auto id = pubsub.Subscribe(
        SubscribeRequest{.topic = topic, .consumer_group = group, .max_in_flight = max_in_flight},
        consumer.Handler());
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }

  // XPENDING's summary: how many entries the group has handed out and not seen acked.
  int64_t Pending(const std::string& topic, const std::string& group) {
    std::string out = server_->Cli({"XPENDING", topic, group});
    return std::stoll(out.substr(0, out.find('\n')));
  }
  int64_t Length(const std::string& topic) { return std::stoll(server_->Cli({"XLEN", topic})); }

  uint64_t Counter(const std::string& name) {
    return stats_.CounterFor(name, "", {{"component", "pub_subs/bus"}}).Value();
  }

  static std::vector<std::string> Range(int first, int count) {
    std::vector<std::string> out;
    for (int i = first; i < first + count; ++i) {
      out.push_back(std::to_string(i));
    }
    return out;
  }

  std::unique_ptr<RedisServer> server_;
  DispatcherPtr dispatcher_;
  stats::Store stats_;
  std::vector<std::unique_ptr<RedisPubSub>> pubsubs_;
  std::vector<std::unique_ptr<Consumer>> consumers_;
};

TEST_F(RedisPubSubTest, RoundTripCarriesPayloadMetadataAndStreamId) {
  RedisPubSub* pubsub = Make();
  Consumer& consumer = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*pubsub, "orders", "app", 1, consumer);
  // Published right after Subscribe returned, before the group can exist: not missed.
  ASSERT_TRUE(Publish(*pubsub, "orders", "hello", "text/plain", {{"key", "k1"}}).ok());
  const std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(Publish(*pubsub, "orders", binary).ok());
  ASSERT_TRUE(consumer.WaitFor(2));
  Message message = consumer.Messages()[0];
  EXPECT_EQ(message.topic, "orders");
  EXPECT_EQ(message.data, "hello");
  EXPECT_THAT(message.id, ::testing::MatchesRegex("[0-9]+-[0-9]+"));
  EXPECT_EQ(message.metadata["contentType"], "text/plain");
  EXPECT_EQ(message.metadata["key"], "k1");
  EXPECT_EQ(consumer.Messages()[1].data, binary);
  EXPECT_TRUE(consumer.Messages()[1].metadata.empty());
  // The stream holds Dapr's layout: the payload in field "data".
  EXPECT_EQ(server_->Cli({"XRANGE", "orders", message.id, message.id}),
            message.id + "\ndata\nhello\ncontentType\ntext/plain\nmetadata\n{\"key\":\"k1\"}");
  EXPECT_TRUE(test::WaitFor([&] { return Pending("orders", "app") == 0; }));
}

TEST_F(RedisPubSubTest, NewGroupsStartAtTheBeginningOfTheStream) {
  RedisPubSub* pubsub = Make();
  ASSERT_TRUE(Publish(*pubsub, "early", "before any subscriber").ok());
  Consumer& consumer = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*pubsub, "early", "late-group", 1, consumer);
  ASSERT_TRUE(consumer.WaitFor(1));
  EXPECT_EQ(consumer.Data()[0], "before any subscriber");
}

TEST_F(RedisPubSubTest, GroupsFanOutAndConsumersOfAGroupCompete) {
  RedisPubSub* a = Make({{"queueDepth", "1"}});
  RedisPubSub* b = Make({{"queueDepth", "1"}});
  RedisPubSub* c = Make();
  Consumer& in_a = MakeConsumer(Consumer::Mode::kAckFromThread);
  Consumer& in_b = MakeConsumer(Consumer::Mode::kAckFromThread);
  Consumer& in_c = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*a, "events", "g1", 1, in_a);
  Subscribe(*b, "events", "g1", 1, in_b);
  Subscribe(*c, "events", "g2", 4, in_c);
  ASSERT_NE(a->consumer_name(), b->consumer_name());
  // Both g1 consumers are blocked reading before the first publish.
  ASSERT_TRUE(test::WaitFor([&] {
    return server_->Cli({"XINFO", "CONSUMERS", "events", "g1"}).find(b->consumer_name()) !=
           std::string::npos;
  }));
  constexpr int kCount = 400;
  PublishMany(*c, "events", kCount);

  ASSERT_TRUE(in_c.WaitForDistinct(kCount));
  EXPECT_EQ(in_c.count(), static_cast<size_t>(kCount));
  ASSERT_TRUE(test::WaitFor([&] { return in_a.count() + in_b.count() >= kCount; }));
  std::set<std::string> union_of = in_a.Distinct();
  for (const std::string& data : in_b.Data()) {
    EXPECT_TRUE(union_of.insert(data).second) << data << " went to both consumers of g1";
  }
  EXPECT_EQ(union_of.size(), static_cast<size_t>(kCount));
  EXPECT_GT(in_a.count(), 0u);
  EXPECT_GT(in_b.count(), 0u);
  std::cout << "g1 split: " << in_a.count() << " / " << in_b.count() << "\n";
}

TEST_F(RedisPubSubTest, MaxInFlightOneKeepsThePublishOrder) {
  RedisPubSub* pubsub = Make();
  PublishMany(*pubsub, "ordered", 300);  // already in the stream when the group is created
  Consumer& consumer = MakeConsumer(Consumer::Mode::kAckFromThread);
  Subscribe(*pubsub, "ordered", "app", 1, consumer);
  PublishMany(*pubsub, "ordered", 300, 300);  // and live
  ASSERT_TRUE(consumer.WaitFor(600));
  EXPECT_THAT(consumer.Data(), ElementsAreArray(Range(0, 600)));
  EXPECT_EQ(consumer.max_outstanding(), 1);
}

TEST_F(RedisPubSubTest, MaxInFlightBoundsUnackedMessages) {
  RedisPubSub* pubsub = Make();
  Consumer& consumer = MakeConsumer(Consumer::Mode::kHold);
  Subscribe(*pubsub, "bounded", "app", 5, consumer);
  PublishMany(*pubsub, "bounded", 12);
  ASSERT_TRUE(consumer.WaitFor(5));
  EXPECT_FALSE(consumer.WaitFor(6, std::chrono::milliseconds(300)));
  consumer.AckAll();
  ASSERT_TRUE(consumer.WaitFor(10));
  EXPECT_FALSE(consumer.WaitFor(11, std::chrono::milliseconds(300)));
  consumer.AckAll();
  ASSERT_TRUE(consumer.WaitFor(12));
  consumer.AckAll();
  EXPECT_THAT(consumer.Data(), ElementsAreArray(Range(0, 12)));
  EXPECT_TRUE(test::WaitFor([&] { return Pending("bounded", "app") == 0; }));
}

TEST_F(RedisPubSubTest, AckedEntriesLeaveThePendingListUnackedOnesStayWithALiveConsumer) {
  // No XAUTOCLAIM of its own (which would also reset the idle time of what it holds): only its
  // touches keep the entries.
  RedisPubSub* slow = Make({{"redeliverInterval", "0"}});
  Consumer& held = MakeConsumer(Consumer::Mode::kHold);
  Subscribe(*slow, "work", "app", 10, held);
  PublishMany(*slow, "work", 10);
  ASSERT_TRUE(held.WaitFor(10));
  EXPECT_EQ(Pending("work", "app"), 10);

  // A peer in the same group runs XAUTOCLAIM every 200 ms for entries idle over 500 ms. The slow
  // consumer keeps touching what it holds, so for three processing timeouts nothing moves and
  // nothing is delivered twice.
  RedisPubSub* peer = Make();
  Consumer& in_peer = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*peer, "work", "app", 10, in_peer);
  EXPECT_FALSE(test::WaitFor([&] { return in_peer.count() > 0 || held.count() > 10; },
                             std::chrono::milliseconds(1500)));
  EXPECT_EQ(Pending("work", "app"), 10);

  held.AckAll();
  EXPECT_TRUE(test::WaitFor([&] { return Pending("work", "app") == 0; }));
  EXPECT_EQ(in_peer.count(), 0u);
  EXPECT_EQ(held.count(), 10u);
}

TEST_F(RedisPubSubTest, ACrashedConsumersEntriesAreReclaimedByANewInstance) {
  RedisPubSub* first = Make();
  Consumer& doomed = MakeConsumer(Consumer::Mode::kHold);
  Subscribe(*first, "jobs", "workers", 20, doomed);
  PublishMany(*first, "jobs", 30);  // 20 in flight, 10 read ahead
  ASSERT_TRUE(doomed.WaitFor(20));
  const std::string dead_name = first->consumer_name();
  ASSERT_TRUE(test::WaitFor([&] { return Pending("jobs", "workers") == 30; }));
  Crash(first);

  const auto restarted = std::chrono::steady_clock::now();
  RedisPubSub* second = Make();
  EXPECT_NE(second->consumer_name(), dead_name);
  Consumer& survivor = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*second, "jobs", "workers", 5, survivor);
  ASSERT_TRUE(survivor.WaitForDistinct(30));
  const auto took = std::chrono::steady_clock::now() - restarted;
  EXPECT_THAT(survivor.Data(), ::testing::UnorderedElementsAreArray(Range(0, 30)));
  EXPECT_EQ(Counter("ottava_pubsub_redis_reclaimed_total"), 30u);
  EXPECT_TRUE(test::WaitFor([&] { return Pending("jobs", "workers") == 0; }));
  std::cout << "reclaimed 30 entries of a crashed consumer in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
}

// Every sidecar start is a new consumer of the group. Consumers idle past idleConsumerTTL that
// hold nothing are removed; one that still holds an entry, and the live one, stay.
TEST_F(RedisPubSubTest, IdleConsumersHoldingNothingAreRemovedFromTheGroup) {
  ASSERT_EQ(server_->Cli({"XGROUP", "CREATE", "jobs", "workers", "0", "MKSTREAM"}), "OK");
  for (const char* name : {"gone-1", "gone-2"}) {
    ASSERT_EQ(server_->Cli({"XGROUP", "CREATECONSUMER", "jobs", "workers", name}), "1");
  }
  server_->Cli({"XADD", "jobs", "*", "data", "held"});
  server_->Cli({"XREADGROUP", "GROUP", "workers", "holder", "COUNT", "1", "STREAMS", "jobs", ">"});
  auto consumers = [this] {
    std::string out = server_->Cli({"XINFO", "CONSUMERS", "jobs", "workers"});
    std::vector<std::string> names;
    std::istringstream lines(out);
    for (std::string line, previous; std::getline(lines, line); previous = line) {
      if (previous == "name") {
        names.push_back(line);
      }
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  ASSERT_EQ(consumers(), (std::vector<std::string>{"gone-1", "gone-2", "holder"}));

  // A processing timeout beyond the test, so "holder" keeps its entry.
  RedisPubSub* pubsub = Make({{"idleConsumerTTL", "300ms"}, {"processingTimeout", "60s"}});
  Consumer& consumer = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*pubsub, "jobs", "workers", 5, consumer);
  const std::string self = pubsub->consumer_name();
  std::vector<std::string> expected = {"holder", self};
  std::sort(expected.begin(), expected.end());
  EXPECT_TRUE(test::WaitFor([&] { return consumers() == expected; }, std::chrono::seconds(5)))
      << ::testing::PrintToString(consumers());
  EXPECT_EQ(Pending("jobs", "workers"), 1);
}

TEST_F(RedisPubSubTest, ResubscribingUnderTheSameNameRedeliversItsPendingEntriesAtOnce) {
  // A processing timeout far beyond the test: only the own-pending re-read can deliver.
  RedisPubSub* pubsub = Make({{"processingTimeout", "60s"}, {"redeliverInterval", "15s"}});
  Consumer& before = MakeConsumer(Consumer::Mode::kHold);
  uint64_t id = Subscribe(*pubsub, "resume", "app", 3, before);
  PublishMany(*pubsub, "resume", 3);
  ASSERT_TRUE(before.WaitFor(3));
  pubsub->Unsubscribe(id);
  // When Unsubscribe returned the handler is done for good.
  PublishMany(*pubsub, "resume", 2, 3);
  Consumer& after = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*pubsub, "resume", "app", 1, after);
  ASSERT_TRUE(after.WaitFor(5, std::chrono::seconds(5)));
  EXPECT_THAT(after.Data(), ElementsAreArray(Range(0, 5)));
  EXPECT_EQ(before.count(), 3u);
  before.AckAll();  // late acks of the old subscription are harmless
  EXPECT_TRUE(test::WaitFor([&] { return Pending("resume", "app") == 0; }));
}

TEST_F(RedisPubSubTest, UnsubscribeFromInsideTheHandlerStopsAtOnce) {
  RedisPubSub* pubsub = Make();
  std::atomic<int> calls{0};
  std::atomic<uint64_t> id{0};
  auto result = pubsub->Subscribe(
      SubscribeRequest{.topic = "once", .consumer_group = "app", .max_in_flight = 10},
      [&](const Message&, std::function<void()>) {
        ++calls;
        pubsub->Unsubscribe(id.load());
      });
  ASSERT_TRUE(result.ok());
  id = *result;
  PublishMany(*pubsub, "once", 5);
  ASSERT_TRUE(test::WaitFor([&] { return calls.load() > 0; }));
  Consumer& other = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*pubsub, "other", "app", 1, other);
  PublishMany(*pubsub, "other", 1);
  ASSERT_TRUE(other.WaitFor(1));  // the loop carried on
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(RedisPubSubTest, TenThousandEventsWithAMidStreamCrashLoseNothing) {
  constexpr int kCount = 10000;
  RedisPubSub* publisher = Make();
  RedisPubSub* first = Make();
  // One app behind a sidecar that crashes and a new one. It acks from its own thread, as the
  // runtime does, so the crash catches messages in every state: read ahead, handed out, acked by
  // the app with the XACK not yet sent or not yet answered.
  Consumer& app = MakeConsumer(Consumer::Mode::kAckFromThread);
  Subscribe(*first, "stream", "app", 16, app);
  std::thread producer([&] { PublishMany(*publisher, "stream", kCount); });
  ASSERT_TRUE(app.WaitFor(kCount / 3, std::chrono::seconds(30)));
  Crash(first);
  const size_t before_crash = app.count();

  RedisPubSub* second = Make();
  Subscribe(*second, "stream", "app", 16, app);
  producer.join();
  // Then wait for an empty pending list: stranded entries the first sidecar had already handed to
  // the app come again after processingTimeout, and count as duplicates.
  const bool all = app.WaitForDistinct(kCount, std::chrono::seconds(40)) &&
                   test::WaitFor([&] { return Pending("stream", "app") == 0; });
  const size_t deliveries = app.count();
  const size_t distinct = app.distinct_count();
  const size_t lost = kCount - distinct;
  const size_t duplicates = deliveries - distinct;
  // What the crash stranded in the first consumer's pending list and the second one took over.
  const uint64_t reclaimed = Counter("ottava_pubsub_redis_reclaimed_total");
  std::cout << "10000 events, crash after " << before_crash << ": delivered " << deliveries
            << ", lost " << lost << ", duplicates " << duplicates << ", reclaimed " << reclaimed
            << "\n";
  RecordProperty("lost", static_cast<int>(lost));
  RecordProperty("duplicates", static_cast<int>(duplicates));
  RecordProperty("reclaimed", static_cast<int>(reclaimed));
  EXPECT_TRUE(all);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(app.Distinct(), [] {
    auto range = Range(0, kCount);
    return std::set<std::string>(range.begin(), range.end());
  }());
  // The crash caught entries read ahead or in flight (the publisher is far ahead of a consumer
  // with 16 in flight), so the new instance must have reclaimed some.
  EXPECT_GT(reclaimed, 0u);
}

TEST_F(RedisPubSubTest, TwoSubscriptionsOfOneComponentShareTheirGroup) {
  RedisPubSub* pubsub = Make({{"queueDepth", "1"}});
  Consumer& first = MakeConsumer(Consumer::Mode::kAckFromThread);
  Consumer& second = MakeConsumer(Consumer::Mode::kAckFromThread);
  Subscribe(*pubsub, "split", "app", 1, first);
  Subscribe(*pubsub, "split", "app", 1, second);
  PublishMany(*pubsub, "split", 200);
  ASSERT_TRUE(test::WaitFor([&] { return first.count() + second.count() >= 200; }));
  std::set<std::string> all = first.Distinct();
  for (const std::string& data : second.Data()) {
    EXPECT_TRUE(all.insert(data).second) << data << " delivered to both";
  }
  EXPECT_EQ(all.size(), 200u);
  // Two consumers, so neither re-reads the other's pending entries as its own.
  const std::string consumers = server_->Cli({"XINFO", "CONSUMERS", "split", "app"});
  EXPECT_THAT(consumers, HasSubstr(pubsub->consumer_name() + "\n"));
  EXPECT_THAT(consumers, HasSubstr(pubsub->consumer_name() + "-"));
}

TEST_F(RedisPubSubTest, MaxLenApproxTrimsTheStream) {
  RedisPubSub* pubsub = Make({{"maxLenApprox", "100"}});
  PublishMany(*pubsub, "bounded-stream", 3000);
  const int64_t length = Length("bounded-stream");
  // `~` trims whole radix-tree nodes (100 entries each by default), so a little over 100 stays.
  EXPECT_GE(length, 100);
  EXPECT_LE(length, 300);
  std::cout << "XLEN after 3000 publishes with maxLenApprox=100: " << length << "\n";
}

TEST_F(RedisPubSubTest, ConsumptionResumesByItselfAfterRedisRestarts) {
  HealthIndicator health;
  RedisPubSub* pubsub = Make({}, &health);
  EXPECT_EQ(health.state(), HealthState::kUp);
  Consumer& consumer = MakeConsumer(Consumer::Mode::kAckFromThread);
  Subscribe(*pubsub, "resilient", "app", 8, consumer);

  constexpr int kCount = 600;
  std::atomic<int> published{0};
  std::atomic<int> retries{0};
  std::atomic<bool> give_up{false};
  // Publishes one at a time and retries each until Redis takes it, as an app would.
  std::thread producer([&] {
    for (int i = 0; i < kCount && !give_up; ++i) {
      while (!give_up && !Publish(*pubsub, "resilient", std::to_string(i)).ok()) {
        ++retries;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      ++published;
    }
  });
  const bool started = consumer.WaitFor(200);
  server_->Kill();
  const bool went_down = test::WaitFor([&] { return health.state() == HealthState::kDown; });
  const bool restarted = server_->Restart().ok();
  const bool all = consumer.WaitForDistinct(kCount, std::chrono::seconds(30));
  give_up = true;
  producer.join();
  ASSERT_TRUE(started);
  EXPECT_TRUE(went_down);
  ASSERT_TRUE(restarted);
  EXPECT_TRUE(all) << consumer.Distinct().size() << " of " << kCount;
  EXPECT_EQ(consumer.Distinct(), [] {
    auto range = Range(0, kCount);
    return std::set<std::string>(range.begin(), range.end());
  }());
  EXPECT_TRUE(test::WaitFor([&] { return health.state() == HealthState::kUp; }));
  EXPECT_TRUE(test::WaitFor([&] { return Pending("resilient", "app") == 0; }));
  std::cout << "restart mid-stream: " << kCount << " published (" << retries.load()
            << " publish retries), " << consumer.count() << " deliveries, "
            << consumer.count() - consumer.Distinct().size() << " duplicates\n";
}

TEST_F(RedisPubSubTest, PendingEntriesTrimmedAwayAreAckedAndCounted) {
  RedisPubSub* pubsub =
      Make({{"maxLenApprox", "10"}, {"processingTimeout", "60s"}, {"redeliverInterval", "15s"}});
  Consumer& before = MakeConsumer(Consumer::Mode::kHold);
  uint64_t id = Subscribe(*pubsub, "short", "app", 5, before);
  PublishMany(*pubsub, "short", 5);
  ASSERT_TRUE(before.WaitFor(5));
  pubsub->Unsubscribe(id);
  PublishMany(*pubsub, "short", 500, 5);  // trims the five pending entries away
  ASSERT_LT(Length("short"), 200);
  ASSERT_EQ(Pending("short", "app"), 5);

  Consumer& after = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*pubsub, "short", "app", 1, after);
  ASSERT_TRUE(
      test::WaitFor([&] { return Counter("ottava_pubsub_redis_trimmed_pending_total") == 5; }));
  // What the stream still holds arrives; nothing trimmed comes out as an empty message.
  const int64_t left = Length("short");
  ASSERT_TRUE(after.WaitFor(left));
  for (const std::string& data : after.Data()) {
    EXPECT_GE(std::stoi(data), 5);
  }
  EXPECT_TRUE(test::WaitFor([&] { return Pending("short", "app") == 0; }));
}

TEST_F(RedisPubSubTest, ConsumerIdMetadataPicksTheGroup) {
  RedisPubSub* pubsub = Make({{"consumerID", "shared-group"}});
  Consumer& component_wide = MakeConsumer(Consumer::Mode::kAckInline);
  Consumer& own_choice = MakeConsumer(Consumer::Mode::kAckInline);
  Subscribe(*pubsub, "picked", "app", 1, component_wide);
  // A consumerID in the subscription's own metadata wins (the runtime copies it into the group).
  ASSERT_TRUE(pubsub
                  ->Subscribe(SubscribeRequest{.topic = "picked",
                                               .consumer_group = "mine",
                                               .metadata = {{"consumerID", "mine"}}},
                              own_choice.Handler())
                  .ok());
  PublishMany(*pubsub, "picked", 1);
  ASSERT_TRUE(component_wide.WaitFor(1));
  ASSERT_TRUE(own_choice.WaitFor(1));
  const std::string groups = server_->Cli({"XINFO", "GROUPS", "picked"});
  EXPECT_THAT(groups, HasSubstr("shared-group"));
  EXPECT_THAT(groups, HasSubstr("mine"));
  EXPECT_THAT(groups, ::testing::Not(HasSubstr("app")));
}

TEST_F(RedisPubSubTest, PublishFailsFastWhileRedisIsDown) {
  RedisPubSub* pubsub = Make();
  server_->Kill();
  const auto start = std::chrono::steady_clock::now();
  absl::Status status;
  ASSERT_TRUE(test::WaitFor([&] {
    status = Publish(*pubsub, "t", "x");
    return !status.ok();
  }));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("pub_subs/bus"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(RedisPubSubTest, RejectsBadSubscriptions) {
  RedisPubSub* pubsub = Make();
  Consumer& consumer = MakeConsumer(Consumer::Mode::kAckInline);
  EXPECT_EQ(
      pubsub->Subscribe(SubscribeRequest{.topic = "", .consumer_group = "g"}, consumer.Handler())
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      pubsub
          ->Subscribe(SubscribeRequest{.topic = "t", .consumer_group = "g", .max_in_flight = 0},
                      consumer.Handler())
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pubsub->Subscribe(SubscribeRequest{.topic = "t"}, consumer.Handler()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ottava::components::pubsub
