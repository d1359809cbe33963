#include "components/sequencer/redis/redis_sequencer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <limits>
#include <set>
#include <thread>
#include <vector>

#include "common/dispatcher.h"
#include "components/sequencer/sequencer_test_util.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::components::sequencer {
namespace {

using test::RedisServer;
using ::testing::HasSubstr;

constexpr auto kWait = std::chrono::seconds(5);

class RedisSequencerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    dispatcher_ = *Dispatcher::Create("seq-test");
    dispatcher_->Start();
  }
  void TearDown() override {
    sequencers_.clear();
    dispatcher_->Stop();
  }

  ComponentContext Context(Metadata metadata = {}) {
    ComponentContext context;
    context.kind = Kind::kSequencer;
    context.name = "ids";
    context.type = "redis";
    context.app_id = "app";
    context.dispatcher = dispatcher_.get();
    context.health = &health_;
    context.metadata = {
        {"redisHost", server_->address()}, {"timeout", "1s"}, {"dialTimeout", "2s"}};
    for (auto& [key, value] : metadata) {
      context.metadata[key] = value;
    }
    return context;
  }

  // A new component object on the same Redis, as another sidecar (or a restarted one) would be.
  Sequencer& Make(Metadata metadata = {}) {
    auto sequencer = RedisSequencerFactory().Create(Context(std::move(metadata)));
    EXPECT_TRUE(sequencer.ok()) << sequencer.status();
    absl::Status init = (*sequencer)->Init();
    EXPECT_TRUE(init.ok()) << init;
    sequencers_.push_back(std::move(*sequencer));
    return *sequencers_.back();
  }

  static absl::StatusOr<int64_t> NextId(Sequencer& sequencer,
                                        const std::string& key,
                                        bool strong = true) {
    auto result = std::make_shared<std::promise<absl::StatusOr<int64_t>>>();
    auto future = result->get_future();
    sequencer.GetNextId({.key = key, .strong = strong},
                        [result](absl::StatusOr<int64_t> id) { result->set_value(id); });
    if (future.wait_for(kWait) != std::future_status::ready) {
      return absl::DeadlineExceededError("no reply");
    }
    return future.get();
  }

  static absl::StatusOr<Segment> GetSegment(Sequencer& sequencer,
                                            const std::string& key,
                                            int64_t size) {
    auto result = std::make_shared<std::promise<absl::StatusOr<Segment>>>();
    auto future = result->get_future();
    sequencer.GetSegment(key, size,
                         [result](absl::StatusOr<Segment> segment) { result->set_value(segment); });
    if (future.wait_for(kWait) != std::future_status::ready) {
      return absl::DeadlineExceededError("no reply");
    }
    return future.get();
  }

  std::unique_ptr<RedisServer> server_;
  DispatcherPtr dispatcher_;
  HealthIndicator health_;
  std::vector<std::unique_ptr<Sequencer>> sequencers_;
};

TEST(RedisSequencerSettingsTest, ParsesAndNamesBadKeys) {
  auto settings = RedisSequencerSettings::Parse(
      {{"redisHost", "10.1.2.3:7000"}, {"biggerThan.order", "42"}, {"segmentSize", "500"}});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->client.host, "10.1.2.3");
  EXPECT_EQ(settings->bigger_than.at("order"), 42);
  EXPECT_EQ(settings->segment_size, 500);
  EXPECT_EQ(RedisSequencerSettings::Parse({})->segment_size, 1000);
  for (auto [key, value] :
       {std::pair{"biggerThan.order", "-1"}, std::pair{"biggerThan.order", "12x"},
        std::pair{"biggerThan.", "3"}, std::pair{"segmentSize", "0"},
        std::pair{"segmentSize", "many"}, std::pair{"redisHost", "h:port"}}) {
    auto bad = RedisSequencerSettings::Parse({{key, value}});
    ASSERT_FALSE(bad.ok()) << key << "=" << value;
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(bad.status().message(), HasSubstr(key));
  }
}

TEST_F(RedisSequencerTest, CountsFromOnePerKeyInRedis) {
  Sequencer& sequencer = Make();
  // The client marks health UP on its loop just after Connect() saw the connection ready.
  EXPECT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kUp; }));
  EXPECT_EQ(NextId(sequencer, "sequencer||app||a").value(), 1);
  EXPECT_EQ(NextId(sequencer, "sequencer||app||a", false).value(), 2);
  EXPECT_EQ(NextId(sequencer, "sequencer||app||b").value(), 1);
  EXPECT_EQ(NextId(sequencer, "sequencer||app||a").value(), 3);
  // The counter is the stored key, readable by any other client.
  EXPECT_EQ(server_->Cli({"GET", "sequencer||app||a"}), "3");
}

TEST_F(RedisSequencerTest, StrongIdsStrictlyIncreaseAcrossThreads) {
  constexpr int kThreads = 8;
  constexpr int kIds = 500;
  Sequencer& sequencer = Make({{"poolSize", "4"}});
  const std::set<int64_t> all = ::ottava::components::sequencer::test_support::IncreasingPerCaller(
      ::ottava::components::sequencer::test_support::IdsFromThreads(
          kThreads, kIds, [&] { return NextId(sequencer, "k").value_or(-1); }));
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kIds));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kIds);
}

TEST_F(RedisSequencerTest, BiggerThanFloorsRaiseTheCounterOnce) {
  server_->Cli({"SET", "sequencer||app||low", "7"});
  server_->Cli({"SET", "sequencer||app||high", "5000"});
  Sequencer& sequencer = Make({{"biggerThan.order", "100"},
                               {"biggerThan.low", "1000"},
                               {"biggerThan.high", "1000"},
                               {"biggerThan.huge", std::to_string(int64_t{1} << 60)}});
  // The floor names the user's key; keys arrive prefixed.
  EXPECT_EQ(NextId(sequencer, "sequencer||app||order").value(), 101);
  EXPECT_EQ(NextId(sequencer, "sequencer||app||order").value(), 102);
  EXPECT_EQ(NextId(sequencer, "sequencer||app||xorder").value(), 1);
  // An existing counter below the floor is raised; one above it is untouched.
  EXPECT_EQ(NextId(sequencer, "sequencer||app||low").value(), 1001);
  EXPECT_EQ(NextId(sequencer, "sequencer||app||high").value(), 5001);
  // Exact above 2^53, where Lua's doubles would round.
  EXPECT_EQ(NextId(sequencer, "sequencer||app||huge").value(), (int64_t{1} << 60) + 1);
  EXPECT_EQ(NextId(sequencer, "sequencer||app||huge").value(), (int64_t{1} << 60) + 2);
  auto segment = GetSegment(sequencer, "sequencer||app||fresh", 10);
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(segment->first, 1);
  Sequencer& floored = Make({{"biggerThan.fresh", "500"}});
  segment = GetSegment(floored, "sequencer||app||fresh", 10);
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(segment->first, 501);
  EXPECT_EQ(segment->last, 510);
}

TEST_F(RedisSequencerTest, ANewComponentObjectNeverRepeatsIds) {
  std::set<int64_t> seen;
  for (int generation = 0; generation < 3; ++generation) {
    // Each generation is a restarted sidecar: a fresh component on the same Redis.
    Sequencer& sequencer = Make({{"biggerThan.k", "10"}});
    for (int i = 0; i < 20; ++i) {
      auto id = NextId(sequencer, "sequencer||app||k", i % 2 == 0);
      ASSERT_TRUE(id.ok()) << id.status();
      EXPECT_TRUE(seen.insert(*id).second) << "repeated id " << *id;
    }
    auto segment = GetSegment(sequencer, "sequencer||app||k", 5);
    ASSERT_TRUE(segment.ok());
    for (int64_t id = segment->first; id <= segment->last; ++id) {
      EXPECT_TRUE(seen.insert(id).second) << "repeated id " << id;
    }
    sequencer.Shutdown();
  }
  EXPECT_EQ(*seen.begin(), 11);
  EXPECT_EQ(seen.size(), 75u);
}

TEST_F(RedisSequencerTest, IdsSurviveARedisRestart) {
  Sequencer& sequencer = Make();
  EXPECT_EQ(NextId(sequencer, "k").value(), 1);
  EXPECT_EQ(NextId(sequencer, "k").value(), 2);
  server_->Kill();
  ASSERT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kDown; }));
  auto down = NextId(sequencer, "k");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(down.status().message(), HasSubstr("sequencer/ids"));
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kUp; }, kWait));
  EXPECT_EQ(NextId(sequencer, "k").value(), 3);  // AOF replayed
}

TEST_F(RedisSequencerTest, SegmentsAreConsecutiveAndShared) {
  Sequencer& a = Make();
  Sequencer& b = Make();
  auto first = GetSegment(a, "k", 100);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->first, 1);
  EXPECT_EQ(first->last, 100);
  EXPECT_EQ(NextId(b, "k").value(), 101);
  auto second = GetSegment(b, "k", 1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->first, 102);
  EXPECT_EQ(second->last, 102);
  EXPECT_EQ(GetSegment(a, "k", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetSegment(a, "k", -2).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RedisSequencerTest, ExhaustionAndForeignValuesAreErrors) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  server_->Cli({"SET", "full", std::to_string(max - 1)});
  server_->Cli({"SET", "floored-full", std::to_string(max - 1)});
  server_->Cli({"SET", "text", "hello"});
  Sequencer& sequencer = Make({{"biggerThan.text", "5"}, {"biggerThan.floored-full", "5"}});
  // Both paths: plain INCRBY (no floor) and the floor script.
  for (const char* key : {"full", "floored-full"}) {
    EXPECT_EQ(NextId(sequencer, key).value(), max) << key;
    EXPECT_EQ(NextId(sequencer, key).status().code(), absl::StatusCode::kOutOfRange) << key;
    EXPECT_EQ(GetSegment(sequencer, key, 2).status().code(), absl::StatusCode::kOutOfRange);
  }
  auto text = NextId(sequencer, "text");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kFailedPrecondition) << text.status();
  EXPECT_EQ(server_->Cli({"GET", "text"}), "hello");  // the floor never overwrites foreign data
}

// The runtime shuts the components down, stops the component loop, then destroys them.
TEST_F(RedisSequencerTest, DestroyedAfterTheDispatcherStoppedReturnsAtOnce) {
  Sequencer& sequencer = Make();
  ASSERT_TRUE(NextId(sequencer, "k").ok());
  sequencer.Shutdown();
  dispatcher_->Stop();
  const auto start = std::chrono::steady_clock::now();
  sequencers_.clear();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

}  // namespace
}  // namespace ottava::components::sequencer
