#pragma once

// The `biggerThan.<key>` metadata every sequencer accepts: the first id issued for <key> is
// greater than the given floor. A key the runtime prefixed ("<prefix>||<key>") also matches the
// floor of its unprefixed name.

#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "components/component.h"

namespace ottava::components::sequencer {

/// Floor per key, from `biggerThan.<key>`.
using Floors = std::map<std::string, int64_t, std::less<>>;

/// Reads every `biggerThan.<key>` entry of `metadata` (non-negative integers); other keys are
/// ignored. Errors name the metadata key.
inline absl::StatusOr<Floors> ParseFloors(const Metadata& metadata) {
  constexpr std::string_view kBiggerThanPrefix = "biggerThan.";
  Floors floors;
  for (const auto& [name, text] : metadata) {
    if (!name.starts_with(kBiggerThanPrefix)) {
      continue;
    }
    std::string key = name.substr(kBiggerThanPrefix.size());
    if (key.empty()) {
      return absl::InvalidArgumentError("metadata " + name + ": names no key");
    }
    int64_t floor = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), floor);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || floor < 0) {
      return absl::InvalidArgumentError("metadata " + name +
                                        ": expected a non-negative integer, got '" + text + "'");
    }
    floors[key] = floor;
  }
  return floors;
}

/// The floor of `key` (or of the part after its last "||"), 0 when none is configured.
inline int64_t FloorOf(const Floors& floors, const std::string& key) {
  if (floors.empty()) {
    return 0;
  }
  if (auto it = floors.find(key); it != floors.end()) {
    return it->second;
  }
  if (size_t pos = key.rfind("||"); pos != std::string::npos) {
    std::string_view user_key = std::string_view(key).substr(pos + 2);
    if (auto it = floors.find(user_key); it != floors.end()) {
      return it->second;
    }
  }
  return 0;
}

}  // namespace ottava::components::sequencer
