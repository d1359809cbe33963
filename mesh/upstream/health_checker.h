#pragma once

// Active health checking and passive outlier ejection of a cluster's hosts. Both run on the mesh
// engine's main loop (not on workers); they only flip atomic flags on the shared Host objects,
// which every worker's load balancer reads.

#include <memory>
#include <vector>

#include "common/dispatcher.h"
#include "mesh/upstream/cluster.h"

namespace ottava::mesh {

/// Checks every host of one cluster on an interval: TCP connect, or HTTP GET `path` answered
/// 2xx (HTTP/1.1 over a fresh connection). `unhealthy_threshold` consecutive failures set
/// kFailedActiveHealthCheck; `healthy_threshold` consecutive successes clear it. Hosts start
/// healthy and are checked at once. Loop thread only.
class HealthChecker {
 public:
  HealthChecker(Dispatcher& dispatcher, ClusterInfoConstSharedPtr cluster);
  ~HealthChecker();
  void Start();

 private:
  class Session;
  Dispatcher& dispatcher_;
  ClusterInfoConstSharedPtr cluster_;
  std::vector<std::unique_ptr<Session>> sessions_;
};

/// Ejects hosts reported by workers (consecutive 5xx or connect failures) for
/// base_ejection_ms × times ejected (capped at max_ejection_ms), never more than
/// max_ejection_percent of the cluster at once. Loop thread only.
class OutlierEjector {
 public:
  explicit OutlierEjector(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  ~OutlierEjector();
  /// Ejects `host` of `cluster` unless the cap forbids it.
  void Eject(const ClusterInfoConstSharedPtr& cluster, const std::shared_ptr<Host>& host);

 private:
  struct Ejection {
    std::shared_ptr<Host> host;
    TimerPtr timer;
  };
  Dispatcher& dispatcher_;
  std::vector<std::unique_ptr<Ejection>> ejections_;
};

}  // namespace ottava::mesh
