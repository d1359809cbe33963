#pragma once

// The sidecar's side of unified flow control (issue 9): the one process-wide flow::Controller
// shared by the mesh filter and the gRPC API, and where its rules come from — the config file's
// `flow_control` section, `PUT /actuator/flow-control` (loopback only) and a configuration-store
// item the sidecar subscribes to. A bad rule set is refused whole and the previous one stays;
// `ottava_flow_control_rule_updates_total{source,result}` counts every attempt.
//
// Threading: created on the main thread; the controller is read by every worker and gRPC thread;
// updates arrive on the actuator's threads and on the component dispatcher.

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "actuator/actuator.h"
#include "common/dispatcher.h"
#include "common/stats.h"
#include "common/time_source.h"
#include "mesh/filter/flow_control/controller.h"
#include "runtime/component_set.h"
#include "runtime/flow_cluster_counter.h"
#include "runtime/flow_events.h"

namespace ottava::runtime {

class FlowControl {
 public:
  /// Starts with the rules of `config` (none when absent).
  FlowControl(const std::optional<mesh::flow::FlowControlConfig>& config, stats::Store& stats);
  ~FlowControl();

  mesh::flow::Controller& controller() { return *controller_; }

  /// GET and PUT /actuator/flow-control. Before the actuator starts.
  void AddActuatorHandlers(actuator::Actuator& actuator);
  /// Reads the configured item once and subscribes to its changes (no-op without a
  /// `config_store`). After the components are initialised.
  absl::Status Subscribe(const ComponentSet& set, const std::string& app_id);
  /// Ends the subscription, closes the cluster counter and detaches the events hook. Before the
  /// components stop.
  void Unsubscribe();
  /// With a `cluster` section: connects the Redis counter of cluster rules (driven by
  /// `dispatcher`, not owned) and hands it to the controller. Redis being down is not an error:
  /// the rules fall back until it answers. Main thread, before traffic.
  absl::Status StartCluster(Dispatcher* dispatcher);
  /// With an `events` section: publishes flow-control events to that pub/sub component. After
  /// the components are initialised.
  absl::Status StartEvents(const ComponentSet& set, const std::string& app_id);
  /// The cluster counter's health (nullptr without a `cluster` section).
  const components::HealthIndicator* cluster_health() const {
    return counter_ ? &counter_->health() : nullptr;
  }
  /// Starts adaptive limiting (with an `adaptive` section): a `flow-adaptive` loop samples /proc
  /// every second. Stopped by the destructor.
  absl::Status StartAdaptive();

  /// Installs a rule set from JSON text; counted under `source`.
  absl::Status Apply(std::string_view text, const std::string& source);

 private:
  RealTimeSource time_;
  stats::Store& stats_;
  std::optional<mesh::flow::FlowControlConfig> config_;
  mesh::flow::ControllerPtr controller_;
  std::unique_ptr<mesh::flow::AdaptiveLimiter> adaptive_;
  DispatcherPtr adaptive_loop_;
  TimerPtr adaptive_timer_;  // adaptive_loop_ only
  std::unique_ptr<RedisClusterCounter> counter_;
  std::unique_ptr<FlowEventPublisher> events_;
  std::atomic<mesh::flow::EventListener*> listener_{nullptr};  // events_ while attached
  components::config_store::ConfigStore* store_ = nullptr;
  uint64_t subscription_ = 0;
};

}  // namespace ottava::runtime
