#include "components/lock/lock_conformance.h"

#include <gmock/gmock.h>

#include <atomic>
#include <future>
#include <thread>

namespace ottava::components::lock::conformance {

using ::testing::HasSubstr;

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

namespace {

// Conformance (dapr-api.md §4.3), with the 3 s lock shortened to 1 s.
TEST_P(LockConformanceTest, Conformance) {
  EXPECT_EQ(TryLock(store(), "res1", "owner1", 15).value(), true);
  EXPECT_EQ(TryLock(store(), "res2", "owner1", 1).value(), true);
  // Not re-entrant: the same owner is refused, without an error.
  EXPECT_EQ(TryLock(store(), "res1", "owner1", 15).value(), false);
  EXPECT_EQ(Unlock(store(), "nonexistent", "owner1").value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(Unlock(store(), "res1", "owner2").value(), LockStatus::kLockBelongsToOthers);
  // A foreign unlock leaves the lock in place.
  EXPECT_EQ(TryLock(store(), "res1", "owner2", 15).value(), false);
  if (auto owner = harness_->Backend({"GET", "res1"})) {
    EXPECT_EQ(*owner, "owner1");
  }
  EXPECT_EQ(Unlock(store(), "res1", "owner1").value(), LockStatus::kSuccess);
  EXPECT_EQ(Unlock(store(), "res1", "owner1").value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(TryLock(store(), "res1", "owner2", 15).value(), true);
  // Expiry is enforced: res2 can be taken again within a bounded wait.
  EXPECT_EQ(TryLock(store(), "res2", "owner2", 1).value(), false);
  EXPECT_TRUE(WaitUntil([&] { return TryLock(store(), "res2", "owner2", 10).value_or(false); }));
}

TEST_P(LockConformanceTest, RejectsNonPositiveExpiry) {
  auto granted = TryLock(store(), "r", "owner", 0);
  ASSERT_FALSE(granted.ok());
  EXPECT_EQ(granted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(granted.status().message(), HasSubstr(GetParam().label));
  if (auto exists = harness_->Backend({"EXISTS", "r"})) {
    EXPECT_EQ(*exists, "0");
  }
  ASSERT_EQ(TryLock(store(), "r", "owner", 5).value(), true);
  EXPECT_EQ(KeepAlive(store(), "r", "owner", -1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// 16 threads x 500 rounds over one resource, with an overlap detector: no double grant.
TEST_P(LockConformanceTest, NoDoubleGrantUnderContention) {
  constexpr int kThreads = 16;
  constexpr int kRounds = 500;
  std::atomic<int> holders{0};
  std::atomic<int> double_grants{0};
  std::atomic<int> bad_unlocks{0};
  std::atomic<int> refusals{0};
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
          auto granted = TryLock(store(), "shared", owner, 30);
          if (!granted.ok()) {
            errors++;
            return;
          }
          if (*granted) {
            break;
          }
          refusals++;
          std::this_thread::yield();
        }
        if (holders.fetch_add(1) != 0) {
          double_grants++;
        }
        const int seen = protected_counter.load(std::memory_order_relaxed);
        std::this_thread::yield();
        protected_counter.store(seen + 1, std::memory_order_relaxed);
        holders.fetch_sub(1);
        if (Unlock(store(), "shared", owner).value_or(LockStatus::kLockDoesNotExist) !=
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
  EXPECT_GT(refusals.load(), 0) << "the test never contended";
  if (auto exists = harness_->Backend({"EXISTS", "shared"})) {
    EXPECT_EQ(*exists, "0");
  }
}

}  // namespace
}  // namespace ottava::components::lock::conformance
