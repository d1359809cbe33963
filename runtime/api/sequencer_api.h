#pragma once

// The Sequencer API core: validation, key prefix, lookup. STRONG always asks the component. WEAK
// is served from a per-(store, key) segment cache (segment_cache.h) sized by the component's
// `segmentSize` metadata (default 1000) when the component supports GetSegment, and by GetNextId
// otherwise. Ids one sidecar hands out for a key increase, WEAK and STRONG mixed.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "components/sequencer/sequencer.h"
#include "runtime/api/common.h"
#include "runtime/api/segment_cache.h"
#include "runtime/component_set.h"

namespace ottava::runtime::api {

class SequencerApi {
 public:
  SequencerApi(const ComponentSet& components, const std::string& app_id);

  /// Any thread; `done` runs on the calling thread or on the component's thread.
  void GetNextId(std::string_view store,
                 std::string_view key,
                 bool strong,
                 std::function<void(absl::StatusOr<int64_t>)> done);

 private:
  struct Store {
    std::string name;
    components::sequencer::Sequencer* component;
    KeyPrefix prefix;
    std::unique_ptr<SegmentCaches> weak_ids;
  };
  std::vector<Store> stores_;
};

}  // namespace ottava::runtime::api
