#pragma once

// The Sequencer building block: unique, increasing 64-bit ids per key.
//
// Keys reach the store already prefixed (`sequencer||<app-id>||<key>`). Callbacks run exactly
// once, inline or on the component's thread, and must not block.

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "components/component.h"

namespace ottava::components::sequencer {

struct NextIdRequest {
  std::string key;
  /// STRONG: strictly increasing across all callers. WEAK: unique, increasing per caller.
  bool strong = false;
};

/// A contiguous range [first, last] of ids reserved for one caller.
struct Segment {
  int64_t first = 0;
  int64_t last = 0;
};

class Sequencer : public Component {
 public:
  /// The next id of `key`; ids start at 1 (or above the `biggerThan` floor of that key).
  virtual void GetNextId(NextIdRequest request,
                         std::function<void(absl::StatusOr<int64_t>)> done) = 0;
  /// Reserves `size` consecutive ids of `key` for a local WEAK cache. UNIMPLEMENTED when the
  /// store has no cheaper way than GetNextId.
  virtual void GetSegment(std::string key,
                          int64_t size,
                          std::function<void(absl::StatusOr<Segment>)> done) {
    (void)key;
    (void)size;
    done(absl::UnimplementedError("segments not supported"));
  }
};

using SequencerPtr = std::unique_ptr<Sequencer>;
using SequencerFactory = Factory<Sequencer>;

}  // namespace ottava::components::sequencer
