// The lock store conformance suite (dapr-api.md §4.3 checklist plus the contention case), written
// once and run by every implementation's test binary through INSTANTIATE_TEST_SUITE_P over
// LockConformanceTest. Implementation-specific tests stay in the implementation's own test file;
// the synchronous wrappers below are shared with them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "components/conformance_support.h"
#include "components/lock/lock.h"

namespace ottava::components::lock::conformance {

// One store under test, fresh for each test.
class LockStoreHarness : public conformance_support::BackendProbe {
 public:
  // Initialised and ready.
  virtual LockStore& store() = 0;
};

struct LockConformanceParam {
  std::string name;   // the test-name suffix
  std::string label;  // "lock/<name>", which error messages carry
  // A fresh, initialised store; nullptr (after recording the failure) if it cannot be made.
  std::function<std::unique_ptr<LockStoreHarness>()> make;
};

using LockConformanceName = conformance_support::ParamName;
// What a failure prints as GetParam(): the name, not the bytes.
inline void PrintTo(const LockConformanceParam& param, std::ostream* os) {
  *os << param.name;
}

class LockConformanceTest : public ::testing::TestWithParam<LockConformanceParam> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    ASSERT_NE(harness_, nullptr);
  }
  void TearDown() override { harness_.reset(); }

  LockStore& store() { return harness_->store(); }

  std::unique_ptr<LockStoreHarness> harness_;
};

// Synchronous wrappers; they work whether the store answers inline or later.
absl::StatusOr<bool> TryLock(LockStore& store,
                             const std::string& resource,
                             const std::string& owner,
                             int32_t expire_seconds);
absl::StatusOr<LockStatus> Unlock(LockStore& store,
                                  const std::string& resource,
                                  const std::string& owner);
absl::StatusOr<LockStatus> KeepAlive(LockStore& store,
                                     const std::string& resource,
                                     const std::string& owner,
                                     int32_t expire_seconds);

using conformance_support::WaitUntil;

}  // namespace ottava::components::lock::conformance
