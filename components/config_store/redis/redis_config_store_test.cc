#include "components/config_store/redis/redis_config_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/dispatcher.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::components::config_store {
namespace {

using test::RedisServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr auto kWait = std::chrono::seconds(10);

using Contents = std::map<std::string, std::string>;

// Collects what one subscription receives.
class Recorder {
 public:
  ChangeHandler Handler() {
    return [this](std::vector<Item> items) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_;
      for (Item& item : items) {
        items_.push_back(std::move(item));
      }
      cv_.notify_all();
    };
  }
  // Waits until every key of `expected` was received with that content (later deliveries of a
  // key replace earlier ones).
  bool WaitFor(const Contents& expected) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] {
      Contents last = LastLocked();
      return std::all_of(expected.begin(), expected.end(), [&](const auto& entry) {
        auto it = last.find(entry.first);
        return it != last.end() && it->second == entry.second;
      });
    });
  }
  // key -> content of everything received, and forgets it.
  Contents Take() {
    std::lock_guard<std::mutex> lock(mu_);
    Contents out = LastLocked();
    items_.clear();
    return out;
  }
  std::vector<Item> TakeItems() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(items_, {});
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  Contents LastLocked() const {
    Contents out;
    for (const Item& item : items_) {
      out[item.key] = item.content;
    }
    return out;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> items_;
  int calls_ = 0;
};

std::vector<std::string> Keys(const std::string& prefix, int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) {
    keys.push_back(prefix + std::to_string(i));
  }
  return keys;
}

Contents Expect(const std::vector<std::string>& keys, const std::string& content) {
  Contents out;
  for (const auto& key : keys) {
    out[key] = content;
  }
  return out;
}

std::vector<std::string> KeysOf(const std::vector<Item>& items) {
  std::vector<std::string> keys;
  for (const Item& item : items) {
    keys.push_back(item.key);
  }
  return keys;
}

// Blocks a dispatcher's loop until released (or destroyed): its sockets go unread meanwhile.
class LoopBlocker {
 public:
  explicit LoopBlocker(Dispatcher& dispatcher) {
    std::promise<void> entered;
    auto entered_future = entered.get_future();
    dispatcher.Post([this, &entered] {
      entered.set_value();
      released_.get_future().wait_for(std::chrono::seconds(20));
    });
    entered_future.wait();
  }
  ~LoopBlocker() { Release(); }
  void Release() {
    if (!done_) {
      done_ = true;
      released_.set_value();
    }
  }

 private:
  std::promise<void> released_;
  bool done_ = false;
};

class RedisConfigStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    // Two component objects on the same Redis, each with its own loop: two sidecars.
    dispatcher_ = *Dispatcher::Create("config-a");
    dispatcher_->Start();
    other_dispatcher_ = *Dispatcher::Create("config-b");
    other_dispatcher_->Start();
    store_ = Make(dispatcher_.get(), &health_);
    other_ = Make(other_dispatcher_.get(), &other_health_);
    ASSERT_TRUE(store_ && other_);
    // The barrier subscription behind Flush().
    barrier_id_ = Subscribe(*store_, {}, barrier_.Handler(), "app", "barrier");
  }
  void TearDown() override {
    if (store_) {
      store_->Shutdown();
    }
    if (other_) {
      other_->Shutdown();
    }
    store_.reset();
    other_.reset();
    dispatcher_->Stop();
    other_dispatcher_->Stop();
  }

  std::unique_ptr<ConfigStore> Make(Dispatcher* dispatcher, HealthIndicator* health) {
    ComponentContext context;
    context.kind = Kind::kConfigStore;
    context.name = "conf";
    context.type = "redis";
    context.app_id = "app";
    context.dispatcher = dispatcher;
    context.health = health;
    context.metadata = {
        {"redisHost", server_->address()}, {"timeout", "1s"}, {"dialTimeout", "2s"}};
    auto store = RedisConfigStoreFactory().Create(context);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) {
      return nullptr;
    }
    absl::Status init = (*store)->Init();
    EXPECT_TRUE(init.ok()) << init;
    return std::move(*store);
  }

  // Every change published before this call has been handed to store_'s handlers when it
  // returns: the barrier's own change comes after them on the same connection and loop.
  void Flush() {
    const std::string token = std::to_string(++flushes_);
    SaveOn(*store_, {"flush"}, token, "app", "barrier");
    ASSERT_TRUE(barrier_.WaitFor({{"flush", token}}));
  }

  static absl::Status SaveStatus(ConfigStore& store,
                                 const std::vector<std::string>& keys,
                                 const std::string& content,
                                 const std::string& app_id = "app",
                                 const std::string& label = "") {
    SaveRequest request{.app_id = app_id};
    for (const auto& key : keys) {
      request.items.push_back(
          Item{.key = key, .content = content, .label = label, .metadata = {{"version", content}}});
    }
    auto result = std::make_shared<std::promise<absl::Status>>();
    auto future = result->get_future();
    store.Save(std::move(request), [result](absl::Status s) { result->set_value(s); });
    if (future.wait_for(kWait) != std::future_status::ready) {
      return absl::DeadlineExceededError("save did not finish");
    }
    return future.get();
  }
  void SaveOn(ConfigStore& store,
              const std::vector<std::string>& keys,
              const std::string& content,
              const std::string& app_id = "app",
              const std::string& label = "") {
    absl::Status status = SaveStatus(store, keys, content, app_id, label);
    ASSERT_TRUE(status.ok()) << status;
  }
  void Save(const std::vector<std::string>& keys,
            const std::string& content,
            const std::string& app_id = "app",
            const std::string& label = "") {
    SaveOn(*store_, keys, content, app_id, label);
  }
  // Retries while the store reconnects (after a Redis restart).
  void SaveEventually(ConfigStore& store,
                      const std::vector<std::string>& keys,
                      const std::string& content) {
    ASSERT_TRUE(test::WaitFor([&] { return SaveStatus(store, keys, content).ok(); }, kWait));
  }

  static absl::Status DeleteStatus(ConfigStore& store,
                                   std::vector<std::string> keys,
                                   const std::string& label = "") {
    auto result = std::make_shared<std::promise<absl::Status>>();
    auto future = result->get_future();
    store.Delete(Selector{.app_id = "app", .label = label, .keys = std::move(keys)},
                 [result](absl::Status s) { result->set_value(s); });
    if (future.wait_for(kWait) != std::future_status::ready) {
      return absl::DeadlineExceededError("delete did not finish");
    }
    return future.get();
  }
  void Delete(std::vector<std::string> keys, const std::string& label = "") {
    absl::Status status = DeleteStatus(*store_, std::move(keys), label);
    ASSERT_TRUE(status.ok()) << status;
  }

  std::vector<Item> Get(std::vector<std::string> keys,
                        const std::string& app_id = "app",
                        const std::string& label = "") {
    auto result = std::make_shared<std::promise<absl::StatusOr<std::vector<Item>>>>();
    auto future = result->get_future();
    store_->Get(Selector{.app_id = app_id, .label = label, .keys = std::move(keys)},
                [result](absl::StatusOr<std::vector<Item>> got) { result->set_value(got); });
    if (future.wait_for(kWait) != std::future_status::ready) {
      ADD_FAILURE() << "get did not finish";
      return {};
    }
    auto got = future.get();
    EXPECT_TRUE(got.ok()) << got.status();
    return got.value_or(std::vector<Item>{});
  }

  static uint64_t Subscribe(ConfigStore& store,
                            std::vector<std::string> keys,
                            ChangeHandler handler,
                            const std::string& app_id = "app",
                            const std::string& label = "") {
    auto id = store.Subscribe(Selector{.app_id = app_id, .label = label, .keys = std::move(keys)},
                              std::move(handler));
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }
  // Connections in pub/sub mode, as Redis sees them.
  int PubSubClients() const {
    const std::string list = server_->Cli({"CLIENT", "LIST", "TYPE", "pubsub"});
    return list.empty() ? 0 : static_cast<int>(std::count(list.begin(), list.end(), '\n') + 1);
  }

  uint64_t Subscribe(std::vector<std::string> keys,
                     ChangeHandler handler,
                     const std::string& app_id = "app",
                     const std::string& label = "") {
    return Subscribe(*store_, std::move(keys), std::move(handler), app_id, label);
  }

  std::unique_ptr<RedisServer> server_;
  DispatcherPtr dispatcher_;
  DispatcherPtr other_dispatcher_;
  HealthIndicator health_;
  HealthIndicator other_health_;
  std::unique_ptr<ConfigStore> store_;
  std::unique_ptr<ConfigStore> other_;
  Recorder barrier_;
  uint64_t barrier_id_ = 0;
  int flushes_ = 0;
};

// Conformance (dapr-api.md §4.4): get, three subscribers, updates, deletions, unsubscribe one by
// one.
TEST_F(RedisConfigStoreTest, Conformance) {
  const auto group1 = Keys("k1-", 10);
  const auto group2 = Keys("k2-", 10);
  Save(group1, "1.0.0");
  Save(group2, "1.0.0");

  auto some = Get({"k1-0", "k2-5", "k1-9"});
  EXPECT_THAT(KeysOf(some), ElementsAre("k1-0", "k2-5", "k1-9"));
  ASSERT_EQ(some.size(), 3u);
  EXPECT_EQ(some[0].content, "1.0.0");
  EXPECT_EQ(some[0].group, "default");
  EXPECT_EQ(some[0].label, "default");
  EXPECT_EQ(some[0].metadata.at("version"), "1.0.0");
  EXPECT_EQ(Get({}).size(), 20u);
  EXPECT_THAT(Get({"unknown-1", "unknown-2"}), IsEmpty());

  Recorder sub1, sub2, sub3;
  std::vector<std::string> both = group1;
  both.insert(both.end(), group2.begin(), group2.end());
  const uint64_t id1 = Subscribe(group1, sub1.Handler());
  const uint64_t id2 = Subscribe(both, sub2.Handler());
  const uint64_t id3 = Subscribe({}, sub3.Handler());

  // Update both groups and add new keys.
  const auto fresh = Keys("k3-", 5);
  Save(group1, "2.0.0");
  Save(group2, "2.0.0");
  Save(fresh, "2.0.0");
  std::vector<std::string> all = both;
  all.insert(all.end(), fresh.begin(), fresh.end());
  ASSERT_TRUE(sub1.WaitFor(Expect(group1, "2.0.0")));
  ASSERT_TRUE(sub2.WaitFor(Expect(both, "2.0.0")));
  ASSERT_TRUE(sub3.WaitFor(Expect(all, "2.0.0")));
  Flush();
  EXPECT_EQ(sub1.Take(), Expect(group1, "2.0.0"));
  EXPECT_EQ(sub2.Take(), Expect(both, "2.0.0"));
  auto updated = sub3.TakeItems();
  EXPECT_EQ(updated.size(), all.size()) << "each change delivered once";
  for (const Item& item : updated) {
    EXPECT_EQ(item.metadata.at("version"), "2.0.0");
  }

  // Delete group 2: subscribers 2 and 3 receive the keys with empty content.
  Delete(group2);
  ASSERT_TRUE(sub2.WaitFor(Expect(group2, "")));
  ASSERT_TRUE(sub3.WaitFor(Expect(group2, "")));
  Flush();
  EXPECT_THAT(sub1.Take(), IsEmpty());
  EXPECT_EQ(sub2.Take(), Expect(group2, ""));
  auto deleted = sub3.TakeItems();
  EXPECT_THAT(KeysOf(deleted), UnorderedElementsAreArray(group2));
  for (const Item& item : deleted) {
    EXPECT_TRUE(item.content.empty());
    EXPECT_TRUE(item.tags.empty());
    EXPECT_EQ(item.group, "default");
    EXPECT_EQ(item.label, "default");
  }
  EXPECT_THAT(Get(group2), IsEmpty());

  // Unsubscribe one by one; updates reach only the remaining subscribers.
  store_->Unsubscribe(id1);
  Save(group1, "3.0.0");
  ASSERT_TRUE(sub2.WaitFor(Expect(group1, "3.0.0")));
  ASSERT_TRUE(sub3.WaitFor(Expect(group1, "3.0.0")));
  EXPECT_THAT(sub1.Take(), IsEmpty());
  EXPECT_EQ(sub2.Take(), Expect(group1, "3.0.0"));
  EXPECT_EQ(sub3.Take(), Expect(group1, "3.0.0"));

  store_->Unsubscribe(id2);
  Save(group1, "4.0.0");
  ASSERT_TRUE(sub3.WaitFor(Expect(group1, "4.0.0")));
  EXPECT_THAT(sub2.Take(), IsEmpty());
  EXPECT_EQ(sub3.Take(), Expect(group1, "4.0.0"));

  store_->Unsubscribe(id3);
  Save(group1, "5.0.0");
  Flush();
  EXPECT_THAT(sub3.Take(), IsEmpty());
  store_->Unsubscribe(id3);  // unknown ids are ignored
}

TEST_F(RedisConfigStoreTest, DataLayoutInRedis) {
  SaveRequest request{.app_id = "app"};
  request.items.push_back(Item{.key = "db.url",
                               .content = "postgres://x",
                               .group = "g",
                               .label = "blue",
                               .tags = {{"owner", "ops"}},
                               .metadata = {{"version", "7"}}});
  absl::Status status;
  std::promise<void> done;
  store_->Save(request, [&](absl::Status s) {
    status = s;
    done.set_value();
  });
  done.get_future().wait();
  ASSERT_TRUE(status.ok()) << status;
  // One hash per app/group/label, one field per key; the revision beside it.
  EXPECT_EQ(server_->Cli({"HGET", "config||app||g||blue", "db.url"}),
            "12:postgres://x1:15:owner3:ops1:17:version1:7");
  EXPECT_EQ(server_->Cli({"GET", "config-rev||app||g||blue"}), "1");
  EXPECT_EQ(server_->Cli({"PUBSUB", "NUMPAT"}), "1");  // config-changed||*
  EXPECT_EQ(PubSubClients(), 2) << "one subscriber connection per store object";

  auto got = Get({"db.url"}, "app", "blue");
  EXPECT_TRUE(got.empty()) << "group g, not default";
  std::promise<std::vector<Item>> result;
  store_->Get(Selector{.app_id = "app", .group = "g", .label = "blue"},
              [&](absl::StatusOr<std::vector<Item>> items) { result.set_value(*items); });
  auto items = result.get_future().get();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].content, "postgres://x");
  EXPECT_EQ(items[0].group, "g");
  EXPECT_EQ(items[0].label, "blue");
  EXPECT_EQ(items[0].tags, (std::map<std::string, std::string>{{"owner", "ops"}}));
  EXPECT_EQ(items[0].metadata, (std::map<std::string, std::string>{{"version", "7"}}));

  // A value written by hand reads as plain content; binary content round-trips.
  server_->Cli({"HSET", "config||app||default||default", "manual", "hello"});
  const std::string binary("a\0b:c", 5);
  Save({"binary"}, binary);
  auto plain = Get({"manual", "binary"});
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0].content, "hello");
  EXPECT_TRUE(plain[0].metadata.empty());
  EXPECT_EQ(plain[1].content, binary);
}

TEST_F(RedisConfigStoreTest, AppGroupAndLabelSeparateItems) {
  Save({"k"}, "default-label");
  Save({"k"}, "blue-label", "app", "blue");
  Save({"k"}, "other-app", "other");
  EXPECT_EQ(Get({"k"})[0].content, "default-label");
  EXPECT_EQ(Get({"k"}, "app", "blue")[0].content, "blue-label");
  EXPECT_EQ(Get({"k"}, "other")[0].content, "other-app");
  EXPECT_EQ(Get({}, "app", "blue").size(), 1u);

  Recorder blue, other;
  Subscribe({}, blue.Handler(), "app", "blue");
  Subscribe({"k"}, other.Handler(), "other");
  Save({"k"}, "changed");
  Flush();
  EXPECT_EQ(blue.calls(), 0);
  EXPECT_EQ(other.calls(), 0);

  // Delete with no keys removes every item of that app/group/label, and says so.
  Save({"k2"}, "x", "app", "blue");
  ASSERT_TRUE(blue.WaitFor({{"k2", "x"}}));
  blue.Take();
  Delete({}, "blue");
  ASSERT_TRUE(blue.WaitFor({{"k", ""}, {"k2", ""}}));
  EXPECT_EQ(blue.Take(), (Contents{{"k", ""}, {"k2", ""}}));
  EXPECT_THAT(Get({}, "app", "blue"), IsEmpty());
  EXPECT_EQ(Get({"k"})[0].content, "changed");
}

TEST_F(RedisConfigStoreTest, DeletingAMissingKeyNotifiesNobody) {
  Recorder sub;
  Subscribe({}, sub.Handler());
  Delete({"missing"});
  Flush();
  EXPECT_EQ(sub.calls(), 0);
}

TEST_F(RedisConfigStoreTest, RejectsBadRequests) {
  absl::Status status;
  store_->Save(SaveRequest{.app_id = "app", .items = {Item{.key = "", .content = "x"}}},
               [&](absl::Status s) { status = s; });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Subscribe(Selector{.app_id = "app"}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* bad : {"a||b", "|a", "a|"}) {
    store_->Save(SaveRequest{.app_id = "app", .items = {Item{.key = "k", .group = bad}}},
                 [&](absl::Status s) { status = s; });
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("config_store/conf"));
    auto sub = store_->Subscribe(Selector{.app_id = "app", .label = bad}, [](std::vector<Item>) {});
    EXPECT_EQ(sub.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    store_->Delete(Selector{.app_id = bad}, [&](absl::Status s) { status = s; });
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(SaveStatus(*store_, {"k"}, "v", "a|b").ok()) << "a single '|' inside is fine";
}

// A change written through another component object (another sidecar on the same Redis) reaches
// this one's subscriber quickly.
TEST_F(RedisConfigStoreTest, ChangesFromAnotherSidecarArriveWithin100Ms) {
  constexpr int kChanges = 20;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::chrono::steady_clock::time_point> arrived;
  Subscribe({"feature"}, [&](std::vector<Item> items) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu);
    for (const Item& item : items) {
      arrived.emplace(item.content, now);
    }
    cv.notify_all();
  });
  Flush();  // the subscription is registered and synced
  std::vector<double> latencies_ms;
  for (int i = 0; i < kChanges; ++i) {
    const std::string content = "v" + std::to_string(i);
    const auto start = std::chrono::steady_clock::now();
    SaveOn(*other_, {"feature"}, content);
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return arrived.count(content) > 0; }))
        << "change " << i << " never arrived";
    latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(arrived[content] - start).count());
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double median = latencies_ms[kChanges / 2];
  std::cout << "notification latency over " << kChanges << " changes: median " << median
            << " ms, max " << latencies_ms.back() << " ms\n";
  RecordProperty("median_latency_us", static_cast<int>(median * 1000));
  EXPECT_LT(median, 100.0);
}

// Redis goes away while subscribed; another sidecar changes and deletes keys after Redis is back
// but before this store's subscriber has reconnected (its loop is held): the changes arrive after
// the reconnection, a re-save of identical content does not, and later changes flow again.
TEST_F(RedisConfigStoreTest, ChangesMadeWhileDisconnectedArriveAfterReconnecting) {
  Recorder keyed, all;
  Subscribe({"a", "b", "c", "d"}, keyed.Handler());
  Subscribe({}, all.Handler());
  Save({"a", "b", "c"}, "1");
  ASSERT_TRUE(keyed.WaitFor({{"a", "1"}, {"b", "1"}, {"c", "1"}}));
  ASSERT_TRUE(all.WaitFor({{"a", "1"}, {"b", "1"}, {"c", "1"}}));
  keyed.Take();
  all.Take();

  {
    LoopBlocker blocked(*dispatcher_);
    server_->Kill();
    ASSERT_TRUE(server_->Restart().ok());  // AOF replayed
    SaveEventually(*other_, {"a"}, "2");
    ASSERT_TRUE(DeleteStatus(*other_, {"b"}).ok());
    ASSERT_TRUE(SaveStatus(*other_, {"c"}, "1").ok());  // same content as before
    ASSERT_TRUE(SaveStatus(*other_, {"d"}, "new").ok());
  }  // the loop runs again: both connections notice the restart and reconnect

  ASSERT_TRUE(keyed.WaitFor({{"a", "2"}, {"b", ""}, {"d", "new"}}));
  ASSERT_TRUE(all.WaitFor({{"a", "2"}, {"b", ""}, {"d", "new"}}));
  Flush();
  EXPECT_EQ(keyed.Take(), (Contents{{"a", "2"}, {"b", ""}, {"d", "new"}}))
      << "c was re-saved with the content this subscriber already had";
  EXPECT_EQ(all.Take(), (Contents{{"a", "2"}, {"b", ""}, {"d", "new"}}));

  SaveOn(*other_, {"c"}, "3");
  ASSERT_TRUE(keyed.WaitFor({{"c", "3"}}));
  ASSERT_TRUE(all.WaitFor({{"c", "3"}}));
  Flush();
  EXPECT_EQ(keyed.TakeItems().size(), 1u) << "delivered once";
}

// The simple form: kill, restart, change at once from the other sidecar. Whichever comes first —
// the subscriber's reconnection or the change — the change is delivered.
TEST_F(RedisConfigStoreTest, ChangeRightAfterARestartIsDelivered) {
  Recorder sub;
  Subscribe({"k"}, sub.Handler());
  Save({"k"}, "before");
  ASSERT_TRUE(sub.WaitFor({{"k", "before"}}));
  server_->Kill();
  ASSERT_TRUE(server_->Restart().ok());
  SaveEventually(*other_, {"k"}, "after");
  ASSERT_TRUE(sub.WaitFor({{"k", "after"}}));
  EXPECT_EQ(Get({"k"})[0].content, "after");
}

// Redis loses its data (here: FLUSHALL while this store is cut off), so revisions restart below
// what the subscriber knew: contents are compared anyway.
TEST_F(RedisConfigStoreTest, ARevisionThatWentBackwardsStillDelivers) {
  Recorder sub;
  Subscribe({"a", "b"}, sub.Handler());
  for (int i = 0; i < 5; ++i) {
    Save({"a", "b"}, "v" + std::to_string(i));
  }
  ASSERT_TRUE(sub.WaitFor({{"a", "v4"}, {"b", "v4"}}));
  sub.Take();
  {
    LoopBlocker blocked(*dispatcher_);
    server_->Cli({"FLUSHALL"});
    server_->Cli({"CLIENT", "KILL", "TYPE", "pubsub"});
    SaveOn(*other_, {"a"}, "reborn");  // revision 1 again
  }
  ASSERT_TRUE(sub.WaitFor({{"a", "reborn"}, {"b", ""}}));
  SaveOn(*other_, {"b"}, "back");  // revision 2: still news
  ASSERT_TRUE(sub.WaitFor({{"b", "back"}}));
}

// Handler calls of one subscription never overlap and follow the change order, with writers on
// both sidecars.
TEST_F(RedisConfigStoreTest, DeliveriesAreSerialAndOrdered) {
  constexpr int kWrites = 100;
  std::atomic<bool> in_handler{false};
  std::atomic<int> overlaps{0};
  Recorder recorder;
  ChangeHandler record = recorder.Handler();
  Subscribe({"k"}, [&](std::vector<Item> items) {
    if (in_handler.exchange(true)) {
      overlaps++;
    }
    std::this_thread::yield();
    record(std::move(items));
    in_handler = false;
  });
  Flush();
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      ConfigStore& store = w == 0 ? *store_ : *other_;
      for (int i = 0; i < kWrites; ++i) {
        SaveOn(store, {"k"}, std::to_string(w) + ":" + std::to_string(i));
      }
    });
  }
  for (auto& writer : writers) {
    writer.join();
  }
  Flush();
  EXPECT_EQ(overlaps.load(), 0);
  std::vector<int> last(2, -1);
  int out_of_order = 0;
  auto items = recorder.TakeItems();
  EXPECT_EQ(items.size(), 2u * kWrites);
  for (const Item& item : items) {
    const size_t colon = item.content.find(':');
    const int writer = std::stoi(item.content.substr(0, colon));
    const int index = std::stoi(item.content.substr(colon + 1));
    if (index <= last[writer]) {
      out_of_order++;
    }
    last[writer] = index;
  }
  EXPECT_EQ(out_of_order, 0);
}

// Unsubscribe called while the handler runs on the loop waits for it; the handler never runs
// again.
TEST_F(RedisConfigStoreTest, UnsubscribeWaitsForARunningHandler) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> in_handler{false};
  std::atomic<int> calls{0};
  const uint64_t id = Subscribe({"k"}, [&](std::vector<Item>) {
    if (calls.fetch_add(1) == 0) {
      in_handler = true;
      entered.set_value();
      released.wait_for(kWait);
      in_handler = false;
    }
  });
  SaveOn(*other_, {"k"}, "v1");  // store_'s loop is about to be held by the handler
  ASSERT_EQ(entered.get_future().wait_for(kWait), std::future_status::ready);

  std::atomic<bool> returned{false};
  std::atomic<bool> running_at_return{true};
  std::thread unsubscriber([&] {
    store_->Unsubscribe(id);
    running_at_return = in_handler.load();
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(returned.load()) << "Unsubscribe returned while the handler was running";
  release.set_value();
  unsubscriber.join();
  EXPECT_TRUE(returned.load());
  EXPECT_FALSE(running_at_return.load());
  Save({"k"}, "v2");
  Flush();
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(RedisConfigStoreTest, HandlerMayUnsubscribeItself) {
  std::atomic<uint64_t> id{0};
  std::atomic<int> calls{0};
  id = Subscribe({}, [&](std::vector<Item>) {
    calls++;
    store_->Unsubscribe(id.load());
  });
  Save({"k"}, "v1");
  ASSERT_TRUE(test::WaitFor([&] { return calls.load() == 1; }));
  Save({"k"}, "v2");
  Flush();
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(RedisConfigStoreTest, ShutdownStopsEverySubscription) {
  Recorder sub;
  Subscribe({}, sub.Handler());
  store_->Shutdown();
  SaveOn(*other_, {"k"}, "v");
  EXPECT_EQ(store_->Subscribe(Selector{.app_id = "app"}, sub.Handler()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Nothing can run any more: the subscriber connection is closed.
  EXPECT_EQ(PubSubClients(), 1);
  EXPECT_EQ(sub.calls(), 0);
}

// The runtime shuts the components down, stops the component loop, then destroys them.
TEST_F(RedisConfigStoreTest, DestroyedAfterTheDispatcherStoppedReturnsAtOnce) {
  Recorder sub;
  Subscribe({}, sub.Handler());
  store_->Shutdown();
  dispatcher_->Stop();
  const auto start = std::chrono::steady_clock::now();
  store_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST_F(RedisConfigStoreTest, UnreachableRedisIsAnError) {
  server_->Kill();
  ASSERT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kDown; }));
  absl::Status status = SaveStatus(*store_, {"k"}, "v");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("config_store/conf"));
}

}  // namespace
}  // namespace ottava::components::config_store
