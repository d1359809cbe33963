#include "components/lock/in_memory/in_memory_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/dispatcher.h"

namespace ottava::components::lock {
namespace {

using ::testing::HasSubstr;

ComponentContext Context(Dispatcher* dispatcher = nullptr) {
  ComponentContext context;
  context.kind = Kind::kLock;
  context.name = "mem";
  context.type = "in-memory";
  context.app_id = "app";
  context.dispatcher = dispatcher;
  return context;
}

absl::StatusOr<bool> TryLock(LockStore& store,
                             const std::string& resource,
                             const std::string& owner,
                             int32_t expire_seconds) {
  std::promise<absl::StatusOr<bool>> result;
  store.TryLock({.resource_id = resource, .owner = owner, .expire_seconds = expire_seconds},
                [&](absl::StatusOr<bool> granted) { result.set_value(std::move(granted)); });
  return result.get_future().get();
}

absl::StatusOr<LockStatus> Unlock(LockStore& store,
                                  const std::string& resource,
                                  const std::string& owner) {
  std::promise<absl::StatusOr<LockStatus>> result;
  store.Unlock({.resource_id = resource, .owner = owner},
               [&](absl::StatusOr<LockStatus> status) { result.set_value(std::move(status)); });
  return result.get_future().get();
}

absl::StatusOr<LockStatus> KeepAlive(LockStore& store,
                                     const std::string& resource,
                                     const std::string& owner,
                                     int32_t expire_seconds) {
  std::promise<absl::StatusOr<LockStatus>> result;
  store.KeepAlive({.resource_id = resource, .owner = owner, .expire_seconds = expire_seconds},
                  [&](absl::StatusOr<LockStatus> status) { result.set_value(std::move(status)); });
  return result.get_future().get();
}

template <class Pred>
bool WaitUntil(Pred done, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

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

// Conformance (dapr-api.md §4.3), with the 3 s lock shortened to 1 s.
TEST_F(InMemoryLockTest, Conformance) {
  EXPECT_EQ(TryLock(store_, "res1", "owner1", 15).value(), true);
  EXPECT_EQ(TryLock(store_, "res2", "owner1", 1).value(), true);
  // Not re-entrant: the same owner is refused, without an error.
  EXPECT_EQ(TryLock(store_, "res1", "owner1", 15).value(), false);
  EXPECT_EQ(Unlock(store_, "nonexistent", "owner1").value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(Unlock(store_, "res1", "owner2").value(), LockStatus::kLockBelongsToOthers);
  // A foreign unlock leaves the lock in place.
  EXPECT_EQ(TryLock(store_, "res1", "owner2", 15).value(), false);
  EXPECT_EQ(Unlock(store_, "res1", "owner1").value(), LockStatus::kSuccess);
  EXPECT_EQ(Unlock(store_, "res1", "owner1").value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(TryLock(store_, "res1", "owner2", 15).value(), true);
  // Expiry is enforced: res2 can be taken again within a bounded wait.
  EXPECT_EQ(TryLock(store_, "res2", "owner2", 1).value(), false);
  EXPECT_TRUE(WaitUntil([&] { return TryLock(store_, "res2", "owner2", 10).value_or(false); }));
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

TEST_F(InMemoryLockTest, RejectsNonPositiveExpiry) {
  auto granted = TryLock(store_, "r", "owner", 0);
  ASSERT_FALSE(granted.ok());
  EXPECT_EQ(granted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(granted.status().message(), HasSubstr("lock/mem"));
  ASSERT_EQ(TryLock(store_, "r", "owner", 5).value(), true);
  EXPECT_EQ(KeepAlive(store_, "r", "owner", -1).status().code(),
            absl::StatusCode::kInvalidArgument);
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

// 16 threads x 500 rounds over one resource, with an overlap detector: no double grant.
TEST_F(InMemoryLockTest, NoDoubleGrantUnderContention) {
  constexpr int kThreads = 16;
  constexpr int kRounds = 500;
  std::atomic<int> holders{0};
  std::atomic<int> double_grants{0};
  std::atomic<int> bad_unlocks{0};
  std::atomic<int> errors{0};
  // Guarded by the lock under test: relaxed load + store, so an overlap loses an update.
  std::atomic<int> protected_counter{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string owner = "owner-" + std::to_string(t);
      while (!go.load()) {
        std::this_thread::yield();
      }
      for (int round = 0; round < kRounds; ++round) {
        for (;;) {
          auto granted = TryLock(store_, "shared", owner, 30);
          if (!granted.ok()) {
            errors++;
            return;
          }
          if (*granted) {
            break;
          }
          std::this_thread::yield();
        }
        if (holders.fetch_add(1) != 0) {
          double_grants++;
        }
        const int seen = protected_counter.load(std::memory_order_relaxed);
        std::this_thread::yield();
        protected_counter.store(seen + 1, std::memory_order_relaxed);
        holders.fetch_sub(1);
        if (Unlock(store_, "shared", owner).value_or(LockStatus::kLockDoesNotExist) !=
            LockStatus::kSuccess) {
          bad_unlocks++;
        }
      }
    });
  }
  go = true;
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(double_grants.load(), 0);
  EXPECT_EQ(bad_unlocks.load(), 0);
  EXPECT_EQ(protected_counter.load(), kThreads * kRounds);
}

}  // namespace
}  // namespace ottava::components::lock
