#include "components/state/state_conformance.h"

#include <gmock/gmock.h>

#include <atomic>
#include <future>
#include <thread>

namespace ottava::components::state::conformance {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;
using ::testing::HasSubstr;

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

std::string ValueOf(StateStore& store, const std::string& key) {
  auto item = Get(store, key);
  EXPECT_TRUE(item.ok()) << item.status();
  return item.ok() ? item->value : "<error>";
}

bool Found(StateStore& store, const std::string& key) {
  auto item = Get(store, key);
  EXPECT_TRUE(item.ok()) << item.status();
  return item.ok() && item->found;
}

namespace {

// Conformance: set/get round-trip of assorted values, byte-exact.
TEST_P(StateConformanceTest, RoundTripsValuesByteExact) {
  const std::vector<std::pair<std::string, std::string>> values = {
      {"int", "123"},
      {"bool", "true"},
      {"bytes", std::string("\x01", 1)},
      {"binary", std::string("a\0b\xff\r\n", 6)},
      {"json", R"({"a":1,"b":"two"})"},
      {"quoted", "\"hello\""},
      {"empty", ""},
      {"large", std::string(256 * 1024, 'x')},
  };
  for (const auto& [key, value] : values) {
    ASSERT_TRUE(Set(store(), key, value).ok()) << key;
  }
  for (const auto& [key, value] : values) {
    auto item = Get(store(), key);
    ASSERT_TRUE(item.ok()) << item.status();
    EXPECT_TRUE(item->found) << key;
    EXPECT_EQ(item->key, key);
    EXPECT_EQ(item->value, value) << key;
    EXPECT_FALSE(item->expire_time.has_value());
  }
}

// Conformance: a missing key is not an error; delete then get gives no data.
TEST_P(StateConformanceTest, MissingKeyIsNotAnError) {
  auto missing = Get(store(), "nope");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->found);
  EXPECT_EQ(missing->key, "nope");
  EXPECT_TRUE(missing->value.empty());
  EXPECT_TRUE(missing->etag.empty());

  ASSERT_TRUE(Set(store(), "k", "v").ok());
  ASSERT_TRUE(Delete(store(), {.key = "k"}).ok());
  auto deleted = Get(store(), "k");
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(deleted->found);
  EXPECT_TRUE(deleted->etag.empty());  // deleted keys have no etag
  if (auto exists = harness_->Backend({"EXISTS", "k"})) {
    EXPECT_EQ(*exists, "0");
  }
  // Deleting an absent key without an etag is fine.
  EXPECT_TRUE(Delete(store(), {.key = "k"}).ok());
  EXPECT_TRUE(Delete(store(), {.key = "never"}).ok());
}

// Conformance: bulk get returns every requested key in order, a missing one with empty data.
TEST_P(StateConformanceTest, BulkGetReturnsEveryKeyInOrder) {
  ASSERT_TRUE(Set(store(), "a", "1").ok());
  ASSERT_TRUE(Set(store(), "c", "3").ok());
  auto items = BulkGet(store(), {"c", "missing", "a"});
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->size(), 3u);
  EXPECT_EQ((*items)[0].key, "c");
  EXPECT_EQ((*items)[0].value, "3");
  EXPECT_FALSE((*items)[0].etag.empty());
  EXPECT_EQ((*items)[1].key, "missing");
  EXPECT_FALSE((*items)[1].found);
  EXPECT_TRUE((*items)[1].value.empty());
  EXPECT_TRUE((*items)[1].etag.empty());
  EXPECT_EQ((*items)[2].key, "a");
  EXPECT_EQ((*items)[2].value, "1");
  EXPECT_EQ((*items)[2].etag, EtagOf(store(), "a"));

  auto none = BulkGet(store(), {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // Many keys at once: all answered in order.
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) {
    keys.push_back("bulk" + std::to_string(i));
    if (i % 2 == 0) {
      ASSERT_TRUE(Set(store(), keys.back(), std::to_string(i)).ok());
    }
  }
  auto many = BulkGet(store(), keys);
  ASSERT_TRUE(many.ok()) << many.status();
  ASSERT_EQ(many->size(), keys.size());
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ((*many)[i].key, keys[i]);
    EXPECT_EQ((*many)[i].found, i % 2 == 0) << i;
    EXPECT_EQ((*many)[i].value, i % 2 == 0 ? std::to_string(i) : "") << i;
  }
}

// Conformance: etags on new keys, mismatch, update, delete.
TEST_P(StateConformanceTest, EtagsAreCheckedOnSetAndDelete) {
  ASSERT_TRUE(Set(store(), "k", "v1").ok());
  const std::string etag1 = EtagOf(store(), "k");
  ASSERT_FALSE(etag1.empty());
  EXPECT_EQ(etag1.find_first_not_of("0123456789"), std::string::npos) << etag1;

  const std::string wrong = std::to_string(std::stoull(etag1) + 1000);
  absl::Status mismatch = Set(store(), {.key = "k", .value = "x", .etag = wrong});
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(mismatch.message(), HasSubstr(label()));
  EXPECT_THAT(mismatch.message(), HasSubstr("'k'"));
  EXPECT_EQ(ValueOf(store(), "k"), "v1");

  ASSERT_TRUE(Set(store(), {.key = "k", .value = "v2", .etag = etag1}).ok());
  const std::string etag2 = EtagOf(store(), "k");
  EXPECT_NE(etag2, etag1);
  EXPECT_EQ(ValueOf(store(), "k"), "v2");
  // The old etag no longer matches.
  EXPECT_EQ(Set(store(), {.key = "k", .value = "v3", .etag = etag1}).code(),
            absl::StatusCode::kAborted);
  // A non-canonical spelling of the current version is the same number.
  EXPECT_TRUE(Set(store(), {.key = "k", .value = "v3", .etag = "000" + etag2}).ok());
  const std::string etag3 = EtagOf(store(), "k");

  EXPECT_EQ(Delete(store(), {.key = "k", .etag = etag1}).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(Found(store(), "k"));
  EXPECT_TRUE(Delete(store(), {.key = "k", .etag = etag3}).ok());
  EXPECT_FALSE(Found(store(), "k"));
}

TEST_P(StateConformanceTest, MalformedEtagIsInvalidArgument) {
  ASSERT_TRUE(Set(store(), "k", "v").ok());
  for (const char* bad : {"bad-etag", "12a", " 1", "-1", "99999999999999999999999"}) {
    absl::Status set = Set(store(), {.key = "k", .value = "x", .etag = bad});
    EXPECT_EQ(set.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(set.message(), HasSubstr("malformed etag"));
    EXPECT_THAT(set.message(), HasSubstr(label()));
    EXPECT_THAT(set.message(), HasSubstr("'k'"));
    EXPECT_EQ(Delete(store(), {.key = "k", .etag = bad}).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(ValueOf(store(), "k"), "v");
}

TEST_P(StateConformanceTest, EtagOnAbsentKeyIsAMismatch) {
  EXPECT_EQ(Set(store(), {.key = "absent", .value = "x", .etag = "1"}).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(Delete(store(), {.key = "absent", .etag = "1"}).code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(Found(store(), "absent"));
  if (auto exists = harness_->Backend({"EXISTS", "absent"})) {
    EXPECT_EQ(*exists, "0");
  }
}

TEST_P(StateConformanceTest, EtagsAreNotReusedAfterDeleteAndRecreate) {
  ASSERT_TRUE(Set(store(), "k", "v1").ok());
  const std::string old_etag = EtagOf(store(), "k");
  ASSERT_TRUE(Delete(store(), {.key = "k"}).ok());
  ASSERT_TRUE(Set(store(), "k", "v2").ok());
  EXPECT_NE(EtagOf(store(), "k"), old_etag);
  EXPECT_EQ(Set(store(), {.key = "k", .value = "v3", .etag = old_etag}).code(),
            absl::StatusCode::kAborted);
  // The same inside one transaction: the re-created key's version is not the deleted one's.
  const std::string etag2 = EtagOf(store(), "k");
  ASSERT_TRUE(
      Transact(store(), {DeleteRequest{.key = "k"}, SetRequest{.key = "k", .value = "v4"}}).ok());
  EXPECT_NE(EtagOf(store(), "k"), etag2);
  EXPECT_EQ(Set(store(), {.key = "k", .value = "v5", .etag = etag2}).code(),
            absl::StatusCode::kAborted);
}

TEST_P(StateConformanceTest, LastWriteWithoutEtagIsUnconditional) {
  ASSERT_TRUE(Set(store(), "k", "v1").ok());
  ASSERT_TRUE(
      Set(store(), {.key = "k", .value = "v2", .concurrency = Concurrency::kLastWrite}).ok());
  ASSERT_TRUE(Set(store(), "k", "v3").ok());
  EXPECT_EQ(ValueOf(store(), "k"), "v3");
}

// Conformance: first-write without etag (absent or empty) = insert only.
TEST_P(StateConformanceTest, FirstWriteWithoutEtagCreatesOnlyIfAbsent) {
  SetRequest no_etag{.key = "a", .value = "1", .concurrency = Concurrency::kFirstWrite};
  ASSERT_TRUE(Set(store(), no_etag).ok());
  no_etag.value = "2";
  absl::Status second = Set(store(), no_etag);
  EXPECT_EQ(second.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.message(), HasSubstr("'a'"));
  EXPECT_THAT(second.message(), HasSubstr(label()));
  EXPECT_EQ(ValueOf(store(), "a"), "1");

  SetRequest empty_etag{
      .key = "b", .value = "1", .etag = "", .concurrency = Concurrency::kFirstWrite};
  ASSERT_TRUE(Set(store(), empty_etag).ok());
  empty_etag.value = "2";
  EXPECT_EQ(Set(store(), empty_etag).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ValueOf(store(), "b"), "1");

  // An empty etag is never "no etag" (dapr/dapr#2320), whatever the concurrency.
  EXPECT_EQ(Set(store(), {.key = "b", .value = "3", .etag = ""}).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(ValueOf(store(), "b"), "1");
  // Delete with an empty etag: nothing to delete succeeds, a present key conflicts.
  EXPECT_EQ(Delete(store(), {.key = "b", .etag = ""}).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(Delete(store(), {.key = "never", .etag = ""}).ok());
}

// Conformance: first-write with etag.
TEST_P(StateConformanceTest, FirstWriteWithEtag) {
  ASSERT_TRUE(Set(store(), "k", "v1").ok());
  const std::string etag1 = EtagOf(store(), "k");
  ASSERT_TRUE(
      Set(store(),
          {.key = "k", .value = "v2", .etag = etag1, .concurrency = Concurrency::kFirstWrite})
          .ok());
  EXPECT_NE(EtagOf(store(), "k"), etag1);
  EXPECT_EQ(Set(store(),
                {.key = "k", .value = "v3", .etag = etag1, .concurrency = Concurrency::kFirstWrite})
                .code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(ValueOf(store(), "k"), "v2");
}

// Conformance: TTL of a second: readable at once, gone soon after.
TEST_P(StateConformanceTest, TtlExpiresItems) {
  const milliseconds slack = GetParam().clock_slack;
  const auto before = system_clock::now();
  ASSERT_TRUE(Set(store(), {.key = "short", .value = "v", .ttl_seconds = 1}).ok());
  auto item = Get(store(), "short");
  ASSERT_TRUE(item.ok());
  EXPECT_TRUE(item->found);
  ASSERT_TRUE(item->expire_time.has_value());
  EXPECT_GE(*item->expire_time, before + seconds(1) - slack);
  EXPECT_LE(*item->expire_time, system_clock::now() + seconds(1) + slack);
  EXPECT_TRUE(WaitUntil([&] { return !Found(store(), "short"); }));
  // Once expired the key is absent in every respect.
  EXPECT_TRUE(Get(store(), "short")->etag.empty());
  EXPECT_EQ(Set(store(), {.key = "short", .value = "x", .etag = item->etag}).code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(
      Set(store(), {.key = "short", .value = "new", .concurrency = Concurrency::kFirstWrite}).ok());
}

// Conformance: no TTL => no expire time; TTL 3600 => about an hour ahead, in BulkGet too.
TEST_P(StateConformanceTest, TtlExpireTimeIsReported) {
  ASSERT_TRUE(Set(store(), "forever", "v").ok());
  EXPECT_FALSE(Get(store(), "forever")->expire_time.has_value());

  ASSERT_TRUE(Set(store(), {.key = "hour", .value = "v", .ttl_seconds = 3600}).ok());
  const auto expected = system_clock::now() + seconds(3600);
  auto item = Get(store(), "hour");
  ASSERT_TRUE(item->expire_time.has_value());
  EXPECT_LT(std::chrono::abs(*item->expire_time - expected), seconds(5));
  // The RFC 3339 rendering the API layer sends as ttlExpireTime.
  EXPECT_EQ(FormatRfc3339(*item->expire_time).size(), std::string("2026-01-01T00:00:00Z").size());
  if (auto backend_ttl = harness_->Backend({"TTL", "hour"})) {
    const int64_t ttl = std::stoll(*backend_ttl);
    EXPECT_GT(ttl, 3590);
    EXPECT_LE(ttl, 3600);
  }

  auto items = BulkGet(store(), {"hour", "forever"});
  ASSERT_TRUE(items.ok());
  ASSERT_TRUE((*items)[0].expire_time.has_value());
  EXPECT_EQ(*(*items)[0].expire_time, *item->expire_time);
  EXPECT_FALSE((*items)[1].expire_time.has_value());

  if (GetParam().refuses_unrepresentable_ttl) {
    // A TTL the backend's expiry arithmetic cannot hold is refused before anything is written.
    absl::Status huge =
        Set(store(), {.key = "hour", .value = "x", .ttl_seconds = int64_t{1} << 60});
    EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ValueOf(store(), "hour"), "v");
  }
}

// Conformance: a later set without TTL (or with -1) removes the TTL.
TEST_P(StateConformanceTest, LaterSetWithoutTtlRemovesIt) {
  ASSERT_TRUE(Set(store(), {.key = "no-ttl", .value = "v", .ttl_seconds = 1}).ok());
  ASSERT_TRUE(Set(store(), {.key = "minus-one", .value = "v", .ttl_seconds = 1}).ok());
  ASSERT_TRUE(Set(store(), {.key = "in-txn", .value = "v", .ttl_seconds = 1}).ok());
  // The witness is written last, so once it has expired the others' old deadlines have passed.
  ASSERT_TRUE(Set(store(), {.key = "witness", .value = "v", .ttl_seconds = 1}).ok());
  ASSERT_TRUE(Set(store(), "no-ttl", "v2").ok());
  ASSERT_TRUE(Set(store(), {.key = "minus-one", .value = "v2", .ttl_seconds = -1}).ok());
  ASSERT_TRUE(Transact(store(), {SetRequest{.key = "in-txn", .value = "v2"}}).ok());
  for (const char* key : {"no-ttl", "minus-one", "in-txn"}) {
    EXPECT_FALSE(Get(store(), key)->expire_time.has_value()) << key;
    if (auto ttl = harness_->Backend({"TTL", key})) {
      EXPECT_EQ(*ttl, "-1") << key;
    }
  }
  ASSERT_TRUE(WaitUntil([&] { return !Found(store(), "witness"); }));
  EXPECT_EQ(ValueOf(store(), "no-ttl"), "v2");
  EXPECT_EQ(ValueOf(store(), "minus-one"), "v2");
  EXPECT_EQ(ValueOf(store(), "in-txn"), "v2");
}

// Conformance: transactions; deletes in a later transaction; deleting a missing key is fine.
TEST_P(StateConformanceTest, TransactionsApplyUpsertsAndDeletes) {
  std::vector<Operation> first;
  for (int i = 0; i < 5; ++i) {
    first.push_back(SetRequest{.key = "t" + std::to_string(i), .value = "v" + std::to_string(i)});
  }
  first.push_back(DeleteRequest{.key = "does-not-exist"});
  ASSERT_TRUE(Transact(store(), std::move(first)).ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ValueOf(store(), "t" + std::to_string(i)), "v" + std::to_string(i));
  }
  std::vector<Operation> second = {DeleteRequest{.key = "t0"}, DeleteRequest{.key = "t1"},
                                   SetRequest{.key = "t2", .value = "changed"}};
  ASSERT_TRUE(Transact(store(), std::move(second)).ok());
  EXPECT_FALSE(Found(store(), "t0"));
  EXPECT_FALSE(Found(store(), "t1"));
  EXPECT_EQ(ValueOf(store(), "t2"), "changed");
  EXPECT_EQ(ValueOf(store(), "t3"), "v3");
  EXPECT_TRUE(Transact(store(), {}).ok());
}

// Conformance: transaction-order.
TEST_P(StateConformanceTest, TransactionOrder) {
  ASSERT_TRUE(Set(store(), "k1", "value1").ok());
  std::vector<Operation> ops = {
      DeleteRequest{.key = "k1"},
      SetRequest{.key = "k2", .value = "value2"},
      DeleteRequest{.key = "k2"},
      SetRequest{.key = "k3", .value = "value3"},
  };
  ASSERT_TRUE(Transact(store(), std::move(ops)).ok());
  EXPECT_FALSE(Found(store(), "k1"));
  EXPECT_FALSE(Found(store(), "k2"));
  EXPECT_EQ(ValueOf(store(), "k3"), "value3");
  // Conditions see the earlier operations: create-only after a delete of the same key succeeds.
  ASSERT_TRUE(Transact(store(), {DeleteRequest{.key = "k3"},
                                 SetRequest{.key = "k3", .value = "again", .etag = ""}})
                  .ok());
  EXPECT_EQ(ValueOf(store(), "k3"), "again");
}

TEST_P(StateConformanceTest, TransactionIsAllOrNothing) {
  ASSERT_TRUE(Set(store(), "a", "a0").ok());
  ASSERT_TRUE(Set(store(), "b", "b0").ok());
  const std::string etag_a = EtagOf(store(), "a");
  const std::string etag_b = EtagOf(store(), "b");

  // The last operation's etag is stale: nothing of the transaction may be visible.
  std::vector<Operation> stale = {
      SetRequest{.key = "a", .value = "a1", .etag = etag_a}, DeleteRequest{.key = "b"},
      SetRequest{.key = "c", .value = "c1"},
      SetRequest{.key = "b", .value = "b1", .etag = etag_b},  // b was deleted just before
  };
  absl::Status status = Transact(store(), std::move(stale));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("'b'"));
  EXPECT_THAT(status.message(), HasSubstr("transaction operation 3"));
  EXPECT_EQ(ValueOf(store(), "a"), "a0");
  EXPECT_EQ(EtagOf(store(), "a"), etag_a);
  EXPECT_EQ(ValueOf(store(), "b"), "b0");
  EXPECT_FALSE(Found(store(), "c"));

  std::vector<Operation> malformed = {SetRequest{.key = "a", .value = "a2"},
                                      DeleteRequest{.key = "b", .etag = "not-a-number"}};
  EXPECT_EQ(Transact(store(), std::move(malformed)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueOf(store(), "a"), "a0");

  std::vector<Operation> first_write = {
      SetRequest{.key = "new", .value = "n"},
      SetRequest{.key = "a", .value = "a3", .concurrency = Concurrency::kFirstWrite}};
  EXPECT_EQ(Transact(store(), std::move(first_write)).code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(Found(store(), "new"));

  std::vector<Operation> good = {SetRequest{.key = "a", .value = "a4", .etag = etag_a},
                                 DeleteRequest{.key = "b", .etag = etag_b}};
  ASSERT_TRUE(Transact(store(), std::move(good)).ok());
  EXPECT_EQ(ValueOf(store(), "a"), "a4");
  EXPECT_FALSE(Found(store(), "b"));
}

TEST_P(StateConformanceTest, TransactionKeepsJsonBytesAndTtl) {
  const std::string json = R"({"nested":{"list":[1,2,3]},"s":"\u00e9"})";
  std::vector<Operation> ops = {SetRequest{.key = "j", .value = json, .ttl_seconds = 3600}};
  ASSERT_TRUE(Transact(store(), std::move(ops)).ok());
  auto item = Get(store(), "j");
  EXPECT_EQ(item->value, json);
  EXPECT_TRUE(item->expire_time.has_value());
  if (auto ttl = harness_->Backend({"TTL", "j"})) {
    EXPECT_GT(std::stoll(*ttl), 3590);
  }
}

// A callback that calls back into the store would deadlock if a lock were still held.
TEST_P(StateConformanceTest, CallbacksMayCallBackIntoTheStore) {
  std::promise<std::string> value;
  store().Set({.key = "k", .value = "v"}, [&](absl::Status status) {
    ASSERT_TRUE(status.ok()) << status;
    store().Get({.key = "k"}, [&](absl::StatusOr<Item> item) { value.set_value(item->value); });
  });
  auto future = value.get_future();
  ASSERT_EQ(future.wait_for(seconds(5)), std::future_status::ready);
  EXPECT_EQ(future.get(), "v");
}

// 8 threads x 1000 etag-guarded read-modify-write increments of one key: no update is lost.
TEST_P(StateConformanceTest, ConcurrentEtagGuardedIncrements) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 1000;
  ASSERT_TRUE(Set(store(), "counter", "0").ok());
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
        auto item = Get(store(), "counter");
        if (!item.ok()) {
          other_errors++;
          return;
        }
        const int next = std::stoi(item->value) + 1;
        std::this_thread::yield();  // widen the race window
        absl::Status status =
            Set(store(), {.key = "counter", .value = std::to_string(next), .etag = item->etag});
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
  EXPECT_EQ(ValueOf(store(), "counter"), std::to_string(kThreads * kIncrements));
  if (auto data = harness_->Backend({"HGET", "counter", "data"})) {
    EXPECT_EQ(*data, std::to_string(kThreads * kIncrements));
  }
  EXPECT_GT(mismatches.load(), 0) << "the test never produced a conflict";
}

// 16 concurrent first-write creators per key, 100 keys: exactly one wins each key.
TEST_P(StateConformanceTest, ConcurrentFirstWriteHasOneWinnerPerKey) {
  constexpr int kThreads = 16;
  constexpr int kKeys = 100;
  std::vector<std::atomic<int>> winners(kKeys);
  std::vector<std::atomic<int>> winner_id(kKeys);
  std::atomic<int> other_errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) {
        std::this_thread::yield();
      }
      for (int k = 0; k < kKeys; ++k) {
        absl::Status status = Set(store(), {.key = "key" + std::to_string(k),
                                            .value = std::to_string(t),
                                            .concurrency = Concurrency::kFirstWrite});
        if (status.ok()) {
          winners[k]++;
          winner_id[k] = t;
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
    EXPECT_TRUE(Found(store(), "key" + std::to_string(k)));
    // The stored value is the winner's: no loser overwrote it.
    EXPECT_EQ(ValueOf(store(), "key" + std::to_string(k)), std::to_string(winner_id[k].load()));
  }
}

}  // namespace
}  // namespace ottava::components::state::conformance
