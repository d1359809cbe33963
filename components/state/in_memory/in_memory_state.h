#pragma once

// The "in-memory" state store: a process-local map, useful for development and as a fake in tests.
//
// Semantics (DESIGN.md §7):
// - ETag: the item's version, a decimal string. Versions come from one store-wide counter, so a
//   key that is deleted and created again never reuses an etag a client may still hold. A
//   non-numeric etag is INVALID_ARGUMENT ("malformed etag"); a mismatch is ABORTED.
// - A non-empty etag is always checked (also on Delete, where an absent key is a mismatch). An
//   empty etag, or first-write concurrency without an etag, means "only if absent". Last-write
//   without an etag is unconditional.
// - TTL: `ttl_seconds > 0` expires the item (Item::expire_time tells when); nullopt or <= 0 stores
//   it without expiry, removing an earlier TTL. Expired items are invisible at once and are
//   removed lazily on access and by a periodic sweep on the context's dispatcher (when there is
//   one), so memory stays bounded.
// - Transact applies the operations in order as if alone: each condition is checked against the
//   state left by the earlier operations of the same transaction; if any fails nothing is applied.
//
// Threading: every method may be called from any thread. One mutex guards the map; callbacks run
// inline on the caller's thread, after the mutex is released.
//
// Metadata: `sweepIntervalMs` (optional, default 1000) sets how often expired items are swept.
//
// Hot upgrade (Transferable, format 1): records 'V' {u64 last version} and 'E' {key, value,
// u64 version, u8 has TTL, i64 ms left, i64 expiry as Unix ms}. A TTL keeps its remaining time;
// etags stay valid in the new process. After FreezeAndExport, Set/Delete/Transact fail
// UNAVAILABLE.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/time.h"
#include "components/periodic_task.h"
#include "components/state/state.h"
#include "components/transferable.h"

namespace ottava::components::state {

struct InMemoryStateSettings {
  std::chrono::milliseconds sweep_interval{1000};

  /// Reads the metadata; errors name the metadata key.
  static absl::StatusOr<InMemoryStateSettings> Parse(const Metadata& metadata);
};

class InMemoryStateStore : public StateStore, public Transferable {
 public:
  InMemoryStateStore(const ComponentContext& context, InMemoryStateSettings settings);
  ~InMemoryStateStore() override;

  absl::Status Init() override;
  void Shutdown() override;

  Features features() const override { return {.etag = true, .transactional = true, .ttl = true}; }
  void Get(GetRequest request, GetCallback done) override;
  void BulkGet(std::vector<GetRequest> requests, BulkGetCallback done) override;
  void Set(SetRequest request, DoneCallback done) override;
  void Delete(DeleteRequest request, DoneCallback done) override;
  void Transact(std::vector<Operation> operations, DoneCallback done) override;

  uint32_t StateFormat() const override { return 1; }
  std::vector<std::string> FreezeAndExport(size_t chunk_bytes) override;
  absl::Status ImportState(uint32_t format, std::string_view chunk) override;

  /// Number of stored entries, expired ones not yet swept included. For tests.
  size_t EntryCountForTest() const;
  /// Removes every expired entry now. For tests; the periodic sweep does the same.
  void SweepForTest() { SweepExpired(); }

 private:
  struct Entry {
    std::string value;
    uint64_t version = 0;
    std::optional<MonotonicTime> deadline;  // drives expiry; immune to wall-clock jumps
    std::optional<SystemTime> expire_time;  // what clients see
  };
  using Map = std::unordered_map<std::string, Entry>;
  // The expiry index, ordered by deadline, so a sweep only visits what has expired.
  using ExpiryIndex = std::set<std::pair<MonotonicTime, std::string>>;
  // Pending effects of a transaction: nullopt = deleted.
  using Overlay = std::map<std::string, std::optional<Entry>>;

  // The live entry of `key` as seen through `overlay` (may be null), or null if absent or expired.
  // An expired entry found on the way is removed (lazy expiry).
  const Entry* Lookup(const std::string& key, const Overlay* overlay, MonotonicTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks a write's conditions against `current` (null = absent).
  absl::Status CheckSet(const SetRequest& request, const Entry* current) const;
  absl::Status CheckDelete(const DeleteRequest& request, const Entry* current) const;
  // A write conditioned on a non-empty etag: it must parse and match the current version.
  absl::Status CheckEtag(const std::string& key,
                         const std::string& etag,
                         const Entry* current) const;
  Entry MakeEntry(const SetRequest& request, MonotonicTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replaces (or with nullopt removes) the stored entry of `key`, keeping the index in step.
  void Store(const std::string& key, std::optional<Entry> entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Item ToItem(const std::string& key, const Entry* entry) const;
  absl::Status MalformedEtag(const std::string& key, const std::string& etag) const;
  absl::Status EtagMismatch(const std::string& key) const;
  absl::Status Frozen() const;
  void SweepExpired();

  const std::string label_;
  HealthIndicator* const health_;
  Dispatcher* const dispatcher_;
  const InMemoryStateSettings settings_;
  std::unique_ptr<PeriodicTask> sweeper_;

  mutable absl::Mutex mu_;
  Map entries_ ABSL_GUARDED_BY(mu_);
  ExpiryIndex expiry_ ABSL_GUARDED_BY(mu_);
  uint64_t last_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool frozen_ ABSL_GUARDED_BY(mu_) = false;  // exported to a new process: no more writes
};

class InMemoryStateFactory : public StateFactory {
 public:
  std::string_view type() const override { return "in-memory"; }
  absl::StatusOr<std::unique_ptr<StateStore>> Create(
      const ComponentContext& context) const override;
};

}  // namespace ottava::components::state
