#include "runtime/grpc/metrics.h"

namespace ottava::runtime::grpc_api {
namespace {

const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  auto index = static_cast<size_t>(code);
  return index < std::size(kNames) ? kNames[index] : "UNKNOWN";
}

}  // namespace

MethodMetrics::MethodMetrics(stats::Store& store, std::string method, stats::Gauge& in_flight)
    : store_(store),
      method_(std::move(method)),
      in_flight_(in_flight),
      latency_(store.HistogramFor("ottava_grpc_request_duration_seconds",
                                  "Time from request to response, by API method",
                                  {{"method", method_}})) {}

stats::Counter& MethodMetrics::CounterFor(grpc::StatusCode code) const {
  size_t index = static_cast<size_t>(code) < by_code_.size() ? static_cast<size_t>(code) : 2;
  stats::Counter* counter = by_code_[index].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Two threads may race here; the store returns the same counter to both.
    counter = &store_.CounterFor("ottava_grpc_requests_total",
                                 "Finished API requests, by method and gRPC status code",
                                 {{"method", method_}, {"code", CodeName(code)}});
    by_code_[index].store(counter, std::memory_order_release);
  }
  return *counter;
}

void MethodMetrics::Call::Done(grpc::StatusCode code) const {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  metrics_->latency_.Record(seconds);
  metrics_->CounterFor(code).Inc();
  metrics_->in_flight_.Sub(1);
}

ServiceMetrics::ServiceMetrics(stats::Store& store)
    : store_(store),
      in_flight_(store.GaugeFor("ottava_grpc_requests_in_flight",
                                "API requests and streams currently being served")) {}

const MethodMetrics& ServiceMetrics::Method(const std::string& method) {
  auto& slot = methods_[method];
  if (!slot) {
    slot = std::make_unique<MethodMetrics>(store_, method, in_flight_);
  }
  return *slot;
}

}  // namespace ottava::runtime::grpc_api
