#include "mesh/codec/http1/http1_codec.h"

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ottava::mesh {
namespace {

// ---------------------------------------------------------------------------------------------
// Fakes: an output that records bytes, and server/client owners that record what they decode.

class FakeOutput : public CodecOutput {
 public:
  void Write(Buffer& data) override {
    written += data.ToString();
    data.Drain(data.Length());
  }
  std::string Take() {
    std::string out = std::move(written);
    written.clear();
    return out;
  }
  std::string written;
};

struct FakeStream : public RequestDecoder {
  void DecodeHeaders(RequestHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    ended = end_stream;
  }
  void DecodeData(Buffer& data, bool end_stream) override {
    EXPECT_FALSE(ended) << "data after end_stream";
    body += data.ToString();
    max_chunk = std::max(max_chunk, data.Length());
    data.Drain(data.Length());
    ++data_calls;
    ended = end_stream;
  }
  ResponseEncoder* encoder = nullptr;
  uint64_t stream_id = 0;
  RequestHeadersPtr headers;
  std::string body;
  size_t max_chunk = 0;
  int data_calls = 0;
  bool ended = false;
};

class FakeServer : public ServerCodecCallbacks {
 public:
  RequestDecoder& NewStream(ResponseEncoder& encoder, uint64_t stream_id) override {
    streams.push_back(std::make_unique<FakeStream>());
    streams.back()->encoder = &encoder;
    streams.back()->stream_id = stream_id;
    return *streams.back();
  }
  std::vector<std::unique_ptr<FakeStream>> streams;
};

// Sends a complete response with a body through the stream's encoder.
void Respond(FakeStream& stream, int status, const std::string& body) {
  ResponseHeaders headers;
  headers.status = status;
  headers.headers.Add("Server", "test");
  headers.content_length = static_cast<int64_t>(body.size());
  stream.encoder->EncodeHeaders(headers, body.empty());
  if (!body.empty()) {
    Buffer data;
    data.Add(body);
    stream.encoder->EncodeData(data, true);
  }
}

// The owner of a server codec: keeps the unconsumed input as a connection manager would.
struct ServerHarness {
  explicit ServerHarness(CodecOptions options = {})
      : codec(Http1CodecFactory().CreateServerCodec(out, server, options)) {}

  absl::Status Feed(std::string_view bytes) {
    input.Add(bytes);
    return codec->Dispatch(input);
  }

  // Feeds everything at once or byte by byte; answers every complete request with "ok" when
  // `respond`, re-dispatching the rest as the owner does once a response is done.
  absl::Status Run(const std::string& bytes, bool byte_at_a_time, bool respond = true) {
    absl::Status status;
    size_t answered = 0;
    auto pump = [&]() {
      while (status.ok()) {
        status = codec->Dispatch(input);
        if (!status.ok() || !respond) {
          return;
        }
        bool progressed = false;
        for (; answered < server.streams.size(); ++answered) {
          FakeStream& s = *server.streams[answered];
          if (!s.ended) {
            break;
          }
          Respond(s, 200, "ok");
          progressed = true;
        }
        if (!progressed || input.Empty()) {
          return;
        }
      }
    };
    if (byte_at_a_time) {
      for (char c : bytes) {
        input.Add(std::string_view(&c, 1));
        pump();
        if (!status.ok()) {
          break;
        }
      }
    } else {
      input.Add(bytes);
      pump();
    }
    return status;
  }

  FakeOutput out;
  FakeServer server;
  ServerCodecPtr codec;
  Buffer input;
};

std::string HeaderList(const HeaderMap& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    out += name + "=" + value + ";";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Table of valid requests.

struct ValidCase {
  const char* name;
  std::string input;
  const char* method;
  const char* path;
  const char* host;
  const char* service;
  const char* headers;  // name=value; in order
  const char* body;
  int64_t content_length;
  int minor;
  bool keep_alive;
};

std::vector<ValidCase> ValidCases() {
  return {
      {"simple_get", "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET",
       "/a/b?x=1&y=2", "example.com", "example.com", "host=example.com;", "", 0, 1, true},
      {"id_header_is_service",
       "GET / HTTP/1.1\r\nHost: h:8080\r\nId: svc.echo:1.0\r\nX-Foo: Bar\r\n\r\n", "GET", "/",
       "h:8080", "svc.echo:1.0", "host=h:8080;id=svc.echo:1.0;x-foo=Bar;", "", 0, 1, true},
      {"host_port_is_service", "GET /p HTTP/1.1\r\nHost: api.local:9090\r\n\r\n", "GET", "/p",
       "api.local:9090", "api.local:9090", "host=api.local:9090;", "", 0, 1, true},
      {"names_lower_cased", "GET / HTTP/1.1\r\nHOST: H\r\nX-MiXeD-Case: VaLue\r\n\r\n", "GET", "/",
       "H", "H", "host=H;x-mixed-case=VaLue;", "", 0, 1, true},
      {"content_length_body",
       "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world", "POST",
       "/submit", "h", "h", "host=h;content-length=11;", "hello world", 11, 1, true},
      {"chunked_body_with_extension_and_trailer",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\r\n6;ext=1\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
       "POST", "/", "h", "h", "host=h;", "hello world0123456789", -1, 1, true},
      {"chunked_upper_case_and_spaces",
       "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  Chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n",
       "PUT", "/x", "h", "h", "host=h;", "abc", -1, 1, true},
      {"hop_by_hop_removed",
       "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
       "Keep-Alive: timeout=5\r\nProxy-Connection: x\r\nTE: trailers\r\nUpgrade: websocket\r\n"
       "Trailer: x\r\nX-End: 2\r\n\r\n",
       "GET", "/", "h", "h", "host=h;x-end=2;", "", 0, 1, true},
      {"connection_close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET", "/",
       "h", "h", "host=h;", "", 0, 1, false},
      {"http10_no_host", "GET /old HTTP/1.0\r\n\r\n", "GET", "/old", "", "", "", "", 0, 0, false},
      {"http10_keep_alive", "GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n", "GET",
       "/", "h", "h", "host=h;", "", 0, 0, true},
      {"value_trimmed_and_empty", "GET / HTTP/1.1\r\nHost: h\r\nX-A:   v  w \t\r\nX-E:\r\n\r\n",
       "GET", "/", "h", "h", "host=h;x-a=v  w;x-e=;", "", 0, 1, true},
      {"duplicates_kept", "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\n\r\n", "GET", "/",
       "h", "h", "host=h;accept=a;accept=b;", "", 0, 1, true},
      {"leading_empty_line", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "/", "h", "h",
       "host=h;", "", 0, 1, true},
      {"head", "HEAD /r HTTP/1.1\r\nHost: h\r\n\r\n", "HEAD", "/r", "h", "h", "host=h;", "", 0, 1,
       true},
      {"absolute_form", "GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "http://h/p?q", "h",
       "h", "host=h;", "", 0, 1, true},
      {"zero_length_post", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "POST", "/",
       "h", "h", "host=h;content-length=0;", "", 0, 1, true},
  };
}

class ValidRequestTest : public ::testing::TestWithParam<std::tuple<ValidCase, bool>> {};

TEST_P(ValidRequestTest, Decodes) {
  const auto& [c, byte_at_a_time] = GetParam();
  ServerHarness h;
  ASSERT_TRUE(h.Run(c.input, byte_at_a_time).ok()) << c.name;
  ASSERT_EQ(h.server.streams.size(), 1u) << c.name;
  FakeStream& s = *h.server.streams[0];
  ASSERT_NE(s.headers, nullptr);
  EXPECT_TRUE(s.ended);
  const RequestHeaders& r = *s.headers;
  EXPECT_EQ(r.method, c.method);
  EXPECT_EQ(r.path, c.path);
  EXPECT_EQ(r.host, c.host);
  EXPECT_EQ(r.service, c.service);
  EXPECT_EQ(HeaderList(r.headers), c.headers);
  EXPECT_EQ(s.body, c.body);
  EXPECT_EQ(r.content_length, c.content_length);
  EXPECT_EQ(r.version_major, 1);
  EXPECT_EQ(r.version_minor, c.minor);
  EXPECT_EQ(r.keep_alive, c.keep_alive);
  EXPECT_EQ(r.stream_id, 1u);
  EXPECT_EQ(s.stream_id, 1u);
  EXPECT_EQ(h.codec->WantsClose(), !c.keep_alive);
  EXPECT_FALSE(h.codec->StreamActive());
  EXPECT_TRUE(h.input.Empty());
  EXPECT_EQ(h.out.written.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << h.out.written;
}

INSTANTIATE_TEST_SUITE_P(Table,
                         ValidRequestTest,
                         ::testing::Combine(::testing::ValuesIn(ValidCases()), ::testing::Bool()),
                         [](const auto& p) {
                           return std::string(std::get<0>(p.param).name) +
                                  (std::get<1>(p.param) ? "_bytewise" : "_whole");
                         });

// ---------------------------------------------------------------------------------------------
// Table of invalid requests: each gets a complete error reply and an error status.

struct InvalidCase {
  const char* name;
  std::string input;
  int code;
};

std::vector<InvalidCase> InvalidCases() {
  const std::string post = "POST / HTTP/1.1\r\nHost: h\r\n";
  return {
      // Request smuggling: ambiguous framing is refused, never passed on.
      {"cl_then_te", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"te_then_cl", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
       400},
      {"two_different_cl", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400},
      {"two_equal_cl", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"cl_list", post + "Content-Length: 5, 5\r\n\r\nhello", 400},
      {"cl_negative", post + "Content-Length: -1\r\n\r\n", 400},
      {"cl_not_number", post + "Content-Length: abc\r\n\r\n", 400},
      {"cl_overflow", post + "Content-Length: 99999999999999999999999\r\n\r\n", 400},
      {"te_gzip_only", post + "Transfer-Encoding: gzip\r\n\r\nxxxx", 400},
      {"te_chunked_not_last", post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
      {"te_two_headers_identity_last",
       post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400},
      {"te_xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
      {"te_other_coding_first", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
      {"te_in_http10", "POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      // Versions.
      {"http20", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"http12", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
      {"http09", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
      {"version_garbage", "GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400},
      {"version_missing_is_http09", "GET /\r\nHost: h\r\n\r\n", 505},
      // Header syntax.
      {"obs_fold_space", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400},
      {"obs_fold_tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400},
      {"obs_fold_after_empty", "GET / HTTP/1.1\r\nHost: h\r\nX-A:\r\n b\r\n\r\n", 400},
      {"space_in_name", "GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", 400},
      {"space_before_colon", "GET / HTTP/1.1\r\nHost: h\r\nBad : x\r\n\r\n", 400},
      {"nul_in_value", std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35), 400},
      {"no_colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},
      {"missing_host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400},
      {"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      // Request line.
      {"no_spaces", "GET/HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"extra_token", "GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n", 400},
      {"control_char", "\x01GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"unknown_method", "FROB / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"space_in_target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"connect", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501},
      // Chunked bodies.
      {"bad_chunk_size", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_overflow",
       post + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nx\r\n0\r\n\r\n", 400},
      {"chunk_missing_crlf", post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400},
      {"negative_chunk", post + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunk_size_bare_cr", post + "Transfer-Encoding: chunked\r\n\r\n5\rXhello\r\n0\r\n\r\n",
       400},
      {"chunk_lf_only", post + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", 400},
      {"last_chunk_bad_end", post + "Transfer-Encoding: chunked\r\n\r\n0\r\n\rX", 400},
      {"chunk_trailer_bare_cr", post + "Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\rZ\r\n\r\n",
       400},
      // Line endings.
      {"bare_cr_request_line", "GET / HTTP/1.1\rX-A: b\r\nHost: h\r\n\r\n", 400},
      {"bare_cr_in_value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400},
      {"head_end_bare_cr", "GET / HTTP/1.1\r\nHost: h\r\n\rX", 400},
      // Size limit.
      {"oversize_value",
       "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n", 431},
      {"oversize_many_headers",
       [] {
         std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
         for (int i = 0; i < 4000; ++i) {
           s += "X-H" + std::to_string(i) + ": 0123456789\r\n";
         }
         return s + "\r\n";
       }(),
       431},
      {"oversize_url", "GET /" + std::string(66 * 1024, 'u') + " HTTP/1.1\r\nHost: h\r\n\r\n", 431},
  };
}

void PrintTo(const InvalidCase& c, std::ostream* os) {
  *os << c.name;
}
void PrintTo(const ValidCase& c, std::ostream* os) {
  *os << c.name;
}

class InvalidRequestTest : public ::testing::TestWithParam<std::tuple<InvalidCase, bool>> {};

TEST_P(InvalidRequestTest, Rejects) {
  const auto& [c, byte_at_a_time] = GetParam();
  ServerHarness h;
  const absl::Status status = h.Run(c.input, byte_at_a_time, /*respond=*/false);
  EXPECT_FALSE(status.ok()) << c.name;
  const std::string status_line = "HTTP/1.1 " + std::to_string(c.code) + " ";
  EXPECT_EQ(h.out.written.rfind(status_line, 0), 0u) << c.name << ": " << h.out.written;
  EXPECT_NE(h.out.written.find("\r\nconnection: close\r\n"), std::string::npos);
  const size_t body_at = h.out.written.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  const std::string body = h.out.written.substr(body_at + 4);
  EXPECT_FALSE(body.empty());
  EXPECT_NE(h.out.written.find("content-length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_TRUE(h.codec->WantsClose());
  // Framing errors are caught before the request is handed on.
  if (c.code != 400 || std::string(c.name).find("chunk") == std::string::npos) {
    EXPECT_TRUE(h.server.streams.empty()) << c.name;
  }
  // Later calls keep failing and write nothing more.
  const size_t written = h.out.written.size();
  EXPECT_FALSE(h.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n").ok());
  EXPECT_EQ(h.out.written.size(), written);
}

INSTANTIATE_TEST_SUITE_P(Table,
                         InvalidRequestTest,
                         ::testing::Combine(::testing::ValuesIn(InvalidCases()), ::testing::Bool()),
                         [](const auto& p) {
                           return std::string(std::get<0>(p.param).name) +
                                  (std::get<1>(p.param) ? "_bytewise" : "_whole");
                         });

// ---------------------------------------------------------------------------------------------
// Server behaviour.

TEST(Http1ServerTest, PipelinedRequestsAnsweredInOrder) {
  ServerHarness h;
  const std::string first = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  const std::string third = "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_TRUE(h.Feed(first + second + third).ok());
  // Only the first request is taken; the rest waits for its response.
  ASSERT_EQ(h.server.streams.size(), 1u);
  EXPECT_EQ(h.input.Length(), second.size() + third.size());
  EXPECT_TRUE(h.codec->StreamActive());
  ASSERT_TRUE(h.codec->Dispatch(h.input).ok());
  EXPECT_EQ(h.server.streams.size(), 1u);

  Respond(*h.server.streams[0], 200, "one");
  EXPECT_FALSE(h.codec->StreamActive());
  ASSERT_TRUE(h.codec->Dispatch(h.input).ok());
  ASSERT_EQ(h.server.streams.size(), 2u);
  EXPECT_EQ(h.server.streams[1]->headers->path, "/2");
  EXPECT_EQ(h.server.streams[1]->headers->stream_id, 2u);
  EXPECT_EQ(h.server.streams[1]->body, "abc");
  EXPECT_EQ(h.input.Length(), third.size());

  Respond(*h.server.streams[1], 201, "two");
  ASSERT_TRUE(h.codec->Dispatch(h.input).ok());
  ASSERT_EQ(h.server.streams.size(), 3u);
  EXPECT_EQ(h.server.streams[2]->headers->stream_id, 3u);
  Respond(*h.server.streams[2], 404, "");
  EXPECT_TRUE(h.input.Empty());
  EXPECT_EQ(h.out.written,
            "HTTP/1.1 200 OK\r\nserver: test\r\ncontent-length: 3\r\n\r\none"
            "HTTP/1.1 201 Created\r\nserver: test\r\ncontent-length: 3\r\n\r\ntwo"
            "HTTP/1.1 404 Not Found\r\nserver: test\r\ncontent-length: 0\r\n\r\n");
  EXPECT_FALSE(h.codec->WantsClose());
}

TEST(Http1ServerTest, ResponseBeforeRequestEndsContinuesOnlyAfterIt) {
  // The response is complete while the request body is still arriving: the connection closes.
  ServerHarness h;
  ASSERT_TRUE(h.Feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc").ok());
  ASSERT_EQ(h.server.streams.size(), 1u);
  Respond(*h.server.streams[0], 413, "too big");
  EXPECT_TRUE(h.codec->WantsClose());
  EXPECT_FALSE(h.codec->StreamActive());
}

TEST(Http1ServerTest, ExpectContinue) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                     "Content-Length: 5\r\n\r\n")
                  .ok());
  EXPECT_EQ(h.out.Take(), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(h.server.streams.size(), 1u);
  EXPECT_EQ(h.server.streams[0]->headers->headers.Get("expect"), nullptr);
  ASSERT_TRUE(h.Feed("hello").ok());
  EXPECT_EQ(h.server.streams[0]->body, "hello");
  EXPECT_TRUE(h.server.streams[0]->ended);
  Respond(*h.server.streams[0], 200, "");
  EXPECT_EQ(h.out.Take(), "HTTP/1.1 200 OK\r\nserver: test\r\ncontent-length: 0\r\n\r\n");
}

TEST(Http1ServerTest, HeadResponseHasHeadersButNoBody) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("HEAD /f HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.1\r\nHost: h\r\n\r\n").ok());
  ASSERT_EQ(h.server.streams.size(), 1u);
  ResponseHeaders headers;
  headers.headers.Add("content-length", "100");
  h.server.streams[0]->encoder->EncodeHeaders(headers, false);
  Buffer body;
  body.Add(std::string(100, 'x'));
  h.server.streams[0]->encoder->EncodeData(body, true);
  EXPECT_EQ(h.out.Take(), "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
  ASSERT_TRUE(h.codec->Dispatch(h.input).ok());
  ASSERT_EQ(h.server.streams.size(), 2u);
  EXPECT_EQ(h.server.streams[1]->headers->path, "/g");
}

TEST(Http1ServerTest, HeadResponseWithUnknownLengthIsNotChunked) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n").ok());
  ResponseHeaders headers;
  h.server.streams[0]->encoder->EncodeHeaders(headers, false);
  Buffer empty;
  h.server.streams[0]->encoder->EncodeData(empty, true);
  EXPECT_EQ(h.out.Take(), "HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_FALSE(h.codec->WantsClose());
}

TEST(Http1ServerTest, Http10WithoutKeepAliveGetsCloseDelimitedResponse) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("GET / HTTP/1.0\r\n\r\n").ok());
  EXPECT_TRUE(h.codec->WantsClose());
  ResponseHeaders headers;
  h.server.streams[0]->encoder->EncodeHeaders(headers, false);
  Buffer body;
  body.Add("streamed");
  h.server.streams[0]->encoder->EncodeData(body, true);
  EXPECT_EQ(h.out.Take(), "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nstreamed");
}

TEST(Http1ServerTest, Http10KeepAlive) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").ok());
  EXPECT_FALSE(h.codec->WantsClose());
  Respond(*h.server.streams[0], 200, "hi");
  EXPECT_EQ(h.out.Take(),
            "HTTP/1.1 200 OK\r\nserver: test\r\ncontent-length: 2\r\nconnection: keep-alive\r\n"
            "\r\nhi");
  EXPECT_FALSE(h.codec->WantsClose());
  // Unknown length to a 1.0 keep-alive client: the close delimits the body.
  ASSERT_TRUE(h.Feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").ok());
  ResponseHeaders headers;
  h.server.streams[1]->encoder->EncodeHeaders(headers, false);
  EXPECT_EQ(h.out.Take(), "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
  EXPECT_TRUE(h.codec->WantsClose());
}

TEST(Http1ServerTest, ConnectionCloseStopsPipeline) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                     "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
                  .ok());
  EXPECT_TRUE(h.codec->WantsClose());
  Respond(*h.server.streams[0], 200, "");
  EXPECT_EQ(h.out.Take(),
            "HTTP/1.1 200 OK\r\nserver: test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  ASSERT_TRUE(h.codec->Dispatch(h.input).ok());
  EXPECT_EQ(h.server.streams.size(), 1u);
}

TEST(Http1ServerTest, DrainingAddsConnectionClose) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n").ok());
  EXPECT_FALSE(h.codec->WantsClose());
  h.codec->StartDraining();
  EXPECT_TRUE(h.codec->WantsClose());
  Respond(*h.server.streams[0], 200, "x");
  EXPECT_NE(h.out.Take().find("\r\nconnection: close\r\n"), std::string::npos);
}

TEST(Http1ServerTest, FramingOfResponses) {
  ServerHarness h;
  auto next = [&](std::string_view request) -> FakeStream& {
    EXPECT_TRUE(h.Feed(request).ok());
    return *h.server.streams.back();
  };
  const std::string get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  {
    FakeStream& s = next(get);
    ResponseHeaders headers;
    headers.status = 204;
    s.encoder->EncodeHeaders(headers, true);
    EXPECT_EQ(h.out.Take(), "HTTP/1.1 204 No Content\r\n\r\n");
  }
  {
    FakeStream& s = next(get);
    ResponseHeaders headers;
    headers.status = 304;
    s.encoder->EncodeHeaders(headers, true);
    EXPECT_EQ(h.out.Take(), "HTTP/1.1 304 Not Modified\r\n\r\n");
  }
  {
    FakeStream& s = next(get);
    ResponseHeaders headers;
    headers.status = 500;
    headers.reason = "Oops";
    headers.headers.Add("Connection", "keep-alive");  // the codec writes its own
    headers.headers.Add("Transfer-Encoding", "gzip");
    s.encoder->EncodeHeaders(headers, true);
    EXPECT_EQ(h.out.Take(), "HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n");
  }
  {
    FakeStream& s = next(get);
    ResponseHeaders headers;
    s.encoder->EncodeHeaders(headers, false);
    Buffer data;
    data.Add("hello");
    s.encoder->EncodeData(data, false);
    EXPECT_TRUE(data.Empty());
    data.Add(std::string(300, 'z'));
    s.encoder->EncodeData(data, false);
    s.encoder->EncodeData(data, true);
    EXPECT_EQ(h.out.Take(),
              "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n12c\r\n" +
                  std::string(300, 'z') + "\r\n0\r\n\r\n");
  }
  {
    FakeStream& s = next(get);
    ResponseHeaders headers;
    s.encoder->EncodeHeaders(headers, false);
    Buffer data;
    data.Add("last");
    s.encoder->EncodeData(data, true);
    EXPECT_EQ(h.out.Take(),
              "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nlast\r\n0\r\n\r\n");
  }
  EXPECT_FALSE(h.codec->WantsClose());
}

TEST(Http1ServerTest, LargeBodyStreamsWithBoundedMemory) {
  ServerHarness h;
  constexpr size_t kTotal = 100u << 20;
  ASSERT_TRUE(h.Feed("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(kTotal) +
                     "\r\n\r\n")
                  .ok());
  ASSERT_EQ(h.server.streams.size(), 1u);
  FakeStream& s = *h.server.streams[0];
  // Count instead of keeping: replace the recording decoder's body with a running total.
  size_t received = 0;
  const std::string piece(64 * 1024, 'b');
  for (size_t sent = 0; sent < kTotal; sent += piece.size()) {
    h.input.Add(piece);
    ASSERT_TRUE(h.codec->Dispatch(h.input).ok());
    ASSERT_TRUE(h.input.Empty());  // nothing is held back
    received += s.body.size();
    s.body.clear();
  }
  EXPECT_EQ(received, kTotal);
  EXPECT_TRUE(s.ended);
  EXPECT_LE(s.max_chunk, piece.size());
  EXPECT_GT(s.data_calls, 1000);
}

TEST(Http1ServerTest, LargeChunkedBodyStreams) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n").ok());
  FakeStream& s = *h.server.streams[0];
  const std::string chunk = "8000\r\n" + std::string(0x8000, 'c') + "\r\n";
  size_t received = 0;
  for (int i = 0; i < 320; ++i) {  // 10 MiB
    ASSERT_TRUE(h.Feed(chunk).ok());
    received += s.body.size();
    s.body.clear();
  }
  ASSERT_TRUE(h.Feed("0\r\n\r\n").ok());
  EXPECT_EQ(received, 320u * 0x8000);
  EXPECT_TRUE(s.ended);
}

TEST(Http1ServerTest, UpgradeRequestIsServedAsPlainRequest) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
                  .ok());
  ASSERT_EQ(h.server.streams.size(), 1u);
  EXPECT_EQ(HeaderList(h.server.streams[0]->headers->headers), "host=h;");
  Respond(*h.server.streams[0], 200, "");
  ASSERT_TRUE(h.codec->Dispatch(h.input).ok());
  ASSERT_EQ(h.server.streams.size(), 2u);
  EXPECT_EQ(h.server.streams[1]->headers->path, "/2");
}

// A decoder that checks body bytes arrive in the very slice the socket read filled.
struct SliceCheckingStream : public FakeStream {
  void DecodeData(Buffer& data, bool end_stream) override {
    iovec iov;
    if (data.FrontSlices(&iov, 1) == 1) {
      first_slice = iov.iov_base;
    }
    FakeStream::DecodeData(data, end_stream);
  }
  const void* first_slice = nullptr;
};

TEST(Http1ServerTest, WholeBodySlicesAreMovedNotCopied) {
  struct Owner : public ServerCodecCallbacks {
    RequestDecoder& NewStream(ResponseEncoder& encoder, uint64_t) override {
      stream.encoder = &encoder;
      return stream;
    }
    SliceCheckingStream stream;
  } owner;
  FakeOutput out;
  ServerCodecPtr codec = Http1CodecFactory().CreateServerCodec(out, owner, CodecOptions());
  Buffer input;
  input.Add("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 16384\r\n\r\n");
  Buffer body;
  body.Add(std::string(Buffer::kSliceSize, 'b'));
  iovec iov;
  ASSERT_EQ(body.FrontSlices(&iov, 1), 1u);
  input.Move(body);
  ASSERT_EQ(input.SliceCount(), 2u);
  ASSERT_TRUE(codec->Dispatch(input).ok());
  EXPECT_TRUE(owner.stream.ended);
  EXPECT_EQ(owner.stream.body.size(), Buffer::kSliceSize);
  EXPECT_EQ(owner.stream.first_slice, iov.iov_base);
}

TEST(Http1ServerTest, EofMidRequestIsAnError) {
  ServerHarness h;
  ASSERT_TRUE(h.Feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab").ok());
  EXPECT_FALSE(h.codec->DispatchEof().ok());
  ServerHarness idle;
  EXPECT_TRUE(idle.codec->DispatchEof().ok());
}

TEST(Http1ServerTest, StreamActiveWhileHeadIsPartial) {
  ServerHarness h;
  EXPECT_FALSE(h.codec->StreamActive());
  ASSERT_TRUE(h.Feed("GET / HTT").ok());
  EXPECT_TRUE(h.codec->StreamActive());
  EXPECT_TRUE(h.server.streams.empty());
}

// ---------------------------------------------------------------------------------------------
// Client codec.

struct FakeResponse : public ResponseDecoder {
  void Decode1xxHeaders(ResponseHeadersPtr h) override { informational.push_back(h->status); }
  void DecodeHeaders(ResponseHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    ended = end_stream;
  }
  void DecodeData(Buffer& data, bool end_stream) override {
    EXPECT_FALSE(ended);
    body += data.ToString();
    data.Drain(data.Length());
    ended = end_stream;
  }
  std::vector<int> informational;
  ResponseHeadersPtr headers;
  std::string body;
  bool ended = false;
};

struct ClientHarness {
  ClientHarness() : codec(Http1CodecFactory().CreateClientCodec(out, CodecOptions())) {}

  // Sends a request with no body and parses `response`.
  absl::Status Exchange(FakeResponse& decoder,
                        const std::string& method,
                        const std::string& response,
                        bool byte_at_a_time = false) {
    RequestEncoder& encoder = codec->NewStream(decoder);
    RequestHeaders request;
    request.method = method;
    request.path = "/r";
    request.host = "up:80";
    encoder.EncodeHeaders(request, true);
    if (byte_at_a_time) {
      for (char c : response) {
        input.Add(std::string_view(&c, 1));
        absl::Status status = codec->Dispatch(input);
        if (!status.ok()) {
          return status;
        }
      }
      return absl::OkStatus();
    }
    input.Add(response);
    return codec->Dispatch(input);
  }

  FakeOutput out;
  ClientCodecPtr codec;
  Buffer input;
};

TEST(Http1ClientTest, EncodesRequestWithHost) {
  ClientHarness c;
  FakeResponse r;
  RequestEncoder& encoder = c.codec->NewStream(r);
  RequestHeaders request;
  request.method = "POST";
  request.path = "/p?q=1";
  request.host = "svc:8080";
  request.headers.Add("X-A", "1");
  request.headers.Add("Connection", "close");
  encoder.EncodeHeaders(request, false);
  Buffer data;
  data.Add("abc");
  encoder.EncodeData(data, true);
  EXPECT_EQ(c.out.Take(),
            "POST /p?q=1 HTTP/1.1\r\nx-a: 1\r\nhost: svc:8080\r\ntransfer-encoding: chunked\r\n"
            "\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_TRUE(c.codec->StreamActive());
}

TEST(Http1ClientTest, EncodesRequestWithContentLengthAndNoBody) {
  ClientHarness c;
  FakeResponse r;
  RequestEncoder& encoder = c.codec->NewStream(r);
  RequestHeaders request;
  request.method = "PUT";
  request.path = "/x";
  request.headers.Add("host", "given");
  request.headers.Add("content-length", "2");
  encoder.EncodeHeaders(request, false);
  Buffer data;
  data.Add("hi");
  encoder.EncodeData(data, true);
  EXPECT_EQ(c.out.Take(), "PUT /x HTTP/1.1\r\nhost: given\r\ncontent-length: 2\r\n\r\nhi");
  ClientHarness c2;
  FakeResponse r2;
  RequestHeaders get;
  get.method = "GET";
  get.path = "/";
  get.host = "h";
  c2.codec->NewStream(r2).EncodeHeaders(get, true);
  EXPECT_EQ(c2.out.Take(), "GET / HTTP/1.1\r\nhost: h\r\n\r\n");
}

TEST(Http1ClientTest, ContentLengthResponseThenKeepAlive) {
  for (bool bytewise : {false, true}) {
    ClientHarness c;
    FakeResponse r;
    ASSERT_TRUE(c.Exchange(r, "GET",
                           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\n"
                           "Connection: keep-alive\r\n\r\nhello",
                           bytewise)
                    .ok());
    ASSERT_NE(r.headers, nullptr);
    EXPECT_EQ(r.headers->status, 200);
    EXPECT_EQ(r.headers->reason, "OK");
    EXPECT_EQ(r.headers->content_length, 5);
    EXPECT_EQ(HeaderList(r.headers->headers), "content-length=5;x-up=1;");
    EXPECT_EQ(r.body, "hello");
    EXPECT_TRUE(r.ended);
    EXPECT_FALSE(c.codec->StreamActive());
    EXPECT_FALSE(c.codec->WantsClose());
    FakeResponse r2;
    ASSERT_TRUE(c.Exchange(r2, "GET", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").ok());
    EXPECT_EQ(r2.headers->status, 404);
    EXPECT_TRUE(r2.ended);
  }
}

TEST(Http1ClientTest, ChunkedResponse) {
  for (bool bytewise : {false, true}) {
    ClientHarness c;
    FakeResponse r;
    ASSERT_TRUE(c.Exchange(r, "GET",
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                           bytewise)
                    .ok());
    EXPECT_EQ(r.body, "abcde");
    EXPECT_EQ(r.headers->content_length, -1);
    EXPECT_TRUE(r.headers->headers.empty());
    EXPECT_TRUE(r.ended);
    EXPECT_FALSE(c.codec->WantsClose());
  }
}

TEST(Http1ClientTest, HeadResponseHasNoBody) {
  ClientHarness c;
  FakeResponse r;
  ASSERT_TRUE(c.Exchange(r, "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n").ok());
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.headers->content_length, 1000);
  EXPECT_FALSE(c.codec->StreamActive());
  // The connection is still in sync: the next response parses.
  FakeResponse r2;
  ASSERT_TRUE(c.Exchange(r2, "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").ok());
  EXPECT_EQ(r2.body, "ok");
}

TEST(Http1ClientTest, NoContentAndNotModified) {
  ClientHarness c;
  FakeResponse r;
  ASSERT_TRUE(c.Exchange(r, "DELETE", "HTTP/1.1 204 No Content\r\n\r\n").ok());
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.headers->status, 204);
  FakeResponse r2;
  ASSERT_TRUE(c.Exchange(r2, "GET", "HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n").ok());
  EXPECT_TRUE(r2.ended);
  EXPECT_FALSE(c.codec->WantsClose());
  // Framing headers on a 204 do not give it a body (found by the fuzzer).
  FakeResponse r3;
  ASSERT_TRUE(
      c.Exchange(r3, "GET", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n").ok());
  EXPECT_TRUE(r3.ended);
  EXPECT_FALSE(c.codec->StreamActive());
  FakeResponse r4;
  ASSERT_TRUE(c.Exchange(r4, "GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz").ok());
  EXPECT_EQ(r4.body, "z");
}

TEST(Http1ClientTest, InformationalThenFinal) {
  for (bool bytewise : {false, true}) {
    ClientHarness c;
    FakeResponse r;
    ASSERT_TRUE(
        c.Exchange(r, "POST",
                   "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
                   "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
                   bytewise)
            .ok());
    EXPECT_EQ(r.informational, (std::vector<int>{100, 103}));
    EXPECT_EQ(r.headers->status, 201);
    EXPECT_EQ(r.body, "ok");
    EXPECT_TRUE(r.ended);
  }
}

TEST(Http1ClientTest, CloseDelimitedEndsAtEof) {
  ClientHarness c;
  FakeResponse r;
  ASSERT_TRUE(c.Exchange(r, "GET", "HTTP/1.1 200 OK\r\n\r\nabc").ok());
  ASSERT_TRUE(c.codec->Dispatch(c.input).ok());
  c.input.Add("def");
  ASSERT_TRUE(c.codec->Dispatch(c.input).ok());
  EXPECT_FALSE(r.ended);
  EXPECT_TRUE(c.codec->WantsClose());
  ASSERT_TRUE(c.codec->DispatchEof().ok());
  EXPECT_EQ(r.body, "abcdef");
  EXPECT_TRUE(r.ended);
  EXPECT_FALSE(c.codec->StreamActive());
}

TEST(Http1ClientTest, TruncatedResponsesAreErrors) {
  for (const char* response : {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                               "HTTP/1.1 200 OK\r\nContent-Le", ""}) {
    ClientHarness c;
    FakeResponse r;
    ASSERT_TRUE(c.Exchange(r, "GET", response).ok()) << response;
    const absl::Status status = c.codec->DispatchEof();
    EXPECT_FALSE(status.ok()) << response;
    EXPECT_FALSE(r.ended);
  }
  ClientHarness c;
  FakeResponse r;
  ASSERT_TRUE(c.Exchange(r, "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab").ok());
  EXPECT_NE(c.codec->DispatchEof().message().find("upstream closed mid-response"),
            std::string::npos);
}

TEST(Http1ClientTest, CloseAndHttp10) {
  {
    ClientHarness c;
    FakeResponse r;
    ASSERT_TRUE(
        c.Exchange(r, "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .ok());
    EXPECT_TRUE(c.codec->WantsClose());
    EXPECT_FALSE(r.headers->keep_alive);
  }
  {
    ClientHarness c;
    FakeResponse r;
    ASSERT_TRUE(c.Exchange(r, "GET", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").ok());
    EXPECT_TRUE(c.codec->WantsClose());
  }
  {
    ClientHarness c;
    FakeResponse r;
    ASSERT_TRUE(c.Exchange(r, "GET",
                           "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                    .ok());
    EXPECT_FALSE(c.codec->WantsClose());
  }
}

TEST(Http1ClientTest, GarbageIsAnError) {
  for (const char* response :
       {"FOO BAR\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n"}) {
    ClientHarness c;
    FakeResponse r;
    EXPECT_FALSE(c.Exchange(r, "GET", response).ok()) << response;
    EXPECT_TRUE(c.codec->WantsClose());
  }
  // Bytes with no request outstanding.
  ClientHarness c;
  c.input.Add("HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_FALSE(c.codec->Dispatch(c.input).ok());
}

// ---------------------------------------------------------------------------------------------
// Round trips: what one side encodes, the other decodes.

TEST(Http1RoundTripTest, ChunkedRequestAndResponse) {
  ClientHarness client;
  ServerHarness server;
  FakeResponse response;
  RequestEncoder& encoder = client.codec->NewStream(response);
  RequestHeaders request;
  request.method = "POST";
  request.path = "/echo";
  request.host = "svc";
  request.headers.Add("X-Trace", "t1");
  encoder.EncodeHeaders(request, false);
  std::string sent;
  for (int i = 0; i < 50; ++i) {
    Buffer data;
    std::string piece(static_cast<size_t>(i * 37 + 1), static_cast<char>('a' + i % 26));
    sent += piece;
    data.Add(piece);
    encoder.EncodeData(data, i == 49);
  }
  ASSERT_TRUE(server.Feed(client.out.Take()).ok());
  ASSERT_EQ(server.server.streams.size(), 1u);
  FakeStream& stream = *server.server.streams[0];
  EXPECT_EQ(stream.headers->path, "/echo");
  EXPECT_EQ(stream.headers->service, "svc");
  EXPECT_EQ(*stream.headers->headers.Get("x-trace"), "t1");
  EXPECT_EQ(stream.body, sent);
  EXPECT_TRUE(stream.ended);

  ResponseHeaders headers;
  headers.headers.Add("X-Echo", "1");
  stream.encoder->EncodeHeaders(headers, false);
  Buffer data;
  data.Add(sent);
  stream.encoder->EncodeData(data, false);
  stream.encoder->EncodeData(data, true);
  client.input.Add(server.out.Take());
  ASSERT_TRUE(client.codec->Dispatch(client.input).ok());
  EXPECT_EQ(response.headers->status, 200);
  EXPECT_EQ(*response.headers->headers.Get("X-ECHO"), "1");
  EXPECT_EQ(response.body, sent);
  EXPECT_TRUE(response.ended);
  EXPECT_FALSE(client.codec->StreamActive());
  EXPECT_FALSE(server.codec->StreamActive());
}

// ---------------------------------------------------------------------------------------------
// Messages and headers.

TEST(MessageTest, HeaderMap) {
  HeaderMap map;
  map.Add("X-A", "1");
  map.Add("x-b", "2");
  map.Add("X-a", "3");
  EXPECT_EQ(*map.Get("x-A"), "1");
  EXPECT_EQ(map.Get("nope"), nullptr);
  map.Append("X-B", "4");
  EXPECT_EQ(*map.Get("x-b"), "2, 4");
  map.Append("new", "5");
  EXPECT_EQ(*map.Get("NEW"), "5");
  EXPECT_EQ(map.Remove("x-a"), 2u);
  map.Set("X-B", "only");
  EXPECT_EQ(HeaderList(map), "new=5;x-b=only;");
  EXPECT_EQ(map.ByteSize(), 3u + 1 + 3 + 4);
}

TEST(MessageTest, PathAndQuery) {
  RequestHeaders r;
  r.path = "/a/b?x=1&y=2#frag";
  EXPECT_EQ(r.PathOnly(), "/a/b");
  EXPECT_EQ(r.Query(), "x=1&y=2");
  r.path = "/plain";
  EXPECT_EQ(r.PathOnly(), "/plain");
  EXPECT_EQ(r.Query(), "");
  EXPECT_EQ(ReasonPhrase(404), "Not Found");
  EXPECT_EQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(ReasonPhrase(799), "Unknown");
}

}  // namespace
}  // namespace ottava::mesh
