#pragma once

// The "redis" state store: one Redis server (standalone), Dapr's data layout, real transactions.
//
// Data layout (the same as Dapr's state.redis, so either runtime reads what the other wrote): each
// key is a Redis hash with the fields `data` (the value bytes, as given) and `version` (a decimal
// integer, the etag). TTL is the key's own Redis expiry.
//
// Semantics (DESIGN.md §7, the same as the in-memory store):
// - A non-empty etag must equal the stored version; a non-numeric one is INVALID_ARGUMENT
//   ("malformed etag"), a different one or an absent key is ABORTED. An empty etag, or first-write
//   concurrency without an etag, means "only if absent" (ABORTED if the key exists). Last-write
//   without an etag is unconditional.
// - Every write adds one to `version` (HINCRBY). A key that is created (absent before) starts at a
//   version taken from the Redis server's clock in microseconds, not at 1, so a key deleted and
//   created again does not hand out an etag a client may still hold. This relies on the server's
//   clock not stepping back; Dapr starts at 1, and both read each other's versions.
// - `ttl_seconds > 0` sets the expiry (EXPIRE); nullopt or <= 0 removes it (PERSIST). Get reports
//   the absolute expiry time (PEXPIRETIME; TIME + PTTL on servers before 7.0).
// - Set, Delete and Transact each run as ONE Lua script (EVALSHA) that first checks every
//   condition of every operation, in order, against the state the earlier operations leave, and
//   only then applies every write, delete and expiry. Redis runs a script atomically and the apply
//   phase cannot fail once the checks passed, so a transaction is all-or-nothing, TTL included.
//   (Dapr runs MULTI with one EVAL per operation plus a separate EXPIRE: neither all-or-nothing nor
//   atomic with the TTL.)
// - Consistency strong: when the server has replicas (INFO replication, read at Init and then
//   every `replica_check_interval`), a strong write is followed by WAIT <replicas> <timeout> on the
//   connection that carried the write; fewer acknowledgements than replicas is DEADLINE_EXCEEDED
//   (the write is applied on the primary). Without replicas there is nothing to wait for.
// - Errors: UNAVAILABLE from the client passes through (backend unreachable or no reply within
//   `timeout`); messages name the component and the key. An outcome may then be unknown: a write
//   that timed out may have been applied.
//
// Connections: `poolSize` pipelined connections for requests, plus one connection dedicated to
// strong writes and their WAIT, so that WAIT (which blocks its connection) never stalls other
// requests and always runs on the connection that sent the write.
//
// Threading: every method may be called from any thread. Callbacks run exactly once, with no lock
// of ours held: on the context's dispatcher thread, or inline on the caller's thread when the
// request is refused before it reaches Redis (malformed etag, TTL too large).
//
// Metadata: redisHost, redisPassword, redisDB, dialTimeout, timeout, poolSize (see
// redis::ClientSettings). Dapr's enableTLS, failover and redisType=cluster are refused.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "components/common/redis/redis_client.h"
#include "components/common/redis/replication.h"
#include "components/state/state.h"

namespace ottava::components::state {

struct RedisStateSettings {
  redis::ClientSettings client;
  /// How often the number of replicas is read again.
  std::chrono::milliseconds replica_check_interval{5000};

  /// Reads the metadata; errors name the metadata key.
  static absl::StatusOr<RedisStateSettings> Parse(const Metadata& metadata);
};

class RedisStateStore : public StateStore {
 public:
  /// `context.dispatcher` runs the Redis connections and every callback.
  static absl::StatusOr<std::unique_ptr<RedisStateStore>> Create(const ComponentContext& context,
                                                                 RedisStateSettings settings);
  ~RedisStateStore() override;

  /// Connects (bounded by dialTimeout) and reads the number of replicas. On failure the error
  /// names the host, and the client keeps reconnecting in the background.
  absl::Status Init() override;
  void Shutdown() override;

  Features features() const override { return {.etag = true, .transactional = true, .ttl = true}; }
  void Get(GetRequest request, GetCallback done) override;
  void BulkGet(std::vector<GetRequest> requests, BulkGetCallback done) override;
  void Set(SetRequest request, DoneCallback done) override;
  void Delete(DeleteRequest request, DoneCallback done) override;
  void Transact(std::vector<Operation> operations, DoneCallback done) override;

  /// The number of replicas a strong write currently waits for. For tests.
  int64_t ReplicasForTest() const { return replicas_.count(); }

 private:
  // One Lua call of the write script: the keys and, per operation, its four arguments.
  struct WriteBatch {
    std::vector<std::string> keys;
    std::vector<std::string> args;
    bool strong = false;
    bool transaction = false;
  };

  RedisStateStore(const ComponentContext& context,
                  RedisStateSettings settings,
                  std::unique_ptr<redis::Client> client,
                  std::unique_ptr<redis::Client> strong_client);

  // Appends one operation to `batch`, or fails if its etag or TTL is malformed.
  // AddSet moves the key and value out of `request`.
  absl::Status AddSet(SetRequest& request, WriteBatch& batch) const;
  absl::Status AddDelete(const DeleteRequest& request, WriteBatch& batch) const;
  void Write(WriteBatch batch, DoneCallback done);
  void WaitForReplicas(DoneCallback done);
  // Turns an error reply of the write script into a status naming the operation's key.
  absl::Status WriteError(const redis::Reply& reply,
                          const std::vector<std::string>& keys,
                          bool transaction) const;
  absl::StatusOr<Item> ToItem(const std::string& key, absl::StatusOr<redis::Reply> reply) const;
  absl::Status RedisError(const std::string& key, const std::string& error) const;

  const std::string label_;
  Dispatcher* const dispatcher_;
  const RedisStateSettings settings_;
  // Declared before the clients, which must not outlive them.
  const redis::Script get_script_;
  const redis::Script write_script_;
  std::unique_ptr<redis::Client> client_;
  std::unique_ptr<redis::Client> strong_client_;
  redis::ReplicaWatch replicas_;  // uses client_
  bool shut_down_ = false;
};

class RedisStateFactory : public StateFactory {
 public:
  std::string_view type() const override { return "redis"; }
  absl::StatusOr<std::unique_ptr<StateStore>> Create(
      const ComponentContext& context) const override;
};

}  // namespace ottava::components::state
