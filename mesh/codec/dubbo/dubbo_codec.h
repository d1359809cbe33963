#pragma once

// Dubbo 2 codecs for the mesh: a multiplexed server codec for downstream connections and a
// multiplexed client codec for upstream ones, shaped as the Bolt ones.
//
// Server side: every request frame becomes a stream (many open at once). The routing key is the
// service path read from the front of the hessian2 body; the method name is the request's
// `method`, and headers `dubbo`, `service`, `version`, `method` and (from the attachments)
// `group` are there for route matches. The attachment `timeout` becomes the caller's timeout.
// The body passes through untouched. Heartbeats (event frames) are answered by the codec. A
// response goes back with the client's own 64-bit id. Responses the mesh makes up (no route,
// timeout, ...) become Dubbo statuses (no route or host → SERVICE_NOT_FOUND 60, timeout →
// SERVER_TIMEOUT 31, overflow → SERVER_THREADPOOL_EXHAUSTED 100, upstream lost → SERVER_ERROR
// 80) whose body is the message as a hessian2 string, which a Dubbo client reads as the error
// text. A request the proxy cannot read (not hessian2, no service path) is answered BAD_REQUEST
// 40 and the connection stays. One-way requests get no response.
//
// Client side: each stream gets a fresh 64-bit id on its connection, mapped back when the
// response comes; a response for an abandoned stream is dropped and counted. A head that did not
// come from a Dubbo frame (InvokeService) is sent as a two-way hessian2 request whose body is
// the data bytes (one-way when `rpc_request_type` is `oneway`).
//
// Threading: as every codec, each instance belongs to one worker thread.

#include "mesh/codec/codec.h"

namespace ottava::mesh {

class DubboCodecFactory : public CodecFactory {
 public:
  Protocol protocol() const override { return Protocol::kDubbo; }
  ServerCodecPtr CreateServerCodec(CodecOutput& output,
                                   ServerCodecCallbacks& callbacks,
                                   const CodecOptions& options) const override;
  /// Returns a MultiplexClientCodec.
  ClientCodecPtr CreateClientCodec(CodecOutput& output, const CodecOptions& options) const override;
  bool multiplexed() const override { return true; }
};

}  // namespace ottava::mesh
