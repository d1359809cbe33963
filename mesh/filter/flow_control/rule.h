#pragma once

// The one rule format of unified flow control (issue 9), shared by every kind of traffic: mesh
// HTTP/1.1 and Bolt requests, InvokeService, and the runtime's own gRPC API. A rule names a
// *resource* (exactly or by prefix), optionally narrows it to a *sub-resource* with conditions on
// the caller and the request (refined limits), and carries one limit of one kind:
//
//   {"id": "echo-qps", "resource": "com.example.Echo:1.0#echo", "match": "exact",
//    "when": {"all": [{"caller_app": "web"}, {"header": "x-tier", "exact": "free"}]},
//    "kind": "qps", "threshold": 100, "behavior": "reject"}
//
// Kinds and their fields (defaults in the structs below):
//   qps          threshold, window_ms, buckets, behavior reject|warm_up|throttling,
//                warm_up_seconds, cold_factor, max_queueing_ms
//   concurrency  threshold (in-flight requests)
//   hot_param    source header|query, name, threshold (per value per duration_ms), burst,
//                duration_ms, overrides {value: threshold}, capacity (LRU size)
//   breaker      strategy error_ratio|error_count|slow_ratio, threshold, window_ms, buckets,
//                min_requests, open_ms, probes, slow_ms
//   cluster      threshold (requests per window across every sidecar), window_ms (a fixed window
//                aligned to the wall clock), mode sync|async, share (async: tokens reserved at a
//                time), fallback local|allow|deny, local_threshold (fallback local: per sidecar
//                per window). Needs the config file's `flow_control.cluster` (the Redis counter).
// Optional per rule: "reply": {"status": 429, "body": "..."} (what a blocked request gets on
// HTTP; Bolt maps 429 to status 0x04) or "reply": {"fallback_status": 200, "body": ...} as a
// direct (downgrade) response, or "reply": {"fallback_cluster": "name"}: the blocked request goes
// to that mesh cluster instead (the route's own cluster is spared).
//
// Parsing is strict: unknown keys and bad values are INVALID_ARGUMENT "<json pointer>: <reason>",
// and a rule set is accepted or refused whole.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "mesh/filter/flow_control/adaptive.h"

namespace ottava::mesh::flow {

/// One condition of a refined rule. Exactly one subject is set.
struct Condition {
  enum class Subject : uint8_t { kCallerApp, kSourceIp, kHeader, kQuery };
  Subject subject = Subject::kCallerApp;
  std::string name;   // header (lower-cased) or query parameter name
  std::string value;  // exact value, or a prefix when `prefix` (source IPs: "10.1." style)
  bool prefix = false;
  bool present_only = false;  // header/query: only presence is required
};

/// Conditions combined with AND ("all") or OR ("any"). Empty: every request of the resource.
struct ConditionSet {
  bool any = false;
  std::vector<Condition> conditions;
  bool empty() const { return conditions.empty(); }
};

enum class RuleKind : uint8_t { kQps, kConcurrency, kHotParam, kBreaker, kCluster };
enum class QpsBehavior : uint8_t { kReject, kWarmUp, kThrottling };
enum class BreakerStrategy : uint8_t { kErrorRatio, kErrorCount, kSlowRatio };

struct QpsSpec {
  double threshold = 0;      // requests per window (per second with the default window)
  int64_t window_ms = 1000;  // the sliding window
  int64_t buckets = 10;      // window_ms % buckets == 0
  QpsBehavior behavior = QpsBehavior::kReject;
  int64_t warm_up_seconds = 10;   // warm_up: time from threshold ÷ cold_factor to threshold
  double cold_factor = 3;         // warm_up: > 1
  int64_t max_queueing_ms = 500;  // throttling: the longest a request may wait for its turn
};

struct ConcurrencySpec {
  int64_t threshold = 0;
};

struct HotParamSpec {
  Condition::Subject source = Condition::Subject::kHeader;  // kHeader (also Bolt headers) or kQuery
  std::string name;
  double threshold = 0;  // tokens per duration for each value
  double burst = 0;
  int64_t duration_ms = 1000;
  std::map<std::string, double, std::less<>> overrides;  // value → its own threshold
  int64_t capacity = 10000;                              // values remembered (LRU)
};

struct BreakerSpec {
  BreakerStrategy strategy = BreakerStrategy::kErrorRatio;
  double threshold = 0.5;  // ratio (0, 1] or an error count
  int64_t window_ms = 10000;
  int64_t buckets = 10;
  int64_t min_requests = 5;
  int64_t open_ms = 5000;  // Open → Half-Open after this
  int64_t probes = 1;      // good probes that close a half-open breaker
  int64_t slow_ms = 1000;  // slow_ratio: a call slower than this is slow
};

enum class ClusterMode : uint8_t { kSync, kAsync };
enum class ClusterFallback : uint8_t { kLocal, kAllow, kDeny };

/// A limit shared by every sidecar through a central counter (one per rule and window).
/// sync: every request adds 1 to the window's counter and passes while the total is within the
/// threshold (one round trip per request, exact). async: the sidecar reserves `share` tokens at
/// a time (INCRBY share), spends them locally and reserves the next share when half of the current
/// one is left; once the window's total is spent it blocks until the next window (overshoot at
/// most one share per sidecar, no round trip on the request path). While the counter is
/// unreachable the rule applies its fallback.
struct ClusterSpec {
  double threshold = 0;
  int64_t window_ms = 1000;
  ClusterMode mode = ClusterMode::kAsync;
  int64_t share = 0;  // 0: max(1, threshold / 20)
  ClusterFallback fallback = ClusterFallback::kLocal;
  double local_threshold = 0;  // fallback local: requests per window on this sidecar

  int64_t Share() const {
    return share > 0 ? share : std::max<int64_t>(1, static_cast<int64_t>(threshold / 20));
  }
};

/// What a blocked request gets. HTTP status and body; Bolt and gRPC map it (429 → 0x04 and
/// RESOURCE_EXHAUSTED). `fallback` marks a downgrade answer rather than a refusal.
struct ReplySpec {
  int status = 429;
  std::string body = "flow control: request limited\n";
  bool fallback = false;
  /// Non-empty: a blocked mesh request goes to this (downgrade) cluster instead of being
  /// answered; gRPC API calls, which have no cluster, still get RESOURCE_EXHAUSTED.
  std::string fallback_cluster;
};

struct Rule {
  std::string id;  // unique in the set; the `rule` label of metrics
  std::string resource;
  bool prefix = false;  // "match": "exact" (default) | "prefix"
  ConditionSet when;
  RuleKind kind = RuleKind::kQps;
  QpsSpec qps;
  ConcurrencySpec concurrency;
  HotParamSpec hot;
  BreakerSpec breaker;
  ClusterSpec cluster;
  std::optional<ReplySpec> reply;  // absent: the set's default reply
  std::string canonical;           // the rule's JSON, dumped; equal rules keep their counters
};

/// A whole rule set: what the config file's `flow_control.rules`, the actuator and the
/// configuration store carry.
struct RuleSet {
  std::vector<Rule> rules;
  ReplySpec default_reply;
  /// Headers that carry the caller's app id, tried in order.
  std::vector<std::string> caller_app_headers = {"x-caller-app-id", "dapr-caller-app-id",
                                                 "rpc_trace_context.sofacallerapp"};

  /// Parses {"rules": [...], "reply": {...}, "caller_app_headers": [...]} found at `pointer`.
  static absl::StatusOr<RuleSet> Parse(const nlohmann::json& value, const std::string& pointer);
  /// Parses a JSON text (the actuator body, a configuration item); pointers start at "".
  static absl::StatusOr<RuleSet> ParseText(std::string_view text);
  /// Checks that every `fallback_cluster` (the set's reply and each rule's) names a cluster for
  /// which `exists` is true; the error carries the JSON pointer under `pointer` (the set's).
  absl::Status CheckFallbackClusters(const std::function<bool(std::string_view)>& exists,
                                     const std::string& pointer) const;
};

/// The config file's `flow_control` section: the initial rules plus where live rules come from.
///   {"rules": [...], "reply": {...}, "caller_app_headers": [...],
///    "config_store": {"store": "conf", "key": "flow-rules"},
///    "adaptive": {"threshold": 0.8, "trigger_seconds": 5, "stress_header": "x-stress-test",
///                 "growth_factor": 2, "step": 0.1},
///    "cluster": {"redis": {"redisHost": "127.0.0.1:6379", ...}, "key_prefix": "ottava:flow:"},
///    "events": {"pubsub": "bus", "topic": "flow-events"}}
struct FlowControlConfig {
  /// The central counter of cluster rules: a Redis client's metadata (the keys a Redis component
  /// takes: redisHost, redisPassword, redisDB, dialTimeout, timeout ...) and a key prefix.
  struct Cluster {
    std::map<std::string, std::string> redis;
    std::string key_prefix = "ottava:flow:";
  };
  /// Where flow-control events are published: a pub/sub component of this sidecar and a topic.
  struct Events {
    std::string pubsub;
    std::string topic;
  };

  RuleSet rules;
  std::optional<AdaptiveConfig> adaptive;  // absent: no adaptive limiting
  std::string config_store;  // a config_store component; "" when rules are not subscribed
  std::string config_key;    // the item holding a rule set (JSON text)
  std::string config_group;
  std::optional<Cluster> cluster;  // absent: cluster rules are refused
  std::optional<Events> events;    // absent: events are only counted
  static absl::StatusOr<FlowControlConfig> Parse(const nlohmann::json& value,
                                                 const std::string& pointer);
};

std::string_view RuleKindName(RuleKind kind);

}  // namespace ottava::mesh::flow
