#pragma once

// One immutable version of the mesh's routing state: the config it came from, the compiled route
// table of every router and the description of every cluster. Built on the main thread, shared
// with workers through std::shared_ptr<const MeshSnapshot>; a request keeps the snapshot it
// started with until it ends, so an update never changes a request in flight.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/stats.h"
#include "mesh/config/mesh_config.h"
#include "mesh/filter/filter.h"
#include "mesh/router/route_table.h"
#include "mesh/upstream/cluster.h"

namespace ottava::mesh {

/// Metrics of one route, labelled {router, route (its index)}.
struct RouteStats {
  stats::Counter* requests = nullptr;
  stats::Counter* responses[6] = {};  // by class: [1]=1xx ... [5]=5xx
};

struct MeshSnapshot {
  MeshConfig config;
  std::map<std::string, std::shared_ptr<const RouteTable>, std::less<>> routers;
  std::map<std::string, ClusterInfoConstSharedPtr, std::less<>> clusters;
  /// Each router's stream-filter chain (factories; one filter per request each).
  std::map<std::string, std::vector<FilterFactoryCb>, std::less<>> filter_chains;
  uint64_t version = 0;
  /// Per-route metrics, keyed by the entry in `routers`' tables.
  std::map<const RouteEntry*, RouteStats> route_stats;

  const RouteStats* StatsOf(const RouteEntry* route) const {
    auto it = route_stats.find(route);
    return it == route_stats.end() ? nullptr : &it->second;
  }

  const RouteTable* Router(std::string_view name) const {
    auto it = routers.find(name);
    return it == routers.end() ? nullptr : it->second.get();
  }
  const std::vector<FilterFactoryCb>* Filters(std::string_view router) const {
    auto it = filter_chains.find(router);
    return it == filter_chains.end() || it->second.empty() ? nullptr : &it->second;
  }
  const ClusterInfoConstSharedPtr* Cluster(std::string_view name) const {
    auto it = clusters.find(name);
    return it == clusters.end() ? nullptr : &it->second;
  }
};
using MeshSnapshotConstSharedPtr = std::shared_ptr<const MeshSnapshot>;

}  // namespace ottava::mesh
