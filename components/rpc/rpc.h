#pragma once

// The RPC building block: invoke a method of another application (Layotto's InvokeService). The
// one implementation sends the call through the embedded mesh engine (components/rpc/mesh), so
// routing, load balancing, retries and timeouts are the mesh's. Filters run before the call
// leaves and after its answer arrives (Layotto's RPC before/after filter hook).
//
// Threading: Invoke may be called from any thread and never blocks; `done` runs on a mesh worker
// thread (it must not block either).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ottava::components::rpc {

struct RpcRequest {
  std::string app_id;         // the callee (routing key "service")
  std::string method;         // becomes the path "/<method>"
  std::string verb = "POST";  // HTTP verb
  std::string query;          // query string without '?'
  std::string content_type;
  std::string data;
  /// Request metadata, sent as headers (names lower-case).
  std::vector<std::pair<std::string, std::string>> metadata;
  /// 0: the default (3000 ms).
  std::chrono::milliseconds timeout{0};
  /// The calling application's id; travels as the `dapr-caller-app-id` header.
  std::string caller_app_id;
};

struct RpcResponse {
  int http_status = 200;
  std::string content_type;
  std::string data;
  std::vector<std::pair<std::string, std::string>> headers;
};

using RpcCallback = std::function<void(absl::StatusOr<RpcResponse>)>;

/// Runs around every call. Any thread; must not block.
class RpcFilter {
 public:
  virtual ~RpcFilter() = default;
  virtual std::string_view name() const = 0;
  /// Before the call leaves; a non-OK status fails the call with it.
  virtual absl::Status Before(RpcRequest& request) = 0;
  /// After a response arrived (not after failures).
  virtual void After(const RpcRequest& request, RpcResponse& response) = 0;
};
using RpcFilterPtr = std::unique_ptr<RpcFilter>;

/// Adds fixed headers to every request (the builtin filter, config `mesh.rpc_headers`).
RpcFilterPtr CreateAddHeadersFilter(std::vector<std::pair<std::string, std::string>> headers);

class Rpc {
 public:
  virtual ~Rpc() = default;
  /// Sends the call; `done` gets the response, or an error status:
  /// NOT_FOUND (no route for app_id), UNAVAILABLE (no healthy host, connect failure, reset),
  /// DEADLINE_EXCEEDED (timeout), RESOURCE_EXHAUSTED (overflow), or the mapping of a non-2xx
  /// HTTP status (the message carries the status and the body's first bytes).
  virtual void Invoke(RpcRequest request, RpcCallback done) = 0;
  /// Appends a filter (before Invoke is first called).
  virtual void AddFilter(RpcFilterPtr filter) = 0;
};
using RpcPtr = std::unique_ptr<Rpc>;

/// The default call timeout.
inline constexpr std::chrono::milliseconds kDefaultRpcTimeout{3000};

/// The gRPC-style error for an HTTP status (non-2xx): 400 INVALID_ARGUMENT, 401
/// UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 409 ABORTED, 429 RESOURCE_EXHAUSTED,
/// 501 UNIMPLEMENTED, 502/503 UNAVAILABLE, 504 DEADLINE_EXCEEDED, other 4xx FAILED_PRECONDITION,
/// other 5xx INTERNAL.
absl::Status StatusFromHttp(int http_status, std::string message);

}  // namespace ottava::components::rpc
