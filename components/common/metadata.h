#pragma once

// Reading component metadata (string values, as in Dapr and Layotto) into typed settings.
//
// A MetadataReader validates each key it is asked for and remembers which keys were asked for,
// so a component can report the keys nobody read (a misspelt `consumerGroup`, a Dapr key we do
// not honour) instead of silently ignoring them. Errors name the metadata key and the bad value.
//
// Absent and empty values are the same: the setting keeps its default. Example:
//
//   MetadataReader reader(metadata);
//   OTTAVA_RETURN_IF_ERROR(reader.Int("queueDepth", 1, 100000, &settings.queue_depth));
//   OTTAVA_RETURN_IF_ERROR(reader.Duration("timeout", &settings.timeout));
//   reader.ReportUnknown(context.Label());

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "components/component.h"

namespace ottava::components {

/// Parses "5s", "250ms", "1m", "1h" or a plain number of milliseconds (non-negative).
absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text);

class MetadataReader {
 public:
  /// `metadata` must outlive the reader.
  explicit MetadataReader(const Metadata& metadata) : metadata_(metadata) {}

  /// The value of `key`, or null when it is absent or empty. Marks the key as read.
  const std::string* Find(std::string_view key);

  /// Copies a non-empty value into `*out`.
  absl::Status String(std::string_view key, std::string* out);
  /// An integer in [min, max].
  absl::Status Int(std::string_view key, int64_t min, int64_t max, int64_t* out);
  /// As Int, for unsigned settings (min must be >= 0).
  template <class T>
  absl::Status Uint(std::string_view key, int64_t min, int64_t max, T* out) {
    int64_t value = static_cast<int64_t>(*out);
    absl::Status status = Int(key, min, max, &value);
    *out = static_cast<T>(value);
    return status;
  }
  /// "true" or "false" (also "1"/"0", case as written by Dapr users: "True" is accepted).
  absl::Status Bool(std::string_view key, bool* out);
  /// A duration (see ParseDuration); `allow_zero` = false rejects "0".
  absl::Status Duration(std::string_view key,
                        std::chrono::milliseconds* out,
                        bool allow_zero = true);
  /// One of `allowed` (exact match).
  absl::Status OneOf(std::string_view key,
                     std::initializer_list<std::string_view> allowed,
                     std::string* out);
  /// Every key starting with `prefix`, with the prefix removed; marks them as read.
  std::map<std::string, std::string> Prefixed(std::string_view prefix);
  /// Marks keys as read without parsing them (accepted for compatibility, or read elsewhere).
  void Accept(std::initializer_list<std::string_view> keys);

  /// Keys present in the metadata that nothing read, sorted.
  std::vector<std::string> Unknown() const;
  /// Logs the unknown keys (one warning naming `label`), if any.
  void ReportUnknown(std::string_view label) const;

 private:
  absl::Status Bad(std::string_view key, const std::string& value, std::string_view expected) const;

  const Metadata& metadata_;
  std::set<std::string, std::less<>> read_;
};

}  // namespace ottava::components
