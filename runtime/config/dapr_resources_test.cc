#include "runtime/config/dapr_resources.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>

namespace ottava::runtime::config {
namespace {

using components::Kind;

DaprResources Parse(const std::string& yaml, const std::string& app_id = "orders") {
  DaprResources out;
  absl::Status status = ParseDaprResources(yaml, "res.yaml", app_id, &out);
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

TEST(DaprResourcesTest, ComponentsOfEveryTypeMapOntoOurs) {
  DaprResources r = Parse(R"(
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
  namespace: default
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    value: ""
  - name: keyPrefix
    value: "{appID}-x"
  - name: actorStateStore
    value: "true"
  - name: enableTLS
    value: "false"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: cache}
spec: {type: state.in-memory, version: v1, ignoreErrors: true}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: bus}
spec:
  type: pubsub.kafka
  version: v1
  metadata:
  - {name: brokers, value: "127.0.0.1:9092"}
  - {name: consumerID, value: group-a}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: redis-bus}
spec: {type: pubsub.redis, version: v1, metadata: [{name: redisHost, value: "h:1"}]}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: mem-bus}
spec: {type: pubsub.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: lockstore}
spec: {type: lock.redis, version: v1, metadata: [{name: redisHost, value: "h:1"}]}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: configstore}
spec: {type: configuration.redis, version: v1, metadata: [{name: redisHost, value: "h:1"}]}
---
)");
  ASSERT_EQ(r.components.size(), 7u);
  const ComponentConfig& state = r.components[0];
  EXPECT_EQ(state.kind, Kind::kState);
  EXPECT_EQ(state.name, "statestore");
  EXPECT_EQ(state.type, "redis");
  EXPECT_TRUE(state.required);
  EXPECT_EQ(state.pointer, "res.yaml: document 0");
  EXPECT_EQ(state.metadata, (components::Metadata{{"redisHost", "localhost:6379"},
                                                  {"redisPassword", ""},
                                                  {"keyPrefix", "orders-x"}}));
  EXPECT_EQ(r.components[1].type, "in-memory");
  EXPECT_FALSE(r.components[1].required);  // ignoreErrors
  EXPECT_EQ(r.components[2].kind, Kind::kPubSub);
  EXPECT_EQ(r.components[2].type, "kafka");
  EXPECT_EQ(r.components[2].metadata,
            (components::Metadata{{"brokers", "127.0.0.1:9092"}, {"consumerGroup", "group-a"}}));
  EXPECT_EQ(r.components[3].type, "redis");
  EXPECT_EQ(r.components[3].kind, Kind::kPubSub);
  EXPECT_EQ(r.components[4].type, "in-memory");
  EXPECT_EQ(r.components[5].kind, Kind::kLock);
  EXPECT_EQ(r.components[6].kind, Kind::kConfigStore);
  EXPECT_EQ(r.components[6].type, "redis");
}

TEST(DaprResourcesTest, EnvRefScopesAndOtherKinds) {
  setenv("OTTAVA_TEST_REDIS_HOST", "10.0.0.1:6380", 1);
  DaprResources r = Parse(R"(
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: s}
spec:
  type: state.redis
  version: v1
  metadata: [{name: redisHost, envRef: OTTAVA_TEST_REDIS_HOST}]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: other-apps-only}
spec: {type: state.in-memory, version: v1}
scopes: [billing]
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: tracing}
spec: {tracing: {samplingRate: "1"}}
)");
  ASSERT_EQ(r.components.size(), 1u);
  EXPECT_EQ(r.components[0].metadata.at("redisHost"), "10.0.0.1:6380");
}

TEST(DaprResourcesTest, SubscriptionsOfBothVersions) {
  DaprResources r = Parse(R"(
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: orders-sub}
spec:
  topic: orders
  route: /orders
  pubsubname: pubsub
scopes: [orders]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: payments-sub}
spec:
  pubsubname: pubsub
  topic: payments
  metadata: {consumerID: c1}
  routes:
    rules:
    - match: event.type == "big"
      path: /big
    default: /payments
  deadLetterTopic: payments-dlq
  bulkSubscribe: {enabled: true, maxMessagesCount: 10}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: not-mine}
spec: {pubsubname: pubsub, topic: t, routes: {default: /t}}
scopes: [billing]
)");
  ASSERT_EQ(r.subscriptions.size(), 2u);
  EXPECT_EQ(r.subscriptions[0].pubsub_name, "pubsub");
  EXPECT_EQ(r.subscriptions[0].topic, "orders");
  EXPECT_EQ(r.subscriptions[0].default_route, "/orders");
  EXPECT_TRUE(r.subscriptions[0].rules.empty());
  const SubscriptionConfig& v2 = r.subscriptions[1];
  EXPECT_EQ(v2.topic, "payments");
  EXPECT_EQ(v2.dead_letter_topic, "payments-dlq");
  EXPECT_EQ(v2.default_route, "/payments");
  ASSERT_EQ(v2.rules.size(), 1u);
  EXPECT_EQ(v2.rules[0].match, "event.type == \"big\"");
  EXPECT_EQ(v2.rules[0].path, "/big");
  EXPECT_EQ(v2.metadata.at("consumerID"), "c1");
  EXPECT_TRUE(v2.bulk.enabled);
  EXPECT_EQ(v2.bulk.max_messages_count, 10);
  EXPECT_EQ(v2.bulk.max_await_duration_ms, 0);  // Dapr's default applies
  EXPECT_FALSE(r.subscriptions[0].bulk.enabled);
  EXPECT_EQ(r.subscription_origins[1], "res.yaml: document 1");
}

// Each bad document names the file, the document and the field.
struct Bad {
  const char* name;
  const char* yaml;
  const char* message;  // the expected start of the error
  const char* reason;   // contained in the error
};

class BadResourceTest : public ::testing::TestWithParam<Bad> {};

TEST_P(BadResourceTest, NamesFileDocumentAndField) {
  const Bad& c = GetParam();
  DaprResources out;
  absl::Status status = ParseDaprResources(c.yaml, "res.yaml", "orders", &out);
  ASSERT_FALSE(status.ok()) << c.name;
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  EXPECT_EQ(message.rfind(c.message, 0), 0u) << message;
  EXPECT_NE(message.find(c.reason), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Yaml,
    BadResourceTest,
    ::testing::Values(
        Bad{"syntax", "kind: Component\nspec: [a, b\n", "res.yaml: line ", "invalid YAML"},
        Bad{"not a map", "- a\n- b\n", "res.yaml: document 0: ", "expected a map"},
        Bad{"no kind", "apiVersion: dapr.io/v1alpha1\n",
            "res.yaml: document 0: kind: ", "required"},
        Bad{"secretKeyRef",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec:\n  type: state.redis\n  version: v1\n  metadata:\n"
            "  - name: redisHost\n    value: h:1\n"
            "  - name: redisPassword\n    secretKeyRef: {name: redis, key: password}\n"
            "auth: {secretStore: kubernetes}\n",
            "res.yaml: document 0: spec.metadata[1].secretKeyRef: ", "not supported"},
        Bad{"second document",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: ok}\n"
            "spec: {type: state.in-memory, version: v1}\n---\nkind: Component\n",
            "res.yaml: document 1: apiVersion: ", "required"},
        Bad{"unknown type",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: secretstores.local.file, version: v1}\n",
            "res.yaml: document 0: spec.type: ", "unsupported type 'secretstores.local.file'"},
        Bad{"bad version",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v2}\n",
            "res.yaml: document 0: spec.version: ", "unsupported version 'v2'"},
        Bad{"no version",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis}\n",
            "res.yaml: document 0: spec.version: ", "required"},
        Bad{"bad apiVersion",
            "apiVersion: dapr.io/v2alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1}\n",
            "res.yaml: document 0: apiVersion: ", "dapr.io/v1alpha1"},
        Bad{"no name",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {}\n"
            "spec: {type: state.redis, version: v1}\n",
            "res.yaml: document 0: metadata.name: ", "required"},
        Bad{"unknown spec key",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1, metdata: []}\n",
            "res.yaml: document 0: spec.metdata: ", "unknown key"},
        Bad{"metadata not a list",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1, metadata: {redisHost: h}}\n",
            "res.yaml: document 0: spec.metadata: ", "expected a list"},
        Bad{"metadata item without name",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1, metadata: [{value: h}]}\n",
            "res.yaml: document 0: spec.metadata[0].name: ", "required"},
        Bad{"duplicate metadata",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1, metadata: [{name: a, value: x}, "
            "{name: a, value: y}]}\n",
            "res.yaml: document 0: spec.metadata[1].name: ", "given twice"},
        Bad{"value is a map",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1, metadata: [{name: a, value: {b: c}}]}\n",
            "res.yaml: document 0: spec.metadata[0].value: ", "expected a string"},
        Bad{"unset envRef",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1, metadata: [{name: a, envRef: "
            "OTTAVA_NO_SUCH_VARIABLE}]}\n",
            "res.yaml: document 0: spec.metadata[0].envRef: ", "is not set"},
        Bad{"TLS refused",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1, metadata: [{name: enableTLS, value: "
            "\"true\"}]}\n",
            "res.yaml: document 0: spec.metadata.enableTLS: ", "TLS to Redis is not supported"},
        Bad{"bad ignoreErrors",
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\n"
            "spec: {type: state.redis, version: v1, ignoreErrors: maybe}\n",
            "res.yaml: document 0: spec.ignoreErrors: ", "true or false"},
        Bad{"bad bulkSubscribe count",
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t, routes: {default: /t}, "
            "bulkSubscribe: {enabled: true, maxMessagesCount: many}}\n",
            "res.yaml: document 0: spec.bulkSubscribe.maxMessagesCount: ", "whole number"},
        Bad{"unknown bulkSubscribe key",
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t, routes: {default: /t}, "
            "bulkSubscribe: {enabled: true, maxMessages: 5}}\n",
            "res.yaml: document 0: spec.bulkSubscribe.maxMessages: ", "unknown key"},
        Bad{"v1 subscription without route",
            "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t}\n",
            "res.yaml: document 0: spec.route: ", "required"},
        Bad{"v1 subscription with routes",
            "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t, routes: {default: /x}}\n",
            "res.yaml: document 0: spec.routes: ", "v2alpha1"},
        Bad{"v2 subscription without routes",
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t}\n",
            "res.yaml: document 0: spec.routes: ", "required"},
        Bad{"v2 empty routes",
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t, routes: {}}\n",
            "res.yaml: document 0: spec.routes: ", "rules or a default"},
        Bad{"bad rule",
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t, routes: {rules: [{match: 'event.type ==', "
            "path: /a}]}}\n",
            "res.yaml: document 0: spec.routes.rules[0].match: ", ""},
        Bad{"rule without path",
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t, routes: {rules: [{match: 'event.type == \"a\"'}]}}\n",
            "res.yaml: document 0: spec.routes.rules[0].path: ", "required"},
        Bad{"subscription without topic",
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, routes: {default: /a}}\n",
            "res.yaml: document 0: spec.topic: ", "required"},
        Bad{"dead letter is the topic",
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t, routes: {default: /a}, deadLetterTopic: t}\n",
            "res.yaml: document 0: spec.deadLetterTopic: ", "must differ"},
        Bad{"bad subscription apiVersion",
            "apiVersion: dapr.io/v3\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: p, topic: t, route: /a}\n",
            "res.yaml: document 0: apiVersion: ", "v2alpha1"}),
    [](const ::testing::TestParamInfo<Bad>& param_info) {
      std::string name = param_info.param.name;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) {
          c = '_';
        }
      }
      return name;
    });

Bootstrap JsonConfig() {
  absl::StatusOr<Bootstrap> bootstrap = ParseBootstrap(R"({
    "app": {"id": "orders", "callback": {"address": "127.0.0.1:9999", "protocol": "http"}},
    "components": {"state": {"statestore": {"type": "in-memory"}},
                   "pub_subs": {"pubsub": {"type": "in-memory"}}},
    "subscriptions": [{"pubsub_name": "pubsub", "topic": "from-json"}]})");
  EXPECT_TRUE(bootstrap.ok()) << bootstrap.status();
  return *bootstrap;
}

TEST(DaprResourcesMergeTest, AddsComponentsInOrderAndSubscriptions) {
  Bootstrap bootstrap = JsonConfig();
  DaprResources r = Parse(R"(
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: bus}
spec: {type: pubsub.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: a-store}
spec: {type: state.in-memory, version: v1}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: s}
spec: {pubsubname: bus, topic: orders, routes: {default: /orders}}
)");
  ASSERT_TRUE(MergeDaprResources(std::move(r), "config.json", &bootstrap).ok());
  ASSERT_EQ(bootstrap.components.size(), 4u);
  EXPECT_EQ(bootstrap.components[0].name, "a-store");
  EXPECT_EQ(bootstrap.components[1].name, "statestore");
  EXPECT_EQ(bootstrap.components[2].name, "bus");
  EXPECT_EQ(bootstrap.components[3].name, "pubsub");
  ASSERT_EQ(bootstrap.subscriptions.size(), 2u);
  EXPECT_EQ(bootstrap.subscriptions[1].topic, "orders");
  EXPECT_EQ(bootstrap.subscriptions[1].default_route, "/orders");
}

absl::Status MergeOne(const std::string& yaml, Bootstrap* bootstrap) {
  DaprResources r;
  absl::Status status = ParseDaprResources(yaml, "res.yaml", "orders", &r);
  if (!status.ok()) {
    return status;
  }
  return MergeDaprResources(std::move(r), "config.json", bootstrap);
}

TEST(DaprResourcesMergeTest, CollisionsAndDanglingReferencesNameBothPlaces) {
  Bootstrap bootstrap = JsonConfig();
  absl::Status status = MergeOne(R"(
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.redis, version: v1}
)",
                                 &bootstrap);
  EXPECT_EQ(status.message(),
            "res.yaml: document 0: metadata.name: component state/statestore is also defined in "
            "config.json at /components/state/statestore");

  bootstrap = JsonConfig();
  status = MergeOne(R"(
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec: {type: state.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: x}
spec: {type: state.in-memory, version: v1}
)",
                    &bootstrap);
  EXPECT_EQ(status.message(),
            "res.yaml: document 1: metadata.name: component state/x is also defined in "
            "res.yaml: document 0");

  bootstrap = JsonConfig();
  status = MergeOne(R"(
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: s}
spec: {pubsubname: pubsub, topic: from-json, route: /x}
)",
                    &bootstrap);
  EXPECT_EQ(status.message(),
            "res.yaml: document 0: spec.topic: pubsub/from-json is also subscribed in "
            "config.json at /subscriptions/0");

  bootstrap = JsonConfig();
  status = MergeOne(R"(
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: s}
spec: {pubsubname: nope, topic: t, route: /x}
)",
                    &bootstrap);
  EXPECT_EQ(status.message(),
            "res.yaml: document 0: spec.pubsubname: no pub/sub component named 'nope'");

  bootstrap = JsonConfig();
  bootstrap.app.callback.reset();
  status = MergeOne(R"(
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: s}
spec: {pubsubname: pubsub, topic: t, route: /x}
)",
                    &bootstrap);
  EXPECT_NE(status.message().find("set /app/callback in config.json"), std::string::npos) << status;
}

TEST(DaprResourcesLoadTest, ReadsYamlFilesOfEveryDirectoryAndSkipsOthers) {
  namespace fs = std::filesystem;
  char pattern[] = "/tmp/ottava-res-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  fs::create_directory(dir + "/a");
  fs::create_directory(dir + "/b");
  std::ofstream(dir + "/a/state.yaml") << "apiVersion: dapr.io/v1alpha1\nkind: Component\n"
                                          "metadata: {name: s1}\nspec: {type: state.in-memory, "
                                          "version: v1}\n";
  std::ofstream(dir + "/a/readme.md") << "not yaml: [";
  std::ofstream(dir + "/b/pubsub.yml") << "apiVersion: dapr.io/v1alpha1\nkind: Component\n"
                                          "metadata: {name: p1}\nspec: {type: pubsub.in-memory, "
                                          "version: v1}\n";
  DaprResources r;
  ASSERT_TRUE(LoadDaprResources({dir + "/a", dir + "/b"}, "app", &r).ok());
  ASSERT_EQ(r.components.size(), 2u);
  EXPECT_EQ(r.components[0].pointer, dir + "/a/state.yaml: document 0");
  EXPECT_EQ(r.components[1].name, "p1");

  std::ofstream(dir + "/b/zz-bad.yaml") << "apiVersion: dapr.io/v1alpha1\nkind: Component\n"
                                           "metadata: {name: p2}\nspec: {type: pubsub.nats, "
                                           "version: v1}\n";
  DaprResources again;
  absl::Status status = LoadDaprResources({dir + "/b"}, "app", &again);
  EXPECT_EQ(status.message().rfind(dir + "/b/zz-bad.yaml: document 0: spec.type: ", 0), 0u)
      << status;
  EXPECT_EQ(LoadDaprResources({dir + "/none"}, "app", &again).message(),
            "--resources-path " + dir + "/none: not a directory");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ottava::runtime::config
