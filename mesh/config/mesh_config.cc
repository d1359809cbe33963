#include "mesh/config/mesh_config.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "common/json_config.h"
#include "common/status.h"

namespace ottava::mesh {
namespace {

using config::ConfigError;
using config::JoinPointer;
using config::ObjectReader;
using nlohmann::json;

// One day: long enough for any sane timeout, short enough that a typo such as an extra zero or a
// value meant in microseconds is caught.
constexpr int64_t kMaxTimeoutMs = 86'400'000;
constexpr int64_t kMinFrameBytes = 1024;
constexpr int64_t kMaxFrameBytes = int64_t{1} << 30;
constexpr uint32_t kMaxRetryAttempts = 10;
constexpr int64_t kMaxLimit = 1'000'000;

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

absl::Status ReadUint32(
    ObjectReader& reader, std::string_view key, uint32_t* out, int64_t min, int64_t max) {
  int64_t value = *out;
  OTTAVA_RETURN_IF_ERROR(reader.Int(key, &value, min, max));
  *out = static_cast<uint32_t>(value);
  return absl::OkStatus();
}

absl::Status ReadDouble(
    ObjectReader& reader, std::string_view key, double* out, double min, double max) {
  const json* value = reader.Child(key);
  if (value == nullptr) {
    return absl::OkStatus();
  }
  if (!value->is_number()) {
    return ConfigError(reader.PointerOf(key),
                       std::string("expected a number, got ") + value->type_name());
  }
  double v = value->get<double>();
  if (!(v >= min && v <= max)) {
    return ConfigError(reader.PointerOf(key), "must be between " + json(min).dump() + " and " +
                                                  json(max).dump() + ", got " + value->dump());
  }
  *out = v;
  return absl::OkStatus();
}

// The array under `key`, or nullptr when absent.
absl::StatusOr<const json*> ReadArray(ObjectReader& reader, std::string_view key) {
  const json* value = reader.Child(key);
  if (value != nullptr && !value->is_array()) {
    return ConfigError(reader.PointerOf(key),
                       std::string("expected an array, got ") + value->type_name());
  }
  return value;
}

absl::Status ReadProtocol(ObjectReader& reader,
                          std::string_view key,
                          bool required,
                          Protocol* out) {
  const std::string pointer = reader.PointerOf(key);
  std::string text;
  if (required) {
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString(key, &text));
  } else {
    OTTAVA_RETURN_IF_ERROR(reader.String(key, &text));
    if (text.empty()) {
      return absl::OkStatus();
    }
  }
  if (text == "http1") {
    *out = Protocol::kHttp1;
  } else if (text == "bolt") {
    *out = Protocol::kBolt;
  } else if (text == "dubbo") {
    *out = Protocol::kDubbo;
  } else {
    return ConfigError(pointer,
                       "unknown protocol " + Quoted(text) + " (expected http1, bolt or dubbo)");
  }
  return absl::OkStatus();
}

// RE2 is used on the data path; compiling here turns a bad pattern into a startup error.
absl::Status CheckRegex(const std::string& pattern, const std::string& pointer) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 regex(pattern, options);
  if (!regex.ok()) {
    return ConfigError(pointer, "invalid regex: " + regex.error());
  }
  return absl::OkStatus();
}

absl::Status ParseHeaderName(ObjectReader& reader, std::string* out) {
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("name", out));
  *out = Lower(*out);
  return absl::OkStatus();
}

absl::Status ParseHeaderMatcher(const json& value,
                                const std::string& pointer,
                                HeaderMatcherConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  OTTAVA_RETURN_IF_ERROR(ParseHeaderName(reader, &out->name));
  if (reader.Child("exact") != nullptr) {
    std::string exact;
    OTTAVA_RETURN_IF_ERROR(reader.String("exact", &exact));
    out->exact = std::move(exact);
  }
  if (reader.Child("regex") != nullptr) {
    if (out->exact.has_value()) {
      return ConfigError(pointer, "'exact' and 'regex' are mutually exclusive");
    }
    std::string regex;
    OTTAVA_RETURN_IF_ERROR(reader.String("regex", &regex));
    OTTAVA_RETURN_IF_ERROR(CheckRegex(regex, reader.PointerOf("regex")));
    out->regex = std::move(regex);
  }
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseMatch(const json& value, const std::string& pointer, RouteMatchConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  OTTAVA_RETURN_IF_ERROR(reader.String("service", &out->service));
  OTTAVA_RETURN_IF_ERROR(reader.String("method", &out->method));
  OTTAVA_RETURN_IF_ERROR(reader.String("path_prefix", &out->path_prefix));
  OTTAVA_ASSIGN_OR_RETURN(const json* headers, ReadArray(reader, "headers"));
  if (headers != nullptr) {
    for (size_t i = 0; i < headers->size(); ++i) {
      HeaderMatcherConfig matcher;
      OTTAVA_RETURN_IF_ERROR(ParseHeaderMatcher(
          (*headers)[i], JoinPointer(reader.PointerOf("headers"), std::to_string(i)), &matcher));
      out->headers.push_back(std::move(matcher));
    }
  }
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseRetry(const json& value, const std::string& pointer, RetryPolicyConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  OTTAVA_RETURN_IF_ERROR(ReadUint32(reader, "attempts", &out->attempts, 0, kMaxRetryAttempts));
  OTTAVA_RETURN_IF_ERROR(
      reader.Int("per_try_timeout_ms", &out->per_try_timeout_ms, 0, kMaxTimeoutMs));
  OTTAVA_ASSIGN_OR_RETURN(const json* on, ReadArray(reader, "on"));
  if (on != nullptr) {
    for (size_t i = 0; i < on->size(); ++i) {
      const std::string element = JoinPointer(reader.PointerOf("on"), std::to_string(i));
      const json& condition = (*on)[i];
      if (!condition.is_string()) {
        return ConfigError(element, std::string("expected a string, got ") + condition.type_name());
      }
      const std::string& name = condition.get_ref<const std::string&>();
      if (name == "connect-failure") {
        out->on_connect_failure = true;
      } else if (name == "reset") {
        out->on_reset = true;
      } else if (name == "5xx") {
        out->on_5xx = true;
      } else if (name == "gateway-error") {
        out->on_gateway_error = true;
      } else {
        return ConfigError(element, "unknown retry condition " + Quoted(name) +
                                        " (expected connect-failure, reset, 5xx or gateway-error)");
      }
    }
  }
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseHeaderValues(ObjectReader& reader,
                               std::string_view key,
                               std::vector<HeaderValue>* out) {
  OTTAVA_ASSIGN_OR_RETURN(const json* list, ReadArray(reader, key));
  if (list == nullptr) {
    return absl::OkStatus();
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string pointer = JoinPointer(reader.PointerOf(key), std::to_string(i));
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject((*list)[i], pointer));
    ObjectReader item((*list)[i], pointer);
    HeaderValue header;
    OTTAVA_RETURN_IF_ERROR(ParseHeaderName(item, &header.name));
    OTTAVA_RETURN_IF_ERROR(item.String("value", &header.value));
    OTTAVA_RETURN_IF_ERROR(item.CheckNoUnknownKeys());
    out->push_back(std::move(header));
  }
  return absl::OkStatus();
}

absl::Status ParseHeaderNames(ObjectReader& reader,
                              std::string_view key,
                              std::vector<std::string>* out) {
  OTTAVA_ASSIGN_OR_RETURN(const json* list, ReadArray(reader, key));
  if (list == nullptr) {
    return absl::OkStatus();
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string pointer = JoinPointer(reader.PointerOf(key), std::to_string(i));
    const json& name = (*list)[i];
    if (!name.is_string() || name.get_ref<const std::string&>().empty()) {
      return ConfigError(pointer, "expected a non-empty header name");
    }
    out->push_back(Lower(name.get_ref<const std::string&>()));
  }
  return absl::OkStatus();
}

absl::Status ParseRoute(const json& value, const std::string& pointer, RouteConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  out->pointer = pointer;
  if (const json* match = reader.Child("match"); match != nullptr) {
    OTTAVA_RETURN_IF_ERROR(ParseMatch(*match, reader.PointerOf("match"), &out->match));
  }
  int targets = 0;
  if (reader.Child("cluster") != nullptr) {
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString("cluster", &out->cluster));
    ++targets;
  }
  OTTAVA_ASSIGN_OR_RETURN(const json* weighted, ReadArray(reader, "weighted_clusters"));
  if (weighted != nullptr) {
    ++targets;
    const std::string list_pointer = reader.PointerOf("weighted_clusters");
    if (weighted->empty()) {
      return ConfigError(list_pointer, "must not be empty");
    }
    for (size_t i = 0; i < weighted->size(); ++i) {
      const std::string item_pointer = JoinPointer(list_pointer, std::to_string(i));
      OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject((*weighted)[i], item_pointer));
      ObjectReader item((*weighted)[i], item_pointer);
      WeightedClusterConfig target;
      OTTAVA_RETURN_IF_ERROR(item.RequiredString("cluster", &target.cluster));
      if (item.Child("weight") == nullptr) {
        return ConfigError(item.PointerOf("weight"), "is required");
      }
      OTTAVA_RETURN_IF_ERROR(ReadUint32(item, "weight", &target.weight, 1, kMaxLimit));
      OTTAVA_RETURN_IF_ERROR(item.CheckNoUnknownKeys());
      out->weighted_clusters.push_back(std::move(target));
    }
  }
  if (const json* direct = reader.Child("direct_response"); direct != nullptr) {
    ++targets;
    const std::string direct_pointer = reader.PointerOf("direct_response");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*direct, direct_pointer));
    ObjectReader item(*direct, direct_pointer);
    DirectResponseConfig response;
    int64_t status = response.status;
    OTTAVA_RETURN_IF_ERROR(item.Int("status", &status, 100, 599));
    response.status = static_cast<int>(status);
    OTTAVA_RETURN_IF_ERROR(item.String("body", &response.body));
    OTTAVA_RETURN_IF_ERROR(item.CheckNoUnknownKeys());
    out->direct_response = std::move(response);
  }
  if (targets != 1) {
    return ConfigError(pointer,
                       "needs exactly one of 'cluster', 'weighted_clusters' or 'direct_response'");
  }
  OTTAVA_RETURN_IF_ERROR(reader.Int("timeout_ms", &out->timeout_ms, 0, kMaxTimeoutMs));
  if (const json* retry = reader.Child("retry"); retry != nullptr) {
    RetryPolicyConfig policy;
    OTTAVA_RETURN_IF_ERROR(ParseRetry(*retry, reader.PointerOf("retry"), &policy));
    out->retry = policy;
  }
  if (const json* mirror = reader.Child("mirror"); mirror != nullptr) {
    const std::string mirror_pointer = reader.PointerOf("mirror");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*mirror, mirror_pointer));
    ObjectReader item(*mirror, mirror_pointer);
    MirrorConfig policy;
    OTTAVA_RETURN_IF_ERROR(item.RequiredString("cluster", &policy.cluster));
    OTTAVA_RETURN_IF_ERROR(ReadDouble(item, "percent", &policy.percent, 0, 100));
    OTTAVA_RETURN_IF_ERROR(item.CheckNoUnknownKeys());
    out->mirror = std::move(policy);
  }
  OTTAVA_RETURN_IF_ERROR(reader.String("prefix_rewrite", &out->prefix_rewrite));
  OTTAVA_RETURN_IF_ERROR(
      ParseHeaderValues(reader, "request_headers_to_add", &out->request_headers_to_add));
  OTTAVA_RETURN_IF_ERROR(
      ParseHeaderNames(reader, "request_headers_to_remove", &out->request_headers_to_remove));
  OTTAVA_RETURN_IF_ERROR(
      ParseHeaderValues(reader, "response_headers_to_add", &out->response_headers_to_add));
  OTTAVA_RETURN_IF_ERROR(
      ParseHeaderNames(reader, "response_headers_to_remove", &out->response_headers_to_remove));
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseRouter(const json& value, const std::string& pointer, RouterConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  out->pointer = pointer;
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("name", &out->name));
  OTTAVA_ASSIGN_OR_RETURN(const json* filters, ReadArray(reader, "filters"));
  if (filters != nullptr) {
    for (size_t i = 0; i < filters->size(); ++i) {
      const std::string filter_pointer =
          JoinPointer(reader.PointerOf("filters"), std::to_string(i));
      OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject((*filters)[i], filter_pointer));
      ObjectReader filter_reader((*filters)[i], filter_pointer);
      FilterConfig filter;
      filter.pointer = filter_pointer;
      OTTAVA_RETURN_IF_ERROR(filter_reader.RequiredString("name", &filter.name));
      if (const json* config = filter_reader.Child("config")) {
        OTTAVA_RETURN_IF_ERROR(
            ObjectReader::CheckObject(*config, filter_reader.PointerOf("config")));
        filter.config = *config;
      }
      OTTAVA_RETURN_IF_ERROR(filter_reader.CheckNoUnknownKeys());
      out->filters.push_back(std::move(filter));
    }
  }
  OTTAVA_ASSIGN_OR_RETURN(const json* routes, ReadArray(reader, "routes"));
  if (routes != nullptr) {
    for (size_t i = 0; i < routes->size(); ++i) {
      RouteConfig route;
      OTTAVA_RETURN_IF_ERROR(ParseRoute(
          (*routes)[i], JoinPointer(reader.PointerOf("routes"), std::to_string(i)), &route));
      out->routes.push_back(std::move(route));
    }
  }
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseHealthCheck(const json& value,
                              const std::string& pointer,
                              HealthCheckConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  std::string type;
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("type", &type));
  if (type == "tcp") {
    out->type = HealthCheckConfig::kTcp;
  } else if (type == "http") {
    out->type = HealthCheckConfig::kHttp;
  } else if (type == "bolt") {
    out->type = HealthCheckConfig::kBolt;
  } else if (type == "dubbo") {
    out->type = HealthCheckConfig::kDubbo;
  } else {
    return ConfigError(reader.PointerOf("type"), "unknown health check type " + Quoted(type) +
                                                     " (expected tcp, http, bolt or dubbo)");
  }
  OTTAVA_RETURN_IF_ERROR(reader.String("path", &out->path));
  if (out->path.empty() || out->path[0] != '/') {
    return ConfigError(reader.PointerOf("path"), "must start with '/'");
  }
  OTTAVA_RETURN_IF_ERROR(reader.Int("interval_ms", &out->interval_ms, 1, kMaxTimeoutMs));
  OTTAVA_RETURN_IF_ERROR(reader.Int("timeout_ms", &out->timeout_ms, 1, kMaxTimeoutMs));
  OTTAVA_RETURN_IF_ERROR(ReadUint32(reader, "healthy_threshold", &out->healthy_threshold, 1, 1000));
  OTTAVA_RETURN_IF_ERROR(
      ReadUint32(reader, "unhealthy_threshold", &out->unhealthy_threshold, 1, 1000));
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseOutlierDetection(const json& value,
                                   const std::string& pointer,
                                   OutlierDetectionConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  OTTAVA_RETURN_IF_ERROR(ReadUint32(reader, "consecutive_5xx", &out->consecutive_5xx, 0, 1000));
  OTTAVA_RETURN_IF_ERROR(ReadUint32(reader, "consecutive_connect_failures",
                                    &out->consecutive_connect_failures, 0, 1000));
  OTTAVA_RETURN_IF_ERROR(reader.Int("base_ejection_ms", &out->base_ejection_ms, 1, kMaxTimeoutMs));
  OTTAVA_RETURN_IF_ERROR(reader.Int("max_ejection_ms", &out->max_ejection_ms, 1, kMaxTimeoutMs));
  if (out->max_ejection_ms < out->base_ejection_ms) {
    return ConfigError(
        reader.PointerOf("max_ejection_ms"),
        "must not be below base_ejection_ms (" + std::to_string(out->base_ejection_ms) + ")");
  }
  OTTAVA_RETURN_IF_ERROR(
      ReadUint32(reader, "max_ejection_percent", &out->max_ejection_percent, 0, 100));
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseCluster(const json& value, const std::string& pointer, ClusterConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  out->pointer = pointer;
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("name", &out->name));
  OTTAVA_RETURN_IF_ERROR(ReadProtocol(reader, "protocol", /*required=*/false, &out->protocol));
  std::string lb;
  OTTAVA_RETURN_IF_ERROR(reader.String("lb", &lb));
  if (lb.empty() || lb == "round_robin") {
    out->lb = LbPolicy::kRoundRobin;
  } else if (lb == "random") {
    out->lb = LbPolicy::kRandom;
  } else if (lb == "least_request") {
    out->lb = LbPolicy::kLeastRequest;
  } else if (lb == "maglev") {
    out->lb = LbPolicy::kMaglev;
  } else {
    return ConfigError(reader.PointerOf("lb"),
                       "unknown load balancer " + Quoted(lb) +
                           " (expected round_robin, random, least_request or maglev)");
  }
  OTTAVA_RETURN_IF_ERROR(reader.String("hash_header", &out->hash_header));
  out->hash_header = Lower(out->hash_header);
  if (out->lb == LbPolicy::kMaglev && out->hash_header.empty()) {
    return ConfigError(reader.PointerOf("hash_header"), "is required with lb 'maglev'");
  }
  if (out->lb != LbPolicy::kMaglev && !out->hash_header.empty()) {
    return ConfigError(reader.PointerOf("hash_header"), "is only used with lb 'maglev'");
  }
  OTTAVA_RETURN_IF_ERROR(
      reader.Int("connect_timeout_ms", &out->connect_timeout_ms, 1, kMaxTimeoutMs));
  OTTAVA_RETURN_IF_ERROR(
      ReadUint32(reader, "max_connections", &out->max_connections, 1, kMaxLimit));
  OTTAVA_RETURN_IF_ERROR(ReadUint32(reader, "max_pending", &out->max_pending, 0, kMaxLimit));
  OTTAVA_RETURN_IF_ERROR(ReadUint32(reader, "max_requests", &out->max_requests, 1, kMaxLimit));
  OTTAVA_RETURN_IF_ERROR(
      ReadUint32(reader, "connections_per_host", &out->connections_per_host, 1, 1024));
  OTTAVA_RETURN_IF_ERROR(reader.Int("idle_timeout_ms", &out->idle_timeout_ms, 1, kMaxTimeoutMs));
  OTTAVA_RETURN_IF_ERROR(
      reader.Int("max_frame_bytes", &out->max_frame_bytes, kMinFrameBytes, kMaxFrameBytes));
  OTTAVA_RETURN_IF_ERROR(
      reader.Int("heartbeat_interval_ms", &out->heartbeat_interval_ms, 0, kMaxTimeoutMs));
  OTTAVA_RETURN_IF_ERROR(
      ReadUint32(reader, "panic_threshold_percent", &out->panic_threshold_percent, 0, 100));

  OTTAVA_ASSIGN_OR_RETURN(const json* hosts, ReadArray(reader, "hosts"));
  const std::string hosts_pointer = reader.PointerOf("hosts");
  if (hosts == nullptr) {
    return ConfigError(hosts_pointer, "is required");
  }
  if (hosts->empty()) {
    return ConfigError(hosts_pointer, "must not be empty");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < hosts->size(); ++i) {
    const std::string item_pointer = JoinPointer(hosts_pointer, std::to_string(i));
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject((*hosts)[i], item_pointer));
    ObjectReader item((*hosts)[i], item_pointer);
    HostConfig host;
    std::string address;
    OTTAVA_RETURN_IF_ERROR(item.RequiredString("address", &address));
    OTTAVA_ASSIGN_OR_RETURN(host.address, ParseAddress(address, item.PointerOf("address")));
    if (host.address.port == 0) {
      return ConfigError(item.PointerOf("address"), "an upstream host needs a port");
    }
    if (!seen.insert(host.address.ToString()).second) {
      return ConfigError(item.PointerOf("address"), "duplicate host " + Quoted(address));
    }
    OTTAVA_RETURN_IF_ERROR(ReadUint32(item, "weight", &host.weight, 1, 1000));
    OTTAVA_RETURN_IF_ERROR(item.CheckNoUnknownKeys());
    out->hosts.push_back(std::move(host));
  }
  if (const json* check = reader.Child("health_check"); check != nullptr) {
    HealthCheckConfig health;
    OTTAVA_RETURN_IF_ERROR(ParseHealthCheck(*check, reader.PointerOf("health_check"), &health));
    out->health_check = std::move(health);
  }
  if (const json* outlier = reader.Child("outlier_detection"); outlier != nullptr) {
    OutlierDetectionConfig detection;
    OTTAVA_RETURN_IF_ERROR(
        ParseOutlierDetection(*outlier, reader.PointerOf("outlier_detection"), &detection));
    out->outlier_detection = detection;
  }
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseListener(const json& value, const std::string& pointer, ListenerConfig* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  out->pointer = pointer;
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("name", &out->name));
  std::string address;
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("address", &address));
  OTTAVA_ASSIGN_OR_RETURN(out->address, ParseAddress(address, reader.PointerOf("address")));
  OTTAVA_RETURN_IF_ERROR(ReadProtocol(reader, "protocol", /*required=*/true, &out->protocol));
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("router", &out->router));
  OTTAVA_RETURN_IF_ERROR(reader.Int("idle_timeout_ms", &out->idle_timeout_ms, 1, kMaxTimeoutMs));
  OTTAVA_RETURN_IF_ERROR(
      reader.Int("header_timeout_ms", &out->header_timeout_ms, 1, kMaxTimeoutMs));
  OTTAVA_RETURN_IF_ERROR(
      reader.Int("max_frame_bytes", &out->max_frame_bytes, kMinFrameBytes, kMaxFrameBytes));
  return reader.CheckNoUnknownKeys();
}

// Parses every element of the array under `key` with `parse`.
template <typename T, typename ParseFn>
absl::Status ParseList(ObjectReader& reader,
                       std::string_view key,
                       ParseFn parse,
                       std::vector<T>* out) {
  OTTAVA_ASSIGN_OR_RETURN(const json* list, ReadArray(reader, key));
  if (list == nullptr) {
    return absl::OkStatus();
  }
  for (size_t i = 0; i < list->size(); ++i) {
    T item;
    OTTAVA_RETURN_IF_ERROR(
        parse((*list)[i], JoinPointer(reader.PointerOf(key), std::to_string(i)), &item));
    out->push_back(std::move(item));
  }
  return absl::OkStatus();
}

// Fails on the second item of `items` that has an already seen name.
template <typename T>
absl::Status CheckUniqueNames(const std::vector<T>& items, std::string_view kind) {
  std::set<std::string_view> names;
  for (const T& item : items) {
    if (!names.insert(item.name).second) {
      return ConfigError(JoinPointer(item.pointer, "name"),
                         "duplicate " + std::string(kind) + " name " + Quoted(item.name));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp1:
      return "http1";
    case Protocol::kBolt:
      return "bolt";
    case Protocol::kDubbo:
      return "dubbo";
  }
  return "unknown";
}

std::string_view LbPolicyName(LbPolicy policy) {
  switch (policy) {
    case LbPolicy::kRoundRobin:
      return "round_robin";
    case LbPolicy::kRandom:
      return "random";
    case LbPolicy::kLeastRequest:
      return "least_request";
    case LbPolicy::kMaglev:
      return "maglev";
  }
  return "unknown";
}

absl::StatusOr<MeshConfig> MeshConfig::Parse(const nlohmann::json& value,
                                             const std::string& pointer) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  MeshConfig config;
  OTTAVA_RETURN_IF_ERROR(ReadUint32(reader, "workers", &config.workers, 0, 256));
  OTTAVA_RETURN_IF_ERROR(ParseList(reader, "listeners", ParseListener, &config.listeners));
  OTTAVA_RETURN_IF_ERROR(ParseList(reader, "routers", ParseRouter, &config.routers));
  OTTAVA_RETURN_IF_ERROR(ParseList(reader, "clusters", ParseCluster, &config.clusters));
  if (reader.Child("rpc_router") != nullptr) {
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString("rpc_router", &config.rpc_router));
    config.rpc_router_explicit = true;
    if (config.FindRouter(config.rpc_router) == nullptr) {
      return ConfigError(reader.PointerOf("rpc_router"),
                         "unknown router " + Quoted(config.rpc_router));
    }
  } else if (!config.routers.empty()) {
    config.rpc_router = config.routers.front().name;
  }
  OTTAVA_RETURN_IF_ERROR(reader.StringMap("rpc_headers", &config.rpc_headers));
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  OTTAVA_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<MeshConfig> MeshConfig::ParseRoutesAndClusters(const nlohmann::json& value,
                                                              const MeshConfig& current) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, ""));
  ObjectReader reader(value, "");
  MeshConfig config = current;
  if (reader.Child("routers") != nullptr) {
    config.routers.clear();
    OTTAVA_RETURN_IF_ERROR(ParseList(reader, "routers", ParseRouter, &config.routers));
  }
  if (reader.Child("clusters") != nullptr) {
    config.clusters.clear();
    OTTAVA_RETURN_IF_ERROR(ParseList(reader, "clusters", ParseCluster, &config.clusters));
  }
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  // Listeners are bootstrap config: an update may not leave one without its router.
  for (const ListenerConfig& listener : config.listeners) {
    if (config.FindRouter(listener.router) == nullptr) {
      return ConfigError("/routers", "router " + Quoted(listener.router) + " of listener " +
                                         Quoted(listener.name) + " is missing");
    }
  }
  if (config.rpc_router_explicit) {
    if (config.FindRouter(config.rpc_router) == nullptr) {
      return ConfigError("/routers", "rpc_router " + Quoted(config.rpc_router) + " is missing");
    }
  } else {
    config.rpc_router = config.routers.empty() ? "" : config.routers.front().name;
  }
  OTTAVA_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::Status MeshConfig::Validate() const {
  OTTAVA_RETURN_IF_ERROR(CheckUniqueNames(listeners, "listener"));
  OTTAVA_RETURN_IF_ERROR(CheckUniqueNames(routers, "router"));
  OTTAVA_RETURN_IF_ERROR(CheckUniqueNames(clusters, "cluster"));
  for (const ListenerConfig& listener : listeners) {
    if (FindRouter(listener.router) == nullptr) {
      return ConfigError(JoinPointer(listener.pointer, "router"),
                         "unknown router " + Quoted(listener.router));
    }
  }
  if (!rpc_router.empty() && FindRouter(rpc_router) == nullptr) {
    return ConfigError("/rpc_router", "unknown router " + Quoted(rpc_router));
  }
  auto check_cluster = [this](const std::string& name, const std::string& pointer) {
    if (FindCluster(name) == nullptr) {
      return ConfigError(pointer, "unknown cluster " + Quoted(name));
    }
    return absl::OkStatus();
  };
  for (const RouterConfig& router : routers) {
    for (const RouteConfig& route : router.routes) {
      if (!route.cluster.empty()) {
        OTTAVA_RETURN_IF_ERROR(check_cluster(route.cluster, JoinPointer(route.pointer, "cluster")));
      }
      const std::string weighted_pointer = JoinPointer(route.pointer, "weighted_clusters");
      for (size_t i = 0; i < route.weighted_clusters.size(); ++i) {
        OTTAVA_RETURN_IF_ERROR(check_cluster(
            route.weighted_clusters[i].cluster,
            JoinPointer(JoinPointer(weighted_pointer, std::to_string(i)), "cluster")));
      }
      if (route.mirror.has_value()) {
        OTTAVA_RETURN_IF_ERROR(check_cluster(
            route.mirror->cluster, JoinPointer(JoinPointer(route.pointer, "mirror"), "cluster")));
      }
    }
  }
  return absl::OkStatus();
}

const ClusterConfig* MeshConfig::FindCluster(std::string_view name) const {
  for (const ClusterConfig& cluster : clusters) {
    if (cluster.name == name) {
      return &cluster;
    }
  }
  return nullptr;
}

const RouterConfig* MeshConfig::FindRouter(std::string_view name) const {
  for (const RouterConfig& router : routers) {
    if (router.name == name) {
      return &router;
    }
  }
  return nullptr;
}

}  // namespace ottava::mesh
