#include "components/rpc/mesh/mesh_rpc.h"

#include <algorithm>
#include <cctype>

#include "mesh/codec/bolt/bolt_frame.h"
#include "mesh/codec/dubbo/dubbo_frame.h"

namespace ottava::components::rpc {
namespace {

class AddHeadersFilter : public RpcFilter {
 public:
  explicit AddHeadersFilter(std::vector<std::pair<std::string, std::string>> headers)
      : headers_(std::move(headers)) {}
  std::string_view name() const override { return "add_headers"; }
  absl::Status Before(RpcRequest& request) override {
    for (const auto& header : headers_) {
      request.metadata.push_back(header);
    }
    return absl::OkStatus();
  }
  void After(const RpcRequest&, RpcResponse&) override {}

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
};

// Metadata gRPC itself sets, or that would change the HTTP framing: never forwarded as headers.
bool Forwardable(std::string_view name) {
  if (name.empty() || name[0] == ':' || name.rfind("grpc-", 0) == 0) {
    return false;
  }
  static constexpr std::string_view kDropped[] = {
      "content-type", "user-agent", "te",      "content-length", "transfer-encoding",
      "connection",   "host",       "upgrade", "keep-alive",     "rpc_request_timeout"};
  return std::find(std::begin(kDropped), std::end(kDropped), name) == std::end(kDropped);
}

}  // namespace

RpcFilterPtr CreateAddHeadersFilter(std::vector<std::pair<std::string, std::string>> headers) {
  return std::make_unique<AddHeadersFilter>(std::move(headers));
}

absl::Status StatusFromHttp(int http_status, std::string message) {
  switch (http_status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return absl::AbortedError(message);
    case 429:
      return absl::ResourceExhaustedError(message);
    case 501:
      return absl::UnimplementedError(message);
    case 502:
    case 503:
      return absl::UnavailableError(message);
    case 504:
      return absl::DeadlineExceededError(message);
    default:
      break;
  }
  if (http_status >= 400 && http_status < 500) {
    return absl::FailedPreconditionError(message);
  }
  return absl::InternalError(message);
}

void MeshRpc::Invoke(RpcRequest request, RpcCallback done) {
  for (const RpcFilterPtr& filter : filters_) {
    if (absl::Status status = filter->Before(request); !status.ok()) {
      done(status);
      return;
    }
  }
  auto headers = std::make_unique<mesh::RequestHeaders>();
  headers->method = request.verb.empty() ? "POST" : request.verb;
  headers->path = "/" + request.method;
  if (!request.query.empty()) {
    headers->path += "?" + request.query;
  }
  headers->host = request.app_id;
  headers->service = request.app_id;
  headers->headers.Add("host", request.app_id);
  headers->headers.Add("id", request.app_id);
  if (!request.content_type.empty()) {
    headers->headers.Add("content-type", request.content_type);
  }
  for (const auto& [name, value] : request.metadata) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (Forwardable(lower)) {
      headers->headers.Add(lower, value);
    }
  }
  if (!request.caller_app_id.empty()) {
    headers->headers.Set("dapr-caller-app-id", request.caller_app_id);
  }
  mesh::InvokeRequest invoke;
  invoke.headers = std::move(headers);
  invoke.body = std::move(request.data);
  invoke.timeout = request.timeout.count() > 0 ? request.timeout : kDefaultRpcTimeout;
  // RPC protocols carry the caller's timeout in the frame (Bolt).
  invoke.headers->timeout_ms = invoke.timeout.count();
  const std::string app_id = request.app_id;
  // Filters outlive the engine's workers (the sidecar stops the engine first).
  auto* filters = &filters_;
  auto shared_request = std::make_shared<RpcRequest>(std::move(request));
  engine_.Invoke(std::move(invoke), [done = std::move(done), app_id, filters,
                                     shared_request](mesh::InvokeResponse response) {
    using mesh::LocalReplyReason;
    switch (response.local_reply) {
      case LocalReplyReason::kNoRoute:
        done(absl::NotFoundError("no route to app '" + app_id + "' in the mesh"));
        return;
      case LocalReplyReason::kNoHealthyHost:
      case LocalReplyReason::kConnectFailure:
      case LocalReplyReason::kUpstreamReset:
        done(absl::UnavailableError("app '" + app_id + "': " + response.body));
        return;
      case LocalReplyReason::kOverflow:
        done(absl::ResourceExhaustedError("app '" + app_id + "': " + response.body));
        return;
      case LocalReplyReason::kTimeout:
        done(absl::DeadlineExceededError("app '" + app_id + "': " + response.body));
        return;
      default:
        break;
    }
    if (response.rpc_status >= 0 && (response.status < 200 || response.status > 299)) {
      // An RPC upstream answered with a failure status of its own protocol (the codec mapped it
      // onto `status`: Bolt's success is 0, Dubbo's 20).
      std::string excerpt = response.body.substr(0, 256);
      const std::string name =
          response.rpc_proto == mesh::dubbo::kRpcProto
              ? mesh::dubbo::StatusName(static_cast<uint8_t>(response.rpc_status))
              : mesh::bolt::StatusName(static_cast<uint16_t>(response.rpc_status));
      done(StatusFromHttp(response.status, "app '" + app_id + "' answered status " + name +
                                               (excerpt.empty() ? "" : ": " + excerpt)));
      return;
    }
    if (response.status < 200 || response.status > 299) {
      std::string excerpt = response.body.substr(0, 256);
      done(StatusFromHttp(response.status, "app '" + app_id + "' answered HTTP " +
                                               std::to_string(response.status) +
                                               (excerpt.empty() ? "" : ": " + excerpt)));
      return;
    }
    RpcResponse out;
    out.http_status = response.status;
    if (const std::string* type = response.headers.Get("content-type")) {
      out.content_type = *type;
    }
    out.data = std::move(response.body);
    for (const auto& entry : response.headers) {
      out.headers.push_back(entry);
    }
    for (const RpcFilterPtr& filter : *filters) {
      filter->After(*shared_request, out);
    }
    done(std::move(out));
  });
}

}  // namespace ottava::components::rpc
