#pragma once

// What every unary handler of the gRPC front ends does first and last: begin the method's
// metrics, turn the call away while the sidecar drains, and finish with an absl::Status.

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "runtime/grpc/metrics.h"
#include "runtime/grpc/status_bridge.h"
#include "runtime/grpc/stream_registry.h"

namespace ottava::runtime::grpc_api {

/// A unary call in progress: its reactor and its metrics. Copyable into completions.
struct UnaryCall {
  grpc::ServerUnaryReactor* reactor;
  MethodMetrics::Call call;
  bool rejected;  // already answered (the sidecar is draining): just return `reactor`

  /// Records the call and finishes it with `status`. Once.
  void Finish(const absl::Status& status) const {
    grpc::Status grpc_status = ToGrpcStatus(status);
    call.Done(grpc_status);
    reactor->Finish(grpc_status);
  }
};

/// Begins a call of the method `metrics` counts. Once shutdown began (`streams` closed), new calls
/// are turned away with UNAVAILABLE (retriable) while in-flight ones drain.
inline UnaryCall BeginUnaryCall(grpc::CallbackServerContext* ctx,
                                const MethodMetrics& metrics,
                                const StreamRegistry& streams) {
  UnaryCall call{ctx->DefaultReactor(), metrics.Begin(), false};
  if (streams.unary_closed()) {
    call.Finish(absl::UnavailableError("the sidecar is shutting down"));
    call.rejected = true;
  }
  return call;
}

/// Answers at once with `status` (the APIs not built), counted like any call.
inline grpc::ServerUnaryReactor* ReplyNow(grpc::CallbackServerContext* ctx,
                                          const MethodMetrics& metrics,
                                          const absl::Status& status) {
  UnaryCall call{ctx->DefaultReactor(), metrics.Begin(), false};
  call.Finish(status);
  return call.reactor;
}

}  // namespace ottava::runtime::grpc_api
