// The flow-control events hook with the in-memory pub/sub: a flood of blocks becomes one event
// per resource and second on the configured topic, breaker state changes arrive with their
// state, and the JSON carries what a self-healing platform needs.

#include "runtime/flow_events.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/synchronization/mutex.h"
#include "common/dispatcher.h"
#include "common/stats.h"
#include "common/time_source.h"
#include "components/pubsub/in_memory/in_memory_pubsub.h"
#include "mesh/filter/flow_control/controller.h"

namespace ottava::runtime {
namespace {

using nlohmann::json;

class FlowEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dispatcher = Dispatcher::Create("flow-events");
    ASSERT_TRUE(dispatcher.ok());
    dispatcher_ = std::move(*dispatcher);
    dispatcher_->Start();
    components::ComponentContext context;
    context.kind = components::Kind::kPubSub;
    context.name = "bus";
    context.type = "in-memory";
    context.health = &health_;
    context.dispatcher = dispatcher_.get();
    context.stats = &stats_;
    auto pubsub = components::pubsub::InMemoryPubSubFactory().Create(context);
    ASSERT_TRUE(pubsub.ok()) << pubsub.status();
    pubsub_ = std::move(*pubsub);
    ASSERT_TRUE(pubsub_->Init().ok());
    components::pubsub::SubscribeRequest request;
    request.topic = "flow-events";
    request.consumer_group = "healer";
    request.max_in_flight = 1000;
    auto id = pubsub_->Subscribe(
        request, [this](const components::pubsub::Message& message, std::function<void()> ack) {
          absl::MutexLock lock(&mu_);
          received_.push_back(json::parse(message.data));
          ack();
        });
    ASSERT_TRUE(id.ok()) << id.status();
    publisher_ =
        std::make_unique<FlowEventPublisher>(*pubsub_, "flow-events", "orders", time_, stats_);
  }

  void TearDown() override {
    pubsub_->Shutdown();
    dispatcher_->Stop();
  }

  std::vector<json> Received() {
    dispatcher_->RunAndWait([] {});
    dispatcher_->RunAndWait([] {});
    absl::MutexLock lock(&mu_);
    return received_;
  }

  uint64_t Events(const std::string& kind, const std::string& result) {
    return stats_
        .CounterFor("ottava_flow_control_events_total", "", {{"kind", kind}, {"result", result}})
        .Value();
  }

  SimulatedTimeSource time_;
  stats::Store stats_;
  components::HealthIndicator health_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<components::pubsub::PubSub> pubsub_;
  std::unique_ptr<FlowEventPublisher> publisher_;
  absl::Mutex mu_;
  std::vector<json> received_ ABSL_GUARDED_BY(mu_);
};

TEST_F(FlowEventsTest, AFloodOfBlocksPublishesOneEventPerResourcePerSecond) {
  auto rules = mesh::flow::RuleSet::ParseText(R"({"rules": [
      {"id": "q1", "resource": "/q", "kind": "qps", "threshold": 1},
      {"id": "b", "resource": "/b", "kind": "breaker", "strategy": "error_count",
       "threshold": 1, "min_requests": 1, "open_ms": 500}]})");
  ASSERT_TRUE(rules.ok()) << rules.status();
  auto controller = mesh::flow::Controller::Create(std::move(*rules), time_, stats_);
  controller->SetEventListener(publisher_.get());
  auto request = [&](std::string_view resource, bool error = false) {
    mesh::flow::Entry entry = controller->Check(mesh::flow::Traffic{resource, "", "", nullptr});
    const bool blocked = entry.blocked();
    controller->Exit(entry, mesh::flow::Outcome{error});
    return blocked;
  };
  int blocked = 0;
  for (int i = 0; i < 10000; ++i) {
    blocked += request("/q") ? 1 : 0;
  }
  EXPECT_EQ(blocked, 9999);
  std::vector<json> events = Received();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["resource"], "/q");
  EXPECT_EQ(events[0]["rule"], "q1");
  EXPECT_EQ(events[0]["kind"], "block");
  EXPECT_EQ(events[0]["state"], "qps");
  EXPECT_EQ(events[0]["app_id"], "orders");
  EXPECT_EQ(events[0]["time"], "2027-01-15T08:00:00.000Z");

  // Breaker: open, half-open, closed: each state is its own event.
  request("/b", /*error=*/true);
  time_.Advance(std::chrono::milliseconds(600));
  request("/b");
  events = Received();
  ASSERT_EQ(events.size(), 4u) << json(events).dump();
  std::vector<std::string> states;
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i]["kind"] == "breaker_state") {
      states.push_back(events[i]["state"].get<std::string>());
    }
  }
  EXPECT_EQ(states, (std::vector<std::string>{"open", "half_open", "closed"}));
  // A second later the flood is reported again, once.
  time_.Advance(std::chrono::seconds(1));
  for (int i = 0; i < 1000; ++i) {
    request("/q");
  }
  EXPECT_EQ(Received().size(), 5u);
  EXPECT_EQ(Events("block", "published"), 2u);
}

TEST_F(FlowEventsTest, TheHookItselfBoundsEventsPerResourceAndKind) {
  for (int i = 0; i < 100; ++i) {
    publisher_->OnEvent(mesh::flow::FlowEvent{mesh::flow::FlowEvent::Kind::kAdaptiveTrigger, "*",
                                              "adaptive", "shed_stress"});
  }
  std::vector<json> events = Received();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["kind"], "adaptive_trigger");
  EXPECT_EQ(events[0]["state"], "shed_stress");
  EXPECT_EQ(Events("adaptive_trigger", "dropped"), 99u);
  EXPECT_EQ(Events("adaptive_trigger", "published"), 1u);
}

}  // namespace
}  // namespace ottava::runtime
