#pragma once

// Error plumbing: absl::Status inside Ottava. The grpc::Status bridge lives with the gRPC front
// ends, in runtime/grpc/status_bridge.h.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define OTTAVA_STATUS_CONCAT_INNER(a, b) a##b
#define OTTAVA_STATUS_CONCAT(a, b) OTTAVA_STATUS_CONCAT_INNER(a, b)

/// Returns the status from the enclosing function when `expr` is not OK.
#define OTTAVA_RETURN_IF_ERROR(expr)        \
  do {                                      \
    ::absl::Status ottava_status_ = (expr); \
    if (!ottava_status_.ok()) {             \
      return ottava_status_;                \
    }                                       \
  } while (false)

#define OTTAVA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) {                                   \
    return tmp.status();                             \
  }                                                  \
  lhs = std::move(*tmp)

/// `OTTAVA_ASSIGN_OR_RETURN(auto x, F())` binds the value of a StatusOr or returns its error.
#define OTTAVA_ASSIGN_OR_RETURN(lhs, expr) \
  OTTAVA_ASSIGN_OR_RETURN_IMPL(OTTAVA_STATUS_CONCAT(ottava_statusor_, __LINE__), lhs, expr)
