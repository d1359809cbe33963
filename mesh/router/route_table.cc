#include "mesh/router/route_table.h"

#include <re2/re2.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "common/json_config.h"

namespace ottava::mesh {
namespace {

// Ids only need to be distinct; a relaxed counter does that across threads.
std::atomic<uint64_t> next_table_id{1};

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

// Appends a length-prefixed field, so that distinct field lists never produce the same key.
void AppendField(std::string* key, std::string_view field) {
  const auto size = static_cast<uint32_t>(field.size());
  key->append(reinterpret_cast<const char*>(&size), sizeof(size));
  key->append(field);
}

}  // namespace

bool RouteEntry::Matches(const RequestHeaders& request) const {
  const RouteMatchConfig& match = config.match;
  if (!match.service.empty() && request.service != match.service) {
    return false;
  }
  if (!match.method.empty() && request.method != match.method) {
    return false;
  }
  if (!match.path_prefix.empty() && !StartsWith(request.PathOnly(), match.path_prefix)) {
    return false;
  }
  for (const HeaderMatcher& matcher : header_matchers) {
    const std::string* value = request.headers.Get(matcher.name);
    if (value == nullptr) {
      return false;
    }
    if (matcher.regex != nullptr) {
      if (!RE2::FullMatch(*value, *matcher.regex)) {
        return false;
      }
    } else if (matcher.exact.has_value() && *value != *matcher.exact) {
      return false;
    }
  }
  return true;
}

const std::string& RouteEntry::PickCluster(uint64_t random) const {
  if (cumulative_weights.empty()) {
    return config.cluster;
  }
  const uint64_t point = random % cumulative_weights.back();
  // The first range whose running sum exceeds the point.
  auto it = std::upper_bound(cumulative_weights.begin(), cumulative_weights.end(), point);
  return config.weighted_clusters[static_cast<size_t>(it - cumulative_weights.begin())].cluster;
}

absl::StatusOr<std::shared_ptr<const RouteTable>> RouteTable::Create(const RouterConfig& config) {
  std::shared_ptr<RouteTable> table(new RouteTable());
  table->name_ = config.name;
  table->id_ = next_table_id.fetch_add(1, std::memory_order_relaxed);
  table->routes_.reserve(config.routes.size());
  for (const RouteConfig& route : config.routes) {
    RouteEntry entry;
    entry.config = route;
    const std::string headers_pointer =
        config::JoinPointer(config::JoinPointer(route.pointer, "match"), "headers");
    for (size_t i = 0; i < route.match.headers.size(); ++i) {
      const HeaderMatcherConfig& header = route.match.headers[i];
      RouteEntry::HeaderMatcher matcher;
      matcher.name = header.name;
      matcher.exact = header.exact;
      if (header.regex.has_value()) {
        RE2::Options options;
        options.set_log_errors(false);
        auto regex = std::make_shared<RE2>(*header.regex, options);
        if (!regex->ok()) {
          return config::ConfigError(
              config::JoinPointer(config::JoinPointer(headers_pointer, std::to_string(i)), "regex"),
              "invalid regex: " + regex->error());
        }
        matcher.regex = std::move(regex);
      }
      table->header_names_.push_back(header.name);
      entry.header_matchers.push_back(std::move(matcher));
    }
    uint64_t sum = 0;
    for (const WeightedClusterConfig& target : route.weighted_clusters) {
      sum += target.weight;
      entry.cumulative_weights.push_back(sum);
    }
    if (sum == 0) {
      // Validation rejects zero weights; an all-zero list must not divide by zero in PickCluster.
      entry.cumulative_weights.clear();
      if (entry.config.cluster.empty() && !route.weighted_clusters.empty()) {
        entry.config.cluster = route.weighted_clusters.front().cluster;
      }
    }
    table->routes_.push_back(std::move(entry));
  }
  std::sort(table->header_names_.begin(), table->header_names_.end());
  table->header_names_.erase(std::unique(table->header_names_.begin(), table->header_names_.end()),
                             table->header_names_.end());
  return std::shared_ptr<const RouteTable>(std::move(table));
}

const RouteEntry* RouteTable::Match(const RequestHeaders& request) const {
  for (const RouteEntry& route : routes_) {
    if (route.Matches(request)) {
      return &route;
    }
  }
  return nullptr;
}

RouteCache::RouteCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

void RouteCache::BuildKey(const RouteTable& table, const RequestHeaders& request) {
  key_.clear();
  AppendField(&key_, request.service);
  AppendField(&key_, request.method);
  AppendField(&key_, request.PathOnly());
  for (const std::string& name : table.header_names()) {
    const std::string* value = request.headers.Get(name);
    // Presence is part of the key: an absent header and an empty one match differently.
    if (value == nullptr) {
      key_.push_back('\0');
    } else {
      key_.push_back('\1');
      AppendField(&key_, *value);
    }
  }
}

void RouteCache::Remember(const RouteEntry* route) {
  last_key_.assign(key_);  // reuses its capacity
  last_route_ = route;
}

const RouteEntry* RouteCache::Match(const RouteTable& table, const RequestHeaders& request) {
  if (table.id() != table_id_) {
    entries_.clear();
    last_key_.clear();
    table_id_ = table.id();
  }
  BuildKey(table, request);
  // Consecutive requests mostly name the same service: one comparison, no hashing.
  if (key_ == last_key_) {
    ++hits_;
    return last_route_;
  }
  if (auto it = entries_.find(key_); it != entries_.end()) {
    ++hits_;
    Remember(it->second);
    return it->second;
  }
  ++misses_;
  const RouteEntry* route = table.Match(request);
  if (entries_.size() >= capacity_) {
    entries_.clear();
  }
  entries_.emplace(key_, route);
  Remember(route);
  return route;
}

}  // namespace ottava::mesh
