#include "components/config_store/in_memory/in_memory_config_store.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "common/byte_codec.h"
#include "common/dispatcher.h"
#include "common/status.h"

namespace ottava::components::config_store {

struct InMemoryConfigStore::Subscription {
  Selector selector;
  ChangeHandler handler;

  absl::Mutex mu;
  std::deque<std::vector<Item>> queue ABSL_GUARDED_BY(mu);
  bool draining ABSL_GUARDED_BY(mu) = false;
  bool active ABSL_GUARDED_BY(mu) = true;

  // Held for the whole of each handler call (see the header).
  absl::Mutex handler_mu ABSL_ACQUIRED_BEFORE(mu);

  bool Selects(const Item& item) const {
    if (item.group != selector.group || item.label != selector.label) {
      return false;
    }
    return selector.keys.empty() ||
           std::find(selector.keys.begin(), selector.keys.end(), item.key) != selector.keys.end();
  }
};

namespace {

// The subscription whose handler this thread is running, if any; lets a handler unsubscribe itself
// without waiting for itself.
thread_local const void* delivering = nullptr;

absl::Status FrozenError(const std::string& label) {
  return absl::UnavailableError(label +
                                ": handed over to a new process (hot upgrade); retry the write");
}

void PutMap(ByteWriter& out, const std::map<std::string, std::string>& map) {
  out.U32(static_cast<uint32_t>(map.size()));
  for (const auto& [key, value] : map) {
    out.Bytes(key);
    out.Bytes(value);
  }
}

bool GetMap(ByteReader& in, std::map<std::string, std::string>* map) {
  uint32_t count = 0;
  if (!in.U32(&count)) {
    return false;
  }
  for (uint32_t i = 0; i < count; ++i) {
    std::string key;
    std::string value;
    if (!in.Bytes(&key) || !in.Bytes(&value)) {
      return false;
    }
    (*map)[std::move(key)] = std::move(value);
  }
  return true;
}

Item Deleted(const Item& item) {
  Item deleted;
  deleted.key = item.key;
  deleted.group = item.group;
  deleted.label = item.label;
  return deleted;
}

}  // namespace

void InMemoryConfigStore::Drain(Subscription& sub) {
  for (;;) {
    std::vector<Item> batch;
    {
      absl::MutexLock lock(&sub.mu);
      if (!sub.active || sub.queue.empty()) {
        sub.draining = false;
        return;
      }
      batch = std::move(sub.queue.front());
      sub.queue.pop_front();
    }
    absl::MutexLock handler_lock(&sub.handler_mu);
    bool active = false;
    {
      absl::MutexLock lock(&sub.mu);
      active = sub.active;
    }
    if (active) {
      const void* previous = delivering;
      delivering = &sub;
      sub.handler(std::move(batch));
      delivering = previous;
    }
  }
}

void InMemoryConfigStore::Deactivate(Subscription& sub) {
  {
    absl::MutexLock lock(&sub.mu);
    sub.active = false;
    sub.queue.clear();
  }
  if (delivering == &sub) {
    return;
  }
  // A call already running holds handler_mu; later drain steps see `active` false.
  absl::MutexLock wait_for_running_call(&sub.handler_mu);
}

InMemoryConfigStore::InMemoryConfigStore(const ComponentContext& context)
    : label_(context.Label()), health_(context.health), dispatcher_(context.dispatcher) {}

InMemoryConfigStore::~InMemoryConfigStore() {
  Shutdown();
}

absl::Status InMemoryConfigStore::Init() {
  if (health_ != nullptr) {
    health_->Set(HealthState::kUp);
  }
  return absl::OkStatus();
}

void InMemoryConfigStore::Shutdown() {
  std::map<uint64_t, SubscriptionPtr> subscriptions;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    subscriptions.swap(subscriptions_);
  }
  for (auto& [id, sub] : subscriptions) {
    Deactivate(*sub);
  }
}

Selector InMemoryConfigStore::Normalise(Selector selector) const {
  if (selector.group.empty()) {
    selector.group = DefaultGroup();
  }
  if (selector.label.empty()) {
    selector.label = DefaultLabel();
  }
  return selector;
}

void InMemoryConfigStore::Get(Selector selector, ItemsCallback done) {
  selector = Normalise(std::move(selector));
  std::vector<Item> found;
  {
    absl::MutexLock lock(&mu_);
    ItemKey key{selector.app_id, selector.group, selector.label, ""};
    if (selector.keys.empty()) {
      for (auto it = items_.lower_bound(key);
           it != items_.end() && it->first.app_id == key.app_id && it->first.group == key.group &&
           it->first.label == key.label;
           ++it) {
        found.push_back(it->second);
      }
    } else {
      for (const std::string& name : selector.keys) {
        key.key = name;
        if (auto it = items_.find(key); it != items_.end()) {
          found.push_back(it->second);
        }
      }
    }
  }
  done(std::move(found));
}

void InMemoryConfigStore::Save(SaveRequest request, DoneCallback done) {
  for (Item& item : request.items) {
    if (item.key.empty()) {
      done(absl::InvalidArgumentError(label_ + ": an item has an empty key"));
      return;
    }
    if (item.group.empty()) {
      item.group = DefaultGroup();
    }
    if (item.label.empty()) {
      item.label = DefaultLabel();
    }
  }
  std::vector<SubscriptionPtr> to_drain;
  bool frozen = false;
  {
    absl::MutexLock lock(&mu_);
    frozen = frozen_;
    if (!frozen) {
      for (const Item& item : request.items) {
        items_[ItemKey{request.app_id, item.group, item.label, item.key}] = item;
      }
      to_drain = QueueChanges(request.app_id, request.items);
    }
  }
  if (frozen) {
    done(FrozenError(label_));
    return;
  }
  StartDrains(std::move(to_drain));
  done(absl::OkStatus());
}

void InMemoryConfigStore::Delete(Selector selector, DoneCallback done) {
  selector = Normalise(std::move(selector));
  std::vector<SubscriptionPtr> to_drain;
  bool frozen = false;
  {
    absl::MutexLock lock(&mu_);
    frozen = frozen_;
    std::vector<Item> deleted;
    ItemKey key{selector.app_id, selector.group, selector.label, ""};
    if (frozen) {
      // Nothing changes after the state went to a new process.
    } else if (selector.keys.empty()) {
      auto it = items_.lower_bound(key);
      while (it != items_.end() && it->first.app_id == key.app_id && it->first.group == key.group &&
             it->first.label == key.label) {
        deleted.push_back(Deleted(it->second));
        it = items_.erase(it);
      }
    } else {
      for (const std::string& name : selector.keys) {
        key.key = name;
        if (auto it = items_.find(key); it != items_.end()) {
          deleted.push_back(Deleted(it->second));
          items_.erase(it);
        }
      }
    }
    to_drain = QueueChanges(selector.app_id, deleted);
  }
  if (frozen) {
    done(FrozenError(label_));
    return;
  }
  StartDrains(std::move(to_drain));
  done(absl::OkStatus());
}

std::vector<InMemoryConfigStore::SubscriptionPtr> InMemoryConfigStore::QueueChanges(
    const std::string& app_id, const std::vector<Item>& changed) {
  std::vector<SubscriptionPtr> to_drain;
  if (changed.empty()) {
    return to_drain;
  }
  for (auto& [id, sub] : subscriptions_) {
    if (sub->selector.app_id != app_id) {
      continue;
    }
    std::vector<Item> batch;
    for (const Item& item : changed) {
      if (sub->Selects(item)) {
        batch.push_back(item);
      }
    }
    if (batch.empty()) {
      continue;
    }
    absl::MutexLock lock(&sub->mu);
    sub->queue.push_back(std::move(batch));
    if (!sub->draining) {
      sub->draining = true;
      to_drain.push_back(sub);
    }
  }
  return to_drain;
}

void InMemoryConfigStore::StartDrains(std::vector<SubscriptionPtr> subscriptions) {
  for (SubscriptionPtr& sub : subscriptions) {
    if (dispatcher_ != nullptr) {
      dispatcher_->Post([sub = std::move(sub)] { Drain(*sub); });
    } else {
      Drain(*sub);
    }
  }
}

absl::StatusOr<uint64_t> InMemoryConfigStore::Subscribe(Selector selector, ChangeHandler handler) {
  if (!handler) {
    return absl::InvalidArgumentError(label_ + ": subscribe needs a handler");
  }
  auto sub = std::make_shared<Subscription>();
  sub->selector = Normalise(std::move(selector));
  sub->handler = std::move(handler);
  absl::MutexLock lock(&mu_);
  if (shut_down_) {
    return absl::FailedPreconditionError(label_ + ": the store is shut down");
  }
  const uint64_t id = next_subscription_id_++;
  subscriptions_.emplace(id, std::move(sub));
  return id;
}

void InMemoryConfigStore::Unsubscribe(uint64_t subscription_id) {
  SubscriptionPtr sub;
  {
    absl::MutexLock lock(&mu_);
    auto it = subscriptions_.find(subscription_id);
    if (it == subscriptions_.end()) {
      return;
    }
    sub = std::move(it->second);
    subscriptions_.erase(it);
  }
  Deactivate(*sub);
}

std::vector<std::string> InMemoryConfigStore::FreezeAndExport(size_t chunk_bytes) {
  ChunkWriter out(chunk_bytes);
  absl::MutexLock lock(&mu_);
  frozen_ = true;
  for (const auto& [key, item] : items_) {
    ByteWriter& record = out.record();
    record.U8('C');
    record.Bytes(key.app_id);
    record.Bytes(key.group);
    record.Bytes(key.label);
    record.Bytes(key.key);
    record.Bytes(item.content);
    PutMap(record, item.tags);
    PutMap(record, item.metadata);
    out.EndRecord();
  }
  return out.Finish();
}

absl::Status InMemoryConfigStore::ImportState(uint32_t format, std::string_view chunk) {
  OTTAVA_RETURN_IF_ERROR(CheckStateFormat(label_, format));
  ByteReader in(chunk);
  absl::Status status;
  std::vector<SubscriptionPtr> to_drain;
  {
    absl::MutexLock lock(&mu_);
    // Imported items are changes to whoever subscribed in this process already.
    std::map<std::string, std::vector<Item>> changed;  // by app id
    while (!in.done()) {
      uint8_t tag = 0;
      ItemKey key;
      Item item;
      if (!in.U8(&tag) || tag != 'C') {
        status = UnknownStateRecord(label_);
        break;
      }
      if (!in.Bytes(&key.app_id) || !in.Bytes(&key.group) || !in.Bytes(&key.label) ||
          !in.Bytes(&key.key) || !in.Bytes(&item.content) || !GetMap(in, &item.tags) ||
          !GetMap(in, &item.metadata)) {
        status = TruncatedStateRecord(label_);
        break;
      }
      item.key = key.key;
      item.group = key.group;
      item.label = key.label;
      changed[key.app_id].push_back(item);
      items_[std::move(key)] = std::move(item);
    }
    for (const auto& [app_id, items] : changed) {
      for (SubscriptionPtr& sub : QueueChanges(app_id, items)) {
        to_drain.push_back(std::move(sub));
      }
    }
  }
  StartDrains(std::move(to_drain));
  return status;
}

absl::StatusOr<std::unique_ptr<ConfigStore>> InMemoryConfigStoreFactory::Create(
    const ComponentContext& context) const {
  return std::make_unique<InMemoryConfigStore>(context);
}

}  // namespace ottava::components::config_store
