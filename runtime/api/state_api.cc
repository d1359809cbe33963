#include "runtime/api/state_api.h"

#include <charconv>

#include "common/status.h"
#include "common/time.h"

namespace ottava::runtime::api {

using components::Kind;
namespace state = components::state;

absl::StatusOr<std::optional<int64_t>> ParseTtl(const components::Metadata& metadata) {
  auto it = metadata.find("ttlInSeconds");
  if (it == metadata.end() || it->second.empty()) {
    return std::optional<int64_t>();
  }
  const std::string& text = it->second;
  int64_t ttl = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ttl);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return absl::InvalidArgumentError("metadata ttlInSeconds '" + text +
                                      "' is not an integer number of seconds");
  }
  if (ttl <= 0) {
    return std::optional<int64_t>();
  }
  return std::optional<int64_t>(ttl);
}

StateApi::StateApi(const ComponentSet& components, const std::string& app_id) {
  for (const auto& instance : components.states()) {
    stores_.push_back(
        Store{instance.config->name, instance.component.get(),
              KeyPrefix::Create(instance.config->metadata, app_id, instance.config->name, "")});
  }
}

absl::StatusOr<const StateApi::Store*> StateApi::Resolve(std::string_view name) const {
  return FindByName(stores_, Kind::kState, name);
}

namespace {

StateApi::GetResult ToResult(std::string key, state::Item item) {
  StateApi::GetResult result;
  result.key = std::move(key);
  result.found = item.found;
  result.value = std::move(item.value);
  result.etag = std::move(item.etag);
  if (item.expire_time) {
    result.metadata["ttlExpireTime"] = FormatRfc3339(*item.expire_time);
  }
  return result;
}

}  // namespace

void StateApi::Get(std::string_view store_name,
                   std::string_view key,
                   state::Consistency consistency,
                   GetCallback done) {
  absl::StatusOr<const Store*> store = FindForKey(stores_, Kind::kState, store_name, key, "key");
  if (!store.ok()) {
    done(store.status());
    return;
  }
  (*store)->component->Get(
      state::GetRequest{(*store)->prefix.Apply(key), consistency},
      [key = std::string(key), done = std::move(done)](absl::StatusOr<state::Item> item) {
        if (!item.ok()) {
          done(item.status());
          return;
        }
        done(ToResult(key, std::move(*item)));
      });
}

void StateApi::BulkGet(std::string_view store_name,
                       const std::vector<std::string>& keys,
                       BulkGetCallback done) {
  absl::StatusOr<const Store*> store = Resolve(store_name);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  std::vector<state::GetRequest> requests;
  requests.reserve(keys.size());
  for (const auto& key : keys) {
    if (absl::Status status = ValidateKey(key, "key"); !status.ok()) {
      done(status);
      return;
    }
    requests.push_back(state::GetRequest{(*store)->prefix.Apply(key)});
  }
  (*store)->component->BulkGet(
      std::move(requests),
      [keys, done = std::move(done)](absl::StatusOr<std::vector<state::Item>> items) {
        if (!items.ok()) {
          done(items.status());
          return;
        }
        std::vector<GetResult> results;
        results.reserve(items->size());
        for (size_t i = 0; i < items->size() && i < keys.size(); ++i) {
          results.push_back(ToResult(keys[i], std::move((*items)[i])));
        }
        done(std::move(results));
      });
}

absl::StatusOr<state::SetRequest> StateApi::ToSet(const Store& store, WriteItem item) {
  OTTAVA_RETURN_IF_ERROR(ValidateKey(item.key, "key"));
  state::SetRequest request;
  OTTAVA_ASSIGN_OR_RETURN(request.ttl_seconds, ParseTtl(item.metadata));
  request.key = store.prefix.Apply(item.key);
  request.value = std::move(item.value);
  request.etag = std::move(item.etag);
  request.concurrency = item.concurrency;
  request.consistency = item.consistency;
  return request;
}

absl::StatusOr<state::DeleteRequest> StateApi::ToDelete(const Store& store, WriteItem item) {
  OTTAVA_RETURN_IF_ERROR(ValidateKey(item.key, "key"));
  state::DeleteRequest request;
  request.key = store.prefix.Apply(item.key);
  request.etag = std::move(item.etag);
  request.concurrency = item.concurrency;
  request.consistency = item.consistency;
  return request;
}

void StateApi::Save(std::string_view store_name, std::vector<WriteItem> items, DoneCallback done) {
  absl::StatusOr<const Store*> store = Resolve(store_name);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  // Validate everything first so a bad item fails the call before anything is written.
  std::vector<state::SetRequest> requests;
  requests.reserve(items.size());
  for (auto& item : items) {
    absl::StatusOr<state::SetRequest> request = ToSet(**store, std::move(item));
    if (!request.ok()) {
      done(request.status());
      return;
    }
    requests.push_back(std::move(*request));
  }
  if (requests.size() == 1) {
    (*store)->component->Set(std::move(requests[0]), std::move(done));
    return;
  }
  auto join = Join::Create(requests.size(), std::move(done));
  for (auto& request : requests) {
    (*store)->component->Set(std::move(request),
                             [join](const absl::Status& status) { join->Complete(status); });
  }
}

void StateApi::Delete(std::string_view store_name,
                      std::vector<WriteItem> items,
                      DoneCallback done) {
  absl::StatusOr<const Store*> store = Resolve(store_name);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  std::vector<state::DeleteRequest> requests;
  requests.reserve(items.size());
  for (auto& item : items) {
    absl::StatusOr<state::DeleteRequest> request = ToDelete(**store, std::move(item));
    if (!request.ok()) {
      done(request.status());
      return;
    }
    requests.push_back(std::move(*request));
  }
  if (requests.size() == 1) {
    (*store)->component->Delete(std::move(requests[0]), std::move(done));
    return;
  }
  auto join = Join::Create(requests.size(), std::move(done));
  for (auto& request : requests) {
    (*store)->component->Delete(std::move(request),
                                [join](const absl::Status& status) { join->Complete(status); });
  }
}

void StateApi::Transact(std::string_view store_name,
                        std::vector<Operation> operations,
                        DoneCallback done) {
  absl::StatusOr<const Store*> store = Resolve(store_name);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  if (!(*store)->component->features().transactional) {
    done(absl::UnimplementedError("state store '" + (*store)->name +
                                  "' does not support transactions"));
    return;
  }
  std::vector<state::Operation> ops;
  ops.reserve(operations.size());
  for (size_t i = 0; i < operations.size(); ++i) {
    Operation& op = operations[i];
    if (op.type == "upsert") {
      absl::StatusOr<state::SetRequest> request = ToSet(**store, std::move(op.item));
      if (!request.ok()) {
        done(absl::Status(request.status().code(), "operation " + std::to_string(i) + ": " +
                                                       std::string(request.status().message())));
        return;
      }
      ops.emplace_back(std::move(*request));
    } else if (op.type == "delete") {
      absl::StatusOr<state::DeleteRequest> request = ToDelete(**store, std::move(op.item));
      if (!request.ok()) {
        done(absl::Status(request.status().code(), "operation " + std::to_string(i) + ": " +
                                                       std::string(request.status().message())));
        return;
      }
      ops.emplace_back(std::move(*request));
    } else {
      // UNIMPLEMENTED, as Dapr (and Layotto, which inherits its code) answer it.
      done(absl::UnimplementedError("operation " + std::to_string(i) +
                                    ": unsupported operationType '" + op.type +
                                    "' (upsert|delete)"));
      return;
    }
  }
  (*store)->component->Transact(std::move(ops), std::move(done));
}

}  // namespace ottava::runtime::api
