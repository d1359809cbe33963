#pragma once

// A minimal SOFARPC Bolt v1 frame layer for the benchmark tools (bench_bolt_server,
// bench_bolt_load). Deliberately independent of mesh/codec/bolt: the bench peers must not share
// a bug with the proxy they measure. Only what the tools need: v1 requests, responses and
// heartbeats; no v2, no Hessian (the contents are fixed byte strings captured from sofa-rpc-node).
//
// Request header (22 bytes, big-endian): proto=1, type (1 request, 2 oneway, 0 response),
// cmdcode (0 heartbeat, 1 request, 2 response), ver2=1, requestId u32, codec (1 = hessian2),
// timeout i32 ms, classLen u16, headerLen u16, contentLen u32. Response header (20 bytes): the
// same up to codec, then status u16, classLen u16, headerLen u16, contentLen u32.

#include <cstddef>
#include <cstdint>
#include <string>

namespace ottava::bench::bolt {

inline constexpr size_t kRequestHeaderSize = 22;
inline constexpr size_t kResponseHeaderSize = 20;
inline constexpr uint8_t kProtoV1 = 1;
inline constexpr uint8_t kTypeResponse = 0;
inline constexpr uint8_t kTypeRequest = 1;
inline constexpr uint8_t kTypeOneway = 2;
inline constexpr uint16_t kCmdHeartbeat = 0;
inline constexpr uint16_t kCmdRequest = 1;
inline constexpr uint16_t kCmdResponse = 2;
inline constexpr uint8_t kCodecHessian2 = 1;

inline constexpr char kRequestClass[] = "com.alipay.sofa.rpc.core.request.SofaRequest";
inline constexpr char kResponseClass[] = "com.alipay.sofa.rpc.core.response.SofaResponse";
inline constexpr char kService[] = "com.example.Echo:1.0";

/// The hessian2 SofaRequest content of com.example.Echo:1.0 echo("hi") as sofa-rpc-node 2.10.0
/// encodes it (227 bytes), so the load generator can also drive test/interop/bolt/server.js.
const std::string& EchoRequestContent();
/// A hessian2 SofaResponse content answering "echo:hi" (sofa-rpc-node decodes it).
const std::string& EchoResponseContent();

/// The fixed part of a decoded frame. `size` is the whole frame's length.
struct FrameHead {
  uint8_t type = 0;
  uint16_t cmdcode = 0;
  uint32_t request_id = 0;
  uint16_t status = 0;  // responses only
  int32_t timeout = 0;  // requests only
  size_t size = 0;
};

/// Result of looking at the start of a buffer.
enum class Parse { kFrame, kNeedMore, kBad };

/// Reads the frame at the start of [data, data+len): kFrame fills `head` (the whole frame is in
/// the buffer), kNeedMore when it is not complete yet, kBad for a proto byte other than v1 or a
/// frame over `max_frame` bytes.
Parse ParseFrame(const uint8_t* data, size_t len, size_t max_frame, FrameHead* head);

/// Appends a v1 request frame (type 1, cmdcode 1) with one header pair service=`service`.
void AppendRequest(std::string* out,
                   uint32_t request_id,
                   int32_t timeout_ms,
                   const std::string& service,
                   const std::string& content);
/// Appends a v1 RPC response frame with class SofaResponse and no header map.
void AppendResponse(std::string* out,
                    uint32_t request_id,
                    uint16_t status,
                    const std::string& content);
/// Appends a 22-byte v1 heartbeat request (timeout -1).
void AppendHeartbeat(std::string* out, uint32_t request_id);
/// Appends the 20-byte heartbeat answer for `request_id`.
void AppendHeartbeatAck(std::string* out, uint32_t request_id);

}  // namespace ottava::bench::bolt
