#pragma once

// The Configuration API core (Layotto shape). A blank app id means this sidecar's app; a blank
// group or label means the store's default.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "components/config_store/config_store.h"
#include "runtime/api/common.h"
#include "runtime/component_set.h"

namespace ottava::runtime::api {

class ConfigApi {
 public:
  ConfigApi(const ComponentSet& components, std::string app_id);

  using Item = components::config_store::Item;
  using Selector = components::config_store::Selector;
  using ItemsCallback = components::config_store::ItemsCallback;
  using DoneCallback = components::config_store::DoneCallback;
  using ChangeHandler = components::config_store::ChangeHandler;

  void Get(std::string_view store, Selector selector, ItemsCallback done);
  void Save(std::string_view store,
            std::string app_id,
            std::vector<Item> items,
            components::Metadata metadata,
            DoneCallback done);
  void Delete(std::string_view store, Selector selector, DoneCallback done);

  /// A live subscription; Cancel (or destruction) stops it.
  class Subscription {
   public:
    Subscription(components::config_store::ConfigStore* store, uint64_t id)
        : store_(store), id_(id) {}
    ~Subscription() { Cancel(); }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    void Cancel() {
      if (store_ != nullptr) {
        store_->Unsubscribe(id_);
        store_ = nullptr;
      }
    }

   private:
    components::config_store::ConfigStore* store_;
    uint64_t id_;
  };

  /// Starts delivering changes of the selected keys to `handler` (on the store's thread).
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(std::string_view store,
                                                          Selector selector,
                                                          ChangeHandler handler);

 private:
  struct Store {
    std::string name;
    components::config_store::ConfigStore* component;
  };
  absl::StatusOr<const Store*> Prepare(std::string_view store, Selector& selector) const;

  std::string app_id_;
  std::vector<Store> stores_;
};

}  // namespace ottava::runtime::api
