#pragma once

// The HTTP status of an API error (DESIGN.md §5), next to the gRPC code it comes with. For the
// HTTP front ends; the gRPC ones send the code itself (runtime/grpc/status_bridge.h).

#include "absl/status/status.h"

namespace ottava::runtime::api {

/// 200 for OK; INVALID_ARGUMENT and FAILED_PRECONDITION 400, UNAUTHENTICATED 401,
/// PERMISSION_DENIED 403, NOT_FOUND 404, ABORTED and ALREADY_EXISTS 409, RESOURCE_EXHAUSTED 429
/// (a body over the limit is answered 413 by the front end itself), CANCELLED 499, UNIMPLEMENTED
/// 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, anything else 500.
constexpr int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

}  // namespace ottava::runtime::api
