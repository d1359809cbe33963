#include "runtime/config/bootstrap.h"

#include <gtest/gtest.h>

#include <fstream>

namespace ottava::runtime::config {
namespace {

// Each rejected config must name the JSON pointer of the offending key.
struct Rejected {
  const char* name;
  const char* json;
  const char* pointer;
  const char* reason;
};

class RejectedConfigTest : public ::testing::TestWithParam<Rejected> {};

TEST_P(RejectedConfigTest, NamesTheKey) {
  const Rejected& c = GetParam();
  absl::StatusOr<Bootstrap> bootstrap = ParseBootstrap(c.json);
  ASSERT_FALSE(bootstrap.ok()) << c.name;
  EXPECT_EQ(bootstrap.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(bootstrap.status().message());
  EXPECT_EQ(message.rfind(std::string(c.pointer) + ": ", 0), 0u) << message;
  EXPECT_NE(message.find(c.reason), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Config,
    RejectedConfigTest,
    ::testing::Values(
        Rejected{"syntax", "{\"app\": ", "/", "invalid JSON"},
        Rejected{"root not object", "[]", "/", "expected an object"},
        Rejected{"unknown top-level key", R"({"apps": {}})", "/apps", "unknown key"},
        Rejected{"unknown nested key", R"({"grpc": {"adress": "127.0.0.1:1"}})", "/grpc/adress",
                 "unknown key"},
        Rejected{"bad address", R"({"grpc": {"address": "localhost"}})", "/grpc/address",
                 "host:port"},
        Rejected{"bad port", R"({"actuator": {"address": "127.0.0.1:99999"}})", "/actuator/address",
                 "port"},
        Rejected{"message size type", R"({"grpc": {"max_message_bytes": "4MB"}})",
                 "/grpc/max_message_bytes", "expected an integer"},
        Rejected{"message size range", R"({"grpc": {"max_message_bytes": 10}})",
                 "/grpc/max_message_bytes", "between"},
        Rejected{"connection age range", R"({"grpc": {"max_connection_age_ms": -1}})",
                 "/grpc/max_connection_age_ms", "between"},
        Rejected{"log level", R"({"log": {"level": "loud"}})", "/log/level", "unknown level"},
        Rejected{"drain", R"({"shutdown": {"drain_seconds": -1}})", "/shutdown/drain_seconds",
                 "between"},
        Rejected{"app id", R"({"app": {"id": ""}})", "/app/id", "must not be empty"},
        Rejected{"app id separator", R"({"app": {"id": "a||b"}})", "/app/id", "||"},
        Rejected{"callback protocol", R"({"app": {"callback": {"protocol": "soap"}}})",
                 "/app/callback/protocol", "unsupported protocol"},
        Rejected{"empty api token", R"({"api_token": ""})", "/api_token", "must not be empty"},
        Rejected{"api token with a space", R"({"api_token": "a b"})", "/api_token",
                 "printable ASCII"},
        Rejected{"api token type", R"({"api_token": 5})", "/api_token", "expected a string"},
        Rejected{"app token with a newline", R"({"app": {"callback": {"api_token": "a\nb"}}})",
                 "/app/callback/api_token", "printable ASCII"},
        Rejected{"unknown kind", R"({"components": {"states": {}}})", "/components/states",
                 "unknown key"},
        Rejected{"missing type", R"({"components": {"state": {"main": {}}}})",
                 "/components/state/main/type", "is required"},
        Rejected{"metadata not string",
                 R"({"components": {"state": {"main": {"type": "in-memory",
                     "metadata": {"ttl": 5}}}}})",
                 "/components/state/main/metadata/ttl", "metadata values are strings"},
        Rejected{"component unknown key",
                 R"({"components": {"lock": {"l": {"type": "in-memory", "requried": false}}}})",
                 "/components/lock/l/requried", "unknown key"},
        Rejected{"pointer escaping", R"({"components": {"state": {"a/b~c": {"type": 1}}}})",
                 "/components/state/a~1b~0c/type", "expected a string"},
        Rejected{"subscription without callback",
                 R"({"components": {"pub_subs": {"bus": {"type": "in-memory"}}},
                     "subscriptions": [{"pubsub_name": "bus", "topic": "t"}]})",
                 "/subscriptions/0", "/app/callback"},
        Rejected{"subscription unknown pubsub",
                 R"({"app": {"callback": {}},
                     "components": {"pub_subs": {"bus": {"type": "in-memory"}}},
                     "subscriptions": [{"pubsub_name": "nope", "topic": "t"}]})",
                 "/subscriptions/0/pubsub_name", "no pub_subs component named 'nope'"},
        Rejected{"subscription retries",
                 R"({"app": {"callback": {}},
                     "components": {"pub_subs": {"bus": {"type": "in-memory"}}},
                     "subscriptions": [{"pubsub_name": "bus", "topic": "t", "max_retries": -2}]})",
                 "/subscriptions/0/max_retries", "between"},
        Rejected{"subscription dead letter loop",
                 R"({"app": {"callback": {}},
                     "components": {"pub_subs": {"bus": {"type": "in-memory"}}},
                     "subscriptions": [{"pubsub_name": "bus", "topic": "t",
                                        "dead_letter_topic": "t"}]})",
                 "/subscriptions/0/dead_letter_topic", "must differ"},
        Rejected{"fallback cluster without a mesh",
                 R"({"flow_control": {"reply": {"fallback_cluster": "down"}}})",
                 "/flow_control/reply/fallback_cluster", "no mesh cluster named 'down'"},
        Rejected{
            "fallback cluster unknown",
            R"({"mesh": {"listeners": [{"name": "l", "address": "127.0.0.1:0", "protocol": "http1",
                                             "router": "r"}],
                              "routers": [{"name": "r", "routes": [{"match": {},
                                                                    "cluster": "c"}]}],
                              "clusters": [{"name": "c", "hosts": [{"address": "127.0.0.1:1"}]}]},
                     "flow_control": {"rules": [{"id": "q", "resource": "/a", "kind": "qps",
                                                 "threshold": 1,
                                                 "reply": {"fallback_cluster": "d"}}]}})",
            "/flow_control/rules/0/reply/fallback_cluster", "no mesh cluster named 'd'"},
        Rejected{"subscription bulk count",
                 R"({"app": {"callback": {}},
                     "components": {"pub_subs": {"bus": {"type": "in-memory"}}},
                     "subscriptions": [{"pubsub_name": "bus", "topic": "t",
                                        "bulk_subscribe": {"max_messages_count": 20000}}]})",
                 "/subscriptions/0/bulk_subscribe/max_messages_count", "between"},
        Rejected{"subscription bulk unknown key",
                 R"({"app": {"callback": {}},
                     "components": {"pub_subs": {"bus": {"type": "in-memory"}}},
                     "subscriptions": [{"pubsub_name": "bus", "topic": "t",
                                        "bulk_subscribe": {"maxMessagesCount": 2}}]})",
                 "/subscriptions/0/bulk_subscribe/maxMessagesCount", "unknown key"}),
    [](const ::testing::TestParamInfo<Rejected>& param_info) {
      std::string name = param_info.param.name;
      for (char& c : name) {
        if (!isalnum(static_cast<unsigned char>(c))) {
          c = '_';
        }
      }
      return name;
    });

TEST(BootstrapTest, DefaultsMatchTheDesign) {
  absl::StatusOr<Bootstrap> bootstrap = ParseBootstrap("{}");
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  EXPECT_EQ(bootstrap->grpc_address.ToString(), "127.0.0.1:34904");
  EXPECT_EQ(bootstrap->actuator_address.ToString(), "127.0.0.1:34999");
  EXPECT_EQ(bootstrap->max_message_bytes, 4 * 1024 * 1024);
  EXPECT_EQ(bootstrap->drain_seconds, 5);
  EXPECT_EQ(bootstrap->grpc_max_connection_age_ms, 3000);
  EXPECT_FALSE(bootstrap->app.callback.has_value());
}

TEST(BootstrapTest, ParsesAFullConfig) {
  absl::StatusOr<Bootstrap> bootstrap = ParseBootstrap(R"({
    "app": {"id": "orders", "callback": {"address": "127.0.0.1:9999", "protocol": "auto"}},
    "grpc": {"address": "127.0.0.1:0", "max_message_bytes": 1048576,
             "max_connection_age_ms": 0},
    "components": {
      "pub_subs": {"bus": {"type": "in-memory"}},
      "state": {"cache": {"type": "in-memory", "required": false},
                "main": {"type": "in-memory", "metadata": {"keyPrefix": "name"}}}
    },
    "subscriptions": [{"pubsub_name": "bus", "topic": "orders", "dead_letter_topic": "dlq",
                       "max_retries": 3, "concurrency": 4,
                       "bulk_subscribe": {"enabled": true, "max_messages_count": 20}}],
    "mesh": {"workers": 2, "listeners": [], "routers": [], "clusters": []}
  })");
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  EXPECT_EQ(bootstrap->app.id, "orders");
  ASSERT_TRUE(bootstrap->app.callback.has_value());
  EXPECT_EQ(bootstrap->app.callback->address.port, 9999);
  EXPECT_EQ(bootstrap->grpc_address.port, 0);
  EXPECT_EQ(bootstrap->grpc_max_connection_age_ms, 0);
  ASSERT_EQ(bootstrap->components.size(), 3u);
  // Fixed kind order (state before pub_subs) whatever the file order.
  EXPECT_EQ(bootstrap->components[0].kind, components::Kind::kState);
  EXPECT_EQ(bootstrap->components[2].kind, components::Kind::kPubSub);
  const ComponentConfig* cache = bootstrap->FindComponent(components::Kind::kState, "cache");
  ASSERT_NE(cache, nullptr);
  EXPECT_FALSE(cache->required);
  EXPECT_EQ(cache->pointer, "/components/state/cache");
  ASSERT_EQ(bootstrap->subscriptions.size(), 1u);
  EXPECT_EQ(bootstrap->subscriptions[0].max_retries, 3);
  EXPECT_EQ(bootstrap->subscriptions[0].concurrency, 4);
  EXPECT_TRUE(bootstrap->subscriptions[0].bulk.enabled);
  EXPECT_EQ(bootstrap->subscriptions[0].bulk.max_messages_count, 20);
  EXPECT_EQ(bootstrap->subscriptions[0].bulk.max_await_duration_ms, 0);  // Dapr's default
  ASSERT_TRUE(bootstrap->mesh.has_value());
  EXPECT_EQ(bootstrap->mesh->workers, 2u);
}

TEST(BootstrapTest, LoadNamesTheFile) {
  const std::string path = ::testing::TempDir() + "/bad.json";
  std::ofstream(path) << R"({"grpc": {"address": 5}})";
  absl::StatusOr<Bootstrap> bootstrap = LoadBootstrap(path);
  ASSERT_FALSE(bootstrap.ok());
  EXPECT_EQ(std::string(bootstrap.status().message()),
            path + ": /grpc/address: expected a string, got number");
  EXPECT_FALSE(LoadBootstrap("/nonexistent/file.json").ok());
}

TEST(BootstrapTest, ShippedConfigsAreValid) {
  const char* root = std::getenv("OTTAVA_SOURCE_DIR");
  ASSERT_NE(root, nullptr);
  for (const char* file :
       {"/configs/quickstart.json", "/configs/with-app-callback.json", "/configs/redis.json"}) {
    absl::StatusOr<Bootstrap> bootstrap = LoadBootstrap(std::string(root) + file);
    EXPECT_TRUE(bootstrap.ok()) << bootstrap.status();
  }
}

}  // namespace
}  // namespace ottava::runtime::config
