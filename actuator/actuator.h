#pragma once

// The actuator: the HTTP endpoints a PaaS probes (cpp-httplib on its own thread pool).
//   GET  /actuator/health/liveness   process and event loops respond
//   GET  /actuator/health/readiness  every required component UP and the API serving
//   GET  /actuator/info              version, build, app id, components, subscriptions
//   GET  /metrics                    Prometheus text
//   POST /actuator/logger            {"module": "grpc", "level": "debug"}
// Health bodies: {"status": S, "components": {"<indicator>": {"status": S, "details": {...}}}};
// 200 only when S is UP, else 503.
//
// Threading: handlers run on httplib's threads and only read atomics and the callbacks' results,
// which must be safe to call from any thread.

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/stats.h"
#include "components/component.h"

namespace httplib {
class Server;
}

namespace ottava::actuator {

/// One named health indicator.
struct Indicator {
  std::string name;
  components::HealthState state = components::HealthState::kInit;
  std::string reason;
  bool counts = true;  // false: listed, but not part of the aggregate (optional components)
};

struct Sources {
  std::function<std::vector<Indicator>()> liveness;
  std::function<std::vector<Indicator>()> readiness;
  std::function<nlohmann::json()> info;
  stats::Store* stats = nullptr;
};

/// A request to a registered handler.
struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
  std::string remote_address;
  std::map<std::string, std::string> params;
};

/// Its answer.
struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

/// Serves one endpoint; runs on httplib's threads (it must be thread-safe).
using Handler = std::function<HttpResponse(const HttpRequest&)>;

/// Aggregates indicators: any DOWN -> DOWN, else any INIT -> INIT, else UP.
components::HealthState Aggregate(const std::vector<Indicator>& indicators);
/// The JSON body of a health endpoint.
nlohmann::json HealthBody(const std::vector<Indicator>& indicators);

class Actuator {
 public:
  /// Binds `host:port` (port 0 picks a free port). Nothing is served until Start().
  static absl::StatusOr<std::unique_ptr<Actuator>> Create(const std::string& host,
                                                          uint16_t port,
                                                          Sources sources);
  ~Actuator();

  /// Registers `method` (GET, POST, PUT, DELETE) `path`, served by `handler`. Before Start().
  /// `loopback_only`: requests from a non-loopback peer get 403.
  void AddHandler(std::string method,
                  std::string path,
                  std::string help,
                  Handler handler,
                  bool loopback_only = false);

  /// Serves on a background thread.
  void Start();
  /// Stops serving and joins. Idempotent.
  void Stop();

  /// The bound "host:port".
  std::string address() const { return host_ + ":" + std::to_string(port_); }

 private:
  Actuator(std::string host, Sources sources);
  void Routes();

  std::string host_;
  uint16_t port_ = 0;
  Sources sources_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace ottava::actuator
