#include "mesh/filter/flow_control/rule.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/json_config.h"
#include "common/status.h"

namespace ottava::mesh::flow {
namespace {

using config::ConfigError;
using config::ObjectReader;

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// A number within [min, max]; `out` keeps its default when the key is absent.
absl::Status Number(
    ObjectReader& reader, std::string_view key, double* out, double min, double max) {
  const nlohmann::json* value = reader.Child(key);
  if (value == nullptr) {
    return absl::OkStatus();
  }
  if (!value->is_number() || !std::isfinite(value->get<double>()) || value->get<double>() < min ||
      value->get<double>() > max) {
    return ConfigError(reader.PointerOf(key), "must be a number from " + std::to_string(min) +
                                                  " to " + std::to_string(max));
  }
  *out = value->get<double>();
  return absl::OkStatus();
}

absl::Status Choice(ObjectReader& reader,
                    std::string_view key,
                    const std::vector<std::string_view>& names,
                    size_t* out) {
  std::string text;
  OTTAVA_RETURN_IF_ERROR(reader.String(key, &text));
  if (text.empty() && reader.Child(key) == nullptr) {
    return absl::OkStatus();
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (text == names[i]) {
      *out = i;
      return absl::OkStatus();
    }
  }
  std::string list;
  for (std::string_view name : names) {
    list += (list.empty() ? "" : ", ") + std::string(name);
  }
  return ConfigError(reader.PointerOf(key), "must be one of " + list + " (got '" + text + "')");
}

absl::Status ParseCondition(const nlohmann::json& value,
                            const std::string& pointer,
                            Condition* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  int subjects = 0;
  std::string text;
  if (reader.Child("caller_app") != nullptr) {
    ++subjects;
    out->subject = Condition::Subject::kCallerApp;
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString("caller_app", &out->value));
  }
  if (reader.Child("source_ip") != nullptr) {
    ++subjects;
    out->subject = Condition::Subject::kSourceIp;
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString("source_ip", &out->value));
    // "10.1.*" is a prefix; anything else is exact.
    if (out->value.size() > 1 && out->value.back() == '*') {
      out->value.pop_back();
      out->prefix = true;
    }
  }
  for (auto [key, subject] : {std::pair{"header", Condition::Subject::kHeader},
                              std::pair{"query", Condition::Subject::kQuery}}) {
    if (reader.Child(key) == nullptr) {
      continue;
    }
    ++subjects;
    out->subject = subject;
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString(key, &out->name));
    if (subject == Condition::Subject::kHeader) {
      out->name = Lower(out->name);
    }
    const bool has_exact = reader.Child("exact") != nullptr;
    const bool has_prefix = reader.Child("prefix") != nullptr;
    if (has_exact && has_prefix) {
      return ConfigError(pointer, "takes \"exact\" or \"prefix\", not both");
    }
    if (has_exact) {
      OTTAVA_RETURN_IF_ERROR(reader.String("exact", &out->value));
    } else if (has_prefix) {
      OTTAVA_RETURN_IF_ERROR(reader.RequiredString("prefix", &out->value));
      out->prefix = true;
    } else {
      out->present_only = true;
    }
  }
  if (subjects != 1) {
    return ConfigError(pointer,
                       "needs exactly one of \"caller_app\", \"source_ip\", \"header\", \"query\"");
  }
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseWhen(const nlohmann::json& value, const std::string& pointer, ConditionSet* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  const nlohmann::json* all = reader.Child("all");
  const nlohmann::json* any = reader.Child("any");
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  if ((all == nullptr) == (any == nullptr)) {
    return ConfigError(pointer, "needs exactly one of \"all\" (AND) and \"any\" (OR)");
  }
  out->any = any != nullptr;
  const nlohmann::json& list = any != nullptr ? *any : *all;
  const std::string list_pointer = reader.PointerOf(any != nullptr ? "any" : "all");
  if (!list.is_array() || list.empty()) {
    return ConfigError(list_pointer, "must be a non-empty array of conditions");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    Condition condition;
    OTTAVA_RETURN_IF_ERROR(
        ParseCondition(list[i], config::JoinPointer(list_pointer, std::to_string(i)), &condition));
    out->conditions.push_back(std::move(condition));
  }
  return absl::OkStatus();
}

absl::Status ParseReply(const nlohmann::json& value, const std::string& pointer, ReplySpec* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  int64_t status = out->status;
  OTTAVA_RETURN_IF_ERROR(reader.Int("status", &status, 200, 599));
  int64_t fallback_status = 0;
  OTTAVA_RETURN_IF_ERROR(reader.Int("fallback_status", &fallback_status, 100, 599));
  if (reader.Child("status") != nullptr && fallback_status != 0) {
    return ConfigError(pointer, "takes \"status\" or \"fallback_status\", not both");
  }
  if (reader.Child("fallback_cluster") != nullptr) {
    if (reader.Child("status") != nullptr || fallback_status != 0 ||
        reader.Child("body") != nullptr) {
      return ConfigError(pointer,
                         "\"fallback_cluster\" sends the request on: it takes no status or body");
    }
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString("fallback_cluster", &out->fallback_cluster));
    if (out->fallback_cluster.empty()) {
      return ConfigError(pointer + "/fallback_cluster", "must name a cluster");
    }
    out->fallback = true;
  }
  OTTAVA_RETURN_IF_ERROR(reader.String("body", &out->body));
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  out->status = static_cast<int>(fallback_status != 0 ? fallback_status : status);
  out->fallback = fallback_status != 0;
  return absl::OkStatus();
}

absl::Status ParseRule(const nlohmann::json& value, const std::string& pointer, Rule* rule) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("id", &rule->id));
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("resource", &rule->resource));
  size_t match = 0;
  OTTAVA_RETURN_IF_ERROR(Choice(reader, "match", {"exact", "prefix"}, &match));
  rule->prefix = match == 1;
  if (const nlohmann::json* when = reader.Child("when")) {
    OTTAVA_RETURN_IF_ERROR(ParseWhen(*when, reader.PointerOf("when"), &rule->when));
  }
  if (const nlohmann::json* reply = reader.Child("reply")) {
    rule->reply.emplace();
    OTTAVA_RETURN_IF_ERROR(ParseReply(*reply, reader.PointerOf("reply"), &*rule->reply));
  }
  if (reader.Child("kind") == nullptr) {
    return ConfigError(reader.PointerOf("kind"), "is required");
  }
  size_t kind = 0;
  OTTAVA_RETURN_IF_ERROR(
      Choice(reader, "kind", {"qps", "concurrency", "hot_param", "breaker", "cluster"}, &kind));
  rule->kind = static_cast<RuleKind>(kind);
  const bool has_threshold = reader.Child("threshold") != nullptr;
  if (!has_threshold) {
    return ConfigError(reader.PointerOf("threshold"), "is required");
  }
  switch (rule->kind) {
    case RuleKind::kQps: {
      QpsSpec& qps = rule->qps;
      OTTAVA_RETURN_IF_ERROR(Number(reader, "threshold", &qps.threshold, 0, 1e9));
      OTTAVA_RETURN_IF_ERROR(reader.Int("window_ms", &qps.window_ms, 10, 3600 * 1000));
      OTTAVA_RETURN_IF_ERROR(reader.Int("buckets", &qps.buckets, 1, 1000));
      if (qps.window_ms % qps.buckets != 0) {
        return ConfigError(reader.PointerOf("buckets"), "must divide window_ms");
      }
      size_t behavior = 0;
      OTTAVA_RETURN_IF_ERROR(
          Choice(reader, "behavior", {"reject", "warm_up", "throttling"}, &behavior));
      qps.behavior = static_cast<QpsBehavior>(behavior);
      OTTAVA_RETURN_IF_ERROR(reader.Int("warm_up_seconds", &qps.warm_up_seconds, 1, 3600));
      OTTAVA_RETURN_IF_ERROR(Number(reader, "cold_factor", &qps.cold_factor, 1.01, 100));
      OTTAVA_RETURN_IF_ERROR(reader.Int("max_queueing_ms", &qps.max_queueing_ms, 0, 60000));
      if (qps.behavior == QpsBehavior::kThrottling && qps.threshold <= 0) {
        return ConfigError(reader.PointerOf("threshold"), "must be > 0 for throttling");
      }
      break;
    }
    case RuleKind::kConcurrency:
      OTTAVA_RETURN_IF_ERROR(
          reader.Int("threshold", &rule->concurrency.threshold, 0, 1'000'000'000));
      break;
    case RuleKind::kHotParam: {
      HotParamSpec& hot = rule->hot;
      size_t source = 0;
      OTTAVA_RETURN_IF_ERROR(Choice(reader, "source", {"header", "query"}, &source));
      hot.source = source == 0 ? Condition::Subject::kHeader : Condition::Subject::kQuery;
      OTTAVA_RETURN_IF_ERROR(reader.RequiredString("name", &hot.name));
      if (hot.source == Condition::Subject::kHeader) {
        hot.name = Lower(hot.name);
      }
      OTTAVA_RETURN_IF_ERROR(Number(reader, "threshold", &hot.threshold, 0, 1e9));
      OTTAVA_RETURN_IF_ERROR(Number(reader, "burst", &hot.burst, 0, 1e9));
      OTTAVA_RETURN_IF_ERROR(reader.Int("duration_ms", &hot.duration_ms, 1, 3600 * 1000));
      OTTAVA_RETURN_IF_ERROR(reader.Int("capacity", &hot.capacity, 1, 1'000'000));
      if (const nlohmann::json* overrides = reader.Child("overrides")) {
        const std::string at = reader.PointerOf("overrides");
        OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*overrides, at));
        for (const auto& [key, limit] : overrides->items()) {
          if (!limit.is_number() || limit.get<double>() < 0) {
            return ConfigError(config::JoinPointer(at, key), "must be a number >= 0");
          }
          hot.overrides[key] = limit.get<double>();
        }
      }
      break;
    }
    case RuleKind::kBreaker: {
      BreakerSpec& breaker = rule->breaker;
      size_t strategy = 0;
      OTTAVA_RETURN_IF_ERROR(
          Choice(reader, "strategy", {"error_ratio", "error_count", "slow_ratio"}, &strategy));
      breaker.strategy = static_cast<BreakerStrategy>(strategy);
      if (breaker.strategy == BreakerStrategy::kErrorCount) {
        OTTAVA_RETURN_IF_ERROR(Number(reader, "threshold", &breaker.threshold, 1, 1e9));
      } else {
        OTTAVA_RETURN_IF_ERROR(Number(reader, "threshold", &breaker.threshold, 0.000001, 1));
      }
      OTTAVA_RETURN_IF_ERROR(reader.Int("window_ms", &breaker.window_ms, 100, 3600 * 1000));
      OTTAVA_RETURN_IF_ERROR(reader.Int("buckets", &breaker.buckets, 1, 1000));
      if (breaker.window_ms % breaker.buckets != 0) {
        return ConfigError(reader.PointerOf("buckets"), "must divide window_ms");
      }
      OTTAVA_RETURN_IF_ERROR(reader.Int("min_requests", &breaker.min_requests, 1, 1'000'000));
      OTTAVA_RETURN_IF_ERROR(reader.Int("open_ms", &breaker.open_ms, 1, 3600 * 1000));
      OTTAVA_RETURN_IF_ERROR(reader.Int("probes", &breaker.probes, 1, 1000));
      OTTAVA_RETURN_IF_ERROR(reader.Int("slow_ms", &breaker.slow_ms, 1, 3600 * 1000));
      break;
    }
    case RuleKind::kCluster: {
      ClusterSpec& cluster = rule->cluster;
      OTTAVA_RETURN_IF_ERROR(Number(reader, "threshold", &cluster.threshold, 0, 1e12));
      OTTAVA_RETURN_IF_ERROR(reader.Int("window_ms", &cluster.window_ms, 10, 3600 * 1000));
      size_t mode = 1;
      OTTAVA_RETURN_IF_ERROR(Choice(reader, "mode", {"sync", "async"}, &mode));
      cluster.mode = static_cast<ClusterMode>(mode);
      OTTAVA_RETURN_IF_ERROR(reader.Int("share", &cluster.share, 1, 1'000'000'000));
      size_t fallback = 0;
      OTTAVA_RETURN_IF_ERROR(Choice(reader, "fallback", {"local", "allow", "deny"}, &fallback));
      cluster.fallback = static_cast<ClusterFallback>(fallback);
      const bool has_local = reader.Child("local_threshold") != nullptr;
      if (cluster.fallback == ClusterFallback::kLocal && !has_local) {
        return ConfigError(reader.PointerOf("local_threshold"), "is required with fallback local");
      }
      OTTAVA_RETURN_IF_ERROR(Number(reader, "local_threshold", &cluster.local_threshold, 0, 1e12));
      break;
    }
  }
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  rule->canonical = value.dump();
  return absl::OkStatus();
}

absl::Status ParseRuleSetInto(ObjectReader& reader, RuleSet* set) {
  if (const nlohmann::json* reply = reader.Child("reply")) {
    OTTAVA_RETURN_IF_ERROR(ParseReply(*reply, reader.PointerOf("reply"), &set->default_reply));
  }
  if (const nlohmann::json* headers = reader.Child("caller_app_headers")) {
    const std::string at = reader.PointerOf("caller_app_headers");
    if (!headers->is_array()) {
      return ConfigError(at, "must be an array of header names");
    }
    set->caller_app_headers.clear();
    for (size_t i = 0; i < headers->size(); ++i) {
      if (!(*headers)[i].is_string() || (*headers)[i].get<std::string>().empty()) {
        return ConfigError(config::JoinPointer(at, std::to_string(i)),
                           "must be a non-empty string");
      }
      set->caller_app_headers.push_back(Lower((*headers)[i].get<std::string>()));
    }
  }
  const nlohmann::json* rules = reader.Child("rules");
  if (rules == nullptr) {
    return absl::OkStatus();
  }
  const std::string at = reader.PointerOf("rules");
  if (!rules->is_array()) {
    return ConfigError(at, "must be an array of rules");
  }
  std::set<std::string> ids;
  for (size_t i = 0; i < rules->size(); ++i) {
    Rule rule;
    const std::string rule_at = config::JoinPointer(at, std::to_string(i));
    OTTAVA_RETURN_IF_ERROR(ParseRule((*rules)[i], rule_at, &rule));
    if (!ids.insert(rule.id).second) {
      return ConfigError(config::JoinPointer(rule_at, "id"), "'" + rule.id + "' is used twice");
    }
    set->rules.push_back(std::move(rule));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RuleSet> RuleSet::Parse(const nlohmann::json& value, const std::string& pointer) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  RuleSet set;
  OTTAVA_RETURN_IF_ERROR(ParseRuleSetInto(reader, &set));
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  return set;
}

absl::Status RuleSet::CheckFallbackClusters(const std::function<bool(std::string_view)>& exists,
                                            const std::string& pointer) const {
  auto check = [&](const ReplySpec& reply, const std::string& at) -> absl::Status {
    if (reply.fallback_cluster.empty() || exists(reply.fallback_cluster)) {
      return absl::OkStatus();
    }
    return ConfigError(at + "/reply/fallback_cluster",
                       "no mesh cluster named '" + reply.fallback_cluster + "'");
  };
  OTTAVA_RETURN_IF_ERROR(check(default_reply, pointer));
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].reply) {
      OTTAVA_RETURN_IF_ERROR(check(*rules[i].reply, pointer + "/rules/" + std::to_string(i)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RuleSet> RuleSet::ParseText(std::string_view text) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return absl::InvalidArgumentError("rule set is not valid JSON");
  }
  return Parse(value, "");
}

absl::StatusOr<FlowControlConfig> FlowControlConfig::Parse(const nlohmann::json& value,
                                                           const std::string& pointer) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  FlowControlConfig config;
  OTTAVA_RETURN_IF_ERROR(ParseRuleSetInto(reader, &config.rules));
  if (const nlohmann::json* store = reader.Child("config_store")) {
    const std::string at = reader.PointerOf("config_store");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*store, at));
    ObjectReader store_reader(*store, at);
    OTTAVA_RETURN_IF_ERROR(store_reader.RequiredString("store", &config.config_store));
    OTTAVA_RETURN_IF_ERROR(store_reader.RequiredString("key", &config.config_key));
    OTTAVA_RETURN_IF_ERROR(store_reader.String("group", &config.config_group));
    OTTAVA_RETURN_IF_ERROR(store_reader.CheckNoUnknownKeys());
  }
  if (const nlohmann::json* adaptive = reader.Child("adaptive")) {
    const std::string at = reader.PointerOf("adaptive");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*adaptive, at));
    ObjectReader adaptive_reader(*adaptive, at);
    AdaptiveConfig& out = config.adaptive.emplace();
    OTTAVA_RETURN_IF_ERROR(Number(adaptive_reader, "threshold", &out.threshold, 0.01, 1));
    OTTAVA_RETURN_IF_ERROR(adaptive_reader.Int("trigger_seconds", &out.trigger_seconds, 1, 3600));
    OTTAVA_RETURN_IF_ERROR(adaptive_reader.String("stress_header", &out.stress_header));
    out.stress_header = Lower(out.stress_header);
    if (out.stress_header.empty()) {
      return ConfigError(adaptive_reader.PointerOf("stress_header"), "must not be empty");
    }
    OTTAVA_RETURN_IF_ERROR(Number(adaptive_reader, "growth_factor", &out.growth_factor, 1, 1000));
    OTTAVA_RETURN_IF_ERROR(Number(adaptive_reader, "step", &out.step, 0.01, 0.9));
    OTTAVA_RETURN_IF_ERROR(adaptive_reader.CheckNoUnknownKeys());
  }
  if (const nlohmann::json* cluster = reader.Child("cluster")) {
    const std::string at = reader.PointerOf("cluster");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*cluster, at));
    ObjectReader cluster_reader(*cluster, at);
    FlowControlConfig::Cluster& out = config.cluster.emplace();
    const nlohmann::json* redis = cluster_reader.Child("redis");
    const std::string redis_at = cluster_reader.PointerOf("redis");
    if (redis == nullptr) {
      return ConfigError(redis_at, "is required (the Redis client's metadata, e.g. redisHost)");
    }
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*redis, redis_at));
    for (const auto& [key, item] : redis->items()) {
      if (!item.is_string()) {
        return ConfigError(config::JoinPointer(redis_at, key), "must be a string");
      }
      out.redis[key] = item.get<std::string>();
    }
    OTTAVA_RETURN_IF_ERROR(cluster_reader.String("key_prefix", &out.key_prefix));
    OTTAVA_RETURN_IF_ERROR(cluster_reader.CheckNoUnknownKeys());
  }
  if (const nlohmann::json* events = reader.Child("events")) {
    const std::string at = reader.PointerOf("events");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*events, at));
    ObjectReader events_reader(*events, at);
    FlowControlConfig::Events& out = config.events.emplace();
    OTTAVA_RETURN_IF_ERROR(events_reader.RequiredString("pubsub", &out.pubsub));
    OTTAVA_RETURN_IF_ERROR(events_reader.RequiredString("topic", &out.topic));
    OTTAVA_RETURN_IF_ERROR(events_reader.CheckNoUnknownKeys());
  }
  if (!config.cluster) {
    for (size_t i = 0; i < config.rules.rules.size(); ++i) {
      if (config.rules.rules[i].kind == RuleKind::kCluster) {
        return ConfigError(config::JoinPointer(reader.PointerOf("rules"), std::to_string(i)),
                           "a cluster rule needs flow_control.cluster (the Redis counter)");
      }
    }
  }
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  return config;
}

std::string_view RuleKindName(RuleKind kind) {
  switch (kind) {
    case RuleKind::kQps:
      return "qps";
    case RuleKind::kConcurrency:
      return "concurrency";
    case RuleKind::kHotParam:
      return "hot_param";
    case RuleKind::kBreaker:
      return "breaker";
    case RuleKind::kCluster:
      return "cluster";
  }
  return "unknown";
}

}  // namespace ottava::mesh::flow
