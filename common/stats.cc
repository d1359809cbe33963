#include "common/stats.h"

#include <cmath>
#include <cstdio>

#include "common/assert.h"

namespace ottava::stats {
namespace {

std::atomic<uint32_t> next_shared_shard{0};
// Bit i set: exclusive cell i is held by a live thread.
std::atomic<uint32_t> exclusive_claims{0};
static_assert(kExclusiveShards < kShards && kExclusiveShards <= 32);

// Releases the thread's exclusive cell when the thread exits.
struct ExclusiveClaim {
  int index = -1;
  ~ExclusiveClaim() {
    if (index >= 0) {
      // Later updates from this thread's exit path take a shared cell.
      internal::tl_shard_plus_one = 0;
      internal::tl_shard_exclusive = false;
      exclusive_claims.fetch_and(~(1u << index), std::memory_order_release);
    }
  }
};

std::string FormatDouble(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// Appends extra labels (such as `le`) to an already formatted label set.
std::string WithLabel(const std::string& formatted, const std::string& extra) {
  if (formatted.empty()) {
    return "{" + extra + "}";
  }
  return formatted.substr(0, formatted.size() - 1) + "," + extra + "}";
}

}  // namespace

namespace internal {

uint32_t AssignSharedShard() {
  const uint32_t index = static_cast<uint32_t>(
      kExclusiveShards +
      next_shared_shard.fetch_add(1, std::memory_order_relaxed) % (kShards - kExclusiveShards));
  tl_shard_plus_one = index + 1;
  tl_shard_exclusive = false;
  return index;
}

}  // namespace internal

bool ClaimExclusiveShard() {
  thread_local ExclusiveClaim claim;
  if (claim.index >= 0) {
    return true;
  }
  uint32_t held = exclusive_claims.load(std::memory_order_relaxed);
  while (true) {
    int free_index = -1;
    for (size_t i = 0; i < kExclusiveShards; ++i) {
      if ((held & (1u << i)) == 0) {
        free_index = static_cast<int>(i);
        break;
      }
    }
    if (free_index < 0) {
      return false;  // all taken: the thread keeps a shared cell
    }
    // Acquire: the previous holder's last plain stores to the cell happened before this.
    if (exclusive_claims.compare_exchange_weak(held, held | (1u << free_index),
                                               std::memory_order_acquire,
                                               std::memory_order_relaxed)) {
      claim.index = free_index;
      internal::tl_shard_plus_one = static_cast<uint32_t>(free_index) + 1;
      internal::tl_shard_exclusive = true;
      return true;
    }
  }
}

uint64_t Counter::Value() const {
  uint64_t total = 0;
  for (const auto& cell : cells_) {
    total += cell.value.load(std::memory_order_relaxed);
  }
  return total;
}

void Gauge::Set(int64_t n) {
  cells_[0].value.store(static_cast<uint64_t>(n), std::memory_order_relaxed);
  for (size_t i = 1; i < kShards; ++i) {
    cells_[i].value.store(0, std::memory_order_relaxed);
  }
}

int64_t Gauge::Value() const {
  uint64_t total = 0;  // unsigned: shards wrap below zero and the sum wraps back
  for (const auto& cell : cells_) {
    total += cell.value.load(std::memory_order_relaxed);
  }
  return static_cast<int64_t>(total);
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (auto& shard : shards_) {
    shard.buckets = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  }
}

void Histogram::Record(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) {
    ++i;
  }
  const ShardSlot slot = CurrentShard();
  Shard& shard = shards_[slot.index];
  internal::AddToCell<uint64_t>(shard.buckets[i], 1, slot.exclusive);
  internal::AddToCell(shard.sum, value, slot.exclusive);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot snap;
  snap.bounds = bounds_;
  snap.cumulative.assign(bounds_.size() + 1, 0);
  for (const auto& shard : shards_) {
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      snap.cumulative[i] += shard.buckets[i].load(std::memory_order_relaxed);
    }
    snap.sum += shard.sum.load(std::memory_order_relaxed);
  }
  for (size_t i = 1; i < snap.cumulative.size(); ++i) {
    snap.cumulative[i] += snap.cumulative[i - 1];
  }
  snap.count = snap.cumulative.back();
  return snap;
}

std::vector<double> Histogram::LatencyBounds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) {
    return "";
  }
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  out += '}';
  return out;
}

Store::Family& Store::FamilyFor(const std::string& name, const std::string& help, Type type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
  }
  OTTAVA_RELEASE_ASSERT(it->second.type == type, "metric registered twice with different types");
  return it->second;
}

Counter& Store::CounterFor(const std::string& name, const std::string& help, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = FamilyFor(name, help, Type::kCounter).counters[FormatLabels(labels)];
  if (!slot) {
    slot = std::make_unique<Counter>();
  }
  return *slot;
}

Gauge& Store::GaugeFor(const std::string& name, const std::string& help, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = FamilyFor(name, help, Type::kGauge).gauges[FormatLabels(labels)];
  if (!slot) {
    slot = std::make_unique<Gauge>();
  }
  return *slot;
}

Histogram& Store::HistogramFor(const std::string& name,
                               const std::string& help,
                               const Labels& labels,
                               std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  auto& slot = FamilyFor(name, help, Type::kHistogram).histograms[FormatLabels(labels)];
  if (!slot) {
    slot = std::make_unique<Histogram>(std::move(bounds));
  }
  return *slot;
}

void Store::CallbackGauge(const std::string& name,
                          const std::string& help,
                          const Labels& labels,
                          std::function<double()> read) {
  absl::MutexLock lock(&mu_);
  FamilyFor(name, help, Type::kGauge).callbacks[FormatLabels(labels)] = std::move(read);
}

std::string Store::RenderPrometheus() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, family] : families_) {
    out += "# HELP " + name + " " + family.help + "\n";
    switch (family.type) {
      case Type::kCounter:
        out += "# TYPE " + name + " counter\n";
        for (const auto& [labels, counter] : family.counters) {
          out += name + labels + " " + std::to_string(counter->Value()) + "\n";
        }
        break;
      case Type::kGauge:
        out += "# TYPE " + name + " gauge\n";
        for (const auto& [labels, gauge] : family.gauges) {
          out += name + labels + " " + std::to_string(gauge->Value()) + "\n";
        }
        for (const auto& [labels, read] : family.callbacks) {
          out += name + labels + " " + FormatDouble(read()) + "\n";
        }
        break;
      case Type::kHistogram:
        out += "# TYPE " + name + " histogram\n";
        for (const auto& [labels, histogram] : family.histograms) {
          auto snap = histogram->Take();
          for (size_t i = 0; i < snap.cumulative.size(); ++i) {
            double bound = i < snap.bounds.size() ? snap.bounds[i] : INFINITY;
            out += name + "_bucket" + WithLabel(labels, "le=\"" + FormatDouble(bound) + "\"") +
                   " " + std::to_string(snap.cumulative[i]) + "\n";
          }
          out += name + "_sum" + labels + " " + FormatDouble(snap.sum) + "\n";
          out += name + "_count" + labels + " " + std::to_string(snap.count) + "\n";
        }
        break;
    }
  }
  return out;
}

}  // namespace ottava::stats
