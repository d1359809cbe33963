// Unit tests of the flow-control core on a SimulatedTimeSource: windows, QPS accuracy under
// overload, warm-up, throttling, concurrency, hot parameters, breakers, refined conditions and
// live rule updates. Time moves only when a test advances it, so nothing here sleeps.

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "common/stats.h"
#include "common/time_source.h"
#include "mesh/filter/flow_control/controller.h"
#include "mesh/filter/flow_control/flow_control_filter.h"
#include "mesh/filter/flow_control/window.h"

namespace ottava::mesh::flow {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

class MapLookup : public HeaderLookup {
 public:
  explicit MapLookup(std::map<std::string, std::string> values) : values_(std::move(values)) {}
  const std::string* Get(std::string_view name) const override {
    auto it = values_.find(std::string(name));
    return it == values_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, std::string> values_;
};

RuleSet Rules(const std::string& text) {
  absl::StatusOr<RuleSet> rules = RuleSet::ParseText(text);
  EXPECT_TRUE(rules.ok()) << rules.status();
  return rules.ok() ? std::move(*rules) : RuleSet{};
}

class FlowControlTest : public ::testing::Test {
 protected:
  void Make(const std::string& rules) {
    controller_ = Controller::Create(Rules(rules), time_, stats_);
  }

  // Checks and immediately settles a request; returns whether it passed.
  bool Pass(std::string_view resource,
            const HeaderLookup* headers = nullptr,
            std::string_view query = "",
            std::string_view ip = "") {
    Traffic traffic{resource, ip, query, headers};
    Entry entry = controller_->Check(traffic);
    const bool passed = !entry.blocked();
    controller_->Exit(entry, Outcome{});
    return passed;
  }

  uint64_t CounterValue(const std::string& name, const stats::Labels& labels) {
    return stats_.CounterFor(name, "", labels).Value();
  }

  SimulatedTimeSource time_;
  stats::Store stats_;
  ControllerPtr controller_;
};

TEST(RuleSetTest, ParsesEveryKindAndRefusesBadRulesWithThePointer) {
  absl::StatusOr<RuleSet> good = RuleSet::ParseText(R"({
    "reply": {"status": 503, "body": "busy"},
    "rules": [
      {"id": "a", "resource": "svc#m", "kind": "qps", "threshold": 10, "behavior": "warm_up"},
      {"id": "b", "resource": "/api/", "match": "prefix", "kind": "concurrency", "threshold": 4},
      {"id": "c", "resource": "svc#m", "kind": "hot_param", "source": "query", "name": "user",
       "threshold": 2, "overrides": {"vip": 10}, "capacity": 100},
      {"id": "d", "resource": "svc#m", "kind": "breaker", "strategy": "slow_ratio",
       "threshold": 0.5, "slow_ms": 100, "when": {"any": [{"caller_app": "web"},
       {"header": "X-Tier", "prefix": "free"}, {"source_ip": "10.1.*"}]},
       "reply": {"fallback_status": 200, "body": "cached"}}]})");
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_EQ(good->rules.size(), 4u);
  EXPECT_EQ(good->default_reply.status, 503);
  EXPECT_EQ(good->rules[0].qps.behavior, QpsBehavior::kWarmUp);
  EXPECT_TRUE(good->rules[1].prefix);
  EXPECT_EQ(good->rules[2].hot.overrides.at("vip"), 10);
  EXPECT_TRUE(good->rules[3].when.any);
  EXPECT_EQ(good->rules[3].when.conditions[1].name, "x-tier");
  EXPECT_TRUE(good->rules[3].when.conditions[2].prefix);
  EXPECT_TRUE(good->rules[3].reply->fallback);

  const std::pair<const char*, const char*> bad[] = {
      {R"({"rules": [{"id": "a", "resource": "r", "kind": "qps", "threshold": 1, "x": 1}]})",
       "/rules/0/x: unknown key"},
      {R"({"rules": [{"id": "a", "resource": "r", "kind": "rate", "threshold": 1}]})",
       "/rules/0/kind"},
      {R"({"rules": [{"id": "a", "resource": "r", "kind": "qps"}]})", "/rules/0/threshold"},
      {R"({"rules": [{"id": "a", "resource": "r", "kind": "qps", "threshold": 1},
                     {"id": "a", "resource": "r", "kind": "qps", "threshold": 1}]})",
       "/rules/1/id"},
      {R"({"rules": [{"id": "a", "resource": "r", "kind": "qps", "threshold": 1,
                      "window_ms": 1000, "buckets": 3}]})",
       "/rules/0/buckets"},
      {R"({"rules": [{"id": "a", "resource": "r", "kind": "breaker", "threshold": 2}]})",
       "/rules/0/threshold"},
      {R"({"rules": [{"id": "a", "resource": "r", "kind": "qps", "threshold": 1,
                      "when": {"all": [{"caller_app": "x", "header": "y"}]}}]})",
       "/rules/0/when/all/0"},
      {R"({"rules": {}})", "/rules"},
      {R"(not json)", "not valid JSON"},
  };
  for (const auto& [text, expected] : bad) {
    absl::StatusOr<RuleSet> parsed = RuleSet::ParseText(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(expected), std::string_view::npos)
        << parsed.status().message() << " should name " << expected;
  }
}

TEST(SlidingWindowTest, SumsTheLastWindowAndForgetsOlderBuckets) {
  SlidingWindow window(1'000'000'000, 10);
  const int64_t t0 = 5'000'000'000;
  window.Add(t0, 0, 3);
  window.Add(t0 + 450'000'000, 0, 4);
  EXPECT_EQ(window.Sum(t0 + 450'000'000, 0), 7);
  EXPECT_EQ(window.Sum(t0 + 999'000'000, 0), 7);
  EXPECT_EQ(window.Sum(t0 + 1'000'000'000, 0), 4);           // the first bucket left the window
  EXPECT_EQ(window.AddAndSum(t0 + 1'000'000'000, 0, 1), 5);  // its slot was reused
  EXPECT_EQ(window.Sum(t0 + 2'500'000'000, 0), 0);
}

TEST_F(FlowControlTest, QpsRejectAdmitsTheLimitWithin5PercentAt3xOverloadFor10Seconds) {
  Make(R"({"rules": [{"id": "q", "resource": "svc#echo", "kind": "qps", "threshold": 100}]})");
  // 300 requests per second, evenly spaced, for 10 simulated seconds.
  std::vector<int> per_second(10, 0);
  const nanoseconds gap(1'000'000'000 / 300);
  for (int second = 0; second < 10; ++second) {
    for (int i = 0; i < 300; ++i) {
      per_second[second] += Pass("svc#echo") ? 1 : 0;
      time_.Advance(gap);
    }
  }
  int total = 0;
  for (int second = 0; second < 10; ++second) {
    EXPECT_GE(per_second[second], 95) << "second " << second;
    EXPECT_LE(per_second[second], 105) << "second " << second;
    total += per_second[second];
  }
  EXPECT_GE(total, 950);
  EXPECT_LE(total, 1050);
  EXPECT_EQ(CounterValue("ottava_flow_control_passes_total",
                         {{"resource", "svc#echo"}, {"rule", "q"}, {"kind", "qps"}}),
            static_cast<uint64_t>(total));
  EXPECT_EQ(CounterValue("ottava_flow_control_blocks_total",
                         {{"resource", "svc#echo"}, {"rule", "q"}, {"kind", "qps"}}),
            static_cast<uint64_t>(3000 - total));
  EXPECT_TRUE(Pass("other")) << "a resource without rules is never limited";
}

TEST_F(FlowControlTest, QpsLimitIsProcessWideAcrossThreads) {
  Make(R"({"rules": [{"id": "q", "resource": "r", "kind": "qps", "threshold": 100}]})");
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        Entry entry = controller_->Check(Traffic{"r", "", "", nullptr});
        passed += entry.blocked() ? 0 : 1;
        controller_->Exit(entry, Outcome{});
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(passed.load(), 100);
}

TEST_F(FlowControlTest, WarmUpStartsAtThresholdOverColdFactorAndRampsUp) {
  Make(R"({"rules": [{"id": "w", "resource": "r", "kind": "qps", "threshold": 100,
                      "behavior": "warm_up", "warm_up_seconds": 10, "cold_factor": 3}]})");
  std::vector<int> per_second(20, 0);
  const nanoseconds gap(1'000'000'000 / 300);
  for (int second = 0; second < 20; ++second) {
    for (int i = 0; i < 300; ++i) {
      per_second[second] += Pass("r") ? 1 : 0;
      time_.Advance(gap);
    }
  }
  EXPECT_GE(per_second[0], 28);
  EXPECT_LE(per_second[0], 40);
  EXPECT_LT(per_second[3], 90);
  EXPECT_GT(per_second[5], per_second[1]);
  for (int second = 15; second < 20; ++second) {
    EXPECT_GE(per_second[second], 95) << "second " << second;
    EXPECT_LE(per_second[second], 105) << "second " << second;
  }
}

TEST_F(FlowControlTest, ThrottlingSpacesRequestsAndRefusesBeyondMaxQueueing) {
  Make(R"({"rules": [{"id": "t", "resource": "r", "kind": "qps", "threshold": 10,
                      "behavior": "throttling", "max_queueing_ms": 500}]})");
  std::vector<int64_t> waits_ms;
  int blocked = 0;
  for (int i = 0; i < 8; ++i) {
    Entry entry = controller_->Check(Traffic{"r", "", "", nullptr});
    if (entry.blocked()) {
      ++blocked;
    } else {
      waits_ms.push_back(std::chrono::duration_cast<milliseconds>(entry.wait()).count());
    }
    controller_->Exit(entry, Outcome{});
  }
  EXPECT_EQ(waits_ms, (std::vector<int64_t>{0, 100, 200, 300, 400, 500}));
  EXPECT_EQ(blocked, 2);
  // Callers that cannot queue (the gRPC API) are refused instead of asked to wait.
  Entry no_queue = controller_->Check(Traffic{"r", "", "", nullptr}, /*allow_queueing=*/false);
  EXPECT_TRUE(no_queue.blocked());
  time_.Advance(milliseconds(600));
  Entry later = controller_->Check(Traffic{"r", "", "", nullptr}, false);
  EXPECT_FALSE(later.blocked());
  EXPECT_EQ(later.wait().count(), 0);
}

TEST_F(FlowControlTest, ConcurrencyLimitCountsInFlightRequests) {
  Make(R"({"rules": [{"id": "c", "resource": "/api/", "match": "prefix", "kind": "concurrency",
                      "threshold": 2}]})");
  Entry a = controller_->Check(Traffic{"/api/a", "", "", nullptr});
  Entry b = controller_->Check(Traffic{"/api/b", "", "", nullptr});
  Entry c = controller_->Check(Traffic{"/api/c", "", "", nullptr});
  EXPECT_FALSE(a.blocked());
  EXPECT_FALSE(b.blocked());
  EXPECT_TRUE(c.blocked());
  EXPECT_EQ(c.reply()->status, 429);
  EXPECT_EQ(c.blocking_rule(), "c");
  EXPECT_TRUE(Pass("/other")) << "prefix rules do not match other paths";
  controller_->Exit(a, Outcome{});
  controller_->Exit(a, Outcome{});  // idempotent: releases once
  Entry d = controller_->Check(Traffic{"/api/d", "", "", nullptr});
  EXPECT_FALSE(d.blocked());
  Entry e = controller_->Check(Traffic{"/api/e", "", "", nullptr});
  EXPECT_TRUE(e.blocked());
  EXPECT_EQ(controller_->Describe()["rules"][0]["live"]["in_flight"], 2);
  controller_->Exit(b, Outcome{});
  controller_->Exit(d, Outcome{});
  EXPECT_EQ(controller_->Describe()["rules"][0]["live"]["in_flight"], 0);
}

TEST_F(FlowControlTest, HotParamLimitsEachValueWithOverridesAndABoundedLru) {
  Make(R"({"rules": [{"id": "h", "resource": "r", "kind": "hot_param", "source": "header",
                      "name": "x-user", "threshold": 2, "overrides": {"vip": 4},
                      "capacity": 16}]})");
  auto passes = [&](const std::string& user, int tries) {
    MapLookup headers({{"x-user", user}});
    int passed = 0;
    for (int i = 0; i < tries; ++i) {
      passed += Pass("r", &headers) ? 1 : 0;
    }
    return passed;
  };
  EXPECT_EQ(passes("alice", 5), 2);
  EXPECT_EQ(passes("bob", 5), 2);
  EXPECT_EQ(passes("vip", 6), 4);
  EXPECT_TRUE(Pass("r")) << "a request without the parameter is not limited";
  time_.Advance(milliseconds(500));
  EXPECT_EQ(passes("alice", 5), 1) << "half a second refills half the tokens";
  // Only `capacity` values are remembered: many new values evict the oldest.
  for (int i = 0; i < 200; ++i) {
    passes("user" + std::to_string(i), 1);
  }
  EXPECT_LE(controller_->Describe()["rules"][0]["live"]["tracked_values"].get<int>(), 16 + 15);

  Make(R"({"rules": [{"id": "hq", "resource": "r", "kind": "hot_param", "source": "query",
                      "name": "item", "threshold": 1}]})");
  EXPECT_TRUE(Pass("r", nullptr, "a=1&item=7"));
  EXPECT_FALSE(Pass("r", nullptr, "item=7"));
  EXPECT_TRUE(Pass("r", nullptr, "item=8"));
}

TEST_F(FlowControlTest, BreakerOpensOnErrorRatioProbesWhenHalfOpenAndCloses) {
  Make(R"({"rules": [{"id": "b", "resource": "r", "kind": "breaker", "strategy": "error_ratio",
                      "threshold": 0.5, "min_requests": 4, "open_ms": 1000, "probes": 2}]})");
  auto call = [&](bool error) {
    Entry entry = controller_->Check(Traffic{"r", "", "", nullptr});
    const bool passed = !entry.blocked();
    controller_->Exit(entry, Outcome{error});
    return passed;
  };
  EXPECT_TRUE(call(false));
  EXPECT_TRUE(call(true));
  EXPECT_TRUE(call(true)) << "under min_requests the breaker stays closed";
  EXPECT_TRUE(call(true));  // 3 errors of 4 calls: opens
  EXPECT_FALSE(call(false));
  EXPECT_EQ(controller_->Describe()["rules"][0]["live"]["state"], "open");
  time_.Advance(milliseconds(999));
  EXPECT_FALSE(call(false));
  time_.Advance(milliseconds(1));
  // Half-open: two probes; the third concurrent request is refused.
  Entry p1 = controller_->Check(Traffic{"r", "", "", nullptr});
  Entry p2 = controller_->Check(Traffic{"r", "", "", nullptr});
  Entry p3 = controller_->Check(Traffic{"r", "", "", nullptr});
  EXPECT_FALSE(p1.blocked());
  EXPECT_FALSE(p2.blocked());
  EXPECT_TRUE(p3.blocked());
  EXPECT_EQ(controller_->Describe()["rules"][0]["live"]["state"], "half_open");
  controller_->Exit(p1, Outcome{false});
  controller_->Exit(p2, Outcome{true});  // a failed probe opens it again
  EXPECT_EQ(controller_->Describe()["rules"][0]["live"]["state"], "open");
  time_.Advance(milliseconds(1000));
  EXPECT_TRUE(call(false));
  EXPECT_TRUE(call(false));
  EXPECT_EQ(controller_->Describe()["rules"][0]["live"]["state"], "closed");
  EXPECT_TRUE(call(true)) << "closing starts a fresh window";
  const stats::Labels labels{{"resource", "r"}, {"rule", "b"}};
  auto transitions = [&](const char* to) {
    stats::Labels with = labels;
    with.emplace_back("to", to);
    return CounterValue("ottava_flow_control_breaker_transitions_total", with);
  };
  EXPECT_EQ(transitions("open"), 2u);
  EXPECT_EQ(transitions("half_open"), 2u);
  EXPECT_EQ(transitions("closed"), 1u);
}

TEST_F(FlowControlTest, BreakerOnSlowCallsAndOnErrorCount) {
  Make(R"({"rules": [
      {"id": "slow", "resource": "s", "kind": "breaker", "strategy": "slow_ratio",
       "threshold": 0.5, "slow_ms": 100, "min_requests": 2, "open_ms": 1000},
      {"id": "count", "resource": "c", "kind": "breaker", "strategy": "error_count",
       "threshold": 3, "min_requests": 1, "open_ms": 1000}]})");
  auto call = [&](const char* resource, milliseconds latency, bool error) {
    Entry entry = controller_->Check(Traffic{resource, "", "", nullptr});
    const bool passed = !entry.blocked();
    time_.Advance(latency);
    controller_->Exit(entry, Outcome{error});
    return passed;
  };
  EXPECT_TRUE(call("s", milliseconds(10), false));
  EXPECT_TRUE(call("s", milliseconds(150), false));  // 1 slow of 2: ratio 0.5 opens
  EXPECT_FALSE(call("s", milliseconds(0), false));
  EXPECT_TRUE(call("c", milliseconds(0), true));
  EXPECT_TRUE(call("c", milliseconds(0), true));
  EXPECT_TRUE(call("c", milliseconds(0), false));
  EXPECT_TRUE(call("c", milliseconds(0), true));  // the third error opens it
  EXPECT_FALSE(call("c", milliseconds(0), false));
}

TEST_F(FlowControlTest, RefinedRulesSplitAResourceByCallerAndRequest) {
  Make(R"({"rules": [
      {"id": "web", "resource": "r", "kind": "qps", "threshold": 0,
       "when": {"all": [{"caller_app": "web"}, {"header": "x-tier", "exact": "free"}]},
       "reply": {"status": 503, "body": "web is limited"}},
      {"id": "any", "resource": "r", "kind": "qps", "threshold": 0,
       "when": {"any": [{"source_ip": "10.9.*"}, {"query": "debug"}]}}]})");
  MapLookup web_free({{"x-caller-app-id", "web"}, {"x-tier", "free"}});
  MapLookup web_paid({{"x-caller-app-id", "web"}, {"x-tier", "paid"}});
  MapLookup mobile_free({{"dapr-caller-app-id", "mobile"}, {"x-tier", "free"}});
  Entry blocked = controller_->Check(Traffic{"r", "", "", &web_free});
  EXPECT_TRUE(blocked.blocked());
  EXPECT_EQ(blocked.reply()->status, 503);
  EXPECT_EQ(blocked.reply()->body, "web is limited");
  EXPECT_TRUE(Pass("r", &web_paid));
  EXPECT_TRUE(Pass("r", &mobile_free));
  EXPECT_FALSE(Pass("r", nullptr, "", "10.9.0.1"));
  EXPECT_TRUE(Pass("r", nullptr, "", "10.8.0.1"));
  EXPECT_FALSE(Pass("r", nullptr, "x=1&debug", ""));
}

TEST_F(FlowControlTest, UpdateKeepsUnchangedRulesStateAndRefusesABadSetWhole) {
  const std::string concurrency =
      R"({"id": "c", "resource": "r", "kind": "concurrency", "threshold": 1})";
  Make(R"({"rules": [)" + concurrency + "]}");
  Entry held = controller_->Check(Traffic{"r", "", "", nullptr});
  ASSERT_FALSE(held.blocked());
  ASSERT_TRUE(
      controller_
          ->UpdateFromText(R"({"rules": [)" + concurrency +
                           R"(, {"id": "q", "resource": "x", "kind": "qps", "threshold": 0}]})")
          .ok());
  EXPECT_FALSE(Pass("r")) << "the unchanged rule kept its in-flight count";
  EXPECT_FALSE(Pass("x"));
  absl::Status bad = controller_->UpdateFromText(
      R"({"rules": [{"id": "q", "resource": "x", "kind": "qps", "threshold": -1}]})");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("/rules/0/threshold"), std::string_view::npos) << bad;
  EXPECT_FALSE(Pass("x")) << "the previous set stays";
  EXPECT_EQ(controller_->version(), 2u);
  controller_->Exit(held, Outcome{});
  EXPECT_TRUE(controller_->UpdateFromText(R"({"rules": []})").ok());
  EXPECT_TRUE(Pass("x"));
  EXPECT_TRUE(Pass("r"));
}

class FixedSource : public SystemSource {
 public:
  explicit FixedSource(const double* level) : level_(level) {}
  SystemLoad Sample() override { return SystemLoad{0, *level_}; }

 private:
  const double* level_;
};

TEST_F(FlowControlTest, AdaptiveLimitingShedsStressTrafficBeforeTheRules) {
  Make(R"({"reply": {"status": 503, "body": "shed"},
           "rules": [{"id": "c", "resource": "r", "kind": "concurrency", "threshold": 10}]})");
  double level = 0.2;
  AdaptiveConfig config;
  config.trigger_seconds = 1;
  AdaptiveLimiter limiter(config, std::make_unique<FixedSource>(&level));
  controller_->SetAdaptive(&limiter);
  MapLookup stress(std::map<std::string, std::string>{{"x-stress-test", "1"}});
  EXPECT_TRUE(Pass("r", &stress));
  level = 0.95;
  limiter.Tick();
  Entry shed = controller_->Check(Traffic{"r", "", "", &stress});
  EXPECT_TRUE(shed.blocked());
  EXPECT_EQ(shed.reply()->status, 503);
  EXPECT_TRUE(Pass("r")) << "normal traffic passes";
  Entry held = controller_->Check(Traffic{"r", "", "", nullptr});
  EXPECT_TRUE(held.needs_exit());
  controller_->Exit(held, Outcome{});
  EXPECT_EQ(CounterValue("ottava_flow_control_adaptive_blocks_total", {{"reason", "stress"}}), 1u);
  controller_->SetAdaptive(nullptr);
  EXPECT_TRUE(Pass("r", &stress));
}

TEST(ResourceOfTest, NamesRpcInvokeAndHttpTraffic) {
  RequestHeaders bolt;
  bolt.service = "com.example.Echo:1.0";
  bolt.rpc.emplace();
  bolt.headers.AddCased("sofa_head_method_name", "echo");
  EXPECT_EQ(ResourceOf(bolt, false, "auto"), "com.example.Echo:1.0#echo");
  RequestHeaders invoke;
  invoke.service = "orders";
  invoke.path = "/create?x=1";
  EXPECT_EQ(ResourceOf(invoke, true, "auto"), "orders#create");
  EXPECT_EQ(ResourceOf(invoke, false, "auto"), "/create");
  EXPECT_EQ(ResourceOf(invoke, false, "service"), "orders");
  EXPECT_EQ(ResourceOf(invoke, true, "path"), "/create");
}

}  // namespace
}  // namespace ottava::mesh::flow
