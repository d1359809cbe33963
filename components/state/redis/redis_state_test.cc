#include "components/state/redis/redis_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/dispatcher.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

// The conformance checklist of dapr-api.md §4.1 against a real redis-server, with the same cases as
// the in-memory store's tests where they apply, plus what only Redis has: the data layout, the
// all-or-nothing transaction seen in the whole keyspace, replicas and outages.

namespace ottava::components::state {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;
using test::RedisServer;
using ::testing::HasSubstr;

// Synchronous wrappers over the asynchronous store.
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

class RedisStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    dispatcher_ = *Dispatcher::Create("state-redis");
    dispatcher_->Start();
    store_ = MakeStore(*server_);
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(store_->Init().ok());
  }
  void TearDown() override {
    store_.reset();
    dispatcher_->Stop();
  }

  ComponentContext Context(Metadata metadata) {
    ComponentContext context;
    context.kind = Kind::kState;
    context.name = "cache";
    context.type = "redis";
    context.metadata = std::move(metadata);
    context.app_id = "app";
    context.health = &health_;
    context.dispatcher = dispatcher_.get();
    return context;
  }

  std::unique_ptr<StateStore> MakeStore(const RedisServer& server, Metadata extra = {}) {
    Metadata metadata = {
        {"redisHost", server.address()}, {"timeout", "500ms"}, {"dialTimeout", "2s"}};
    for (auto& [key, value] : extra) {
      metadata[key] = value;  // overrides the defaults above
    }
    auto store = RedisStateFactory().Create(Context(metadata));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::unique_ptr<RedisServer> server_;
  DispatcherPtr dispatcher_;
  HealthIndicator health_;
  std::unique_ptr<StateStore> store_;
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

// Conformance: set/get round-trip of assorted values, byte-exact.
TEST_F(RedisStateTest, RoundTripsValuesByteExact) {
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
    ASSERT_TRUE(Set(*store_, key, value).ok()) << key;
  }
  for (const auto& [key, value] : values) {
    auto item = Get(*store_, key);
    ASSERT_TRUE(item.ok()) << item.status();
    EXPECT_TRUE(item->found) << key;
    EXPECT_EQ(item->key, key);
    EXPECT_EQ(item->value, value) << key;
    EXPECT_FALSE(item->expire_time.has_value());
  }
}

// Conformance: a missing key is not an error; delete then get gives no data.
TEST_F(RedisStateTest, MissingKeyIsNotAnError) {
  auto missing = Get(*store_, "nope");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->found);
  EXPECT_EQ(missing->key, "nope");
  EXPECT_TRUE(missing->value.empty());
  EXPECT_TRUE(missing->etag.empty());

  ASSERT_TRUE(Set(*store_, "k", "v").ok());
  ASSERT_TRUE(Delete(*store_, {.key = "k"}).ok());
  auto deleted = Get(*store_, "k");
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(deleted->found);
  EXPECT_TRUE(deleted->etag.empty());  // deleted keys have no etag
  EXPECT_EQ(server_->Cli({"EXISTS", "k"}), "0");
  // Deleting an absent key without an etag is fine.
  EXPECT_TRUE(Delete(*store_, {.key = "k"}).ok());
  EXPECT_TRUE(Delete(*store_, {.key = "never"}).ok());
}

// Conformance: bulk get returns every requested key in order, a missing one with empty data.
TEST_F(RedisStateTest, BulkGetReturnsEveryKeyInOrder) {
  ASSERT_TRUE(Set(*store_, "a", "1").ok());
  ASSERT_TRUE(Set(*store_, "c", "3").ok());
  auto items = BulkGet(*store_, {"c", "missing", "a"});
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
  EXPECT_EQ((*items)[2].etag, EtagOf(*store_, "a"));

  auto none = BulkGet(*store_, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // Many keys at once: all pipelined, all answered in order.
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) {
    keys.push_back("bulk" + std::to_string(i));
    if (i % 2 == 0) {
      ASSERT_TRUE(Set(*store_, keys.back(), std::to_string(i)).ok());
    }
  }
  auto many = BulkGet(*store_, keys);
  ASSERT_TRUE(many.ok()) << many.status();
  ASSERT_EQ(many->size(), keys.size());
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ((*many)[i].key, keys[i]);
    EXPECT_EQ((*many)[i].found, i % 2 == 0) << i;
    EXPECT_EQ((*many)[i].value, i % 2 == 0 ? std::to_string(i) : "") << i;
  }
}

// Conformance: etags on new keys, mismatch, update, delete.
TEST_F(RedisStateTest, EtagsAreCheckedOnSetAndDelete) {
  ASSERT_TRUE(Set(*store_, "k", "v1").ok());
  const std::string etag1 = EtagOf(*store_, "k");
  ASSERT_FALSE(etag1.empty());
  EXPECT_EQ(etag1.find_first_not_of("0123456789"), std::string::npos) << etag1;

  const std::string wrong = std::to_string(std::stoull(etag1) + 1000);
  absl::Status mismatch = Set(*store_, {.key = "k", .value = "x", .etag = wrong});
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(mismatch.message(), HasSubstr("state/cache"));
  EXPECT_THAT(mismatch.message(), HasSubstr("'k'"));
  EXPECT_EQ(ValueOf(*store_, "k"), "v1");

  ASSERT_TRUE(Set(*store_, {.key = "k", .value = "v2", .etag = etag1}).ok());
  const std::string etag2 = EtagOf(*store_, "k");
  EXPECT_NE(etag2, etag1);
  EXPECT_EQ(ValueOf(*store_, "k"), "v2");
  // The old etag no longer matches.
  EXPECT_EQ(Set(*store_, {.key = "k", .value = "v3", .etag = etag1}).code(),
            absl::StatusCode::kAborted);
  // A non-canonical spelling of the current version is the same number.
  EXPECT_TRUE(Set(*store_, {.key = "k", .value = "v3", .etag = "000" + etag2}).ok());
  const std::string etag3 = EtagOf(*store_, "k");

  EXPECT_EQ(Delete(*store_, {.key = "k", .etag = etag1}).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(Found(*store_, "k"));
  EXPECT_TRUE(Delete(*store_, {.key = "k", .etag = etag3}).ok());
  EXPECT_FALSE(Found(*store_, "k"));
}

TEST_F(RedisStateTest, MalformedEtagIsInvalidArgument) {
  ASSERT_TRUE(Set(*store_, "k", "v").ok());
  for (const char* bad : {"bad-etag", "12a", " 1", "-1", "99999999999999999999999"}) {
    absl::Status set = Set(*store_, {.key = "k", .value = "x", .etag = bad});
    EXPECT_EQ(set.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(set.message(), HasSubstr("malformed etag"));
    EXPECT_THAT(set.message(), HasSubstr("state/cache"));
    EXPECT_THAT(set.message(), HasSubstr("'k'"));
    EXPECT_EQ(Delete(*store_, {.key = "k", .etag = bad}).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(ValueOf(*store_, "k"), "v");
}

TEST_F(RedisStateTest, EtagOnAbsentKeyIsAMismatch) {
  EXPECT_EQ(Set(*store_, {.key = "absent", .value = "x", .etag = "1"}).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(Delete(*store_, {.key = "absent", .etag = "1"}).code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(Found(*store_, "absent"));
  EXPECT_EQ(server_->Cli({"EXISTS", "absent"}), "0");
}

TEST_F(RedisStateTest, EtagsAreNotReusedAfterDeleteAndRecreate) {
  ASSERT_TRUE(Set(*store_, "k", "v1").ok());
  const std::string old_etag = EtagOf(*store_, "k");
  ASSERT_TRUE(Delete(*store_, {.key = "k"}).ok());
  ASSERT_TRUE(Set(*store_, "k", "v2").ok());
  EXPECT_NE(EtagOf(*store_, "k"), old_etag);
  EXPECT_EQ(Set(*store_, {.key = "k", .value = "v3", .etag = old_etag}).code(),
            absl::StatusCode::kAborted);
  // The same inside one transaction: the re-created key's version is not the deleted one's.
  const std::string etag2 = EtagOf(*store_, "k");
  ASSERT_TRUE(
      Transact(*store_, {DeleteRequest{.key = "k"}, SetRequest{.key = "k", .value = "v4"}}).ok());
  EXPECT_NE(EtagOf(*store_, "k"), etag2);
  EXPECT_EQ(Set(*store_, {.key = "k", .value = "v5", .etag = etag2}).code(),
            absl::StatusCode::kAborted);
}

TEST_F(RedisStateTest, LastWriteWithoutEtagIsUnconditional) {
  ASSERT_TRUE(Set(*store_, "k", "v1").ok());
  ASSERT_TRUE(
      Set(*store_, {.key = "k", .value = "v2", .concurrency = Concurrency::kLastWrite}).ok());
  ASSERT_TRUE(Set(*store_, "k", "v3").ok());
  EXPECT_EQ(ValueOf(*store_, "k"), "v3");
}

// Conformance: first-write without etag (absent or empty) = insert only.
TEST_F(RedisStateTest, FirstWriteWithoutEtagCreatesOnlyIfAbsent) {
  SetRequest no_etag{.key = "a", .value = "1", .concurrency = Concurrency::kFirstWrite};
  ASSERT_TRUE(Set(*store_, no_etag).ok());
  no_etag.value = "2";
  absl::Status second = Set(*store_, no_etag);
  EXPECT_EQ(second.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.message(), HasSubstr("'a'"));
  EXPECT_THAT(second.message(), HasSubstr("state/cache"));
  EXPECT_EQ(ValueOf(*store_, "a"), "1");

  SetRequest empty_etag{
      .key = "b", .value = "1", .etag = "", .concurrency = Concurrency::kFirstWrite};
  ASSERT_TRUE(Set(*store_, empty_etag).ok());
  empty_etag.value = "2";
  EXPECT_EQ(Set(*store_, empty_etag).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ValueOf(*store_, "b"), "1");

  // An empty etag is never "no etag" (dapr/dapr#2320), whatever the concurrency.
  EXPECT_EQ(Set(*store_, {.key = "b", .value = "3", .etag = ""}).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(ValueOf(*store_, "b"), "1");
  // Delete with an empty etag: nothing to delete succeeds, a present key conflicts.
  EXPECT_EQ(Delete(*store_, {.key = "b", .etag = ""}).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(Delete(*store_, {.key = "never", .etag = ""}).ok());
}

// Conformance: first-write with etag.
TEST_F(RedisStateTest, FirstWriteWithEtag) {
  ASSERT_TRUE(Set(*store_, "k", "v1").ok());
  const std::string etag1 = EtagOf(*store_, "k");
  ASSERT_TRUE(
      Set(*store_,
          {.key = "k", .value = "v2", .etag = etag1, .concurrency = Concurrency::kFirstWrite})
          .ok());
  EXPECT_NE(EtagOf(*store_, "k"), etag1);
  EXPECT_EQ(Set(*store_,
                {.key = "k", .value = "v3", .etag = etag1, .concurrency = Concurrency::kFirstWrite})
                .code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(ValueOf(*store_, "k"), "v2");
}

// Conformance: TTL of a second: readable at once, gone soon after.
TEST_F(RedisStateTest, TtlExpiresItems) {
  const auto before = system_clock::now();
  ASSERT_TRUE(Set(*store_, {.key = "short", .value = "v", .ttl_seconds = 1}).ok());
  auto item = Get(*store_, "short");
  ASSERT_TRUE(item.ok());
  EXPECT_TRUE(item->found);
  ASSERT_TRUE(item->expire_time.has_value());
  // Redis' clock and ours are the same machine's; allow a few ms of rounding.
  EXPECT_GE(*item->expire_time, before + seconds(1) - milliseconds(5));
  EXPECT_LE(*item->expire_time, system_clock::now() + seconds(1) + milliseconds(5));
  EXPECT_TRUE(test::WaitFor([&] { return !Found(*store_, "short"); }, seconds(5)));
  // Once expired the key is absent in every respect.
  EXPECT_TRUE(Get(*store_, "short")->etag.empty());
  EXPECT_EQ(Set(*store_, {.key = "short", .value = "x", .etag = item->etag}).code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(
      Set(*store_, {.key = "short", .value = "new", .concurrency = Concurrency::kFirstWrite}).ok());
}

// Conformance: no TTL => no expire time; TTL 3600 => about an hour ahead, in BulkGet too.
TEST_F(RedisStateTest, TtlExpireTimeIsReported) {
  ASSERT_TRUE(Set(*store_, "forever", "v").ok());
  EXPECT_FALSE(Get(*store_, "forever")->expire_time.has_value());

  ASSERT_TRUE(Set(*store_, {.key = "hour", .value = "v", .ttl_seconds = 3600}).ok());
  const auto expected = system_clock::now() + seconds(3600);
  auto item = Get(*store_, "hour");
  ASSERT_TRUE(item->expire_time.has_value());
  EXPECT_LT(std::chrono::abs(*item->expire_time - expected), seconds(5));
  EXPECT_EQ(FormatRfc3339(*item->expire_time).size(), std::string("2026-01-01T00:00:00Z").size());
  const int64_t ttl = std::stoll(server_->Cli({"TTL", "hour"}));
  EXPECT_GT(ttl, 3590);
  EXPECT_LE(ttl, 3600);

  auto items = BulkGet(*store_, {"hour", "forever"});
  ASSERT_TRUE(items.ok());
  ASSERT_TRUE((*items)[0].expire_time.has_value());
  EXPECT_EQ(*(*items)[0].expire_time, *item->expire_time);
  EXPECT_FALSE((*items)[1].expire_time.has_value());

  // A TTL that Redis' expiry arithmetic cannot hold is refused before anything is written.
  absl::Status huge = Set(*store_, {.key = "hour", .value = "x", .ttl_seconds = int64_t{1} << 60});
  EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueOf(*store_, "hour"), "v");
}

// Conformance: a later set without TTL (or with -1) removes the TTL.
TEST_F(RedisStateTest, LaterSetWithoutTtlRemovesIt) {
  ASSERT_TRUE(Set(*store_, {.key = "no-ttl", .value = "v", .ttl_seconds = 1}).ok());
  ASSERT_TRUE(Set(*store_, {.key = "minus-one", .value = "v", .ttl_seconds = 1}).ok());
  ASSERT_TRUE(Set(*store_, {.key = "in-txn", .value = "v", .ttl_seconds = 1}).ok());
  // The witness is written last, so once it has expired the others' old deadlines have passed.
  ASSERT_TRUE(Set(*store_, {.key = "witness", .value = "v", .ttl_seconds = 1}).ok());
  ASSERT_TRUE(Set(*store_, "no-ttl", "v2").ok());
  ASSERT_TRUE(Set(*store_, {.key = "minus-one", .value = "v2", .ttl_seconds = -1}).ok());
  ASSERT_TRUE(Transact(*store_, {SetRequest{.key = "in-txn", .value = "v2"}}).ok());
  for (const char* key : {"no-ttl", "minus-one", "in-txn"}) {
    EXPECT_FALSE(Get(*store_, key)->expire_time.has_value()) << key;
    EXPECT_EQ(server_->Cli({"TTL", key}), "-1") << key;
  }
  ASSERT_TRUE(test::WaitFor([&] { return !Found(*store_, "witness"); }, seconds(5)));
  EXPECT_EQ(ValueOf(*store_, "no-ttl"), "v2");
  EXPECT_EQ(ValueOf(*store_, "minus-one"), "v2");
  EXPECT_EQ(ValueOf(*store_, "in-txn"), "v2");
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

// Conformance: transactions; deletes in a later transaction; deleting a missing key is fine.
TEST_F(RedisStateTest, TransactionsApplyUpsertsAndDeletes) {
  std::vector<Operation> first;
  for (int i = 0; i < 5; ++i) {
    first.push_back(SetRequest{.key = "t" + std::to_string(i), .value = "v" + std::to_string(i)});
  }
  first.push_back(DeleteRequest{.key = "does-not-exist"});
  ASSERT_TRUE(Transact(*store_, std::move(first)).ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ValueOf(*store_, "t" + std::to_string(i)), "v" + std::to_string(i));
  }
  std::vector<Operation> second = {DeleteRequest{.key = "t0"}, DeleteRequest{.key = "t1"},
                                   SetRequest{.key = "t2", .value = "changed"}};
  ASSERT_TRUE(Transact(*store_, std::move(second)).ok());
  EXPECT_FALSE(Found(*store_, "t0"));
  EXPECT_FALSE(Found(*store_, "t1"));
  EXPECT_EQ(ValueOf(*store_, "t2"), "changed");
  EXPECT_EQ(ValueOf(*store_, "t3"), "v3");
  EXPECT_TRUE(Transact(*store_, {}).ok());
}

// Conformance: transaction-order.
TEST_F(RedisStateTest, TransactionOrder) {
  ASSERT_TRUE(Set(*store_, "k1", "value1").ok());
  std::vector<Operation> ops = {
      DeleteRequest{.key = "k1"},
      SetRequest{.key = "k2", .value = "value2"},
      DeleteRequest{.key = "k2"},
      SetRequest{.key = "k3", .value = "value3"},
  };
  ASSERT_TRUE(Transact(*store_, std::move(ops)).ok());
  EXPECT_FALSE(Found(*store_, "k1"));
  EXPECT_FALSE(Found(*store_, "k2"));
  EXPECT_EQ(ValueOf(*store_, "k3"), "value3");
  // Conditions see the earlier operations: create-only after a delete of the same key succeeds.
  ASSERT_TRUE(Transact(*store_, {DeleteRequest{.key = "k3"},
                                 SetRequest{.key = "k3", .value = "again", .etag = ""}})
                  .ok());
  EXPECT_EQ(ValueOf(*store_, "k3"), "again");
}

TEST_F(RedisStateTest, TransactionIsAllOrNothing) {
  ASSERT_TRUE(Set(*store_, "a", "a0").ok());
  ASSERT_TRUE(Set(*store_, "b", "b0").ok());
  const std::string etag_a = EtagOf(*store_, "a");
  const std::string etag_b = EtagOf(*store_, "b");

  // The last operation's etag is stale: nothing of the transaction may be visible.
  std::vector<Operation> stale = {
      SetRequest{.key = "a", .value = "a1", .etag = etag_a}, DeleteRequest{.key = "b"},
      SetRequest{.key = "c", .value = "c1"},
      SetRequest{.key = "b", .value = "b1", .etag = etag_b},  // b was deleted just before
  };
  absl::Status status = Transact(*store_, std::move(stale));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("'b'"));
  EXPECT_THAT(status.message(), HasSubstr("transaction operation 3"));
  EXPECT_EQ(ValueOf(*store_, "a"), "a0");
  EXPECT_EQ(EtagOf(*store_, "a"), etag_a);
  EXPECT_EQ(ValueOf(*store_, "b"), "b0");
  EXPECT_FALSE(Found(*store_, "c"));

  std::vector<Operation> malformed = {SetRequest{.key = "a", .value = "a2"},
                                      DeleteRequest{.key = "b", .etag = "not-a-number"}};
  EXPECT_EQ(Transact(*store_, std::move(malformed)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueOf(*store_, "a"), "a0");

  std::vector<Operation> first_write = {
      SetRequest{.key = "new", .value = "n"},
      SetRequest{.key = "a", .value = "a3", .concurrency = Concurrency::kFirstWrite}};
  EXPECT_EQ(Transact(*store_, std::move(first_write)).code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(Found(*store_, "new"));

  std::vector<Operation> good = {SetRequest{.key = "a", .value = "a4", .etag = etag_a},
                                 DeleteRequest{.key = "b", .etag = etag_b}};
  ASSERT_TRUE(Transact(*store_, std::move(good)).ok());
  EXPECT_EQ(ValueOf(*store_, "a"), "a4");
  EXPECT_FALSE(Found(*store_, "b"));
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

TEST_F(RedisStateTest, TransactionKeepsJsonBytesAndTtl) {
  const std::string json = R"({"nested":{"list":[1,2,3]},"s":"\u00e9"})";
  std::vector<Operation> ops = {SetRequest{.key = "j", .value = json, .ttl_seconds = 3600}};
  ASSERT_TRUE(Transact(*store_, std::move(ops)).ok());
  auto item = Get(*store_, "j");
  EXPECT_EQ(item->value, json);
  EXPECT_TRUE(item->expire_time.has_value());
  EXPECT_GT(std::stoll(server_->Cli({"TTL", "j"})), 3590);
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

TEST_F(RedisStateTest, CallbacksMayCallBackIntoTheStore) {
  std::promise<std::string> value;
  store_->Set({.key = "k", .value = "v"}, [&](absl::Status status) {
    ASSERT_TRUE(status.ok()) << status;
    store_->Get({.key = "k"}, [&](absl::StatusOr<Item> item) { value.set_value(item->value); });
  });
  auto future = value.get_future();
  ASSERT_EQ(future.wait_for(seconds(5)), std::future_status::ready);
  EXPECT_EQ(future.get(), "v");
}

// 8 threads x 1000 etag-guarded read-modify-write increments of one key: no update is lost.
TEST_F(RedisStateTest, ConcurrentEtagGuardedIncrements) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 1000;
  ASSERT_TRUE(Set(*store_, "counter", "0").ok());
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
        auto item = Get(*store_, "counter");
        if (!item.ok()) {
          other_errors++;
          return;
        }
        const int next = std::stoi(item->value) + 1;
        absl::Status status =
            Set(*store_, {.key = "counter", .value = std::to_string(next), .etag = item->etag});
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
  EXPECT_EQ(ValueOf(*store_, "counter"), std::to_string(kThreads * kIncrements));
  EXPECT_EQ(server_->Cli({"HGET", "counter", "data"}), std::to_string(kThreads * kIncrements));
  EXPECT_GT(mismatches.load(), 0) << "the test never produced a conflict";
}

// 16 concurrent first-write creators per key, 100 keys: exactly one wins each key.
TEST_F(RedisStateTest, ConcurrentFirstWriteHasOneWinnerPerKey) {
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
        absl::Status status = Set(*store_, {.key = "key" + std::to_string(k),
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
    // The stored value is the winner's: no loser overwrote it.
    EXPECT_EQ(ValueOf(*store_, "key" + std::to_string(k)), std::to_string(winner_id[k].load()));
  }
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
