#pragma once

// The "in-memory" lock store: process-local expiring locks, for development and as a fake in tests.
//
// Semantics (DESIGN.md §7): TryLock grants only when no unexpired lock exists, whoever asks (not
// re-entrant). Unlock and KeepAlive act only for the owner: another owner gets
// kLockBelongsToOthers, an absent or expired lock kLockDoesNotExist. Expiry uses
// std::chrono::steady_clock. Expired locks are removed on access and by a periodic sweep on the
// context's dispatcher (when there is one).
//
// Threading: any thread; one mutex guards the table; callbacks run inline after it is released.
//
// Metadata: none.
//
// Hot upgrade (Transferable, format 1): records 'L' {resource, owner, i64 ms of lease left}; a
// lock keeps its owner and remaining lease in the new process. After FreezeAndExport, TryLock,
// Unlock and KeepAlive fail UNAVAILABLE.

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/time.h"
#include "components/lock/lock.h"
#include "components/periodic_task.h"
#include "components/transferable.h"

namespace ottava::components::lock {

class InMemoryLockStore : public LockStore, public Transferable {
 public:
  explicit InMemoryLockStore(const ComponentContext& context,
                             std::chrono::milliseconds sweep_interval = std::chrono::seconds(1));
  ~InMemoryLockStore() override;

  absl::Status Init() override;
  void Shutdown() override;

  void TryLock(TryLockRequest request, std::function<void(absl::StatusOr<bool>)> done) override;
  void Unlock(UnlockRequest request, std::function<void(absl::StatusOr<LockStatus>)> done) override;
  void KeepAlive(KeepAliveRequest request,
                 std::function<void(absl::StatusOr<LockStatus>)> done) override;

  uint32_t StateFormat() const override { return 1; }
  std::vector<std::string> FreezeAndExport(size_t chunk_bytes) override;
  absl::Status ImportState(uint32_t format, std::string_view chunk) override;

  /// Number of lock entries held, expired ones not yet swept included. For tests.
  size_t EntryCountForTest() const;

 private:
  struct Entry {
    std::string owner;
    MonotonicTime deadline;
  };

  // The unexpired lock of `resource`, or null; an expired entry found is removed.
  Entry* Find(const std::string& resource, MonotonicTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Erase(const std::string& resource) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetDeadline(const std::string& resource, Entry& entry, MonotonicTime deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckExpiry(const std::string& resource, int32_t expire_seconds) const;
  void SweepExpired();
  absl::Status Frozen() const;

  const std::string label_;
  HealthIndicator* const health_;
  Dispatcher* const dispatcher_;
  const std::chrono::milliseconds sweep_interval_;
  std::unique_ptr<PeriodicTask> sweeper_;

  mutable absl::Mutex mu_;
  std::unordered_map<std::string, Entry> locks_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<MonotonicTime, std::string>> expiry_ ABSL_GUARDED_BY(mu_);
  bool frozen_ ABSL_GUARDED_BY(mu_) = false;  // exported to a new process: no more changes
};

class InMemoryLockFactory : public LockFactory {
 public:
  std::string_view type() const override { return "in-memory"; }
  absl::StatusOr<std::unique_ptr<LockStore>> Create(const ComponentContext& context) const override;
};

}  // namespace ottava::components::lock
