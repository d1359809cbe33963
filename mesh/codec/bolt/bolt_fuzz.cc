// libFuzzer target for the Bolt codecs. The same bytes go to a server codec (as requests; every
// stream is answered, alternately as a local reply and as a Bolt response) and to a client codec
// with streams open (as responses), split in two at a point the input chooses; then to the frame
// layer alone. Built by scripts/fuzz.sh.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "mesh/codec/bolt/bolt_codec.h"
#include "mesh/codec/bolt/bolt_frame.h"

namespace ottava::mesh {
namespace {

class SinkOutput : public CodecOutput {
 public:
  void Write(Buffer& data) override { data.Drain(data.Length()); }
};

struct Stream : public RequestDecoder {
  void DecodeHeaders(RequestHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    ended = end_stream;
  }
  void DecodeData(Buffer& data, bool end_stream) override {
    if (ended) {
      __builtin_trap();  // data after the end of a request
    }
    data.Drain(data.Length());
    ended = end_stream;
  }
  ResponseEncoder* encoder = nullptr;
  RequestHeadersPtr headers;
  bool ended = false;
};

class Owner : public ServerCodecCallbacks {
 public:
  RequestDecoder& NewStream(ResponseEncoder& encoder, uint64_t) override {
    streams.push_back(std::make_unique<Stream>());
    streams.back()->encoder = &encoder;
    return *streams.back();
  }
  std::vector<std::unique_ptr<Stream>> streams;
};

struct Collector : public ResponseDecoder {
  void DecodeHeaders(ResponseHeadersPtr, bool end_stream) override { ended = end_stream; }
  void DecodeData(Buffer& data, bool end_stream) override {
    data.Drain(data.Length());
    ended = end_stream;
  }
  bool ended = false;
};

void RunServer(std::string_view first, std::string_view second) {
  SinkOutput output;
  Owner owner;
  CodecOptions options;
  options.max_frame_bytes = 1 << 20;
  ServerCodecPtr codec = BoltCodecFactory().CreateServerCodec(output, owner, options);
  Buffer in;
  size_t answered = 0;
  for (std::string_view part : {first, second}) {
    in.Add(part);
    if (!codec->Dispatch(in).ok()) {
      break;
    }
    for (; answered < owner.streams.size(); ++answered) {
      Stream& s = *owner.streams[answered];
      if (!s.ended) {
        __builtin_trap();  // a Bolt request arrives whole
      }
      ResponseHeaders headers;
      if (answered % 2 == 0) {
        headers.status = 504;
        headers.local_reply = LocalReplyReason::kTimeout;
      } else {
        RpcHead head;
        head.type = bolt::kTypeResponse;
        head.cmd_code = bolt::kCmdResponse;
        head.set_class_name("com.alipay.sofa.rpc.core.response.SofaResponse");
        headers.rpc = head;
      }
      s.encoder->EncodeHeaders(headers, false);
      Buffer body;
      body.Add("\x91\x02ok");
      s.encoder->EncodeData(body, true);
    }
  }
}

void RunClient(std::string_view first, std::string_view second) {
  SinkOutput output;
  CodecOptions options;
  options.max_frame_bytes = 1 << 20;
  ClientCodecPtr base = BoltCodecFactory().CreateClientCodec(output, options);
  auto* codec = static_cast<MultiplexClientCodec*>(base.get());
  Collector collectors[4];
  for (Collector& c : collectors) {
    RequestEncoder& encoder = codec->NewStream(c);
    RequestHeaders headers;
    headers.service = "com.example.Echo";
    encoder.EncodeHeaders(headers, false);
    Buffer body;
    body.Add("x");
    encoder.EncodeData(body, true);
  }
  codec->CancelStream(2);
  codec->SendHeartbeat([] {});
  Buffer in;
  for (std::string_view part : {first, second}) {
    in.Add(part);
    if (!codec->Dispatch(in).ok()) {
      return;
    }
  }
  (void)codec->DispatchEof();
}

void RunFrames(std::string_view bytes) {
  Buffer in;
  in.Add(bytes);
  while (true) {
    bolt::Frame frame;
    auto decoded = bolt::DecodeFrame(in, 1 << 20, frame);
    if (!decoded.ok() || !*decoded) {
      return;
    }
  }
}

}  // namespace
}  // namespace ottava::mesh

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = all.empty() ? 0 : data[0] % (all.size() + 1);
  ottava::mesh::RunServer(all.substr(0, split), all.substr(split));
  ottava::mesh::RunClient(all.substr(0, split), all.substr(split));
  ottava::mesh::RunFrames(all);
  return 0;
}
