// Unit tests of adaptive limiting with a scripted water level: stress traffic is shed first, then
// the resource whose load grew abnormally is capped at its in-flight count, the cap shrinks while
// the level stays high and is lifted once it is low again; a normal resource keeps passing.

#include "mesh/filter/flow_control/adaptive.h"

#include <gtest/gtest.h>

#include <ctime>
#include <deque>
#include <fstream>
#include <thread>

namespace ottava::mesh::flow {
namespace {

class ScriptedSource : public SystemSource {
 public:
  explicit ScriptedSource(std::deque<double>* levels) : levels_(levels) {}
  SystemLoad Sample() override {
    SystemLoad load;
    if (!levels_->empty()) {
      load.host_cpu = levels_->front();
      levels_->pop_front();
    }
    return load;
  }

 private:
  std::deque<double>* levels_;
};

using Verdict = AdaptiveLimiter::Verdict;
using Phase = AdaptiveLimiter::Phase;

TEST(AdaptiveLimiterTest, ShedsStressFirstThenCapsTheAbnormalResourceAndRecovers) {
  std::deque<double> levels;
  AdaptiveConfig config;
  config.threshold = 0.8;
  config.trigger_seconds = 3;
  AdaptiveLimiter limiter(config, std::make_unique<ScriptedSource>(&levels));
  auto second = [&](const std::string& resource, int count) {
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(limiter.Admit(resource, false), Verdict::kAdmit);
      limiter.Release(resource);
    }
  };
  // Five normal seconds: both resources at 10 requests per second.
  for (int i = 0; i < 5; ++i) {
    second("normal", 10);
    second("hot", 10);
    levels.push_back(0.3);
    limiter.Tick();
  }
  EXPECT_EQ(limiter.phase(), Phase::kNormal);
  EXPECT_EQ(limiter.Admit("stress", true), Verdict::kAdmit);
  limiter.Release("stress");
  // The level rises; it takes three high seconds to act.
  for (int i = 0; i < 2; ++i) {
    second("normal", 10);
    second("hot", 10);
    levels.push_back(0.95);
    limiter.Tick();
    EXPECT_EQ(limiter.phase(), Phase::kNormal);
  }
  second("normal", 10);
  levels.push_back(0.95);
  limiter.Tick();
  EXPECT_EQ(limiter.phase(), Phase::kShedStress);
  EXPECT_EQ(limiter.triggers(), 1u);
  EXPECT_EQ(limiter.Admit("stress", true), Verdict::kShedStress);
  EXPECT_EQ(limiter.Admit("normal", false), Verdict::kAdmit) << "normal traffic still passes";
  limiter.Release("normal");
  // Still high: "hot" grew to 50 in the last second with 20 in flight; "normal" did not grow.
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(limiter.Admit("hot", false), Verdict::kAdmit);
  }
  second("hot", 30);
  second("normal", 10);
  levels.push_back(0.95);
  limiter.Tick();
  EXPECT_EQ(limiter.phase(), Phase::kBaseline);
  EXPECT_EQ(limiter.Describe()["caps"]["hot"], 20) << limiter.Describe().dump();
  EXPECT_FALSE(limiter.Describe()["caps"].contains("normal"));
  EXPECT_EQ(limiter.Admit("hot", false), Verdict::kOverBaseline);
  second("normal", 10);
  // High again: the cap shrinks by 10 %.
  levels.push_back(0.95);
  limiter.Tick();
  EXPECT_EQ(limiter.Describe()["caps"]["hot"], 18);
  limiter.Release("hot");
  limiter.Release("hot");
  limiter.Release("hot");  // 17 in flight
  EXPECT_EQ(limiter.Admit("hot", false), Verdict::kAdmit);
  EXPECT_EQ(limiter.Admit("hot", false), Verdict::kOverBaseline);
  // Low: the cap grows back and is lifted past the snapshot; stress traffic passes again.
  for (int i = 0; i < 3; ++i) {
    levels.push_back(0.2);
    limiter.Tick();
  }
  EXPECT_EQ(limiter.phase(), Phase::kNormal);
  EXPECT_TRUE(limiter.Describe()["caps"].empty()) << limiter.Describe().dump();
  EXPECT_EQ(limiter.Admit("hot", false), Verdict::kAdmit);
  EXPECT_EQ(limiter.Admit("stress", true), Verdict::kAdmit);
  EXPECT_EQ(limiter.shed_stress(), 1u);
  EXPECT_EQ(limiter.shed_baseline(), 2u);
}

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The source's share must match the CPU this process really used over the same interval (the
// machine may be busy with other work, so the test compares with what it measured itself
// instead of assuming a share of the machine).
TEST(ProcSystemSourceTest, MeasuresThisProcessBurningCpu) {
  ProcSystemSource source;
  source.Sample();
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ProcessCpuSeconds();
  volatile uint64_t sink = 0;
  // Burn 300 ms of CPU (at most 3 s of wall time on a loaded machine).
  while (ProcessCpuSeconds() - cpu_start < 0.3 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(3)) {
    sink = sink + 1;
  }
  const SystemLoad load = source.Sample();
  const double cpu = ProcessCpuSeconds() - cpu_start;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cores = static_cast<double>(std::thread::hardware_concurrency());
  const double expected = cpu / (wall * cores);
  // Both read the same clocks; the source's interval starts a little earlier than ours.
  EXPECT_NEAR(load.process_cpu, expected, 0.03) << "cpu " << cpu << " s over " << wall << " s";
  EXPECT_GT(load.process_cpu, 0.0);
  EXPECT_LE(load.process_cpu, 1.0);
  // The host is at least as busy as we are.
  EXPECT_GE(load.host_cpu + 0.1, load.process_cpu);
}

}  // namespace
}  // namespace ottava::mesh::flow
