#pragma once

// What every unary handler of the gRPC front ends does first and last: begin the method's
// metrics, turn the call away while the sidecar drains, and finish with an absl::Status.

#include <grpcpp/grpcpp.h>

#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "mesh/filter/flow_control/controller.h"
#include "runtime/grpc/api_token_check.h"
#include "runtime/grpc/call_forwarder.h"
#include "runtime/grpc/metrics.h"
#include "runtime/grpc/status_bridge.h"
#include "runtime/grpc/stream_registry.h"

namespace ottava::runtime::grpc_api {

/// A call admitted by flow control, settled when it finishes (feeds circuit breakers).
struct FlowSlot {
  mesh::flow::Controller* controller;
  mesh::flow::Entry entry;
};

/// Whether a finished call counts as a failure for circuit breakers: the server's fault, not the
/// caller's.
inline bool IsServerError(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::INTERNAL ||
         code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::DATA_LOSS;
}

/// A unary call in progress: its reactor and its metrics. Copyable into completions.
struct UnaryCall {
  grpc::ServerUnaryReactor* reactor;
  MethodMetrics::Call call;
  bool rejected;  // already answered (draining, or flow control): just return `reactor`
  std::shared_ptr<FlowSlot> flow = nullptr;  // set when flow-control rules matched the call
  CallForwarder* local = nullptr;            // set when the call is served here and counted there

  /// Records the call and finishes it with `status`. Once.
  void Finish(const absl::Status& status) const { FinishWith(ToGrpcStatus(status)); }
  void FinishWith(const grpc::Status& grpc_status) const {
    if (flow != nullptr) {
      flow->controller->Exit(flow->entry,
                             mesh::flow::Outcome{IsServerError(grpc_status.error_code())});
    }
    call.Done(grpc_status);
    reactor->Finish(grpc_status);
    if (local != nullptr) {
      local->ExitLocal();
    }
  }
};

/// The gRPC path of the method `metrics` counts ("GetState", or "dapr/GetState" for Dapr's) in
/// `service`: "/<service>/GetState".
inline std::string MethodPath(std::string_view service, const MethodMetrics& metrics) {
  std::string_view name = metrics.method();
  name.remove_prefix(name.rfind('/') + 1);  // npos + 1 == 0
  return "/" + std::string(service) + "/" + std::string(name);
}

/// Where a unary call may be forwarded to (an upgrade's old process, see CallForwarder), with
/// what it carries. `service` is the full service name ("dapr.proto.runtime.v1.Dapr").
template <class Request, class Response>
struct Forwarding {
  CallForwarder* forwarder;
  std::string_view service;
  const Request* request;
  Response* response;
};

/// gRPC metadata as flow control's header lookup (keys are lower-case on the wire).
class MetadataLookup : public mesh::flow::HeaderLookup {
 public:
  explicit MetadataLookup(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata)
      : metadata_(metadata) {}
  const std::string* Get(std::string_view lower_name) const override {
    auto it = metadata_.find(grpc::string_ref(lower_name.data(), lower_name.size()));
    if (it == metadata_.end()) {
      return nullptr;
    }
    values_.emplace_back(it->second.data(), it->second.size());
    return &values_.back();
  }

 private:
  const std::multimap<grpc::string_ref, grpc::string_ref>& metadata_;
  mutable std::list<std::string> values_;  // stable addresses for returned values
};

/// The peer's IP from gRPC's "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000".
inline std::string PeerIp(const std::string& peer) {
  std::string_view view = peer;
  const size_t colon = view.find(':');
  if (colon != std::string_view::npos) {
    view.remove_prefix(colon + 1);
  }
  if (view.starts_with('[')) {
    const size_t end = view.find(']');
    return std::string(view.substr(1, end == std::string_view::npos ? view.size() : end - 1));
  }
  const size_t port = view.rfind(':');
  return std::string(port == std::string_view::npos ? view : view.substr(0, port));
}

/// Begins a call of the method `metrics` counts. A call without the API token (`api_token`, when
/// set) is turned away with UNAUTHENTICATED. Once shutdown began (`streams` closed), new calls
/// are turned away with UNAVAILABLE (retriable) while in-flight ones drain. After an upgrade's
/// handover (`forward` armed) the call goes on to the new process and comes back `rejected`
/// (answered when the new process answers).
/// With `flow`, the call is checked against the flow-control rules of resource
/// "runtime:<Method>"; a blocked call is answered RESOURCE_EXHAUSTED with the rule's reply body.
/// Throttling rules never make a gRPC thread wait: a call that would have to queue is refused.
/// Nor do cluster rules: a sync one is counted like an async one here (a locally reserved share
/// of the same central counter), so the call is decided without a round trip.
template <class Request, class Response>
UnaryCall BeginUnaryCall(grpc::CallbackServerContext* ctx,
                         const MethodMetrics& metrics,
                         const StreamRegistry& streams,
                         const std::string& api_token,
                         mesh::flow::Controller* flow,
                         const Forwarding<Request, Response>& forward) {
  UnaryCall call{ctx->DefaultReactor(), metrics.Begin(), false};
  if (absl::Status token = CheckCallToken(*ctx, api_token); !token.ok()) {
    call.Finish(token);
    call.rejected = true;
    return call;
  }
  if (streams.unary_closed()) {
    call.Finish(absl::UnavailableError("the sidecar is shutting down"));
    call.rejected = true;
    return call;
  }
  if (forward.forwarder != nullptr) {
    if (!forward.forwarder->EnterLocal()) {
      forward.forwarder->Unary(ctx, MethodPath(forward.service, metrics), *forward.request,
                               forward.response,
                               [call](const grpc::Status& status) { call.FinishWith(status); });
      call.rejected = true;
      return call;
    }
    call.local = forward.forwarder;
  }
  if (flow != nullptr) {
    const std::string resource = "runtime:" + metrics.method();
    const std::string ip = PeerIp(ctx->peer());
    MetadataLookup lookup(ctx->client_metadata());
    mesh::flow::Traffic traffic{resource, ip, "", &lookup};
    mesh::flow::Entry entry =
        flow->Check(traffic, /*allow_queueing=*/false, /*allow_remote=*/false);
    if (entry.blocked()) {
      std::string body = entry.reply()->body;
      while (!body.empty() && body.back() == '\n') {
        body.pop_back();
      }
      call.Finish(absl::ResourceExhaustedError(body));
      call.rejected = true;
      return call;
    }
    if (entry.needs_exit()) {
      call.flow = std::make_shared<FlowSlot>(FlowSlot{flow, std::move(entry)});
    }
  }
  return call;
}

/// Answers at once with `status` (the APIs not built), counted like any call; UNAUTHENTICATED
/// instead when the API token is missing.
inline grpc::ServerUnaryReactor* ReplyNow(grpc::CallbackServerContext* ctx,
                                          const MethodMetrics& metrics,
                                          const absl::Status& status,
                                          const std::string& api_token) {
  UnaryCall call{ctx->DefaultReactor(), metrics.Begin(), false};
  absl::Status token = CheckCallToken(*ctx, api_token);
  call.Finish(token.ok() ? status : token);
  return call.reactor;
}

}  // namespace ottava::runtime::grpc_api
