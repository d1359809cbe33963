#pragma once

// A cluster as the request path sees it: its immutable description shared by every worker
// (ClusterInfo: config, hosts, limits, stats), and its per-worker state (ThreadLocalCluster: the
// load balancer and one connection pool per host).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/stats.h"
#include "mesh/codec/codec.h"
#include "mesh/config/mesh_config.h"
#include "mesh/upstream/conn_pool.h"
#include "mesh/upstream/host.h"
#include "mesh/upstream/load_balancer.h"

namespace ottava::mesh {

/// Metrics of one cluster, labelled {cluster="name"}; shared by all workers (sharded cells).
struct ClusterStats {
  stats::Counter* requests = nullptr;  // upstream requests sent (tries)
  stats::Counter* responses[6] = {};   // by class: [1]=1xx ... [5]=5xx
  stats::Counter* retries = nullptr;
  stats::Counter* timeouts = nullptr;
  stats::Counter* overflow = nullptr;  // refused by max_connections/pending/requests
  stats::Counter* connect_failures = nullptr;
  stats::Counter* resets = nullptr;     // upstream reset or garbage
  stats::Counter* ejections = nullptr;  // outlier ejections
  stats::Counter* health_check_failures = nullptr;
  stats::Gauge* connections_active = nullptr;
  stats::Gauge* requests_pending = nullptr;
  stats::Gauge* requests_active = nullptr;
  stats::Histogram* upstream_time = nullptr;      // request start to response end, seconds
  stats::Histogram* frames_per_writev = nullptr;  // upstream frames sent per flush
};

/// Immutable description of one cluster; hosts carry their own atomic health.
struct ClusterInfo {
  ClusterConfig config;
  HostVector hosts;
  PoolLimits limits;
  ClusterStats stats;
  const CodecFactory* codec = nullptr;
  CodecOptions codec_options;
  std::shared_ptr<LoadBalancerFactory> lb_factory;

  /// The shared owner of one of `hosts` (null when `host` is not one of them).
  HostSharedPtr SharedHost(const Host* host) const {
    for (const HostSharedPtr& candidate : hosts) {
      if (candidate.get() == host) {
        return candidate;
      }
    }
    return nullptr;
  }
};
using ClusterInfoConstSharedPtr = std::shared_ptr<const ClusterInfo>;

/// Builds a ClusterInfo. Hosts whose address appears in `previous` (the same cluster in the
/// snapshot being replaced) are reused, so health and ejection state survive a config update.
ClusterInfoConstSharedPtr BuildClusterInfo(const ClusterConfig& config,
                                           const ClusterInfo* previous,
                                           const CodecFactory& codec,
                                           stats::Store& stats);

/// One cluster's state on one worker. Worker thread only.
class ThreadLocalCluster {
 public:
  ThreadLocalCluster(Dispatcher& dispatcher, ClusterInfoConstSharedPtr info, uint64_t seed);
  ~ThreadLocalCluster();

  const ClusterInfo& info() const { return *info_; }
  LoadBalancer& lb() { return *lb_; }
  /// The pool of `host` (created on first use).
  ConnectionPool& PoolFor(Host& host);
  /// Whether every pool is idle (a retired cluster may then be destroyed).
  bool Idle() const;
  /// Closes idle connections; busy ones close when their stream ends.
  void Drain();
  /// Destroys pools with nothing in them (called from time to time).
  void ReapIdlePools();

 private:
  Dispatcher& dispatcher_;
  ClusterInfoConstSharedPtr info_;
  std::unique_ptr<LoadBalancer> lb_;
  PoolUsage usage_;
  std::map<const Host*, ConnectionPoolPtr> pools_;
};

}  // namespace ottava::mesh
