#pragma once

// The decision core of unified flow control (issue 9): given a request's resource and traffic
// facts, decide pass, wait (throttling) or block, and record its outcome (circuit breaking).
// Protocol-free: the mesh stream filter and the gRPC API adapter are thin callers.
//
// Threading: one Controller per process, shared by every mesh worker and gRPC thread. Counters are
// process-wide atomics, so a 100 QPS rule admits 100 per second for the whole sidecar however the
// requests spread over workers (docs/architecture.md §10.5 says why). The rule set is an immutable
// snapshot swapped atomically by Update(); Check() takes no lock except for hot-parameter rules
// (a sharded LRU, one short critical section per request).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/stats.h"
#include "common/time_source.h"
#include "mesh/filter/flow_control/adaptive.h"
#include "mesh/filter/flow_control/cluster.h"
#include "mesh/filter/flow_control/rule.h"

namespace ottava::mesh::flow {

/// Header lookup over whatever the protocol carries (HTTP/Bolt headers, gRPC metadata).
class HeaderLookup {
 public:
  virtual ~HeaderLookup() = default;
  /// The first value of the header `lower_name` (lower-case), or nullptr when absent.
  virtual const std::string* Get(std::string_view lower_name) const = 0;
};

/// The facts of one request that rules look at. Views must outlive the Check() call only.
struct Traffic {
  std::string_view resource;
  std::string_view source_ip;             // "" when unknown (in-process calls)
  std::string_view query;                 // raw query string without '?'
  const HeaderLookup* headers = nullptr;  // may be null
};

struct CompiledRules;
struct RuleState;

/// What Check() decided. Move-only; hand it back to Exit() once the request ends (also when it
/// was blocked: Exit() then does nothing).
class Entry {
 public:
  Entry() = default;
  Entry(Entry&&) noexcept = default;
  Entry& operator=(Entry&&) noexcept = default;

  bool blocked() const { return blocked_; }
  /// Whether Exit() has anything to settle (concurrency slots, breakers).
  bool needs_exit() const { return !exited_ && (!held_.empty() || adaptive_ != nullptr); }
  /// Sync cluster rules matched and the local rules passed: the caller must ask the central
  /// counter (Controller::CheckCluster) before the request may go on.
  bool cluster_pending() const { return !blocked_ && !pending_.empty(); }
  /// Throttling: how long the request must wait before it may go on (0: at once).
  std::chrono::nanoseconds wait() const { return wait_; }
  /// Blocked: the answer to give (the rule's reply or the set's default). Valid while the Entry is.
  const ReplySpec* reply() const { return reply_; }
  /// Blocked: the id of the rule that blocked.
  const std::string& blocking_rule() const;

 private:
  friend class Controller;
  struct Held {
    RuleState* state;
    bool probe;  // breaker: this request is a half-open probe
  };
  std::shared_ptr<const CompiledRules> rules_;
  std::vector<Held> held_;           // concurrency slots and breakers to settle on Exit
  std::vector<RuleState*> pending_;  // sync cluster rules awaiting the central counter
  MonotonicTime start_{};
  bool blocked_ = false;
  bool exited_ = false;
  std::chrono::nanoseconds wait_{0};
  const ReplySpec* reply_ = nullptr;
  const RuleState* blocking_ = nullptr;
  AdaptiveLimiter* adaptive_ = nullptr;  // admitted by it: Release on Exit
  std::string adaptive_resource_;
};

/// How a request ended, for circuit breakers.
struct Outcome {
  bool error = false;  // 5xx, reset, timeout, a server-side gRPC code
};

class Controller {
 public:
  /// `time` (not owned) must outlive the controller; `stats` (not owned) receives the metrics
  /// ottava_flow_control_{passes,blocks}_total{resource,rule,kind},
  /// ottava_flow_control_breaker_transitions_total{resource,rule,to} and
  /// ottava_flow_control_breaker_state{resource,rule} (0 closed, 1 open, 2 half-open).
  static std::unique_ptr<Controller> Create(RuleSet rules,
                                            const TimeSource& time,
                                            stats::Store& stats);
  ~Controller();

  /// Decides for one request. `allow_queueing` false: a throttling rule blocks instead of asking
  /// the caller to wait (for callers that cannot delay without blocking a thread).
  /// `allow_remote` false: sync cluster rules are counted like async ones (a locally reserved
  /// share) instead of leaving the entry cluster_pending(), for callers that cannot wait for a
  /// round trip. Any thread.
  Entry Check(const Traffic& traffic, bool allow_queueing = true, bool allow_remote = true);
  /// For an entry that is cluster_pending(): adds the request to the central counter of each sync
  /// cluster rule it matched (one round trip, in parallel) and calls `done` exactly once with the
  /// verdict, on any thread (possibly before this returns). The caller hands the verdict to
  /// FinishCluster on its own thread. `entry` must stay alive until then. Any thread.
  void CheckCluster(const Entry& entry, std::function<void(int verdict)> done);
  /// Applies CheckCluster's verdict: the entry passes, or becomes blocked (reply set, slots
  /// released, counted). The thread that owns the entry.
  void FinishCluster(Entry& entry, int verdict);
  /// Settles a request: releases concurrency slots, feeds breakers. Idempotent. Any thread.
  void Exit(Entry& entry, const Outcome& outcome);

  /// Replaces the rule set. Rules whose JSON is unchanged keep their counters and state; others
  /// start fresh. Requests in flight settle against the rules they started with. Any thread.
  void Update(RuleSet rules);
  /// Parses and installs a rule set (a JSON text); on error nothing changes and the status says
  /// why (with the JSON pointer). Any thread.
  absl::Status UpdateFromText(std::string_view text);
  /// The rules and their live counters, for the actuator and `ottavactl flow`. Any thread.
  nlohmann::json Describe() const;
  /// Puts adaptive limiting in front of the rules (not owned; nullptr removes it). It must
  /// outlive every Entry it admitted. Any thread.
  void SetAdaptive(AdaptiveLimiter* adaptive) { adaptive_.store(adaptive); }
  /// The central counter of cluster rules (not owned; must outlive the controller's requests;
  /// nullptr: cluster rules use their fallback and UpdateFromText refuses new ones). Any thread.
  void SetClusterCounter(ClusterCounter* counter) { cluster_.store(counter); }
  /// Where events go (not owned; must outlive the controller; nullptr: nowhere). Blocks are
  /// reported at most once per rule per second. Any thread.
  void SetEventListener(EventListener* listener) { events_.store(listener); }
  /// Which cluster names a rule's `fallback_cluster` may take (the mesh's); UpdateFromText
  /// refuses a set naming another. Unset: any name (answered 503 at request time if unknown).
  /// Call before rules are pushed live.
  void SetClusterNames(std::function<bool(std::string_view)> exists) {
    absl::MutexLock lock(&update_mu_);
    cluster_exists_ = std::move(exists);
  }
  /// How many rule-set versions were installed (1 after Create).
  uint64_t version() const { return version_.load(); }

 private:
  Controller(const TimeSource& time, stats::Store& stats) : time_(time), stats_(stats) {}
  std::shared_ptr<const CompiledRules> Compile(RuleSet rules, const CompiledRules* previous) const;
  std::shared_ptr<const CompiledRules> Current() const;
  void Block(Entry& entry, RuleState& state, const CompiledRules& rules, int64_t now_ns);
  void Conclude(Entry& entry);
  bool ClusterAdmits(RuleState& state, int64_t now_ns);
  void Reserve(RuleState& state, int64_t window);
  bool FallbackAdmits(RuleState& state, int64_t now_ns);
  int64_t WallMillis() const;

  const TimeSource& time_;
  stats::Store& stats_;
  absl::Mutex update_mu_;  // one Update at a time (compile against the previous set, install)
  std::function<bool(std::string_view)> cluster_exists_ ABSL_GUARDED_BY(update_mu_);
  std::atomic<std::shared_ptr<const CompiledRules>> rules_;
  std::atomic<uint64_t> version_{0};
  std::atomic<AdaptiveLimiter*> adaptive_{nullptr};
  std::atomic<ClusterCounter*> cluster_{nullptr};
  std::atomic<EventListener*> events_{nullptr};
  stats::Counter* adaptive_stress_blocks_ = nullptr;
  stats::Counter* adaptive_baseline_blocks_ = nullptr;
};
using ControllerPtr = std::unique_ptr<Controller>;

}  // namespace ottava::mesh::flow
