#pragma once

// The events hook of unified flow control (issue 9): blocks, circuit-breaker state changes and
// adaptive triggers are published to a topic of one of the sidecar's own pub/sub components, so a
// self-healing platform can react. Configured by `flow_control.events`:
//   {"pubsub": "bus", "topic": "flow-events"}
// Each event is a JSON object (content type application/json, not wrapped in CloudEvents):
//   {"app_id": "orders", "resource": "/api", "rule": "q100", "kind": "block", "state": "qps",
//    "time": "2026-12-05T21:40:00.123Z"}
// kind block: state is the rule kind; breaker_state: open|half_open|closed; adaptive_trigger:
// the new phase (normal|shed_stress|baseline), resource "*" and rule "adaptive".
//
// Rate bound: at most one event per resource and kind per second (breaker states: per resource,
// kind and state, so an open followed by a close within a second both arrive); the rest are
// dropped and counted. A flood of blocks therefore costs the broker at most one message per
// blocking resource per second.
// ottava_flow_control_events_total{kind,result=published|dropped|failed} counts them all.
//
// Threading: OnEvent from any thread (a short critical section for the rate bound; Publish is
// asynchronous).

#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/stats.h"
#include "common/time_source.h"
#include "components/pubsub/pubsub.h"
#include "mesh/filter/flow_control/cluster.h"

namespace ottava::runtime {

class FlowEventPublisher : public mesh::flow::EventListener {
 public:
  /// `pubsub`, `time` and `stats` (not owned) must outlive the publisher.
  FlowEventPublisher(components::pubsub::PubSub& pubsub,
                     std::string topic,
                     std::string app_id,
                     const TimeSource& time,
                     stats::Store& stats);

  void OnEvent(const mesh::flow::FlowEvent& event) override;

 private:
  stats::Counter& Count(mesh::flow::FlowEvent::Kind kind, const char* result);

  components::pubsub::PubSub& pubsub_;
  const std::string topic_;
  const std::string app_id_;
  const TimeSource& time_;
  stats::Store& stats_;
  absl::Mutex mu_;
  // "kind|resource[|state]" → the monotonic second of its last published event.
  std::unordered_map<std::string, int64_t> last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ottava::runtime
