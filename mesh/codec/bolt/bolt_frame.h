#pragma once

// SOFARPC Bolt frames (v1 and v2), the wire layer under the Bolt codecs: decoding a whole frame
// from a buffer chain and encoding one. Facts from `../shared/reference/mesh.md` §4: big-endian
// integers; a v1 request has a 22-byte fixed header (proto, type, cmdcode, ver2, request id,
// codec, timeout, class/header/content lengths), a v1 response 20 bytes (a status in place of
// the timeout); v2 adds a ver1 byte after proto and a switch byte after codec (24 and 22 bytes)
// and, when ver1 > 1 and the CRC switch is on, a CRC32 of the whole frame after it.
//
// The header map is parsed (it carries `service`, the routing key); class and content stay
// opaque bytes. The decoder waits for the whole frame, so a frame split at any byte is decoded
// once its last byte arrives, and never reads past its frame: bytes after it are the next frame's.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "mesh/codec/message.h"
#include "mesh/network/buffer.h"

namespace ottava::mesh::bolt {

inline constexpr uint8_t kProtoV1 = 1;
inline constexpr uint8_t kProtoV2 = 2;

inline constexpr uint8_t kTypeResponse = 0;
inline constexpr uint8_t kTypeRequest = 1;
inline constexpr uint8_t kTypeOneway = 2;

inline constexpr uint16_t kCmdHeartbeat = 0;
inline constexpr uint16_t kCmdRequest = 1;
inline constexpr uint16_t kCmdResponse = 2;

/// v2 switch bit: a CRC32 trailer follows the frame (when ver1 > 1).
inline constexpr uint8_t kSwitchCrc = 0x01;

inline constexpr size_t kV1RequestHeaderBytes = 22;
inline constexpr size_t kV1ResponseHeaderBytes = 20;
inline constexpr size_t kV2RequestHeaderBytes = 24;
inline constexpr size_t kV2ResponseHeaderBytes = 22;
inline constexpr size_t kCrcBytes = 4;

/// Response statuses.
enum Status : uint16_t {
  kSuccess = 0x00,
  kError = 0x01,
  kServerException = 0x02,
  kUnknown = 0x03,
  kServerThreadpoolBusy = 0x04,
  kErrorComm = 0x05,
  kNoProcessor = 0x06,
  kTimeout = 0x07,
  kClientSendError = 0x08,
  kCodecException = 0x09,
  kConnectionClosed = 0x10,
  kServerSerialException = 0x11,
  kServerDeserialException = 0x12,
};

/// The class a request carries when the caller names none (SOFARPC's request object; a server
/// given a request with no class never answers it).
inline constexpr std::string_view kDefaultRequestClass =
    "com.alipay.sofa.rpc.core.request.SofaRequest";

/// One decoded frame.
struct Frame {
  RpcHead head;  // proto, ver1, type, cmd_code, ver2, codec, switches, timeout or status, class
  uint32_t request_id = 0;
  HeaderMap headers;  // keys keep their case
  Buffer content;

  bool is_request() const { return head.type != kTypeResponse; }
  bool is_heartbeat() const { return head.cmd_code == kCmdHeartbeat; }
};

/// Decodes one frame from the front of `in` when it is there whole, draining exactly its bytes.
/// Returns true with `frame` filled, false when more bytes are needed (nothing drained), or an
/// error naming what is wrong (unknown proto byte, type or command; a frame over
/// `max_frame_bytes`; a header map whose lengths run past it; a CRC mismatch). After an error
/// the connection is unusable.
absl::StatusOr<bool> DecodeFrame(Buffer& in, size_t max_frame_bytes, Frame& frame);

/// As above, into the parts of a frame wherever the caller keeps them (a codec decodes straight
/// into the request or response head it hands on). `headers` is cleared and `content` emptied
/// first when a whole frame is there.
absl::StatusOr<bool> DecodeFrame(Buffer& in,
                                 size_t max_frame_bytes,
                                 RpcHead& head,
                                 uint32_t& request_id,
                                 HeaderMap& headers,
                                 Buffer& content);

/// Encodes a frame onto `out`, taking the content from `content` (moved). Requests carry
/// `head.timeout_ms`, responses `head.status`. A v2 head with ver1 > 1 and the CRC switch gets
/// the CRC32 trailer. The class and header map are `head.wire_meta()` as received when `headers`
/// is unchanged since it was decoded (HeaderMap::from_wire) and the class was not set anew; else
/// they are serialised from `head.class_name()` and `headers`.
void EncodeFrame(const RpcHead& head,
                 uint32_t request_id,
                 const HeaderMap& headers,
                 Buffer& content,
                 Buffer& out);

/// Appends a frame's class and header map to `out` as they go on the wire. `class_name` and
/// `wire_meta` are one head's class_name() and wire_meta(), or a class and nothing; the wire
/// bytes go as they are while `headers` is unchanged (as for EncodeFrame), else the map is
/// serialised. Returns the header map's length in bytes. With EncodeFrame below, an encoder
/// keeps a request's wire bytes from its head until its content arrives, without keeping the
/// head or its map.
size_t AppendMeta(std::string_view class_name,
                  const HeaderMap& headers,
                  std::string_view wire_meta,
                  std::string& out);

/// Encodes a frame whose class (`class_len` bytes) and header map (`header_len` bytes) were
/// appended to `meta` by AppendMeta; `head`'s strings are not read. Moves from `content`.
void EncodeFrame(const RpcHead& head,
                 uint32_t request_id,
                 size_t class_len,
                 size_t header_len,
                 std::string_view meta,
                 Buffer& content,
                 Buffer& out);

/// Encodes a heartbeat request (`response` false) or its answer (status 0) with `request_id`,
/// in the protocol version of `like` (proto, ver1, switches, codec).
void EncodeHeartbeat(const RpcHead& like, uint32_t request_id, bool response, Buffer& out);

/// The HTTP status the mesh maps a Bolt response status to (0 → 200, busy → 503, timeout → 504,
/// connection closed → 502, no processor → 404, the rest → 500).
int HttpStatusFromBolt(uint16_t status);

/// A short name of a status for error messages ("server exception (0x02)").
std::string StatusName(uint16_t status);

}  // namespace ottava::mesh::bolt
