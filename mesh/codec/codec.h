#pragma once

// The codec interface every mesh protocol implements (HTTP/1.1 now, Bolt and Dubbo next): bytes
// from a connection become request or response streams, and streams become bytes again. Modelled
// on Envoy's Http::ServerConnection / ClientConnection split, with stream ids so that multiplexed
// protocols (Bolt) fit the same shape: a server codec may have many streams open at once, each
// answered through its own ResponseEncoder; HTTP/1.1 has one at a time.
//
// Threading: a codec belongs to its connection's worker thread and is only touched there.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "mesh/codec/message.h"
#include "mesh/network/buffer.h"

namespace ottava::mesh {

/// Where a codec writes its encoded bytes: the connection's output. Called on the worker thread.
class CodecOutput {
 public:
  virtual ~CodecOutput() = default;
  /// Queues every byte of `data` for sending (moves out of it; `data` ends empty).
  virtual void Write(Buffer& data) = 0;
  /// As Write, for one frame that `encode` appends onto the buffer it is handed. An output over a
  /// connection hands over the connection's own queue, so the frame is not copied again.
  virtual void WriteFrame(absl::FunctionRef<void(Buffer&)> encode) {
    Buffer out;
    encode(out);
    Write(out);
  }
};

/// Encodes one response onto the downstream connection. Owned by the server codec; valid until
/// the stream ends (after end_stream was encoded, or the codec was destroyed).
class ResponseEncoder {
 public:
  virtual ~ResponseEncoder() = default;
  /// Encodes the head. `end_stream` when there is no body. The codec adds its framing headers
  /// (content-length or chunked; connection: close when the connection will close).
  virtual void EncodeHeaders(ResponseHeaders& headers, bool end_stream) = 0;
  /// Encodes a body chunk (moves out of `data`). `end_stream` on the last one (data may be empty).
  virtual void EncodeData(Buffer& data, bool end_stream) = 0;
  /// Sends "100 Continue" (HTTP/1.1) or nothing for protocols without it.
  virtual void Encode100Continue() {}
};

/// Encodes one request onto an upstream connection. Owned by the client codec.
class RequestEncoder {
 public:
  virtual ~RequestEncoder() = default;
  /// Encodes the head; the codec adds framing headers as for responses.
  virtual void EncodeHeaders(RequestHeaders& headers, bool end_stream) = 0;
  /// Encodes a body chunk (moves out of `data`).
  virtual void EncodeData(Buffer& data, bool end_stream) = 0;
};

/// Receives one decoded request. Implemented by the connection manager's active stream.
class RequestDecoder {
 public:
  virtual ~RequestDecoder() = default;
  /// The head is complete. `end_stream` when the request has no body.
  virtual void DecodeHeaders(RequestHeadersPtr headers, bool end_stream) = 0;
  /// A body chunk; the callee may move bytes out of `data`. `end_stream` on the last one.
  virtual void DecodeData(Buffer& data, bool end_stream) = 0;
};

/// Receives one decoded response. Implemented by the router's upstream request.
class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  /// A 1xx informational head (100 Continue); the final head follows.
  virtual void Decode1xxHeaders(ResponseHeadersPtr /*headers*/) {}
  virtual void DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) = 0;
  virtual void DecodeData(Buffer& data, bool end_stream) = 0;
};

/// The owner of a server codec (the connection manager).
class ServerCodecCallbacks {
 public:
  virtual ~ServerCodecCallbacks() = default;
  /// A new request starts; the codec will answer it through `encoder`. Returns the decoder that
  /// receives it; it must stay valid until the stream's response ends or the codec is destroyed.
  virtual RequestDecoder& NewStream(ResponseEncoder& encoder, uint64_t stream_id) = 0;
  /// The codec answered a protocol heartbeat itself (Bolt, Dubbo); for counting.
  virtual void OnHeartbeat() {}
};

/// Limits and switches of a codec.
struct CodecOptions {
  /// Request line or status line plus all header bytes; over it HTTP/1.1 answers 431.
  size_t max_header_bytes = 64 * 1024;
  /// Largest single frame for framed protocols (Bolt); HTTP/1.1 bodies stream and have no limit.
  size_t max_frame_bytes = 16 * 1024 * 1024;
  /// Multiplexed client codecs: the value their id counter starts from (the first id is the
  /// next one). Tests set it near the top of the id space to see the counter wrap.
  uint64_t initial_stream_id = 0;
};

/// Turns downstream bytes into requests and responses into bytes.
class ServerCodec {
 public:
  virtual ~ServerCodec() = default;
  /// Parses what it can of `data`, draining what it consumed, and calls the callbacks. HTTP/1.1
  /// stops at the end of a request until that request's response has been encoded whole
  /// (pipelined requests are answered in order); the owner calls Dispatch again with the rest.
  /// On a protocol error it has already queued the protocol's error reply (HTTP/1.1: 400, 431,
  /// 501 or 505 with Connection: close) and returns the error; the owner flushes and closes.
  virtual absl::Status Dispatch(Buffer& data) = 0;
  /// The peer closed its side. Ends a close-delimited message when there is one.
  virtual absl::Status DispatchEof() = 0;
  /// Whether a request is being received or answered (an idle connection may be closed).
  virtual bool StreamActive() const = 0;
  /// Whether the connection must close once the current response has been written (the client
  /// asked for it, spoke HTTP/1.0 without keep-alive, or the codec is draining).
  virtual bool WantsClose() const = 0;
  /// From now on responses tell the client to close (HTTP/1.1: Connection: close).
  virtual void StartDraining() = 0;
};
using ServerCodecPtr = std::unique_ptr<ServerCodec>;

/// Turns requests into upstream bytes and upstream bytes into responses.
class ClientCodec {
 public:
  virtual ~ClientCodec() = default;
  /// Starts a request whose response goes to `decoder`. HTTP/1.1 allows one at a time.
  virtual RequestEncoder& NewStream(ResponseDecoder& decoder) = 0;
  /// Parses upstream bytes. A non-OK status means the upstream sent garbage: the connection is
  /// unusable and the owner closes it.
  virtual absl::Status Dispatch(Buffer& data) = 0;
  /// The upstream closed. Ends a close-delimited response; an error when a response was cut.
  virtual absl::Status DispatchEof() = 0;
  /// Whether a request is outstanding.
  virtual bool StreamActive() const = 0;
  /// Whether the upstream said it will close (Connection: close, HTTP/1.0) after the response.
  virtual bool WantsClose() const = 0;
};
using ClientCodecPtr = std::unique_ptr<ClientCodec>;

/// A client codec that carries many streams on one connection (Bolt): each stream has an id the
/// codec assigns, a stream may be abandoned without closing the connection (its late response is
/// dropped and counted), and idle connections are probed with heartbeats.
class MultiplexClientCodec : public ClientCodec {
 public:
  /// The id NewStream gave the stream it returned last.
  virtual uint64_t LastStreamId() const = 0;
  /// Abandons a stream: no callback follows; its response, if one comes, is dropped.
  virtual void CancelStream(uint64_t id) = 0;
  /// Streams waiting for a response.
  virtual size_t ActiveStreams() const = 0;
  /// Sends a heartbeat; `on_ack` runs when the peer answers it (not if the codec dies first).
  virtual void SendHeartbeat(std::function<void()> on_ack) = 0;
  /// Responses that arrived for no open stream (late answers to abandoned requests).
  virtual uint64_t late_responses() const = 0;
};
using MultiplexClientCodecPtr = std::unique_ptr<MultiplexClientCodec>;

/// Makes the codecs of one protocol.
class CodecFactory {
 public:
  virtual ~CodecFactory() = default;
  virtual Protocol protocol() const = 0;
  virtual ServerCodecPtr CreateServerCodec(CodecOutput& output,
                                           ServerCodecCallbacks& callbacks,
                                           const CodecOptions& options) const = 0;
  virtual ClientCodecPtr CreateClientCodec(CodecOutput& output,
                                           const CodecOptions& options) const = 0;
  /// Whether one connection carries many streams at once; CreateClientCodec then returns a
  /// MultiplexClientCodec.
  virtual bool multiplexed() const { return false; }
};

}  // namespace ottava::mesh
