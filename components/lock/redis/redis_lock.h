#pragma once

// The "redis" lock store: single-instance Redis locks, the pattern of redis.io's "Distributed
// Locks with Redis" page and of Dapr's lock.redis.
//
// - TryLock: `SET <resource> <owner> NX PX <expire_seconds * 1000>`, one atomic command. Not
//   re-entrant: the owner that holds the lock is refused like anyone else.
// - Unlock and KeepAlive: one Lua script each that compares the stored owner with the caller's:
//   absent (never taken, released or expired) → kLockDoesNotExist; another owner →
//   kLockBelongsToOthers; the caller → DEL (Unlock) or PEXPIRE (KeepAlive) and kSuccess.
// - A backend failure is an error (UNAVAILABLE when Redis is unreachable or does not answer within
//   `timeout`), never a grant or kSuccess. A TryLock that timed out may still have taken the lock;
//   it then expires on its own.
//
// What this lock does NOT promise (reliability.md §1):
// - No fencing token is given. A holder paused past its expiry (GC, SIGSTOP, a slow network) can
//   still believe it holds the lock while another owner has it. Protect the resource itself (for
//   example with a state etag) when mutual exclusion matters for correctness.
// - One Redis server, no replication. Replication is asynchronous: a grant written to a primary
//   that fails before replicating it can be granted again by the promoted replica. Init therefore
//   refuses a server that reports connected replicas, unless metadata `allowReplicas` is "true";
//   the check is repeated every `replica_check_interval`, and while replicas are connected (and
//   not allowed) TryLock fails with FAILED_PRECONDITION. Unlock and KeepAlive keep working.
// - A Redis restart without persistence forgets every lock.
//
// Threading: any thread. Callbacks run exactly once, with no lock of ours held: on the context's
// dispatcher thread, or inline on the caller's thread when the request is refused before it
// reaches Redis (bad expiry, replicas connected).
//
// Metadata: redisHost, redisPassword, redisDB, dialTimeout, timeout, poolSize (see
// redis::ClientSettings) and allowReplicas ("true"/"false", default false).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "components/common/redis/redis_client.h"
#include "components/common/redis/replication.h"
#include "components/lock/lock.h"

namespace ottava::components::lock {

struct RedisLockSettings {
  redis::ClientSettings client;
  bool allow_replicas = false;
  /// How often the number of replicas is read again.
  std::chrono::milliseconds replica_check_interval{5000};

  /// Reads the metadata; errors name the metadata key.
  static absl::StatusOr<RedisLockSettings> Parse(const Metadata& metadata);
};

class RedisLockStore : public LockStore {
 public:
  /// `context.dispatcher` runs the Redis connections and every callback.
  static absl::StatusOr<std::unique_ptr<RedisLockStore>> Create(const ComponentContext& context,
                                                                RedisLockSettings settings);
  ~RedisLockStore() override;

  /// Connects (bounded by dialTimeout) and checks replication: fails when Redis is unreachable
  /// (naming the host) or has connected replicas while `allowReplicas` is not set.
  absl::Status Init() override;
  void Shutdown() override;

  void TryLock(TryLockRequest request, std::function<void(absl::StatusOr<bool>)> done) override;
  void Unlock(UnlockRequest request, std::function<void(absl::StatusOr<LockStatus>)> done) override;
  void KeepAlive(KeepAliveRequest request,
                 std::function<void(absl::StatusOr<LockStatus>)> done) override;

 private:
  static constexpr int64_t kUnknown = -1;

  RedisLockStore(const ComponentContext& context,
                 RedisLockSettings settings,
                 std::unique_ptr<redis::Client> client);

  void SetNx(TryLockRequest request, std::function<void(absl::StatusOr<bool>)> done);
  // Runs the owner-checked `script` (Unlock or KeepAlive) and maps its answer.
  void RunOwnerScript(const redis::Script& script,
                      std::string resource,
                      std::vector<std::string> args,
                      std::function<void(absl::StatusOr<LockStatus>)> done);
  absl::Status ReplicasRefusal(int64_t replicas) const;
  absl::Status RedisError(const std::string& resource, const std::string& error) const;
  // The failure a reply carries (transport error or error reply), or OK.
  absl::Status ReplyStatus(const std::string& resource,
                           const absl::StatusOr<redis::Reply>& reply) const;
  absl::Status CheckExpiry(const std::string& resource, int32_t expire_seconds) const;

  const std::string label_;
  Dispatcher* const dispatcher_;
  const RedisLockSettings settings_;
  // Declared before the client, which must not outlive them.
  const redis::Script unlock_script_;
  const redis::Script keep_alive_script_;
  std::unique_ptr<redis::Client> client_;
  // Replicas reported by the last check; kUnknown until a check succeeded. Uses client_.
  redis::ReplicaWatch replicas_;
  bool shut_down_ = false;
};

class RedisLockFactory : public LockFactory {
 public:
  std::string_view type() const override { return "redis"; }
  absl::StatusOr<std::unique_ptr<LockStore>> Create(const ComponentContext& context) const override;
};

}  // namespace ottava::components::lock
