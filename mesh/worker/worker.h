#pragma once

// A mesh worker: one event loop (Dispatcher) on its own thread that owns everything a request
// touches — accepted connections, their connection managers, per-cluster load balancers and
// pools, the route cache — so the request path takes no lock. The main thread talks to a worker
// only by posting closures: a new snapshot, a listener to add, drain, stop.

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/dispatcher.h"
#include "common/stats.h"
#include "common/timeout_queue.h"
#include "mesh/network/listener.h"
#include "mesh/proxy/connection_manager.h"
#include "mesh/router/router.h"
#include "mesh/router/snapshot.h"

namespace ottava::mesh {

/// A request entering the mesh in-process (InvokeService), with no socket.
struct InvokeRequest {
  RequestHeadersPtr headers;
  std::string body;
  /// Overrides the route's timeout when positive.
  std::chrono::milliseconds timeout{0};
};

/// Its outcome. `local_reply` tells a mesh-made answer (no route, timeout...) from the
/// upstream's own response.
struct InvokeResponse {
  int status = 0;
  HeaderMap headers;
  std::string body;
  LocalReplyReason local_reply = LocalReplyReason::kNone;
  /// The RPC protocol's own status when the upstream speaks one (Bolt, Dubbo), else -1.
  int rpc_status = -1;
  /// RpcHead::proto of that response (Bolt 1 or 2, Dubbo 0xda); 0 without one.
  uint8_t rpc_proto = 0;
};
using InvokeCallback = std::function<void(InvokeResponse)>;

/// Takes a downstream connection leaving for the next process on upgrade: its listener's name,
/// socket (owned by the callee from now on) and the bytes read from it but not decoded. Any
/// worker thread. Returns false when the connection cannot go (the callee closed the socket).
using MigrationSink = std::function<bool(const std::string& listener, int fd, std::string unread)>;

/// Called when a host of a cluster should be ejected (on a worker thread; the callee posts).
using OutlierEjectCallback = std::function<void(const ClusterInfoConstSharedPtr&, Host&)>;

class Worker : public RouterContext, public ConnectionManagerContext {
 public:
  static absl::StatusOr<std::unique_ptr<Worker>> Create(uint32_t index,
                                                        stats::Store& stats,
                                                        OutlierEjectCallback on_eject);
  ~Worker() override;

  /// Starts the loop thread.
  void Start();
  /// Closes every connection and joins the thread.
  void Stop();

  Dispatcher& dispatcher() override { return *dispatcher_; }

  // Posted from the main thread.
  /// Installs `snapshot` for new requests (posted; requests in flight keep theirs).
  void SetSnapshot(MeshSnapshotConstSharedPtr snapshot);
  /// Starts accepting on `socket` for the listener `config` (posted). Both outlive the worker's
  /// use of them (until RemoveListeners has run).
  void AddListener(const ListenSocket& socket, const ConnectionManagerConfig& config);
  /// Every worker of the engine, this one included (before Start). An accepted connection goes
  /// to the worker with the fewest open connections, so one busy acceptor cannot take them all.
  void SetPeers(std::vector<Worker*> peers) { peers_ = std::move(peers); }
  /// Stops accepting on every listener (posted, and waited for).
  void StopListening();
  /// Asks every connection to close when its current request is done (posted); with
  /// `close_idle` false idle connections stay open until their next response.
  void Drain(bool close_idle = true);
  /// Upgrade drain: as Drain(false), except that connections of the listeners in `migrate` stop
  /// reading between frames, finish their requests in flight and go to `sink` (posted; also
  /// applies to connections handed to this worker later).
  void DrainForUpgrade(std::set<const ConnectionManagerConfig*> migrate, MigrationSink sink);
  /// Serves `fd`, a connection of the listener `config` that the previous process handed over,
  /// decoding `unread` first (posted). The caller counted it in ActiveConnections() already.
  void AdoptMigrated(const ConnectionManagerConfig& config, int fd, std::string unread);
  /// Counts a connection about to be posted here (AdoptMigrated), so load balancing sees it.
  void CountConnection() { active_connections_.fetch_add(1); }
  /// Sends a request through the current snapshot's `mesh.rpc_router` (posted); `done` runs on
  /// this worker's thread.
  void Invoke(InvokeRequest request, InvokeCallback done);
  /// Connections open on this worker (approximate; any thread).
  int64_t ActiveConnections() const { return active_connections_.load(); }
  /// Requests in flight on this worker, InvokeService and shadows included (any thread).
  int64_t ActiveRequests() const { return active_requests_.load(); }

  // RouterContext
  ThreadLocalCluster& GetCluster(const ClusterInfoConstSharedPtr& cluster) override;
  RouteCache& route_cache() override { return route_cache_; }
  uint64_t Random() override;
  void ReportOutcome(const ClusterInfo& cluster,
                     Host& host,
                     int status,
                     bool connect_failure) override;
  void StartShadow(const ClusterInfoConstSharedPtr& cluster,
                   std::unique_ptr<RequestHeaders> headers,
                   std::string body,
                   std::chrono::milliseconds timeout) override;
  TimeoutQueue* RouteTimeouts(std::chrono::milliseconds timeout) override;

  // ConnectionManagerContext
  RouterContext& router_context() override { return *this; }
  MeshSnapshotConstSharedPtr snapshot() override { return request_snapshot_; }
  void OnConnectionClosed(ConnectionManager& manager) override;

 private:
  class InvokeStream;
  class ShadowRequest;
  struct ListenerSlot {
    const ConnectionManagerConfig* config;
    std::unique_ptr<Listener> listener;
  };

  Worker(uint32_t index,
         DispatcherPtr dispatcher,
         stats::Store& stats,
         OutlierEjectCallback on_eject);
  void OnAccept(const ConnectionManagerConfig& config, int fd, const Address& remote);
  void Adopt(const ConnectionManagerConfig& config,
             int fd,
             const Address& remote,
             std::string unread = {},
             bool migrated = false);
  void DrainConnection(ConnectionManager& manager);
  void ReapClusters();

  const uint32_t index_;
  DispatcherPtr dispatcher_;
  stats::Store& stats_;
  OutlierEjectCallback on_eject_;
  // Loop thread only from here on.
  MeshSnapshotConstSharedPtr snapshot_;
  // snapshot_ again, behind a reference count of this worker's own: every request takes and
  // drops a reference, and the snapshot's shared count would bounce between the workers' cores.
  MeshSnapshotConstSharedPtr request_snapshot_;
  RouteCache route_cache_;
  uint64_t random_state_;
  std::vector<ListenerSlot> listeners_;
  std::vector<Worker*> peers_;
  std::list<std::unique_ptr<ConnectionManager>> connections_;
  // Per-cluster state, keyed by the immutable ClusterInfo of some snapshot. A cluster replaced
  // by an update stays here until its pools are idle.
  std::map<const ClusterInfo*,
           std::pair<ClusterInfoConstSharedPtr, std::unique_ptr<ThreadLocalCluster>>>
      clusters_;
  TimerPtr reap_timer_;
  // Route timeout queues by duration (bounded: callers' own timeouts vary; past the bound a
  // router makes its own timer).
  std::unordered_map<int64_t, std::unique_ptr<TimeoutQueue>> route_timeouts_;
  bool draining_ = false;
  bool close_idle_ = true;
  std::set<const ConnectionManagerConfig*> migrate_;  // upgrade: listeners that migrate
  MigrationSink migration_sink_;
  std::atomic<int64_t> active_connections_{0};
  std::atomic<int64_t> active_requests_{0};
};
using WorkerPtr = std::unique_ptr<Worker>;

}  // namespace ottava::mesh
