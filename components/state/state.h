#pragma once

// The State building block: a key/value store with etags, TTL and (optionally) transactions.
//
// Keys reach the store already prefixed by the API layer (`<app-id>||<key>` by default). Every
// method is asynchronous: the callback runs exactly once, on the caller's thread (inline) or on the
// component's own thread, and must not block.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/time.h"
#include "components/component.h"

namespace ottava::components::state {

enum class Concurrency { kUnspecified, kFirstWrite, kLastWrite };
enum class Consistency { kUnspecified, kEventual, kStrong };

struct GetRequest {
  std::string key;
  Consistency consistency = Consistency::kUnspecified;
};

/// A read result. A missing key is not an error: `found` is false, value and etag are empty.
struct Item {
  std::string key;
  bool found = false;
  std::string value;
  std::string etag;
  std::optional<SystemTime> expire_time;  // set when the item has a TTL
};

struct SetRequest {
  std::string key;
  std::string value;
  /// When set (even to ""), the write succeeds only if the stored etag equals it. An empty etag
  /// with first-write concurrency means "create only if absent".
  std::optional<std::string> etag;
  Concurrency concurrency = Concurrency::kUnspecified;
  Consistency consistency = Consistency::kUnspecified;
  /// Seconds to live; nullopt stores without expiry (and removes a previous TTL).
  std::optional<int64_t> ttl_seconds;
};

struct DeleteRequest {
  std::string key;
  std::optional<std::string> etag;
  Concurrency concurrency = Concurrency::kUnspecified;
  Consistency consistency = Consistency::kUnspecified;
};

/// One step of a transaction.
using Operation = std::variant<SetRequest, DeleteRequest>;

struct Features {
  bool etag = false;
  bool transactional = false;
  bool ttl = false;
};

using GetCallback = std::function<void(absl::StatusOr<Item>)>;
using BulkGetCallback = std::function<void(absl::StatusOr<std::vector<Item>>)>;
using DoneCallback = std::function<void(absl::Status)>;

/// Error contract: an etag that does not match, or a first-write conflict, is ABORTED; an etag the
/// store cannot parse is INVALID_ARGUMENT; an unreachable backend is UNAVAILABLE. Messages name
/// the component (`state/main`) and the key.
class StateStore : public Component {
 public:
  /// What the store supports. Must be honest (the API refuses transactions otherwise).
  virtual Features features() const = 0;
  /// Reads one key.
  virtual void Get(GetRequest request, GetCallback done) = 0;
  /// Reads many keys; the result has one item per requested key, in order.
  virtual void BulkGet(std::vector<GetRequest> requests, BulkGetCallback done) = 0;
  /// Writes one key, honouring etag, concurrency and TTL.
  virtual void Set(SetRequest request, DoneCallback done) = 0;
  /// Deletes one key; deleting an absent key without an etag is not an error.
  virtual void Delete(DeleteRequest request, DoneCallback done) = 0;
  /// Applies every operation in order, or none of them (all etags checked first).
  virtual void Transact(std::vector<Operation> operations, DoneCallback done) = 0;
};

using StateStorePtr = std::unique_ptr<StateStore>;
using StateFactory = Factory<StateStore>;

}  // namespace ottava::components::state
