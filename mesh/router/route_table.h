#pragma once

// The compiled route table of one router (DESIGN.md §8) and a per-worker cache of its results.
//
// A RouteTable is built once from a validated RouterConfig, on the main thread, and is immutable
// afterwards: workers share it through std::shared_ptr<const RouteTable> and call Match
// concurrently without locks. A config update builds a new table; it never mutates one.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "mesh/codec/message.h"
#include "mesh/config/mesh_config.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace ottava::mesh {

/// One route with its matchers compiled.
struct RouteEntry {
  /// A header condition: `regex` (full match) when set, else `exact` when set, else presence.
  struct HeaderMatcher {
    std::string name;  // lower-case
    std::optional<std::string> exact;
    std::shared_ptr<const re2::RE2> regex;
  };

  RouteConfig config;
  std::vector<HeaderMatcher> header_matchers;
  /// Running sums of `config.weighted_clusters` weights; empty for a single cluster.
  std::vector<uint64_t> cumulative_weights;

  /// Whether every condition of the route holds for `request`. Thread-safe.
  bool Matches(const RequestHeaders& request) const;

  /// The upstream cluster for one request: with weighted_clusters, the one whose cumulative weight
  /// range contains `random` modulo the total weight (so uniform `random` values split traffic by
  /// weight); otherwise `config.cluster` ("" for a direct response route). Thread-safe.
  const std::string& PickCluster(uint64_t random) const;
};

/// The ordered, compiled routes of one router.
class RouteTable {
 public:
  /// Compiles `config` (already validated by MeshConfig::Parse). Fails only on a regex that does
  /// not compile, with the JSON pointer of that regex.
  static absl::StatusOr<std::shared_ptr<const RouteTable>> Create(const RouterConfig& config);

  /// The first route whose every condition holds for `request`, or nullptr. Thread-safe.
  const RouteEntry* Match(const RequestHeaders& request) const;

  const std::string& name() const { return name_; }
  const std::vector<RouteEntry>& routes() const { return routes_; }
  /// Every header name some route of this table tests, sorted and unique. A RouteCache keys on the
  /// values of exactly these headers.
  const std::vector<std::string>& header_names() const { return header_names_; }
  /// Distinct for every table ever created in this process (unlike its address, never reused).
  uint64_t id() const { return id_; }

 private:
  RouteTable() = default;

  std::string name_;
  std::vector<RouteEntry> routes_;
  std::vector<std::string> header_names_;
  uint64_t id_ = 0;
};
using RouteTableConstSharedPtr = std::shared_ptr<const RouteTable>;

/// Per-worker memo of RouteTable::Match. Not thread-safe: one per worker, used on its thread.
/// The key is everything a match can depend on (service, method, path without query, and the
/// values of the table's header_names()), so a cached result always equals Match's; misses are
/// cached too. Holds entries of one table at a time: asking with another table clears the cache.
/// The caller keeps the table alive while it uses results from the cache.
class RouteCache {
 public:
  static constexpr size_t kDefaultCapacity = 4096;

  /// `capacity`: entries kept before the cache is cleared wholesale (bounded memory).
  explicit RouteCache(size_t capacity = kDefaultCapacity);

  /// Same result as table.Match(request), from the cache when the key was seen.
  const RouteEntry* Match(const RouteTable& table, const RequestHeaders& request);

  size_t size() const { return entries_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  void BuildKey(const RouteTable& table, const RequestHeaders& request);
  void Remember(const RouteEntry* route);

  size_t capacity_;
  uint64_t table_id_ = 0;  // 0: none yet (table ids start at 1)
  std::unordered_map<std::string, const RouteEntry*> entries_;
  std::string key_;  // reused across calls so a hit does not allocate
  // The last key looked up (empty: none; a built key never is) and its result, checked before
  // the map.
  std::string last_key_;
  const RouteEntry* last_route_ = nullptr;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace ottava::mesh
