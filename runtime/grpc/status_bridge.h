#pragma once

// The absl::Status <-> grpc::Status bridge. Lives with the gRPC front ends so that common/,
// components/ and mesh/ never see gRPC (DESIGN.md §5: grpc::Status only in runtime/grpc/).

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace ottava {

/// Converts an Abseil status into the gRPC status sent to clients (codes are numerically equal).
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  return {static_cast<grpc::StatusCode>(status.code()), std::string(status.message())};
}

/// Converts a gRPC status received from a peer into an Abseil status.
inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) {
    return absl::OkStatus();
  }
  return {static_cast<absl::StatusCode>(status.error_code()), status.error_message()};
}

}  // namespace ottava
