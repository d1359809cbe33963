// Dapr's bulk subscribe through the real binary:
// - the official JS SDK (test/interop/dapr/bulk_test.js): a DaprServer subscribed with
//   `subscribeBulk` over gRPC (the SDK serves only OnBulkTopicEventAlpha1, so the sidecar falls
//   back from OnBulkTopicEvent) and over HTTP; 50 events published one by one and through
//   BulkPublishEvent all arrive, the one answered RETRY comes again, the one answered DROP not;
// - a plain HTTP app whose bulk subscription comes from a Subscription YAML (`bulkSubscribe`
//   under --resources-path): the bulk envelope's shape, batches capped at maxMessagesCount, and
//   per-entry statuses (RETRY, DROP to the dead-letter topic, an entry left out retried).
//
// The SDK tests are skipped with a message when test/interop/dapr/node_modules is missing
// (scripts/setup.sh runs npm ci there).

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::test {
namespace {

using nlohmann::json;

std::string PeerDir() {
  const char* source = std::getenv("OTTAVA_SOURCE_DIR");
  return std::string(source != nullptr ? source : ".") + "/test/interop/dapr";
}

int PortOf(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

std::string Metrics(const Sidecar& sidecar) {
  return RunProcess({"/usr/bin/curl", "-s", "http://" + sidecar.actuator_address() + "/metrics"})
      .out;
}

double Sample(const std::string& page, const std::string& series) {
  return MetricSample(page, series).value_or(-1);
}

class DaprBulkSdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st {};
    if (stat((PeerDir() + "/node_modules/@dapr/dapr/package.json").c_str(), &st) != 0) {
      GTEST_SKIP() << "@dapr/dapr is not installed in " << PeerDir()
                   << "/node_modules (scripts/setup.sh runs npm ci there)";
    }
  }

  // Starts the sidecar for an app on `app_protocol`, runs the script over `sdk_protocol` and
  // checks what it and the sidecar's counters say.
  void Run(const std::string& app_protocol, const std::string& sdk_protocol) {
    const uint16_t app_port = FreePort();
    json config = InMemoryConfig("bulkapp");
    config["app"]["callback"] = {{"address", "127.0.0.1:" + std::to_string(app_port)},
                                 {"protocol", app_protocol},
                                 {"timeout_ms", 5000}};
    config["api_token"] = "bulk-token";
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    const std::string& sdk_address =
        sdk_protocol == "grpc" ? (*sidecar)->grpc_address() : (*sidecar)->dapr_http_address();
    RunResult result =
        RunProcess({"/usr/bin/env", "node", PeerDir() + "/bulk_test.js", "--protocol", sdk_protocol,
                    "--dapr-port", std::to_string(PortOf(sdk_address)), "--http-port",
                    std::to_string(PortOf((*sidecar)->dapr_http_address())), "--app-port",
                    std::to_string(app_port), "--token", "bulk-token"},
                   std::chrono::seconds(120));
    EXPECT_EQ(result.exit_code, 0) << result.out << "\nstderr:\n" << result.err.substr(0, 4000);
    for (const char* check : {"app started", "bulk subscription discovered", "publish 50 events",
                              "every event delivered", "RETRY redelivered, DROP and SUCCESS not"}) {
      EXPECT_NE(result.out.find(std::string("PASS ") + check + "\n"), std::string::npos)
          << "missing PASS " << check << " in:\n"
          << result.out << "\nsidecar:\n"
          << (*sidecar)->Stderr().substr(0, 4000);
    }
    EXPECT_NE((*sidecar)->Stderr().find("bulk: up to 10 events or 300 ms"), std::string::npos)
        << (*sidecar)->Stderr();
    // The events went in batches (at most 10 each), and each verdict was applied per event.
    const std::string page = Metrics(**sidecar);
    const std::string labels = R"({pubsub="pubsub",topic="bulk")";
    const double batches = Sample(page, "ottava_pubsub_bulk_batches_total" + labels + "}");
    EXPECT_GE(batches, 5) << page.substr(0, 3000);
    EXPECT_LE(batches, 30) << page.substr(0, 3000);
    EXPECT_EQ(Sample(page, "ottava_pubsub_deliveries_total" + labels + R"(,outcome="success"})"),
              49);
    EXPECT_EQ(Sample(page, "ottava_pubsub_deliveries_total" + labels + R"(,outcome="retry"})"), 1);
    EXPECT_EQ(Sample(page, "ottava_pubsub_deliveries_total" + labels + R"(,outcome="drop"})"), 1);
  }
};

TEST_F(DaprBulkSdkTest, GrpcAppGetsBatchesThroughAlpha1) {
  Run("dapr-grpc", "grpc");
}

TEST_F(DaprBulkSdkTest, HttpAppGetsBulkPosts) {
  Run("http", "http");
}

// A Dapr HTTP app without an SDK: records every bulk POST to /bulk and answers from a script.
class BulkHttpApp {
 public:
  explicit BulkHttpApp(uint16_t port) {
    server_.Post("/bulk", [this](const httplib::Request& req, httplib::Response& res) {
      json body = json::parse(req.body, nullptr, false);
      json statuses = json::array();
      std::lock_guard<std::mutex> lock(mu_);
      posts_.push_back(body);
      content_types_.push_back(req.get_header_value("Content-Type"));
      if (!body.is_object() || !body["entries"].is_array()) {
        res.status = 400;
        return;
      }
      for (const json& entry : body["entries"]) {
        const std::string n = std::to_string(entry["event"]["data"].value("n", -1));
        const int seen = ++seen_[n];
        if (n == "3" && seen == 1) {
          statuses.push_back({{"entryId", entry["entryId"]}, {"status", "RETRY"}});
        } else if (n == "4") {
          statuses.push_back({{"entryId", entry["entryId"]}, {"status", "DROP"}});
        } else if (n == "5" && seen == 1) {
          continue;  // left out of the answer: daprd retries it
        } else {
          statuses.push_back({{"entryId", entry["entryId"]}, {"status", "SUCCESS"}});
        }
      }
      res.set_content(json{{"statuses", statuses}}.dump(), "application/json");
    });
    server_.Post("/dlq", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      dead_letters_.push_back(json::parse(req.body, nullptr, false));
      res.set_content(R"({"status":"SUCCESS"})", "application/json");
    });
    EXPECT_TRUE(server_.bind_to_port("127.0.0.1", port));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~BulkHttpApp() {
    server_.stop();
    thread_.join();
  }

  std::vector<json> Posts() {
    std::lock_guard<std::mutex> lock(mu_);
    return posts_;
  }
  std::vector<std::string> ContentTypes() {
    std::lock_guard<std::mutex> lock(mu_);
    return content_types_;
  }
  std::map<std::string, int> Seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  std::vector<json> DeadLetters() {
    std::lock_guard<std::mutex> lock(mu_);
    return dead_letters_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<json> posts_;
  std::vector<std::string> content_types_;
  std::map<std::string, int> seen_;  // event n -> deliveries
  std::vector<json> dead_letters_;
};

constexpr char kSubscriptionsYaml[] = R"(apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: bulk-orders
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    default: /bulk
  deadLetterTopic: orders-dlq
  bulkSubscribe:
    enabled: true
    maxMessagesCount: 4
    maxAwaitDurationMs: 200
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: orders-dlq
spec:
  pubsubname: pubsub
  topic: orders-dlq
  route: /dlq
)";

TEST(DaprBulkHttpTest, YamlBulkSubscriptionGetsPerEntryStatuses) {
  const std::string dir = ::testing::TempDir() + "/bulk-resources-" + std::to_string(getpid());
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  std::ofstream(dir + "/subscriptions.yaml") << kSubscriptionsYaml;
  const uint16_t app_port = FreePort();
  BulkHttpApp app(app_port);
  json config = InMemoryConfig("bulkhttp");
  config["app"]["callback"] = {{"address", "127.0.0.1:" + std::to_string(app_port)},
                               {"protocol", "http"},
                               {"timeout_ms", 3000}};
  auto sidecar = Sidecar::Start(config, std::chrono::seconds(15), {"--resources-path", dir});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const std::string& address = (*sidecar)->dapr_http_address();
  httplib::Client client(address.substr(0, address.rfind(':')), PortOf(address));
  for (int n = 0; n < 10; ++n) {
    auto res =
        client.Post("/v1.0/publish/pubsub/orders", json{{"n", n}}.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 204) << res->body;
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        auto seen = app.Seen();
        return seen.size() == 10 && seen["3"] == 2 && seen["5"] == 2 && !app.DeadLetters().empty();
      },
      std::chrono::seconds(15)))
      << (*sidecar)->Stderr();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // nothing else comes back
  auto seen = app.Seen();
  for (const auto& [n, times] : seen) {
    EXPECT_EQ(times, n == "3" || n == "5" ? 2 : 1) << "event " << n;
  }
  auto dead = app.DeadLetters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["data"]["n"], 4);

  auto posts = app.Posts();
  ASSERT_GE(posts.size(), 3u);  // 10 events in batches of at most 4, then the redeliveries
  for (const json& post : posts) {
    EXPECT_LE(post["entries"].size(), 4u) << post.dump();
  }
  const json& first = posts[0];
  EXPECT_EQ(first["type"], "com.dapr.event.sent.bulk");
  EXPECT_EQ(first["topic"], "orders");
  EXPECT_EQ(first["pubsubname"], "pubsub");
  EXPECT_TRUE(first["id"].is_string() && !first["id"].get<std::string>().empty());
  const json& entry = first["entries"][0];
  EXPECT_TRUE(entry["entryId"].is_string());
  EXPECT_EQ(entry["contentType"], "application/cloudevents+json");
  EXPECT_EQ(entry["event"]["source"], "bulkhttp");
  EXPECT_EQ(entry["event"]["data"]["n"], 0);
  EXPECT_EQ(app.ContentTypes()[0], "application/json");
}

}  // namespace
}  // namespace ottava::test
