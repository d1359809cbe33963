#pragma once

// The API token on the gRPC port: the check every handler makes first (unary calls through
// BeginUnaryCall and ReplyNow, streams through the refused reactors below). Kept apart so the
// services only add one line per stream.

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "runtime/api/api_token.h"
#include "runtime/grpc/status_bridge.h"

namespace ottava::runtime::grpc_api {

/// OK when no token is configured or the call's `dapr-api-token` metadata matches it.
inline absl::Status CheckCallToken(const grpc::ServerContextBase& ctx, const std::string& token) {
  if (token.empty()) {
    return absl::OkStatus();
  }
  const auto& metadata = ctx.client_metadata();
  auto it =
      metadata.find(grpc::string_ref(api::kApiTokenHeader.data(), api::kApiTokenHeader.size()));
  if (it == metadata.end()) {
    return api::CheckApiToken(token, nullptr);
  }
  std::string_view presented(it->second.data(), it->second.size());
  return api::CheckApiToken(token, &presented);
}

/// A bidirectional stream answered at once with `status` (a refused token).
template <class Request, class Response>
class RefusedBidi final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedBidi(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

/// A server stream answered at once with `status` (a refused token).
template <class Response>
class RefusedWriter final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWriter(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace ottava::runtime::grpc_api
