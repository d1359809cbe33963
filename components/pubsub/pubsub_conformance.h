// The pub/sub conformance suite (dapr-api.md §4.2), written once and run by every
// implementation's test binary:
//
//   INSTANTIATE_TEST_SUITE_P(InMemory, PubSubConformanceTest,
//                            ::testing::Values(PubSubConformanceParam{...}),
//                            PubSubConformanceName());
//
// Every test uses topics and groups of its own (a per-run prefix), so implementations backed by
// a shared broker need no cleanup between tests. Messages that must stay in order carry the
// metadata partitionKey=conformance, which brokers with partitions use as the key.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "components/conformance_support.h"
#include "components/pubsub/pubsub.h"

namespace ottava::components::pubsub::conformance {

// One pub/sub under test, fresh for each test.
class PubSubHarness {
 public:
  virtual ~PubSubHarness() = default;
  // Initialised and ready.
  virtual PubSub& pubsub() = 0;
};

struct PubSubConformanceParam {
  std::string name;  // the test-name suffix
  // A fresh, initialised component; nullptr (after recording the failure) if it cannot be made.
  std::function<std::unique_ptr<PubSubHarness>()> make;
};

using PubSubConformanceName = conformance_support::ParamName;
inline void PrintTo(const PubSubConformanceParam& param, std::ostream* os) {
  *os << param.name;
}

class PubSubConformanceTest : public ::testing::TestWithParam<PubSubConformanceParam> {
 protected:
  void SetUp() override;
  void TearDown() override { harness_.reset(); }

  PubSub& pubsub() { return harness_->pubsub(); }
  // A topic or group name unique to this test run.
  std::string Unique(const std::string& name) const { return prefix_ + name; }

  std::unique_ptr<PubSubHarness> harness_;
  std::string prefix_;
};

// Publishes and waits for the component's answer (bounded).
absl::Status PublishAndWait(PubSub& pubsub,
                            const std::string& topic,
                            const std::string& data,
                            const Metadata& metadata = {{"partitionKey", "conformance"}});

}  // namespace ottava::components::pubsub::conformance
