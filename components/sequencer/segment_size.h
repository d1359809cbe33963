#pragma once

// The `segmentSize` metadata every sequencer accepts: how many ids the runtime's WEAK-mode cache
// reserves with one GetSegment call (runtime/api/segment_cache.h). Factories validate it so a bad
// value fails startup; the runtime reads it again to size its cache.

#include <charconv>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "components/component.h"

namespace ottava::components::sequencer {

inline constexpr int64_t kDefaultSegmentSize = 1000;
inline constexpr int64_t kMaxSegmentSize = 1'000'000'000;

/// Reads metadata `segmentSize`: an integer in [1, 1e9]; 1000 when absent or empty. Errors name
/// the key.
inline absl::StatusOr<int64_t> ParseSegmentSize(const Metadata& metadata) {
  auto it = metadata.find("segmentSize");
  if (it == metadata.end() || it->second.empty()) {
    return kDefaultSegmentSize;
  }
  const std::string& text = it->second;
  int64_t size = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), size);
  if (ec != std::errc() || end != text.data() + text.size() || size < 1 || size > kMaxSegmentSize) {
    return absl::InvalidArgumentError("metadata segmentSize: '" + text +
                                      "' must be an integer between 1 and " +
                                      std::to_string(kMaxSegmentSize));
  }
  return size;
}

}  // namespace ottava::components::sequencer
