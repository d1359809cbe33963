#pragma once

// The State API core: validation, key prefixes, component lookup, TTL metadata and the fan-out of
// bulk calls. Protocol-neutral: the Layotto (and later Dapr) gRPC front-ends adapt to it.
//
// Threading: any gRPC thread; callbacks run on the component's completion thread.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "components/state/state.h"
#include "runtime/api/common.h"
#include "runtime/component_set.h"

namespace ottava::runtime::api {

class StateApi {
 public:
  StateApi(const ComponentSet& components, const std::string& app_id);

  struct GetResult {
    std::string key;  // as the client named it
    bool found = false;
    std::string value;
    std::string etag;
    std::string error;              // bulk reads only: this key's failure
    components::Metadata metadata;  // "ttlExpireTime" (RFC 3339) when the item expires
  };

  struct WriteItem {
    std::string key;
    std::string value;
    std::optional<std::string> etag;  // set only when the client sent a non-empty etag
    components::state::Concurrency concurrency = components::state::Concurrency::kUnspecified;
    components::state::Consistency consistency = components::state::Consistency::kUnspecified;
    components::Metadata metadata;  // "ttlInSeconds"
  };

  struct Operation {
    std::string type;  // "upsert" | "delete", validated here
    WriteItem item;
  };

  using GetCallback = std::function<void(absl::StatusOr<GetResult>)>;
  using BulkGetCallback = std::function<void(absl::StatusOr<std::vector<GetResult>>)>;
  using DoneCallback = std::function<void(absl::Status)>;

  void Get(std::string_view store,
           std::string_view key,
           components::state::Consistency consistency,
           GetCallback done);
  void BulkGet(std::string_view store, const std::vector<std::string>& keys, BulkGetCallback done);
  /// Saves every item; items are independent (not a transaction). The first failure is returned.
  void Save(std::string_view store, std::vector<WriteItem> items, DoneCallback done);
  /// Deletes every item (key, etag, options); the first failure is returned.
  void Delete(std::string_view store, std::vector<WriteItem> items, DoneCallback done);
  /// Applies every operation atomically.
  void Transact(std::string_view store, std::vector<Operation> operations, DoneCallback done);

 private:
  struct Store {
    std::string name;
    components::state::StateStore* component;
    KeyPrefix prefix;
  };

  absl::StatusOr<const Store*> Resolve(std::string_view name) const;
  static absl::StatusOr<components::state::SetRequest> ToSet(const Store& store, WriteItem item);
  static absl::StatusOr<components::state::DeleteRequest> ToDelete(const Store& store,
                                                                   WriteItem item);

  std::vector<Store> stores_;
};

/// Parses the `ttlInSeconds` metadata: absent or negative = no TTL; not an integer = error.
absl::StatusOr<std::optional<int64_t>> ParseTtl(const components::Metadata& metadata);

}  // namespace ottava::runtime::api
