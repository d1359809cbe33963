#pragma once

// HTTP/1.1 codecs (RFC 9112) built on nodejs/http-parser: a server codec for downstream
// connections and a client codec for upstream ones. Both stream bodies chunk by chunk, answer
// pipelined requests in order, and reject ambiguous framing (request smuggling) with a 400.
//
// Threading: as every codec, each instance belongs to one worker thread.

#include "mesh/codec/codec.h"

namespace ottava::mesh {

/// Makes HTTP/1.1 server and client codecs. Stateless; one instance can serve every worker.
class Http1CodecFactory : public CodecFactory {
 public:
  Protocol protocol() const override { return Protocol::kHttp1; }
  /// A codec that parses requests from `output`'s connection and encodes the responses.
  ServerCodecPtr CreateServerCodec(CodecOutput& output,
                                   ServerCodecCallbacks& callbacks,
                                   const CodecOptions& options) const override;
  /// A codec that encodes requests to an upstream and parses its responses.
  ClientCodecPtr CreateClientCodec(CodecOutput& output, const CodecOptions& options) const override;
};

}  // namespace ottava::mesh
