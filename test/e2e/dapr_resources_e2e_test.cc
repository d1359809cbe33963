// Dapr resource files through the real binary: the same Dapr HTTP app (state, and a declarative
// subscription delivered over HTTP) runs once with its components and subscription in the JSON
// config and once with them in YAML files under --resources-path; bad files stop startup with
// exit 2, naming the file, the document and the field.

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::test {
namespace {

using nlohmann::json;

// A Dapr HTTP app with no programmatic subscriptions: everything it gets comes from the
// declarative ones.
class App {
 public:
  App() {
    server_.Get("/dapr/subscribe", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("[]", "application/json");
    });
    for (const char* path : {"/orders", "/big"}) {
      server_.Post(path, [this, path](const httplib::Request& req, httplib::Response& res) {
        std::lock_guard<std::mutex> lock(mu_);
        received_.emplace_back(path, json::parse(req.body, nullptr, false));
        res.set_content(R"({"status":"SUCCESS"})", "application/json");
      });
    }
    port_ = static_cast<uint16_t>(server_.bind_to_any_port("127.0.0.1"));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~App() {
    server_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  // The data of every event POSTed to `path`.
  std::vector<json> At(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<json> out;
    for (const auto& [at, body] : received_) {
      if (at == path && body.is_object()) {
        out.push_back(body.value("data", json()));
      }
    }
    return out;
  }

 private:
  httplib::Server server_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::pair<std::string, json>> received_;
};

json BaseConfig(uint16_t app_port) {
  return json{{"app",
               {{"id", "yamlapp"},
                {"callback",
                 {{"address", "127.0.0.1:" + std::to_string(app_port)}, {"protocol", "http"}}}}},
              {"grpc", {{"address", "127.0.0.1:0"}}},
              {"actuator", {{"address", "127.0.0.1:0"}}},
              {"dapr", {{"http_address", "127.0.0.1:0"}}},
              {"shutdown", {{"drain_seconds", 1}}}};
}

std::string WriteDir(const std::vector<std::pair<std::string, std::string>>& files) {
  const std::string dir = MakeTempDir() + "/resources";
  std::filesystem::create_directories(dir);
  for (const auto& [name, text] : files) {
    std::ofstream(dir + "/" + name) << text;
  }
  return dir;
}

constexpr char kComponentsYaml[] = R"(apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.in-memory
  version: v1
  metadata:
  - name: keyPrefix
    value: "{appID}"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  version: v1
)";

constexpr char kSubscriptionYaml[] = R"(apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: orders
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    rules:
    - match: event.data.size == "big"
      path: /big
    default: /orders
scopes:
- yamlapp
)";

enum class Source { kJson, kYaml };

class DaprResourcesE2eTest : public ::testing::TestWithParam<Source> {
 protected:
  void SetUp() override {
    app_ = std::make_unique<App>();
    json config = BaseConfig(app_->port());
    std::vector<std::string> args;
    if (GetParam() == Source::kJson) {
      config["components"] = {{"state", {{"statestore", {{"type", "in-memory"}}}}},
                              {"pub_subs", {{"pubsub", {{"type", "in-memory"}}}}}};
      config["subscriptions"] = json::array({{{"pubsub_name", "pubsub"}, {"topic", "orders"}}});
    } else {
      // Split over two files, the way Dapr users keep them.
      args = {"--resources-path", WriteDir({{"components.yaml", kComponentsYaml},
                                            {"subscription.yml", kSubscriptionYaml}})};
    }
    auto sidecar = Sidecar::Start(config, std::chrono::seconds(15), args);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    client_ = std::make_unique<httplib::Client>("http://" + sidecar_->dapr_http_address());
    client_->set_read_timeout(5);
  }
  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  std::unique_ptr<App> app_;
  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_P(DaprResourcesE2eTest, StateAndSubscriptionWorkTheSame) {
  auto saved = client_->Post("/v1.0/state/statestore", R"([{"key":"order-1","value":{"qty":2}}])",
                             "application/json");
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->status, 204) << saved->body;
  auto got = client_->Get("/v1.0/state/statestore/order-1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(json::parse(got->body), json({{"qty", 2}}));
  EXPECT_FALSE(got->get_header_value("ETag").empty());

  auto metadata = client_->Get("/v1.0/metadata");
  ASSERT_TRUE(metadata);
  json described = json::parse(metadata->body);
  std::vector<std::string> names;
  for (const auto& component : described["components"]) {
    names.push_back(component["name"]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"statestore", "pubsub"})) << described.dump();
  ASSERT_TRUE(WaitFor([&] {
    auto res = client_->Get("/v1.0/metadata");
    return res && json::parse(res->body).value("subscriptions", json::array()).size() == 1;
  })) << sidecar_->Stderr();

  auto published = client_->Post("/v1.0/publish/pubsub/orders", R"({"id":1,"size":"small"})",
                                 "application/json");
  ASSERT_TRUE(published);
  EXPECT_EQ(published->status, 204) << published->body;
  ASSERT_TRUE(WaitFor([&] { return app_->At("/orders").size() == 1; })) << sidecar_->Stderr();
  EXPECT_EQ(app_->At("/orders")[0], json({{"id", 1}, {"size", "small"}}));

  if (GetParam() == Source::kYaml) {
    // The v2alpha1 routing rule sends big orders elsewhere.
    ASSERT_EQ(
        client_->Post("/v1.0/publish/pubsub/orders", R"({"id":2,"size":"big"})", "application/json")
            ->status,
        204);
    ASSERT_TRUE(WaitFor([&] { return app_->At("/big").size() == 1; })) << sidecar_->Stderr();
    EXPECT_EQ(app_->At("/big")[0]["id"], 2);
    EXPECT_EQ(app_->At("/orders").size(), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Both,
                         DaprResourcesE2eTest,
                         ::testing::Values(Source::kJson, Source::kYaml),
                         [](const ::testing::TestParamInfo<Source>& param_info) {
                           return param_info.param == Source::kJson ? "Json" : "Yaml";
                         });

// A Redis state store and lock declared in YAML reach a real redis-server.
TEST(DaprResourcesRedisTest, RedisComponentsFromYaml) {
  auto redis = RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  const std::string dir = WriteDir({{"redis.yaml", R"(apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec:
  type: state.redis
  version: v1
  metadata:
  - {name: redisHost, value: ")" + (*redis)->address() +
                                                       R"("}
  - {name: redisPassword, value: ""}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: lockstore}
spec:
  type: lock.redis
  version: v1
  metadata: [{name: redisHost, value: ")" + (*redis)->address() +
                                                       R"("}]
)"}});
  json config = BaseConfig(FreePort());
  config["app"].erase("callback");
  auto sidecar = Sidecar::Start(config, std::chrono::seconds(15), {"--resources-path", dir});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  httplib::Client client("http://" + (*sidecar)->dapr_http_address());
  ASSERT_EQ(
      client.Post("/v1.0/state/statestore", R"([{"key":"k","value":"v"}])", "application/json")
          ->status,
      204);
  // Dapr's layout: a hash under "<app id>||<key>".
  EXPECT_EQ((*redis)->Cli({"HGET", "yamlapp||k", "data"}), R"("v")");
  auto locked =
      client.Post("/v1.0-alpha1/lock/lockstore",
                  R"({"resourceId":"r","lockOwner":"o","expiryInSeconds":10})", "application/json");
  ASSERT_TRUE(locked);
  EXPECT_EQ(json::parse(locked->body)["success"], true) << locked->body;
  EXPECT_EQ((*sidecar)->Stop(SIGTERM), 0) << (*sidecar)->Stderr();
}

// Runs the binary with a config and one resource file; returns its result.
RunResult RunWith(const json& config, const std::string& yaml, const std::string& file) {
  const std::string dir = WriteDir({{file, yaml}});
  const std::string config_file = MakeTempDir() + "/config.json";
  std::ofstream(config_file) << config.dump();
  return RunProcess({BinDir() + "/ottava", "--config", config_file, "--resources-path", dir},
                    std::chrono::seconds(20));
}

TEST(DaprResourcesBadFilesTest, FailStartupWithExit2NamingFileDocumentAndField) {
  json config = BaseConfig(FreePort());
  RunResult secret = RunWith(config, std::string(kComponentsYaml) + R"(---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: cache}
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    secretKeyRef: {name: redis-secret, key: password}
)",
                             "components.yaml");
  EXPECT_EQ(secret.exit_code, 2) << secret.err;
  EXPECT_NE(secret.err.find("components.yaml: document 2: spec.metadata[1].secretKeyRef: "
                            "secretKeyRef is not supported"),
            std::string::npos)
      << secret.err;

  RunResult bad_type = RunWith(config, R"(apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec: {type: bindings.http, version: v1}
)",
                               "bindings.yml");
  EXPECT_EQ(bad_type.exit_code, 2) << bad_type.err;
  EXPECT_NE(bad_type.err.find("bindings.yml: document 0: spec.type: unsupported type "
                              "'bindings.http'"),
            std::string::npos)
      << bad_type.err;

  RunResult syntax = RunWith(config, "kind: [Component\n", "broken.yaml");
  EXPECT_EQ(syntax.exit_code, 2) << syntax.err;
  EXPECT_NE(syntax.err.find("broken.yaml: line "), std::string::npos) << syntax.err;

  // A name the JSON config has too: both places are named.
  config["components"] = {{"state", {{"statestore", {{"type", "in-memory"}}}}}};
  RunResult collision = RunWith(config, kComponentsYaml, "components.yaml");
  EXPECT_EQ(collision.exit_code, 2) << collision.err;
  EXPECT_NE(collision.err.find("components.yaml: document 0: metadata.name: component "
                               "state/statestore is also defined in "),
            std::string::npos)
      << collision.err;
  EXPECT_NE(collision.err.find("config.json at /components/state/statestore"), std::string::npos)
      << collision.err;
}

TEST(DaprResourcesBadFilesTest, ValidateReadsResourcesToo) {
  const std::string dir = WriteDir({{"components.yaml", kComponentsYaml}});
  const std::string config_file = MakeTempDir() + "/config.json";
  std::ofstream(config_file) << BaseConfig(FreePort()).dump();
  RunResult ok = RunProcess(
      {BinDir() + "/ottava", "validate", "--config", config_file, "--resources-path", dir});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("2 components"), std::string::npos) << ok.out;
}

}  // namespace
}  // namespace ottava::test
