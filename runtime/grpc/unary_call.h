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

  /// Records the call and finishes it with `status`. Once.
  void Finish(const absl::Status& status) const {
    grpc::Status grpc_status = ToGrpcStatus(status);
    if (flow != nullptr) {
      flow->controller->Exit(flow->entry,
                             mesh::flow::Outcome{IsServerError(grpc_status.error_code())});
    }
    call.Done(grpc_status);
    reactor->Finish(grpc_status);
  }
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
/// are turned away with UNAVAILABLE (retriable) while in-flight ones drain.
/// With `flow`, the call is checked against the flow-control rules of resource
/// "runtime:<Method>"; a blocked call is answered RESOURCE_EXHAUSTED with the rule's reply body.
/// Throttling rules never make a gRPC thread wait: a call that would have to queue is refused.
/// Nor do cluster rules: a sync one is counted like an async one here (a locally reserved share
/// of the same central counter), so the call is decided without a round trip.
inline UnaryCall BeginUnaryCall(grpc::CallbackServerContext* ctx,
                                const MethodMetrics& metrics,
                                const StreamRegistry& streams,
                                const std::string& api_token,
                                mesh::flow::Controller* flow = nullptr) {
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
