#pragma once

// The Sequencer API core: validation, key prefix, lookup. STRONG always asks the component; WEAK
// asks it too today (a segment cache for remote stores comes with the Redis sequencer).

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "components/sequencer/sequencer.h"
#include "runtime/api/common.h"
#include "runtime/component_set.h"

namespace ottava::runtime::api {

class SequencerApi {
 public:
  SequencerApi(const ComponentSet& components, const std::string& app_id);

  void GetNextId(std::string_view store,
                 std::string_view key,
                 bool strong,
                 std::function<void(absl::StatusOr<int64_t>)> done);

 private:
  struct Store {
    std::string name;
    components::sequencer::Sequencer* component;
    KeyPrefix prefix;
  };
  std::vector<Store> stores_;
};

}  // namespace ottava::runtime::api
