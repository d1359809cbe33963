#include "runtime/api/cloud_event.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"

namespace ottava::runtime::api {
namespace {

bool IsJsonContentType(std::string_view type) {
  type = type.substr(0, type.find(';'));
  return type == "application/json" || type == "text/json" ||
         (type.size() > 5 && type.substr(type.size() - 5) == "+json");
}

bool IsTextContentType(std::string_view type) {
  return type.empty() || type.substr(0, 5) == "text/" || IsJsonContentType(type) ||
         type.substr(0, 15) == "application/xml";
}

// nlohmann refuses to serialise invalid UTF-8; ask it the cheap way before committing.
bool IsUtf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    auto c = static_cast<uint8_t>(bytes[i]);
    size_t extra = 0;
    if (c < 0x80) {
      extra = 0;
    } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
      extra = 1;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
    } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
      extra = 3;
    } else {
      return false;
    }
    if (extra > 0 && i + extra >= bytes.size()) {
      return false;
    }
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<uint8_t>(bytes[i + k]) & 0xc0) != 0x80) {
        return false;
      }
    }
    i += extra + 1;
  }
  return true;
}

std::string StringOr(const nlohmann::json& object, const char* key, std::string_view fallback) {
  auto it = object.find(key);
  if (it != object.end() && it->is_string()) {
    return it->get<std::string>();
  }
  return std::string(fallback);
}

}  // namespace

std::string BuildEnvelope(const EnvelopeInput& input) {
  nlohmann::json envelope = nlohmann::json::object();
  const std::string_view content_type =
      input.content_type.empty() ? "text/plain" : input.content_type;
  envelope["specversion"] = "1.0";
  envelope["id"] = input.id;
  envelope["source"] = input.source;
  envelope["type"] = "com.dapr.event.sent";
  envelope["datacontenttype"] = content_type;
  envelope["topic"] = input.topic;
  envelope["pubsubname"] = input.pubsub_name;
  if (!input.traceparent.empty()) {
    envelope["traceparent"] = input.traceparent;
  }
  bool placed = false;
  if (IsJsonContentType(content_type)) {
    nlohmann::json data = nlohmann::json::parse(input.data, nullptr, /*allow_exceptions=*/false);
    if (!data.is_discarded()) {
      envelope["data"] = std::move(data);
      placed = true;
    }
  }
  if (!placed && IsTextContentType(input.content_type) && IsUtf8(input.data)) {
    envelope["data"] = input.data;
    placed = true;
  }
  if (!placed) {
    envelope["data_base64"] = Base64Encode(input.data);
  }
  return envelope.dump();
}

std::string RebuildEnvelope(const CloudEvent& event) {
  EnvelopeInput input;
  input.id = event.id;
  input.source = event.source;
  input.topic = event.topic;
  input.pubsub_name = event.pubsub_name;
  input.content_type = event.data_content_type;
  input.data = event.data;
  nlohmann::json envelope = nlohmann::json::parse(BuildEnvelope(input));
  if (!event.type.empty()) {
    envelope["type"] = event.type;
  }
  if (!event.spec_version.empty()) {
    envelope["specversion"] = event.spec_version;
  }
  for (const auto& [key, value] : event.extensions) {
    if (!envelope.contains(key) && IsUtf8(key) && IsUtf8(value)) {
      envelope[key] = value;
    }
  }
  return envelope.dump();
}

CloudEvent ParseEnvelope(std::string_view payload,
                         std::string_view fallback_id,
                         std::string_view topic,
                         std::string_view pubsub_name) {
  CloudEvent event;
  nlohmann::json envelope = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  const bool is_envelope = !envelope.is_discarded() && envelope.is_object() &&
                           envelope.contains("specversion") && envelope.contains("id");
  if (!is_envelope) {
    event.id = std::string(fallback_id);
    event.spec_version = "1.0";
    event.type = "com.dapr.event.sent";
    event.data_content_type = "application/octet-stream";
    event.data = std::string(payload);
    event.topic = std::string(topic);
    event.pubsub_name = std::string(pubsub_name);
    event.raw = true;
    return event;
  }
  event.id = StringOr(envelope, "id", fallback_id);
  event.source = StringOr(envelope, "source", "");
  event.type = StringOr(envelope, "type", "");
  event.spec_version = StringOr(envelope, "specversion", "1.0");
  event.data_content_type = StringOr(envelope, "datacontenttype", "");
  event.topic = StringOr(envelope, "topic", topic);
  event.pubsub_name = StringOr(envelope, "pubsubname", pubsub_name);
  if (auto it = envelope.find("data_base64"); it != envelope.end() && it->is_string()) {
    event.data = Base64Decode(it->get<std::string>()).value_or("");
  } else if (auto data = envelope.find("data"); data != envelope.end()) {
    event.data = data->is_string() && !IsJsonContentType(event.data_content_type)
                     ? data->get<std::string>()
                     : data->dump();
  }
  static constexpr const char* kKnown[] = {
      "id",    "source",     "type", "specversion", "datacontenttype",
      "topic", "pubsubname", "data", "data_base64"};
  for (const auto& [key, value] : envelope.items()) {
    bool known = false;
    for (const char* k : kKnown) {
      known = known || key == k;
    }
    if (!known && value.is_string()) {
      event.extensions[key] = value.get<std::string>();
    }
  }
  return event;
}

}  // namespace ottava::runtime::api
