#pragma once

// A sliding window of time buckets over atomic counters (Sentinel's leap array): a fixed ring of
// `buckets` slots, each `window / buckets` long; the slot for time t is (t / length) mod buckets
// and holds the counts of the bucket starting at t − t mod length. A stale slot is reset when time
// reaches it again. Reads sum the slots whose start lies within the last window.
//
// Threading: any thread. Adding is one fetch_add; rolling a slot over takes a tiny spin (a slot
// marked busy while its counters are zeroed) so no count lands in a slot that is being reset.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

namespace ottava::mesh::flow {

class SlidingWindow {
 public:
  static constexpr int kFields = 3;

  /// `window_ns` > 0 and divisible by `buckets` > 0.
  SlidingWindow(int64_t window_ns, int64_t buckets)
      : window_ns_(window_ns),
        bucket_ns_(window_ns / buckets),
        count_(buckets),
        slots_(new Slot[static_cast<size_t>(buckets)]) {}

  /// Adds `n` to `field` in the bucket of `now_ns` (>= 0) and returns the window's sum of that
  /// field including this addition.
  int64_t AddAndSum(int64_t now_ns, int field, int64_t n) {
    Slot& slot = SlotAt(now_ns);
    slot.fields[field].fetch_add(n, std::memory_order_relaxed);
    return Sum(now_ns, field);
  }
  void Add(int64_t now_ns, int field, int64_t n) {
    SlotAt(now_ns).fields[field].fetch_add(n, std::memory_order_relaxed);
  }
  /// Undoes an Add made at `now_ns` (if its bucket still stands).
  void Subtract(int64_t now_ns, int field, int64_t n) {
    Slot& slot = slots_[Index(now_ns)];
    if (slot.start.load(std::memory_order_acquire) == Start(now_ns)) {
      slot.fields[field].fetch_sub(n, std::memory_order_relaxed);
    }
  }
  /// The sum of `field` over the buckets within the window ending at `now_ns`.
  int64_t Sum(int64_t now_ns, int field) const {
    const int64_t current = Start(now_ns);
    int64_t sum = 0;
    for (int64_t i = 0; i < count_; ++i) {
      const int64_t start = slots_[i].start.load(std::memory_order_acquire);
      if (start >= 0 && start <= current && current - start < window_ns_) {
        sum += slots_[i].fields[field].load(std::memory_order_relaxed);
      }
    }
    return sum;
  }
  /// Forgets every count (a breaker closing starts a fresh window).
  void Reset() {
    for (int64_t i = 0; i < count_; ++i) {
      slots_[i].start.store(kEmpty, std::memory_order_release);
    }
  }
  int64_t window_ns() const { return window_ns_; }

 private:
  static constexpr int64_t kEmpty = -1;
  static constexpr int64_t kBusy = -2;
  struct alignas(64) Slot {
    std::atomic<int64_t> start{kEmpty};
    std::array<std::atomic<int64_t>, kFields> fields{};
  };

  int64_t Start(int64_t now_ns) const { return now_ns - now_ns % bucket_ns_; }
  size_t Index(int64_t now_ns) const { return static_cast<size_t>((now_ns / bucket_ns_) % count_); }

  Slot& SlotAt(int64_t now_ns) {
    const int64_t start = Start(now_ns);
    Slot& slot = slots_[Index(now_ns)];
    for (;;) {
      int64_t seen = slot.start.load(std::memory_order_acquire);
      if (seen == start) {
        return slot;
      }
      if (seen == kBusy) {
        std::this_thread::yield();
        continue;
      }
      if (seen > start) {
        return slot;  // a caller with an older clock reading: count it in the newer bucket
      }
      if (slot.start.compare_exchange_weak(seen, kBusy, std::memory_order_acq_rel)) {
        for (auto& field : slot.fields) {
          field.store(0, std::memory_order_relaxed);
        }
        slot.start.store(start, std::memory_order_release);
        return slot;
      }
    }
  }

  const int64_t window_ns_;
  const int64_t bucket_ns_;
  const int64_t count_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace ottava::mesh::flow
