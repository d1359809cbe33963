#pragma once

// Adaptive limiting from the system's water level (MOSN's design, issue 9): every second the
// owner calls Tick(); the limiter samples a SystemSource (process and host CPU from /proc, or a
// test's script). Once the level has stayed above `threshold` for `trigger_seconds` ticks it
// first sheds stress-test traffic (requests carrying the marker header); if the level is still
// high on the next tick it takes a *baseline*: the resources whose last-second request count grew
// abnormally against their own history (more than `growth_factor` × their moving average) get a
// concurrency cap equal to their in-flight count at that moment. While the level stays high the
// caps shrink by `step` each tick; while it is low they grow back by `step` and disappear once
// above the snapshot again; stress traffic is admitted again once the level is low.
//
// Threading: Admit/Release from any thread (per-resource atomics; a resource's record is created
// once under a mutex, then found lock-free through an immutable snapshot of the table). Tick from
// one thread at a time (a timer).

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ottava::mesh::flow {

/// One reading of the system's load, each part in [0, 1] (CPU shares) or a count.
struct SystemLoad {
  double process_cpu = 0;  // this process' CPU time over the last interval ÷ (cores × interval)
  double host_cpu = 0;     // the host's busy share over the last interval
};

/// Where the water level comes from. Production reads /proc; tests script it.
class SystemSource {
 public:
  virtual ~SystemSource() = default;
  /// The load since the previous call (the first call may report 0). Called from Tick's thread.
  virtual SystemLoad Sample() = 0;
};

/// Deltas between calls: the process' own CPU clock over wall time × online cores, and the
/// host's busy share from /proc/stat. (The process share is not taken from /proc/stat's tick
/// total: on a virtual machine that total can lag wall time by a sixth, which inflated it.)
class ProcSystemSource : public SystemSource {
 public:
  SystemLoad Sample() override;

 private:
  double last_process_seconds_ = -1;
  double last_wall_seconds_ = 0;
  uint64_t last_host_busy_ = 0;
  uint64_t last_host_total_ = 0;
};

struct AdaptiveConfig {
  double threshold = 0.8;       // water level (max of process and host CPU) that counts as high
  int64_t trigger_seconds = 5;  // consecutive high ticks before acting
  std::string stress_header = "x-stress-test";  // lower-case; any value marks stress traffic
  double growth_factor = 2.0;  // "abnormal": last second > factor × moving average
  double step = 0.1;           // caps shrink/grow by this share per tick
  int64_t min_cap = 1;         // never below this many in flight
};

class AdaptiveLimiter {
 public:
  enum class Phase : uint8_t { kNormal, kShedStress, kBaseline };
  enum class Verdict : uint8_t { kAdmit, kShedStress, kOverBaseline };

  AdaptiveLimiter(AdaptiveConfig config, std::unique_ptr<SystemSource> source)
      : config_(std::move(config)), source_(std::move(source)) {}

  /// Decides for one request of `resource`; `stress` when it carries the marker header. An
  /// admitted request must be Released once it ends. Any thread.
  Verdict Admit(std::string_view resource, bool stress);
  void Release(std::string_view resource);

  /// One second passed: sample the level, move the phase, take or adjust baselines.
  void Tick();

  Phase phase() const { return phase_.load(); }
  double level() const { return level_.load(); }
  const AdaptiveConfig& config() const { return config_; }
  /// Level, phase, triggers and per-resource caps, for the actuator.
  nlohmann::json Describe() const;
  /// Requests shed so far (stress, over baseline) and how many times the limiter triggered.
  uint64_t shed_stress() const { return shed_stress_.load(); }
  uint64_t shed_baseline() const { return shed_baseline_.load(); }
  uint64_t triggers() const { return triggers_.load(); }

 private:
  struct Resource {
    std::atomic<int64_t> in_flight{0};
    std::atomic<int64_t> this_second{0};  // admitted since the last tick
    double average = 0;                   // moving average of per-second counts (Tick only)
    bool seen = false;                    // Tick only
    std::atomic<int64_t> cap{0};          // 0: no baseline
    int64_t snapshot = 0;                 // Tick only: the cap taken at baseline time
  };
  using Table = std::map<std::string, std::shared_ptr<Resource>, std::less<>>;

  Resource& Find(std::string_view resource);

  const AdaptiveConfig config_;
  std::unique_ptr<SystemSource> source_;
  std::atomic<Phase> phase_{Phase::kNormal};
  std::atomic<double> level_{0};
  int64_t high_ticks_ = 0;  // Tick only
  std::atomic<uint64_t> shed_stress_{0};
  std::atomic<uint64_t> shed_baseline_{0};
  std::atomic<uint64_t> triggers_{0};
  mutable absl::Mutex mu_;  // creation of resource records
  std::shared_ptr<const Table> table_ ABSL_GUARDED_BY(mu_) = std::make_shared<Table>();
  std::atomic<std::shared_ptr<const Table>> view_{std::make_shared<Table>()};
};

}  // namespace ottava::mesh::flow
