#pragma once

// The Configuration building block (Layotto's shape): items addressed by app id, group, label and
// key, with tags; writable; subscribers see every later change of their keys.
//
// Callbacks run exactly once, inline or on the component's thread, and must not block.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "components/component.h"

namespace ottava::components::config_store {

struct Item {
  std::string key;
  std::string content;  // empty in a change notification = the item was deleted
  std::string group;
  std::string label;
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> metadata;
};

/// Selects items of one app, group and label; empty `keys` selects all of them.
struct Selector {
  std::string app_id;
  std::string group;
  std::string label;
  std::vector<std::string> keys;
  Metadata metadata;
};

struct SaveRequest {
  std::string app_id;
  std::vector<Item> items;  // group and label already defaulted by the API layer
  Metadata metadata;
};

using ItemsCallback = std::function<void(absl::StatusOr<std::vector<Item>>)>;
using DoneCallback = std::function<void(absl::Status)>;
/// Receives changed items (a deleted item has empty content). Calls for one subscription never
/// overlap and arrive in change order.
using ChangeHandler = std::function<void(std::vector<Item> changed)>;

class ConfigStore : public Component {
 public:
  /// Group used when a request leaves it blank.
  virtual std::string DefaultGroup() const { return "default"; }
  /// Label used when a request leaves it blank.
  virtual std::string DefaultLabel() const { return "default"; }

  /// Items matching the selector; unknown keys are simply absent from the result.
  virtual void Get(Selector selector, ItemsCallback done) = 0;
  /// Creates or replaces items; subscribers of those keys are notified.
  virtual void Save(SaveRequest request, DoneCallback done) = 0;
  /// Deletes the selected keys; subscribers receive them with empty content.
  virtual void Delete(Selector selector, DoneCallback done) = 0;
  /// Starts delivering changes of the selected keys to `handler`. Any thread.
  virtual absl::StatusOr<uint64_t> Subscribe(Selector selector, ChangeHandler handler) = 0;
  /// Stops one subscription; when this returns its handler is not running and never runs again.
  /// Other subscriptions are untouched. Any thread except inside a handler.
  virtual void Unsubscribe(uint64_t subscription_id) = 0;
};

using ConfigStorePtr = std::unique_ptr<ConfigStore>;
using ConfigStoreFactory = Factory<ConfigStore>;

}  // namespace ottava::components::config_store
