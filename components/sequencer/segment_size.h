#pragma once

// The `segmentSize` metadata every sequencer accepts: how many ids the runtime's WEAK-mode cache
// reserves with one GetSegment call (runtime/api/segment_cache.h). Factories validate it so a bad
// value fails startup; the runtime reads it again to size its cache.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/status.h"
#include "components/common/metadata.h"
#include "components/component.h"

namespace ottava::components::sequencer {

inline constexpr int64_t kDefaultSegmentSize = 1000;
inline constexpr int64_t kMaxSegmentSize = 1'000'000'000;

/// Reads metadata `segmentSize`: an integer in [1, 1e9]; 1000 when absent or empty. Errors name
/// the key.
inline absl::StatusOr<int64_t> ParseSegmentSize(const Metadata& metadata) {
  MetadataReader reader(metadata);
  int64_t size = kDefaultSegmentSize;
  OTTAVA_RETURN_IF_ERROR(reader.Int("segmentSize", 1, kMaxSegmentSize, &size));
  return size;
}

}  // namespace ottava::components::sequencer
