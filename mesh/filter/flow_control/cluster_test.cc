// Unit tests of cluster rules and the events hook with a fake central counter: several
// controllers sharing one counter stand for several sidecars. Sync accounting is exact per
// window, async spends reserved shares and never hands out more than the threshold, both fall
// back as configured while the counter is down, and events are rate-bounded.

#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "common/dispatcher.h"
#include "common/stats.h"
#include "common/time_source.h"
#include "mesh/filter/flow_control/controller.h"
#include "mesh/filter/flow_control/flow_control_filter.h"

namespace ottava::mesh::flow {
namespace {

using std::chrono::milliseconds;

// The central counter in memory. `defer`: answers wait in a queue until Flush() (a round trip in
// flight); `down`: unhealthy and every Add fails.
class FakeCounter : public ClusterCounter {
 public:
  void Add(const std::string& key,
           int64_t delta,
           std::chrono::milliseconds ttl,
           AddCallback done) override {
    ++adds;
    ttls[key] = ttl;
    if (fail) {
      done(absl::UnavailableError("fake: down"));
      return;
    }
    const int64_t total = counts[key] += delta;
    if (defer) {
      queued.push_back([done, total] { done(total); });
    } else {
      done(total);
    }
  }
  bool Healthy() const override { return healthy; }
  void Flush() {
    while (!queued.empty()) {
      auto next = std::move(queued.front());
      queued.pop_front();
      next();
    }
  }

  std::map<std::string, int64_t> counts;
  std::map<std::string, std::chrono::milliseconds> ttls;
  std::deque<std::function<void()>> queued;
  int adds = 0;
  bool fail = false;
  bool healthy = true;
  bool defer = false;
};

class RecordingListener : public EventListener {
 public:
  void OnEvent(const FlowEvent& event) override {
    events.push_back(std::string(FlowEventKindName(event.kind)) + " " +
                     std::string(event.resource) + " " + std::string(event.rule) + " " +
                     std::string(event.state));
  }
  std::vector<std::string> events;
};

RuleSet Rules(const std::string& text) {
  absl::StatusOr<RuleSet> rules = RuleSet::ParseText(text);
  EXPECT_TRUE(rules.ok()) << rules.status();
  return rules.ok() ? std::move(*rules) : RuleSet{};
}

class ClusterTest : public ::testing::Test {
 protected:
  // `sidecars` controllers with the same rules and the one fake counter.
  void Make(const std::string& rules, int sidecars = 1) {
    controllers_.clear();
    for (int i = 0; i < sidecars; ++i) {
      controllers_.push_back(Controller::Create(Rules(rules), time_, stats_[i]));
      controllers_.back()->SetClusterCounter(&counter_);
    }
  }

  // One request on sidecar `i`, the way the mesh filter does it (the central counter answers
  // synchronously unless deferred; then the verdict is applied after Flush()).
  bool Pass(int i, std::string_view resource = "/api") {
    Controller& controller = *controllers_[static_cast<size_t>(i)];
    Entry entry = controller.Check(Traffic{resource, "", "", nullptr});
    if (entry.cluster_pending()) {
      int verdict = -2;
      controller.CheckCluster(entry, [&verdict](int v) { verdict = v; });
      counter_.Flush();
      EXPECT_NE(verdict, -2) << "the verdict came";
      controller.FinishCluster(entry, verdict);
    }
    const bool passed = !entry.blocked();
    controller.Exit(entry, Outcome{});
    return passed;
  }

  nlohmann::json Live(int i = 0) {
    return controllers_[static_cast<size_t>(i)]->Describe()["rules"][0]["live"];
  }

  SimulatedTimeSource time_;
  stats::Store stats_[3];
  FakeCounter counter_;
  std::vector<ControllerPtr> controllers_;
};

constexpr char kSync[] = R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster",
  "mode": "sync", "threshold": 10, "fallback": "local", "local_threshold": 3}]})";

TEST(ClusterRuleTest, ParsesClusterRulesAndRefusesBadOnes) {
  absl::StatusOr<RuleSet> good = RuleSet::ParseText(
      R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster", "threshold": 300,
          "mode": "async", "share": 15, "window_ms": 500, "fallback": "deny"}]})");
  ASSERT_TRUE(good.ok()) << good.status();
  const ClusterSpec& spec = good->rules[0].cluster;
  EXPECT_EQ(spec.mode, ClusterMode::kAsync);
  EXPECT_EQ(spec.Share(), 15);
  EXPECT_EQ(spec.window_ms, 500);
  EXPECT_EQ(spec.fallback, ClusterFallback::kDeny);
  EXPECT_EQ(ClusterSpec{.threshold = 300}.Share(), 15) << "default share: threshold / 20";
  EXPECT_EQ(ClusterSpec{.threshold = 5}.Share(), 1);

  auto bad = RuleSet::ParseText(
      R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster", "threshold": 1}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "/rules/0/local_threshold: is required with fallback local");
  bad = RuleSet::ParseText(R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster",
      "threshold": 1, "mode": "later", "fallback": "allow"}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/rules/0/mode"), std::string::npos) << bad.status();

  // The config file: cluster rules need the counter's section.
  auto config = FlowControlConfig::Parse(
      nlohmann::json::parse(R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster",
          "threshold": 1, "fallback": "allow"}]})"),
      "/flow_control");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("/flow_control/rules/0"), std::string::npos);
  config = FlowControlConfig::Parse(
      nlohmann::json::parse(R"({"cluster": {"redis": {"redisHost": "127.0.0.1:1"}},
          "events": {"pubsub": "bus", "topic": "t"},
          "rules": [{"id": "c", "resource": "/api", "kind": "cluster", "threshold": 1,
                     "fallback": "allow"}]})"),
      "/flow_control");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster->redis.at("redisHost"), "127.0.0.1:1");
  EXPECT_EQ(config->cluster->key_prefix, "ottava:flow:");
  EXPECT_EQ(config->events->topic, "t");
}

TEST_F(ClusterTest, LiveUpdatesRefuseClusterRulesWithoutACounter) {
  auto controller = Controller::Create(RuleSet{}, time_, stats_[0]);
  absl::Status status = controller->UpdateFromText(kSync);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("/rules/0"), std::string::npos) << status;
  controller->SetClusterCounter(&counter_);
  EXPECT_TRUE(controller->UpdateFromText(kSync).ok());
}

// Three sidecars, uneven load: the central count admits exactly the threshold per window.
TEST_F(ClusterTest, SyncAdmitsExactlyTheThresholdPerWindowAcrossSidecars) {
  Make(kSync, 3);
  for (int window = 0; window < 3; ++window) {
    int passed = 0;
    for (int i = 0; i < 25; ++i) {
      passed += Pass(0) ? 1 : 0;  // 25, 15 and 10 requests: 50 offered
      if (i < 15) {
        passed += Pass(1) ? 1 : 0;
      }
      if (i < 10) {
        passed += Pass(2) ? 1 : 0;
      }
    }
    EXPECT_EQ(passed, 10) << "window " << window;
    time_.Advance(std::chrono::seconds(1));
  }
  EXPECT_EQ(counter_.adds, 150) << "one round trip per request";
  EXPECT_EQ(counter_.counts.size(), 3u) << "one key per window";
  EXPECT_EQ(counter_.ttls.begin()->second, milliseconds(3000));
  EXPECT_EQ(Live(0)["fallbacks"], 0);
}

TEST_F(ClusterTest, SyncFallsBackToTheLocalLimitWhileTheCounterFails) {
  Make(kSync);
  counter_.fail = true;  // reachable a moment ago, failing now: the answer is an error
  int passed = 0;
  for (int i = 0; i < 10; ++i) {
    passed += Pass(0) ? 1 : 0;
  }
  EXPECT_EQ(passed, 3) << "local_threshold";
  counter_.healthy = false;  // known down: decided at once, without asking
  const int adds = counter_.adds;
  time_.Advance(std::chrono::seconds(1));
  passed = 0;
  for (int i = 0; i < 10; ++i) {
    passed += Pass(0) ? 1 : 0;
  }
  EXPECT_EQ(passed, 3);
  EXPECT_EQ(counter_.adds, adds);
  EXPECT_EQ(Live(0)["fallbacks"], 20);
  EXPECT_EQ(stats_[0]
                .CounterFor("ottava_flow_control_cluster_fallbacks_total", "",
                            {{"resource", "/api"}, {"rule", "c"}})
                .Value(),
            20u);
  // Back: the central count again.
  counter_.healthy = true;
  counter_.fail = false;
  time_.Advance(std::chrono::seconds(1));
  passed = 0;
  for (int i = 0; i < 20; ++i) {
    passed += Pass(0) ? 1 : 0;
  }
  EXPECT_EQ(passed, 10);
}

TEST_F(ClusterTest, FallbackAllowAndDeny) {
  Make(R"({"rules": [
      {"id": "a", "resource": "/a", "kind": "cluster", "mode": "sync", "threshold": 1,
       "fallback": "allow"},
      {"id": "d", "resource": "/d", "kind": "cluster", "mode": "async", "threshold": 1,
       "fallback": "deny"}]})");
  counter_.healthy = false;
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(Pass(0, "/a"));
    EXPECT_FALSE(Pass(0, "/d"));
  }
}

// Three sidecars spending shares of one async limit under uneven load: never more than the
// threshold in a window, nearly all of it used, and a few reservations instead of a round trip
// per request.
TEST_F(ClusterTest, AsyncSpendsReservedSharesWithinTheThreshold) {
  Make(R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster", "mode": "async",
      "threshold": 300, "share": 10, "fallback": "deny"}]})",
       3);
  int total = 0;
  for (int window = 0; window < 4; ++window) {
    int passed[3] = {0, 0, 0};
    // 250, 150 and 100 requests spread over the window.
    for (int tick = 0; tick < 50; ++tick) {
      for (int i = 0; i < 5; ++i) {
        passed[0] += Pass(0) ? 1 : 0;
      }
      for (int i = 0; i < 3; ++i) {
        passed[1] += Pass(1) ? 1 : 0;
      }
      for (int i = 0; i < 2; ++i) {
        passed[2] += Pass(2) ? 1 : 0;
      }
      time_.Advance(milliseconds(20));
    }
    const int sum = passed[0] + passed[1] + passed[2];
    EXPECT_LE(sum, 300) << "window " << window;
    EXPECT_GE(sum, 300 - 3 * 10) << "window " << window << ": at most a share each unspent";
    EXPECT_GT(passed[2], 50) << "the lightest sidecar got its part";
    total += sum;
  }
  EXPECT_LE(counter_.adds, 4 * (300 / 10 + 3)) << "reservations, not a round trip per request";
  EXPECT_GE(total, 4 * 285);
  EXPECT_EQ(Live(0)["fallbacks"], 0);
}

// Answers that take a while: requests borrow at most one share ahead of a reservation in flight,
// so the overshoot is bounded by a share per sidecar.
TEST_F(ClusterTest, AsyncBorrowsAtMostOneShareWhileAReservationIsInFlight) {
  Make(R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster", "mode": "async",
      "threshold": 20, "share": 5, "fallback": "deny"}]})",
       2);
  counter_.defer = true;
  // Pass() flushes after each request, so check the borrowing directly.
  int passed = 0;
  for (int i = 0; i < 20; ++i) {
    Entry entry = controllers_[0]->Check(Traffic{"/api", "", "", nullptr});
    passed += entry.blocked() ? 0 : 1;
  }
  EXPECT_EQ(passed, 5) << "one share borrowed, then refused until the reservation answers";
  EXPECT_EQ(counter_.adds, 1) << "one reservation in flight";
  counter_.Flush();
  EXPECT_EQ(Live(0)["tokens"], 5) << "a share paid the debt, the next one came at once";
  EXPECT_EQ(counter_.adds, 2);
  counter_.defer = false;
  passed = 0;
  for (int i = 0; i < 40; ++i) {
    passed += Pass(0) ? 1 : 0;
    passed += Pass(1) ? 1 : 0;
  }
  EXPECT_EQ(passed + 5, 20) << "the window's threshold, debt included";
  EXPECT_EQ(Live(0)["exhausted"], true);
}

TEST_F(ClusterTest, AsyncFallsBackWhenAReservationFailsAndRecoversNextWindow) {
  Make(R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster", "mode": "async",
      "threshold": 100, "share": 10, "fallback": "local", "local_threshold": 4}]})");
  counter_.fail = true;
  int passed = 0;
  for (int i = 0; i < 30; ++i) {
    passed += Pass(0) ? 1 : 0;
  }
  // The first request borrowed ahead of the (failing) reservation; the rest used the fallback.
  EXPECT_EQ(passed, 1 + 4);
  EXPECT_EQ(Live(0)["degraded"], true);
  counter_.fail = false;
  time_.Advance(std::chrono::seconds(1));
  passed = 0;
  for (int i = 0; i < 150; ++i) {
    passed += Pass(0) ? 1 : 0;
  }
  EXPECT_EQ(passed, 100);
  EXPECT_EQ(Live(0)["degraded"], false);
}

// gRPC callers cannot wait: a sync rule is counted through shares of the same counter.
TEST_F(ClusterTest, SyncRuleWithoutRemoteChecksUsesShares) {
  Make(kSync);
  int passed = 0;
  for (int i = 0; i < 20; ++i) {
    Entry entry = controllers_[0]->Check(Traffic{"/api", "", "", nullptr}, false, false);
    EXPECT_FALSE(entry.cluster_pending());
    passed += entry.blocked() ? 0 : 1;
  }
  EXPECT_EQ(passed, 10);
  EXPECT_LT(counter_.adds, 20);
}

TEST_F(ClusterTest, EventsAreReportedAtMostOncePerRulePerSecond) {
  Make(R"({"rules": [
      {"id": "q", "resource": "/q", "kind": "qps", "threshold": 1},
      {"id": "b", "resource": "/b", "kind": "breaker", "strategy": "error_count",
       "threshold": 1, "min_requests": 1, "open_ms": 100}]})");
  RecordingListener listener;
  controllers_[0]->SetEventListener(&listener);
  for (int i = 0; i < 100; ++i) {
    Pass(0, "/q");
  }
  ASSERT_EQ(listener.events.size(), 1u);
  EXPECT_EQ(listener.events[0], "block /q q qps");
  time_.Advance(std::chrono::seconds(1));
  for (int i = 0; i < 100; ++i) {
    Pass(0, "/q");
  }
  EXPECT_EQ(listener.events.size(), 2u);
  listener.events.clear();
  Entry entry = controllers_[0]->Check(Traffic{"/b", "", "", nullptr});
  controllers_[0]->Exit(entry, Outcome{.error = true});
  ASSERT_FALSE(listener.events.empty());
  EXPECT_EQ(listener.events[0], "breaker_state /b b open");
}

// The mesh filter holds a request while the central counter answers, then continues or answers it
// on its worker; a stream that ended meanwhile is left alone.
class RecordingCallbacks : public StreamFilterCallbacks {
 public:
  explicit RecordingCallbacks(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  void ContinueDecoding() override {
    EXPECT_TRUE(dispatcher_.IsLoopThread());
    continued++;
  }
  void SendLocalReply(int status, std::string_view) override {
    EXPECT_TRUE(dispatcher_.IsLoopThread());
    replied = status;
  }
  Dispatcher& dispatcher() override { return dispatcher_; }
  std::string_view downstream_address() const override { return "127.0.0.1:5000"; }
  void RouteToCluster(std::string cluster) override { rerouted = std::move(cluster); }
  std::string rerouted;

  std::atomic<int> continued{0};
  std::atomic<int> replied{0};

 private:
  Dispatcher& dispatcher_;
};

TEST_F(ClusterTest, MeshFilterHoldsTheRequestUntilTheCounterAnswers) {
  Make(R"({"rules": [{"id": "c", "resource": "/api", "kind": "cluster", "mode": "sync",
      "threshold": 1, "fallback": "allow"}]})");
  auto dispatcher = Dispatcher::Create("filter-test");
  ASSERT_TRUE(dispatcher.ok());
  (*dispatcher)->Start();
  FilterFactoryPtr factory = CreateFlowControlFilterFactory(*controllers_[0]);
  auto make = factory->Create(nlohmann::json::object(), "/filters/0/config");
  ASSERT_TRUE(make.ok()) << make.status();
  counter_.defer = true;

  struct Stream {
    StreamFilterPtr filter;
    std::unique_ptr<RecordingCallbacks> callbacks;
    FilterStatus status = FilterStatus::kContinue;
  };
  auto start = [&](Stream& stream) {
    stream.callbacks = std::make_unique<RecordingCallbacks>(**dispatcher);
    stream.filter = (*make)();
    (*dispatcher)->RunAndWait([&] {
      stream.filter->SetCallbacks(*stream.callbacks);
      RequestHeaders headers;
      headers.method = "GET";
      headers.path = "/api";
      stream.status = stream.filter->DecodeHeaders(headers, true);
    });
  };
  Stream first;
  Stream second;
  Stream gone;
  start(first);
  start(second);
  start(gone);
  EXPECT_EQ(first.status, FilterStatus::kStop);
  EXPECT_EQ(second.status, FilterStatus::kStop);
  (*dispatcher)->RunAndWait([&] {
    gone.filter->OnDestroy();
    gone.filter.reset();
  });
  counter_.Flush();  // the answers arrive on this thread; the verdicts go to the worker
  (*dispatcher)->RunAndWait([] {});
  EXPECT_EQ(first.callbacks->continued, 1);
  EXPECT_EQ(first.callbacks->replied, 0);
  EXPECT_EQ(second.callbacks->continued, 0);
  EXPECT_EQ(second.callbacks->replied, 429) << "the second request of a 1-per-window limit";
  EXPECT_EQ(gone.callbacks->continued + gone.callbacks->replied, 0);
  (*dispatcher)->RunAndWait([&] {
    first.filter->OnDestroy();
    second.filter->OnDestroy();
    first.filter.reset();
    second.filter.reset();
  });
  (*dispatcher)->Stop();
}

}  // namespace
}  // namespace ottava::mesh::flow
