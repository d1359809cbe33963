#include "components/common/metadata.h"

#include <charconv>

#include "common/logging.h"

namespace ottava::components {

absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  int64_t multiplier = 1;
  std::string_view number = text;
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    number = text.substr(0, text.size() - 2);
  } else if (!text.empty() && text.back() == 's') {
    multiplier = 1000;
    number = text.substr(0, text.size() - 1);
  } else if (!text.empty() && text.back() == 'm') {
    multiplier = 60000;
    number = text.substr(0, text.size() - 1);
  } else if (!text.empty() && text.back() == 'h') {
    multiplier = 3600000;
    number = text.substr(0, text.size() - 1);
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  // The bound keeps value * multiplier far from overflow (about 292 years in hours).
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() || value < 0 ||
      value > (int64_t{1} << 40)) {
    return absl::InvalidArgumentError("'" + std::string(text) +
                                      "' is not a duration (e.g. 5s, 250ms)");
  }
  return std::chrono::milliseconds(value * multiplier);
}

const std::string* MetadataReader::Find(std::string_view key) {
  auto it = metadata_.find(std::string(key));
  if (it == metadata_.end()) {
    return nullptr;
  }
  read_.emplace(key);
  return it->second.empty() ? nullptr : &it->second;
}

absl::Status MetadataReader::Bad(std::string_view key,
                                 const std::string& value,
                                 std::string_view expected) const {
  return absl::InvalidArgumentError("metadata " + std::string(key) + ": '" + value + "' " +
                                    std::string(expected));
}

absl::Status MetadataReader::String(std::string_view key, std::string* out) {
  if (const std::string* value = Find(key)) {
    *out = *value;
  }
  return absl::OkStatus();
}

absl::Status MetadataReader::Int(std::string_view key, int64_t min, int64_t max, int64_t* out) {
  const std::string* text = Find(key);
  if (text == nullptr) {
    return absl::OkStatus();
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return Bad(key, *text,
               "must be an integer between " + std::to_string(min) + " and " + std::to_string(max));
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status MetadataReader::Bool(std::string_view key, bool* out) {
  const std::string* text = Find(key);
  if (text == nullptr) {
    return absl::OkStatus();
  }
  if (*text == "true" || *text == "True" || *text == "TRUE" || *text == "1") {
    *out = true;
  } else if (*text == "false" || *text == "False" || *text == "FALSE" || *text == "0") {
    *out = false;
  } else {
    return Bad(key, *text, "must be true or false");
  }
  return absl::OkStatus();
}

absl::Status MetadataReader::Duration(std::string_view key,
                                      std::chrono::milliseconds* out,
                                      bool allow_zero) {
  const std::string* text = Find(key);
  if (text == nullptr) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::chrono::milliseconds> value = ParseDuration(*text);
  if (!value.ok() || (!allow_zero && value->count() == 0)) {
    return Bad(key, *text,
               allow_zero ? "is not a duration (e.g. 5s, 250ms)"
                          : "is not a positive duration (e.g. 5s, 250ms)");
  }
  *out = *value;
  return absl::OkStatus();
}

absl::Status MetadataReader::OneOf(std::string_view key,
                                   std::initializer_list<std::string_view> allowed,
                                   std::string* out) {
  const std::string* text = Find(key);
  if (text == nullptr) {
    return absl::OkStatus();
  }
  std::string names;
  for (std::string_view candidate : allowed) {
    if (*text == candidate) {
      *out = *text;
      return absl::OkStatus();
    }
    names += names.empty() ? "" : ", ";
    names += candidate;
  }
  return Bad(key, *text, "must be one of: " + names);
}

std::map<std::string, std::string> MetadataReader::Prefixed(std::string_view prefix) {
  std::map<std::string, std::string> out;
  for (auto it = metadata_.lower_bound(std::string(prefix));
       it != metadata_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
    read_.insert(it->first);
    out.emplace(it->first.substr(prefix.size()), it->second);
  }
  return out;
}

void MetadataReader::Accept(std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    read_.emplace(key);
  }
}

std::vector<std::string> MetadataReader::Unknown() const {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : metadata_) {
    if (!read_.contains(key)) {
      unknown.push_back(key);
    }
  }
  return unknown;
}

void MetadataReader::ReportUnknown(std::string_view label) const {
  std::vector<std::string> unknown = Unknown();
  if (unknown.empty()) {
    return;
  }
  std::string keys;
  for (const std::string& key : unknown) {
    keys += keys.empty() ? "" : ", ";
    keys += key;
  }
  OTTAVA_LOG(Components, warn, "{}: ignoring unknown metadata keys: {}", label, keys);
}

}  // namespace ottava::components
