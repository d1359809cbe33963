#pragma once

// The seams between the flow-control core and the world outside the mesh (issue 9): a central
// counter for cluster limits, and a listener for flow-control events. mesh/ only knows these
// interfaces; the runtime injects a Redis-backed counter and a pub/sub event hook at startup, and
// tests inject fakes.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ottava::mesh::flow {

/// A counter shared by every sidecar of a cluster, one per key (a cluster rule and a window).
/// Implementations are thread-safe.
class ClusterCounter {
 public:
  using AddCallback = std::function<void(absl::StatusOr<int64_t> total)>;

  virtual ~ClusterCounter() = default;
  /// Adds `delta` to the counter `key` and reports the total after the addition; a counter created
  /// by this call expires after `ttl`. One round trip. `done` runs exactly once, on any thread
  /// (possibly before Add returns); an error (UNAVAILABLE) means the backend could not be asked.
  /// Called from any thread; never blocks.
  virtual void Add(const std::string& key,
                   int64_t delta,
                   std::chrono::milliseconds ttl,
                   AddCallback done) = 0;
  /// Whether the backend is believed reachable right now. While false, cluster rules use their
  /// fallback without asking. Any thread; an atomic read.
  virtual bool Healthy() const = 0;
};

/// What happened, for a self-healing platform.
struct FlowEvent {
  enum class Kind : uint8_t { kBlock, kBreakerState, kAdaptiveTrigger };
  Kind kind = Kind::kBlock;
  std::string_view resource;  // "*" for adaptive triggers (the whole sidecar)
  std::string_view rule;      // the rule id ("adaptive" for adaptive triggers)
  std::string_view state;     // block: the rule kind; breaker: open|half_open|closed; adaptive:
                              // the phase (normal|shed_stress|baseline)
};

/// "block", "breaker_state", "adaptive_trigger".
std::string_view FlowEventKindName(FlowEvent::Kind kind);

/// Receives flow-control events. The controller already bounds blocks to one per rule per
/// second; implementations bound the rest and must not block.
class EventListener {
 public:
  virtual ~EventListener() = default;
  /// Called on the thread where the event happened (a mesh worker, a gRPC thread, a timer).
  /// The views are valid during the call only.
  virtual void OnEvent(const FlowEvent& event) = 0;
};

}  // namespace ottava::mesh::flow
