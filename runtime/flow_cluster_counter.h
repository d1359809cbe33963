#pragma once

// The central counter of cluster flow-control rules (issue 9), in Redis: one key per rule and
// window, incremented by a small Lua script (INCRBY, and PEXPIRE when the key is new) so every
// addition is one command and one round trip. Implements mesh::flow::ClusterCounter, which the
// runtime injects into the controller at startup; mesh/ never links Redis.
//
// Availability: the shared Redis client reconnects by itself; while it has no connection the
// counter is unhealthy, cluster rules apply their fallback without asking, and the health
// indicator (listed by /actuator/health/readiness as `flow_control/cluster_counter`, not counted
// in the aggregate) says DOWN with the cause. It turns UP again once Redis answers.
//
// Threading: Add() from any thread; it only posts to the component dispatcher, which sends the
// command and reads the reply, so a mesh worker never writes to or waits on the Redis socket
// (the shared client would otherwise let a lone sender read its own reply for up to a
// millisecond). Callbacks run on the dispatcher thread. Create/Connect/Shutdown on the main
// thread.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/dispatcher.h"
#include "components/common/redis/redis_client.h"
#include "components/component.h"
#include "mesh/filter/flow_control/cluster.h"
#include "mesh/filter/flow_control/rule.h"

namespace ottava::runtime {

class RedisClusterCounter : public mesh::flow::ClusterCounter {
 public:
  /// Parses the `flow_control.cluster` section's Redis metadata (timeout defaults to 100 ms and
  /// dialTimeout to 1 s here: a slow counter must not hold requests). `dispatcher` (not owned)
  /// drives the connection and must outlive the counter.
  static absl::StatusOr<std::unique_ptr<RedisClusterCounter>> Create(
      const mesh::flow::FlowControlConfig::Cluster& config, Dispatcher* dispatcher);
  ~RedisClusterCounter() override;

  /// Dials and waits up to dialTimeout. A failure is logged, not fatal: the client keeps
  /// retrying and the rules fall back meanwhile. Main thread.
  void Connect();
  /// Closes the connection; no callback runs afterwards. Main thread.
  void Shutdown();

  void Add(const std::string& key,
           int64_t delta,
           std::chrono::milliseconds ttl,
           AddCallback done) override;
  bool Healthy() const override { return health_.state() == components::HealthState::kUp; }
  const components::HealthIndicator& health() const { return health_; }

 private:
  RedisClusterCounter(std::string prefix, Dispatcher* dispatcher);

  const std::string prefix_;
  Dispatcher* const dispatcher_;
  components::HealthIndicator health_;
  components::redis::Script script_;
  std::unique_ptr<components::redis::Client> client_;
};

}  // namespace ottava::runtime
