#pragma once

// The "redis" sequencer: one Redis integer per key, so ids survive sidecar restarts and are shared
// by every sidecar on the same Redis.
//
// Keys reach the store prefixed (`sequencer||<app-id>||<key>`) and are used as the Redis key as is.
// GetNextId is `INCRBY key 1`; GetSegment(key, n) is one `INCRBY key n` returning [last-n+1, last].
// Both are single atomic steps, so ids are strictly increasing across all callers and all
// sidecars (STRONG and WEAK alike). With a `biggerThan` floor for the key, a Lua script raises the
// counter to the floor when it is below, then increments, in one atomic step.
//
// Metadata: the Redis connection (ClientSettings::Parse: redisHost, redisPassword, redisDB,
// dialTimeout, timeout, poolSize); `biggerThan.<key>` = a non-negative integer floor, matched
// against the stored key or its last `||`-separated part (as the in-memory sequencer);
// `segmentSize` (default 1000) sizes the runtime's WEAK cache and is validated here.
//
// Ids repeat only if Redis loses increments: a restart without persistence (or with AOF fsync'd
// less often than always), or a failover to a replica that had not received the last increments
// (replication is asynchronous). Run one primary with `appendfsync always` where that matters.
//
// Errors: Redis unreachable → UNAVAILABLE; a counter at the int64 limit → OUT_OF_RANGE; a key that
// holds something other than an integer → FAILED_PRECONDITION.
//
// Threading: any thread; callbacks run on the component dispatcher thread.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "components/common/redis/redis_client.h"
#include "components/sequencer/floors.h"
#include "components/sequencer/sequencer.h"

namespace ottava::components::sequencer {

struct RedisSequencerSettings {
  redis::ClientSettings client;
  Floors bigger_than;
  int64_t segment_size = 1000;

  /// Reads the metadata; errors name the metadata key. Unrelated keys are ignored (the runtime's
  /// own keys, such as keyPrefix, share the map).
  static absl::StatusOr<RedisSequencerSettings> Parse(const Metadata& metadata);
};

class RedisSequencer : public Sequencer {
 public:
  /// `client` is created but not connected yet.
  RedisSequencer(const ComponentContext& context,
                 RedisSequencerSettings settings,
                 std::unique_ptr<redis::Client> client);
  ~RedisSequencer() override;

  /// Connects (bounded by dialTimeout); on failure the client keeps reconnecting in the background
  /// and the error is returned.
  absl::Status Init() override;
  void Shutdown() override;

  void GetNextId(NextIdRequest request, std::function<void(absl::StatusOr<int64_t>)> done) override;
  void GetSegment(std::string key,
                  int64_t size,
                  std::function<void(absl::StatusOr<Segment>)> done) override;

 private:
  // Reserves `size` ids of `key`; `done` receives the last one.
  void Reserve(const std::string& key,
               int64_t size,
               std::function<void(absl::StatusOr<int64_t>)> done);

  const std::string label_;
  const RedisSequencerSettings settings_;
  // Raises the counter to the floor when below, then INCRBY; declared before the client that
  // refers to it.
  const redis::Script floor_script_;
  std::unique_ptr<redis::Client> client_;
};

class RedisSequencerFactory : public SequencerFactory {
 public:
  std::string_view type() const override { return "redis"; }
  absl::StatusOr<std::unique_ptr<Sequencer>> Create(const ComponentContext& context) const override;
};

}  // namespace ottava::components::sequencer
