#include "mesh/codec/dubbo/dubbo_codec.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "mesh/codec/dubbo/dubbo_frame.h"
#include "mesh/codec/dubbo/hessian2.h"

namespace ottava::mesh {
namespace {

std::string Hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size();) {
    if (hex[i] == ' ') {
      ++i;
      continue;
    }
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    i += 2;
  }
  return out;
}

// A request frame as dubbo2.js 2.3.9 (hessian.js 2.5.0) encodes it, captured from its encoder:
// id 7, dubbo "2.0.2", com.example.DemoService 1.0.0, sayHello(String "world", a
// com.example.User object {id: 1, name: "nodejs"}, int 42), attachments with group "blue" and
// timeout 3000 among others.
const std::string kCapturedRequest = Hex(
    "dabbc2000000000000000007000000fa05322e302e3217636f6d2e6578616d706c652e44656d6f536572766963"
    "6505312e302e300873617948656c6c6f30254c6a6176612f6c616e672f537472696e673b4c636f6d2f6578616d"
    "706c652f557365723b4905776f726c644310636f6d2e6578616d706c652e5573657292026964046e616d65609106"
    "6e6f64656a73ba480b6170706c69636174696f6e09647562626f322e6a730567726f757004626c756509696e74"
    "65726661636517636f6d2e6578616d706c652e44656d6f53657276696365047061746817636f6d2e6578616d70"
    "6c652e44656d6f536572766963650774696d656f7574d40bb80776657273696f6e05312e302e305a");

std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) {
    s[7 - i] = static_cast<char>(v >> (8 * i));
  }
  return s;
}

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) {
    s[3 - i] = static_cast<char>(v >> (8 * i));
  }
  return s;
}

std::string Frame(uint8_t flag, uint8_t status, uint64_t id, const std::string& body) {
  std::string f = Hex("dabb");
  f.push_back(static_cast<char>(flag));
  f.push_back(static_cast<char>(status));
  return f + Be64(id) + Be32(static_cast<uint32_t>(body.size())) + body;
}

// A request body of our own making: the leading strings, `args` as raw hessian, attachments.
std::string RequestBody(const std::string& service,
                        const std::string& types,
                        const std::string& args,
                        const std::string& group) {
  std::string b;
  hessian2::WriteString("2.0.2", b);
  hessian2::WriteString(service, b);
  hessian2::WriteString("1.0.0", b);
  hessian2::WriteString("echo", b);
  hessian2::WriteString(types, b);
  b += args;
  b += "H";
  hessian2::WriteString("path", b);
  hessian2::WriteString(service, b);
  if (!group.empty()) {
    hessian2::WriteString("group", b);
    hessian2::WriteString(group, b);
  }
  b += "Z";
  return b;
}

std::string Request(uint64_t id, const std::string& text, bool two_way = true) {
  std::string arg;
  hessian2::WriteString(text, arg);
  const uint8_t flag = 0x80 | (two_way ? 0x40 : 0) | 2;
  return Frame(flag, 0, id, RequestBody("com.example.Echo", "Ljava/lang/String;", arg, ""));
}

class Output : public CodecOutput {
 public:
  void Write(Buffer& data) override { bytes += data.ToString(), data.Drain(data.Length()); }
  std::string bytes;
};

struct Stream : public RequestDecoder {
  void DecodeHeaders(RequestHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    ended = end_stream;
  }
  void DecodeData(Buffer& data, bool end_stream) override {
    body += data.ToString();
    data.Drain(data.Length());
    ended = end_stream;
  }
  ResponseEncoder* encoder = nullptr;
  RequestHeadersPtr headers;
  std::string body;
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

struct Server {
  Server() : codec(DubboCodecFactory().CreateServerCodec(output, owner, CodecOptions())) {}
  absl::Status Feed(const std::string& bytes) {
    in.Add(bytes);
    return codec->Dispatch(in);
  }
  Output output;
  Owner owner;
  ServerCodecPtr codec;
  Buffer in;
};

// Decodes every frame in `bytes`.
std::vector<dubbo::Frame> Frames(const std::string& bytes) {
  Buffer in;
  in.Add(bytes);
  std::vector<dubbo::Frame> out;
  while (true) {
    dubbo::Frame f;
    auto decoded = dubbo::DecodeFrame(in, 1 << 20, f);
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    if (!decoded.ok() || !*decoded) {
      break;
    }
    out.push_back(std::move(f));
  }
  EXPECT_TRUE(in.Empty());
  return out;
}

TEST(DubboFrameTest, ReadsTheCapturedRequest) {
  Buffer in;
  in.Add(kCapturedRequest);
  dubbo::Frame frame;
  auto decoded = dubbo::DecodeFrame(in, 1 << 20, frame);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_TRUE(*decoded);
  EXPECT_TRUE(in.Empty());
  EXPECT_TRUE(frame.is_request());
  EXPECT_TRUE(frame.two_way());
  EXPECT_FALSE(frame.is_event());
  EXPECT_EQ(frame.serialization(), 2);
  EXPECT_EQ(frame.request_id, 7u);
  EXPECT_EQ(frame.body.Length(), 250u);
  const std::string body = frame.body.ToString();
  auto info = dubbo::ParseRequestBody(body);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->dubbo_version, "2.0.2");
  EXPECT_EQ(info->service, "com.example.DemoService");
  EXPECT_EQ(info->version, "1.0.0");
  EXPECT_EQ(info->method, "sayHello");
  EXPECT_EQ(info->parameter_types, "Ljava/lang/String;Lcom/example/User;I");
  EXPECT_TRUE(info->attachments_read);
  EXPECT_EQ(info->group, "blue");
  EXPECT_EQ(info->timeout_ms, 3000);
}

TEST(DubboFrameTest, RefusesBadMagicAtOnce) {
  Buffer in;
  in.Add("\x01", 1);
  dubbo::Frame frame;
  auto decoded = dubbo::DecodeFrame(in, 1 << 20, frame);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("magic"), std::string::npos);
  Buffer in2;
  in2.Add(Hex("dabc"));
  EXPECT_FALSE(dubbo::DecodeFrame(in2, 1 << 20, frame).ok());
  Buffer http;
  http.Add("GET / HTTP/1.1\r\n\r\n");
  EXPECT_FALSE(dubbo::DecodeFrame(http, 1 << 20, frame).ok());
}

TEST(DubboFrameTest, RefusesOversizedAndNegativeLengthsFromTheHeaderAlone) {
  dubbo::Frame frame;
  Buffer big;
  big.Add(Hex("dabbc2000000000000000001") + Be32(2000));  // header only, 2000-byte body
  auto decoded = dubbo::DecodeFrame(big, 1024, frame);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("over the limit"), std::string::npos);
  Buffer negative;
  negative.Add(Hex("dabbc2000000000000000001ffffffff"));
  decoded = dubbo::DecodeFrame(negative, 1 << 30, frame);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("negative"), std::string::npos);
  // Exactly at the limit is accepted.
  Buffer at_limit;
  at_limit.Add(Frame(0xc2, 0, 1, std::string(1024 - 16, 'x')));
  decoded = dubbo::DecodeFrame(at_limit, 1024, frame);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(*decoded);
}

TEST(DubboServerCodecTest, SplitAtEveryByteDecodesOnce) {
  const std::string bytes = kCapturedRequest + Request(8, "second");
  for (size_t split = 0; split <= bytes.size(); ++split) {
    Server s;
    ASSERT_TRUE(s.Feed(bytes.substr(0, split)).ok()) << split;
    ASSERT_TRUE(s.Feed(bytes.substr(split)).ok()) << split;
    ASSERT_EQ(s.owner.streams.size(), 2u) << split;
    EXPECT_EQ(s.owner.streams[0]->headers->service, "com.example.DemoService");
    EXPECT_EQ(s.owner.streams[0]->body.size(), 250u);
    EXPECT_TRUE(s.owner.streams[0]->ended);
    EXPECT_EQ(s.owner.streams[1]->headers->service, "com.example.Echo");
    EXPECT_TRUE(s.in.Empty());
  }
  // One byte at a time.
  Server s;
  for (char c : bytes) {
    ASSERT_TRUE(s.Feed(std::string(1, c)).ok());
  }
  EXPECT_EQ(s.owner.streams.size(), 2u);
}

TEST(DubboServerCodecTest, HeadersCarryRoutingFields) {
  Server s;
  ASSERT_TRUE(s.Feed(kCapturedRequest).ok());
  ASSERT_EQ(s.owner.streams.size(), 1u);
  const RequestHeaders& h = *s.owner.streams[0]->headers;
  EXPECT_EQ(h.service, "com.example.DemoService");
  EXPECT_EQ(h.method, "sayHello");
  EXPECT_EQ(h.timeout_ms, 3000);
  ASSERT_NE(h.headers.Get("version"), nullptr);
  EXPECT_EQ(*h.headers.Get("version"), "1.0.0");
  ASSERT_NE(h.headers.Get("group"), nullptr);
  EXPECT_EQ(*h.headers.Get("group"), "blue");
  ASSERT_NE(h.headers.Get("dubbo"), nullptr);
  EXPECT_EQ(*h.headers.Get("dubbo"), "2.0.2");
  ASSERT_TRUE(h.rpc.has_value());
  EXPECT_EQ(h.rpc->proto, dubbo::kRpcProto);
  EXPECT_FALSE(h.rpc->oneway());
  // The body is the frame's body, byte for byte.
  EXPECT_EQ(s.owner.streams[0]->body, kCapturedRequest.substr(16));
}

TEST(DubboServerCodecTest, GarbageAfterAValidFrameIsAnErrorAfterTheFrame) {
  Server s;
  absl::Status status = s.Feed(Request(1, "hi") + "GARBAGE!");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(s.owner.streams.size(), 1u);
}

TEST(DubboServerCodecTest, AnswersHeartbeatsItself) {
  Server s;
  ASSERT_TRUE(s.Feed(Frame(0xe2, 0, 0x1122334455667788ull, "N")).ok());
  EXPECT_TRUE(s.owner.streams.empty());
  auto frames = Frames(s.output.bytes);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].flag, 0x22);
  EXPECT_EQ(frames[0].status, dubbo::kOk);
  EXPECT_EQ(frames[0].request_id, 0x1122334455667788ull);
  EXPECT_EQ(frames[0].body.ToString(), "N");
  // A one-way event and a heartbeat answer from the client get nothing.
  s.output.bytes.clear();
  ASSERT_TRUE(s.Feed(Frame(0xa2, 0, 5, "N") + Frame(0x22, 20, 6, "N")).ok());
  EXPECT_TRUE(s.output.bytes.empty());
}

TEST(DubboServerCodecTest, ResponsesGoBackWithTheClientsIdAndBody) {
  Server s;
  ASSERT_TRUE(s.Feed(Request(0xfedcba9876543210ull, "hi")).ok());
  ASSERT_EQ(s.owner.streams.size(), 1u);
  ResponseHeaders headers;
  RpcHead head;
  head.proto = dubbo::kRpcProto;
  head.type = 0;
  head.codec = 2;
  head.status = dubbo::kOk;
  headers.rpc = head;
  s.owner.streams[0]->encoder->EncodeHeaders(headers, false);
  Buffer body;
  body.Add("\x91\x05hello");  // int 1 (value), "hello"
  s.owner.streams[0]->encoder->EncodeData(body, true);
  auto frames = Frames(s.output.bytes);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].request_id, 0xfedcba9876543210ull);
  EXPECT_EQ(frames[0].flag, 0x02);
  EXPECT_EQ(frames[0].status, dubbo::kOk);
  EXPECT_EQ(frames[0].body.ToString(), "\x91\x05hello");
}

struct LocalReplyCase {
  LocalReplyReason reason;
  int http_status;
  uint8_t dubbo_status;
};

TEST(DubboServerCodecTest, LocalRepliesBecomeDubboStatusesWithAHessianMessage) {
  const LocalReplyCase cases[] = {
      {LocalReplyReason::kNoRoute, 404, dubbo::kServiceNotFound},
      {LocalReplyReason::kNoHealthyHost, 503, dubbo::kServiceNotFound},
      {LocalReplyReason::kConnectFailure, 503, dubbo::kServiceNotFound},
      {LocalReplyReason::kOverflow, 503, dubbo::kServerThreadpoolExhausted},
      {LocalReplyReason::kTimeout, 504, dubbo::kServerTimeout},
      {LocalReplyReason::kUpstreamReset, 502, dubbo::kServerError},
  };
  for (const LocalReplyCase& c : cases) {
    Server s;
    ASSERT_TRUE(s.Feed(Request(42, "hi")).ok());
    ResponseHeaders headers;
    headers.status = c.http_status;
    headers.local_reply = c.reason;
    s.owner.streams[0]->encoder->EncodeHeaders(headers, false);
    Buffer body;
    body.Add("no route for com.example.Echo\n");
    s.owner.streams[0]->encoder->EncodeData(body, true);
    auto frames = Frames(s.output.bytes);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].status, c.dubbo_status);
    EXPECT_EQ(frames[0].request_id, 42u);
    EXPECT_EQ(frames[0].flag, 0x02);
    const std::string b = frames[0].body.ToString();
    hessian2::Reader reader(b);
    auto message = reader.ReadString();
    ASSERT_TRUE(message.ok()) << message.status();
    EXPECT_EQ(*message, "no route for com.example.Echo");
    EXPECT_TRUE(reader.AtEnd());
  }
}

TEST(DubboServerCodecTest, OneWayRequestsGetNoResponse) {
  Server s;
  ASSERT_TRUE(s.Feed(Request(3, "fire", /*two_way=*/false)).ok());
  ASSERT_EQ(s.owner.streams.size(), 1u);
  EXPECT_TRUE(s.owner.streams[0]->headers->rpc->oneway());
  ResponseHeaders headers;
  headers.status = 200;
  s.owner.streams[0]->encoder->EncodeHeaders(headers, true);
  EXPECT_TRUE(s.output.bytes.empty());
  EXPECT_FALSE(s.codec->StreamActive());
}

TEST(DubboServerCodecTest, UnreadableRequestsAreRefusedWithBadRequest) {
  Server s;
  // Serialization id 6 (fastjson) and a hessian2 body that is not a request head.
  ASSERT_TRUE(s.Feed(Frame(0xc6, 0, 1, "{}") + Frame(0xc2, 0, 2, "\x91\x91")).ok());
  EXPECT_TRUE(s.owner.streams.empty());
  auto frames = Frames(s.output.bytes);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].request_id, 1u);
  EXPECT_EQ(frames[0].status, dubbo::kBadRequest);
  EXPECT_EQ(frames[1].request_id, 2u);
  EXPECT_EQ(frames[1].status, dubbo::kBadRequest);
  // The connection stays usable.
  ASSERT_TRUE(s.Feed(Request(3, "ok")).ok());
  EXPECT_EQ(s.owner.streams.size(), 1u);
}

TEST(DubboServerCodecTest, ARequestFromTheWrongSideIsAnError) {
  Server s;
  EXPECT_FALSE(s.Feed(Frame(0x02, 20, 1, "\x91")).ok());
}

struct Collector : public ResponseDecoder {
  void DecodeHeaders(ResponseHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    ended = end_stream;
  }
  void DecodeData(Buffer& data, bool end_stream) override {
    body += data.ToString();
    data.Drain(data.Length());
    ended = end_stream;
  }
  ResponseHeadersPtr headers;
  std::string body;
  bool ended = false;
};

std::unique_ptr<MultiplexClientCodec> Client(Output& output) {
  ClientCodecPtr codec = DubboCodecFactory().CreateClientCodec(output, CodecOptions());
  return std::unique_ptr<MultiplexClientCodec>(static_cast<MultiplexClientCodec*>(codec.release()));
}

// Sends a request that came from a downstream frame with id 99 on `client`.
uint64_t SendDownstreamRequest(MultiplexClientCodec& client, Collector& collector) {
  Server s;
  EXPECT_TRUE(s.Feed(Request(99, "hi")).ok());
  RequestEncoder& encoder = client.NewStream(collector);
  encoder.EncodeHeaders(*s.owner.streams[0]->headers, false);
  Buffer body;
  body.Add(s.owner.streams[0]->body);
  encoder.EncodeData(body, true);
  return client.LastStreamId();
}

TEST(DubboClientCodecTest, RewritesIdsAndMapsResponsesBack) {
  Output output;
  auto client = Client(output);
  Collector a;
  Collector b;
  const uint64_t id_a = SendDownstreamRequest(*client, a);
  const uint64_t id_b = SendDownstreamRequest(*client, b);
  EXPECT_NE(id_a, id_b);
  auto sent = Frames(output.bytes);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].request_id, id_a);
  EXPECT_EQ(sent[1].request_id, id_b);
  EXPECT_EQ(sent[0].flag, 0xc2);
  // The body went upstream unchanged.
  EXPECT_EQ(sent[0].body.ToString().substr(0, 6), std::string("\x05"
                                                              "2.0.2"));
  // Answers out of order.
  Buffer in;
  in.Add(Frame(0x02, dubbo::kOk, id_b,
               "\x91\x01"
               "b") +
         Frame(0x02, dubbo::kServiceError, id_a,
               "\x05"
               "boom!"));
  ASSERT_TRUE(client->Dispatch(in).ok());
  ASSERT_NE(b.headers, nullptr);
  EXPECT_EQ(b.headers->status, 200);
  EXPECT_EQ(b.body,
            "\x91\x01"
            "b");
  ASSERT_NE(a.headers, nullptr);
  EXPECT_EQ(a.headers->status, 500);
  EXPECT_EQ(a.headers->rpc->status, dubbo::kServiceError);
  EXPECT_EQ(client->ActiveStreams(), 0u);
}

TEST(DubboClientCodecTest, LateResponsesAreDroppedAndCounted) {
  Output output;
  auto client = Client(output);
  Collector a;
  const uint64_t id = SendDownstreamRequest(*client, a);
  client->CancelStream(id);
  Buffer in;
  in.Add(Frame(0x02, dubbo::kOk, id, "\x91\x01x"));
  ASSERT_TRUE(client->Dispatch(in).ok());
  EXPECT_EQ(a.headers, nullptr);
  EXPECT_EQ(client->late_responses(), 1u);
}

TEST(DubboClientCodecTest, HeartbeatsAreSentAndAcknowledged) {
  Output output;
  auto client = Client(output);
  int acks = 0;
  client->SendHeartbeat([&acks] { ++acks; });
  auto sent = Frames(output.bytes);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flag, 0xe2);
  EXPECT_EQ(sent[0].body.ToString(), "N");
  output.bytes.clear();
  Buffer in;
  // The upstream's own heartbeat is answered, then ours is acknowledged.
  in.Add(Frame(0xe2, 0, 77, "N") + Frame(0x22, dubbo::kOk, sent[0].request_id, "N"));
  ASSERT_TRUE(client->Dispatch(in).ok());
  EXPECT_EQ(acks, 1);
  auto answered = Frames(output.bytes);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].request_id, 77u);
  EXPECT_EQ(answered[0].flag, 0x22);
}

TEST(DubboClientCodecTest, InvokeHeadsAndOneWay) {
  Output output;
  auto client = Client(output);
  Collector c;
  RequestHeaders headers;
  headers.service = "com.example.Echo";
  headers.headers.Add("rpc_request_type", "oneway");
  RequestEncoder& encoder = client->NewStream(c);
  encoder.EncodeHeaders(headers, false);
  Buffer body;
  body.Add("raw");
  encoder.EncodeData(body, true);
  auto sent = Frames(output.bytes);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flag, 0x82);  // request, hessian2, not two-way
  EXPECT_EQ(sent[0].body.ToString(), "raw");
  ASSERT_NE(c.headers, nullptr);  // completed at once
  EXPECT_EQ(c.headers->status, 200);
  EXPECT_EQ(client->ActiveStreams(), 0u);
}

TEST(DubboClientCodecTest, ClosingWithRequestsInFlightIsAnError) {
  Output output;
  auto client = Client(output);
  Collector a;
  SendDownstreamRequest(*client, a);
  EXPECT_FALSE(client->DispatchEof().ok());
}

TEST(Hessian2Test, StringsRoundTripIncludingChunksAndBadUtf8) {
  const std::string texts[] = {"",
                               "a",
                               std::string(31, 'x'),
                               std::string(32, 'y'),
                               std::string(1023, 'z'),
                               std::string(1024, 'w'),
                               std::string(70000, 'v'),
                               "h\xc3\xa9llo \xe2\x82\xac"};
  for (const std::string& text : texts) {
    std::string encoded;
    hessian2::WriteString(text, encoded);
    hessian2::Reader reader(encoded);
    auto decoded = reader.ReadString();
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, text);
    EXPECT_TRUE(reader.AtEnd());
  }
  std::string encoded;
  hessian2::WriteString(
      "a\xff"
      "b\xc3",
      encoded);  // invalid bytes become '?'
  hessian2::Reader reader(encoded);
  EXPECT_EQ(*reader.ReadString(), "a?b?");
}

TEST(Hessian2Test, SkipsEveryKindOfValueAndStopsAtTruncation) {
  // null, true, int 1-byte/2/3/4, long forms, doubles, dates, binary, typed and untyped lists
  // and maps, a class definition with an object, a reference.
  const std::string values = Hex(
      "4e 54 90 c8 01 d4 00 01 49 00 00 00 01 e0 f8 01 3c 00 01 59 00 00 00 01 4c 0000000000000001"
      "5b 5c 5d 01 5e 0001 5f 00000001 44 0000000000000000 4a 0000000000000000 4b 00000000"
      "23 616263 34 01 ff"
      "72 04 6c697374 90 91 7a 90 91 55 00 90 5a 56 00 92 90 91 57 90 5a 58 92 90 91"
      "48 01 61 90 5a 4d 00 01 62 91 5a"
      "43 01 43 92 01 78 01 79 60 90 91 4f 90 92 93 51 90");
  const std::string& fixed = values;
  hessian2::Reader reader(fixed);
  int count = 0;
  while (!reader.AtEnd()) {
    absl::Status s = reader.Skip();
    ASSERT_TRUE(s.ok()) << s << " at value " << count << " offset " << reader.offset();
    ++count;
  }
  EXPECT_EQ(count, 32);
  // Every truncation of it fails cleanly somewhere, never reads past the end.
  for (size_t cut = 0; cut < fixed.size(); ++cut) {
    hessian2::Reader partial(std::string_view(fixed).substr(0, cut));
    while (!partial.AtEnd() && partial.Skip().ok()) {
    }
  }
}

TEST(Hessian2Test, DeepNestingIsRefused) {
  std::string nested(200, 'W');  // 200 untyped lists inside each other
  hessian2::Reader reader(nested);
  EXPECT_FALSE(reader.Skip().ok());
}

TEST(Hessian2Test, CountsParameterTypes) {
  EXPECT_EQ(*hessian2::CountParameterTypes(""), 0u);
  EXPECT_EQ(*hessian2::CountParameterTypes("Ljava/lang/String;I[J[[Lx;Z"), 5u);
  EXPECT_FALSE(hessian2::CountParameterTypes("Ljava/lang/String").ok());
  EXPECT_FALSE(hessian2::CountParameterTypes("Q").ok());
  EXPECT_FALSE(hessian2::CountParameterTypes("[").ok());
}

TEST(DubboFrameTest, UnwalkableArgumentsLeaveTheRoutingFields) {
  // An argument with a reserved tag: the attachments cannot be reached; the service can.
  auto info = dubbo::ParseRequestBody(RequestBody("com.example.Echo", "I", "\x40", "g1"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->service, "com.example.Echo");
  EXPECT_FALSE(info->attachments_read);
  EXPECT_EQ(info->group, "");
  info = dubbo::ParseRequestBody(RequestBody("com.example.Echo", "I", "\x90", "g1"));
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->attachments_read);
  EXPECT_EQ(info->group, "g1");
  // Missing leading strings are an error.
  EXPECT_FALSE(dubbo::ParseRequestBody("").ok());
  EXPECT_FALSE(dubbo::ParseRequestBody(Hex("05322e302e32")).ok());
}

}  // namespace
}  // namespace ottava::mesh
