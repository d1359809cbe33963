#include "mesh/codec/bolt/bolt_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mesh/codec/bolt/bolt_frame.h"

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

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}

const std::string kRequestClass = "com.alipay.sofa.rpc.core.request.SofaRequest";  // 44 bytes

// The first request frame sofa-rpc-node 2.10.0 sent (mesh.md §4.4): its 22-byte header as
// captured, with the class, the one-pair header map and a 227-byte content of our own.
std::string CapturedRequest(uint32_t id = 1) {
  std::string frame = Hex("01 01 0001 01") + Be32(id) + Hex("01 00000bb8 002c 0023 000000e3");
  frame += kRequestClass;
  frame += Be32(7) + "service" + Be32(20) + "com.example.Echo:1.0";
  frame += std::string(227, 'c');
  return frame;
}

// The captured 20-byte response header with a 46-byte class and 105 content bytes.
std::string CapturedResponse(uint32_t id = 1, uint16_t status = 0) {
  std::string frame = Hex("01 00 0002 01") + Be32(id) + Hex("01");
  frame.push_back(static_cast<char>(status >> 8));
  frame.push_back(static_cast<char>(status));
  frame += Hex("002e 0000 00000069");
  frame += "com.alipay.sofa.rpc.core.response.SofaResponse";
  frame += std::string(105, 'r');
  return frame;
}

TEST(BoltFrameTest, DecodesTheCapturedRequest) {
  Buffer in;
  in.Add(CapturedRequest());
  bolt::Frame frame;
  auto decoded = bolt::DecodeFrame(in, 1 << 20, frame);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_TRUE(*decoded);
  EXPECT_TRUE(in.Empty());
  EXPECT_EQ(frame.head.proto, 1);
  EXPECT_EQ(frame.head.type, bolt::kTypeRequest);
  EXPECT_EQ(frame.head.cmd_code, bolt::kCmdRequest);
  EXPECT_EQ(frame.request_id, 1u);
  EXPECT_EQ(frame.head.codec, 1);
  EXPECT_EQ(frame.head.timeout_ms, 3000);
  EXPECT_EQ(frame.head.class_name(), kRequestClass);
  ASSERT_NE(frame.headers.Get("service"), nullptr);
  EXPECT_EQ(*frame.headers.Get("service"), "com.example.Echo:1.0");
  EXPECT_EQ(frame.content.Length(), 227u);
}

TEST(BoltFrameTest, DecodesTheCapturedResponse) {
  Buffer in;
  in.Add(CapturedResponse(7, 2));
  bolt::Frame frame;
  auto decoded = bolt::DecodeFrame(in, 1 << 20, frame);
  ASSERT_TRUE(decoded.ok() && *decoded);
  EXPECT_EQ(frame.head.type, bolt::kTypeResponse);
  EXPECT_EQ(frame.request_id, 7u);
  EXPECT_EQ(frame.head.status, bolt::kServerException);
  EXPECT_EQ(frame.head.class_name().size(), 46u);
  EXPECT_EQ(frame.content.Length(), 105u);
}

TEST(BoltFrameTest, SplitAtEveryByteDecodesOnlyOnTheLastOne) {
  const std::string wire = CapturedRequest(42) + CapturedResponse(42);
  const size_t first = CapturedRequest(42).size();
  Buffer in;
  int frames = 0;
  for (size_t i = 0; i < wire.size(); ++i) {
    in.Add(std::string_view(&wire[i], 1));
    bolt::Frame frame;
    auto decoded = bolt::DecodeFrame(in, 1 << 20, frame);
    ASSERT_TRUE(decoded.ok()) << "at byte " << i << ": " << decoded.status();
    if (*decoded) {
      ++frames;
      EXPECT_TRUE(i + 1 == first || i + 1 == wire.size()) << "decoded early at byte " << i;
      EXPECT_EQ(frame.request_id, 42u);
    }
  }
  EXPECT_EQ(frames, 2);
  EXPECT_TRUE(in.Empty());
}

TEST(BoltFrameTest, GarbageAfterAValidFrameIsAnErrorForTheNextOnly) {
  Buffer in;
  in.Add(CapturedRequest() + "GET / HTTP/1.1\r\n");
  bolt::Frame frame;
  auto first = bolt::DecodeFrame(in, 1 << 20, frame);
  ASSERT_TRUE(first.ok() && *first);
  auto second = bolt::DecodeFrame(in, 1 << 20, frame);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("unknown protocol byte 0x47"), std::string::npos)
      << second.status();
}

TEST(BoltFrameTest, RefusesFramesOverTheLimitBeforeBufferingThem) {
  Buffer in;
  // Only the 22-byte header, announcing 100 MB of content.
  in.Add(Hex("01 01 0001 01 00000001 01 00000bb8 0000 0000 05f5e100"));
  bolt::Frame frame;
  auto decoded = bolt::DecodeFrame(in, 16 << 20, frame);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("over the limit"), std::string::npos);
}

TEST(BoltFrameTest, RefusesAHeaderMapLengthPastItsArea) {
  std::string frame = Hex("01 01 0001 01 00000001 01 00000bb8 0000 000c 00000000");
  frame += Be32(100) + "service" + "x";  // key length 100 in a 12-byte area
  Buffer in;
  in.Add(frame);
  bolt::Frame out;
  auto decoded = bolt::DecodeFrame(in, 1 << 20, out);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("past the header map"), std::string::npos);
}

TEST(BoltFrameTest, RefusesUnknownTypesAndCommands) {
  bolt::Frame frame;
  Buffer bad_type;
  bad_type.Add(Hex("01 07 0001 01 00000001 01 00000bb8 0000 0000 00000000"));
  EXPECT_FALSE(bolt::DecodeFrame(bad_type, 1 << 20, frame).ok());
  Buffer bad_cmd;
  bad_cmd.Add(Hex("01 01 0009 01 00000001 01 00000bb8 0000 0000 00000000"));
  EXPECT_FALSE(bolt::DecodeFrame(bad_cmd, 1 << 20, frame).ok());
}

// A request head with SOFARPC's request class: v1, or v2 with the CRC trailer switched on.
RpcHead RequestHead(bool v2_crc, int32_t timeout_ms) {
  RpcHead head;
  head.proto = v2_crc ? bolt::kProtoV2 : bolt::kProtoV1;
  head.ver1 = v2_crc ? 2 : 1;
  head.switches = v2_crc ? bolt::kSwitchCrc : 0;
  head.type = bolt::kTypeRequest;
  head.cmd_code = bolt::kCmdRequest;
  head.timeout_ms = timeout_ms;
  head.set_class_name(kRequestClass);
  return head;
}

TEST(BoltFrameTest, V2RoundTripWithCrcAndTheCrcIsChecked) {
  RpcHead head = RequestHead(true, 500);
  HeaderMap headers;
  headers.AddCased("service", "com.example.Echo:1.0");
  headers.AddCased("rpc_trace_context.sofaTraceId", "abc");
  Buffer content;
  content.Add("hello");
  Buffer wire;
  bolt::EncodeFrame(head, 99, headers, content, wire);
  const std::string bytes = wire.ToString();
  ASSERT_EQ(bytes.size(), bolt::kV2RequestHeaderBytes + kRequestClass.size() + (8 + 7 + 20) +
                              (8 + 29 + 3) + 5 + bolt::kCrcBytes);
  bolt::Frame frame;
  auto decoded = bolt::DecodeFrame(wire, 1 << 20, frame);
  ASSERT_TRUE(decoded.ok() && *decoded) << decoded.status();
  EXPECT_EQ(frame.head.proto, bolt::kProtoV2);
  EXPECT_EQ(frame.head.ver1, 2);
  EXPECT_EQ(frame.head.timeout_ms, 500);
  EXPECT_EQ(frame.request_id, 99u);
  EXPECT_EQ(frame.content.ToString(), "hello");
  // Keys keep their case through the map.
  auto it = frame.headers.begin();
  ++it;
  EXPECT_EQ(it->first, "rpc_trace_context.sofaTraceId");

  std::string corrupt = bytes;
  corrupt[bytes.size() - 6] ^= 0x01;  // a content byte
  Buffer bad;
  bad.Add(corrupt);
  auto refused = bolt::DecodeFrame(bad, 1 << 20, frame);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("CRC32"), std::string::npos);
}

// A decoded frame goes out again byte for byte but for its id while its map is unchanged, and
// with the change once the map is touched (the received bytes are then stale).
TEST(BoltFrameTest, UnchangedFramePassesThroughAndAChangedMapIsSerialisedAgain) {
  for (const bool crc : {false, true}) {
    RpcHead head = RequestHead(crc, 700);
    HeaderMap headers;
    headers.AddCased("service", "com.example.Echo:1.0");
    headers.AddCased("Trace", "t1");
    Buffer content;
    content.Add("payload");
    Buffer wire;
    bolt::EncodeFrame(head, 7, headers, content, wire);
    const std::string original = wire.ToString();

    bolt::Frame frame;
    ASSERT_TRUE(*bolt::DecodeFrame(wire, 1 << 20, frame));
    EXPECT_TRUE(frame.headers.from_wire());
    Buffer again;
    bolt::EncodeFrame(frame.head, 7, frame.headers, frame.content, again);
    EXPECT_EQ(again.ToString(), original) << "crc " << crc;

    // Through the split API (the client codec's): the same bytes with a new id.
    Buffer relay;
    relay.Add(original);
    ASSERT_TRUE(*bolt::DecodeFrame(relay, 1 << 20, frame));
    std::string meta;
    const size_t header_len =
        bolt::AppendMeta(frame.head.class_name(), frame.headers, frame.head.wire_meta(), meta);
    Buffer out;
    bolt::EncodeFrame(frame.head.Fields(), 8, frame.head.class_name().size(), header_len, meta,
                      frame.content, out);
    bolt::Frame relayed;
    ASSERT_TRUE(*bolt::DecodeFrame(out, 1 << 20, relayed)) << "crc " << crc;
    EXPECT_EQ(relayed.request_id, 8u);
    EXPECT_EQ(relayed.head.wire_meta(), frame.head.wire_meta());
    EXPECT_EQ(relayed.content.ToString(), "payload");

    // A changed map is serialised from its entries (and a CRC frame still checks).
    Buffer changed_in;
    changed_in.Add(original);
    ASSERT_TRUE(*bolt::DecodeFrame(changed_in, 1 << 20, frame));
    frame.headers.Set("trace", "t2");
    EXPECT_FALSE(frame.headers.from_wire());
    Buffer changed;
    bolt::EncodeFrame(frame.head, 9, frame.headers, frame.content, changed);
    bolt::Frame reread;
    ASSERT_TRUE(*bolt::DecodeFrame(changed, 1 << 20, reread)) << "crc " << crc;
    ASSERT_NE(reread.headers.Get("trace"), nullptr);
    EXPECT_EQ(*reread.headers.Get("trace"), "t2");
    EXPECT_EQ(reread.head.class_name(), kRequestClass);
    EXPECT_EQ(reread.content.ToString(), "payload");
  }
}

// ---------------------------------------------------------------------------------------------
// Codecs.

struct Output : CodecOutput {
  void Write(Buffer& data) override { bytes.Move(data); }
  Buffer bytes;
};

struct RecordingDecoder : RequestDecoder {
  void DecodeHeaders(RequestHeadersPtr h, bool end) override {
    headers = std::move(h);
    ended = end;
  }
  void DecodeData(Buffer& data, bool end) override {
    body += data.ToString();
    data.Drain(data.Length());
    ended = end;
  }
  RequestHeadersPtr headers;
  std::string body;
  bool ended = false;
};

struct Server : ServerCodecCallbacks {
  RequestDecoder& NewStream(ResponseEncoder& encoder, uint64_t) override {
    encoders.push_back(&encoder);
    decoders.push_back(std::make_unique<RecordingDecoder>());
    return *decoders.back();
  }
  std::vector<ResponseEncoder*> encoders;
  std::vector<std::unique_ptr<RecordingDecoder>> decoders;
};

TEST(BoltServerCodecTest, AnswersHeartbeatsItself) {
  Output out;
  Server server;
  BoltCodecFactory factory;
  auto codec = factory.CreateServerCodec(out, server, CodecOptions());
  Buffer in;
  in.Add(Hex("01 01 0000 01 0000002a 01 ffffffff 0000 0000 00000000"));
  ASSERT_TRUE(codec->Dispatch(in).ok());
  EXPECT_TRUE(server.encoders.empty());
  EXPECT_EQ(out.bytes.ToString(), Hex("01 00 0000 01 0000002a 01 0000 0000 0000 00000000"));
}

TEST(BoltServerCodecTest, AnswersWithTheClientsIdAndMapsLocalRepliesToStatuses) {
  Output out;
  Server server;
  BoltCodecFactory factory;
  auto codec = factory.CreateServerCodec(out, server, CodecOptions());
  Buffer in;
  in.Add(CapturedRequest(0xFFFFFFF0u) + CapturedRequest(5));
  ASSERT_TRUE(codec->Dispatch(in).ok());
  ASSERT_EQ(server.decoders.size(), 2u);
  EXPECT_EQ(server.decoders[0]->headers->service, "com.example.Echo:1.0");
  EXPECT_EQ(server.decoders[0]->headers->timeout_ms, 3000);
  EXPECT_EQ(server.decoders[0]->body.size(), 227u);
  EXPECT_TRUE(server.decoders[0]->ended);
  EXPECT_TRUE(codec->StreamActive());

  // The second answers first: a timeout made up by the mesh.
  ResponseHeaders timeout;
  timeout.status = 504;
  timeout.local_reply = LocalReplyReason::kTimeout;
  server.encoders[1]->EncodeHeaders(timeout, false);
  Buffer text;
  text.Add("upstream timed out\n");
  server.encoders[1]->EncodeData(text, true);
  EXPECT_EQ(out.bytes.ToString(), Hex("01 00 0002 01 00000005 01 0007 0000 0000 00000000"));
  out.bytes.Drain(out.bytes.Length());

  // The first gets the upstream's Bolt response back with its own full 32-bit id.
  ResponseHeaders upstream;
  upstream.status = 200;
  upstream.rpc = RpcHead();
  upstream.rpc->type = bolt::kTypeResponse;
  upstream.rpc->cmd_code = bolt::kCmdResponse;
  upstream.rpc->set_class_name("com.alipay.sofa.rpc.core.response.SofaResponse");
  server.encoders[0]->EncodeHeaders(upstream, false);
  Buffer content;
  content.Add(std::string(105, 'r'));
  server.encoders[0]->EncodeData(content, true);
  EXPECT_EQ(out.bytes.ToString(), CapturedResponse(0xFFFFFFF0u));
  EXPECT_FALSE(codec->StreamActive());
}

TEST(BoltServerCodecTest, OnewayRequestsGetNoResponse) {
  Output out;
  Server server;
  BoltCodecFactory factory;
  auto codec = factory.CreateServerCodec(out, server, CodecOptions());
  std::string oneway = CapturedRequest(9);
  oneway[1] = static_cast<char>(bolt::kTypeOneway);
  Buffer in;
  in.Add(oneway);
  ASSERT_TRUE(codec->Dispatch(in).ok());
  ASSERT_EQ(server.encoders.size(), 1u);
  EXPECT_TRUE(server.decoders[0]->headers->rpc->oneway());
  ResponseHeaders ok;
  server.encoders[0]->EncodeHeaders(ok, true);
  EXPECT_TRUE(out.bytes.Empty());
  EXPECT_FALSE(codec->StreamActive());
}

struct ResponseRecorder : ResponseDecoder {
  void DecodeHeaders(ResponseHeadersPtr h, bool end) override {
    headers = std::move(h);
    ended = end;
  }
  void DecodeData(Buffer& data, bool end) override {
    body += data.ToString();
    data.Drain(data.Length());
    ended = end;
  }
  ResponseHeadersPtr headers;
  std::string body;
  bool ended = false;
};

RequestHeaders DecodedRequest(uint32_t id) {
  Buffer in;
  in.Add(CapturedRequest(id));
  bolt::Frame frame;
  EXPECT_TRUE(bolt::DecodeFrame(in, 1 << 20, frame).value());
  RequestHeaders headers;
  headers.headers = std::move(frame.headers);
  headers.rpc = frame.head;
  return headers;
}

TEST(BoltClientCodecTest, RewritesIdsAndMapsResponsesBackOutOfOrder) {
  Output out;
  BoltCodecFactory factory;
  auto base = factory.CreateClientCodec(out, CodecOptions());
  auto* codec = static_cast<MultiplexClientCodec*>(base.get());
  ResponseRecorder a;
  ResponseRecorder b;
  // Two downstream clients both used id 1: upstream they get distinct ids.
  RequestHeaders head_a = DecodedRequest(1);
  RequestHeaders head_b = DecodedRequest(1);
  RequestEncoder& enc_a = codec->NewStream(a);
  const uint64_t id_a = codec->LastStreamId();
  enc_a.EncodeHeaders(head_a, true);
  RequestEncoder& enc_b = codec->NewStream(b);
  const uint64_t id_b = codec->LastStreamId();
  enc_b.EncodeHeaders(head_b, true);
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(codec->ActiveStreams(), 2u);

  Buffer sent;
  sent.Move(out.bytes);
  bolt::Frame frame;
  ASSERT_TRUE(bolt::DecodeFrame(sent, 1 << 20, frame).value());
  EXPECT_EQ(frame.request_id, id_a);
  EXPECT_EQ(*frame.headers.Get("service"), "com.example.Echo:1.0");
  EXPECT_EQ(frame.head.class_name(), kRequestClass);
  ASSERT_TRUE(bolt::DecodeFrame(sent, 1 << 20, frame).value());
  EXPECT_EQ(frame.request_id, id_b);

  Buffer in;
  in.Add(CapturedResponse(static_cast<uint32_t>(id_b), 2) +
         CapturedResponse(static_cast<uint32_t>(id_a)));
  ASSERT_TRUE(codec->Dispatch(in).ok());
  ASSERT_NE(a.headers, nullptr);
  ASSERT_NE(b.headers, nullptr);
  EXPECT_EQ(a.headers->status, 200);
  EXPECT_EQ(b.headers->status, 500);
  EXPECT_EQ(b.headers->rpc->status, bolt::kServerException);
  EXPECT_EQ(a.body.size(), 105u);
  EXPECT_TRUE(a.ended && b.ended);
  EXPECT_FALSE(codec->StreamActive());
}

// The 32-bit id counter wraps past 0 (never used: it reads as "no id") and responses still map
// back to their streams on both sides of the wrap.
TEST(BoltClientCodecTest, IdsWrapPastZero) {
  Output out;
  BoltCodecFactory factory;
  CodecOptions options;
  options.initial_stream_id = 0xFFFFFFFEu;
  auto base = factory.CreateClientCodec(out, options);
  auto* codec = static_cast<MultiplexClientCodec*>(base.get());
  ResponseRecorder before;
  ResponseRecorder after;
  ResponseRecorder later;
  RequestHeaders head = DecodedRequest(1);
  codec->NewStream(before).EncodeHeaders(head, true);
  EXPECT_EQ(codec->LastStreamId(), 0xFFFFFFFFu);
  RequestHeaders head2 = DecodedRequest(1);
  codec->NewStream(after).EncodeHeaders(head2, true);
  EXPECT_EQ(codec->LastStreamId(), 1u);
  RequestHeaders head3 = DecodedRequest(1);
  codec->NewStream(later).EncodeHeaders(head3, true);
  EXPECT_EQ(codec->LastStreamId(), 2u);

  Buffer in;
  in.Add(CapturedResponse(1u, 2) + CapturedResponse(0xFFFFFFFFu) + CapturedResponse(2u));
  ASSERT_TRUE(codec->Dispatch(in).ok());
  ASSERT_NE(before.headers, nullptr);
  ASSERT_NE(after.headers, nullptr);
  ASSERT_NE(later.headers, nullptr);
  EXPECT_EQ(before.headers->status, 200);
  EXPECT_EQ(after.headers->status, 500);
  EXPECT_EQ(later.headers->status, 200);
  EXPECT_FALSE(codec->StreamActive());
  EXPECT_EQ(codec->late_responses(), 0u);
}

TEST(BoltClientCodecTest, ALateResponseForACancelledStreamIsDroppedAndCounted) {
  Output out;
  BoltCodecFactory factory;
  auto base = factory.CreateClientCodec(out, CodecOptions());
  auto* codec = static_cast<MultiplexClientCodec*>(base.get());
  ResponseRecorder a;
  RequestHeaders head = DecodedRequest(3);
  codec->NewStream(a).EncodeHeaders(head, true);
  const uint64_t id = codec->LastStreamId();
  codec->CancelStream(id);
  Buffer in;
  in.Add(CapturedResponse(static_cast<uint32_t>(id)));
  ASSERT_TRUE(codec->Dispatch(in).ok());
  EXPECT_EQ(a.headers, nullptr);
  EXPECT_EQ(codec->late_responses(), 1u);
}

TEST(BoltClientCodecTest, AnHttpShapedHeadGetsBoltDefaultsAndOnewayEndsAtOnce) {
  Output out;
  BoltCodecFactory factory;
  auto base = factory.CreateClientCodec(out, CodecOptions());
  auto* codec = static_cast<MultiplexClientCodec*>(base.get());
  RequestHeaders head;
  head.method = "POST";
  head.path = "/echo";
  head.service = "com.example.Echo:1.0";
  head.timeout_ms = 800;
  head.headers.Add("host", "com.example.Echo:1.0");
  head.headers.Add("content-length", "3");
  head.headers.Add("x-user", "alice");
  head.headers.Add("rpc_request_type", "oneway");
  ResponseRecorder r;
  RequestEncoder& encoder = codec->NewStream(r);
  encoder.EncodeHeaders(head, false);
  Buffer body;
  body.Add("abc");
  encoder.EncodeData(body, true);
  bolt::Frame frame;
  ASSERT_TRUE(bolt::DecodeFrame(out.bytes, 1 << 20, frame).value());
  EXPECT_EQ(frame.head.type, bolt::kTypeOneway);
  EXPECT_EQ(frame.head.class_name(), bolt::kDefaultRequestClass);
  EXPECT_EQ(frame.head.timeout_ms, 800);
  EXPECT_EQ(*frame.headers.Get("service"), "com.example.Echo:1.0");
  EXPECT_EQ(*frame.headers.Get("x-user"), "alice");
  EXPECT_EQ(frame.headers.Get("host"), nullptr);
  EXPECT_EQ(frame.headers.Get("content-length"), nullptr);
  EXPECT_EQ(frame.content.ToString(), "abc");
  // No response will come for a one-way request: the stream ended with a success.
  ASSERT_NE(r.headers, nullptr);
  EXPECT_EQ(r.headers->status, 200);
  EXPECT_TRUE(r.ended);
  EXPECT_FALSE(codec->StreamActive());
}

TEST(BoltClientCodecTest, HeartbeatsAreAcknowledgedByTheirId) {
  Output out;
  BoltCodecFactory factory;
  auto base = factory.CreateClientCodec(out, CodecOptions());
  auto* codec = static_cast<MultiplexClientCodec*>(base.get());
  int acks = 0;
  codec->SendHeartbeat([&acks] { ++acks; });
  bolt::Frame frame;
  ASSERT_TRUE(bolt::DecodeFrame(out.bytes, 1 << 20, frame).value());
  EXPECT_TRUE(frame.is_heartbeat());
  EXPECT_TRUE(frame.is_request());
  Buffer answer;
  bolt::EncodeHeartbeat(frame.head, frame.request_id + 1, true, answer);  // not ours
  bolt::EncodeHeartbeat(frame.head, frame.request_id, true, answer);
  ASSERT_TRUE(codec->Dispatch(answer).ok());
  EXPECT_EQ(acks, 1);
}

}  // namespace
}  // namespace ottava::mesh
