#pragma once

// Dapr's HTTP API v1.0 (reference/dapr-api.md §3, with the quirks of reference/dapr-sdk-wire.md)
// over cpp-httplib, on `dapr.http_address`. Like the gRPC front ends it only converts: JSON and
// HTTP to the API cores' types and back; errors become Dapr's JSON body
// {"errorCode": "ERR_...", "message": "..."} with the status of api::HttpStatusOf.
//
// Threading: httplib's worker pool runs the handlers; a handler waits for the core's completion
// (these threads are ours, never gRPC's or a component's). Start/Stop on the main thread.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/address.h"
#include "runtime/api/config_api.h"
#include "runtime/grpc/layotto_service.h"

namespace ottava::actuator {
class SocketHttpServer;
}
namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace ottava::runtime::http_api {

struct Options {
  Address address;
  int64_t max_body_bytes = 4 * 1024 * 1024;  // a larger request body is answered 413
  /// GET /v1.0/healthz: true once the sidecar is fully ready (and not shutting down).
  std::function<bool()> ready;
  /// GET /v1.0/healthz/outbound: true once the components are up.
  std::function<bool()> outbound_ready;
  /// >= 0: serve on this listening socket (inherited on upgrade; owned by the server from then
  /// on) instead of binding `address`.
  int inherited_fd = -1;
};

class DaprHttpServer {
 public:
  /// Binds `options.address` (port 0 allowed) and registers the routes; serving starts with
  /// Start(). `apis` (state, lock, config, pubsub, metadata, rpc, shutdown) must outlive the
  /// server.
  static absl::StatusOr<std::unique_ptr<DaprHttpServer>> Create(grpc_api::Apis apis,
                                                                Options options);
  ~DaprHttpServer();

  void Start();
  /// Stops accepting (upgrade: the next process accepts from the same socket); open connections
  /// close after their next response.
  void StopAccepting();
  /// Stops accepting and waits for the requests in progress. Idempotent.
  void Stop();
  /// The listening socket, for the upgrade handover.
  int listen_fd() const { return listen_fd_; }
  /// The bound "host:port".
  const std::string& address() const { return address_; }

 private:
  DaprHttpServer(grpc_api::Apis apis, Options options);
  void Routes();

  /// GET /v1.0/configuration/{store}/subscribe: starts a subscription whose changes are POSTed
  /// to the app at /configuration/{store}/{key}; answers {"id"}.
  void SubscribeConfiguration(const std::string& store,
                              std::vector<std::string> keys,
                              components::Metadata metadata,
                              httplib::Response& res);

  /// Upgrade, old process: sends `req` to the new process (on this server's address, which only
  /// it accepts from by then) and copies its answer into `res`.
  void Forward(const httplib::Request& req, httplib::Response& res);
  /// `handler`, or Forward() for a request the pre-routing handler marked to be forwarded.
  std::function<void(const httplib::Request&, httplib::Response&)> Forwarding(
      std::function<void(const httplib::Request&, httplib::Response&)> handler);

  grpc_api::Apis apis_;
  Options options_;
  std::unique_ptr<actuator::SocketHttpServer> server_;
  /// Configuration subscriptions made over HTTP, by id. Handler threads add and remove them;
  /// Stop() ends them all.
  absl::Mutex config_mu_;
  std::map<std::string, std::unique_ptr<api::ConfigApi::Subscription>> config_subscriptions_
      ABSL_GUARDED_BY(config_mu_);
  uint64_t next_config_id_ ABSL_GUARDED_BY(config_mu_) = 0;
  std::string address_;
  int listen_fd_ = -1;
  uint16_t bound_port_ = 0;
};

}  // namespace ottava::runtime::http_api
