#pragma once

// Protocol-neutral request and response heads that every codec decodes into and encodes from.
// Bodies travel separately, as Buffer chunks, so a large body streams through without being held
// whole. A codec removes its own framing and hop-by-hop headers when it decodes (for HTTP/1.1:
// connection, keep-alive, proxy-connection, transfer-encoding, te, trailer, upgrade, expect and
// every header the Connection header names) and writes its own framing when it encodes.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "common/free_list.h"

namespace ottava::mesh {

/// Ordered header list. Names are stored lower-case; lookups ignore case. Duplicates are kept in
/// order (HTTP allows repeated headers).
class HeaderMap {
 public:
  using Entry = std::pair<std::string, std::string>;

  /// Appends a header; `name` is lower-cased.
  void Add(std::string_view name, std::string_view value);
  /// Appends a header keeping `name` as given: protocols whose keys are case-sensitive (Bolt's
  /// header map) pass them through unchanged. Lookups still ignore case.
  void AddCased(std::string_view name, std::string_view value);
  /// Value of the first header named `name`, or nullptr.
  const std::string* Get(std::string_view name) const;
  /// Replaces every header named `name` by one with `value`.
  void Set(std::string_view name, std::string_view value);
  /// Removes every header named `name`; returns how many were removed.
  size_t Remove(std::string_view name);
  /// Appends `value` to the first header named `name` as ", value", or adds it.
  void Append(std::string_view name, std::string_view value);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  /// Bytes of names and values together (for size limits).
  size_t ByteSize() const;
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  void Clear() {
    entries_.clear();
    from_wire_ = false;
  }

  /// Called by a codec that filled this map from a frame whose serialised header map it keeps
  /// (RpcHead::wire_meta()): until the next change, from_wire() says those bytes still describe
  /// this map, so an encoder may send them as they are instead of serialising the entries again.
  void MarkFromWire() { from_wire_ = true; }
  /// Whether the map is unchanged since MarkFromWire (every mutating call clears it).
  bool from_wire() const { return from_wire_; }

 private:
  // The first entry inline: an RPC request's map is often one header (Bolt's `service`), and a
  // proxy makes one map per request.
  absl::InlinedVector<Entry, 1> entries_;
  bool from_wire_ = false;
};

/// The application protocol a listener or cluster speaks.
enum class Protocol : uint8_t { kHttp1, kBolt, kDubbo };

/// Why the mesh answered a request itself (kNone: the upstream's response was forwarded).
enum class LocalReplyReason : uint8_t {
  kNone,
  kNoRoute,         // 404: no route matched the service
  kDirectResponse,  // the route's direct_response
  kNoHealthyHost,   // 503
  kConnectFailure,  // 503
  kOverflow,        // 503: pool limits
  kTimeout,         // 504
  kUpstreamReset,   // 502: reset or garbage from the upstream
  kFilterReply,     // a stream filter answered (fault injection, flow control...)
};

/// The fixed fields of a multiplexed RPC frame (Bolt) that travel with its head through the
/// router, so the frame sent upstream is the downstream frame with a new id and the response
/// sent downstream is the upstream one with the original id. Absent for HTTP/1.1 messages; a
/// codec encoding a head without one makes up protocol defaults. Dubbo heads use `proto` 0xda,
/// `type` (1 two-way, 2 one-way, 0 response), `codec` (serialization id) and `status`.
struct RpcHead {
  uint8_t proto = 1;       // Bolt: 1 (v1) or 2 (v2)
  uint8_t ver1 = 1;        // v2 only: protocol version byte
  uint8_t type = 1;        // 0 response, 1 request, 2 one-way request
  uint16_t cmd_code = 1;   // 0 heartbeat, 1 request, 2 response
  uint8_t ver2 = 1;        // command version
  uint8_t codec = 1;       // serialization: 1 hessian2, 11 protobuf
  uint8_t switches = 0;    // v2 only: bit 0 = CRC32 trailer
  int32_t timeout_ms = 0;  // requests: the caller's timeout (<= 0: none)
  uint16_t status = 0;     // responses: the protocol status (Bolt: 0 = success)
  /// The class (carried opaque). A decoded frame's class is the front of its wire bytes: no
  /// copy of its own.
  std::string_view class_name() const { return std::string_view(meta_).substr(0, class_len_); }
  /// Sets the class; the head then keeps no wire bytes for a header map.
  void set_class_name(std::string_view name) {
    meta_.assign(name);
    class_len_ = static_cast<uint32_t>(name.size());
    map_on_wire_ = false;
  }
  /// Decoded frames (Bolt): `meta` is the class (its first `class_len` bytes) and the header
  /// map's bytes as received. While the head's HeaderMap says from_wire(), an encoder sends
  /// these bytes again rather than serialising the map (the frame passes through with only its
  /// id rewritten).
  void SetWireMeta(std::string meta, size_t class_len) {
    meta_ = std::move(meta);
    class_len_ = static_cast<uint32_t>(class_len);
    map_on_wire_ = true;
  }
  /// Takes `other`'s class and wire bytes (its fixed fields stay as they are).
  void MoveMetaFrom(RpcHead& other) {
    meta_ = std::move(other.meta_);
    class_len_ = std::exchange(other.class_len_, 0);
    map_on_wire_ = std::exchange(other.map_on_wire_, false);
  }
  /// The class and header-map bytes as received, or empty when the head keeps none.
  std::string_view wire_meta() const {
    return map_on_wire_ ? std::string_view(meta_) : std::string_view();
  }
  bool oneway() const { return type == 2; }
  /// A copy of the fixed fields only (no class, no wire bytes): what an encoder keeps per
  /// stream without copying strings.
  RpcHead Fields() const {
    RpcHead fields;
    fields.proto = proto;
    fields.ver1 = ver1;
    fields.type = type;
    fields.cmd_code = cmd_code;
    fields.ver2 = ver2;
    fields.codec = codec;
    fields.switches = switches;
    fields.timeout_ms = timeout_ms;
    fields.status = status;
    return fields;
  }

 private:
  std::string meta_;  // the class, then (when map_on_wire_) the header map as received
  uint32_t class_len_ = 0;
  bool map_on_wire_ = false;
};

/// Head of a request. For HTTP/1.1 `method` is the verb and `path` the request target as sent
/// (path and query). `service` is the routing key (DESIGN.md §8): the `id` header, else the Host.
struct RequestHeaders {
  // One or more per request on a proxy worker: taken from the thread's free list.
  OTTAVA_POOLED_NEW(RequestHeaders)

  std::string method;
  std::string path;
  std::string host;     // HTTP: the Host header's value, "" when absent
  std::string service;  // routing key
  HeaderMap headers;    // end-to-end headers only (see the file comment)
  /// Body length when the sender declared one; -1 when the body is chunked, close-delimited or
  /// unknown. 0 with no body.
  int64_t content_length = -1;
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  /// Whether the client asked to keep the connection open after this exchange.
  bool keep_alive = true;
  /// Identifies the stream on its connection; for HTTP/1.1 a per-connection sequence number.
  uint64_t stream_id = 0;
  /// The caller's own timeout when its protocol carries one (Bolt's frame timeout; the
  /// InvokeService deadline), 0 when none: the router answers by then even if the route allows
  /// longer, since the caller will have given up.
  int64_t timeout_ms = 0;
  /// Set by RPC codecs (Bolt).
  std::optional<RpcHead> rpc;

  /// The path without its query string.
  std::string_view PathOnly() const;
  /// The query string after '?', without it; "" when none.
  std::string_view Query() const;
};
using RequestHeadersPtr = std::unique_ptr<RequestHeaders>;

/// Head of a response.
struct ResponseHeaders {
  OTTAVA_POOLED_NEW(ResponseHeaders)

  int status = 200;
  std::string reason;  // empty: the standard phrase for `status`
  HeaderMap headers;   // end-to-end headers only
  int64_t content_length = -1;
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  bool keep_alive = true;
  uint64_t stream_id = 0;
  /// Set by RPC codecs (Bolt); `status` then holds the protocol status mapped to HTTP's.
  std::optional<RpcHead> rpc;
  /// Set when the mesh made this response itself, so a codec can answer in its protocol's own
  /// terms (Bolt: no processor, timeout, connection closed, busy).
  LocalReplyReason local_reply = LocalReplyReason::kNone;
};
using ResponseHeadersPtr = std::unique_ptr<ResponseHeaders>;

/// The standard reason phrase of an HTTP status ("Unknown" for unlisted codes).
std::string_view ReasonPhrase(int status);

}  // namespace ottava::mesh
