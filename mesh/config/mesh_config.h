#pragma once

// The typed, immutable configuration of the mesh engine (DESIGN.md §8): listeners, routers with
// their routes, and upstream clusters. JSON is parsed once, here, into these plain structs; every
// error is INVALID_ARGUMENT "<json pointer>: <reason>". A parsed MeshConfig has been validated as a
// whole (unique names, every reference resolves, regexes compile), so the layers built from it
// (route tables, clusters, load balancers) may assume it is consistent.
//
// Threading: a MeshConfig is built on the main thread and then only read; copies are snapshots.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/address.h"
#include "mesh/codec/message.h"

namespace ottava::mesh {

/// A listening socket and the router its requests go to.
struct ListenerConfig {
  std::string name;
  Address address;
  Protocol protocol = Protocol::kHttp1;  // JSON "http1" | "bolt" | "dubbo" (required)
  std::string router;                    // name of a RouterConfig
  int64_t idle_timeout_ms = 60000;       // idle downstream connection is closed after this
  int64_t header_timeout_ms = 10000;     // a request head must be complete within this
  int64_t max_frame_bytes = 16 << 20;    // Bolt, Dubbo: largest frame (1 KiB .. 1 GiB)
  std::string pointer;                   // JSON pointer of this listener, for later errors
};

/// One header condition of a route. Names are lower-cased at parse time. At most one of `exact` and
/// `regex` is set; with neither the header only has to be present. `regex` is RE2 syntax and must
/// match the whole value.
struct HeaderMatcherConfig {
  std::string name;
  std::optional<std::string> exact;
  std::optional<std::string> regex;
};

/// Conditions of a route; every non-empty one must hold. The empty string matches anything.
struct RouteMatchConfig {
  std::string service;      // exact routing key (RequestHeaders::service)
  std::string method;       // exact HTTP verb (RequestHeaders::method)
  std::string path_prefix;  // prefix of the path without its query string
  std::vector<HeaderMatcherConfig> headers;
};

/// One destination of a traffic split.
struct WeightedClusterConfig {
  std::string cluster;
  uint32_t weight = 0;  // > 0
};

/// When and how often a failed request is tried again.
struct RetryPolicyConfig {
  uint32_t attempts = 0;  // retries after the first try (Envoy num_retries), 0..10
  bool on_connect_failure = false;
  bool on_reset = false;
  bool on_5xx = false;
  bool on_gateway_error = false;   // 502, 503, 504
  int64_t per_try_timeout_ms = 0;  // 0: no per-try timeout (the route timeout still applies)
};

/// Fire-and-forget copy of a share of the requests to another cluster.
struct MirrorConfig {
  std::string cluster;
  double percent = 0;  // 0..100
};

/// A response produced by the mesh itself, without an upstream.
struct DirectResponseConfig {
  int status = 200;  // 100..599
  std::string body;
};

struct HeaderValue {
  std::string name;  // lower-cased at parse time
  std::string value;
};

/// One route: match conditions and what to do with a matching request. Exactly one of `cluster`,
/// `weighted_clusters` and `direct_response` is set.
struct RouteConfig {
  RouteMatchConfig match;  // JSON "match" is optional: absent matches every request
  std::string cluster;
  std::vector<WeightedClusterConfig> weighted_clusters;
  int64_t timeout_ms = 15000;  // whole-request timeout; 0: none (as Envoy)
  std::optional<RetryPolicyConfig> retry;
  std::optional<MirrorConfig> mirror;
  std::optional<DirectResponseConfig> direct_response;
  std::string prefix_rewrite;  // replaces `match.path_prefix` in the upstream path when non-empty
  std::vector<HeaderValue> request_headers_to_add;
  std::vector<std::string> request_headers_to_remove;  // lower-cased
  std::vector<HeaderValue> response_headers_to_add;
  std::vector<std::string> response_headers_to_remove;  // lower-cased
  std::string pointer;                                  // JSON pointer of this route
};

/// An ordered route list; the first matching route wins.
/// One stream filter of a router's chain: a builtin filter's name and its own config, which the
/// filter's factory validates when the snapshot is built (mesh/filter/builtin.cc lists them).
struct FilterConfig {
  std::string name;
  nlohmann::json config = nlohmann::json::object();
  std::string pointer;
};

struct RouterConfig {
  std::string name;
  /// Run in order on every request before the route is chosen, in reverse on the response.
  std::vector<FilterConfig> filters;
  std::vector<RouteConfig> routes;
  std::string pointer;  // JSON pointer of this router
};

/// Active health checking of every host of a cluster.
struct HealthCheckConfig {
  enum Type : uint8_t { kTcp, kHttp, kBolt, kDubbo };
  Type type = kTcp;        // JSON "tcp" | "http" | "bolt" | "dubbo" (required)
  std::string path = "/";  // HTTP: the GET target; 2xx is healthy
  int64_t interval_ms = 5000;
  int64_t timeout_ms = 1000;
  uint32_t healthy_threshold = 2;    // consecutive successes that make an unhealthy host healthy
  uint32_t unhealthy_threshold = 3;  // consecutive failures that make a healthy host unhealthy
};

/// Passive ejection of failing hosts (Envoy outlier detection, consecutive-errors kinds).
struct OutlierDetectionConfig {
  uint32_t consecutive_5xx = 5;               // 0: this kind is disabled
  uint32_t consecutive_connect_failures = 5;  // 0: this kind is disabled
  int64_t base_ejection_ms = 30000;           // ejection time = base × number of ejections
  int64_t max_ejection_ms = 300000;           // >= base_ejection_ms
  uint32_t max_ejection_percent = 10;         // 0..100 of the cluster's hosts
};

struct HostConfig {
  Address address;
  uint32_t weight = 1;  // 1..1000
};

enum class LbPolicy : uint8_t { kRoundRobin, kRandom, kLeastRequest, kMaglev };

/// An upstream cluster: its hosts, how to pick one, and connection limits.
struct ClusterConfig {
  std::string name;
  Protocol protocol = Protocol::kHttp1;
  LbPolicy lb =
      LbPolicy::kRoundRobin;  // JSON "round_robin" | "random" | "least_request" | "maglev"
  std::string hash_header;    // maglev only (and then required): lower-cased header name to hash
  int64_t connect_timeout_ms = 1000;
  uint32_t max_connections = 1024;  // circuit breakers, per cluster
  uint32_t max_pending = 1024;
  uint32_t max_requests = 1024;
  uint32_t connections_per_host = 1;   // per worker; Bolt multiplexes over these
  int64_t idle_timeout_ms = 60000;     // an idle upstream connection is closed after this
  int64_t max_frame_bytes = 16 << 20;  // Bolt, Dubbo: largest response frame accepted
  int64_t heartbeat_interval_ms =
      15000;  // Bolt, Dubbo: probe an idle connection this often; 0: never
  uint32_t panic_threshold_percent = 50;  // below this share of healthy hosts, use all hosts
  std::vector<HostConfig> hosts;          // non-empty
  std::optional<HealthCheckConfig> health_check;
  std::optional<OutlierDetectionConfig> outlier_detection;
  std::string pointer;  // JSON pointer of this cluster
};

/// The whole `mesh` section.
struct MeshConfig {
  uint32_t workers = 0;  // 0..256; 0: one per core
  std::vector<ListenerConfig> listeners;
  std::vector<RouterConfig> routers;
  std::vector<ClusterConfig> clusters;
  /// Headers the builtin RPC filter adds to every InvokeService call ("rpc_headers": {k: v}).
  std::map<std::string, std::string> rpc_headers;
  std::string rpc_router;  // router of InvokeService; default: the first router, "" when none
  /// Whether `rpc_router` was written in the config (else it follows the first router on updates).
  bool rpc_router_explicit = false;

  /// Parses and validates the `mesh` object found at `pointer` (e.g. "/mesh").
  static absl::StatusOr<MeshConfig> Parse(const nlohmann::json& value, const std::string& pointer);

  /// Parses a dynamic update document {"routers": [...], "clusters": [...]} (pointers are relative
  /// to that document) and returns a copy of `current` with those lists replaced; a key that is
  /// absent keeps the current list. Fails when the result is inconsistent, e.g. a listener's router
  /// is gone; errors about kept entries carry their pointers in the document they came from.
  static absl::StatusOr<MeshConfig> ParseRoutesAndClusters(const nlohmann::json& value,
                                                           const MeshConfig& current);

  /// Cross-checks the whole config: unique names, every referenced router and cluster exists.
  /// Parse and ParseRoutesAndClusters call it; call it again after editing a config by hand.
  absl::Status Validate() const;

  /// The cluster or router of that name, or nullptr.
  const ClusterConfig* FindCluster(std::string_view name) const;
  const RouterConfig* FindRouter(std::string_view name) const;
};

/// JSON spelling of the enums, for messages and the admin endpoint.
std::string_view ProtocolName(Protocol protocol);
std::string_view LbPolicyName(LbPolicy policy);

}  // namespace ottava::mesh
