#pragma once

// The "redis" configuration store: items in Redis hashes, changes pushed to every sidecar on the
// same Redis through pub/sub.
//
// Data layout, per (app id, group, label) — a "scope":
//   config||<app>||<group>||<label>          hash: field = item key, value = the encoded item
//   config-rev||<app>||<group>||<label>      integer revision, +1 per Save or Delete of the scope
//   config-changed||<app>||<group>||<label>  pub/sub channel of the scope's changes
// (with redisDB = N ≠ 0 the channel is `config-changed@N||...`, since pub/sub ignores databases).
// An encoded item is a run of netstrings (`<length>:<bytes>`): content, the number of tags, each
// tag's key and value, the number of metadata entries, each entry's key and value. A hash value
// that does not parse that way (say, written by hand with redis-cli) reads as plain content.
// A change message is netstrings too: the scope's new revision, then per changed key: the key,
// `s` (saved) or `d` (deleted), and the encoded item (empty for `d`).
//
// Writes: Save (every scope the request touches) and Delete each run as one Lua script that
// updates the hash, increments the revision and PUBLISHes the change, atomically. Deleting keys
// that do not exist changes nothing and notifies nobody. App id, group and label must not contain
// `||` nor start or end with `|` (they are joined with `||`): INVALID_ARGUMENT.
//
// Subscriptions: a dedicated subscriber connection (redis::Subscriber) PSUBSCRIBEs to
// `config-changed||*` at Init. A change message carries the new values, so it is delivered to the
// matching subscriptions at once, with no read (a change by any client, another sidecar
// included). Each subscription remembers, per key, the content it last delivered (or read) and
// the revision that content belongs to. When it starts, and again every time the subscriber
// connection is re-established, a subscription reads its keys (HGET per key, or HGETALL for "all
// keys") with the scope's revision in one script; changes that arrive meanwhile are queued behind
// that read. After a reconnection, every key whose content differs from what the subscription
// knew is delivered (a vanished key with empty content), then the queued changes newer than the
// read. So a change made while the connection was down is delivered after it comes back, and
// nothing is delivered twice. The first read only records a baseline: a subscription streams the
// changes made after it started. If the revision went backwards (Redis lost data), contents are
// compared regardless of revisions.
//
// Unsubscribe: as the interface says; a handler call in progress finishes first (a handler may
// unsubscribe its own subscription).
//
// Metadata: the Redis connection (ClientSettings::Parse).
//
// Threading: every method may be called from any thread. Callbacks and handlers run on the
// component's dispatcher thread; handler calls of one subscription therefore never overlap and
// follow the change order.

#include <cstdint>
#include <memory>
#include <string>

#include "components/common/redis/redis_client.h"
#include "components/config_store/config_store.h"

namespace ottava::components::config_store {

struct RedisConfigStoreSettings {
  redis::ClientSettings client;

  /// Reads the metadata; errors name the metadata key.
  static absl::StatusOr<RedisConfigStoreSettings> Parse(const Metadata& metadata);
};

class RedisConfigStore : public ConfigStore {
 public:
  /// `context.dispatcher` must not be null.
  RedisConfigStore(const ComponentContext& context, RedisConfigStoreSettings settings);
  ~RedisConfigStore() override;

  /// Connects the command client and the subscriber (each bounded by dialTimeout). On failure both
  /// keep reconnecting in the background and the error is returned.
  absl::Status Init() override;
  /// Closes both connections and stops every subscription (as Unsubscribe does).
  void Shutdown() override;

  void Get(Selector selector, ItemsCallback done) override;
  void Save(SaveRequest request, DoneCallback done) override;
  void Delete(Selector selector, DoneCallback done) override;
  absl::StatusOr<uint64_t> Subscribe(Selector selector, ChangeHandler handler) override;
  void Unsubscribe(uint64_t subscription_id) override;

 private:
  // The state shared with callbacks on the dispatcher (defined in the .cc).
  struct Core;
  // Fills in the default group and label, then checks the scope and that Init ran.
  absl::Status PrepareSelector(Selector& selector) const;

  std::shared_ptr<Core> core_;
};

class RedisConfigStoreFactory : public ConfigStoreFactory {
 public:
  std::string_view type() const override { return "redis"; }
  absl::StatusOr<std::unique_ptr<ConfigStore>> Create(
      const ComponentContext& context) const override;
};

}  // namespace ottava::components::config_store
