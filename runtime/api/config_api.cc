#include "runtime/api/config_api.h"

#include "common/status.h"

namespace ottava::runtime::api {

ConfigApi::ConfigApi(const ComponentSet& components, std::string app_id)
    : app_id_(std::move(app_id)) {
  for (const auto& instance : components.config_stores()) {
    stores_.push_back(Store{instance.config->name, instance.component.get()});
  }
}

absl::StatusOr<const ConfigApi::Store*> ConfigApi::Prepare(std::string_view name,
                                                           Selector& selector) const {
  OTTAVA_ASSIGN_OR_RETURN(const Store* store,
                          FindByName(stores_, components::Kind::kConfigStore, name));
  if (selector.app_id.empty()) {
    selector.app_id = app_id_;
  }
  if (selector.group.empty()) {
    selector.group = store->component->DefaultGroup();
  }
  if (selector.label.empty()) {
    selector.label = store->component->DefaultLabel();
  }
  for (const auto& key : selector.keys) {
    if (key.empty()) {
      return absl::InvalidArgumentError("keys contains an empty key");
    }
  }
  return store;
}

void ConfigApi::Get(std::string_view store_name, Selector selector, ItemsCallback done) {
  absl::StatusOr<const Store*> store = Prepare(store_name, selector);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  (*store)->component->Get(std::move(selector), std::move(done));
}

void ConfigApi::Save(std::string_view store_name,
                     std::string app_id,
                     std::vector<Item> items,
                     components::Metadata metadata,
                     DoneCallback done) {
  absl::StatusOr<const Store*> store =
      FindByName(stores_, components::Kind::kConfigStore, store_name);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  if (items.empty()) {
    done(absl::InvalidArgumentError("items is empty"));
    return;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    Item& item = items[i];
    if (item.key.empty()) {
      done(absl::InvalidArgumentError("items[" + std::to_string(i) + "].key is empty"));
      return;
    }
    if (item.group.empty()) {
      item.group = (*store)->component->DefaultGroup();
    }
    if (item.label.empty()) {
      item.label = (*store)->component->DefaultLabel();
    }
  }
  components::config_store::SaveRequest request;
  request.app_id = app_id.empty() ? app_id_ : std::move(app_id);
  request.items = std::move(items);
  request.metadata = std::move(metadata);
  (*store)->component->Save(std::move(request), std::move(done));
}

void ConfigApi::Delete(std::string_view store_name, Selector selector, DoneCallback done) {
  absl::StatusOr<const Store*> store = Prepare(store_name, selector);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  if (selector.keys.empty()) {
    done(absl::InvalidArgumentError("keys is empty: name the keys to delete"));
    return;
  }
  (*store)->component->Delete(std::move(selector), std::move(done));
}

absl::StatusOr<std::unique_ptr<ConfigApi::Subscription>> ConfigApi::Subscribe(
    std::string_view store_name, Selector selector, ChangeHandler handler) {
  OTTAVA_ASSIGN_OR_RETURN(const Store* store, Prepare(store_name, selector));
  OTTAVA_ASSIGN_OR_RETURN(uint64_t id,
                          store->component->Subscribe(std::move(selector), std::move(handler)));
  return std::make_unique<Subscription>(store->component, id);
}

}  // namespace ottava::runtime::api
