#include "components/lock/in_memory/in_memory_lock.h"

#include <gtest/gtest.h>

#include <string>

#include "common/dispatcher.h"
#include "components/lock/lock_conformance.h"

namespace ottava::components::lock {
namespace {

using conformance::KeepAlive;
using conformance::LockConformanceTest;
using conformance::TryLock;
using conformance::Unlock;
using conformance::WaitUntil;

ComponentContext Context(Dispatcher* dispatcher = nullptr) {
  ComponentContext context;
  context.kind = Kind::kLock;
  context.name = "mem";
  context.type = "in-memory";
  context.app_id = "app";
  context.dispatcher = dispatcher;
  return context;
}

// The shared conformance suite (components/lock/lock_conformance.cc) on a fresh store per test.
class InMemoryHarness : public conformance::LockStoreHarness {
 public:
  InMemoryHarness() { EXPECT_TRUE(store_.Init().ok()); }
  LockStore& store() override { return store_; }

 private:
  InMemoryLockStore store_{Context()};
};

INSTANTIATE_TEST_SUITE_P(InMemory,
                         LockConformanceTest,
                         ::testing::Values(conformance::LockConformanceParam{
                             .name = "mem",
                             .label = "lock/mem",
                             .make = [] { return std::make_unique<InMemoryHarness>(); }}),
                         conformance::LockConformanceName());

class InMemoryLockTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.Init().ok()); }
  InMemoryLockStore store_{Context()};
};

TEST(InMemoryLockFactoryTest, CreatesAndReportsHealth) {
  InMemoryLockFactory factory;
  EXPECT_EQ(factory.type(), "in-memory");
  HealthIndicator health;
  ComponentContext context = Context();
  context.health = &health;
  auto store = factory.Create(context);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Init().ok());
  EXPECT_EQ(health.state(), HealthState::kUp);
}

TEST_F(InMemoryLockTest, ExpiredLockCannotBeUnlockedOrKeptAlive) {
  ASSERT_EQ(TryLock(store_, "r1", "owner", 1).value(), true);
  ASSERT_EQ(TryLock(store_, "r2", "owner", 1).value(), true);
  // The witness is taken last, so once another owner gets it, r1 and r2 have expired too. (Polling
  // r1 or r2 themselves would release or extend them.)
  ASSERT_EQ(TryLock(store_, "witness", "owner", 1).value(), true);
  ASSERT_TRUE(WaitUntil([&] { return TryLock(store_, "witness", "other", 1).value_or(false); }));
  EXPECT_EQ(Unlock(store_, "r1", "owner").value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(KeepAlive(store_, "r2", "owner", 10).value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(TryLock(store_, "r2", "other", 10).value(), true);
}

TEST_F(InMemoryLockTest, KeepAliveExtendsOnlyTheOwnersLock) {
  EXPECT_EQ(KeepAlive(store_, "r", "owner", 10).value(), LockStatus::kLockDoesNotExist);
  ASSERT_EQ(TryLock(store_, "r", "owner", 1).value(), true);
  ASSERT_EQ(TryLock(store_, "witness", "owner", 1).value(),
            true);  // taken after r: expires after it
  EXPECT_EQ(KeepAlive(store_, "r", "other", 10).value(), LockStatus::kLockBelongsToOthers);
  EXPECT_EQ(KeepAlive(store_, "r", "owner", 10).value(), LockStatus::kSuccess);
  // Once the witness has expired, r's original deadline has passed too; r is still held.
  ASSERT_TRUE(WaitUntil([&] { return TryLock(store_, "witness", "other", 1).value_or(false); }));
  EXPECT_EQ(TryLock(store_, "r", "other", 10).value(), false);
  EXPECT_EQ(Unlock(store_, "r", "owner").value(), LockStatus::kSuccess);
}

TEST(InMemoryLockSweepTest, SweepsExpiredLocksOnTheDispatcher) {
  auto dispatcher = Dispatcher::Create("lock-test");
  ASSERT_TRUE(dispatcher.ok());
  (*dispatcher)->Start();
  {
    InMemoryLockStore store(Context(dispatcher->get()), std::chrono::milliseconds(50));
    ASSERT_TRUE(store.Init().ok());
    for (int i = 0; i < 100; ++i) {
      ASSERT_EQ(TryLock(store, "r" + std::to_string(i), "owner", 1).value(), true);
    }
    EXPECT_EQ(store.EntryCountForTest(), 100u);
    EXPECT_TRUE(WaitUntil([&] { return store.EntryCountForTest() == 0; }));
    store.Shutdown();
  }
  (*dispatcher)->Stop();
}

}  // namespace
}  // namespace ottava::components::lock
