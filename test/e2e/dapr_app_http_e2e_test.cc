// Delivery to a Dapr HTTP app (`app.callback.protocol` = "http") through the real binary: an
// httplib app that starts after the sidecar, answers GET /dapr/subscribe with routing rules and a
// dead-letter topic, and records what it receives. Checks the app token, rule routing, Dapr's
// status rules (404 drops, 500 retries, DROP dead-letters) and invocation of the own app id over
// the Dapr HTTP API with the caller's content type and query passed through.

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::test {
namespace {

using nlohmann::json;

struct Received {
  std::string path;
  std::string token;
  json body;
};

class HttpApp {
 public:
  explicit HttpApp(uint16_t port) : port_(port) {
    server_.Get("/dapr/subscribe", [this](const httplib::Request& req, httplib::Response& res) {
      Record("/dapr/subscribe", req);
      res.set_content(R"([
        {"pubsubname": "pubsub", "topic": "orders",
         "routes": {"rules": [{"match": "event.data.kind == \"a\"", "path": "/a"}],
                    "default": "/other"}},
        {"pubsubname": "pubsub", "topic": "flaky", "route": "/flaky"},
        {"pubsubname": "pubsub", "topic": "gone", "route": "/no-such-route"},
        {"pubsubname": "pubsub", "topic": "poison", "route": "/poison",
         "deadLetterTopic": "poison-dlq"},
        {"pubsubname": "pubsub", "topic": "poison-dlq", "route": "/dlq"}])",
                      "application/json");
    });
    for (const char* path : {"/a", "/other", "/dlq"}) {
      server_.Post(path, [this, path](const httplib::Request& req, httplib::Response& res) {
        Record(path, req);
        res.set_content(R"({"status":"SUCCESS"})", "application/json");
      });
    }
    server_.Post("/flaky", [this](const httplib::Request& req, httplib::Response& res) {
      // The first attempt fails with 500 (retried), the next one succeeds with an empty body.
      res.status = Record("/flaky", req) == 1 ? 500 : 200;
    });
    server_.Post("/poison", [this](const httplib::Request& req, httplib::Response& res) {
      Record("/poison", req);
      res.set_content(R"({"status":"DROP"})", "application/json");
    });
    server_.Post("/echo", [this](const httplib::Request& req, httplib::Response& res) {
      Record("/echo", req);
      json answer{{"content_type", req.get_header_value("Content-Type")},
                  {"x", req.get_param_value("x")},
                  {"body", req.body}};
      res.set_content(answer.dump(), "application/json");
    });
    server_.Post("/broken", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("down for maintenance", "text/plain");
    });
  }

  void Start() {
    ASSERT_TRUE(server_.bind_to_port("127.0.0.1", port_));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }

  ~HttpApp() {
    server_.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  std::vector<Received> At(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Received> out;
    for (const auto& r : received_) {
      if (r.path == path) {
        out.push_back(r);
      }
    }
    return out;
  }

 private:
  // Returns how many requests reached `path` so far, this one included.
  int Record(const std::string& path, const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    Received r{path, req.get_header_value("dapr-api-token"), json::parse(req.body, nullptr, false)};
    received_.push_back(std::move(r));
    int count = 0;
    for (const auto& each : received_) {
      count += each.path == path ? 1 : 0;
    }
    return count;
  }

  uint16_t port_;
  httplib::Server server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Received> received_;
};

class DaprHttpAppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    app_port_ = FreePort();
    json config = InMemoryConfig("httpapp");
    config["app"]["callback"] = {{"address", "127.0.0.1:" + std::to_string(app_port_)},
                                 {"protocol", "http"},
                                 {"timeout_ms", 3000},
                                 {"api_token", "app-token"}};
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    const std::string& http = sidecar_->dapr_http_address();
    client_ = std::make_unique<httplib::Client>(http.substr(0, http.rfind(':')),
                                                std::stoi(http.substr(http.rfind(':') + 1)));
    // The app comes up after the sidecar, which keeps asking for its subscriptions.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    app_ = std::make_unique<HttpApp>(app_port_);
    app_->Start();
    ASSERT_TRUE(WaitFor(
        [&] {
          auto res = client_->Get("/v1.0/metadata");
          return res && res->status == 200 &&
                 json::parse(res->body).value("subscriptions", json::array()).size() == 5;
        },
        std::chrono::seconds(15)))
        << sidecar_->Stderr();
  }

  void Publish(const std::string& topic, const json& body) {
    auto res =
        client_->Post(("/v1.0/publish/pubsub/" + topic).c_str(), body.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 204) << res->body;
  }

  // The sidecar goes first: it closes its keep-alive connections, so the app stops at once.
  void TearDown() override { sidecar_.reset(); }

  uint16_t app_port_ = 0;
  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<httplib::Client> client_;
  std::unique_ptr<HttpApp> app_;
};

TEST_F(DaprHttpAppTest, SubscriptionsCarryTheAppToken) {
  auto asked = app_->At("/dapr/subscribe");
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked.back().token, "app-token");
}

TEST_F(DaprHttpAppTest, RulesPickTheRoute) {
  Publish("orders", {{"kind", "a"}, {"n", 1}});
  Publish("orders", {{"kind", "b"}, {"n", 2}});
  ASSERT_TRUE(WaitFor([&] { return app_->At("/a").size() == 1 && app_->At("/other").size() == 1; },
                      std::chrono::seconds(10)));
  Received a = app_->At("/a")[0];
  EXPECT_EQ(a.token, "app-token");
  // A CloudEvent whose data is the published JSON value.
  EXPECT_EQ(a.body["data"]["n"], 1);
  EXPECT_EQ(a.body["topic"], "orders");
  EXPECT_EQ(a.body["pubsubname"], "pubsub");
  EXPECT_EQ(a.body["source"], "httpapp");
  EXPECT_EQ(app_->At("/other")[0].body["data"]["kind"], "b");
}

TEST_F(DaprHttpAppTest, StatusRules) {
  Publish("flaky", {{"n", 1}});
  ASSERT_TRUE(WaitFor([&] { return app_->At("/flaky").size() == 2; }, std::chrono::seconds(10)));
  Publish("poison", {{"bad", true}});
  ASSERT_TRUE(WaitFor([&] { return app_->At("/dlq").size() == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(app_->At("/poison").size(), 1u);
  EXPECT_EQ(app_->At("/dlq")[0].body["data"]["bad"], true);
  Publish("gone", {{"n", 1}});  // 404: dropped, not redelivered
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(app_->At("/flaky").size(), 2u);
  auto metrics =
      RunProcess({"/usr/bin/curl", "-s", "http://" + sidecar_->actuator_address() + "/metrics"});
  EXPECT_NE(metrics.out.find(
                R"(ottava_pubsub_deliveries_total{pubsub="pubsub",topic="gone",outcome="drop"} 1)"),
            std::string::npos)
      << metrics.out.substr(0, 3000);
}

TEST_F(DaprHttpAppTest, InvokesTheOwnApp) {
  auto res = client_->Post("/v1.0/invoke/httpapp/method/echo?x=42", "hello", "text/plain");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json answer = json::parse(res->body);
  EXPECT_EQ(answer["content_type"], "text/plain");
  EXPECT_EQ(answer["x"], "42");
  EXPECT_EQ(answer["body"], "hello");
  EXPECT_EQ(app_->At("/echo").back().token, "app-token");

  auto broken = client_->Post("/v1.0/invoke/httpapp/method/broken", "", "text/plain");
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->status, 503) << broken->body;

  // Another app id has no mesh to go through.
  auto other = client_->Post("/v1.0/invoke/elsewhere/method/echo", "", "text/plain");
  ASSERT_TRUE(other);
  EXPECT_NE(other->status, 200);
  EXPECT_NE(other->body.find("no mesh"), std::string::npos) << other->body;
}

}  // namespace
}  // namespace ottava::test
