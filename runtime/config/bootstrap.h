#pragma once

// The typed bootstrap configuration (DESIGN.md §6). Parsed once at startup from JSON into these
// immutable structs; unknown keys are errors and every error names the JSON pointer of the key.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/address.h"
#include "components/component.h"
#include "mesh/config/mesh_config.h"
#include "mesh/filter/flow_control/rule.h"

namespace ottava::runtime::config {

using ::ottava::Address;
using ::ottava::ParseAddress;

struct CallbackConfig {
  Address address{"127.0.0.1", 9999};
  /// "auto" or "grpc": Layotto's AppCallback over gRPC; "dapr-grpc": Dapr's AppCallback over
  /// gRPC; "http": Dapr's HTTP app contract (GET /dapr/subscribe, events POSTed to routes).
  std::string protocol = "auto";
  /// Sent to the app as `dapr-api-token` (Dapr's APP_API_TOKEN, which overrides it); empty: none.
  std::string api_token;
  /// Deadline of one OnTopicEvent call; a hung app costs at most this per attempt.
  int64_t timeout_ms = 30000;
};

struct AppConfig {
  std::string id = "ottava";
  /// Absent: the application serves no callback (streams and config subscriptions still work).
  std::optional<CallbackConfig> callback;
};

struct ComponentConfig {
  components::Kind kind = components::Kind::kState;
  std::string name;
  std::string type;
  components::Metadata metadata;
  bool required = true;
  std::string pointer;  // where it sits in the file, for later error messages
};

/// One of Dapr's routing rules: deliver to `path` when the CEL expression `match` holds.
struct RouteRuleConfig {
  std::string match;
  std::string path;
};

/// Dapr's bulk subscribe (a Subscription's `bulkSubscribe`, the config's `bulk_subscribe`):
/// batches of up to `max_messages_count` events (0: 100), or what arrived within
/// `max_await_duration_ms` (0: 1000) of the first.
struct BulkSubscribeConfig {
  bool enabled = false;
  int64_t max_messages_count = 0;
  int64_t max_await_duration_ms = 0;
};

struct SubscriptionConfig {
  std::string pubsub_name;
  std::string topic;
  std::string dead_letter_topic;  // empty: none
  /// Redeliveries after the first attempt; -1 retries forever.
  int64_t max_retries = -1;
  /// Messages in flight to the app at once; 1 keeps publish order.
  int64_t concurrency = 1;
  int64_t retry_initial_ms = 100;
  int64_t retry_max_ms = 30000;
  components::Metadata metadata;
  /// Dapr's routing (Subscription resources): the first rule that matches picks the event's path,
  /// else `default_route`. Both empty: no path (Layotto's delivery).
  std::vector<RouteRuleConfig> rules;
  std::string default_route;
  BulkSubscribeConfig bulk;
};

/// Hot upgrade (`upgrade`, docs/architecture.md "Upgrade").
struct UpgradeConfig {
  /// Directory of the control socket `ottava-upgrade.sock`; empty: the ready file's directory,
  /// else the config file's.
  std::string socket_dir;
  /// How long the old process drains after a new one took over.
  int64_t drain_seconds = 5;
  /// How long a new process may take from hello to ready before the old one gives up on it.
  int64_t timeout_seconds = 30;
};

struct Bootstrap {
  AppConfig app;
  Address grpc_address{"127.0.0.1", 34904};
  int64_t max_message_bytes = 4 * 1024 * 1024;
  /// `grpc.max_connection_age_ms`: a client connection older than this (±10 %, gRPC's jitter) is
  /// sent a graceful GOAWAY and the client opens a new one. An upgrade's old process forwards
  /// calls until its connections have aged out, so no call is cut by its shutdown. 0: never.
  int64_t grpc_max_connection_age_ms = 3000;
  Address actuator_address{"127.0.0.1", 34999};
  /// Dapr's HTTP API v1.0 (config `dapr.http_address`; port 0 picks a free one).
  Address dapr_http_address{"127.0.0.1", 3500};
  /// When set (config `api_token`, or DAPR_API_TOKEN which overrides it), every API call must
  /// carry it as `dapr-api-token`; the health endpoints stay open.
  std::string api_token;
  std::string log_level = "info";
  int64_t drain_seconds = 5;
  UpgradeConfig upgrade;
  std::vector<ComponentConfig>
      components;  // kinds in fixed order; names alphabetical within a kind
  std::vector<SubscriptionConfig> subscriptions;
  /// The mesh section; absent when the config has none (no engine is started then).
  std::optional<mesh::MeshConfig> mesh;
  /// The `flow_control` section (issue 9): initial rules and the configuration-store item that
  /// carries live ones. Absent: no rules until pushed through the actuator.
  std::optional<mesh::flow::FlowControlConfig> flow_control;

  /// The component of `kind` named `name`, or nullptr.
  const ComponentConfig* FindComponent(components::Kind kind, std::string_view name) const;
};

/// Parses and validates a bootstrap document. Errors are INVALID_ARGUMENT "<pointer>: <reason>".
absl::StatusOr<Bootstrap> ParseBootstrap(std::string_view json_text);

/// Reads and parses a file. Errors are prefixed with the file name.
absl::StatusOr<Bootstrap> LoadBootstrap(const std::string& path);

}  // namespace ottava::runtime::config
