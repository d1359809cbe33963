// The explicit list of builtin stream filters (one line per filter) and the registry.

#include "common/assert.h"
#include "mesh/filter/fault/fault_filter.h"
#include "mesh/filter/filter.h"

namespace ottava::mesh {

absl::Status FilterRegistry::Add(FilterFactoryPtr factory) {
  std::string name(factory->name());
  if (factories_.count(name) != 0) {
    return absl::AlreadyExistsError("stream filter '" + name + "' is registered twice");
  }
  factories_.emplace(std::move(name), std::move(factory));
  return absl::OkStatus();
}

const FilterFactory* FilterRegistry::Find(std::string_view name) const {
  auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : it->second.get();
}

void RegisterBuiltinFilters(FilterRegistry& registry) {
  absl::Status status = registry.Add(CreateFaultFilterFactory());
  OTTAVA_RELEASE_ASSERT(status.ok(), "duplicate builtin stream filter");
}

}  // namespace ottava::mesh
