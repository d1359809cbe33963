#include "mesh/worker/worker.h"

#include <unistd.h>

#include "common/logging.h"

namespace ottava::mesh {
namespace {

constexpr std::chrono::milliseconds kReapInterval(5000);

}  // namespace

// An in-process request (InvokeService): the router answers into this instead of a connection.
class Worker::InvokeStream : public DeferredDeletable, public DownstreamCallbacks {
 public:
  // Worker::Invoke counted the request when it was posted (so the engine's choice of worker sees
  // it at once); the stream gives it back.
  InvokeStream(Worker& worker, InvokeCallback done) : worker_(worker), done_(std::move(done)) {}
  ~InvokeStream() override { worker_.active_requests_.fetch_sub(1); }

  void Start(const std::string& router, InvokeRequest request) {
    router_ =
        std::make_unique<Router>(worker_, worker_.snapshot_, worker_.snapshot_->Router(router),
                                 *this, worker_.snapshot_->Filters(router));
    if (request.timeout.count() > 0) {
      router_->SetTimeoutOverride(request.timeout);
    }
    const bool has_body = !request.body.empty();
    request.headers->content_length = static_cast<int64_t>(request.body.size());
    request.headers->headers.Set("content-length", std::to_string(request.body.size()));
    router_->DecodeRequestHeaders(std::move(request.headers), !has_body);
    if (has_body && !finished_) {
      Buffer body;
      body.Add(request.body);
      router_->DecodeRequestData(body, true);
    }
  }

  void EncodeHeaders(ResponseHeadersPtr headers, bool end_stream) override {
    response_.status = headers->status;
    response_.headers = std::move(headers->headers);
    if (headers->rpc.has_value() && headers->local_reply == LocalReplyReason::kNone) {
      response_.rpc_status = headers->rpc->status;
      response_.rpc_proto = headers->rpc->proto;
    }
    if (end_stream) {
      Finish();
    }
  }
  void EncodeData(Buffer& data, bool end_stream) override {
    response_.body += data.ToString();
    data.Drain(data.Length());
    if (end_stream) {
      Finish();
    }
  }
  void ResetDownstream(std::string_view reason) override {
    response_.status = 502;
    response_.local_reply = LocalReplyReason::kUpstreamReset;
    response_.body = std::string(reason);
    Finish();
  }
  void ReadDisableDownstream(bool) override {}
  std::string_view downstream_address() const override { return {}; }

 private:
  void Finish() {
    if (finished_) {
      return;
    }
    finished_ = true;
    if (router_ != nullptr && response_.local_reply == LocalReplyReason::kNone) {
      response_.local_reply = router_->info().local_reply;
    }
    InvokeCallback done = std::move(done_);
    done(std::move(response_));
    worker_.dispatcher_->DeferredDelete(std::unique_ptr<DeferredDeletable>(this));
  }

  Worker& worker_;
  InvokeCallback done_;
  std::unique_ptr<Router> router_;
  InvokeResponse response_;
  bool finished_ = false;
};

// A mirrored copy of a request: sent to one host of the shadow cluster, response discarded.
class Worker::ShadowRequest : public DeferredDeletable, public UpstreamCallbacks {
 public:
  ShadowRequest(Worker& worker,
                ClusterInfoConstSharedPtr cluster,
                std::unique_ptr<RequestHeaders> headers,
                std::string body)
      : worker_(worker),
        cluster_(std::move(cluster)),
        headers_(std::move(headers)),
        body_(std::move(body)) {
    worker_.active_requests_.fetch_add(1);
  }
  ~ShadowRequest() override {
    worker_.active_requests_.fetch_sub(1);
    if (stream_ != nullptr) {
      stream_->Reset();
    }
  }

  void Start(std::chrono::milliseconds timeout) {
    ThreadLocalCluster& cluster = worker_.GetCluster(cluster_);
    Host* host = cluster.lb().ChooseHost(LbContext{});
    if (host == nullptr) {
      Done();
      return;
    }
    timer_ = worker_.dispatcher_->CreateTimer([this] { Done(); });
    timer_->Enable(timeout);
    cluster_->stats.requests->Inc();
    PoolStream* stream = cluster.PoolFor(*host).NewStream(*this);
    if (!done_ && stream_ == nullptr) {
      stream_ = stream;
    }
  }

  void OnPoolReady(RequestEncoder& encoder, Host&, PoolStream& stream) override {
    stream_ = &stream;
    headers_->content_length = static_cast<int64_t>(body_.size());
    encoder.EncodeHeaders(*headers_, body_.empty());
    if (!body_.empty()) {
      Buffer data;
      data.Add(body_);
      encoder.EncodeData(data, true);
    }
  }
  void OnReset(ResetReason, std::string_view) override {
    stream_ = nullptr;
    Done();
  }
  void DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) override {
    cluster_->stats.responses[std::clamp(headers->status / 100, 1, 5)]->Inc();
    if (end_stream) {
      stream_ = nullptr;
      Done();
    }
  }
  void DecodeData(Buffer& data, bool end_stream) override {
    data.Drain(data.Length());
    if (end_stream) {
      stream_ = nullptr;
      Done();
    }
  }

 private:
  void Done() {
    if (done_) {
      return;
    }
    done_ = true;
    if (stream_ != nullptr) {
      PoolStream* stream = stream_;
      stream_ = nullptr;
      stream->Reset();
    }
    timer_.reset();
    worker_.dispatcher_->DeferredDelete(std::unique_ptr<DeferredDeletable>(this));
  }

  Worker& worker_;
  ClusterInfoConstSharedPtr cluster_;
  std::unique_ptr<RequestHeaders> headers_;
  std::string body_;
  PoolStream* stream_ = nullptr;
  TimerPtr timer_;
  bool done_ = false;
};

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(uint32_t index,
                                                       stats::Store& stats,
                                                       OutlierEjectCallback on_eject) {
  // Loop thread only: everything else reaches a worker by Post.
  auto dispatcher = Dispatcher::Create("mesh-worker-" + std::to_string(index), nullptr,
                                       /*loop_thread_only=*/true);
  if (!dispatcher.ok()) {
    return dispatcher.status();
  }
  return std::unique_ptr<Worker>(
      new Worker(index, std::move(*dispatcher), stats, std::move(on_eject)));
}

Worker::Worker(uint32_t index,
               DispatcherPtr dispatcher,
               stats::Store& stats,
               OutlierEjectCallback on_eject)
    : index_(index),
      dispatcher_(std::move(dispatcher)),
      stats_(stats),
      on_eject_(std::move(on_eject)),
      random_state_(0x9E3779B97F4A7C15ULL * (index + 1) ^ static_cast<uint64_t>(getpid())) {}

Worker::~Worker() {
  Stop();
}

void Worker::Start() {
  dispatcher_->Start();
  dispatcher_->Post([this] {
    // The worker moves several metrics per request: a cell of its own makes each a plain add.
    stats::ClaimExclusiveShard();
    reap_timer_ = dispatcher_->CreateTimer([this] {
      ReapClusters();
      reap_timer_->Enable(kReapInterval);
    });
    reap_timer_->Enable(kReapInterval);
  });
}

void Worker::Stop() {
  dispatcher_->RunAndWait(
      [this] {
        reap_timer_.reset();
        listeners_.clear();
        // Destroying a manager closes its connection and resets its stream.
        connections_.clear();
        clusters_.clear();
        request_snapshot_.reset();
        snapshot_.reset();
      },
      std::chrono::seconds(5));
  dispatcher_->Stop();
}

void Worker::SetSnapshot(MeshSnapshotConstSharedPtr snapshot) {
  dispatcher_->Post([this, snapshot = std::move(snapshot)]() mutable {
    snapshot_ = std::move(snapshot);
    // An aliasing pointer: it owns a worker-local copy of snapshot_ and points at the snapshot.
    auto local = std::make_shared<MeshSnapshotConstSharedPtr>(snapshot_);
    request_snapshot_ = MeshSnapshotConstSharedPtr(local, local->get());
  });
}

void Worker::AddListener(const ListenSocket& socket, const ConnectionManagerConfig& config) {
  dispatcher_->Post([this, &socket, &config] {
    ListenerSlot slot;
    slot.config = &config;
    slot.listener = std::make_unique<Listener>(
        *dispatcher_, socket,
        [this, &config](int fd, const Address& remote) { OnAccept(config, fd, remote); });
    listeners_.push_back(std::move(slot));
  });
}

void Worker::StopListening() {
  dispatcher_->RunAndWait([this] { listeners_.clear(); }, std::chrono::seconds(5));
}

void Worker::Drain(bool close_idle) {
  dispatcher_->Post([this, close_idle] {
    draining_ = true;
    close_idle_ = close_idle;
    std::vector<ConnectionManager*> managers;
    for (auto& manager : connections_) {
      managers.push_back(manager.get());
    }
    for (ConnectionManager* manager : managers) {
      DrainConnection(*manager);
    }
    // A graceful (upgrade) drain still sends requests upstream on the connections it keeps, so
    // the pools stay as they are; they close with the worker.
    if (close_idle) {
      for (auto& [key, entry] : clusters_) {
        entry.second->Drain();
      }
    }
  });
}

void Worker::DrainForUpgrade(std::set<const ConnectionManagerConfig*> migrate, MigrationSink sink) {
  dispatcher_->Post([this, migrate = std::move(migrate), sink = std::move(sink)]() mutable {
    migrate_ = std::move(migrate);
    migration_sink_ = std::move(sink);
  });
  Drain(/*close_idle=*/false);
}

// One connection's part of a drain: migrate it when its listener's connections go to the next
// process, else ask it to close.
void Worker::DrainConnection(ConnectionManager& manager) {
  if (migration_sink_ == nullptr || !migrate_.contains(&manager.config())) {
    manager.StartDraining(close_idle_);
    return;
  }
  manager.StartMigration([this](ConnectionManager& leaving, int fd, std::string unread) {
    if (fd >= 0) {
      migration_sink_(leaving.config().listener, fd, std::move(unread));
    }
  });
}

void Worker::AdoptMigrated(const ConnectionManagerConfig& config, int fd, std::string unread) {
  dispatcher_->Post([this, &config, fd, unread = std::move(unread)]() mutable {
    absl::StatusOr<Address> remote = SocketAddress(fd, /*peer=*/true);
    Adopt(config, fd, remote.ok() ? *remote : Address{}, std::move(unread), /*migrated=*/true);
  });
}

void Worker::OnAccept(const ConnectionManagerConfig& config, int fd, const Address& remote) {
  // Balance on open connections (counted from the hand-off on), as Envoy's exact balancer.
  Worker* target = this;
  for (Worker* peer : peers_) {
    if (peer->active_connections_.load(std::memory_order_relaxed) <
        target->active_connections_.load(std::memory_order_relaxed)) {
      target = peer;
    }
  }
  target->active_connections_.fetch_add(1);
  if (target == this) {
    Adopt(config, fd, remote);
    return;
  }
  target->dispatcher_->Post([target, &config, fd, remote] { target->Adopt(config, fd, remote); });
}

void Worker::Adopt(const ConnectionManagerConfig& config,
                   int fd,
                   const Address& remote,
                   std::string unread,
                   bool migrated) {
  ConnectionPtr connection = CreateServerConnection(*dispatcher_, fd, remote, std::move(unread));
  auto manager =
      std::make_unique<ConnectionManager>(*this, config, std::move(connection), migrated);
  ConnectionManager* raw = manager.get();
  connections_.push_back(std::move(manager));
  raw->self = std::prev(connections_.end());
  if (draining_) {
    DrainConnection(*raw);
  }
}

void Worker::OnConnectionClosed(ConnectionManager& manager) {
  std::unique_ptr<ConnectionManager> owned = std::move(*manager.self);
  connections_.erase(manager.self);
  active_connections_.fetch_sub(1);
  dispatcher_->DeferredDelete(std::move(owned));
}

void Worker::Invoke(InvokeRequest request, InvokeCallback done) {
  active_requests_.fetch_add(1);
  auto shared = std::make_shared<InvokeRequest>(std::move(request));
  dispatcher_->Post([this, shared, done = std::move(done)]() mutable {
    InvokeRequest invoke = std::move(*shared);
    if (snapshot_ == nullptr) {
      active_requests_.fetch_sub(1);
      InvokeResponse response;
      response.status = 503;
      response.local_reply = LocalReplyReason::kNoHealthyHost;
      response.body = "the mesh is not running";
      done(std::move(response));
      return;
    }
    auto* stream = new InvokeStream(*this, std::move(done));
    stream->Start(snapshot_->config.rpc_router, std::move(invoke));
  });
}

ThreadLocalCluster& Worker::GetCluster(const ClusterInfoConstSharedPtr& cluster) {
  auto it = clusters_.find(cluster.get());
  if (it == clusters_.end()) {
    auto local = std::make_unique<ThreadLocalCluster>(*dispatcher_, cluster, Random());
    it = clusters_.emplace(cluster.get(), std::make_pair(cluster, std::move(local))).first;
  }
  return *it->second.second;
}

TimeoutQueue* Worker::RouteTimeouts(std::chrono::milliseconds timeout) {
  constexpr size_t kMaxRouteTimeoutQueues = 64;
  auto it = route_timeouts_.find(timeout.count());
  if (it != route_timeouts_.end()) {
    return it->second.get();
  }
  if (route_timeouts_.size() >= kMaxRouteTimeoutQueues) {
    return nullptr;
  }
  auto queue = std::make_unique<TimeoutQueue>(*dispatcher_, timeout);
  TimeoutQueue* raw = queue.get();
  route_timeouts_.emplace(timeout.count(), std::move(queue));
  return raw;
}

uint64_t Worker::Random() {
  // splitmix64: fast, good enough for load balancing and sampling.
  uint64_t z = (random_state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void Worker::ReportOutcome(const ClusterInfo& cluster,
                           Host& host,
                           int status,
                           bool connect_failure) {
  if (!cluster.config.outlier_detection) {
    return;
  }
  const OutlierDetectionConfig& outlier = *cluster.config.outlier_detection;
  if (connect_failure) {
    uint32_t n = host.consecutive_connect_failures.fetch_add(1) + 1;
    // Every threshold-th failure asks again, so a refusal (ejection cap) is not final.
    if (outlier.consecutive_connect_failures > 0 && n >= outlier.consecutive_connect_failures &&
        n % outlier.consecutive_connect_failures == 0) {
      auto shared = snapshot_ != nullptr ? snapshot_->Cluster(cluster.config.name) : nullptr;
      if (shared != nullptr && shared->get() == &cluster) {
        on_eject_(*shared, host);
      }
    }
    return;
  }
  if (status >= 500) {
    uint32_t n = host.consecutive_5xx.fetch_add(1) + 1;
    if (outlier.consecutive_5xx > 0 && n >= outlier.consecutive_5xx &&
        n % outlier.consecutive_5xx == 0) {
      auto shared = snapshot_ != nullptr ? snapshot_->Cluster(cluster.config.name) : nullptr;
      if (shared != nullptr && shared->get() == &cluster) {
        on_eject_(*shared, host);
      }
    }
    return;
  }
  // Reset the streaks only when set, so a healthy host's cache line is not written per request.
  if (host.consecutive_5xx.load(std::memory_order_relaxed) != 0) {
    host.consecutive_5xx.store(0, std::memory_order_relaxed);
  }
  if (host.consecutive_connect_failures.load(std::memory_order_relaxed) != 0) {
    host.consecutive_connect_failures.store(0, std::memory_order_relaxed);
  }
}

void Worker::StartShadow(const ClusterInfoConstSharedPtr& cluster,
                         std::unique_ptr<RequestHeaders> headers,
                         std::string body,
                         std::chrono::milliseconds timeout) {
  auto* shadow = new ShadowRequest(*this, cluster, std::move(headers), std::move(body));
  shadow->Start(timeout);
}

void Worker::ReapClusters() {
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    const ClusterInfoConstSharedPtr* current =
        snapshot_ != nullptr ? snapshot_->Cluster(it->second.first->config.name) : nullptr;
    bool retired = current == nullptr || current->get() != it->first;
    if (retired && it->second.second->Idle()) {
      it = clusters_.erase(it);
      continue;
    }
    it->second.second->ReapIdlePools();
    ++it;
  }
}

}  // namespace ottava::mesh
