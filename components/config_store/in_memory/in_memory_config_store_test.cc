#include "components/config_store/in_memory/in_memory_config_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/dispatcher.h"

namespace ottava::components::config_store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr auto kTimeout = std::chrono::seconds(5);

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
  bool WaitForItems(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kTimeout, [&] { return items_.size() >= n; });
  }
  // key -> content of everything received, and forgets it.
  std::map<std::string, std::string> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, std::string> out;
    for (const Item& item : items_) {
      out[item.key] = item.content;
    }
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

std::map<std::string, std::string> Expect(const std::vector<std::string>& keys,
                                          const std::string& content) {
  std::map<std::string, std::string> out;
  for (const auto& key : keys) {
    out[key] = content;
  }
  return out;
}

// Runs every test with deliveries on a dispatcher (true) and inline (false).
class InMemoryConfigStoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      auto dispatcher = Dispatcher::Create("config-test");
      ASSERT_TRUE(dispatcher.ok());
      dispatcher_ = std::move(*dispatcher);
      dispatcher_->Start();
    }
    ComponentContext context;
    context.kind = Kind::kConfigStore;
    context.name = "conf";
    context.type = "in-memory";
    context.app_id = "app";
    context.dispatcher = dispatcher_.get();
    auto store = InMemoryConfigStoreFactory().Create(context);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    ASSERT_TRUE(store_->Init().ok());
  }
  void TearDown() override {
    store_->Shutdown();
    store_.reset();
    if (dispatcher_) {
      dispatcher_->Stop();
    }
  }

  // Returns once every delivery queued so far has been made.
  void Flush() {
    if (!dispatcher_) {
      return;  // inline deliveries are done when Save/Delete return
    }
    std::promise<void> done;
    dispatcher_->Post([&] { done.set_value(); });
    done.get_future().wait();
  }

  void Save(const std::vector<std::string>& keys,
            const std::string& content,
            const std::string& app_id = "app",
            const std::string& label = "") {
    SaveRequest request{.app_id = app_id};
    for (const auto& key : keys) {
      request.items.push_back(
          Item{.key = key, .content = content, .label = label, .metadata = {{"version", content}}});
    }
    absl::Status status;
    store_->Save(std::move(request), [&](absl::Status s) { status = s; });
    ASSERT_TRUE(status.ok()) << status;
  }

  void Delete(std::vector<std::string> keys, const std::string& label = "") {
    absl::Status status;
    store_->Delete(Selector{.app_id = "app", .label = label, .keys = std::move(keys)},
                   [&](absl::Status s) { status = s; });
    ASSERT_TRUE(status.ok()) << status;
  }

  std::vector<Item> Get(std::vector<std::string> keys,
                        const std::string& app_id = "app",
                        const std::string& label = "") {
    std::vector<Item> items;
    store_->Get(Selector{.app_id = app_id, .label = label, .keys = std::move(keys)},
                [&](absl::StatusOr<std::vector<Item>> got) {
                  ASSERT_TRUE(got.ok());
                  items = std::move(*got);
                });
    return items;
  }

  uint64_t Subscribe(std::vector<std::string> keys,
                     ChangeHandler handler,
                     const std::string& app_id = "app",
                     const std::string& label = "") {
    auto id = store_->Subscribe(Selector{.app_id = app_id, .label = label, .keys = std::move(keys)},
                                std::move(handler));
    EXPECT_TRUE(id.ok());
    return id.value_or(0);
  }

  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<ConfigStore> store_;
};

std::vector<std::string> KeysOf(const std::vector<Item>& items) {
  std::vector<std::string> keys;
  for (const Item& item : items) {
    keys.push_back(item.key);
  }
  return keys;
}

// Conformance (dapr-api.md §4.4): get, three subscribers, updates, deletions, unsubscribe one by
// one.
TEST_P(InMemoryConfigStoreTest, Conformance) {
  const auto group1 = Keys("k1-", 10);
  const auto group2 = Keys("k2-", 10);
  Save(group1, "1.0.0");
  Save(group2, "1.0.0");

  auto some = Get({"k1-0", "k2-5", "k1-9"});
  EXPECT_THAT(KeysOf(some), ElementsAre("k1-0", "k2-5", "k1-9"));
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
  Flush();
  EXPECT_EQ(sub1.Take(), Expect(group1, "2.0.0"));
  EXPECT_EQ(sub2.Take(), Expect(both, "2.0.0"));
  std::vector<std::string> all = both;
  all.insert(all.end(), fresh.begin(), fresh.end());
  EXPECT_EQ(sub3.Take(), Expect(all, "2.0.0"));

  // Delete group 2: subscribers 2 and 3 receive the keys with empty content.
  Delete(group2);
  Flush();
  EXPECT_THAT(sub1.Take(), IsEmpty());
  EXPECT_EQ(sub2.Take(), Expect(group2, ""));
  auto deleted = sub3.TakeItems();
  EXPECT_THAT(KeysOf(deleted), UnorderedElementsAreArray(group2));
  for (const Item& item : deleted) {
    EXPECT_TRUE(item.content.empty());
    EXPECT_EQ(item.group, "default");
    EXPECT_EQ(item.label, "default");
  }
  EXPECT_THAT(Get(group2), IsEmpty());

  // Unsubscribe one by one; updates reach only the remaining subscribers.
  store_->Unsubscribe(id1);
  Save(group1, "3.0.0");
  Flush();
  EXPECT_THAT(sub1.Take(), IsEmpty());
  EXPECT_EQ(sub2.Take(), Expect(group1, "3.0.0"));
  EXPECT_EQ(sub3.Take(), Expect(group1, "3.0.0"));

  store_->Unsubscribe(id2);
  Save(group1, "4.0.0");
  Flush();
  EXPECT_THAT(sub2.Take(), IsEmpty());
  EXPECT_EQ(sub3.Take(), Expect(group1, "4.0.0"));

  store_->Unsubscribe(id3);
  Save(group1, "5.0.0");
  Flush();
  EXPECT_THAT(sub3.Take(), IsEmpty());
  store_->Unsubscribe(id3);  // unknown ids are ignored
}

TEST_P(InMemoryConfigStoreTest, AppGroupAndLabelSeparateItems) {
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
  Flush();
  blue.Take();
  Delete({}, "blue");
  Flush();
  EXPECT_EQ(blue.Take(), (std::map<std::string, std::string>{{"k", ""}, {"k2", ""}}));
  EXPECT_THAT(Get({}, "app", "blue"), IsEmpty());
  EXPECT_EQ(Get({"k"})[0].content, "changed");
}

TEST_P(InMemoryConfigStoreTest, DeletingAMissingKeyNotifiesNobody) {
  Recorder sub;
  Subscribe({}, sub.Handler());
  Delete({"missing"});
  Flush();
  EXPECT_EQ(sub.calls(), 0);
}

TEST_P(InMemoryConfigStoreTest, RejectsEmptyKeysAndMissingHandlers) {
  absl::Status status;
  store_->Save(SaveRequest{.app_id = "app", .items = {Item{.key = "", .content = "x"}}},
               [&](absl::Status s) { status = s; });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Subscribe(Selector{.app_id = "app"}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Handler calls of one subscription never overlap and follow the change order, with writers on
// several threads.
TEST_P(InMemoryConfigStoreTest, DeliveriesAreSerialAndOrdered) {
  constexpr int kWriters = 4;
  constexpr int kWrites = 200;
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
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kWrites; ++i) {
        Save({"k"}, std::to_string(w) + ":" + std::to_string(i));
      }
    });
  }
  for (auto& writer : writers) {
    writer.join();
  }
  ASSERT_TRUE(recorder.WaitForItems(kWriters * kWrites));
  Flush();  // the last handler call may still be running and it uses this frame's locals
  EXPECT_EQ(overlaps.load(), 0);
  std::vector<int> last(kWriters, -1);
  int out_of_order = 0;
  for (const Item& item : recorder.TakeItems()) {
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

// Unsubscribe called while the handler runs on another thread waits for it, and the handler never
// runs again.
TEST_P(InMemoryConfigStoreTest, UnsubscribeWaitsForARunningHandler) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> in_handler{false};
  std::atomic<int> calls{0};
  const uint64_t id = Subscribe({}, [&](std::vector<Item>) {
    if (calls.fetch_add(1) == 0) {
      in_handler = true;
      entered.set_value();
      released.wait_for(kTimeout);
      in_handler = false;
    }
  });
  std::thread saver([&] { Save({"k"}, "v1"); });
  ASSERT_EQ(entered.get_future().wait_for(kTimeout), std::future_status::ready);

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
  saver.join();
  EXPECT_TRUE(returned.load());
  EXPECT_FALSE(running_at_return.load());
  Save({"k"}, "v2");
  Flush();
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(InMemoryConfigStoreTest, HandlerMayUnsubscribeItself) {
  std::atomic<uint64_t> id{0};
  std::atomic<int> calls{0};
  id = Subscribe({}, [&](std::vector<Item>) {
    calls++;
    store_->Unsubscribe(id.load());
  });
  Save({"k"}, "v1");
  Flush();
  Save({"k"}, "v2");
  Flush();
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(InMemoryConfigStoreTest, ShutdownStopsEverySubscription) {
  Recorder sub;
  Subscribe({}, sub.Handler());
  store_->Shutdown();
  Save({"k"}, "v");
  Flush();
  EXPECT_EQ(sub.calls(), 0);
  EXPECT_EQ(store_->Subscribe(Selector{.app_id = "app"}, sub.Handler()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Delivery,
                         InMemoryConfigStoreTest,
                         ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "OnDispatcher" : "Inline";
                         });

}  // namespace
}  // namespace ottava::components::config_store
