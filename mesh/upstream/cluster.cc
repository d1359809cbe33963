#include "mesh/upstream/cluster.h"

#include "mesh/config/mesh_config.h"
#include "mesh/network/connection.h"

namespace ottava::mesh {

ClusterInfoConstSharedPtr BuildClusterInfo(const ClusterConfig& config,
                                           const ClusterInfo* previous,
                                           const CodecFactory& codec,
                                           stats::Store& stats) {
  auto info = std::make_shared<ClusterInfo>();
  info->config = config;
  for (const HostConfig& host : config.hosts) {
    HostSharedPtr reused;
    if (previous != nullptr) {
      for (const HostSharedPtr& old : previous->hosts) {
        if (old->address() == host.address && old->weight() == host.weight) {
          reused = old;
          break;
        }
      }
    }
    info->hosts.push_back(reused != nullptr ? reused
                                            : std::make_shared<Host>(host.address, host.weight));
  }
  info->limits.max_connections = config.max_connections;
  info->limits.max_pending = config.max_pending;
  info->limits.max_requests = config.max_requests;
  info->limits.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  info->limits.idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
  info->limits.connections_per_host = config.connections_per_host;
  info->limits.heartbeat_interval = std::chrono::milliseconds(config.heartbeat_interval_ms);
  info->codec = &codec;
  info->codec_options.max_frame_bytes = static_cast<size_t>(config.max_frame_bytes);

  const std::string protocol(ProtocolName(config.protocol));
  const stats::Labels labels{{"cluster", config.name}, {"protocol", protocol}};
  ClusterStats& s = info->stats;
  s.requests = &stats.CounterFor("ottava_mesh_cluster_requests_total",
                                 "Requests sent to a cluster's hosts (each try counts)", labels);
  for (int klass = 1; klass <= 5; ++klass) {
    stats::Labels with_class = labels;
    with_class.emplace_back("class", std::to_string(klass) + "xx");
    s.responses[klass] =
        &stats.CounterFor("ottava_mesh_cluster_responses_total",
                          "Responses from a cluster's hosts by status class", with_class);
  }
  s.retries = &stats.CounterFor("ottava_mesh_cluster_retries_total", "Retried requests", labels);
  s.timeouts = &stats.CounterFor("ottava_mesh_cluster_timeouts_total",
                                 "Requests that timed out waiting for the upstream", labels);
  s.overflow =
      &stats.CounterFor("ottava_mesh_cluster_overflow_total",
                        "Requests refused by max_connections, max_pending or max_requests", labels);
  s.connect_failures = &stats.CounterFor("ottava_mesh_cluster_connect_failures_total",
                                         "Upstream connections that failed to connect", labels);
  s.resets = &stats.CounterFor("ottava_mesh_cluster_resets_total",
                               "Upstream connections reset or garbled mid-request", labels);
  s.ejections = &stats.CounterFor("ottava_mesh_cluster_ejections_total",
                                  "Hosts ejected by outlier detection", labels);
  s.health_check_failures = &stats.CounterFor("ottava_mesh_cluster_health_check_failures_total",
                                              "Failed active health checks", labels);
  s.connections_active = &stats.GaugeFor("ottava_mesh_cluster_connections_active",
                                         "Open upstream connections", labels);
  s.requests_pending = &stats.GaugeFor("ottava_mesh_cluster_requests_pending",
                                       "Requests waiting for an upstream connection", labels);
  s.requests_active = &stats.GaugeFor("ottava_mesh_cluster_requests_active",
                                      "Requests on upstream connections", labels);
  s.upstream_time =
      &stats.HistogramFor("ottava_mesh_cluster_upstream_seconds",
                          "Time from sending a request upstream to its response end", labels);
  s.frames_per_writev = &stats.HistogramFor(
      "ottava_mesh_frames_per_writev", "Frames sent on a connection by one flush (one writev)",
      {{"direction", "upstream"}, {"protocol", protocol}}, FramesPerWritevBounds());
  info->lb_factory =
      std::make_shared<LoadBalancerFactory>(config.lb, info->hosts, config.panic_threshold_percent);
  return info;
}

ThreadLocalCluster::ThreadLocalCluster(Dispatcher& dispatcher,
                                       ClusterInfoConstSharedPtr info,
                                       uint64_t seed)
    : dispatcher_(dispatcher), info_(std::move(info)), lb_(info_->lb_factory->Create(seed)) {}

ThreadLocalCluster::~ThreadLocalCluster() {
  pools_.clear();
}

ConnectionPool& ThreadLocalCluster::PoolFor(Host& host) {
  auto it = pools_.find(&host);
  if (it == pools_.end()) {
    ConnectionPoolPtr pool =
        info_->codec->multiplexed()
            ? CreateMultiplexConnectionPool(dispatcher_, info_->SharedHost(&host), *info_, usage_)
            : CreateHttp1ConnectionPool(dispatcher_, info_->SharedHost(&host), *info_, usage_);
    it = pools_.emplace(&host, std::move(pool)).first;
  }
  return *it->second;
}

bool ThreadLocalCluster::Idle() const {
  for (const auto& [host, pool] : pools_) {
    if (!pool->Idle()) {
      return false;
    }
  }
  return true;
}

void ThreadLocalCluster::Drain() {
  for (auto& [host, pool] : pools_) {
    pool->Drain();
  }
}

void ThreadLocalCluster::ReapIdlePools() {
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (it->second->Idle()) {
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace ottava::mesh
