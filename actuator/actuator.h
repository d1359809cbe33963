#pragma once

// The actuator: the HTTP endpoints a PaaS probes and operators use (cpp-httplib on its own thread
// pool), as Envoy's admin: subsystems register handlers with AddHandler() before Start(). The
// standard ones come from the Add*Handlers helpers below:
//   GET  /actuator/health/liveness   process and event loops respond
//   GET  /actuator/health/readiness  every required component UP and the API serving
//   GET  /actuator/health            both together
//   GET  /actuator/info              version, build, app id, components, subscriptions
//   GET  /metrics                    Prometheus text
//   POST /actuator/logger            {"module": "grpc", "level": "debug"}
//   GET  /actuator                   every registered handler with its help text (built in)
// Health bodies: {"status": S, "components": {"<indicator>": {"status": S, "details": {...}}}};
// 200 only when S is UP, else 503.
//
// Threading: AddHandler() on the owner's thread before Start(). Handlers run on httplib's threads,
// concurrently, and must only read atomics and snapshots (DESIGN.md §4).

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

/// An HTTP request as a handler sees it.
struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;
  std::string body;
  std::string remote_address;                 // the peer's IP address
  std::map<std::string, std::string> params;  // query parameters (the first of repeated ones)
};

/// What a handler answers.
struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

/// Answers one request. Runs on an httplib thread; must not block for long.
using Handler = std::function<HttpResponse(const HttpRequest&)>;

/// Aggregates indicators: any DOWN -> DOWN, else any INIT -> INIT, else UP.
components::HealthState Aggregate(const std::vector<Indicator>& indicators);
/// The JSON body of a health endpoint.
nlohmann::json HealthBody(const std::vector<Indicator>& indicators);

class SocketHttpServer;

class Actuator {
 public:
  /// Binds `host:port` (port 0 picks a free port). Nothing is served until Start().
  /// `inherited_fd` >= 0: serve on that listening socket instead (taken over from the previous
  /// process on upgrade; owned from now on, its bound port is reported).
  static absl::StatusOr<std::unique_ptr<Actuator>> Create(const std::string& host,
                                                          uint16_t port,
                                                          int inherited_fd = -1);
  ~Actuator();

  Actuator(const Actuator&) = delete;
  Actuator& operator=(const Actuator&) = delete;

  /// Serves `method` (GET, POST, PUT, DELETE, PATCH) on exactly `path`; `help` is listed by
  /// GET /actuator. Before Start(), owner's thread. `loopback_only`: requests from a non-loopback
  /// peer get 403. Registering a method and path twice is a bug (asserted).
  void AddHandler(std::string method,
                  std::string path,
                  std::string help,
                  Handler handler,
                  bool loopback_only = false);

  /// Serves on background threads.
  void Start();
  /// Stops accepting (upgrade: the next process accepts from the same socket); open connections
  /// close after their next response.
  void StopAccepting();
  /// Stops serving and joins. Idempotent.
  void Stop();
  /// The listening socket, for the upgrade handover; -1 before Create succeeded.
  int listen_fd() const { return listen_fd_; }

  /// The bound "host:port".
  std::string address() const { return host_ + ":" + std::to_string(port_); }

 private:
  struct Registered {
    std::string method;
    std::string path;
    std::string help;
  };

  explicit Actuator(std::string host);
  HttpResponse Index() const;

  std::string host_;
  uint16_t port_ = 0;
  std::vector<Registered> registered_;  // fixed once Start() runs
  std::unique_ptr<SocketHttpServer> server_;
  int listen_fd_ = -1;
  bool started_ = false;
};

/// GET /actuator/health/liveness, /actuator/health/readiness and /actuator/health over the given
/// indicator sources (called on httplib threads).
void AddHealthHandlers(Actuator& actuator,
                       std::function<std::vector<Indicator>()> liveness,
                       std::function<std::vector<Indicator>()> readiness);
/// GET /actuator/info: the JSON `info` returns.
void AddInfoHandler(Actuator& actuator, std::function<nlohmann::json()> info);
/// GET /metrics: `stats` (which must outlive the actuator) in Prometheus text.
void AddMetricsHandler(Actuator& actuator, const stats::Store& stats);
/// POST /actuator/logger: sets a module's log level ({"module"|"component": NAME, "level": L}).
void AddLoggerHandler(Actuator& actuator);

}  // namespace ottava::actuator
