#include "components/lock/redis/redis_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/dispatcher.h"
#include "components/common/redis/redis_component_test_env.h"
#include "components/lock/lock_conformance.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

// The conformance checklist of dapr-api.md §4.3 (components/lock/lock_conformance.cc) and the lock
// contract of reliability.md §1.4 against a real redis-server.

namespace ottava::components::lock {
namespace {

using conformance::KeepAlive;
using conformance::LockConformanceTest;
using conformance::TryLock;
using conformance::Unlock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test::RedisServer;
using ::testing::HasSubstr;

// A redis-server with a store on it: what every test here, shared or not, starts from.
class RedisLockEnv : public RedisComponentTestEnv<LockStore, RedisLockFactory> {
 protected:
  RedisLockEnv() : RedisComponentTestEnv(Kind::kLock, "locks", "lock-redis", "500ms") {}
};

// The shared conformance suite on a fresh server per test; redis-cli checks the keyspace.
class RedisHarness : public conformance::LockStoreHarness, private RedisLockEnv {
 public:
  static std::unique_ptr<conformance::LockStoreHarness> Make() {
    auto harness = std::make_unique<RedisHarness>();
    return harness->Start() ? std::move(harness) : nullptr;
  }
  ~RedisHarness() override { Stop(); }
  LockStore& store() override { return *store_; }
  std::optional<std::string> Backend(const std::vector<std::string>& command) override {
    return server_->Cli(command);
  }
};

INSTANTIATE_TEST_SUITE_P(Redis,
                         LockConformanceTest,
                         ::testing::Values(conformance::LockConformanceParam{
                             .name = "redis", .label = "lock/locks", .make = &RedisHarness::Make}),
                         conformance::LockConformanceName());

class RedisLockTest : public ::testing::Test, protected RedisLockEnv {
 protected:
  void SetUp() override { ASSERT_TRUE(Start()); }
  void TearDown() override { Stop(); }
};

TEST_F(RedisLockTest, FactoryCreatesAndReportsHealth) {
  EXPECT_EQ(RedisLockFactory().type(), "redis");
  EXPECT_EQ(health_.state(), HealthState::kUp);
  for (auto [key, value] : {std::pair{"redisHost", "h:notaport"}, std::pair{"allowReplicas", "yes"},
                            std::pair{"failover", "true"}}) {
    auto bad = RedisLockFactory().Create(Context({{key, value}}));
    ASSERT_FALSE(bad.ok()) << key;
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(bad.status().message(), HasSubstr("lock/locks"));
    EXPECT_THAT(bad.status().message(), HasSubstr(key));
  }
}

// The stored form: a string key holding the owner, with a millisecond expiry.
TEST_F(RedisLockTest, LockIsAKeyWithOwnerAndExpiry) {
  ASSERT_EQ(TryLock(*store_, "lock||app||orders", "owner-uuid", 30).value(), true);
  EXPECT_EQ(server_->Cli({"GET", "lock||app||orders"}), "owner-uuid");
  const int64_t pttl = std::stoll(server_->Cli({"PTTL", "lock||app||orders"}));
  EXPECT_GT(pttl, 29000);
  EXPECT_LE(pttl, 30000);
  EXPECT_EQ(Unlock(*store_, "lock||app||orders", "owner-uuid").value(), LockStatus::kSuccess);
  EXPECT_EQ(server_->Cli({"EXISTS", "lock||app||orders"}), "0");
}

TEST_F(RedisLockTest, ExpiredLockCannotBeUnlockedOrKeptAlive) {
  ASSERT_EQ(TryLock(*store_, "r1", "owner", 1).value(), true);
  ASSERT_EQ(TryLock(*store_, "r2", "owner", 1).value(), true);
  ASSERT_TRUE(test::WaitFor([&] { return server_->Cli({"EXISTS", "r2"}) == "0"; }, seconds(5)));
  ASSERT_TRUE(test::WaitFor([&] { return server_->Cli({"EXISTS", "r1"}) == "0"; }, seconds(5)));
  EXPECT_EQ(Unlock(*store_, "r1", "owner").value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(KeepAlive(*store_, "r2", "owner", 10).value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(server_->Cli({"EXISTS", "r2"}), "0");  // KeepAlive did not resurrect it
  EXPECT_EQ(TryLock(*store_, "r2", "other", 10).value(), true);
}

// A holder whose lock expired and was taken by another owner cannot release the new grant.
TEST_F(RedisLockTest, ExpiredAndRetakenLockStaysWithTheNewOwner) {
  ASSERT_EQ(TryLock(*store_, "r", "old", 1).value(), true);
  ASSERT_TRUE(
      test::WaitFor([&] { return TryLock(*store_, "r", "new", 30).value_or(false); }, seconds(5)));
  EXPECT_EQ(Unlock(*store_, "r", "old").value(), LockStatus::kLockBelongsToOthers);
  EXPECT_EQ(KeepAlive(*store_, "r", "old", 30).value(), LockStatus::kLockBelongsToOthers);
  EXPECT_EQ(server_->Cli({"GET", "r"}), "new");
  EXPECT_EQ(TryLock(*store_, "r", "third", 30).value(), false);
  EXPECT_EQ(Unlock(*store_, "r", "new").value(), LockStatus::kSuccess);
}

TEST_F(RedisLockTest, KeepAliveExtendsOnlyTheOwnersLock) {
  EXPECT_EQ(KeepAlive(*store_, "r", "owner", 10).value(), LockStatus::kLockDoesNotExist);
  ASSERT_EQ(TryLock(*store_, "r", "owner", 2).value(), true);
  EXPECT_EQ(KeepAlive(*store_, "r", "other", 30).value(), LockStatus::kLockBelongsToOthers);
  EXPECT_LE(std::stoll(server_->Cli({"PTTL", "r"})), 2000);  // the foreign renewal changed nothing
  EXPECT_EQ(KeepAlive(*store_, "r", "owner", 30).value(), LockStatus::kSuccess);
  EXPECT_GT(std::stoll(server_->Cli({"PTTL", "r"})), 29000);
  EXPECT_EQ(server_->Cli({"GET", "r"}), "owner");
  EXPECT_EQ(TryLock(*store_, "r", "other", 10).value(), false);
  EXPECT_EQ(Unlock(*store_, "r", "owner").value(), LockStatus::kSuccess);
}

// A primary with a replica: Init refuses (asynchronous replication can grant a lock twice on
// failover) unless allowReplicas=true; a replica that appears later stops new grants.
TEST_F(RedisLockTest, RefusesARedisWithReplicasUnlessAllowed) {
  // Taken before the replica exists; must stay releasable afterwards.
  ASSERT_EQ(TryLock(*store_, "held", "owner", 60).value(), true);
  // The fixture's store re-reads the replica count every 100 ms.
  RedisLockSettings settings = *RedisLockSettings::Parse(MetadataFor(*server_));
  settings.replica_check_interval = milliseconds(100);
  HealthIndicator health;
  ComponentContext context = Context({});
  context.health = &health;
  auto watching = RedisLockStore::Create(context, settings);
  ASSERT_TRUE(watching.ok());
  ASSERT_TRUE((*watching)->Init().ok());
  ASSERT_EQ(TryLock(**watching, "before", "owner", 60).value(), true);

  server_->Cli({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});
  auto replica =
      RedisServer::Start({false, {"--replicaof", "127.0.0.1", std::to_string(server_->port())}});
  ASSERT_TRUE(replica.ok()) << replica.status();
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return server_->Cli({"INFO", "replication"}).find("connected_slaves:1") !=
               std::string::npos;
      },
      seconds(10)));

  auto refused = MakeStore(*server_);
  absl::Status status = refused->Init();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("lock/locks"));
  EXPECT_THAT(status.message(), HasSubstr("replica"));
  EXPECT_THAT(status.message(), HasSubstr("asynchronous"));
  EXPECT_THAT(status.message(), HasSubstr("allowReplicas"));
  // Even called after a failed Init (an optional component), it grants nothing.
  EXPECT_EQ(TryLock(*refused, "x", "owner", 10).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // The running store notices within a few checks and refuses new grants; releasing still works.
  ASSERT_TRUE(test::WaitFor(
      [&] {
        return TryLock(**watching, "y", "owner", 10).status().code() ==
               absl::StatusCode::kFailedPrecondition;
      },
      seconds(5)));
  EXPECT_EQ(Unlock(**watching, "before", "owner").value(), LockStatus::kSuccess);
  EXPECT_EQ(server_->Cli({"EXISTS", "x"}), "0");

  auto allowed = MakeStore(*server_, {{"allowReplicas", "true"}});
  ASSERT_TRUE(allowed->Init().ok());
  EXPECT_EQ(TryLock(*allowed, "x", "owner", 10).value(), true);
  EXPECT_EQ(Unlock(*allowed, "held", "owner").value(), LockStatus::kSuccess);
  allowed.reset();
  refused.reset();
  watching->reset();
}

// Redis down: every call is an error, never a grant or a success; health says DOWN. Redis back
// (AOF replayed): the same store works again and the lock taken before the outage still holds.
TEST_F(RedisLockTest, BackendFailureIsAnErrorNeverAGrant) {
  ASSERT_EQ(TryLock(*store_, "r", "owner", 60).value(), true);
  server_->Kill();
  ASSERT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kDown; }));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto granted = TryLock(*store_, "other", "owner", 10);
    ASSERT_FALSE(granted.ok());
    EXPECT_EQ(granted.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(granted.status().message(), HasSubstr("lock/locks"));
    EXPECT_EQ(Unlock(*store_, "r", "owner").status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(KeepAlive(*store_, "r", "owner", 60).status().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));

  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kUp; }, seconds(5)));
  EXPECT_EQ(TryLock(*store_, "r", "intruder", 10).value(), false);
  EXPECT_EQ(Unlock(*store_, "r", "intruder").value(), LockStatus::kLockBelongsToOthers);
  EXPECT_EQ(Unlock(*store_, "r", "owner").value(), LockStatus::kSuccess);
}

// A server that hangs (SIGSTOP) fails calls within the timeout instead of granting or hanging.
TEST_F(RedisLockTest, AHungServerFailsCallsWithinTheTimeout) {
  server_->Pause();
  const auto start = std::chrono::steady_clock::now();
  auto granted = TryLock(*store_, "r", "owner", 10);
  const auto took = std::chrono::steady_clock::now() - start;
  server_->Resume();
  ASSERT_FALSE(granted.ok());
  EXPECT_EQ(granted.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(took, milliseconds(1500));  // timeout is 500 ms
  ASSERT_TRUE(test::WaitFor([&] { return Unlock(*store_, "none", "owner").ok(); }, seconds(5)));
}

TEST_F(RedisLockTest, InitFailsNamingTheHostWhenRedisIsUnreachable) {
  const uint16_t port = test::FreePort();
  HealthIndicator health;
  ComponentContext context = Context({{"redisHost", "127.0.0.1:" + std::to_string(port)},
                                      {"dialTimeout", "300ms"},
                                      {"timeout", "300ms"}});
  context.health = &health;
  auto store = RedisLockFactory().Create(context);
  ASSERT_TRUE(store.ok());
  absl::Status status = (*store)->Init();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("lock/locks"));
  EXPECT_THAT(status.message(), HasSubstr("127.0.0.1:" + std::to_string(port)));
  EXPECT_EQ(health.state(), HealthState::kDown);
  EXPECT_EQ(TryLock(**store, "r", "owner", 10).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ottava::components::lock
