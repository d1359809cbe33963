#pragma once

// Dubbo 2 frames, the wire layer under the Dubbo codecs. Facts from
// `../shared/reference/mesh.md` §4.5: a 16-byte header — magic 0xdabb, a flag byte (bit 7
// request, bit 6 two-way, bit 5 event, bits 0-4 serialization id, 2 = hessian2), a status byte
// (responses), a 64-bit request id and a 32-bit body length, all big-endian — then the body.
//
// The decoder waits for the whole frame (a frame split at any byte decodes once its last byte
// arrives) and never reads past it. The body stays opaque bytes; ParseRequestBody reads the
// routing fields from the front of a hessian2 request body (and the attachments at its end)
// without building the arguments.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "mesh/network/buffer.h"

namespace ottava::mesh::dubbo {

inline constexpr uint16_t kMagic = 0xdabb;
inline constexpr size_t kHeaderBytes = 16;

inline constexpr uint8_t kFlagRequest = 0x80;
inline constexpr uint8_t kFlagTwoWay = 0x40;
inline constexpr uint8_t kFlagEvent = 0x20;
inline constexpr uint8_t kSerializationMask = 0x1f;
inline constexpr uint8_t kSerializationHessian2 = 2;

/// RpcHead::proto of a head that came from a Dubbo frame (Bolt uses 1 and 2).
inline constexpr uint8_t kRpcProto = 0xda;

/// Response statuses (dubbo's org.apache.dubbo.remoting.exchange.Response).
enum Status : uint8_t {
  kOk = 20,
  kClientTimeout = 30,
  kServerTimeout = 31,
  kBadRequest = 40,
  kBadResponse = 50,
  kServiceNotFound = 60,
  kServiceError = 70,
  kServerError = 80,
  kClientError = 90,
  kServerThreadpoolExhausted = 100,
};

/// The body of an event frame (heartbeat): hessian2 null.
inline constexpr char kNullBody = 'N';

/// One decoded frame.
struct Frame {
  uint8_t flag = 0;
  uint8_t status = 0;  // responses
  uint64_t request_id = 0;
  Buffer body;

  bool is_request() const { return (flag & kFlagRequest) != 0; }
  bool two_way() const { return (flag & kFlagTwoWay) != 0; }
  bool is_event() const { return (flag & kFlagEvent) != 0; }
  uint8_t serialization() const { return flag & kSerializationMask; }
};

/// Decodes one frame from the front of `in` when it is there whole, draining exactly its bytes.
/// Returns true with `frame` filled, false when more bytes are needed (nothing drained), or an
/// error naming what is wrong (bad magic, a negative length, a frame over `max_frame_bytes`).
/// After an error the connection is unusable.
absl::StatusOr<bool> DecodeFrame(Buffer& in, size_t max_frame_bytes, Frame& frame);

/// Appends a frame with `body` (moved) to `out`.
void EncodeFrame(uint8_t flag, uint8_t status, uint64_t request_id, Buffer& body, Buffer& out);

/// Appends a heartbeat request (two-way event) or its answer (status OK), body hessian2 null.
void EncodeHeartbeat(uint64_t request_id, bool response, Buffer& out);

/// Appends an error response with `status` whose body is `message` as a hessian2 string: what a
/// Dubbo client reads as the error message of a non-OK status.
void EncodeErrorResponse(uint64_t request_id,
                         uint8_t serialization,
                         uint8_t status,
                         std::string_view message,
                         Buffer& out);

/// The routing fields of a hessian2 request body.
struct RequestInfo {
  std::string dubbo_version;  // e.g. "2.0.2"
  std::string service;        // the service path (interface), the routing key
  std::string version;        // service version, "" when null
  std::string method;
  std::string parameter_types;  // JVM descriptor, e.g. "Ljava/lang/String;"
  /// From the attachments at the end of the body; empty when absent or when the arguments
  /// could not be walked (`attachments_read` false).
  std::string group;
  int64_t timeout_ms = 0;  // attachment `timeout`, 0 when absent
  bool attachments_read = false;
};

/// Reads the routing fields. The leading strings (dubbo version, path, version, method,
/// parameter types) are required: an error when they are missing or malformed. The arguments
/// are then skipped tag by tag (never decoded into values) to reach the attachments; when that
/// walk fails, the error is not the caller's: `attachments_read` stays false.
absl::StatusOr<RequestInfo> ParseRequestBody(std::string_view body);

/// The HTTP status the mesh maps a Dubbo status to (20 → 200, timeouts → 504, bad request → 400,
/// bad response → 502, service not found → 404, thread pool exhausted → 503, others → 500).
int HttpStatusFromDubbo(uint8_t status);

/// A short name of a status for messages ("SERVICE_NOT_FOUND (60)").
std::string StatusName(uint8_t status);

}  // namespace ottava::mesh::dubbo
