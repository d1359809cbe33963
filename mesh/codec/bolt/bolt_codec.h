#pragma once

// SOFARPC Bolt codecs (v1 and v2) for the mesh: a multiplexed server codec for downstream
// connections and a multiplexed client codec for upstream ones.
//
// Server side: every request frame becomes a stream (many open at once); `service` from the
// header map is the routing key; class and content pass through untouched. Heartbeats are
// answered by the codec itself. A response goes back with the client's own request id, in the
// client's protocol version. Responses the mesh makes up (no route, timeout, ...) become Bolt
// statuses with an empty content, which real clients accept. One-way requests get no response.
//
// Client side: each stream gets a fresh 32-bit id on its connection (wrapping, skipping ids
// still in use), mapped back when the response comes; a response for an abandoned stream is
// dropped and counted. A head that did not come from a Bolt frame (InvokeService) gets the
// protocol's defaults: class from the `class` header or SOFARPC's request class, `service` from
// the routing key, one-way when `rpc_request_type` is `oneway`.
//
// Threading: as every codec, each instance belongs to one worker thread.

#include "mesh/codec/codec.h"

namespace ottava::mesh {

class BoltCodecFactory : public CodecFactory {
 public:
  Protocol protocol() const override { return Protocol::kBolt; }
  ServerCodecPtr CreateServerCodec(CodecOutput& output,
                                   ServerCodecCallbacks& callbacks,
                                   const CodecOptions& options) const override;
  /// Returns a MultiplexClientCodec.
  ClientCodecPtr CreateClientCodec(CodecOutput& output, const CodecOptions& options) const override;
  bool multiplexed() const override { return true; }
};

}  // namespace ottava::mesh
