#include "mesh/filter/flow_control/adaptive.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>

#include "common/logging.h"

namespace ottava::mesh::flow {

SystemLoad ProcSystemSource::Sample() {
  SystemLoad load;
  // Host: the first line of /proc/stat, "cpu user nice system idle iowait irq softirq steal".
  std::ifstream stat("/proc/stat");
  std::string cpu;
  uint64_t values[8] = {};
  stat >> cpu;
  for (uint64_t& value : values) {
    stat >> value;
  }
  uint64_t total = 0;
  for (uint64_t value : values) {
    total += value;
  }
  const uint64_t idle = values[3] + values[4];
  const uint64_t busy = total - idle;
  if (last_host_total_ != 0 && total > last_host_total_) {
    load.host_cpu =
        static_cast<double>(busy - last_host_busy_) / static_cast<double>(total - last_host_total_);
  }
  // Process: its own CPU clock (exact, where /proc/self/stat counts 10 ms ticks).
  timespec cpu_clock{};
  timespec wall{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_clock);
  clock_gettime(CLOCK_MONOTONIC, &wall);
  const double process =
      static_cast<double>(cpu_clock.tv_sec) + static_cast<double>(cpu_clock.tv_nsec) / 1e9;
  const double now = static_cast<double>(wall.tv_sec) + static_cast<double>(wall.tv_nsec) / 1e9;
  const double cores = static_cast<double>(std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN)));
  if (last_process_seconds_ >= 0 && now > last_wall_seconds_) {
    load.process_cpu = std::clamp(
        (process - last_process_seconds_) / ((now - last_wall_seconds_) * cores), 0.0, 1.0);
  }
  last_process_seconds_ = process;
  last_wall_seconds_ = now;
  last_host_total_ = total;
  last_host_busy_ = busy;
  return load;
}

AdaptiveLimiter::Resource& AdaptiveLimiter::Find(std::string_view resource) {
  std::shared_ptr<const Table> view = view_.load(std::memory_order_acquire);
  if (auto it = view->find(resource); it != view->end()) {
    return *it->second;
  }
  absl::MutexLock lock(&mu_);
  if (auto it = table_->find(resource); it != table_->end()) {
    return *it->second;
  }
  auto next = std::make_shared<Table>(*table_);
  auto record = std::make_shared<Resource>();
  next->emplace(std::string(resource), record);
  table_ = next;
  view_.store(next, std::memory_order_release);
  return *record;
}

AdaptiveLimiter::Verdict AdaptiveLimiter::Admit(std::string_view resource, bool stress) {
  const Phase phase = phase_.load(std::memory_order_relaxed);
  if (stress && phase != Phase::kNormal) {
    shed_stress_.fetch_add(1, std::memory_order_relaxed);
    return Verdict::kShedStress;
  }
  Resource& record = Find(resource);
  const int64_t cap = record.cap.load(std::memory_order_relaxed);
  if (cap > 0 && record.in_flight.fetch_add(1) + 1 > cap) {
    record.in_flight.fetch_sub(1);
    shed_baseline_.fetch_add(1, std::memory_order_relaxed);
    return Verdict::kOverBaseline;
  }
  if (cap <= 0) {
    record.in_flight.fetch_add(1);
  }
  record.this_second.fetch_add(1, std::memory_order_relaxed);
  return Verdict::kAdmit;
}

void AdaptiveLimiter::Release(std::string_view resource) {
  Find(resource).in_flight.fetch_sub(1);
}

void AdaptiveLimiter::Tick() {
  const SystemLoad load = source_->Sample();
  const double level = std::max(load.process_cpu, load.host_cpu);
  level_.store(level);
  const bool high = level > config_.threshold;
  high_ticks_ = high ? high_ticks_ + 1 : 0;
  std::shared_ptr<const Table> view = view_.load();
  const Phase phase = phase_.load();
  if (high && phase == Phase::kNormal && high_ticks_ >= config_.trigger_seconds) {
    phase_.store(Phase::kShedStress);
    triggers_.fetch_add(1);
    OTTAVA_LOG(Mesh, warn,
               "flow control: water level {:.2f} above {:.2f} for {} s: shedding "
               "stress-test traffic",
               level, config_.threshold, high_ticks_);
  } else if (high && phase == Phase::kShedStress) {
    // Still high with stress traffic gone: cap the resources whose load grew abnormally.
    int capped = 0;
    for (const auto& [name, record] : *view) {
      const double last = static_cast<double>(record->this_second.load());
      if (record->seen && last > config_.growth_factor * std::max(record->average, 1.0)) {
        record->snapshot = std::max(config_.min_cap, record->in_flight.load());
        record->cap.store(record->snapshot);
        ++capped;
        OTTAVA_LOG(Mesh, warn,
                   "flow control: baseline for '{}': {} in flight ({} last second, "
                   "average {:.1f})",
                   name, record->snapshot, last, record->average);
      }
    }
    phase_.store(Phase::kBaseline);
    (void)capped;
  } else if (phase == Phase::kBaseline) {
    bool any = false;
    for (const auto& [name, record] : *view) {
      int64_t cap = record->cap.load();
      if (cap <= 0) {
        continue;
      }
      if (high) {
        cap = std::max<int64_t>(
            config_.min_cap,
            static_cast<int64_t>(std::floor(static_cast<double>(cap) * (1 - config_.step))));
      } else {
        cap = static_cast<int64_t>(std::ceil(static_cast<double>(cap) * (1 + config_.step)));
        if (cap > record->snapshot) {
          cap = 0;  // recovered past the snapshot: the baseline is lifted
        }
      }
      record->cap.store(cap);
      any = any || cap > 0;
    }
    if (!high && !any) {
      phase_.store(Phase::kNormal);
      OTTAVA_LOG(Mesh, info, "flow control: water level {:.2f}: adaptive limits lifted", level);
    }
  } else if (!high && phase == Phase::kShedStress) {
    phase_.store(Phase::kNormal);
  }
  // History: the moving average learns only from normal seconds, so an overload does not become
  // the new normal.
  for (const auto& [name, record] : *view) {
    const double last = static_cast<double>(record->this_second.exchange(0));
    if (phase_.load() == Phase::kNormal && !high) {
      record->average = record->seen ? 0.8 * record->average + 0.2 * last : last;
      record->seen = true;
    }
  }
}

nlohmann::json AdaptiveLimiter::Describe() const {
  static constexpr const char* kPhases[] = {"normal", "shed_stress", "baseline"};
  nlohmann::json out = {{"level", level_.load()},
                        {"threshold", config_.threshold},
                        {"phase", kPhases[static_cast<int>(phase_.load())]},
                        {"triggers", triggers_.load()},
                        {"shed_stress", shed_stress_.load()},
                        {"shed_baseline", shed_baseline_.load()}};
  nlohmann::json caps = nlohmann::json::object();
  for (const auto& [name, record] : *view_.load()) {
    if (record->cap.load() > 0) {
      caps[name] = record->cap.load();
    }
  }
  out["caps"] = caps;
  return out;
}

}  // namespace ottava::mesh::flow
