#include "actuator/actuator.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "common/logging.h"

namespace ottava::actuator {
namespace {

using components::HealthState;

Indicator Ind(std::string name, HealthState state, std::string reason = "", bool counts = true) {
  return Indicator{std::move(name), state, std::move(reason), counts};
}

TEST(AggregateTest, DownBeatsInitBeatsUp) {
  EXPECT_EQ(Aggregate({}), HealthState::kUp);
  EXPECT_EQ(Aggregate({Ind("a", HealthState::kUp), Ind("b", HealthState::kInit)}),
            HealthState::kInit);
  EXPECT_EQ(Aggregate({Ind("a", HealthState::kInit), Ind("b", HealthState::kDown)}),
            HealthState::kDown);
}

TEST(AggregateTest, OptionalIndicatorsAreListedButDoNotCount) {
  std::vector<Indicator> indicators = {Ind("state/main", HealthState::kUp),
                                       Ind("state/cache", HealthState::kDown, "refused", false)};
  EXPECT_EQ(Aggregate(indicators), HealthState::kUp);
  nlohmann::json body = HealthBody(indicators);
  EXPECT_EQ(body["status"], "UP");
  EXPECT_EQ(body["components"]["state/cache"]["status"], "DOWN");
  EXPECT_EQ(body["components"]["state/cache"]["details"]["reason"], "refused");
  EXPECT_EQ(body["components"]["state/cache"]["details"]["required"], false);
  EXPECT_FALSE(body["components"]["state/main"].contains("details"));
}

class ActuatorServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Sources sources;
    sources.stats = &stats_;
    sources.liveness = [] { return std::vector<Indicator>{Ind("runtime", HealthState::kUp)}; };
    sources.readiness = [this] {
      return std::vector<Indicator>{Ind("runtime_startup", HealthState::kUp),
                                    Ind("state/main", readiness_)};
    };
    sources.info = [] { return nlohmann::json{{"app", {{"id", "orders"}}}}; };
    stats_.CounterFor("ottava_test_total", "a test counter", {{"k", "v"}}).Inc(3);
    auto actuator = Actuator::Create("127.0.0.1", 0, std::move(sources));
    ASSERT_TRUE(actuator.ok()) << actuator.status();
    actuator_ = std::move(*actuator);
    actuator_->Start();
    client_ = std::make_unique<httplib::Client>(actuator_->address());
    client_->set_connection_timeout(2);
    client_->set_read_timeout(2);
  }
  void TearDown() override { actuator_->Stop(); }

  // The listener thread may still be starting.
  void WaitUntilServing() {
    for (int i = 0; i < 200; ++i) {
      if (client_->Get("/actuator/health/liveness")) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  stats::Store stats_;
  std::atomic<HealthState> readiness_{HealthState::kInit};
  std::unique_ptr<Actuator> actuator_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ActuatorServerTest, ReadinessIs503UntilEveryIndicatorIsUp) {
  WaitUntilServing();
  httplib::Result res = client_->Get("/actuator/health/readiness");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(nlohmann::json::parse(res->body)["status"], "INIT");
  readiness_ = HealthState::kUp;
  res = client_->Get("/actuator/health/readiness");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(nlohmann::json::parse(res->body)["components"]["state/main"]["status"], "UP");
  readiness_ = HealthState::kDown;
  res = client_->Get("/actuator/health/readiness");
  EXPECT_EQ(res->status, 503);
  res = client_->Get("/actuator/health/liveness");
  EXPECT_EQ(res->status, 200);
}

TEST_F(ActuatorServerTest, MetricsInfoAndLogger) {
  WaitUntilServing();
  httplib::Result res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("ottava_test_total{k=\"v\"} 3"), std::string::npos) << res->body;

  res = client_->Get("/actuator/info");
  EXPECT_EQ(nlohmann::json::parse(res->body)["app"]["id"], "orders");

  res =
      client_->Post("/actuator/logger", R"({"module":"grpc","level":"debug"})", "application/json");
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(logging::LevelOf("grpc"), "debug");
  res =
      client_->Post("/actuator/logger", R"({"module":"nope","level":"debug"})", "application/json");
  EXPECT_EQ(res->status, 404);
  res =
      client_->Post("/actuator/logger", R"({"module":"grpc","level":"loud"})", "application/json");
  EXPECT_EQ(res->status, 400);
  res = client_->Post("/actuator/logger", "not json", "application/json");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(logging::LevelOf("grpc"), "debug");
  res = client_->Get("/nowhere");
  EXPECT_EQ(res->status, 404);
}

}  // namespace
}  // namespace ottava::actuator
