// The state store conformance suite (dapr-api.md §4.1 checklist plus the concurrency cases),
// written once and run by every implementation's test binary:
//
//   INSTANTIATE_TEST_SUITE_P(InMemory, StateConformanceTest,
//                            ::testing::Values(StateConformanceParam{...}),
//                            StateConformanceName());
//
// Implementation-specific tests (data layout, outages, sweeps, ...) stay in the implementation's
// own test file; the synchronous wrappers below are shared with them.
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
#include "components/state/state.h"

namespace ottava::components::state::conformance {

// One store under test, fresh for each test.
class StateStoreHarness : public conformance_support::BackendProbe {
 public:
  // Initialised and ready.
  virtual StateStore& store() = 0;
};

struct StateConformanceParam {
  std::string name;   // the test-name suffix
  std::string label;  // "state/<name>", which error messages carry
  // How far the reported expire time may be off the local clock (Redis rounds).
  std::chrono::milliseconds clock_slack{0};
  // A TTL of 2^60 s is refused with INVALID_ARGUMENT before anything is written.
  bool refuses_unrepresentable_ttl = false;
  // A fresh, initialised store; nullptr (after recording the failure) if it cannot be made.
  std::function<std::unique_ptr<StateStoreHarness>()> make;
};

using StateConformanceName = conformance_support::ParamName;
// What a failure prints as GetParam(): the name, not the bytes.
inline void PrintTo(const StateConformanceParam& param, std::ostream* os) {
  *os << param.name;
}

class StateConformanceTest : public ::testing::TestWithParam<StateConformanceParam> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    ASSERT_NE(harness_, nullptr);
  }
  void TearDown() override { harness_.reset(); }

  StateStore& store() { return harness_->store(); }
  const std::string& label() const { return GetParam().label; }

  std::unique_ptr<StateStoreHarness> harness_;
};

// Synchronous wrappers; they work whether the store answers inline or later.
absl::StatusOr<Item> Get(StateStore& store, const std::string& key);
absl::StatusOr<std::vector<Item>> BulkGet(StateStore& store, const std::vector<std::string>& keys);
absl::Status Set(StateStore& store, SetRequest request);
absl::Status Set(StateStore& store, const std::string& key, const std::string& value);
absl::Status Delete(StateStore& store, DeleteRequest request);
absl::Status Transact(StateStore& store, std::vector<Operation> operations);
std::string EtagOf(StateStore& store, const std::string& key);
std::string ValueOf(StateStore& store, const std::string& key);
bool Found(StateStore& store, const std::string& key);

using conformance_support::WaitUntil;

}  // namespace ottava::components::state::conformance
