#include "mesh/upstream/health_checker.h"

#include <algorithm>

#include "common/logging.h"
#include "mesh/codec/bolt/bolt_frame.h"
#include "mesh/codec/dubbo/dubbo_frame.h"
#include "mesh/network/connection.h"

namespace ottava::mesh {

// One host's checks: a timer for the interval, a connection per check.
class HealthChecker::Session : public ReadHandler, public ConnectionCallbacks {
 public:
  Session(Dispatcher& dispatcher, const ClusterInfo& cluster, std::shared_ptr<Host> host)
      : dispatcher_(dispatcher),
        cluster_(cluster),
        config_(*cluster.config.health_check),
        host_(std::move(host)) {
    interval_timer_ = dispatcher_.CreateTimer([this] { StartCheck(); });
    timeout_timer_ = dispatcher_.CreateTimer([this] { Finish(false, "timed out"); });
  }
  ~Session() override { CloseConnection(); }

  void StartCheck() {
    response_.clear();
    bolt_input_.Drain(bolt_input_.Length());
    connection_ = CreateClientConnection(dispatcher_, host_->address());
    connection_->SetReadHandler(this);
    connection_->AddCallbacks(*this);
    timeout_timer_->Enable(std::chrono::milliseconds(config_.timeout_ms));
    if (config_.type == HealthCheckConfig::Type::kHttp) {
      Buffer request;
      request.Add("GET " + config_.path + " HTTP/1.1\r\nhost: " + host_->address_string() +
                  "\r\nuser-agent: ottava-health-check\r\nconnection: close\r\n\r\n");
      connection_->Write(request);
    } else if (config_.type == HealthCheckConfig::Type::kBolt) {
      Buffer request;
      bolt::EncodeHeartbeat(RpcHead(), 1, /*response=*/false, request);
      connection_->Write(request);
    } else if (config_.type == HealthCheckConfig::Type::kDubbo) {
      Buffer request;
      dubbo::EncodeHeartbeat(1, /*response=*/false, request);
      connection_->Write(request);
    }
  }

  void OnData(Buffer& data, bool) override {
    if (config_.type == HealthCheckConfig::Type::kBolt) {
      // A heartbeat answered with status 0 is healthy.
      bolt_input_.Move(data);
      bolt::Frame frame;
      absl::StatusOr<bool> decoded = bolt::DecodeFrame(bolt_input_, 64 * 1024, frame);
      if (!decoded.ok()) {
        Finish(false, std::string(decoded.status().message()));
      } else if (*decoded) {
        bool ok = !frame.is_request() && frame.is_heartbeat() && frame.head.status == 0;
        Finish(ok, ok ? "" : "answered a heartbeat with " + bolt::StatusName(frame.head.status));
      }
      return;
    }
    if (config_.type == HealthCheckConfig::Type::kDubbo) {
      // A heartbeat (event) answered with status OK is healthy.
      bolt_input_.Move(data);
      dubbo::Frame frame;
      absl::StatusOr<bool> decoded = dubbo::DecodeFrame(bolt_input_, 64 * 1024, frame);
      if (!decoded.ok()) {
        Finish(false, std::string(decoded.status().message()));
      } else if (*decoded) {
        bool ok = !frame.is_request() && frame.is_event() && frame.status == dubbo::kOk;
        Finish(ok, ok ? "" : "answered a heartbeat with " + dubbo::StatusName(frame.status));
      }
      return;
    }
    response_ += data.ToString();
    data.Drain(data.Length());
    // "HTTP/1.x NNN" is all a check needs.
    if (response_.size() >= 12) {
      bool ok = response_.compare(0, 7, "HTTP/1.") == 0 && response_[9] == '2';
      Finish(ok, ok ? "" : "answered " + response_.substr(9, 3));
    }
  }

  void OnEvent(ConnectionEvent event) override {
    switch (event) {
      case ConnectionEvent::kConnected:
        if (config_.type == HealthCheckConfig::Type::kTcp) {
          Finish(true, "");
        }
        return;
      case ConnectionEvent::kConnectFailed:
        Finish(false, "connection failed");
        return;
      case ConnectionEvent::kRemoteClose:
      case ConnectionEvent::kLocalClose:
        if (connection_ != nullptr) {
          Finish(false, "closed before answering");
        }
        return;
    }
  }

 private:
  void Finish(bool healthy, const std::string& why) {
    timeout_timer_->Disable();
    CloseConnection();
    if (healthy) {
      failures_ = 0;
      if (host_->HasHealthFlag(Host::kFailedActiveHealthCheck) &&
          ++successes_ >= config_.healthy_threshold) {
        host_->ClearHealthFlag(Host::kFailedActiveHealthCheck);
        OTTAVA_LOG(Mesh, info, "cluster {}: host {} is healthy again", cluster_.config.name,
                   host_->address_string());
      }
    } else {
      successes_ = 0;
      cluster_.stats.health_check_failures->Inc();
      if (!host_->HasHealthFlag(Host::kFailedActiveHealthCheck) &&
          ++failures_ >= config_.unhealthy_threshold) {
        host_->SetHealthFlag(Host::kFailedActiveHealthCheck);
        OTTAVA_LOG(Mesh, warn, "cluster {}: host {} failed its health check ({})",
                   cluster_.config.name, host_->address_string(), why);
      }
    }
    interval_timer_->Enable(std::chrono::milliseconds(config_.interval_ms));
  }

  void CloseConnection() {
    if (connection_ != nullptr) {
      ConnectionPtr connection = std::move(connection_);
      connection->RemoveCallbacks(*this);
      connection->SetReadHandler(nullptr);
      connection->Close(CloseType::kNoFlush);
      dispatcher_.DeferredDelete(std::move(connection));
    }
  }

  Dispatcher& dispatcher_;
  const ClusterInfo& cluster_;
  const HealthCheckConfig& config_;
  std::shared_ptr<Host> host_;
  ConnectionPtr connection_;
  TimerPtr interval_timer_;
  TimerPtr timeout_timer_;
  std::string response_;
  Buffer bolt_input_;  // kBolt, kDubbo: the heartbeat answer as it arrives
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
};

HealthChecker::HealthChecker(Dispatcher& dispatcher, ClusterInfoConstSharedPtr cluster)
    : dispatcher_(dispatcher), cluster_(std::move(cluster)) {}

HealthChecker::~HealthChecker() = default;

void HealthChecker::Start() {
  for (const HostSharedPtr& host : cluster_->hosts) {
    sessions_.push_back(std::make_unique<Session>(dispatcher_, *cluster_, host));
    sessions_.back()->StartCheck();
  }
}

OutlierEjector::~OutlierEjector() = default;

void OutlierEjector::Eject(const ClusterInfoConstSharedPtr& cluster,
                           const std::shared_ptr<Host>& host) {
  if (!cluster->config.outlier_detection || host->HasHealthFlag(Host::kEjected)) {
    return;
  }
  const OutlierDetectionConfig& config = *cluster->config.outlier_detection;
  size_t ejected = 0;
  for (const HostSharedPtr& candidate : cluster->hosts) {
    ejected += candidate->HasHealthFlag(Host::kEjected) ? 1 : 0;
  }
  // As Envoy: eject while the share already ejected is below the cap.
  if (ejected * 100 >= static_cast<size_t>(config.max_ejection_percent) * cluster->hosts.size()) {
    return;
  }
  uint32_t times = host->ejection_count.fetch_add(1) + 1;
  int64_t duration = std::min<int64_t>(config.base_ejection_ms * times, config.max_ejection_ms);
  host->SetHealthFlag(Host::kEjected);
  cluster->stats.ejections->Inc();
  OTTAVA_LOG(Mesh, warn, "cluster {}: ejected host {} for {} ms (ejection {})",
             cluster->config.name, host->address_string(), duration, times);
  auto ejection = std::make_unique<Ejection>();
  ejection->host = host;
  Ejection* raw = ejection.get();
  ejection->timer = dispatcher_.CreateTimer([this, raw] {
    raw->host->consecutive_5xx.store(0);
    raw->host->consecutive_connect_failures.store(0);
    raw->host->ClearHealthFlag(Host::kEjected);
    auto it = std::find_if(ejections_.begin(), ejections_.end(),
                           [raw](const auto& e) { return e.get() == raw; });
    if (it != ejections_.end()) {
      std::unique_ptr<Ejection> owned = std::move(*it);
      ejections_.erase(it);
      dispatcher_.Post([owned = std::shared_ptr<Ejection>(std::move(owned))] {});
    }
  });
  ejection->timer->Enable(std::chrono::milliseconds(duration));
  ejections_.push_back(std::move(ejection));
}

}  // namespace ottava::mesh
