#pragma once

// Per-method request metrics of the gRPC front-ends:
//   ottava_grpc_requests_total{method,code}, ottava_grpc_request_duration_seconds{method},
//   ottava_grpc_requests_in_flight.
// The request path takes no lock: counters are created on first use of a (method, code) pair and
// cached in atomics.

#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "common/stats.h"

namespace ottava::runtime::grpc_api {

class MethodMetrics {
 public:
  MethodMetrics(stats::Store& store, std::string method, stats::Gauge& in_flight);

  /// A call in progress: copyable, so it fits in completion lambdas. Done() exactly once.
  class Call {
   public:
    void Done(grpc::StatusCode code) const;
    void Done(const grpc::Status& status) const { Done(status.error_code()); }

   private:
    friend class MethodMetrics;
    Call(const MethodMetrics* metrics)
        : metrics_(metrics), start_(std::chrono::steady_clock::now()) {}
    const MethodMetrics* metrics_;
    std::chrono::steady_clock::time_point start_;
  };

  /// The method's name ("GetState").
  const std::string& method() const { return method_; }

  Call Begin() const {
    in_flight_.Add(1);
    return Call(this);
  }

 private:
  stats::Counter& CounterFor(grpc::StatusCode code) const;

  stats::Store& store_;
  const std::string method_;
  stats::Gauge& in_flight_;
  stats::Histogram& latency_;
  mutable std::array<std::atomic<stats::Counter*>, 17> by_code_{};
};

/// The metrics of every method of a service, created once at startup.
class ServiceMetrics {
 public:
  explicit ServiceMetrics(stats::Store& store);
  /// The metrics of `method`; created on first request (startup registers the known ones).
  const MethodMetrics& Method(const std::string& method);

 private:
  stats::Store& store_;
  stats::Gauge& in_flight_;
  std::map<std::string, std::unique_ptr<MethodMetrics>> methods_;
};

}  // namespace ottava::runtime::grpc_api
