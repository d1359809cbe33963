#pragma once

// What every connection pool counts, in one place: its cluster's per-worker usage (against the
// limits), the cluster's gauges, and the host's active requests; plus the overflow answer and the
// connect timeout both pools arm the same way. Worker thread only.

#include <memory>
#include <string>
#include <string_view>

#include "common/dispatcher.h"
#include "mesh/network/connection.h"
#include "mesh/upstream/cluster.h"
#include "mesh/upstream/conn_pool.h"
#include "mesh/upstream/host.h"

namespace ottava::mesh {

class PoolCounters {
 public:
  PoolCounters(const ClusterInfo& cluster, Host& host, PoolUsage& usage)
      : cluster_(cluster), host_(host), usage_(usage) {}

  void ConnectionOpened() {
    ++usage_.connections;
    cluster_.stats.connections_active->Add(1);
  }
  void ConnectionClosed() {
    --usage_.connections;
    cluster_.stats.connections_active->Sub(1);
  }
  void PendingAdded() {
    ++usage_.pending;
    cluster_.stats.requests_pending->Add(1);
  }
  void PendingRemoved() {
    --usage_.pending;
    cluster_.stats.requests_pending->Sub(1);
  }
  void RequestStarted() {
    ++usage_.requests;
    cluster_.stats.requests_active->Add(1);
    host_.active_requests.fetch_add(1, std::memory_order_relaxed);
  }
  void RequestEnded() {
    --usage_.requests;
    cluster_.stats.requests_active->Sub(1);
    host_.active_requests.fetch_sub(1, std::memory_order_relaxed);
  }

  /// Counts an overflow and resets `callbacks` naming the `limit` hit. Returns nullptr, what
  /// NewStream returns for a refused stream.
  PoolStream* Overflow(UpstreamCallbacks& callbacks, std::string_view limit) const {
    cluster_.stats.overflow->Inc();
    callbacks.OnReset(ResetReason::kOverflow,
                      "cluster '" + cluster_.config.name + "' is over its " + std::string(limit));
    return nullptr;
  }

 private:
  const ClusterInfo& cluster_;
  Host& host_;
  PoolUsage& usage_;
};

/// A timer that fails `client`'s connection attempt after the cluster's connect timeout: the
/// connection is closed without telling `client`, then `client` hears kConnectFailed. `Client`
/// is a pool's connection wrapper (connection() and ConnectionCallbacks).
template <typename Client>
TimerPtr ArmConnectTimeout(Dispatcher& dispatcher, const ClusterInfo& cluster, Client* client) {
  TimerPtr timer = dispatcher.CreateTimer([client] {
    client->connection().RemoveCallbacks(*client);
    client->connection().Close(CloseType::kNoFlush);
    client->OnEvent(ConnectionEvent::kConnectFailed);
  });
  timer->Enable(cluster.limits.connect_timeout);
  return timer;
}

}  // namespace ottava::mesh
