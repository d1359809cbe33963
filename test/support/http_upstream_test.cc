#include "test/support/http_upstream.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "test/support/process.h"

namespace ottava::test {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<HttpUpstream> StartUpstream(const std::string& name = "up-a") {
  auto upstream = HttpUpstream::Start({.name = name});
  EXPECT_TRUE(upstream.ok()) << upstream.status();
  return std::move(*upstream);
}

// A raw client socket to the upstream, with a receive timeout so no test can hang.
int Connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

void Send(int fd, const std::string& data) {
  ASSERT_EQ(::send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
}

// Reads until `count` complete Content-Length responses arrived, the peer closed, or an error
// (errno_out tells which). Returns everything read.
std::string ReadResponses(int fd, int count, int* errno_out = nullptr) {
  std::string data;
  int complete = 0;
  size_t pos = 0;
  char buffer[65536];
  while (complete < count) {
    const size_t head_end = data.find("\r\n\r\n", pos);
    if (head_end != std::string::npos) {
      const size_t cl = data.find("Content-Length: ", pos);
      if (cl != std::string::npos && cl < head_end) {
        const size_t length = std::stoul(data.substr(cl + 16));
        if (data.size() >= head_end + 4 + length) {
          pos = head_end + 4 + length;
          ++complete;
          continue;
        }
      }
    }
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      if (errno_out != nullptr) {
        *errno_out = n < 0 ? errno : 0;
      }
      break;
    }
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

TEST(HttpUpstreamTest, EchoesTheRequestAsJson) {
  auto upstream = StartUpstream("orders-v1");
  httplib::Client client("127.0.0.1", upstream->port());
  auto result = client.Post("/api/orders?x=1&y=2", {{"X-Test", "hello"}}, "the body", "text/plain");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("x-upstream"), "orders-v1");
  const auto echo = nlohmann::json::parse(result->body);
  EXPECT_EQ(echo["upstream"], "orders-v1");
  EXPECT_EQ(echo["method"], "POST");
  EXPECT_EQ(echo["path"], "/api/orders");
  EXPECT_EQ(echo["query"], "x=1&y=2");
  EXPECT_EQ(echo["headers"]["x-test"], "hello");
  EXPECT_EQ(echo["headers"]["content-type"], "text/plain");
  EXPECT_EQ(echo["body"], "the body");
  EXPECT_EQ(echo["body_length"], 8);
  char checksum[17];
  std::snprintf(checksum, sizeof(checksum), "%016llx",
                static_cast<unsigned long long>(HttpUpstream::BodyChecksum("the body")));
  EXPECT_EQ(echo["body_checksum"], checksum);

  EXPECT_EQ(upstream->requests(), 1u);
  const auto recorded = upstream->Recorded();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].method, "POST");
  EXPECT_EQ(recorded[0].path, "/api/orders");
  EXPECT_EQ(recorded[0].query, "x=1&y=2");
  EXPECT_EQ(recorded[0].Header("x-test"), "hello");
  EXPECT_EQ(recorded[0].body, "the body");
}

TEST(HttpUpstreamTest, KeepsConnectionsAliveAndAnswersPipelinedRequests) {
  auto upstream = StartUpstream();
  const int fd = Connect(upstream->port());
  ASSERT_GE(fd, 0);
  Send(fd,
       "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
       "POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
       "GET /three HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string responses = ReadResponses(fd, 3);
  ::close(fd);
  EXPECT_NE(responses.find("\"path\":\"/one\""), std::string::npos) << responses;
  EXPECT_NE(responses.find("\"body\":\"abc\""), std::string::npos) << responses;
  EXPECT_NE(responses.find("\"path\":\"/three\""), std::string::npos) << responses;
  EXPECT_EQ(upstream->requests(), 3u);
  EXPECT_EQ(upstream->connections(), 1u);
}

TEST(HttpUpstreamTest, ClosesAfterConnectionClose) {
  auto upstream = StartUpstream();
  const int fd = Connect(upstream->port());
  ASSERT_GE(fd, 0);
  Send(fd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  int error = -1;
  const std::string data = ReadResponses(fd, 2, &error);  // only one comes, then EOF
  ::close(fd);
  EXPECT_EQ(error, 0);
  EXPECT_NE(data.find("Connection: close"), std::string::npos) << data;
}

TEST(HttpUpstreamTest, ReadsChunkedRequestBodies) {
  auto upstream = StartUpstream();
  const int fd = Connect(upstream->port());
  ASSERT_GE(fd, 0);
  Send(fd,
       "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n");
  const std::string data = ReadResponses(fd, 1);
  ::close(fd);
  EXPECT_NE(data.find("\"body\":\"hello, world\""), std::string::npos) << data;
  ASSERT_EQ(upstream->Recorded().size(), 1u);
  EXPECT_EQ(upstream->Recorded()[0].body_length, 12u);
}

TEST(HttpUpstreamTest, AnswersExpectContinueBeforeTheBody) {
  auto upstream = StartUpstream();
  const int fd = Connect(upstream->port());
  ASSERT_GE(fd, 0);
  Send(fd, "PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  char interim[64] = {};
  const std::string expected = "HTTP/1.1 100 Continue\r\n\r\n";
  ASSERT_EQ(::recv(fd, interim, expected.size(), MSG_WAITALL),
            static_cast<ssize_t>(expected.size()));
  EXPECT_EQ(std::string(interim), expected);
  Send(fd, "xyz");
  const std::string data = ReadResponses(fd, 1);
  ::close(fd);
  EXPECT_NE(data.find("\"body\":\"xyz\""), std::string::npos) << data;
}

TEST(HttpUpstreamTest, ScriptedStatusAndDelay) {
  auto upstream = StartUpstream();
  httplib::Client client("127.0.0.1", upstream->port());
  upstream->SetStatus(503);
  auto result = client.Get("/");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);

  upstream->SetStatus(200);
  upstream->SetDelay(milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  result = client.Get("/");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(200));
}

TEST(HttpUpstreamTest, ResetOnRequestClosesWithoutAnswer) {
  auto upstream = StartUpstream();
  upstream->SetMode(HttpUpstream::Mode::kResetOnRequest);
  const int fd = Connect(upstream->port());
  ASSERT_GE(fd, 0);
  Send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  int error = -1;
  const std::string data = ReadResponses(fd, 1, &error);
  ::close(fd);
  EXPECT_EQ(data, "");
  EXPECT_EQ(error, ECONNRESET);
  EXPECT_EQ(upstream->requests(), 1u);

  httplib::Client client("127.0.0.1", upstream->port());
  EXPECT_FALSE(client.Get("/"));
}

TEST(HttpUpstreamTest, GarbageIsNotHttp) {
  auto upstream = StartUpstream();
  upstream->SetMode(HttpUpstream::Mode::kGarbage);
  const int fd = Connect(upstream->port());
  ASSERT_GE(fd, 0);
  Send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string data = ReadResponses(fd, 1);
  ::close(fd);
  EXPECT_FALSE(data.empty());
  EXPECT_NE(data.rfind("HTTP/", 0), 0u) << data;

  upstream->SetMode(HttpUpstream::Mode::kNormal);
  httplib::Client client("127.0.0.1", upstream->port());
  auto result = client.Get("/");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

TEST(HttpUpstreamTest, StopClosesEverythingAndRestartReusesThePort) {
  auto upstream = StartUpstream();
  const uint16_t port = upstream->port();
  const int fd = Connect(port);
  ASSERT_GE(fd, 0);
  Send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_FALSE(ReadResponses(fd, 1).empty());

  upstream->Stop();
  EXPECT_FALSE(upstream->running());
  int error = -1;
  EXPECT_EQ(ReadResponses(fd, 1, &error), "");  // the idle keep-alive connection was closed
  ::close(fd);
  EXPECT_EQ(Connect(port), -1);

  ASSERT_TRUE(upstream->Restart().ok());
  EXPECT_EQ(upstream->port(), port);
  EXPECT_FALSE(upstream->Restart().ok());  // already running
  httplib::Client client("127.0.0.1", port);
  auto result = client.Get("/again");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

TEST(HttpUpstreamTest, StopInterruptsADelayedRequest) {
  auto upstream = StartUpstream();
  upstream->SetDelay(std::chrono::seconds(60));
  const int fd = Connect(upstream->port());
  ASSERT_GE(fd, 0);
  Send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(WaitFor([&] { return upstream->requests() >= 1; }));
  const auto start = std::chrono::steady_clock::now();
  upstream->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(ReadResponses(fd, 1), "");
  ::close(fd);
}

TEST(HttpUpstreamTest, StreamsLargeBodiesBothWays) {
  auto upstream = StartUpstream();
  httplib::Client client("127.0.0.1", upstream->port());
  for (const bool chunked : {false, true}) {
    constexpr uint64_t kSize = 100'000'000;
    uint64_t received = 0;
    bool pattern_ok = true;
    auto result =
        client.Get(std::string("/bytes/") + std::to_string(kSize) + (chunked ? "?chunked=1" : ""),
                   [&](const char* data, size_t size) {
                     for (size_t i = 0; i < size; ++i) {
                       pattern_ok &= data[i] == static_cast<char>('a' + (received + i) % 26);
                     }
                     received += size;
                     return true;
                   });
    ASSERT_TRUE(result) << httplib::to_string(result.error());
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(received, kSize);
    EXPECT_TRUE(pattern_ok);
    EXPECT_EQ(result->has_header("Transfer-Encoding"), chunked);
  }

  const std::string big(8 << 20, 'z');
  auto result = client.Post("/upload", big, "application/octet-stream");
  ASSERT_TRUE(result);
  const auto echo = nlohmann::json::parse(result->body);
  EXPECT_EQ(echo["body_length"], big.size());
  EXPECT_FALSE(echo.contains("body"));
  char checksum[17];
  std::snprintf(checksum, sizeof(checksum), "%016llx",
                static_cast<unsigned long long>(HttpUpstream::BodyChecksum(big)));
  EXPECT_EQ(echo["body_checksum"], checksum);
  EXPECT_TRUE(upstream->Recorded().back().body.empty());
}

}  // namespace
}  // namespace ottava::test
