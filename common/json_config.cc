#include "common/json_config.h"

namespace ottava::config {

std::string JoinPointer(const std::string& pointer, std::string_view key) {
  std::string out = pointer;
  out += '/';
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

absl::Status ConfigError(const std::string& pointer, std::string_view reason) {
  return absl::InvalidArgumentError((pointer.empty() ? std::string("/") : pointer) + ": " +
                                    std::string(reason));
}

ObjectReader::ObjectReader(const nlohmann::json& object, std::string pointer)
    : object_(object), pointer_(std::move(pointer)) {}

absl::Status ObjectReader::CheckObject(const nlohmann::json& value, const std::string& pointer) {
  if (!value.is_object()) {
    return ConfigError(pointer, std::string("expected an object, got ") + value.type_name());
  }
  return absl::OkStatus();
}

const nlohmann::json* ObjectReader::Child(std::string_view key) {
  known_.emplace(key);
  auto it = object_.find(std::string(key));
  if (it == object_.end()) {
    return nullptr;
  }
  return &*it;
}

absl::Status ObjectReader::String(std::string_view key, std::string* out) {
  const nlohmann::json* value = Child(key);
  if (value == nullptr) {
    return absl::OkStatus();
  }
  if (!value->is_string()) {
    return ConfigError(PointerOf(key), std::string("expected a string, got ") + value->type_name());
  }
  *out = value->get<std::string>();
  return absl::OkStatus();
}

absl::Status ObjectReader::RequiredString(std::string_view key, std::string* out) {
  if (object_.find(std::string(key)) == object_.end()) {
    known_.emplace(key);
    return ConfigError(PointerOf(key), "is required");
  }
  if (absl::Status status = String(key, out); !status.ok()) {
    return status;
  }
  if (out->empty()) {
    return ConfigError(PointerOf(key), "must not be empty");
  }
  return absl::OkStatus();
}

absl::Status ObjectReader::Int(std::string_view key, int64_t* out, int64_t min, int64_t max) {
  const nlohmann::json* value = Child(key);
  if (value == nullptr) {
    return absl::OkStatus();
  }
  if (!value->is_number_integer()) {
    return ConfigError(PointerOf(key),
                       std::string("expected an integer, got ") + value->type_name());
  }
  int64_t v = 0;
  if (value->is_number_unsigned()) {
    uint64_t u = value->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      return ConfigError(PointerOf(key), "is out of range");
    }
    v = static_cast<int64_t>(u);
  } else {
    v = value->get<int64_t>();
  }
  if (v < min || v > max) {
    return ConfigError(PointerOf(key), "must be between " + std::to_string(min) + " and " +
                                           std::to_string(max) + ", got " + std::to_string(v));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status ObjectReader::Bool(std::string_view key, bool* out) {
  const nlohmann::json* value = Child(key);
  if (value == nullptr) {
    return absl::OkStatus();
  }
  if (!value->is_boolean()) {
    return ConfigError(PointerOf(key),
                       std::string("expected a boolean, got ") + value->type_name());
  }
  *out = value->get<bool>();
  return absl::OkStatus();
}

absl::Status ObjectReader::StringMap(std::string_view key,
                                     std::map<std::string, std::string>* out) {
  const nlohmann::json* value = Child(key);
  if (value == nullptr) {
    return absl::OkStatus();
  }
  const std::string pointer = PointerOf(key);
  if (absl::Status status = CheckObject(*value, pointer); !status.ok()) {
    return status;
  }
  for (const auto& [k, v] : value->items()) {
    if (!v.is_string()) {
      return ConfigError(JoinPointer(pointer, k),
                         std::string("metadata values are strings, got ") + v.type_name());
    }
    (*out)[k] = v.get<std::string>();
  }
  return absl::OkStatus();
}

absl::Status ObjectReader::CheckNoUnknownKeys() const {
  for (const auto& [key, value] : object_.items()) {
    if (known_.find(key) == known_.end()) {
      return ConfigError(PointerOf(key), "unknown key");
    }
  }
  return absl::OkStatus();
}

}  // namespace ottava::config
