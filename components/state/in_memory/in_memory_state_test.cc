#include "components/state/in_memory/in_memory_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/dispatcher.h"

namespace ottava::components::state {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;
using ::testing::HasSubstr;

ComponentContext Context(Dispatcher* dispatcher = nullptr, Metadata metadata = {}) {
  ComponentContext context;
  context.kind = Kind::kState;
  context.name = "mem";
  context.type = "in-memory";
  context.metadata = std::move(metadata);
  context.app_id = "app";
  context.dispatcher = dispatcher;
  return context;
}

// Synchronous wrappers; they work whether the store answers inline or later.
absl::StatusOr<Item> Get(StateStore& store, const std::string& key) {
  std::promise<absl::StatusOr<Item>> result;
  store.Get({.key = key}, [&](absl::StatusOr<Item> item) { result.set_value(std::move(item)); });
  return result.get_future().get();
}

absl::StatusOr<std::vector<Item>> BulkGet(StateStore& store, const std::vector<std::string>& keys) {
  std::vector<GetRequest> requests;
  for (const auto& key : keys) {
    requests.push_back({.key = key});
  }
  std::promise<absl::StatusOr<std::vector<Item>>> result;
  store.BulkGet(std::move(requests), [&](absl::StatusOr<std::vector<Item>> items) {
    result.set_value(std::move(items));
  });
  return result.get_future().get();
}

absl::Status Set(StateStore& store, SetRequest request) {
  std::promise<absl::Status> result;
  store.Set(std::move(request), [&](absl::Status status) { result.set_value(std::move(status)); });
  return result.get_future().get();
}

absl::Status Set(StateStore& store, const std::string& key, const std::string& value) {
  return Set(store, SetRequest{.key = key, .value = value});
}

absl::Status Delete(StateStore& store, DeleteRequest request) {
  std::promise<absl::Status> result;
  store.Delete(std::move(request),
               [&](absl::Status status) { result.set_value(std::move(status)); });
  return result.get_future().get();
}

absl::Status Transact(StateStore& store, std::vector<Operation> operations) {
  std::promise<absl::Status> result;
  store.Transact(std::move(operations),
                 [&](absl::Status status) { result.set_value(std::move(status)); });
  return result.get_future().get();
}

std::string EtagOf(StateStore& store, const std::string& key) {
  auto item = Get(store, key);
  EXPECT_TRUE(item.ok()) << item.status();
  return item.ok() ? item->etag : "";
}

// Polls `done` until it holds or `timeout` passes.
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

class InMemoryStateTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.Init().ok()); }
  InMemoryStateStore store_{Context(), InMemoryStateSettings{}};
};

TEST(InMemoryStateFactoryTest, CreatesAndReportsHealth) {
  InMemoryStateFactory factory;
  EXPECT_EQ(factory.type(), "in-memory");
  HealthIndicator health;
  ComponentContext context = Context();
  context.health = &health;
  auto store = factory.Create(context);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(health.state(), HealthState::kInit);
  ASSERT_TRUE((*store)->Init().ok());
  EXPECT_EQ(health.state(), HealthState::kUp);
  Features features = (*store)->features();
  EXPECT_TRUE(features.etag);
  EXPECT_TRUE(features.transactional);
  EXPECT_TRUE(features.ttl);
}

TEST(InMemoryStateFactoryTest, RejectsBadSweepInterval) {
  InMemoryStateFactory factory;
  for (const char* bad : {"", "abc", "0", "-5", "10ms"}) {
    auto store = factory.Create(Context(nullptr, {{"sweepIntervalMs", bad}}));
    ASSERT_FALSE(store.ok()) << bad;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(store.status().message(), HasSubstr("state/mem"));
    EXPECT_THAT(store.status().message(), HasSubstr("sweepIntervalMs"));
  }
  EXPECT_TRUE(factory.Create(Context(nullptr, {{"sweepIntervalMs", "250"}})).ok());
  // Keys the runtime owns (keyPrefix) are not the store's business.
  EXPECT_TRUE(factory.Create(Context(nullptr, {{"keyPrefix", "none"}})).ok());
}

// Conformance: set/get round-trip of assorted values, byte-exact.
TEST_F(InMemoryStateTest, RoundTripsValuesByteExact) {
  const std::vector<std::pair<std::string, std::string>> values = {
      {"int", "123"},
      {"bool", "true"},
      {"bytes", std::string("\x01", 1)},
      {"binary", std::string("a\0b\xff", 4)},
      {"json", R"({"a":1,"b":"two"})"},
      {"quoted", "\"hello\""},
      {"empty", ""},
  };
  for (const auto& [key, value] : values) {
    ASSERT_TRUE(Set(store_, key, value).ok()) << key;
  }
  for (const auto& [key, value] : values) {
    auto item = Get(store_, key);
    ASSERT_TRUE(item.ok()) << item.status();
    EXPECT_TRUE(item->found) << key;
    EXPECT_EQ(item->key, key);
    EXPECT_EQ(item->value, value) << key;
    EXPECT_FALSE(item->expire_time.has_value());
  }
}

// Conformance: a missing key is not an error; delete then get gives no data.
TEST_F(InMemoryStateTest, MissingKeyIsNotAnError) {
  auto missing = Get(store_, "nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->found);
  EXPECT_EQ(missing->key, "nope");
  EXPECT_TRUE(missing->value.empty());
  EXPECT_TRUE(missing->etag.empty());

  ASSERT_TRUE(Set(store_, "k", "v").ok());
  ASSERT_TRUE(Delete(store_, {.key = "k"}).ok());
  auto deleted = Get(store_, "k");
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(deleted->found);
  EXPECT_TRUE(deleted->etag.empty());  // deleted keys have no etag
  // Deleting an absent key without an etag is fine.
  EXPECT_TRUE(Delete(store_, {.key = "k"}).ok());
  EXPECT_TRUE(Delete(store_, {.key = "never"}).ok());
}

// Conformance: bulk get returns every requested key in order, a missing one with empty data.
TEST_F(InMemoryStateTest, BulkGetReturnsEveryKeyInOrder) {
  ASSERT_TRUE(Set(store_, "a", "1").ok());
  ASSERT_TRUE(Set(store_, "c", "3").ok());
  auto items = BulkGet(store_, {"c", "missing", "a"});
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 3u);
  EXPECT_EQ((*items)[0].key, "c");
  EXPECT_EQ((*items)[0].value, "3");
  EXPECT_FALSE((*items)[0].etag.empty());
  EXPECT_EQ((*items)[1].key, "missing");
  EXPECT_FALSE((*items)[1].found);
  EXPECT_TRUE((*items)[1].value.empty());
  EXPECT_EQ((*items)[2].key, "a");
  EXPECT_EQ((*items)[2].value, "1");
  EXPECT_EQ((*items)[2].etag, EtagOf(store_, "a"));
}

// Conformance: etags on new keys, mismatch, update, delete.
TEST_F(InMemoryStateTest, EtagsAreCheckedOnSetAndDelete) {
  ASSERT_TRUE(Set(store_, "k", "v1").ok());
  const std::string etag1 = EtagOf(store_, "k");
  ASSERT_FALSE(etag1.empty());
  EXPECT_EQ(etag1.find_first_not_of("0123456789"), std::string::npos) << etag1;

  const std::string wrong = std::to_string(std::stoull(etag1) + 1000);
  absl::Status mismatch = Set(store_, {.key = "k", .value = "x", .etag = wrong});
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(mismatch.message(), HasSubstr("state/mem"));
  EXPECT_THAT(mismatch.message(), HasSubstr("'k'"));
  EXPECT_EQ(Get(store_, "k")->value, "v1");

  ASSERT_TRUE(Set(store_, {.key = "k", .value = "v2", .etag = etag1}).ok());
  const std::string etag2 = EtagOf(store_, "k");
  EXPECT_NE(etag2, etag1);
  EXPECT_EQ(Get(store_, "k")->value, "v2");
  // The old etag no longer matches.
  EXPECT_EQ(Set(store_, {.key = "k", .value = "v3", .etag = etag1}).code(),
            absl::StatusCode::kAborted);

  EXPECT_EQ(Delete(store_, {.key = "k", .etag = etag1}).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(Get(store_, "k")->found);
  EXPECT_TRUE(Delete(store_, {.key = "k", .etag = etag2}).ok());
  EXPECT_FALSE(Get(store_, "k")->found);
}

TEST_F(InMemoryStateTest, MalformedEtagIsInvalidArgument) {
  ASSERT_TRUE(Set(store_, "k", "v").ok());
  for (const char* bad : {"bad-etag", "12a", " 1", "-1", "99999999999999999999999"}) {
    absl::Status set = Set(store_, {.key = "k", .value = "x", .etag = bad});
    EXPECT_EQ(set.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(set.message(), HasSubstr("malformed etag"));
    EXPECT_THAT(set.message(), HasSubstr("state/mem"));
    EXPECT_THAT(set.message(), HasSubstr("'k'"));
    EXPECT_EQ(Delete(store_, {.key = "k", .etag = bad}).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Get(store_, "k")->value, "v");
}

TEST_F(InMemoryStateTest, EtagOnAbsentKeyIsAMismatch) {
  EXPECT_EQ(Set(store_, {.key = "absent", .value = "x", .etag = "1"}).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(Delete(store_, {.key = "absent", .etag = "1"}).code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(Get(store_, "absent")->found);
}

TEST_F(InMemoryStateTest, EtagsAreNotReusedAfterDeleteAndRecreate) {
  ASSERT_TRUE(Set(store_, "k", "v1").ok());
  const std::string old_etag = EtagOf(store_, "k");
  ASSERT_TRUE(Delete(store_, {.key = "k"}).ok());
  ASSERT_TRUE(Set(store_, "k", "v2").ok());
  EXPECT_NE(EtagOf(store_, "k"), old_etag);
  EXPECT_EQ(Set(store_, {.key = "k", .value = "v3", .etag = old_etag}).code(),
            absl::StatusCode::kAborted);
}

TEST_F(InMemoryStateTest, LastWriteWithoutEtagIsUnconditional) {
  ASSERT_TRUE(Set(store_, "k", "v1").ok());
  ASSERT_TRUE(
      Set(store_, {.key = "k", .value = "v2", .concurrency = Concurrency::kLastWrite}).ok());
  ASSERT_TRUE(Set(store_, "k", "v3").ok());
  EXPECT_EQ(Get(store_, "k")->value, "v3");
}

// Conformance: first-write without etag (absent or empty) = insert only.
TEST_F(InMemoryStateTest, FirstWriteWithoutEtagCreatesOnlyIfAbsent) {
  SetRequest no_etag{.key = "a", .value = "1", .concurrency = Concurrency::kFirstWrite};
  ASSERT_TRUE(Set(store_, no_etag).ok());
  no_etag.value = "2";
  absl::Status second = Set(store_, no_etag);
  EXPECT_EQ(second.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.message(), HasSubstr("'a'"));
  EXPECT_EQ(Get(store_, "a")->value, "1");

  SetRequest empty_etag{
      .key = "b", .value = "1", .etag = "", .concurrency = Concurrency::kFirstWrite};
  ASSERT_TRUE(Set(store_, empty_etag).ok());
  empty_etag.value = "2";
  EXPECT_EQ(Set(store_, empty_etag).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Get(store_, "b")->value, "1");

  // An empty etag is never "no etag" (dapr/dapr#2320), whatever the concurrency.
  EXPECT_EQ(Set(store_, {.key = "b", .value = "3", .etag = ""}).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Get(store_, "b")->value, "1");
}

// Conformance: first-write with etag.
TEST_F(InMemoryStateTest, FirstWriteWithEtag) {
  ASSERT_TRUE(Set(store_, "k", "v1").ok());
  const std::string etag1 = EtagOf(store_, "k");
  ASSERT_TRUE(
      Set(store_,
          {.key = "k", .value = "v2", .etag = etag1, .concurrency = Concurrency::kFirstWrite})
          .ok());
  EXPECT_NE(EtagOf(store_, "k"), etag1);
  EXPECT_EQ(Set(store_,
                {.key = "k", .value = "v3", .etag = etag1, .concurrency = Concurrency::kFirstWrite})
                .code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(Get(store_, "k")->value, "v2");
}

// Conformance: TTL of a couple of seconds: readable at once, gone soon after.
TEST_F(InMemoryStateTest, TtlExpiresItems) {
  const auto before = system_clock::now();
  ASSERT_TRUE(Set(store_, {.key = "short", .value = "v", .ttl_seconds = 1}).ok());
  auto item = Get(store_, "short");
  ASSERT_TRUE(item.ok());
  EXPECT_TRUE(item->found);
  ASSERT_TRUE(item->expire_time.has_value());
  EXPECT_GE(*item->expire_time, before + seconds(1));
  EXPECT_LE(*item->expire_time, system_clock::now() + seconds(1));
  EXPECT_TRUE(WaitUntil([&] { return !Get(store_, "short")->found; }));
  // Once expired the key is absent in every respect.
  EXPECT_TRUE(Get(store_, "short")->etag.empty());
  EXPECT_EQ(Set(store_, {.key = "short", .value = "x", .etag = item->etag}).code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(
      Set(store_, {.key = "short", .value = "new", .concurrency = Concurrency::kFirstWrite}).ok());
}

// Conformance: no TTL => no expire time; TTL 3600 => about an hour ahead, in BulkGet too.
TEST_F(InMemoryStateTest, TtlExpireTimeIsReported) {
  ASSERT_TRUE(Set(store_, "forever", "v").ok());
  EXPECT_FALSE(Get(store_, "forever")->expire_time.has_value());

  ASSERT_TRUE(Set(store_, {.key = "hour", .value = "v", .ttl_seconds = 3600}).ok());
  const auto expected = system_clock::now() + seconds(3600);
  auto item = Get(store_, "hour");
  ASSERT_TRUE(item->expire_time.has_value());
  EXPECT_LT(std::chrono::abs(*item->expire_time - expected), seconds(5));
  // The RFC 3339 rendering the API layer sends as ttlExpireTime.
  EXPECT_EQ(FormatRfc3339(*item->expire_time).size(), std::string("2026-01-01T00:00:00Z").size());

  auto items = BulkGet(store_, {"hour", "forever"});
  ASSERT_TRUE(items.ok());
  ASSERT_TRUE((*items)[0].expire_time.has_value());
  EXPECT_EQ(*(*items)[0].expire_time, *item->expire_time);
  EXPECT_FALSE((*items)[1].expire_time.has_value());
}

// Conformance: a later set without TTL (or with -1) removes the TTL.
TEST_F(InMemoryStateTest, LaterSetWithoutTtlRemovesIt) {
  ASSERT_TRUE(Set(store_, {.key = "no-ttl", .value = "v", .ttl_seconds = 1}).ok());
  ASSERT_TRUE(Set(store_, {.key = "minus-one", .value = "v", .ttl_seconds = 1}).ok());
  // The witness is written last, so once it has expired the others' old deadlines have passed.
  ASSERT_TRUE(Set(store_, {.key = "witness", .value = "v", .ttl_seconds = 1}).ok());
  ASSERT_TRUE(Set(store_, "no-ttl", "v2").ok());
  ASSERT_TRUE(Set(store_, {.key = "minus-one", .value = "v2", .ttl_seconds = -1}).ok());
  EXPECT_FALSE(Get(store_, "no-ttl")->expire_time.has_value());
  EXPECT_FALSE(Get(store_, "minus-one")->expire_time.has_value());
  ASSERT_TRUE(WaitUntil([&] { return !Get(store_, "witness")->found; }));
  EXPECT_EQ(Get(store_, "no-ttl")->value, "v2");
  EXPECT_EQ(Get(store_, "minus-one")->value, "v2");
}

TEST_F(InMemoryStateTest, SweepRemovesExpiredItemsNobodyReads) {
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(Set(store_, {.key = "t" + std::to_string(i), .value = "v", .ttl_seconds = 1}).ok());
  }
  ASSERT_TRUE(Set(store_, "keep", "v").ok());
  store_.SweepForTest();  // nothing has expired yet
  EXPECT_EQ(store_.EntryCountForTest(), 3001u);
  EXPECT_TRUE(WaitUntil([&] {
    store_.SweepForTest();
    return store_.EntryCountForTest() == 1;
  }));
  EXPECT_TRUE(Get(store_, "keep")->found);
}

TEST(InMemoryStatePeriodicSweepTest, SweepsOnTheDispatcher) {
  auto dispatcher = Dispatcher::Create("state-test");
  ASSERT_TRUE(dispatcher.ok());
  (*dispatcher)->Start();
  {
    auto created =
        InMemoryStateFactory().Create(Context(dispatcher->get(), {{"sweepIntervalMs", "50"}}));
    ASSERT_TRUE(created.ok());
    auto* store = static_cast<InMemoryStateStore*>(created->get());
    ASSERT_TRUE(store->Init().ok());
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(Set(*store, {.key = std::to_string(i), .value = "v", .ttl_seconds = 1}).ok());
    }
    EXPECT_EQ(store->EntryCountForTest(), 100u);
    // Nobody reads the keys: only the periodic sweep can remove them.
    EXPECT_TRUE(WaitUntil([&] { return store->EntryCountForTest() == 0; }));
    store->Shutdown();
  }
  (*dispatcher)->Stop();
}

// Conformance: transactions; deletes in a later transaction; deleting a missing key is fine.
TEST_F(InMemoryStateTest, TransactionsApplyUpsertsAndDeletes) {
  std::vector<Operation> first;
  for (int i = 0; i < 5; ++i) {
    first.push_back(SetRequest{.key = "t" + std::to_string(i), .value = "v" + std::to_string(i)});
  }
  first.push_back(DeleteRequest{.key = "does-not-exist"});
  ASSERT_TRUE(Transact(store_, std::move(first)).ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Get(store_, "t" + std::to_string(i))->value, "v" + std::to_string(i));
  }
  std::vector<Operation> second = {DeleteRequest{.key = "t0"}, DeleteRequest{.key = "t1"},
                                   SetRequest{.key = "t2", .value = "changed"}};
  ASSERT_TRUE(Transact(store_, std::move(second)).ok());
  EXPECT_FALSE(Get(store_, "t0")->found);
  EXPECT_FALSE(Get(store_, "t1")->found);
  EXPECT_EQ(Get(store_, "t2")->value, "changed");
  EXPECT_EQ(Get(store_, "t3")->value, "v3");
}

// Conformance: transaction-order.
TEST_F(InMemoryStateTest, TransactionOrder) {
  ASSERT_TRUE(Set(store_, "k1", "value1").ok());
  std::vector<Operation> ops = {
      DeleteRequest{.key = "k1"},
      SetRequest{.key = "k2", .value = "value2"},
      DeleteRequest{.key = "k2"},
      SetRequest{.key = "k3", .value = "value3"},
  };
  ASSERT_TRUE(Transact(store_, std::move(ops)).ok());
  EXPECT_FALSE(Get(store_, "k1")->found);
  EXPECT_FALSE(Get(store_, "k2")->found);
  EXPECT_EQ(Get(store_, "k3")->value, "value3");
}

TEST_F(InMemoryStateTest, TransactionIsAllOrNothing) {
  ASSERT_TRUE(Set(store_, "a", "a0").ok());
  ASSERT_TRUE(Set(store_, "b", "b0").ok());
  const std::string etag_a = EtagOf(store_, "a");
  const std::string etag_b = EtagOf(store_, "b");

  // The last operation's etag is stale: nothing of the transaction may be visible.
  std::vector<Operation> stale = {
      SetRequest{.key = "a", .value = "a1", .etag = etag_a}, DeleteRequest{.key = "b"},
      SetRequest{.key = "c", .value = "c1"},
      SetRequest{.key = "b", .value = "b1", .etag = etag_b},  // b was deleted just before
  };
  absl::Status status = Transact(store_, std::move(stale));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("'b'"));
  EXPECT_EQ(Get(store_, "a")->value, "a0");
  EXPECT_EQ(EtagOf(store_, "a"), etag_a);
  EXPECT_EQ(Get(store_, "b")->value, "b0");
  EXPECT_FALSE(Get(store_, "c")->found);

  std::vector<Operation> malformed = {SetRequest{.key = "a", .value = "a2"},
                                      DeleteRequest{.key = "b", .etag = "not-a-number"}};
  EXPECT_EQ(Transact(store_, std::move(malformed)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get(store_, "a")->value, "a0");

  std::vector<Operation> first_write = {
      SetRequest{.key = "new", .value = "n"},
      SetRequest{.key = "a", .value = "a3", .concurrency = Concurrency::kFirstWrite}};
  EXPECT_EQ(Transact(store_, std::move(first_write)).code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(Get(store_, "new")->found);

  std::vector<Operation> good = {SetRequest{.key = "a", .value = "a4", .etag = etag_a},
                                 DeleteRequest{.key = "b", .etag = etag_b}};
  ASSERT_TRUE(Transact(store_, std::move(good)).ok());
  EXPECT_EQ(Get(store_, "a")->value, "a4");
  EXPECT_FALSE(Get(store_, "b")->found);
}

TEST_F(InMemoryStateTest, TransactionKeepsJsonBytesAndTtl) {
  const std::string json = R"({"nested":{"list":[1,2,3]},"s":"\u00e9"})";
  std::vector<Operation> ops = {SetRequest{.key = "j", .value = json, .ttl_seconds = 3600}};
  ASSERT_TRUE(Transact(store_, std::move(ops)).ok());
  auto item = Get(store_, "j");
  EXPECT_EQ(item->value, json);
  EXPECT_TRUE(item->expire_time.has_value());
}

TEST_F(InMemoryStateTest, CallbacksRunWithoutTheLockHeld) {
  // A callback that calls back into the store would deadlock if the mutex were still held.
  std::promise<std::string> value;
  store_.Set({.key = "k", .value = "v"}, [&](absl::Status status) {
    ASSERT_TRUE(status.ok());
    store_.Get({.key = "k"}, [&](absl::StatusOr<Item> item) { value.set_value(item->value); });
  });
  EXPECT_EQ(value.get_future().get(), "v");
}

// 8 threads x 1000 etag-guarded read-modify-write increments: no update is lost.
TEST_F(InMemoryStateTest, ConcurrentEtagGuardedIncrements) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 1000;
  ASSERT_TRUE(Set(store_, "counter", "0").ok());
  std::atomic<int> mismatches{0};
  std::atomic<int> other_errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (!go.load()) {
        std::this_thread::yield();
      }
      for (int done = 0; done < kIncrements;) {
        auto item = Get(store_, "counter");
        if (!item.ok()) {
          other_errors++;
          return;
        }
        const int next = std::stoi(item->value) + 1;
        std::this_thread::yield();  // widen the race window
        absl::Status status =
            Set(store_, {.key = "counter", .value = std::to_string(next), .etag = item->etag});
        if (status.ok()) {
          ++done;
        } else if (status.code() == absl::StatusCode::kAborted) {
          mismatches++;
        } else {
          other_errors++;
          return;
        }
      }
    });
  }
  go = true;
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(Get(store_, "counter")->value, std::to_string(kThreads * kIncrements));
  EXPECT_GT(mismatches.load(), 0) << "the test never produced a conflict";
}

// 16 concurrent first-write creators per key, 100 keys: exactly one wins each key.
TEST_F(InMemoryStateTest, ConcurrentFirstWriteHasOneWinnerPerKey) {
  constexpr int kThreads = 16;
  constexpr int kKeys = 100;
  std::vector<std::atomic<int>> winners(kKeys);
  std::atomic<int> other_errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) {
        std::this_thread::yield();
      }
      for (int k = 0; k < kKeys; ++k) {
        absl::Status status = Set(store_, {.key = "key" + std::to_string(k),
                                           .value = std::to_string(t),
                                           .concurrency = Concurrency::kFirstWrite});
        if (status.ok()) {
          winners[k]++;
        } else if (status.code() != absl::StatusCode::kAborted) {
          other_errors++;
        }
      }
    });
  }
  go = true;
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(other_errors.load(), 0);
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(winners[k].load(), 1) << "key" << k;
    EXPECT_TRUE(Get(store_, "key" + std::to_string(k))->found);
  }
}

}  // namespace
}  // namespace ottava::components::state
