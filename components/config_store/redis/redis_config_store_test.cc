#include "components/config_store/redis/redis_config_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/dispatcher.h"
#include "components/common/redis/redis_component_test_env.h"
#include "components/config_store/config_store_conformance.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

// The conformance checklist of dapr-api.md §4.4 (components/config_store/
// config_store_conformance.cc) against a real redis-server, with a second component object on the
// same Redis as another sidecar; plus what only Redis has: the data layout, reconnection and
// outages.

namespace ottava::components::config_store {
namespace {

using conformance::ConfigStoreConformanceTest;
using conformance::Contents;
using conformance::DeleteStatus;
using conformance::Expect;
using conformance::kWait;
using conformance::Recorder;
using conformance::SaveOn;
using conformance::SaveStatus;
using ::testing::HasSubstr;

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

// A redis-server with two store objects on it, each with its own loop (two sidecars): what every
// test here, shared or not, starts from.
class RedisConfigEnv : public RedisComponentTestEnv<ConfigStore, RedisConfigStoreFactory> {
 protected:
  RedisConfigEnv() : RedisComponentTestEnv(Kind::kConfigStore, "conf", "config-a", "1s") {}

  // Records the failure and returns false if the server or the stores cannot be started.
  bool Start() {
    if (!RedisComponentTestEnv::Start()) {
      return false;
    }
    other_dispatcher_ = *Dispatcher::Create("config-b");
    other_dispatcher_->Start();
    ComponentContext context = Context(MetadataFor(*server_));
    context.dispatcher = other_dispatcher_.get();
    context.health = &other_health_;
    other_ = Create(context);
    if (other_ == nullptr) {
      return false;
    }
    absl::Status init = other_->Init();
    EXPECT_TRUE(init.ok()) << init;
    // The barrier subscription behind Flush().
    barrier_id_ = Subscribe(*store_, {}, barrier_.Handler(), "app", "barrier");
    return init.ok();
  }
  void Stop() {
    if (store_) {
      store_->Shutdown();
    }
    if (other_) {
      other_->Shutdown();
    }
    other_.reset();
    RedisComponentTestEnv::Stop();
    if (other_dispatcher_) {
      other_dispatcher_->Stop();
    }
  }

  // Every change published before this call has been handed to store_'s handlers when it
  // returns: the barrier's own change comes after them on the same connection and loop.
  void Flush() {
    const std::string token = std::to_string(++flushes_);
    SaveOn(*store_, {"flush"}, token, "app", "barrier");
    ASSERT_TRUE(barrier_.WaitFor({{"flush", token}}));
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

  std::vector<Item> Get(std::vector<std::string> keys,
                        const std::string& app_id = "app",
                        const std::string& label = "") {
    return conformance::GetItems(*store_, std::move(keys), app_id, label);
  }

  static uint64_t Subscribe(ConfigStore& store,
                            std::vector<std::string> keys,
                            ChangeHandler handler,
                            const std::string& app_id = "app",
                            const std::string& label = "") {
    return conformance::SubscribeTo(store, std::move(keys), std::move(handler), app_id, label);
  }
  uint64_t Subscribe(std::vector<std::string> keys,
                     ChangeHandler handler,
                     const std::string& app_id = "app",
                     const std::string& label = "") {
    return Subscribe(*store_, std::move(keys), std::move(handler), app_id, label);
  }
  // Connections in pub/sub mode, as Redis sees them.
  int PubSubClients() const {
    const std::string list = server_->Cli({"CLIENT", "LIST", "TYPE", "pubsub"});
    return list.empty() ? 0 : static_cast<int>(std::count(list.begin(), list.end(), '\n') + 1);
  }

  DispatcherPtr other_dispatcher_;
  HealthIndicator other_health_;
  std::unique_ptr<ConfigStore> other_;
  Recorder barrier_;
  uint64_t barrier_id_ = 0;
  int flushes_ = 0;
};

// The shared conformance suite on a fresh server per test; other() is the second sidecar.
class RedisHarness : public conformance::ConfigStoreHarness, private RedisConfigEnv {
 public:
  static std::unique_ptr<conformance::ConfigStoreHarness> Make() {
    auto harness = std::make_unique<RedisHarness>();
    return harness->Start() ? std::move(harness) : nullptr;
  }
  ~RedisHarness() override { Stop(); }
  ConfigStore& store() override { return *store_; }
  ConfigStore& other() override { return *other_; }
  void Flush() override {
    if (!shut_down_) {  // after Shutdown nothing can be delivered: no barrier either
      RedisConfigEnv::Flush();
    }
  }
  void Shutdown() override {
    shut_down_ = true;
    store_->Shutdown();
  }
  std::optional<std::string> Backend(const std::vector<std::string>& command) override {
    return server_->Cli(command);
  }

 private:
  bool shut_down_ = false;
};

INSTANTIATE_TEST_SUITE_P(Redis,
                         ConfigStoreConformanceTest,
                         ::testing::Values(conformance::ConfigStoreConformanceParam{
                             .name = "redis",
                             .writers = 2,
                             .writes = 100,
                             .refused_names = {"a||b", "|a", "a|"},
                             .make = &RedisHarness::Make}),
                         conformance::ConfigStoreConformanceName());

class RedisConfigStoreTest : public ::testing::Test, protected RedisConfigEnv {
 protected:
  void SetUp() override { ASSERT_TRUE(Start()); }
  void TearDown() override { Stop(); }
};

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
