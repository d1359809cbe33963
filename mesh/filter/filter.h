#pragma once

// Stream filters: per-request steps that run before the router picks a route (decode path) and
// on the response head on its way back (encode path), in the spirit of Envoy's and MOSN's stream
// filters. A filter may continue, stop (and continue later, e.g. after a timer or an answer from
// elsewhere), or answer the request itself. Flow control plugs in here.
//
// Threading: a filter instance belongs to one request on one worker; every call happens on that
// worker's thread. Factories are immutable and shared by every worker.

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/dispatcher.h"
#include "mesh/codec/message.h"

namespace ottava::mesh {

enum class FilterStatus : uint8_t {
  kContinue,  // go on to the next filter (or the router)
  kStop,      // wait: the filter calls ContinueDecoding() or SendLocalReply() later
};

/// What a filter may do to its stream. Valid until the filter's OnDestroy().
class StreamFilterCallbacks {
 public:
  virtual ~StreamFilterCallbacks() = default;
  /// Resumes the decode path after this filter returned kStop.
  virtual void ContinueDecoding() = 0;
  /// Answers the request with `status` and a text body; later filters and the router never see
  /// it. May be called from DecodeHeaders (then return kStop) or later.
  virtual void SendLocalReply(int status, std::string_view body) = 0;
  /// The worker's loop (timers).
  virtual Dispatcher& dispatcher() = 0;
  /// The peer's address ("" for in-process InvokeService calls).
  virtual std::string_view downstream_address() const = 0;
  /// Sends the request to `cluster` instead of its route's (a downgrade). Call before the
  /// decode path reaches the router; a cluster missing from the snapshot is answered 503.
  virtual void RouteToCluster(std::string cluster) = 0;
};

class StreamFilter {
 public:
  virtual ~StreamFilter() = default;
  /// Called once, before any other method.
  virtual void SetCallbacks(StreamFilterCallbacks& callbacks) = 0;
  /// The request head; the filter may change it.
  virtual FilterStatus DecodeHeaders(RequestHeaders& headers, bool end_stream) = 0;
  /// The response head (the upstream's or a local reply) before it is sent; may change it.
  virtual void EncodeHeaders(ResponseHeaders& /*headers*/) {}
  /// The stream ended (complete, answered locally, or reset): cancel timers, release resources.
  virtual void OnDestroy() {}
};
using StreamFilterPtr = std::unique_ptr<StreamFilter>;
/// Makes one filter for one stream.
using FilterFactoryCb = std::function<StreamFilterPtr()>;

/// Parses a filter's config once (on the thread building a snapshot) into a factory callback.
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual std::string_view name() const = 0;
  /// Errors are INVALID_ARGUMENT naming `pointer` (the filter's "config" object).
  virtual absl::StatusOr<FilterFactoryCb> Create(const nlohmann::json& config,
                                                 const std::string& pointer) const = 0;
};
using FilterFactoryPtr = std::unique_ptr<FilterFactory>;

/// The filters a build knows, by name. Filled once at startup; read-only afterwards.
class FilterRegistry {
 public:
  /// Fails on a name registered twice.
  absl::Status Add(FilterFactoryPtr factory);
  /// The factory named `name`, or nullptr.
  const FilterFactory* Find(std::string_view name) const;

 private:
  std::map<std::string, FilterFactoryPtr, std::less<>> factories_;
};

/// The explicit list of builtin filters (mesh/filter/builtin.cc).
void RegisterBuiltinFilters(FilterRegistry& registry);

}  // namespace ottava::mesh
