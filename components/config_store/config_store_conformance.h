// The configuration store conformance suite (dapr-api.md §4.4 checklist plus the delivery
// contract: serial, ordered, Unsubscribe waits, Shutdown stops), written once and run by every
// implementation's test binary through INSTANTIATE_TEST_SUITE_P over ConfigStoreConformanceTest.
// Implementation-specific tests stay in the implementation's own test file; the helpers below are
// shared with them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "components/config_store/config_store.h"
#include "components/conformance_support.h"

namespace ottava::components::config_store::conformance {

inline constexpr auto kWait = std::chrono::seconds(10);

using Contents = std::map<std::string, std::string>;

// Collects what one subscription receives.
class Recorder {
 public:
  ChangeHandler Handler();
  // Waits until every key of `expected` was received with that content (later deliveries of a
  // key replace earlier ones).
  bool WaitFor(const Contents& expected);
  // Waits until at least `n` items were received.
  bool WaitForItems(size_t n);
  // key -> content of everything received, and forgets it.
  Contents Take();
  std::vector<Item> TakeItems();
  int calls();

 private:
  Contents LastLocked() const;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> items_;
  int calls_ = 0;
};

std::vector<std::string> Keys(const std::string& prefix, int n);
Contents Expect(const std::vector<std::string>& keys, const std::string& content);
std::vector<std::string> KeysOf(const std::vector<Item>& items);

// Synchronous wrappers; they work whether the store answers inline or later (up to kWait).
absl::Status SaveStatus(ConfigStore& store,
                        const std::vector<std::string>& keys,
                        const std::string& content,
                        const std::string& app_id = "app",
                        const std::string& label = "");
absl::Status DeleteStatus(ConfigStore& store,
                          std::vector<std::string> keys,
                          const std::string& label = "");
std::vector<Item> GetItems(ConfigStore& store,
                           std::vector<std::string> keys,
                           const std::string& app_id = "app",
                           const std::string& label = "");
// SaveStatus, and a test failure unless it is OK.
void SaveOn(ConfigStore& store,
            const std::vector<std::string>& keys,
            const std::string& content,
            const std::string& app_id = "app",
            const std::string& label = "");
uint64_t SubscribeTo(ConfigStore& store,
                     std::vector<std::string> keys,
                     ChangeHandler handler,
                     const std::string& app_id = "app",
                     const std::string& label = "");

// One store under test, fresh for each test.
class ConfigStoreHarness : public conformance_support::BackendProbe {
 public:
  // Initialised and ready; named "conf".
  virtual ConfigStore& store() = 0;
  // Another component object on the same backend (another sidecar); store() itself for
  // implementations without a shared backend.
  virtual ConfigStore& other() { return store(); }
  // Returns once every change made so far has been handed to store()'s handlers.
  virtual void Flush() = 0;
  // Shuts store() down; Flush() may still be called afterwards.
  virtual void Shutdown() { store().Shutdown(); }
};

struct ConfigStoreConformanceParam {
  std::string name;  // the test-name suffix
  // DeliveriesAreSerialAndOrdered: writer threads (alternately on store() and other()) and the
  // changes each makes.
  int writers = 2;
  int writes = 100;
  // App ids, groups and labels the store refuses with INVALID_ARGUMENT.
  std::vector<std::string> refused_names;
  // A fresh, initialised store; nullptr (after recording the failure) if it cannot be made.
  std::function<std::unique_ptr<ConfigStoreHarness>()> make;
};

using ConfigStoreConformanceName = conformance_support::ParamName;
// What a failure prints as GetParam(): the name, not the bytes.
inline void PrintTo(const ConfigStoreConformanceParam& param, std::ostream* os) {
  *os << param.name;
}
using conformance_support::WaitUntil;

class ConfigStoreConformanceTest : public ::testing::TestWithParam<ConfigStoreConformanceParam> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    ASSERT_NE(harness_, nullptr);
  }
  void TearDown() override { harness_.reset(); }

  ConfigStore& store() { return harness_->store(); }
  void Flush() { harness_->Flush(); }
  void Save(const std::vector<std::string>& keys,
            const std::string& content,
            const std::string& app_id = "app",
            const std::string& label = "") {
    SaveOn(store(), keys, content, app_id, label);
  }
  void Delete(std::vector<std::string> keys, const std::string& label = "") {
    absl::Status status = DeleteStatus(store(), std::move(keys), label);
    ASSERT_TRUE(status.ok()) << status;
  }
  std::vector<Item> Get(std::vector<std::string> keys,
                        const std::string& app_id = "app",
                        const std::string& label = "") {
    return GetItems(store(), std::move(keys), app_id, label);
  }
  uint64_t Subscribe(std::vector<std::string> keys,
                     ChangeHandler handler,
                     const std::string& app_id = "app",
                     const std::string& label = "") {
    return SubscribeTo(store(), std::move(keys), std::move(handler), app_id, label);
  }

  std::unique_ptr<ConfigStoreHarness> harness_;
};

}  // namespace ottava::components::config_store::conformance
