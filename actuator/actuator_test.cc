#include "actuator/actuator.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <ifaddrs.h>
#include <netinet/in.h>

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
    stats_.CounterFor("ottava_test_total", "a test counter", {{"k", "v"}}).Inc(3);
    auto actuator = Actuator::Create("127.0.0.1", 0);
    ASSERT_TRUE(actuator.ok()) << actuator.status();
    actuator_ = std::move(*actuator);
    AddHealthHandlers(
        *actuator_, [] { return std::vector<Indicator>{Ind("runtime", HealthState::kUp)}; },
        [this] {
          return std::vector<Indicator>{Ind("runtime_startup", HealthState::kUp),
                                        Ind("state/main", readiness_)};
        });
    AddInfoHandler(*actuator_, [] { return nlohmann::json{{"app", {{"id", "orders"}}}}; });
    AddMetricsHandler(*actuator_, stats_);
    AddLoggerHandler(*actuator_);
    AddExtraHandlers();
    actuator_->Start();
    client_ = std::make_unique<httplib::Client>(actuator_->address());
    client_->set_connection_timeout(2);
    client_->set_read_timeout(2);
  }
  void TearDown() override { actuator_->Stop(); }

  // A subsystem's own endpoints, registered the way the mesh will.
  void AddExtraHandlers() {
    actuator_->AddHandler("POST", "/actuator/echo", "echoes the request",
                          [](const HttpRequest& req) {
                            nlohmann::json params = req.params;
                            return HttpResponse{201, "application/json",
                                                nlohmann::json{{"method", req.method},
                                                               {"path", req.path},
                                                               {"body", req.body},
                                                               {"remote", req.remote_address},
                                                               {"params", params}}
                                                    .dump()};
                          });
    actuator_->AddHandler(
        "GET", "/actuator/secret", "loopback only",
        [](const HttpRequest&) {
          return HttpResponse{200, "text/plain", "ok"};
        },
        /*loopback_only=*/true);
  }

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

TEST_F(ActuatorServerTest, RegisteredHandlersSeeTheRequestAndSetTheResponse) {
  WaitUntilServing();
  httplib::Result res =
      client_->Post("/actuator/echo?cluster=echo&x=1", R"({"a":1})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  nlohmann::json body = nlohmann::json::parse(res->body);
  EXPECT_EQ(body["method"], "POST");
  EXPECT_EQ(body["path"], "/actuator/echo");
  EXPECT_EQ(body["body"], R"({"a":1})");
  EXPECT_EQ(body["remote"], "127.0.0.1");
  EXPECT_EQ(body["params"], (nlohmann::json{{"cluster", "echo"}, {"x", "1"}}));
  // Only the registered method is served.
  res = client_->Get("/actuator/echo");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  // A loopback-only handler serves a loopback peer (403 for others: IsLoopback in actuator.cc).
  res = client_->Get("/actuator/secret");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok");
}

TEST_F(ActuatorServerTest, IndexListsEveryHandlerWithItsHelp) {
  WaitUntilServing();
  for (const char* path : {"/actuator", "/actuator/"}) {
    httplib::Result res = client_->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 200);
    nlohmann::json handlers = nlohmann::json::parse(res->body)["handlers"];
    std::vector<std::string> listed;
    for (const auto& handler : handlers) {
      listed.push_back(handler["method"].get<std::string>() + " " +
                       handler["path"].get<std::string>());
      EXPECT_FALSE(handler["help"].get<std::string>().empty());
    }
    EXPECT_EQ(listed, (std::vector<std::string>{
                          "GET /actuator", "POST /actuator/echo", "GET /actuator/health",
                          "GET /actuator/health/liveness", "GET /actuator/health/readiness",
                          "GET /actuator/info", "POST /actuator/logger", "GET /actuator/secret",
                          "GET /metrics"}));
  }
}

// This host's first non-loopback IPv4 address, or "" when it has none.
std::string NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return "";
  }
  std::string found;
  for (ifaddrs* it = list; it != nullptr && found.empty(); it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, text, sizeof(text));
    if (std::string(text).rfind("127.", 0) != 0) {
      found = text;
    }
  }
  freeifaddrs(list);
  return found;
}

TEST(ActuatorLoopbackTest, LoopbackOnlyHandlersRefuseOtherPeers) {
  const std::string address = NonLoopbackAddress();
  if (address.empty()) {
    GTEST_SKIP() << "no non-loopback IPv4 address on this host";
  }
  auto actuator = Actuator::Create(address, 0);
  ASSERT_TRUE(actuator.ok()) << actuator.status();
  (*actuator)->AddHandler(
      "POST", "/admin", "loopback only",
      [](const HttpRequest&) {
        return HttpResponse{200, "text/plain", "done"};
      },
      /*loopback_only=*/true);
  (*actuator)->AddHandler("GET", "/open", "anyone", [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", "hi"};
  });
  (*actuator)->Start();
  httplib::Client client((*actuator)->address());
  client.set_connection_timeout(2);
  client.set_read_timeout(2);
  httplib::Result res = client.Post("/admin", "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  EXPECT_NE(res->body.find("loopback"), std::string::npos);
  res = client.Get("/open");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  (*actuator)->Stop();
}

}  // namespace
}  // namespace ottava::actuator
