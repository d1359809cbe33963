#pragma once

// Protocol-neutral request and response heads that every codec decodes into and encodes from.
// Bodies travel separately, as Buffer chunks, so a large body streams through without being held
// whole. A codec removes its own framing and hop-by-hop headers when it decodes (for HTTP/1.1:
// connection, keep-alive, proxy-connection, transfer-encoding, te, trailer, upgrade, expect and
// every header the Connection header names) and writes its own framing when it encodes.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ottava::mesh {

/// Ordered header list. Names are stored lower-case; lookups ignore case. Duplicates are kept in
/// order (HTTP allows repeated headers).
class HeaderMap {
 public:
  using Entry = std::pair<std::string, std::string>;

  /// Appends a header; `name` is lower-cased.
  void Add(std::string_view name, std::string_view value);
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
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  void Clear() { entries_.clear(); }

 private:
  std::vector<Entry> entries_;
};

/// The application protocol a listener or cluster speaks.
enum class Protocol : uint8_t { kHttp1, kBolt };

/// Head of a request. For HTTP/1.1 `method` is the verb and `path` the request target as sent
/// (path and query). `service` is the routing key (DESIGN.md §8): the `id` header, else the Host.
struct RequestHeaders {
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

  /// The path without its query string.
  std::string_view PathOnly() const;
  /// The query string after '?', without it; "" when none.
  std::string_view Query() const;
};
using RequestHeadersPtr = std::unique_ptr<RequestHeaders>;

/// Head of a response.
struct ResponseHeaders {
  int status = 200;
  std::string reason;  // empty: the standard phrase for `status`
  HeaderMap headers;   // end-to-end headers only
  int64_t content_length = -1;
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  bool keep_alive = true;
  uint64_t stream_id = 0;
};
using ResponseHeadersPtr = std::unique_ptr<ResponseHeaders>;

/// The standard reason phrase of an HTTP status ("Unknown" for unlisted codes).
std::string_view ReasonPhrase(int status);

}  // namespace ottava::mesh
