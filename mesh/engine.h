#pragma once

// The mesh engine (DESIGN.md §8): workers, listeners, the routing snapshot, health checking and
// outlier ejection, dynamic updates, and the in-process entry for InvokeService. The sidecar
// creates it after its components and before its gRPC server, and stops it before them.
//
// Threading: Create/Start/Update/Drain/Stop on the main (owner) thread or the actuator's; Invoke
// from any thread (gRPC threads); Describe from any thread.

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/stats.h"
#include "mesh/config/mesh_config.h"
#include "mesh/filter/filter.h"
#include "mesh/upstream/health_checker.h"
#include "mesh/worker/worker.h"

namespace ottava::mesh {

class Engine {
 public:
  /// Validates `config` (routes, clusters, regexes) and binds nothing yet. `extra_filters` are
  /// stream filters the embedder adds to the builtin ones (flow control, bound to the sidecar's
  /// process-wide controller).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      MeshConfig config, stats::Store& stats, std::vector<FilterFactoryPtr> extra_filters = {});
  ~Engine();

  /// Binds every listener (port 0 allowed), starts the workers and the health checks. A listener
  /// whose name is in `inherited` with a socket listening on its address serves on that socket
  /// (taken over from the previous process on upgrade); the entries used are removed from the
  /// map and owned by the engine from then on.
  absl::Status Start(std::map<std::string, int>* inherited = nullptr);
  /// "name" → listening fd of every bound listener (for the upgrade handover; still owned).
  std::map<std::string, int> ListenerFds() const;
  /// Stops accepting on every listener and returns when no worker accepts any more (upgrade:
  /// the next process accepts from the same sockets).
  void StopAccepting();
  /// "name" → "host:port" of every bound listener (for the ready file).
  std::map<std::string, std::string> ListenerAddresses() const;

  /// Replaces routers and clusters from `{"routers": [...], "clusters": [...]}`. The new
  /// snapshot is validated first; on error nothing changes and the error names the JSON pointer.
  absl::Status Update(const nlohmann::json& routes_and_clusters);
  /// Clusters, hosts, health and ejection state, for /actuator/mesh.
  nlohmann::json Describe() const;

  /// Sends a request through `mesh.rpc_router` on a worker, in-process. `done` runs on that
  /// worker's thread.
  void Invoke(InvokeRequest request, InvokeCallback done);
  /// Whether there are workers to take requests.
  bool running() const { return running_.load(); }

  /// Stops accepting and asks every connection to close after its current request. With
  /// `close_idle` false (upgrade) an idle keep-alive connection is not closed under a client
  /// that may be sending on it: its next response says `Connection: close` instead.
  void Drain(bool close_idle = true);
  /// Listener name → protocol ("bolt", "dubbo") of every listener whose connections this engine
  /// can adopt from a previous process on upgrade: the multiplexed ones, whose connections can
  /// change hands between two frames.
  std::map<std::string, std::string> AdoptableListeners() const;
  /// Upgrade drain: as Drain(false), except that the connections of every listener named in
  /// `adoptable` with the protocol it has here (the next process's AdoptableListeners()) stop
  /// reading between frames, finish the requests they already forwarded and go to `sink`. The
  /// others (HTTP/1.1, a listener the next process lacks or serves with another protocol) drain
  /// as with Drain(false).
  void DrainForUpgrade(const std::map<std::string, std::string>& adoptable, MigrationSink sink);
  /// Serves `fd` (owned from now on), a connection the previous process handed over, as one of
  /// `listener`'s on the least loaded worker; `unread` is decoded first. An error (no such
  /// listener, not one that adopts, not running) closes `fd`.
  absl::Status AdoptConnection(const std::string& listener, int fd, std::string unread);
  /// Requests in flight plus open connections on every worker (what a drain waits for).
  int64_t ActiveRequests() const;
  /// Stops workers and checks. Idempotent.
  void Stop();

 private:
  Engine(stats::Store& stats) : stats_(stats) {}
  absl::StatusOr<MeshSnapshotConstSharedPtr> BuildSnapshot(const MeshConfig& config,
                                                           const MeshSnapshot* previous) const;
  void InstallSnapshot(MeshSnapshotConstSharedPtr snapshot);
  void Eject(const ClusterInfoConstSharedPtr& cluster, Host& host);

  stats::Store& stats_;
  std::unique_ptr<CodecFactory> http1_;
  std::unique_ptr<CodecFactory> bolt_;
  std::unique_ptr<CodecFactory> dubbo_;
  const CodecFactory& CodecFor(Protocol protocol) const;
  FilterRegistry filter_registry_;
  std::vector<WorkerPtr> workers_;
  DispatcherPtr main_;  // health checks and ejections
  std::unique_ptr<OutlierEjector> ejector_;
  std::vector<std::unique_ptr<HealthChecker>> health_checkers_;  // main_ loop only

  absl::Mutex update_mu_;  // one Update at a time: read, build and install as one step
  mutable absl::Mutex mu_;
  MeshSnapshotConstSharedPtr snapshot_ ABSL_GUARDED_BY(mu_);
  uint64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;

  struct BoundListener {
    ListenerConfig config;
    std::unique_ptr<ListenSocket> socket;
    std::unique_ptr<ListenerStats> stats;
    std::unique_ptr<ConnectionManagerConfig> manager_config;
  };
  std::vector<BoundListener> listeners_;
  std::atomic<bool> running_{false};
  bool stopped_ = false;
};

}  // namespace ottava::mesh
