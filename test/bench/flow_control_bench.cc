// Microbenchmark of a flow-control limit check (Controller::Check + Exit) on the real clock, on one
// thread and on several threads sharing the same rules (so the process-wide atomic counters are
// contended), and with one async cluster rule (its local share spending; the central counter is an
// in-process stand-in answering at once, so this is the request-path cost only). Run by flow.sh
// (`make bench`); ns per check is Google Benchmark's "Time" column.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "common/stats.h"
#include "common/time_source.h"
#include "mesh/filter/flow_control/controller.h"

namespace ottava::mesh::flow {
namespace {

class NoHeaders : public HeaderLookup {
 public:
  const std::string* Get(std::string_view) const override { return nullptr; }
};

// The central counter in memory: answers at once.
class LocalCounter : public ClusterCounter {
 public:
  void Add(const std::string& key,
           int64_t delta,
           std::chrono::milliseconds,
           AddCallback done) override {
    int64_t total = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      total = counts_[key] += delta;
    }
    done(total);
  }
  bool Healthy() const override { return true; }

 private:
  std::mutex mu_;
  std::map<std::string, int64_t> counts_;
};

// One shared controller per rule-set shape (threads of one benchmark share it).
Controller& Shared(int shape) {
  static RealTimeSource time;
  static stats::Store stats;
  static ControllerPtr one_qps = [] {
    auto rules = RuleSet::ParseText(
        R"({"rules": [{"id": "q", "resource": "svc#m", "kind": "qps", "threshold": 1e9}]})");
    return Controller::Create(std::move(*rules), time, stats);
  }();
  static ControllerPtr twenty = [] {
    // 20 rules of every kind on other resources, plus a qps, a concurrency, a refined and a
    // breaker rule on the checked one: what the filter-cost benchmark configures.
    std::string text = R"({"rules": [)";
    for (int i = 0; i < 16; ++i) {
      text += R"({"id": "other)" + std::to_string(i) + R"(", "resource": "/other/)" +
              std::to_string(i) + R"(", "kind": "qps", "threshold": 10},)";
    }
    text += R"({"id": "q", "resource": "svc#m", "kind": "qps", "threshold": 1e9},
      {"id": "c", "resource": "svc#", "match": "prefix", "kind": "concurrency", "threshold": 1000000000},
      {"id": "r", "resource": "svc#m", "kind": "qps", "threshold": 0,
       "when": {"all": [{"caller_app": "batch"}]}},
      {"id": "b", "resource": "svc#m", "kind": "breaker", "strategy": "error_ratio",
       "threshold": 0.5}]})";
    auto rules = RuleSet::ParseText(text);
    if (!rules.ok()) {
      std::fprintf(stderr, "bench rules: %s\n", std::string(rules.status().message()).c_str());
      std::abort();
    }
    return Controller::Create(std::move(*rules), time, stats);
  }();
  static LocalCounter counter;
  static ControllerPtr cluster = [] {
    auto rules = RuleSet::ParseText(
        R"({"rules": [{"id": "cl", "resource": "svc#m", "kind": "cluster", "mode": "async",
            "threshold": 1e12, "share": 1000000, "fallback": "allow"}]})");
    auto controller = Controller::Create(std::move(*rules), time, stats);
    controller->SetClusterCounter(&counter);
    return controller;
  }();
  return shape == 0 ? *one_qps : shape == 1 ? *twenty : *cluster;
}

void BM_Check(benchmark::State& state) {
  Controller& controller = Shared(static_cast<int>(state.range(0)));
  NoHeaders headers;
  const Traffic traffic{"svc#m", "127.0.0.1", "", &headers};
  int64_t blocked = 0;
  for (auto _ : state) {
    Entry entry = controller.Check(traffic);
    blocked += entry.blocked() ? 1 : 0;
    controller.Exit(entry, Outcome{});
  }
  if (blocked != 0) {
    state.SkipWithError("a check was blocked");
  }
}
BENCHMARK(BM_Check)->Arg(0)->ArgName("twenty_rules")->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(BM_Check)->Arg(1)->ArgName("twenty_rules")->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(BM_Check)->Arg(2)->ArgName("async_cluster")->ThreadRange(1, 4)->UseRealTime();

}  // namespace
}  // namespace ottava::mesh::flow

BENCHMARK_MAIN();
