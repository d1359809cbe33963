#include "sdk/cli_format.h"

#include <array>

namespace ottava::sdk::cli {
namespace {

constexpr std::string_view kTxSyntax = "expected upsert[@ETAG]:KEY=VALUE or delete[@ETAG]:KEY";

Json MetadataJson(const Metadata& metadata) {
  Json object = Json::object();
  for (const auto& [key, value] : metadata) {
    object[key] = value;
  }
  return object;
}

void AppendLine(std::string& text, std::string_view line) {
  text.append(line);
  if (line.empty() || line.back() != '\n') {
    text.push_back('\n');
  }
}

Json StateJson(const std::string& key,
               bool found,
               const std::string& value,
               const std::string& etag,
               const Metadata& metadata) {
  Json object = {{"key", key}, {"found", found}};
  if (found) {
    PutBytes(object, "value", value);
    object["etag"] = etag;
    object["metadata"] = MetadataJson(metadata);
  }
  return object;
}

// A body that is not JSON still tells something; keep it as text rather than dropping it.
Json ProbeJson(const HttpProbe& probe) {
  Json object = {{"http_status", probe.http_status}, {"status", ProbeStatus(probe)}};
  Json body = Json::parse(probe.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object()) {
    for (const auto& [key, value] : body.items()) {
      if (key != "status") {
        object[key] = value;
      }
    }
  } else if (!probe.body.empty()) {
    object["body"] = probe.body;
  }
  return object;
}

std::string ComponentStatus(const Json& value) {
  if (value.is_string()) {
    return value.get<std::string>();
  }
  if (value.is_object() && value.contains("status") && value["status"].is_string()) {
    return value["status"].get<std::string>();
  }
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError("expected KEY=VALUE, got '" + std::string(text) + "'");
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

absl::StatusOr<Metadata> ParseMetadata(const std::vector<std::string>& pairs) {
  Metadata metadata;
  for (const auto& pair : pairs) {
    auto parsed = ParseKeyValue(pair);
    if (!parsed.ok()) {
      return parsed.status();
    }
    metadata[parsed->first] = std::move(parsed->second);
  }
  return metadata;
}

absl::StatusOr<StateOperation> ParseTxOperation(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError("bad operation '" + std::string(text) +
                                      "': " + std::string(why));
  };
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return bad(kTxSyntax);
  }
  std::string_view verb = text.substr(0, colon);
  const std::string_view rest = text.substr(colon + 1);
  std::optional<std::string> etag;
  if (const size_t at = verb.find('@'); at != std::string_view::npos) {
    if (at + 1 == verb.size()) {
      return bad("empty etag after '@'");
    }
    etag = std::string(verb.substr(at + 1));
    verb = verb.substr(0, at);
  }
  if (verb == "delete") {
    if (rest.empty()) {
      return bad("empty key");
    }
    return StateOperation::Delete(std::string(rest), std::move(etag));
  }
  if (verb != "upsert") {
    return bad(kTxSyntax);
  }
  const size_t eq = rest.find('=');
  if (eq == std::string_view::npos) {
    return bad("an upsert needs KEY=VALUE");
  }
  if (eq == 0) {
    return bad("empty key");
  }
  StateWrite item;
  item.key = std::string(rest.substr(0, eq));
  item.value = std::string(rest.substr(eq + 1));
  item.etag = std::move(etag);
  return StateOperation::Upsert(std::move(item));
}

absl::StatusOr<EventStatus> ParseEventStatus(std::string_view text) {
  if (text == "success") {
    return EventStatus::kSuccess;
  }
  if (text == "retry") {
    return EventStatus::kRetry;
  }
  if (text == "drop") {
    return EventStatus::kDrop;
  }
  return absl::InvalidArgumentError("expected success, retry or drop, got '" + std::string(text) +
                                    "'");
}

std::string FormatError(const absl::Status& status) {
  return "error: " + absl::StatusCodeToString(status.code()) + ": " + std::string(status.message());
}

bool IsValidUtf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<uint8_t>(bytes[i]);
    size_t length = 0;
    uint32_t code_point = 0;
    uint32_t min_code_point = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    }
    if ((lead & 0xE0) == 0xC0) {
      length = 2;
      code_point = lead & 0x1F;
      min_code_point = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      code_point = lead & 0x0F;
      min_code_point = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      code_point = lead & 0x07;
      min_code_point = 0x10000;
    } else {
      return false;
    }
    if (i + length > bytes.size()) {
      return false;
    }
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<uint8_t>(bytes[i + k]);
      if ((next & 0xC0) != 0x80) {
        return false;
      }
      code_point = (code_point << 6) | (next & 0x3F);
    }
    if (code_point < min_code_point || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t group = (static_cast<uint8_t>(bytes[i]) << 16) |
                           (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                           static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kAlphabet[(group >> 18) & 0x3F]);
    out.push_back(kAlphabet[(group >> 12) & 0x3F]);
    out.push_back(kAlphabet[(group >> 6) & 0x3F]);
    out.push_back(kAlphabet[group & 0x3F]);
  }
  const size_t left = bytes.size() - i;
  if (left > 0) {
    uint32_t group = static_cast<uint8_t>(bytes[i]) << 16;
    if (left == 2) {
      group |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    }
    out.push_back(kAlphabet[(group >> 18) & 0x3F]);
    out.push_back(kAlphabet[(group >> 12) & 0x3F]);
    out.push_back(left == 2 ? kAlphabet[(group >> 6) & 0x3F] : '=');
    out.push_back('=');
  }
  return out;
}

void PutBytes(Json& object, const std::string& name, const std::string& bytes) {
  if (IsValidUtf8(bytes)) {
    object[name] = bytes;
  } else {
    object[name + "_base64"] = Base64Encode(bytes);
  }
}

Json ConfigurationItemJson(const ConfigurationItem& item) {
  return {{"key", item.key},
          {"content", item.content},
          {"group", item.group},
          {"label", item.label},
          {"tags", MetadataJson(item.tags)},
          {"metadata", MetadataJson(item.metadata)}};
}

Rendered RenderHello(const std::string& greeting) {
  Rendered out;
  out.json = {{"hello", greeting}};
  AppendLine(out.text, greeting);
  return out;
}

Rendered RenderState(const std::string& key, const std::optional<StateEntry>& entry) {
  Rendered out;
  if (!entry.has_value()) {
    out.json = StateJson(key, false, "", "", {});
    out.note = "not found: " + key + "\n";
    return out;
  }
  out.json = StateJson(key, true, entry->value, entry->etag, entry->metadata);
  AppendLine(out.text, entry->value);
  AppendLine(out.text, "etag: " + entry->etag);
  for (const auto& [name, value] : entry->metadata) {
    AppendLine(out.text, name + ": " + value);
  }
  return out;
}

Rendered RenderBulkState(const std::vector<BulkStateEntry>& entries) {
  Rendered out;
  Json items = Json::array();
  for (const auto& entry : entries) {
    Json item = StateJson(entry.key, entry.found, entry.value, entry.etag, entry.metadata);
    if (!entry.error.empty()) {
      item["error"] = entry.error;
      AppendLine(out.text, entry.key + ": (error: " + entry.error + ")");
    } else if (entry.found) {
      AppendLine(out.text, entry.key + ": " + entry.value + " (etag: " + entry.etag + ")");
    } else {
      AppendLine(out.text, entry.key + ": (not found)");
    }
    items.push_back(std::move(item));
  }
  out.json = {{"items", std::move(items)}};
  return out;
}

Rendered RenderOk(const Json& fields) {
  Rendered out;
  out.json = {{"ok", true}};
  for (const auto& [key, value] : fields.items()) {
    out.json[key] = value;
  }
  out.text = "OK\n";
  return out;
}

Rendered RenderTryLock(const std::string& resource, const std::string& owner, bool acquired) {
  Rendered out;
  out.json = {{"resource", resource}, {"owner", owner}, {"acquired", acquired}};
  out.text = acquired ? "acquired\n" : "not acquired\n";
  return out;
}

Rendered RenderLockStatus(const std::string& resource,
                          const std::string& owner,
                          LockStatus status,
                          bool renew) {
  Rendered out;
  out.json = {{"resource", resource}, {"owner", owner}, {"status", LockStatusName(status)}};
  switch (status) {
    case LockStatus::kSuccess:
      out.text = renew ? "renewed\n" : "unlocked\n";
      break;
    case LockStatus::kLockDoesNotExist:
      out.text = "lock does not exist\n";
      break;
    case LockStatus::kLockBelongsToOthers:
      out.text = "lock belongs to another owner\n";
      break;
    case LockStatus::kInternalError:
      out.text = "internal error\n";
      break;
  }
  return out;
}

Rendered RenderNextId(const std::string& key, int64_t id) {
  Rendered out;
  out.json = {{"key", key}, {"id", id}};
  out.text = std::to_string(id) + "\n";
  return out;
}

Rendered RenderConfiguration(const std::vector<ConfigurationItem>& items,
                             const std::vector<std::string>& requested_keys) {
  Rendered out;
  Json array = Json::array();
  for (const auto& item : items) {
    array.push_back(ConfigurationItemJson(item));
    std::string line = item.key + ": " + item.content;
    if (!item.group.empty() || !item.label.empty()) {
      line += " (group: " + item.group + ", label: " + item.label + ")";
    }
    AppendLine(out.text, line);
  }
  out.json = {{"items", std::move(array)}};
  std::string missing;
  for (const auto& key : requested_keys) {
    bool found = false;
    for (const auto& item : items) {
      found = found || item.key == key;
    }
    if (!found) {
      missing += (missing.empty() ? "" : ", ") + key;
    }
  }
  if (!missing.empty()) {
    out.note = "not found: " + missing + "\n";
  }
  return out;
}

Rendered RenderConfigurationUpdate(const ConfigurationUpdate& update) {
  Rendered out;
  Json array = Json::array();
  for (const auto& item : update.items) {
    array.push_back(ConfigurationItemJson(item));
    AppendLine(out.text, item.key + ": " + (item.content.empty() ? "(deleted)" : item.content));
  }
  out.json = {{"store", update.store_name}, {"items", std::move(array)}};
  return out;
}

Rendered RenderTopicEvent(const TopicEvent& event) {
  Rendered out;
  out.json = {{"id", event.id},
              {"source", event.source},
              {"type", event.type},
              {"spec_version", event.spec_version},
              {"data_content_type", event.data_content_type},
              {"topic", event.topic},
              {"pubsub_name", event.pubsub_name}};
  PutBytes(out.json, "data", event.data);
  out.json["metadata"] = MetadataJson(event.metadata);
  AppendLine(out.text, "[" + event.topic + "] " + event.id + ": " + event.data);
  return out;
}

std::string ProbeStatus(const HttpProbe& probe) {
  Json body = Json::parse(probe.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("status") && body["status"].is_string()) {
    return body["status"].get<std::string>();
  }
  return probe.http_status == 200 ? "UP" : "DOWN";
}

bool ProbeIsUp(const HttpProbe& probe) {
  return probe.http_status == 200 && ProbeStatus(probe) == "UP";
}

Rendered RenderHealth(const HttpProbe& liveness, const HttpProbe& readiness) {
  Rendered out;
  out.json = {{"up", ProbeIsUp(liveness) && ProbeIsUp(readiness)},
              {"liveness", ProbeJson(liveness)},
              {"readiness", ProbeJson(readiness)}};
  const std::array<std::pair<std::string_view, const HttpProbe*>, 2> probes = {
      {{"liveness", &liveness}, {"readiness", &readiness}}};
  for (const auto& [name, probe] : probes) {
    std::string line = std::string(name) + ": " + ProbeStatus(*probe);
    // 200 and 503 are the contract; anything else is worth showing.
    if (probe->http_status != 200 && probe->http_status != 503) {
      line += " (HTTP " + std::to_string(probe->http_status) + ")";
    }
    AppendLine(out.text, line);
  }
  Json body = Json::parse(readiness.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("components") && body["components"].is_object()) {
    for (const auto& [name, value] : body["components"].items()) {
      AppendLine(out.text, "  " + name + ": " + ComponentStatus(value));
    }
  }
  return out;
}

void Print(const Rendered& rendered, bool json, std::ostream& out, std::ostream& err) {
  if (json) {
    // Replacement instead of an exception: PutBytes already kept values intact, and a stray
    // invalid byte in a key or header must not abort the command.
    out << rendered.json.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  } else {
    out << rendered.text;
  }
  out.flush();
  if (!rendered.note.empty()) {
    err << rendered.note;
    err.flush();
  }
}

}  // namespace ottava::sdk::cli
