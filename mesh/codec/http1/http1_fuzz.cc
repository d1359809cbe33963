// libFuzzer target for the HTTP/1.1 codecs. The same bytes go to a server codec (as requests)
// and to a client codec (as responses), split in two at a point the input chooses, with the
// owner's loop simulated: every complete request is answered, so pipelining advances, and the
// client starts a new request whenever a response has ended. Built by scripts/fuzz.sh.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "mesh/codec/http1/http1_codec.h"

namespace ottava::mesh {
namespace {

class SinkOutput : public CodecOutput {
 public:
  void Write(Buffer& data) override {
    bytes += data.Length();
    data.Drain(data.Length());
  }
  size_t bytes = 0;
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
    body_bytes += data.Length();
    data.Drain(data.Length());
    ended = end_stream;
  }
  ResponseEncoder* encoder = nullptr;
  RequestHeadersPtr headers;
  size_t body_bytes = 0;
  bool ended = false;
  bool answered = false;
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

struct Response : public ResponseDecoder {
  void Decode1xxHeaders(ResponseHeadersPtr) override { ++informational; }
  void DecodeHeaders(ResponseHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    ended = end_stream;
  }
  void DecodeData(Buffer& data, bool end_stream) override {
    if (ended) {
      __builtin_trap();
    }
    data.Drain(data.Length());
    ended = end_stream;
  }
  ResponseHeadersPtr headers;
  int informational = 0;
  bool ended = false;
};

void Answer(Stream& s, uint8_t flags) {
  s.answered = true;
  ResponseHeaders headers;
  headers.status = (flags & 4) ? 204 : 200;
  Buffer body;
  body.Add("response body");
  if (flags & 1) {
    headers.content_length = static_cast<int64_t>(body.Length());
  }
  s.encoder->EncodeHeaders(headers, false);
  s.encoder->EncodeData(body, false);
  Buffer empty;
  s.encoder->EncodeData(empty, true);
}

void FuzzServer(std::string_view first, std::string_view second, uint8_t flags) {
  SinkOutput output;
  Owner owner;
  CodecOptions options;
  options.max_header_bytes = (flags & 8) ? 256 : 64 * 1024;
  ServerCodecPtr codec = Http1CodecFactory().CreateServerCodec(output, owner, options);
  Buffer input;
  for (std::string_view part : {first, second}) {
    input.Add(part);
    for (int round = 0; round < 64; ++round) {
      if (!codec->Dispatch(input).ok()) {
        return;
      }
      bool answered = false;
      for (auto& s : owner.streams) {
        if (!s->answered && (s->ended || (flags & 2))) {
          Answer(*s, flags);
          answered = true;
        }
      }
      if (flags & 16) {
        codec->StartDraining();
      }
      if (!answered || input.Empty()) {
        break;
      }
    }
  }
  (void)codec->DispatchEof();
}

void FuzzClient(std::string_view first, std::string_view second, uint8_t flags) {
  SinkOutput output;
  ClientCodecPtr codec = Http1CodecFactory().CreateClientCodec(output, CodecOptions());
  std::vector<std::unique_ptr<Response>> responses;
  auto start = [&](int n) {
    responses.push_back(std::make_unique<Response>());
    RequestEncoder& encoder = codec->NewStream(*responses.back());
    RequestHeaders request;
    request.method = ((flags >> n) & 1) ? "HEAD" : "GET";
    request.path = "/";
    request.host = "upstream";
    encoder.EncodeHeaders(request, true);
  };
  int n = 0;
  start(n++);
  Buffer input;
  for (std::string_view part : {first, second}) {
    input.Add(part);
    for (int round = 0; round < 64; ++round) {
      if (!codec->Dispatch(input).ok()) {
        return;
      }
      if (input.Empty() || codec->StreamActive() || codec->WantsClose()) {
        break;
      }
      start(n++);
    }
  }
  (void)codec->DispatchEof();
}

}  // namespace
}  // namespace ottava::mesh

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The last two bytes choose the split point and the owner's behaviour; they stay in the input
  // so that seed files are plain HTTP.
  uint8_t flags = size > 0 ? data[size - 1] : 0;
  const size_t split =
      size > 1 ? (static_cast<size_t>(data[size - 2]) * 131 + flags) % (size + 1) : 0;
  ottava::mesh::FuzzServer(bytes.substr(0, split), bytes.substr(split), flags);
  ottava::mesh::FuzzClient(bytes.substr(0, split), bytes.substr(split), flags);
  return 0;
}
