#pragma once

// Strict reading of JSON configuration objects. Every reader remembers which keys it consumed so
// that unknown keys are reported; every error names the JSON pointer (RFC 6901) of the bad value.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ottava::config {

/// Appends `key` to `pointer`, escaping `~` and `/` as RFC 6901 requires.
std::string JoinPointer(const std::string& pointer, std::string_view key);

/// An INVALID_ARGUMENT status of the form "<pointer>: <reason>".
absl::Status ConfigError(const std::string& pointer, std::string_view reason);

/// Reads one JSON object. The object must outlive the reader.
class ObjectReader {
 public:
  /// `pointer` is where the object sits in its document ("" for the root).
  ObjectReader(const nlohmann::json& object, std::string pointer);

  /// Fails unless the value is a JSON object.
  static absl::Status CheckObject(const nlohmann::json& value, const std::string& pointer);

  /// Optional string; `out` keeps its value when the key is absent.
  absl::Status String(std::string_view key, std::string* out);
  /// Required non-empty string.
  absl::Status RequiredString(std::string_view key, std::string* out);
  /// Optional integer within [min, max].
  absl::Status Int(std::string_view key, int64_t* out, int64_t min, int64_t max);
  /// Optional boolean.
  absl::Status Bool(std::string_view key, bool* out);
  /// Optional object whose values are all strings (component metadata).
  absl::Status StringMap(std::string_view key, std::map<std::string, std::string>* out);
  /// The value under `key`, or nullptr; marks the key as known.
  const nlohmann::json* Child(std::string_view key);
  /// The pointer of `key` inside this object.
  std::string PointerOf(std::string_view key) const { return JoinPointer(pointer_, key); }
  const std::string& pointer() const { return pointer_; }
  /// Fails naming the first key that no accessor asked for.
  absl::Status CheckNoUnknownKeys() const;

 private:
  const nlohmann::json& object_;
  std::string pointer_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace ottava::config
