#include "components/state/redis/redis_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/dispatcher.h"
#include "components/common/redis/redis_component_test_env.h"
#include "components/state/state_conformance.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

// The conformance checklist of dapr-api.md §4.1 (components/state/state_conformance.cc) against a
// real redis-server, plus what only Redis has: the data layout, the all-or-nothing transaction
// seen in the whole keyspace, replicas and outages.

namespace ottava::components::state {
namespace {

using conformance::BulkGet;
using conformance::EtagOf;
using conformance::Found;
using conformance::Get;
using conformance::Set;
using conformance::StateConformanceTest;
using conformance::Transact;
using conformance::ValueOf;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;
using test::RedisServer;
using ::testing::HasSubstr;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (!line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

// The whole keyspace as redis-cli sees it: every key with its hash fields and absolute expiry.
std::map<std::string, std::string> Keyspace(const RedisServer& server) {
  std::map<std::string, std::string> dump;
  for (const std::string& key : Lines(server.Cli({"KEYS", "*"}))) {
    dump[key] = server.Cli({"HGETALL", key}) + " | expires " + server.Cli({"PEXPIRETIME", key});
  }
  return dump;
}

// Starts a replica of `primary` and waits until the primary reports it online.
std::unique_ptr<RedisServer> StartReplica(const RedisServer& primary) {
  // Full syncs start at once instead of after the default 5 s diskless-sync delay.
  primary.Cli({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});
  auto replica =
      RedisServer::Start({false, {"--replicaof", "127.0.0.1", std::to_string(primary.port())}});
  EXPECT_TRUE(replica.ok()) << replica.status();
  if (!replica.ok()) {
    return nullptr;
  }
  const bool online = test::WaitFor(
      [&] {
        std::string info = primary.Cli({"INFO", "replication"});
        return info.find("connected_slaves:1") != std::string::npos &&
               info.find("state=online") != std::string::npos;
      },
      seconds(10));
  EXPECT_TRUE(online) << primary.Cli({"INFO", "replication"});
  return std::move(*replica);
}

// A redis-server with a store on it: what every test here, shared or not, starts from.
class RedisStateEnv : public RedisComponentTestEnv<StateStore, RedisStateFactory> {
 protected:
  RedisStateEnv() : RedisComponentTestEnv(Kind::kState, "cache", "state-redis", "2s") {}
};

// The shared conformance suite on a fresh server per test; redis-cli checks the keyspace.
class RedisHarness : public conformance::StateStoreHarness, private RedisStateEnv {
 public:
  static std::unique_ptr<conformance::StateStoreHarness> Make() {
    auto harness = std::make_unique<RedisHarness>();
    return harness->Start() ? std::move(harness) : nullptr;
  }
  ~RedisHarness() override { Stop(); }
  StateStore& store() override { return *store_; }
  std::optional<std::string> Backend(const std::vector<std::string>& command) override {
    return server_->Cli(command);
  }
};

INSTANTIATE_TEST_SUITE_P(Redis,
                         StateConformanceTest,
                         ::testing::Values(conformance::StateConformanceParam{
                             .name = "redis",
                             .label = "state/cache",
                             // Redis' clock and ours are the same machine's; a few ms of rounding.
                             .clock_slack = milliseconds(5),
                             .refuses_unrepresentable_ttl = true,
                             .make = &RedisHarness::Make}),
                         conformance::StateConformanceName());

class RedisStateTest : public ::testing::Test, protected RedisStateEnv {
 protected:
  void SetUp() override { ASSERT_TRUE(Start()); }
  void TearDown() override { Stop(); }
};

TEST_F(RedisStateTest, FactoryCreatesAndReportsHealth) {
  EXPECT_EQ(RedisStateFactory().type(), "redis");
  EXPECT_EQ(health_.state(), HealthState::kUp);
  Features features = store_->features();
  EXPECT_TRUE(features.etag);
  EXPECT_TRUE(features.transactional);
  EXPECT_TRUE(features.ttl);
}

TEST_F(RedisStateTest, FactoryRejectsBadMetadataNamingTheKey) {
  for (auto [key, value] : {std::pair{"redisHost", "h:notaport"}, std::pair{"timeout", "soon"},
                            std::pair{"enableTLS", "true"}, std::pair{"redisType", "cluster"}}) {
    auto store = RedisStateFactory().Create(Context({{key, value}}));
    ASSERT_FALSE(store.ok()) << key;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(store.status().message(), HasSubstr("state/cache"));
    EXPECT_THAT(store.status().message(), HasSubstr(key));
  }
  // Keys the runtime owns (keyPrefix) or Dapr knobs we do not need are not errors.
  EXPECT_TRUE(RedisStateFactory().Create(Context({{"keyPrefix", "none"}})).ok());
}

TEST_F(RedisStateTest, InitFailsNamingTheHostWhenRedisIsUnreachable) {
  const uint16_t port = test::FreePort();  // nothing listens there
  HealthIndicator health;
  ComponentContext context = Context({{"redisHost", "127.0.0.1:" + std::to_string(port)},
                                      {"dialTimeout", "300ms"},
                                      {"timeout", "300ms"}});
  context.health = &health;
  auto store = RedisStateFactory().Create(context);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::Status status = (*store)->Init();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("state/cache"));
  EXPECT_THAT(status.message(), HasSubstr("127.0.0.1:" + std::to_string(port)));
  EXPECT_EQ(health.state(), HealthState::kDown);
  // An optional component is still called: it fails fast, not hangs.
  auto item = Get(**store, "k");
  EXPECT_EQ(item.status().code(), absl::StatusCode::kUnavailable);
}

// Servers before 7.0 have no PEXPIRETIME; the get script falls back to TIME + PTTL.
TEST(RedisStateOldServerTest, ExpireTimeWithoutPexpiretime) {
  auto server = RedisServer::Start({false, {"--rename-command", "PEXPIRETIME", ""}});
  ASSERT_TRUE(server.ok()) << server.status();
  auto dispatcher = *Dispatcher::Create("state-redis-old");
  dispatcher->Start();
  {
    ComponentContext context;
    context.kind = Kind::kState;
    context.name = "old";
    context.metadata = {{"redisHost", (*server)->address()}};
    context.dispatcher = dispatcher.get();
    auto store = *RedisStateFactory().Create(context);
    ASSERT_TRUE(store->Init().ok());
    ASSERT_NE((*server)->Cli({"PEXPIRETIME", "x"}), "-2");  // the command is really gone
    ASSERT_TRUE(Set(*store, {.key = "hour", .value = "v", .ttl_seconds = 3600}).ok());
    ASSERT_TRUE(Set(*store, "forever", "v").ok());
    auto item = Get(*store, "hour");
    ASSERT_TRUE(item.ok()) << item.status();
    ASSERT_TRUE(item->expire_time.has_value());
    EXPECT_LT(std::chrono::abs(*item->expire_time - (system_clock::now() + seconds(3600))),
              seconds(5));
    EXPECT_FALSE(Get(*store, "forever")->expire_time.has_value());
    EXPECT_FALSE(Get(*store, "missing")->found);
  }
  dispatcher->Stop();
}

// Five operations (writes with and without TTL, a delete, a TTL removal), the last with a stale
// etag: the whole keyspace, values, versions and expiries included, is exactly as before.
TEST_F(RedisStateTest, FailedTransactionLeavesTheKeyspaceUntouched) {
  ASSERT_TRUE(Set(*store_, "x1", "one").ok());
  ASSERT_TRUE(Set(*store_, {.key = "x2", .value = "two", .ttl_seconds = 600}).ok());
  ASSERT_TRUE(Set(*store_, "x3", "three").ok());
  ASSERT_TRUE(Set(*store_, "x4", "four").ok());
  const std::string stale = EtagOf(*store_, "x4");
  ASSERT_TRUE(Set(*store_, "x4", "four-b").ok());
  const auto before = Keyspace(*server_);
  ASSERT_EQ(before.size(), 4u);

  std::vector<Operation> ops = {
      SetRequest{.key = "x1", .value = "changed", .ttl_seconds = 60},
      SetRequest{.key = "x2", .value = "changed"},  // would remove the TTL
      DeleteRequest{.key = "x3"},
      SetRequest{.key = "x5", .value = "new", .etag = ""},
      SetRequest{.key = "x4", .value = "changed", .etag = stale},
  };
  absl::Status status = Transact(*store_, std::move(ops));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("'x4'"));
  EXPECT_THAT(status.message(), HasSubstr("nothing applied"));
  EXPECT_EQ(Keyspace(*server_), before);
}

// Dapr's state.redis layout: a hash with `data` and `version`, written and read both ways.
TEST_F(RedisStateTest, DataLayoutIsDaprs) {
  ASSERT_TRUE(Set(*store_, {.key = "app||order", .value = R"({"id":7})", .ttl_seconds = 600}).ok());
  const std::string etag = EtagOf(*store_, "app||order");
  EXPECT_EQ(server_->Cli({"TYPE", "app||order"}), "hash");
  EXPECT_EQ(server_->Cli({"HGET", "app||order", "data"}), R"({"id":7})");
  EXPECT_EQ(server_->Cli({"HGET", "app||order", "version"}), etag);
  EXPECT_EQ(server_->Cli({"HLEN", "app||order"}), "2");
  EXPECT_GT(std::stoll(server_->Cli({"TTL", "app||order"})), 590);
  // Updates add one to the version, as Dapr's HINCRBY does.
  ASSERT_TRUE(Set(*store_, {.key = "app||order", .value = "v2", .etag = etag}).ok());
  EXPECT_EQ(server_->Cli({"HGET", "app||order", "version"}), std::to_string(std::stoll(etag) + 1));

  // A hash written by another runtime (here redis-cli) reads back, and its etag works.
  server_->Cli({"HSET", "app||dapr", "data", "\"from dapr\"", "version", "7"});
  auto item = Get(*store_, "app||dapr");
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_TRUE(item->found);
  EXPECT_EQ(item->value, "\"from dapr\"");
  EXPECT_EQ(item->etag, "7");
  EXPECT_FALSE(item->expire_time.has_value());
  EXPECT_EQ(Set(*store_, {.key = "app||dapr", .value = "x", .etag = "6"}).code(),
            absl::StatusCode::kAborted);
  ASSERT_TRUE(Set(*store_, {.key = "app||dapr", .value = "ours", .etag = "7"}).ok());
  EXPECT_EQ(server_->Cli({"HGET", "app||dapr", "version"}), "8");
  EXPECT_EQ(server_->Cli({"HGET", "app||dapr", "data"}), "ours");
}

TEST_F(RedisStateTest, AKeyThatIsNotAHashIsReportedNotOverwritten) {
  server_->Cli({"SET", "plain", "string value"});
  auto item = Get(*store_, "plain");
  EXPECT_EQ(item.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(item.status().message(), HasSubstr("'plain'"));
  absl::Status set = Set(*store_, "plain", "v");
  EXPECT_EQ(set.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(set.message(), HasSubstr("state/cache"));
  EXPECT_THAT(set.message(), HasSubstr("'plain'"));
  EXPECT_EQ(
      Transact(*store_, {SetRequest{.key = "other", .value = "v"}, DeleteRequest{.key = "plain"}})
          .code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Found(*store_, "other"));
  EXPECT_EQ(server_->Cli({"GET", "plain"}), "string value");
}

// Strong consistency with a replica: the write returns only once the replica has it; a replica
// that stops acknowledging turns strong writes into DEADLINE_EXCEEDED, eventual ones still pass.
TEST_F(RedisStateTest, StrongWritesWaitForReplicas) {
  std::unique_ptr<RedisServer> replica = StartReplica(*server_);
  ASSERT_NE(replica, nullptr);
  // The fixture's store was initialised without replicas; a new one sees the replica at Init.
  // WAIT waits up to `timeout`: 2 s leaves a loaded machine room, and is long enough for the
  // paused-replica case below to tell a blocked connection from a free one.
  auto store = MakeStore(*server_, {{"timeout", "2s"}});
  ASSERT_TRUE(store->Init().ok());
  EXPECT_EQ(static_cast<RedisStateStore*>(store.get())->ReplicasForTest(), 1);

  for (int i = 0; i < 20; ++i) {
    const std::string value = "v" + std::to_string(i);
    absl::Status status =
        Set(*store, {.key = "k", .value = value, .consistency = Consistency::kStrong});
    ASSERT_TRUE(status.ok()) << status;
    // WAIT returned: the replica has applied the write, read it there at once.
    EXPECT_EQ(replica->Cli({"HGET", "k", "data"}), value);
  }
  ASSERT_TRUE(Transact(*store, {SetRequest{.key = "t", .value = "tv"},
                                DeleteRequest{.key = "k", .consistency = Consistency::kStrong}})
                  .ok());
  EXPECT_EQ(replica->Cli({"HGET", "t", "data"}), "tv");
  EXPECT_EQ(replica->Cli({"EXISTS", "k"}), "0");

  replica->Pause();
  const auto start = std::chrono::steady_clock::now();
  std::promise<absl::Status> strong_result;
  store->Set({.key = "k2", .value = "v", .consistency = Consistency::kStrong},
             [&](absl::Status status) { strong_result.set_value(std::move(status)); });
  // While that write waits for the replica, other requests are not held up behind its WAIT, and
  // eventual writes do not wait at all (they would fail like the strong one if they did).
  EXPECT_TRUE(Set(*store, {.key = "k3", .value = "v"}).ok());
  EXPECT_EQ(ValueOf(*store, "k3"), "v");
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
  absl::Status strong = strong_result.get_future().get();
  EXPECT_EQ(strong.code(), absl::StatusCode::kDeadlineExceeded) << strong;
  EXPECT_THAT(strong.message(), HasSubstr("replicas"));
  EXPECT_THAT(strong.message(), HasSubstr("state/cache"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(4));
  EXPECT_EQ(ValueOf(*store, "k2"), "v");  // applied on the primary, as the message says
  replica->Resume();
  store.reset();
}

// Redis killed: calls fail fast with UNAVAILABLE and health says DOWN; Redis back: the same store
// works again. Every callback runs exactly once across the outage.
TEST_F(RedisStateTest, OutageFailsFastThenRecovers) {
  ASSERT_TRUE(Set(*store_, "before", "kept").ok());
  // Writes in flight while the server dies: each completes exactly once, some with errors.
  constexpr int kInFlight = 2000;
  std::vector<std::atomic<int>> calls(kInFlight);
  std::atomic<int> completed{0};
  for (int i = 0; i < kInFlight; ++i) {
    store_->Set({.key = "f" + std::to_string(i), .value = "v"}, [&, i](absl::Status) {
      calls[i]++;
      completed++;
    });
    if (i == kInFlight / 2) {
      server_->Kill();
    }
  }
  ASSERT_TRUE(test::WaitFor([&] { return completed.load() == kInFlight; }, seconds(5)));
  ASSERT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kDown; }));

  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto item = Get(*store_, "before");
    EXPECT_EQ(item.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(item.status().message(), HasSubstr("state/cache"));
    EXPECT_EQ(Set(*store_, "k", "v").code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(Transact(*store_, {SetRequest{.key = "k", .value = "v"}}).code(),
              absl::StatusCode::kUnavailable);
    EXPECT_EQ(BulkGet(*store_, {"a", "b"}).status().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));

  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kUp; }, seconds(5)));
  EXPECT_EQ(ValueOf(*store_, "before"), "kept");  // AOF replayed
  // Scripts are loaded again on the new connection.
  ASSERT_TRUE(Set(*store_, {.key = "after", .value = "v", .etag = ""}).ok());
  EXPECT_EQ(ValueOf(*store_, "after"), "v");
  for (int i = 0; i < kInFlight; ++i) {
    EXPECT_EQ(calls[i].load(), 1) << i;
  }
}

}  // namespace
}  // namespace ottava::components::state
