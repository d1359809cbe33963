#pragma once

// The "in-memory" configuration store: items keyed by (app id, group, label, key), with change
// subscriptions. For development and as a fake in tests.
//
// Delivery: every Save or Delete queues, per matching subscription, one batch holding the changed
// items of that subscription (a deleted item has empty content and no tags). Batches are queued
// under the store mutex, so their order is the order of the changes. Each subscription drains its
// own queue with at most one drainer at a time: on the context's dispatcher (via Post) when there
// is one, otherwise inline on the thread that made the change, after the store mutex is released.
//
// Unsubscribe: a subscription has a `handler_mu` held for the whole of each handler call. To stop
// one, Unsubscribe removes it from the table (no new batches), marks it inactive and drops its
// queue, then acquires and releases `handler_mu`: a call already running finishes first, and every
// later drain step re-checks `active` under `handler_mu` and calls nothing. So when Unsubscribe
// returns the handler is not running and never runs again, even when Unsubscribe races with a
// delivery on another thread. A handler that unsubscribes its own subscription does not wait for
// itself (it just marks it inactive); unsubscribing another subscription from inside a handler is
// not supported (ConfigStore's contract) and may deadlock when there is no dispatcher.
//
// Threading: every method may be called from any thread; callbacks of Get/Save/Delete run inline
// after the store mutex is released.
//
// Metadata: none.
//
// Hot upgrade (Transferable, format 1): records 'C' {app id, group, label, key, content, u32
// tag count, tags as key/value pairs, u32 metadata count, metadata pairs}. Imported items reach
// the new process's subscribers as changes. After FreezeAndExport, Save and Delete fail
// UNAVAILABLE.

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "components/config_store/config_store.h"
#include "components/transferable.h"

namespace ottava::components::config_store {

class InMemoryConfigStore : public ConfigStore, public Transferable {
 public:
  explicit InMemoryConfigStore(const ComponentContext& context);
  ~InMemoryConfigStore() override;

  absl::Status Init() override;
  /// Stops every subscription (as Unsubscribe does).
  void Shutdown() override;

  void Get(Selector selector, ItemsCallback done) override;
  void Save(SaveRequest request, DoneCallback done) override;
  void Delete(Selector selector, DoneCallback done) override;
  absl::StatusOr<uint64_t> Subscribe(Selector selector, ChangeHandler handler) override;
  void Unsubscribe(uint64_t subscription_id) override;

  uint32_t StateFormat() const override { return 1; }
  std::vector<std::string> FreezeAndExport(size_t chunk_bytes) override;
  absl::Status ImportState(uint32_t format, std::string_view chunk) override;

 private:
  // A subscription's selector, handler and queue (defined in the .cc).
  struct Subscription;
  struct ItemKey {
    std::string app_id;
    std::string group;
    std::string label;
    std::string key;
    auto operator<=>(const ItemKey&) const = default;
  };
  using SubscriptionPtr = std::shared_ptr<Subscription>;

  // Fills blank group and label with the defaults.
  Selector Normalise(Selector selector) const;
  // Queues `changed` (items of one app) to every matching subscription; returns those that need a
  // drainer.
  std::vector<SubscriptionPtr> QueueChanges(const std::string& app_id,
                                            const std::vector<Item>& changed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts draining (posted, or inline without a dispatcher). Called without `mu_`.
  void StartDrains(std::vector<SubscriptionPtr> subscriptions);
  // Calls the handler for each queued batch until the queue is empty or the subscription stopped.
  static void Drain(Subscription& sub);
  // Makes sure the handler is not running and never runs again.
  static void Deactivate(Subscription& sub);

  const std::string label_;
  HealthIndicator* const health_;
  Dispatcher* const dispatcher_;

  absl::Mutex mu_;
  std::map<ItemKey, Item> items_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, SubscriptionPtr> subscriptions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_subscription_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool frozen_ ABSL_GUARDED_BY(mu_) = false;  // exported to a new process: no more changes
};

class InMemoryConfigStoreFactory : public ConfigStoreFactory {
 public:
  std::string_view type() const override { return "in-memory"; }
  absl::StatusOr<std::unique_ptr<ConfigStore>> Create(
      const ComponentContext& context) const override;
};

}  // namespace ottava::components::config_store
