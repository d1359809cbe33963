#pragma once

// The pure logic of ottavactl: parsing of command arguments (metadata pairs, transaction
// operations) and the rendering of every result, both as readable text and as one JSON object. No
// I/O except Print(); everything here is unit-tested in sdk/ottavactl_test.cc.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sdk/client.h"

namespace ottava::sdk::cli {

using Json = nlohmann::ordered_json;

/// Process exit codes of ottavactl.
inline constexpr int kExitOk = 0;
/// A gRPC or HTTP error, an unhealthy sidecar, or a stream that ended before --max results.
inline constexpr int kExitError = 1;
/// Bad command line (unknown option, missing argument, malformed K=V or operation).
inline constexpr int kExitUsage = 2;

/// Defaults: the sidecar's ports and the component names of configs/quickstart.json.
inline constexpr std::string_view kDefaultAddress = "127.0.0.1:34904";
inline constexpr std::string_view kDefaultActuator = "127.0.0.1:34999";
inline constexpr std::string_view kDefaultStateStore = "state";
inline constexpr std::string_view kDefaultLockStore = "lock";
inline constexpr std::string_view kDefaultSequencer = "sequencer";
inline constexpr std::string_view kDefaultConfigStore = "config";
inline constexpr std::string_view kDefaultPubSub = "pubsub";
/// Per-call deadline when --timeout is not given.
inline constexpr double kDefaultTimeoutSeconds = 5.0;

/// What a command prints: `json` in --json mode (one line), `text` otherwise (printed as is);
/// `note` goes to stderr in both modes.
struct Rendered {
  Json json;
  std::string text;
  std::string note;
};

/// Parses "KEY=VALUE" (split at the first '='; KEY non-empty, VALUE may be empty).
absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text);

/// Parses repeated "KEY=VALUE" options into metadata; a repeated KEY keeps the last value.
absl::StatusOr<Metadata> ParseMetadata(const std::vector<std::string>& pairs);

/// Parses one `state tx` operation: "upsert[@ETAG]:KEY=VALUE" or "delete[@ETAG]:KEY". The key
/// ends at the first '=' of an upsert; a delete takes everything after the ':' as the key.
absl::StatusOr<StateOperation> ParseTxOperation(std::string_view text);

/// "success" | "retry" | "drop".
absl::StatusOr<EventStatus> ParseEventStatus(std::string_view text);

/// The stderr line for a failed call: "error: <CODE>: <message>", e.g.
/// "error: ABORTED: etag mismatch". No trailing newline.
std::string FormatError(const absl::Status& status);

/// True when `bytes` is well-formed UTF-8 (no overlong forms, surrogates or values > U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

/// Standard base64 (RFC 4648, with padding).
std::string Base64Encode(std::string_view bytes);

/// Sets object[name] to `bytes` when it is valid UTF-8, else object[name + "_base64"] to its
/// base64, so JSON output never loses or mangles binary values.
void PutBytes(Json& object, const std::string& name, const std::string& bytes);

/// The JSON form of a configuration item:
/// {"key","content","group","label","tags":{},"metadata":{}}.
Json ConfigurationItemJson(const ConfigurationItem& item);

/// `hello`: text "<greeting>\n"; JSON {"hello"}.
Rendered RenderHello(const std::string& greeting);

/// `state get`: text "<value>\netag: <etag>\n" plus one "<k>: <v>" line per metadata entry; an
/// absent key prints nothing and notes "not found: <key>" on stderr. JSON
/// {"key","found":true,"value"|"value_base64","etag","metadata"} or {"key","found":false}.
Rendered RenderState(const std::string& key, const std::optional<StateEntry>& entry);

/// `state bulk`: one text line per key ("<key>: <value> (etag: <etag>)", "<key>: (not found)" or
/// "<key>: (error: <message>)"). JSON {"items":[...]} with the fields of RenderState plus "error".
Rendered RenderBulkState(const std::vector<BulkStateEntry>& entries);

/// Commands without a result (set, del, tx, config set/del, publish): text "OK\n"; JSON
/// {"ok":true} followed by `fields`.
Rendered RenderOk(const Json& fields = Json::object());

/// `lock try`: text "acquired\n" or "not acquired\n"; JSON {"resource","owner","acquired"}.
Rendered RenderTryLock(const std::string& resource, const std::string& owner, bool acquired);

/// `lock unlock` (renew = false) and `lock renew` (renew = true): text "unlocked" / "renewed",
/// "lock does not exist", "lock belongs to another owner" or "internal error"; JSON
/// {"resource","owner","status":"<LockStatusName>"}.
Rendered RenderLockStatus(const std::string& resource,
                          const std::string& owner,
                          LockStatus status,
                          bool renew);

/// `seq next`: text "<id>\n"; JSON {"key","id"}.
Rendered RenderNextId(const std::string& key, int64_t id);

/// `config get`: one line "<key>: <content>" per item (with " (group: G, label: L)" when set);
/// keys that were asked for but not returned are noted on stderr. JSON {"items":[...]}.
Rendered RenderConfiguration(const std::vector<ConfigurationItem>& items,
                             const std::vector<std::string>& requested_keys);

/// `config watch`, one per update: a line per item ("<key>: <content>" or "<key>: (deleted)");
/// JSON {"store","items":[...]}.
Rendered RenderConfigurationUpdate(const ConfigurationUpdate& update);

/// `subscribe`, one per event: text "[<topic>] <id>: <data>\n"; JSON {"id","source","type",
/// "spec_version","data_content_type","topic","pubsub_name","data"|"data_base64","metadata"}.
Rendered RenderTopicEvent(const TopicEvent& event);

/// One actuator answer.
struct HttpProbe {
  int http_status = 0;
  std::string body;
};

/// The probe's status: the body's "status" field, else UP for HTTP 200 and DOWN otherwise.
std::string ProbeStatus(const HttpProbe& probe);

/// True when the probe answered HTTP 200 with status UP.
bool ProbeIsUp(const HttpProbe& probe);

/// `health`: text "liveness: UP\nreadiness: UP\n" followed by "  <component>: <status>" lines of
/// the readiness body; JSON {"up", "liveness":{"http_status","status",...body},
/// "readiness":{...}}.
Rendered RenderHealth(const HttpProbe& liveness, const HttpProbe& readiness);

/// Writes `rendered` to `out` (JSON line or text) and its note to `err`, then flushes both so
/// streamed results reach a pipe at once.
void Print(const Rendered& rendered, bool json, std::ostream& out, std::ostream& err);

}  // namespace ottava::sdk::cli
