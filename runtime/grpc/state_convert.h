#pragma once

// Proto → API-core converters shared by the Layotto and Dapr front ends. The two protos declare
// StateItem and StateOptions with the same fields and enum value names (in different packages),
// so one template serves both.

#include <google/protobuf/map.h>
#include <google/protobuf/repeated_ptr_field.h>

#include <string>
#include <type_traits>
#include <vector>

#include "components/component.h"
#include "runtime/api/state_api.h"

namespace ottava::runtime::grpc_api {

inline components::Metadata ToMetadata(const google::protobuf::Map<std::string, std::string>& map) {
  return components::Metadata(map.begin(), map.end());
}

/// `Options` is the proto's StateOptions message type.
template <typename Options>
components::state::Concurrency ToConcurrency(typename Options::StateConcurrency c) {
  switch (c) {
    case Options::CONCURRENCY_FIRST_WRITE:
      return components::state::Concurrency::kFirstWrite;
    case Options::CONCURRENCY_LAST_WRITE:
      return components::state::Concurrency::kLastWrite;
    default:
      return components::state::Concurrency::kUnspecified;
  }
}

template <typename Options>
components::state::Consistency ToConsistency(typename Options::StateConsistency c) {
  switch (c) {
    case Options::CONSISTENCY_EVENTUAL:
      return components::state::Consistency::kEventual;
    case Options::CONSISTENCY_STRONG:
      return components::state::Consistency::kStrong;
    default:
      return components::state::Consistency::kUnspecified;
  }
}

/// `Item` is the proto's StateItem message type.
template <typename Item>
api::StateApi::WriteItem ToWriteItem(const Item& item) {
  using Options = std::decay_t<decltype(item.options())>;
  api::StateApi::WriteItem out;
  out.key = item.key();
  out.value = item.value();
  if (item.has_etag() && !item.etag().value().empty()) {
    out.etag = item.etag().value();
  }
  if (item.has_options()) {
    out.concurrency = ToConcurrency<Options>(item.options().concurrency());
    out.consistency = ToConsistency<Options>(item.options().consistency());
  }
  out.metadata = ToMetadata(item.metadata());
  return out;
}

template <typename Item>
std::vector<api::StateApi::WriteItem> ToWriteItems(
    const google::protobuf::RepeatedPtrField<Item>& states) {
  std::vector<api::StateApi::WriteItem> items;
  items.reserve(states.size());
  for (const auto& item : states) {
    items.push_back(ToWriteItem(item));
  }
  return items;
}

}  // namespace ottava::runtime::grpc_api
