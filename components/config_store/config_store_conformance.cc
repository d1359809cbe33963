#include "components/config_store/config_store_conformance.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

namespace ottava::components::config_store::conformance {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

ChangeHandler Recorder::Handler() {
  return [this](std::vector<Item> items) {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    for (Item& item : items) {
      items_.push_back(std::move(item));
    }
    cv_.notify_all();
  };
}

bool Recorder::WaitFor(const Contents& expected) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, kWait, [&] {
    Contents last = LastLocked();
    return std::all_of(expected.begin(), expected.end(), [&](const auto& entry) {
      auto it = last.find(entry.first);
      return it != last.end() && it->second == entry.second;
    });
  });
}

bool Recorder::WaitForItems(size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, kWait, [&] { return items_.size() >= n; });
}

Contents Recorder::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  Contents out = LastLocked();
  items_.clear();
  return out;
}

std::vector<Item> Recorder::TakeItems() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(items_, {});
}

int Recorder::calls() {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

Contents Recorder::LastLocked() const {
  Contents out;
  for (const Item& item : items_) {
    out[item.key] = item.content;
  }
  return out;
}

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

absl::Status SaveStatus(ConfigStore& store,
                        const std::vector<std::string>& keys,
                        const std::string& content,
                        const std::string& app_id,
                        const std::string& label) {
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

absl::Status DeleteStatus(ConfigStore& store,
                          std::vector<std::string> keys,
                          const std::string& label) {
  auto result = std::make_shared<std::promise<absl::Status>>();
  auto future = result->get_future();
  store.Delete(Selector{.app_id = "app", .label = label, .keys = std::move(keys)},
               [result](absl::Status s) { result->set_value(s); });
  if (future.wait_for(kWait) != std::future_status::ready) {
    return absl::DeadlineExceededError("delete did not finish");
  }
  return future.get();
}

std::vector<Item> GetItems(ConfigStore& store,
                           std::vector<std::string> keys,
                           const std::string& app_id,
                           const std::string& label) {
  auto result = std::make_shared<std::promise<absl::StatusOr<std::vector<Item>>>>();
  auto future = result->get_future();
  store.Get(Selector{.app_id = app_id, .label = label, .keys = std::move(keys)},
            [result](absl::StatusOr<std::vector<Item>> got) { result->set_value(got); });
  if (future.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "get did not finish";
    return {};
  }
  auto got = future.get();
  EXPECT_TRUE(got.ok()) << got.status();
  return got.value_or(std::vector<Item>{});
}

void SaveOn(ConfigStore& store,
            const std::vector<std::string>& keys,
            const std::string& content,
            const std::string& app_id,
            const std::string& label) {
  absl::Status status = SaveStatus(store, keys, content, app_id, label);
  ASSERT_TRUE(status.ok()) << status;
}

uint64_t SubscribeTo(ConfigStore& store,
                     std::vector<std::string> keys,
                     ChangeHandler handler,
                     const std::string& app_id,
                     const std::string& label) {
  auto id = store.Subscribe(Selector{.app_id = app_id, .label = label, .keys = std::move(keys)},
                            std::move(handler));
  EXPECT_TRUE(id.ok()) << id.status();
  return id.value_or(0);
}

namespace {

// Conformance (dapr-api.md §4.4): get, three subscribers, updates, deletions, unsubscribe one by
// one.
TEST_P(ConfigStoreConformanceTest, Conformance) {
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
  store().Unsubscribe(id1);
  Save(group1, "3.0.0");
  ASSERT_TRUE(sub2.WaitFor(Expect(group1, "3.0.0")));
  ASSERT_TRUE(sub3.WaitFor(Expect(group1, "3.0.0")));
  Flush();
  EXPECT_THAT(sub1.Take(), IsEmpty());
  EXPECT_EQ(sub2.Take(), Expect(group1, "3.0.0"));
  EXPECT_EQ(sub3.Take(), Expect(group1, "3.0.0"));

  store().Unsubscribe(id2);
  Save(group1, "4.0.0");
  ASSERT_TRUE(sub3.WaitFor(Expect(group1, "4.0.0")));
  Flush();
  EXPECT_THAT(sub2.Take(), IsEmpty());
  EXPECT_EQ(sub3.Take(), Expect(group1, "4.0.0"));

  store().Unsubscribe(id3);
  Save(group1, "5.0.0");
  Flush();
  EXPECT_THAT(sub3.Take(), IsEmpty());
  store().Unsubscribe(id3);  // unknown ids are ignored
}

TEST_P(ConfigStoreConformanceTest, AppGroupAndLabelSeparateItems) {
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
  Flush();
  blue.Take();
  Delete({}, "blue");
  ASSERT_TRUE(blue.WaitFor({{"k", ""}, {"k2", ""}}));
  Flush();
  EXPECT_EQ(blue.Take(), (Contents{{"k", ""}, {"k2", ""}}));
  EXPECT_THAT(Get({}, "app", "blue"), IsEmpty());
  EXPECT_EQ(Get({"k"})[0].content, "changed");
}

TEST_P(ConfigStoreConformanceTest, DeletingAMissingKeyNotifiesNobody) {
  Recorder sub;
  Subscribe({}, sub.Handler());
  Delete({"missing"});
  Flush();
  EXPECT_EQ(sub.calls(), 0);
}

TEST_P(ConfigStoreConformanceTest, RejectsBadRequests) {
  absl::Status status;
  store().Save(SaveRequest{.app_id = "app", .items = {Item{.key = "", .content = "x"}}},
               [&](absl::Status s) { status = s; });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store().Subscribe(Selector{.app_id = "app"}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const std::string& bad : GetParam().refused_names) {
    store().Save(SaveRequest{.app_id = "app", .items = {Item{.key = "k", .group = bad}}},
                 [&](absl::Status s) { status = s; });
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("config_store/conf"));
    auto sub = store().Subscribe(Selector{.app_id = "app", .label = bad}, [](std::vector<Item>) {});
    EXPECT_EQ(sub.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    store().Delete(Selector{.app_id = bad}, [&](absl::Status s) { status = s; });
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  if (!GetParam().refused_names.empty()) {
    EXPECT_TRUE(SaveStatus(store(), {"k"}, "v", "a|b").ok()) << "a single '|' inside is fine";
  }
}

// Handler calls of one subscription never overlap and follow the change order, with writers on
// several threads (and on both sidecars where there is another).
TEST_P(ConfigStoreConformanceTest, DeliveriesAreSerialAndOrdered) {
  const int writers = GetParam().writers;
  const int writes = GetParam().writes;
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
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      ConfigStore& store = w % 2 == 0 ? harness_->store() : harness_->other();
      for (int i = 0; i < writes; ++i) {
        SaveOn(store, {"k"}, std::to_string(w) + ":" + std::to_string(i));
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  ASSERT_TRUE(recorder.WaitForItems(writers * writes));
  Flush();  // the last handler call may still be running and it uses this frame's locals
  EXPECT_EQ(overlaps.load(), 0);
  std::vector<int> last(writers, -1);
  int out_of_order = 0;
  auto items = recorder.TakeItems();
  EXPECT_EQ(items.size(), static_cast<size_t>(writers * writes));
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

// Unsubscribe called while the handler runs on another thread waits for it, and the handler never
// runs again.
TEST_P(ConfigStoreConformanceTest, UnsubscribeWaitsForARunningHandler) {
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
  // On its own thread: where deliveries are inline, the save is held by the handler.
  std::thread saver([&] { SaveOn(harness_->other(), {"k"}, "v1"); });
  ASSERT_EQ(entered.get_future().wait_for(kWait), std::future_status::ready);

  std::atomic<bool> returned{false};
  std::atomic<bool> running_at_return{true};
  std::thread unsubscriber([&] {
    store().Unsubscribe(id);
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

TEST_P(ConfigStoreConformanceTest, HandlerMayUnsubscribeItself) {
  std::atomic<uint64_t> id{0};
  std::atomic<int> calls{0};
  id = Subscribe({}, [&](std::vector<Item>) {
    calls++;
    store().Unsubscribe(id.load());
  });
  Save({"k"}, "v1");
  Flush();
  ASSERT_TRUE(WaitUntil([&] { return calls.load() == 1; }));
  Save({"k"}, "v2");
  Flush();
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(ConfigStoreConformanceTest, ShutdownStopsEverySubscription) {
  Recorder sub;
  Subscribe({}, sub.Handler());
  harness_->Shutdown();
  SaveOn(harness_->other(), {"k"}, "v");
  Flush();
  EXPECT_EQ(store().Subscribe(Selector{.app_id = "app"}, sub.Handler()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Nothing can run any more: the store's subscriber connection is closed.
  if (auto list = harness_->Backend({"CLIENT", "LIST", "TYPE", "pubsub"})) {
    EXPECT_EQ(list->empty() ? 0 : std::count(list->begin(), list->end(), '\n') + 1, 1);
  }
  EXPECT_EQ(sub.calls(), 0);
}

}  // namespace
}  // namespace ottava::components::config_store::conformance
