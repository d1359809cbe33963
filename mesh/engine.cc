#include "mesh/engine.h"

#include <unistd.h>

#include <set>
#include <thread>

#include "common/accept_loop.h"
#include "common/json_config.h"
#include "common/logging.h"
#include "common/status.h"
#include "mesh/codec/bolt/bolt_codec.h"
#include "mesh/codec/dubbo/dubbo_codec.h"
#include "mesh/codec/http1/http1_codec.h"
#include "mesh/upstream/health_checker.h"

namespace ottava::mesh {

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(
    MeshConfig config, stats::Store& stats, std::vector<FilterFactoryPtr> extra_filters) {
  std::unique_ptr<Engine> engine(new Engine(stats));
  engine->http1_ = std::make_unique<Http1CodecFactory>();
  engine->bolt_ = std::make_unique<BoltCodecFactory>();
  engine->dubbo_ = std::make_unique<DubboCodecFactory>();
  RegisterBuiltinFilters(engine->filter_registry_);
  for (FilterFactoryPtr& filter : extra_filters) {
    OTTAVA_RETURN_IF_ERROR(engine->filter_registry_.Add(std::move(filter)));
  }
  auto snapshot = engine->BuildSnapshot(config, nullptr);
  if (!snapshot.ok()) {
    return snapshot.status();
  }
  absl::MutexLock lock(&engine->mu_);
  engine->snapshot_ = std::move(*snapshot);
  return engine;
}

const CodecFactory& Engine::CodecFor(Protocol protocol) const {
  switch (protocol) {
    case Protocol::kBolt:
      return *bolt_;
    case Protocol::kDubbo:
      return *dubbo_;
    case Protocol::kHttp1:
      break;
  }
  return *http1_;
}

Engine::~Engine() {
  Stop();
}

namespace {

// The protocol of the listeners that use a router, for its metrics' `protocol` label: "mixed"
// when listeners of different protocols share it, "none" when no listener uses it (InvokeService
// only).
std::string RouterProtocol(const MeshConfig& config, const std::string& router) {
  std::string protocol;
  for (const ListenerConfig& listener : config.listeners) {
    if (listener.router != router) {
      continue;
    }
    std::string name(ProtocolName(listener.protocol));
    if (protocol.empty()) {
      protocol = std::move(name);
    } else if (protocol != name) {
      return "mixed";
    }
  }
  return protocol.empty() ? "none" : protocol;
}

}  // namespace

absl::StatusOr<MeshSnapshotConstSharedPtr> Engine::BuildSnapshot(
    const MeshConfig& config, const MeshSnapshot* previous) const {
  auto snapshot = std::make_shared<MeshSnapshot>();
  snapshot->config = config;
  for (const RouterConfig& router : config.routers) {
    auto table = RouteTable::Create(router);
    if (!table.ok()) {
      return table.status();
    }
    for (size_t i = 0; i < (*table)->routes().size(); ++i) {
      stats::Labels labels{{"router", router.name},
                           {"route", std::to_string(i)},
                           {"protocol", RouterProtocol(config, router.name)}};
      RouteStats& route_stats = snapshot->route_stats[&(*table)->routes()[i]];
      route_stats.requests = &stats_.CounterFor("ottava_mesh_route_requests_total",
                                                "Requests that matched a route", labels);
      for (int klass = 1; klass <= 5; ++klass) {
        stats::Labels with_class = labels;
        with_class.emplace_back("class", std::to_string(klass) + "xx");
        route_stats.responses[klass] =
            &stats_.CounterFor("ottava_mesh_route_responses_total",
                               "Responses to requests of a route by status class", with_class);
      }
    }
    snapshot->routers.emplace(router.name, std::move(*table));
    std::vector<FilterFactoryCb>& chain = snapshot->filter_chains[router.name];
    for (const FilterConfig& filter : router.filters) {
      const FilterFactory* factory = filter_registry_.Find(filter.name);
      if (factory == nullptr) {
        return ottava::config::ConfigError(filter.pointer + "/name",
                                           "unknown stream filter '" + filter.name + "'");
      }
      auto made = factory->Create(filter.config, filter.pointer + "/config");
      if (!made.ok()) {
        return made.status();
      }
      chain.push_back(std::move(*made));
    }
  }
  for (const ClusterConfig& cluster : config.clusters) {
    const ClusterInfo* old = nullptr;
    if (previous != nullptr) {
      if (const ClusterInfoConstSharedPtr* found = previous->Cluster(cluster.name)) {
        old = found->get();
      }
    }
    snapshot->clusters.emplace(cluster.name,
                               BuildClusterInfo(cluster, old, CodecFor(cluster.protocol), stats_));
  }
  return MeshSnapshotConstSharedPtr(std::move(snapshot));
}

absl::Status Engine::Start(std::map<std::string, int>* inherited) {
  MeshSnapshotConstSharedPtr snapshot;
  {
    absl::MutexLock lock(&mu_);
    snapshot = snapshot_;
  }
  const MeshConfig& config = snapshot->config;
  for (const ListenerConfig& listener : config.listeners) {
    absl::StatusOr<std::unique_ptr<ListenSocket>> socket;
    auto found = inherited != nullptr ? inherited->find(listener.name)
                                      : std::map<std::string, int>::iterator();
    if (inherited != nullptr && found != inherited->end() &&
        ListenSocketMatches(found->second, listener.address)) {
      socket = ListenSocket::Adopt(found->second);
      inherited->erase(found);
    } else {
      socket = ListenSocket::Bind(listener.address);
    }
    if (!socket.ok()) {
      return absl::UnavailableError(listener.pointer +
                                    "/address: " + std::string(socket.status().message()));
    }
    BoundListener bound;
    bound.config = listener;
    bound.socket = std::move(*socket);
    bound.stats = std::make_unique<ListenerStats>(
        ListenerStats::Create(stats_, listener.name, ProtocolName(listener.protocol)));
    bound.manager_config = std::make_unique<ConnectionManagerConfig>();
    bound.manager_config->listener = listener.name;
    bound.manager_config->router = listener.router;
    bound.manager_config->idle_timeout = std::chrono::milliseconds(listener.idle_timeout_ms);
    bound.manager_config->header_timeout = std::chrono::milliseconds(listener.header_timeout_ms);
    bound.manager_config->codec = &CodecFor(listener.protocol);
    bound.manager_config->codec_options.max_frame_bytes =
        static_cast<size_t>(listener.max_frame_bytes);
    bound.manager_config->stats = bound.stats.get();
    listeners_.push_back(std::move(bound));
  }
  uint32_t count = config.workers;
  if (count == 0) {
    count = std::max(1u, std::thread::hardware_concurrency());
  }
  auto main = Dispatcher::Create("mesh-main");
  if (!main.ok()) {
    return main.status();
  }
  main_ = std::move(*main);
  main_->Start();
  ejector_ = std::make_unique<OutlierEjector>(*main_);
  for (uint32_t i = 0; i < count; ++i) {
    auto worker = Worker::Create(
        i, stats_,
        [this](const ClusterInfoConstSharedPtr& cluster, Host& host) { Eject(cluster, host); });
    if (!worker.ok()) {
      return worker.status();
    }
    workers_.push_back(std::move(*worker));
  }
  std::vector<Worker*> peers;
  for (auto& worker : workers_) {
    peers.push_back(worker.get());
  }
  for (auto& worker : workers_) {
    worker->SetPeers(peers);
    worker->SetSnapshot(snapshot);
    for (const BoundListener& listener : listeners_) {
      worker->AddListener(*listener.socket, *listener.manager_config);
    }
    worker->Start();
  }
  InstallSnapshot(snapshot);
  running_ = true;
  OTTAVA_LOG(Mesh, info, "mesh started: {} workers, {} listeners, {} clusters", count,
             listeners_.size(), snapshot->clusters.size());
  return absl::OkStatus();
}

void Engine::InstallSnapshot(MeshSnapshotConstSharedPtr snapshot) {
  for (auto& worker : workers_) {
    worker->SetSnapshot(snapshot);
  }
  if (main_ != nullptr) {
    main_->RunAndWait([this, snapshot] {
      health_checkers_.clear();
      for (const auto& [name, cluster] : snapshot->clusters) {
        if (cluster->config.health_check) {
          health_checkers_.push_back(std::make_unique<HealthChecker>(*main_, cluster));
          health_checkers_.back()->Start();
        }
      }
    });
  }
}

std::map<std::string, std::string> Engine::ListenerAddresses() const {
  std::map<std::string, std::string> out;
  for (const BoundListener& listener : listeners_) {
    out[listener.config.name] = listener.socket->address().ToString();
  }
  return out;
}

absl::Status Engine::Update(const nlohmann::json& routes_and_clusters) {
  absl::MutexLock serial(&update_mu_);
  MeshSnapshotConstSharedPtr current;
  {
    absl::MutexLock lock(&mu_);
    current = snapshot_;
  }
  auto config = MeshConfig::ParseRoutesAndClusters(routes_and_clusters, current->config);
  if (!config.ok()) {
    return config.status();
  }
  auto built = BuildSnapshot(*config, current.get());
  if (!built.ok()) {
    return built.status();
  }
  {
    absl::MutexLock lock(&mu_);
    auto* mutable_snapshot = const_cast<MeshSnapshot*>(built->get());
    mutable_snapshot->version = ++next_version_;
    snapshot_ = *built;
  }
  InstallSnapshot(*built);
  OTTAVA_LOG(Mesh, info, "mesh config updated: {} routers, {} clusters", config->routers.size(),
             config->clusters.size());
  return absl::OkStatus();
}

nlohmann::json Engine::Describe() const {
  MeshSnapshotConstSharedPtr snapshot;
  {
    absl::MutexLock lock(&mu_);
    snapshot = snapshot_;
  }
  nlohmann::json clusters = nlohmann::json::array();
  for (const auto& [name, cluster] : snapshot->clusters) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const HostSharedPtr& host : cluster->hosts) {
      bool failed_check = host->HasHealthFlag(Host::kFailedActiveHealthCheck);
      bool ejected = host->HasHealthFlag(Host::kEjected);
      hosts.push_back({{"address", host->address_string()},
                       {"weight", host->weight()},
                       {"health", host->Healthy() ? "healthy" : "unhealthy"},
                       {"failed_health_check", failed_check},
                       {"ejected", ejected},
                       {"ejections", host->ejection_count.load()},
                       {"active_requests", host->active_requests.load()}});
    }
    clusters.push_back({{"name", name},
                        {"lb", cluster->config.lb == LbPolicy::kRoundRobin     ? "round_robin"
                               : cluster->config.lb == LbPolicy::kRandom       ? "random"
                               : cluster->config.lb == LbPolicy::kLeastRequest ? "least_request"
                                                                               : "maglev"},
                        {"health_check", cluster->config.health_check.has_value()},
                        {"hosts", std::move(hosts)}});
  }
  nlohmann::json routers = nlohmann::json::array();
  for (const RouterConfig& router : snapshot->config.routers) {
    routers.push_back({{"name", router.name}, {"routes", router.routes.size()}});
  }
  nlohmann::json listeners = nlohmann::json::object();
  for (const auto& [name, address] : ListenerAddresses()) {
    listeners[name] = address;
  }
  return {{"version", snapshot->version},
          {"workers", workers_.size()},
          {"rpc_router", snapshot->config.rpc_router},
          {"listeners", std::move(listeners)},
          {"routers", std::move(routers)},
          {"clusters", std::move(clusters)}};
}

void Engine::Invoke(InvokeRequest request, InvokeCallback done) {
  if (!running_.load() || workers_.empty()) {
    InvokeResponse response;
    response.status = 503;
    response.local_reply = LocalReplyReason::kNoHealthyHost;
    response.body = "the mesh is not running";
    done(std::move(response));
    return;
  }
  // The least-loaded worker, the first on a tie: a lone caller keeps one warm worker and one
  // upstream connection instead of waking each worker in turn; concurrent callers spread because
  // a worker counts a call from the moment it is posted. The worker reads mesh.rpc_router from
  // its own snapshot: no lock on this path.
  Worker* chosen = workers_.front().get();
  int64_t least = chosen->ActiveRequests();
  for (size_t i = 1; i < workers_.size() && least > 0; ++i) {
    int64_t load = workers_[i]->ActiveRequests();
    if (load < least) {
      least = load;
      chosen = workers_[i].get();
    }
  }
  chosen->Invoke(std::move(request), std::move(done));
}

void Engine::Eject(const ClusterInfoConstSharedPtr& cluster, Host& host) {
  if (main_ == nullptr) {
    return;
  }
  HostSharedPtr shared = cluster->SharedHost(&host);
  main_->Post([this, cluster, shared] {
    if (ejector_ != nullptr && shared != nullptr) {
      ejector_->Eject(cluster, shared);
    }
  });
}

void Engine::Drain(bool close_idle) {
  StopAccepting();
  for (auto& worker : workers_) {
    worker->Drain(close_idle);
  }
}

std::map<std::string, std::string> Engine::AdoptableListeners() const {
  std::map<std::string, std::string> out;
  for (const BoundListener& listener : listeners_) {
    if (listener.manager_config->codec->multiplexed()) {
      out[listener.config.name] = std::string(ProtocolName(listener.config.protocol));
    }
  }
  return out;
}

void Engine::DrainForUpgrade(const std::map<std::string, std::string>& adoptable,
                             MigrationSink sink) {
  std::set<const ConnectionManagerConfig*> migrate;
  for (const auto& [name, protocol] : AdoptableListeners()) {
    auto found = adoptable.find(name);
    if (found != adoptable.end() && found->second == protocol) {
      for (const BoundListener& listener : listeners_) {
        if (listener.config.name == name) {
          migrate.insert(listener.manager_config.get());
        }
      }
    }
  }
  StopAccepting();
  for (auto& worker : workers_) {
    worker->DrainForUpgrade(migrate, sink);
  }
}

absl::Status Engine::AdoptConnection(const std::string& listener, int fd, std::string unread) {
  const BoundListener* found = nullptr;
  for (const BoundListener& bound : listeners_) {
    if (bound.config.name == listener) {
      found = &bound;
    }
  }
  absl::Status error;
  if (!running_.load() || workers_.empty()) {
    error = absl::UnavailableError("the mesh is not running");
  } else if (found == nullptr) {
    error = absl::NotFoundError("no listener '" + listener + "'");
  } else if (!found->manager_config->codec->multiplexed()) {
    error = absl::FailedPreconditionError("listener '" + listener + "' speaks " +
                                          std::string(ProtocolName(found->config.protocol)) +
                                          ": its connections do not migrate");
  }
  if (!error.ok()) {
    ::close(fd);
    return error;
  }
  Worker* target = workers_.front().get();
  for (const auto& worker : workers_) {
    if (worker->ActiveConnections() < target->ActiveConnections()) {
      target = worker.get();
    }
  }
  target->CountConnection();
  target->AdoptMigrated(*found->manager_config, fd, std::move(unread));
  return absl::OkStatus();
}

void Engine::StopAccepting() {
  for (auto& worker : workers_) {
    worker->StopListening();
  }
}

std::map<std::string, int> Engine::ListenerFds() const {
  std::map<std::string, int> out;
  for (const BoundListener& listener : listeners_) {
    out[listener.config.name] = listener.socket->fd();
  }
  return out;
}

int64_t Engine::ActiveRequests() const {
  int64_t total = 0;
  for (const auto& worker : workers_) {
    total += worker->ActiveRequests() + worker->ActiveConnections();
  }
  return total;
}

void Engine::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  running_ = false;
  for (auto& worker : workers_) {
    worker->Stop();
  }
  workers_.clear();
  if (main_ != nullptr) {
    main_->RunAndWait([this] {
      health_checkers_.clear();
      ejector_.reset();
    });
    main_->Stop();
  }
  listeners_.clear();
}

}  // namespace ottava::mesh
