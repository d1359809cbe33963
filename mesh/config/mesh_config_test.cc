#include "mesh/config/mesh_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ottava::mesh {
namespace {

using nlohmann::json;

json FullExample() {
  return json::parse(R"({
    "workers": 2,
    "listeners": [
      {"name": "egress_bolt", "address": "127.0.0.1:2045", "protocol": "bolt", "router": "egress"},
      {"name": "ingress", "address": "0.0.0.0:12220", "protocol": "http1", "router": "to_app",
       "idle_timeout_ms": 30000, "header_timeout_ms": 5000}
    ],
    "routers": [
      {"name": "egress", "routes": [
        {"match": {"service": "com.example.Echo:1.0"}, "cluster": "echo", "timeout_ms": 3000},
        {"match": {"service": "orders", "method": "POST", "path_prefix": "/api/",
                   "headers": [{"name": "X-Canary", "exact": "1"},
                               {"name": "x-user", "regex": "u[0-9]+"},
                               {"name": "x-present"}]},
         "weighted_clusters": [{"cluster": "orders-v2", "weight": 90},
                               {"cluster": "orders-v1", "weight": 10}],
         "retry": {"attempts": 2, "on": ["connect-failure", "reset", "5xx", "gateway-error"],
                   "per_try_timeout_ms": 500},
         "mirror": {"cluster": "orders-shadow", "percent": 5.5},
         "prefix_rewrite": "/v2/",
         "request_headers_to_add": [{"name": "X-Mesh", "value": "ottava"}],
         "request_headers_to_remove": ["X-Debug"],
         "response_headers_to_add": [{"name": "x-served-by", "value": "mesh"}],
         "response_headers_to_remove": ["server"]},
        {"direct_response": {"status": 404, "body": "no route"}}
      ]},
      {"name": "to_app", "routes": [{"cluster": "app"}]}
    ],
    "clusters": [
      {"name": "echo", "protocol": "bolt", "lb": "round_robin", "connect_timeout_ms": 2000,
       "hosts": [{"address": "127.0.0.1:12200", "weight": 3}, {"address": "127.0.0.1:12201"}],
       "health_check": {"type": "bolt", "interval_ms": 2000, "timeout_ms": 500,
                        "healthy_threshold": 1, "unhealthy_threshold": 2},
       "outlier_detection": {"consecutive_5xx": 3, "base_ejection_ms": 1000,
                             "max_ejection_ms": 10000, "max_ejection_percent": 50}},
      {"name": "orders-v1", "lb": "random", "hosts": [{"address": "127.0.0.1:8001"}]},
      {"name": "orders-v2", "lb": "least_request", "max_connections": 10, "max_pending": 0,
       "max_requests": 20, "connections_per_host": 4, "idle_timeout_ms": 5000,
       "panic_threshold_percent": 0, "hosts": [{"address": "127.0.0.1:8002"}]},
      {"name": "orders-shadow", "lb": "maglev", "hash_header": "X-User",
       "hosts": [{"address": "[::1]:8003"}], "health_check": {"type": "http", "path": "/health"}},
      {"name": "app", "hosts": [{"address": "127.0.0.1:8080"}]}
    ],
    "rpc_router": "egress"
  })");
}

TEST(MeshConfigTest, ParsesFullExample) {
  absl::StatusOr<MeshConfig> parsed = MeshConfig::Parse(FullExample(), "/mesh");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const MeshConfig& config = *parsed;
  EXPECT_EQ(config.workers, 2u);
  EXPECT_EQ(config.rpc_router, "egress");
  EXPECT_TRUE(config.rpc_router_explicit);

  ASSERT_EQ(config.listeners.size(), 2u);
  const ListenerConfig& bolt = config.listeners[0];
  EXPECT_EQ(bolt.name, "egress_bolt");
  EXPECT_EQ(bolt.address, (Address{"127.0.0.1", 2045}));
  EXPECT_EQ(bolt.protocol, Protocol::kBolt);
  EXPECT_EQ(bolt.router, "egress");
  EXPECT_EQ(bolt.idle_timeout_ms, 60000);
  EXPECT_EQ(bolt.header_timeout_ms, 10000);
  EXPECT_EQ(bolt.pointer, "/mesh/listeners/0");
  EXPECT_EQ(config.listeners[1].protocol, Protocol::kHttp1);
  EXPECT_EQ(config.listeners[1].idle_timeout_ms, 30000);
  EXPECT_EQ(config.listeners[1].header_timeout_ms, 5000);

  ASSERT_EQ(config.routers.size(), 2u);
  const RouterConfig& egress = config.routers[0];
  ASSERT_EQ(egress.routes.size(), 3u);
  const RouteConfig& echo = egress.routes[0];
  EXPECT_EQ(echo.match.service, "com.example.Echo:1.0");
  EXPECT_EQ(echo.cluster, "echo");
  EXPECT_EQ(echo.timeout_ms, 3000);
  EXPECT_FALSE(echo.retry.has_value());
  EXPECT_EQ(echo.pointer, "/mesh/routers/0/routes/0");

  const RouteConfig& orders = egress.routes[1];
  EXPECT_EQ(orders.match.method, "POST");
  EXPECT_EQ(orders.match.path_prefix, "/api/");
  ASSERT_EQ(orders.match.headers.size(), 3u);
  EXPECT_EQ(orders.match.headers[0].name, "x-canary");  // lower-cased
  EXPECT_EQ(orders.match.headers[0].exact, "1");
  EXPECT_FALSE(orders.match.headers[0].regex.has_value());
  EXPECT_EQ(orders.match.headers[1].regex, "u[0-9]+");
  EXPECT_FALSE(orders.match.headers[2].exact.has_value());
  EXPECT_FALSE(orders.match.headers[2].regex.has_value());
  EXPECT_TRUE(orders.cluster.empty());
  ASSERT_EQ(orders.weighted_clusters.size(), 2u);
  EXPECT_EQ(orders.weighted_clusters[0].cluster, "orders-v2");
  EXPECT_EQ(orders.weighted_clusters[0].weight, 90u);
  EXPECT_EQ(orders.weighted_clusters[1].weight, 10u);
  EXPECT_EQ(orders.timeout_ms, 15000);
  ASSERT_TRUE(orders.retry.has_value());
  EXPECT_EQ(orders.retry->attempts, 2u);
  EXPECT_TRUE(orders.retry->on_connect_failure);
  EXPECT_TRUE(orders.retry->on_reset);
  EXPECT_TRUE(orders.retry->on_5xx);
  EXPECT_TRUE(orders.retry->on_gateway_error);
  EXPECT_EQ(orders.retry->per_try_timeout_ms, 500);
  ASSERT_TRUE(orders.mirror.has_value());
  EXPECT_EQ(orders.mirror->cluster, "orders-shadow");
  EXPECT_DOUBLE_EQ(orders.mirror->percent, 5.5);
  EXPECT_EQ(orders.prefix_rewrite, "/v2/");
  ASSERT_EQ(orders.request_headers_to_add.size(), 1u);
  EXPECT_EQ(orders.request_headers_to_add[0].name, "x-mesh");
  EXPECT_EQ(orders.request_headers_to_add[0].value, "ottava");
  EXPECT_EQ(orders.request_headers_to_remove, std::vector<std::string>{"x-debug"});
  ASSERT_EQ(orders.response_headers_to_add.size(), 1u);
  EXPECT_EQ(orders.response_headers_to_add[0].name, "x-served-by");
  EXPECT_EQ(orders.response_headers_to_remove, std::vector<std::string>{"server"});

  const RouteConfig& fallback = egress.routes[2];
  ASSERT_TRUE(fallback.direct_response.has_value());
  EXPECT_EQ(fallback.direct_response->status, 404);
  EXPECT_EQ(fallback.direct_response->body, "no route");
  EXPECT_TRUE(fallback.match.service.empty());

  ASSERT_EQ(config.clusters.size(), 5u);
  const ClusterConfig* echo_cluster = config.FindCluster("echo");
  ASSERT_NE(echo_cluster, nullptr);
  EXPECT_EQ(echo_cluster->protocol, Protocol::kBolt);
  EXPECT_EQ(echo_cluster->lb, LbPolicy::kRoundRobin);
  EXPECT_EQ(echo_cluster->connect_timeout_ms, 2000);
  ASSERT_EQ(echo_cluster->hosts.size(), 2u);
  EXPECT_EQ(echo_cluster->hosts[0].address, (Address{"127.0.0.1", 12200}));
  EXPECT_EQ(echo_cluster->hosts[0].weight, 3u);
  EXPECT_EQ(echo_cluster->hosts[1].weight, 1u);
  ASSERT_TRUE(echo_cluster->health_check.has_value());
  EXPECT_EQ(echo_cluster->health_check->type, HealthCheckConfig::kBolt);
  EXPECT_EQ(echo_cluster->health_check->path, "/");
  EXPECT_EQ(echo_cluster->health_check->interval_ms, 2000);
  EXPECT_EQ(echo_cluster->health_check->timeout_ms, 500);
  EXPECT_EQ(echo_cluster->health_check->healthy_threshold, 1u);
  EXPECT_EQ(echo_cluster->health_check->unhealthy_threshold, 2u);
  ASSERT_TRUE(echo_cluster->outlier_detection.has_value());
  EXPECT_EQ(echo_cluster->outlier_detection->consecutive_5xx, 3u);
  EXPECT_EQ(echo_cluster->outlier_detection->consecutive_connect_failures, 5u);
  EXPECT_EQ(echo_cluster->outlier_detection->base_ejection_ms, 1000);
  EXPECT_EQ(echo_cluster->outlier_detection->max_ejection_ms, 10000);
  EXPECT_EQ(echo_cluster->outlier_detection->max_ejection_percent, 50u);
  EXPECT_EQ(echo_cluster->pointer, "/mesh/clusters/0");

  EXPECT_EQ(config.FindCluster("orders-v1")->lb, LbPolicy::kRandom);
  const ClusterConfig* v2 = config.FindCluster("orders-v2");
  EXPECT_EQ(v2->lb, LbPolicy::kLeastRequest);
  EXPECT_EQ(v2->max_connections, 10u);
  EXPECT_EQ(v2->max_pending, 0u);
  EXPECT_EQ(v2->max_requests, 20u);
  EXPECT_EQ(v2->connections_per_host, 4u);
  EXPECT_EQ(v2->idle_timeout_ms, 5000);
  EXPECT_EQ(v2->panic_threshold_percent, 0u);
  const ClusterConfig* shadow = config.FindCluster("orders-shadow");
  EXPECT_EQ(shadow->lb, LbPolicy::kMaglev);
  EXPECT_EQ(shadow->hash_header, "x-user");
  EXPECT_EQ(shadow->hosts[0].address, (Address{"::1", 8003}));
  EXPECT_EQ(shadow->health_check->type, HealthCheckConfig::kHttp);
  EXPECT_EQ(shadow->health_check->path, "/health");
  const ClusterConfig* app = config.FindCluster("app");
  EXPECT_EQ(app->protocol, Protocol::kHttp1);
  EXPECT_EQ(app->lb, LbPolicy::kRoundRobin);
  EXPECT_EQ(app->connect_timeout_ms, 1000);
  EXPECT_EQ(app->max_connections, 1024u);
  EXPECT_EQ(app->panic_threshold_percent, 50u);
  EXPECT_FALSE(app->health_check.has_value());
  EXPECT_EQ(config.FindCluster("nope"), nullptr);
  EXPECT_EQ(config.FindRouter("to_app")->routes.size(), 1u);
  EXPECT_EQ(config.FindRouter("nope"), nullptr);
}

TEST(MeshConfigTest, ParsesDubboListenersClustersAndHealthChecks) {
  json doc = json::parse(R"({
    "listeners": [{"name": "d", "address": "127.0.0.1:0", "protocol": "dubbo", "router": "r",
                   "max_frame_bytes": 8388608}],
    "routers": [{"name": "r", "routes": [{"match": {"service": "com.example.Echo",
                  "headers": [{"name": "group", "exact": "blue"}]}, "cluster": "c"}]}],
    "clusters": [{"name": "c", "protocol": "dubbo", "hosts": [{"address": "127.0.0.1:20880"}],
                  "health_check": {"type": "dubbo"}}]})");
  auto parsed = MeshConfig::Parse(doc, "/mesh");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->listeners[0].protocol, Protocol::kDubbo);
  EXPECT_EQ(parsed->clusters[0].protocol, Protocol::kDubbo);
  EXPECT_EQ(parsed->clusters[0].health_check->type, HealthCheckConfig::kDubbo);
  EXPECT_EQ(ProtocolName(Protocol::kDubbo), "dubbo");
}

TEST(MeshConfigTest, DefaultsOfAnEmptyMesh) {
  absl::StatusOr<MeshConfig> parsed = MeshConfig::Parse(json::object(), "/mesh");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->workers, 0u);
  EXPECT_TRUE(parsed->listeners.empty());
  EXPECT_EQ(parsed->rpc_router, "");
}

TEST(MeshConfigTest, RpcRouterDefaultsToTheFirstRouter) {
  json doc = FullExample();
  doc.erase("rpc_router");
  doc["routers"][0].swap(doc["routers"][1]);
  absl::StatusOr<MeshConfig> parsed = MeshConfig::Parse(doc, "/mesh");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->rpc_router, "to_app");
  EXPECT_FALSE(parsed->rpc_router_explicit);
}

struct InvalidCase {
  const char* name;
  // A JSON merge patch applied to FullExample() (null removes a key)...
  const char* patch;
  // ...or, when `patch` is empty, a function editing the document.
  void (*edit)(json&);
  const char* error;  // the whole expected message
};

void Check(const InvalidCase& test) {
  json doc = FullExample();
  if (test.edit != nullptr) {
    test.edit(doc);
  } else {
    doc.merge_patch(json::parse(test.patch));
  }
  absl::StatusOr<MeshConfig> parsed = MeshConfig::Parse(doc, "/mesh");
  ASSERT_FALSE(parsed.ok()) << test.name;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << test.name;
  EXPECT_EQ(std::string(parsed.status().message()), test.error) << test.name;
}

TEST(MeshConfigTest, RejectsInvalidDocuments) {
  const InvalidCase cases[] = {
      {"unknown top-level key", R"({"worker": 2})", nullptr, "/mesh/worker: unknown key"},
      {"workers out of range", R"({"workers": 300})", nullptr,
       "/mesh/workers: must be between 0 and 256, got 300"},
      {"listeners not an array", R"({"listeners": {}})", nullptr,
       "/mesh/listeners: expected an array, got object"},
      {"unknown route cluster", "",
       [](json& d) { d["routers"][0]["routes"][1]["weighted_clusters"][1]["cluster"] = "x"; },
       "/mesh/routers/0/routes/1/weighted_clusters/1/cluster: unknown cluster 'x'"},
      {"unknown plain cluster", "", [](json& d) { d["routers"][1]["routes"][0]["cluster"] = "x"; },
       "/mesh/routers/1/routes/0/cluster: unknown cluster 'x'"},
      {"unknown mirror cluster", "",
       [](json& d) { d["routers"][0]["routes"][1]["mirror"]["cluster"] = "x"; },
       "/mesh/routers/0/routes/1/mirror/cluster: unknown cluster 'x'"},
      {"unknown listener router", "", [](json& d) { d["listeners"][1]["router"] = "nope"; },
       "/mesh/listeners/1/router: unknown router 'nope'"},
      {"unknown rpc_router", R"({"rpc_router": "nope"})", nullptr,
       "/mesh/rpc_router: unknown router 'nope'"},
      {"duplicate listener", "", [](json& d) { d["listeners"][1]["name"] = "egress_bolt"; },
       "/mesh/listeners/1/name: duplicate listener name 'egress_bolt'"},
      {"duplicate router", "", [](json& d) { d["routers"][1]["name"] = "egress"; },
       "/mesh/routers/1/name: duplicate router name 'egress'"},
      {"duplicate cluster", "", [](json& d) { d["clusters"][4]["name"] = "echo"; },
       "/mesh/clusters/4/name: duplicate cluster name 'echo'"},
      {"bad regex", "",
       [](json& d) { d["routers"][0]["routes"][1]["match"]["headers"][1]["regex"] = "u[0-9"; },
       "/mesh/routers/0/routes/1/match/headers/1/regex: invalid regex: missing ]: [0-9"},
      {"exact and regex", "",
       [](json& d) { d["routers"][0]["routes"][1]["match"]["headers"][0]["regex"] = "1"; },
       "/mesh/routers/0/routes/1/match/headers/0: 'exact' and 'regex' are mutually exclusive"},
      {"zero weight", "",
       [](json& d) { d["routers"][0]["routes"][1]["weighted_clusters"][0]["weight"] = 0; },
       "/mesh/routers/0/routes/1/weighted_clusters/0/weight: must be between 1 and 1000000, got "
       "0"},
      {"missing weight", "",
       [](json& d) { d["routers"][0]["routes"][1]["weighted_clusters"][0].erase("weight"); },
       "/mesh/routers/0/routes/1/weighted_clusters/0/weight: is required"},
      {"two targets", "",
       [](json& d) {
         d["routers"][0]["routes"][0]["weighted_clusters"] =
             json::parse(R"([{"cluster":"app","weight":1}])");
       },
       "/mesh/routers/0/routes/0: needs exactly one of 'cluster', 'weighted_clusters' or "
       "'direct_response'"},
      {"no target", "", [](json& d) { d["routers"][0]["routes"][0].erase("cluster"); },
       "/mesh/routers/0/routes/0: needs exactly one of 'cluster', 'weighted_clusters' or "
       "'direct_response'"},
      {"unknown retry condition", "",
       [](json& d) { d["routers"][0]["routes"][1]["retry"]["on"][2] = "5xxx"; },
       "/mesh/routers/0/routes/1/retry/on/2: unknown retry condition '5xxx' (expected "
       "connect-failure, reset, 5xx or gateway-error)"},
      {"too many retries", "",
       [](json& d) { d["routers"][0]["routes"][1]["retry"]["attempts"] = 11; },
       "/mesh/routers/0/routes/1/retry/attempts: must be between 0 and 10, got 11"},
      {"negative timeout", "", [](json& d) { d["routers"][0]["routes"][0]["timeout_ms"] = -1; },
       "/mesh/routers/0/routes/0/timeout_ms: must be between 0 and 86400000, got -1"},
      {"mirror percent", "",
       [](json& d) { d["routers"][0]["routes"][1]["mirror"]["percent"] = 100.5; },
       "/mesh/routers/0/routes/1/mirror/percent: must be between 0.0 and 100.0, got 100.5"},
      {"direct status", "",
       [](json& d) { d["routers"][0]["routes"][2]["direct_response"]["status"] = 600; },
       "/mesh/routers/0/routes/2/direct_response/status: must be between 100 and 599, got 600"},
      {"unknown route key", "", [](json& d) { d["routers"][0]["routes"][0]["timeout"] = 1; },
       "/mesh/routers/0/routes/0/timeout: unknown key"},
      {"unknown match key", "",
       [](json& d) { d["routers"][0]["routes"][0]["match"]["prefix"] = "/"; },
       "/mesh/routers/0/routes/0/match/prefix: unknown key"},
      {"header without name", "",
       [](json& d) { d["routers"][0]["routes"][1]["match"]["headers"][2].erase("name"); },
       "/mesh/routers/0/routes/1/match/headers/2/name: is required"},
      {"bad listener protocol", "", [](json& d) { d["listeners"][0]["protocol"] = "http2"; },
       "/mesh/listeners/0/protocol: unknown protocol 'http2' (expected http1, bolt or dubbo)"},
      {"listener without protocol", "", [](json& d) { d["listeners"][0].erase("protocol"); },
       "/mesh/listeners/0/protocol: is required"},
      {"bad listener address", "", [](json& d) { d["listeners"][0]["address"] = "nowhere"; }, ""},
      {"unknown lb", "", [](json& d) { d["clusters"][0]["lb"] = "ring_hash"; },
       "/mesh/clusters/0/lb: unknown load balancer 'ring_hash' (expected round_robin, random, "
       "least_request or maglev)"},
      {"maglev without hash_header", "", [](json& d) { d["clusters"][3].erase("hash_header"); },
       "/mesh/clusters/3/hash_header: is required with lb 'maglev'"},
      {"hash_header without maglev", "", [](json& d) { d["clusters"][0]["hash_header"] = "x"; },
       "/mesh/clusters/0/hash_header: is only used with lb 'maglev'"},
      {"no hosts", "", [](json& d) { d["clusters"][1]["hosts"] = json::array(); },
       "/mesh/clusters/1/hosts: must not be empty"},
      {"missing hosts", "", [](json& d) { d["clusters"][1].erase("hosts"); },
       "/mesh/clusters/1/hosts: is required"},
      {"host weight", "", [](json& d) { d["clusters"][0]["hosts"][1]["weight"] = 0; },
       "/mesh/clusters/0/hosts/1/weight: must be between 1 and 1000, got 0"},
      {"duplicate host", "",
       [](json& d) { d["clusters"][0]["hosts"][1]["address"] = "127.0.0.1:12200"; },
       "/mesh/clusters/0/hosts/1/address: duplicate host '127.0.0.1:12200'"},
      {"host without port", "",
       [](json& d) { d["clusters"][0]["hosts"][1]["address"] = "127.0.0.1:0"; },
       "/mesh/clusters/0/hosts/1/address: an upstream host needs a port"},
      {"connect timeout", "", [](json& d) { d["clusters"][0]["connect_timeout_ms"] = 0; },
       "/mesh/clusters/0/connect_timeout_ms: must be between 1 and 86400000, got 0"},
      {"panic threshold", "", [](json& d) { d["clusters"][0]["panic_threshold_percent"] = 101; },
       "/mesh/clusters/0/panic_threshold_percent: must be between 0 and 100, got 101"},
      {"health check type", "", [](json& d) { d["clusters"][0]["health_check"]["type"] = "grpc"; },
       "/mesh/clusters/0/health_check/type: unknown health check type 'grpc' (expected tcp, http, "
       "bolt or dubbo)"},
      {"health check key", "", [](json& d) { d["clusters"][0]["health_check"]["interval"] = 1; },
       "/mesh/clusters/0/health_check/interval: unknown key"},
      {"ejection times", "",
       [](json& d) { d["clusters"][0]["outlier_detection"]["max_ejection_ms"] = 500; },
       "/mesh/clusters/0/outlier_detection/max_ejection_ms: must not be below base_ejection_ms "
       "(1000)"},
      {"remove header name", "",
       [](json& d) { d["routers"][0]["routes"][1]["request_headers_to_remove"][0] = ""; },
       "/mesh/routers/0/routes/1/request_headers_to_remove/0: expected a non-empty header name"},
  };
  for (const InvalidCase& test : cases) {
    if (std::string(test.error).empty()) {
      // Only the pointer is ours; the reason comes from ParseAddress.
      json doc = FullExample();
      test.edit(doc);
      absl::StatusOr<MeshConfig> parsed = MeshConfig::Parse(doc, "/mesh");
      ASSERT_FALSE(parsed.ok()) << test.name;
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_TRUE(std::string(parsed.status().message()).starts_with("/mesh/listeners/0/address: "))
          << parsed.status();
      continue;
    }
    Check(test);
  }
}

TEST(MeshConfigTest, DynamicUpdateReplacesRoutersAndClusters) {
  absl::StatusOr<MeshConfig> current = MeshConfig::Parse(FullExample(), "/mesh");
  ASSERT_TRUE(current.ok()) << current.status();
  const json update = json::parse(R"({
    "routers": [
      {"name": "to_app", "routes": [{"cluster": "app2"}]},
      {"name": "egress", "routes": [{"match": {"service": "s"}, "cluster": "app2"}]}
    ],
    "clusters": [{"name": "app2", "hosts": [{"address": "127.0.0.1:9000"}]}]
  })");
  absl::StatusOr<MeshConfig> updated = MeshConfig::ParseRoutesAndClusters(update, *current);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->workers, 2u);
  EXPECT_EQ(updated->listeners.size(), 2u);
  ASSERT_EQ(updated->routers.size(), 2u);
  EXPECT_EQ(updated->routers[0].routes[0].cluster, "app2");
  EXPECT_EQ(updated->routers[0].routes[0].pointer, "/routers/0/routes/0");
  ASSERT_EQ(updated->clusters.size(), 1u);
  EXPECT_EQ(updated->clusters[0].name, "app2");
  EXPECT_EQ(updated->rpc_router, "egress");  // explicit in the bootstrap config: kept
  // The current snapshot is untouched.
  EXPECT_EQ(current->clusters.size(), 5u);

  // Only clusters: the routers stay, and must still resolve.
  absl::StatusOr<MeshConfig> clusters_only = MeshConfig::ParseRoutesAndClusters(
      json::parse(R"({"clusters": [{"name": "app2", "hosts": [{"address": "127.0.0.1:1"}]}]})"),
      *updated);
  ASSERT_TRUE(clusters_only.ok()) << clusters_only.status();
  EXPECT_EQ(clusters_only->routers.size(), 2u);
}

TEST(MeshConfigTest, DynamicUpdateRejectsInconsistentDocuments) {
  absl::StatusOr<MeshConfig> current = MeshConfig::Parse(FullExample(), "/mesh");
  ASSERT_TRUE(current.ok()) << current.status();
  struct Case {
    const char* update;
    const char* error;
  } cases[] = {
      {R"({"routers": [{"name": "egress", "routes": []}]})",
       "/routers: router 'to_app' of listener 'ingress' is missing"},
      {R"({"clusters": [{"name": "app", "hosts": [{"address": "127.0.0.1:1"}]}]})",
       // The kept routers name their place in the document they came from.
       "/mesh/routers/0/routes/0/cluster: unknown cluster 'echo'"},
      {R"({"routers": [{"name": "egress", "routes": [{"cluster": "app"}]},
                       {"name": "to_app", "routes": [{"cluster": "nope"}]}]})",
       "/routers/1/routes/0/cluster: unknown cluster 'nope'"},
      {R"({"routers": [], "listeners": []})", "/listeners: unknown key"},
      {R"({"clusters": [{"name": "a", "hosts": []}]})", "/clusters/0/hosts: must not be empty"},
      {R"([])", "/: expected an object, got array"},
  };
  for (const Case& test : cases) {
    absl::StatusOr<MeshConfig> updated =
        MeshConfig::ParseRoutesAndClusters(json::parse(test.update), *current);
    ASSERT_FALSE(updated.ok()) << test.update;
    EXPECT_EQ(std::string(updated.status().message()), test.error) << test.update;
  }
}

TEST(MeshConfigTest, DynamicUpdateMovesADefaultedRpcRouter) {
  json doc = FullExample();
  doc.erase("rpc_router");
  absl::StatusOr<MeshConfig> current = MeshConfig::Parse(doc, "/mesh");
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->rpc_router, "egress");
  absl::StatusOr<MeshConfig> updated = MeshConfig::ParseRoutesAndClusters(
      json::parse(R"({"routers": [{"name": "to_app", "routes": [{"cluster": "app"}]},
                                  {"name": "other", "routes": []}]})"),
      *current);
  // egress is gone, but the bolt listener still needs it.
  ASSERT_FALSE(updated.ok());
  updated = MeshConfig::ParseRoutesAndClusters(
      json::parse(R"({"routers": [{"name": "first", "routes": []},
                                  {"name": "to_app", "routes": [{"cluster": "app"}]},
                                  {"name": "egress", "routes": []}]})"),
      *current);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->rpc_router, "first");
}

}  // namespace
}  // namespace ottava::mesh
