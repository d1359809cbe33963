#pragma once

// Metrics: counters, gauges and histograms rendered as Prometheus text.
//
// Threading: a metric's Inc/Add/Record may be called from any thread without locks; each metric
// keeps per-shard cells (one per hardware thread slot, cache-line aligned) summed on scrape.
// Creating a metric takes the store's mutex, so callers create once and keep the reference; a
// reference stays valid for the life of the Store.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ottava::stats {

using Labels = std::vector<std::pair<std::string, std::string>>;

/// Cells per metric. The first kExclusiveShards are each owned by one thread that claimed it
/// (ClaimExclusiveShard: the mesh workers, which move several metrics per request); every other
/// thread shares the rest, assigned round robin.
inline constexpr size_t kShards = 16;
inline constexpr size_t kExclusiveShards = 8;

/// The calling thread's cell index, and whether no other thread writes that cell.
struct ShardSlot {
  uint32_t index;
  bool exclusive;
};

namespace internal {
/// Adds `n` to a cell: a plain add when the calling thread is the cell's only writer
/// (published with a relaxed store for scrapes), else an atomic read-modify-write.
template <typename T>
void AddToCell(std::atomic<T>& cell, T n, bool exclusive) {
  if (exclusive) {
    cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  } else {
    cell.fetch_add(n, std::memory_order_relaxed);
  }
}

// 0 until the thread's first metric update; then its cell index + 1.
inline thread_local uint32_t tl_shard_plus_one = 0;
inline thread_local bool tl_shard_exclusive = false;
uint32_t AssignSharedShard();
}  // namespace internal

inline ShardSlot CurrentShard() {
  uint32_t plus_one = internal::tl_shard_plus_one;
  if (plus_one == 0) [[unlikely]] {
    plus_one = internal::AssignSharedShard() + 1;
  }
  return {plus_one - 1, internal::tl_shard_exclusive};
}

/// Gives the calling thread a cell of its own in every metric, when one is free (else it keeps
/// a shared one): its updates then need no atomic read-modify-write. Released when the thread
/// exits. Returns whether a cell was claimed.
bool ClaimExclusiveShard();

struct alignas(64) PaddedU64 {
  std::atomic<uint64_t> value{0};

  void Add(uint64_t n, bool exclusive) { internal::AddToCell(value, n, exclusive); }
};

/// A monotonically increasing count.
class Counter {
 public:
  void Inc(uint64_t n = 1) {
    const ShardSlot slot = CurrentShard();
    cells_[slot.index].Add(n, slot.exclusive);
  }
  uint64_t Value() const;

 private:
  std::array<PaddedU64, kShards> cells_;
};

/// A value that goes up and down. Add and Sub touch the calling thread's shard only (request
/// paths on several workers move the same gauge per request); Value sums the shards. Set is for
/// gauges that are only ever set, not also moved by Add/Sub on other threads at the same time.
class Gauge {
 public:
  void Add(int64_t n) {
    const ShardSlot slot = CurrentShard();
    cells_[slot.index].Add(static_cast<uint64_t>(n), slot.exclusive);
  }
  void Sub(int64_t n) {
    const ShardSlot slot = CurrentShard();
    cells_[slot.index].Add(static_cast<uint64_t>(-n), slot.exclusive);
  }
  void Set(int64_t n);
  int64_t Value() const;

 private:
  std::array<PaddedU64, kShards> cells_;
};

/// A distribution over fixed upper bounds (Prometheus `le` buckets), values in seconds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Record(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries, the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Take() const;

  /// Default latency buckets, 50 µs to 10 s.
  static std::vector<double> LatencyBounds();

 private:
  struct alignas(64) Shard {
    std::unique_ptr<std::atomic<uint64_t>[]> buckets;
    std::atomic<double> sum{0};
  };
  std::vector<double> bounds_;
  std::array<Shard, kShards> shards_;
};

/// Owns every metric of the process and renders them.
class Store {
 public:
  Counter& CounterFor(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GaugeFor(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& HistogramFor(const std::string& name,
                          const std::string& help,
                          const Labels& labels = {},
                          std::vector<double> bounds = Histogram::LatencyBounds());
  /// A gauge whose value is read from `read` at scrape time (called on the scraping thread).
  void CallbackGauge(const std::string& name,
                     const std::string& help,
                     const Labels& labels,
                     std::function<double()> read);

  /// The Prometheus text exposition (version 0.0.4) of every metric.
  std::string RenderPrometheus() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::function<double()>> callbacks;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(const std::string& name, const std::string& help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

/// Renders labels as `{a="x",b="y"}` (empty for no labels), escaping values.
std::string FormatLabels(const Labels& labels);

}  // namespace ottava::stats
