// End-to-end tests of Dubbo through the mesh: the real `ottava` binary with a Dubbo listener and
// cluster, raw Dubbo clients on sockets in front, test::DubboUpstream behind; and bad input on
// the listener (oversized length, bad magic, a frame cut by the close, a heartbeat flood) with
// the sidecar's open file descriptors counted before and after. (Interop with dubbo2.js is
// dubbo_interop_test.)

#include <arpa/inet.h>
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "mesh/codec/dubbo/dubbo_frame.h"
#include "mesh/codec/dubbo/hessian2.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/dubbo_upstream.h"
#include "test/support/process.h"

namespace ottava::test {
namespace {

namespace dubbo = mesh::dubbo;
namespace v1 = spec::proto::runtime::v1;
namespace hessian2 = mesh::hessian2;
using nlohmann::json;

constexpr char kService[] = "com.example.Echo";

std::string RequestBody(const std::string& service,
                        const std::string& argument,
                        const std::string& group) {
  std::string b;
  hessian2::WriteString("2.0.2", b);
  hessian2::WriteString(service, b);
  hessian2::WriteString("1.0.0", b);
  hessian2::WriteString("echo", b);
  hessian2::WriteString("Ljava/lang/String;", b);
  hessian2::WriteString(argument, b);
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

std::string Header(uint8_t flag, uint64_t id, uint32_t length) {
  std::string h = "\xda\xbb";
  h.push_back(static_cast<char>(flag));
  h.push_back('\0');
  for (int i = 7; i >= 0; --i) {
    h.push_back(static_cast<char>(id >> (8 * i)));
  }
  for (int i = 3; i >= 0; --i) {
    h.push_back(static_cast<char>(length >> (8 * i)));
  }
  return h;
}

// A blocking Dubbo client on one connection.
class DubboClient {
 public:
  explicit DubboClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~DubboClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  void SendRaw(const std::string& bytes) {
    size_t at = 0;
    while (at < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n <= 0) {
        return;
      }
      at += static_cast<size_t>(n);
    }
  }

  void Send(uint64_t id,
            const std::string& argument,
            const std::string& service = kService,
            const std::string& group = "",
            bool two_way = true) {
    const std::string body = RequestBody(service, argument, group);
    const uint8_t flag = 0x80 | (two_way ? 0x40 : 0) | 2;
    SendRaw(Header(flag, id, static_cast<uint32_t>(body.size())) + body);
  }

  void SendHeartbeat(uint64_t id) { SendRaw(Header(0xe2, id, 1) + "N"); }

  /// The next frame, or nullopt on timeout or close.
  std::optional<dubbo::Frame> Read(int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      dubbo::Frame frame;
      auto decoded = dubbo::DecodeFrame(in_, 64 << 20, frame);
      if (!decoded.ok()) {
        ADD_FAILURE() << decoded.status();
        return std::nullopt;
      }
      if (*decoded) {
        return frame;
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      if (left <= 0) {
        return std::nullopt;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) {
        return std::nullopt;
      }
      char chunk[65536];
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        closed_ = true;
        return std::nullopt;
      }
      in_.Add(chunk, static_cast<size_t>(n));
    }
  }

  /// Whether the peer closed the connection within `timeout_ms`.
  bool WaitClosed(int timeout_ms = 3000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!closed_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char chunk[4096];
        if (::recv(fd_, chunk, sizeof(chunk), 0) <= 0) {
          closed_ = true;
        }
      }
    }
    return closed_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  mesh::Buffer in_;
};

// The value of a successful response body: int 1 (value), then a string.
std::string Value(const dubbo::Frame& frame) {
  const std::string body = frame.body.ToString();
  hessian2::Reader reader(body);
  auto flag = reader.ReadLong();
  if (!flag.ok() || *flag != 1) {
    return "<not a value>";
  }
  auto text = reader.ReadString();
  return text.ok() ? *text : "<bad string>";
}

// The message of an error response body: a hessian2 string.
std::string Message(const dubbo::Frame& frame) {
  const std::string body = frame.body.ToString();
  hessian2::Reader reader(body);
  auto text = reader.ReadString();
  return text.ok() ? *text : "<bad string>";
}

json DubboConfig(const std::string& host, const std::string& blue_host) {
  json config = InMemoryConfig("dubbo-e2e");
  json routes = json::array();
  routes.push_back(
      {{"match", {{"service", kService}, {"headers", {{{"name", "group"}, {"exact", "blue"}}}}}},
       {"cluster", "blue"},
       {"timeout_ms", 3000}});
  routes.push_back({{"match", {{"service", kService}}}, {"cluster", "echo"}, {"timeout_ms", 500}});
  config["mesh"] = {
      {"workers", 2},
      {"listeners",
       {{{"name", "dubbo"},
         {"address", "127.0.0.1:0"},
         {"protocol", "dubbo"},
         {"router", "rd"},
         {"max_frame_bytes", 65536}}}},
      {"routers", {{{"name", "rd"}, {"routes", routes}}}},
      {"clusters",
       {{{"name", "echo"},
         {"protocol", "dubbo"},
         {"hosts", {{{"address", host}}}},
         {"health_check", {{"type", "dubbo"}, {"interval_ms", 200}, {"timeout_ms", 1000}}}},
        {{"name", "blue"}, {"protocol", "dubbo"}, {"hosts", {{{"address", blue_host}}}}}}}};
  return config;
}

std::string FdList(pid_t pid) {
  std::string out;
  const std::string dir_name = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(dir_name.c_str());
  if (dir == nullptr) {
    return out;
  }
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') {
      continue;
    }
    char target[256] = {};
    ::readlink((dir_name + "/" + entry->d_name).c_str(), target, sizeof(target) - 1);
    out += std::string(entry->d_name) + "->" + target + " ";
  }
  ::closedir(dir);
  return out;
}

size_t OpenFds(pid_t pid) {
  size_t n = 0;
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) {
    return 0;
  }
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') {
      ++n;
    }
  }
  ::closedir(dir);
  return n;
}

class DubboTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = DubboUpstream::Start("a");
    ASSERT_TRUE(a.ok()) << a.status();
    up_ = std::move(*a);
    auto b = DubboUpstream::Start("blue");
    ASSERT_TRUE(b.ok()) << b.status();
    blue_ = std::move(*b);
    auto sidecar = Sidecar::Start(DubboConfig(up_->address(), blue_->address()));
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    std::ifstream in(sidecar_->ready_file());
    json ready = json::parse(in);
    ASSERT_TRUE(ready["listeners"].contains("dubbo")) << ready.dump();
    const std::string listener = ready["listeners"]["dubbo"].get<std::string>();
    port_ = std::stoi(listener.substr(listener.rfind(':') + 1));
  }
  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }
  std::string Metrics() {
    httplib::Client admin("http://" + sidecar_->actuator_address());
    auto res = admin.Get("/metrics");
    return res ? res->body : "";
  }

  std::unique_ptr<DubboUpstream> up_;
  std::unique_ptr<DubboUpstream> blue_;
  std::unique_ptr<Sidecar> sidecar_;
  int port_ = 0;
};

TEST_F(DubboTest, ProxiesRequestsKeepingEachClientsOwn64BitIds) {
  DubboClient one(port_);
  DubboClient two(port_);
  ASSERT_TRUE(one.connected() && two.connected());
  for (uint64_t id : {1ull, 0xFFFFFFFFFFFFFFFEull, 0x100000001ull}) {
    one.Send(id, "one-" + std::to_string(id));
    two.Send(id, "two-" + std::to_string(id));
  }
  for (DubboClient* client : {&one, &two}) {
    const std::string who = client == &one ? "one-" : "two-";
    for (uint64_t id : {1ull, 0xFFFFFFFFFFFFFFFEull, 0x100000001ull}) {
      auto frame = client->Read();
      ASSERT_TRUE(frame.has_value());
      EXPECT_EQ(frame->request_id, id);
      EXPECT_EQ(frame->status, dubbo::kOk);
      EXPECT_FALSE(frame->is_request());
      EXPECT_EQ(Value(*frame), "a:" + who + std::to_string(id));
    }
  }
  EXPECT_EQ(up_->requests(), 6u);
}

TEST_F(DubboTest, RoutesByGroupFromTheAttachments) {
  DubboClient client(port_);
  client.Send(1, "x", kService, "blue");
  client.Send(2, "y", kService, "green");
  // Two providers: the answers may come in either order.
  std::map<uint64_t, std::string> answers;
  for (int i = 0; i < 2; ++i) {
    auto frame = client.Read();
    ASSERT_TRUE(frame.has_value());
    answers[frame->request_id] = Value(*frame);
  }
  EXPECT_EQ(answers[1], "blue:x");
  EXPECT_EQ(answers[2], "a:y");
}

TEST_F(DubboTest, AnswersWithDubboStatuses) {
  DubboClient client(port_);
  client.Send(10, "hi", "com.example.Nowhere");
  auto no_route = client.Read();
  ASSERT_TRUE(no_route.has_value());
  EXPECT_EQ(no_route->request_id, 10u);
  EXPECT_EQ(no_route->status, dubbo::kServiceNotFound);
  EXPECT_NE(Message(*no_route).find("com.example.Nowhere"), std::string::npos)
      << Message(*no_route);

  client.Send(11, "fail:provider says no");
  auto failed = client.Read();
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->status, dubbo::kServiceError);
  EXPECT_EQ(Message(*failed), "provider says no");

  client.Send(12, "never:");  // the route allows 500 ms
  auto timed_out = client.Read();
  ASSERT_TRUE(timed_out.has_value());
  EXPECT_EQ(timed_out->request_id, 12u);
  EXPECT_EQ(timed_out->status, dubbo::kServerTimeout);
  EXPECT_FALSE(Message(*timed_out).empty());

  // A late answer (800 ms, after the 500 ms timeout) is dropped; the next call still works.
  client.Send(13, "sleep:800:late");
  auto late = client.Read();
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->status, dubbo::kServerTimeout);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  client.Send(14, "after");
  auto after = client.Read();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->request_id, 14u);
  EXPECT_EQ(Value(*after), "a:after");

  // One-way: reaches the provider, no answer.
  const uint64_t before = up_->requests();
  client.Send(15, "fire", kService, "", /*two_way=*/false);
  client.Send(16, "ping");
  auto ping = client.Read();
  ASSERT_TRUE(ping.has_value());
  EXPECT_EQ(ping->request_id, 16u);
  EXPECT_EQ(up_->requests(), before + 2);
}

TEST_F(DubboTest, HeartbeatsAreAnsweredByTheSidecar) {
  DubboClient client(port_);
  const uint64_t upstream_heartbeats = up_->heartbeats();
  client.SendHeartbeat(0xABCDEF0123456789ull);
  auto ack = client.Read();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->request_id, 0xABCDEF0123456789ull);
  EXPECT_TRUE(ack->is_event());
  EXPECT_FALSE(ack->is_request());
  EXPECT_EQ(ack->status, dubbo::kOk);
  EXPECT_EQ(ack->body.ToString(), "N");
  // The dubbo health check probes the provider with heartbeats of its own (every 200 ms).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (up_->heartbeats() == upstream_heartbeats && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(up_->heartbeats(), upstream_heartbeats);
}

TEST_F(DubboTest, BadInputClosesTheConnectionAndLeaksNoDescriptors) {
  {
    // Warm up: each of the two workers opens its own upstream connection; two client
    // connections open at once land on different workers (fewest connections first).
    DubboClient one(port_);
    DubboClient two(port_);
    one.Send(1, "warm");
    two.Send(1, "warm");
    ASSERT_TRUE(one.Read().has_value());
    ASSERT_TRUE(two.Read().has_value());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const size_t fds_before = OpenFds(sidecar_->pid());
  const std::string fd_list_before = FdList(sidecar_->pid());
  ASSERT_GT(fds_before, 0u);

  {
    // A length past max_frame_bytes (64 KiB) is refused from the header alone.
    DubboClient client(port_);
    client.SendRaw(Header(0xc2, 1, 1u << 30));
    EXPECT_TRUE(client.WaitClosed());
  }
  {
    // A negative length.
    DubboClient client(port_);
    client.SendRaw(Header(0xc2, 1, 0xFFFFFFFFu));
    EXPECT_TRUE(client.WaitClosed());
  }
  {
    // Bad magic (an HTTP request on the Dubbo port).
    DubboClient client(port_);
    client.SendRaw("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    EXPECT_TRUE(client.WaitClosed());
  }
  {
    // A valid request, then garbage in the same segment: the connection closes (the request's
    // answer, still in flight, is lost with it, as with Bolt).
    DubboClient client(port_);
    const std::string body = RequestBody(kService, "before-garbage", "");
    client.SendRaw(Header(0xc2, 5, static_cast<uint32_t>(body.size())) + body + "\x01\x02\x03");
    EXPECT_TRUE(client.WaitClosed());
  }
  {
    // A frame cut by the close: half a header, and a header promising more body than comes.
    DubboClient half(port_);
    half.SendRaw(Header(0xc2, 1, 100).substr(0, 7));
    DubboClient cut(port_);
    cut.SendRaw(Header(0xc2, 2, 100) + "only a part");
  }
  {
    // A flood of heartbeats: every one answered, in order, nothing sent upstream. (First the
    // request sent before the garbage above reaches the provider: 3 with the warm-ups.)
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (up_->requests() < 3 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    DubboClient client(port_);
    const uint64_t upstream_requests = up_->requests();
    std::string flood;
    constexpr int kBeats = 20000;
    for (int i = 1; i <= kBeats; ++i) {
      flood += Header(0xe2, static_cast<uint64_t>(i), 1) + "N";
    }
    std::thread writer([&client, &flood] { client.SendRaw(flood); });
    int answered = 0;
    for (int i = 1; i <= kBeats; ++i) {
      auto ack = client.Read();
      if (!ack.has_value()) {
        break;
      }
      ASSERT_EQ(ack->request_id, static_cast<uint64_t>(i));
      ++answered;
    }
    writer.join();
    EXPECT_EQ(answered, kBeats);
    EXPECT_EQ(up_->requests(), upstream_requests);
  }
  // Counters moved: the four refused connections count as protocol errors.
  const std::string metrics = Metrics();
  EXPECT_NE(
      metrics.find(
          "ottava_mesh_listener_protocol_errors_total{listener=\"dubbo\",protocol=\"dubbo\"} 4"),
      std::string::npos)
      << metrics.substr(0, 4000);
  // Every descriptor of those connections is closed again.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (OpenFds(sidecar_->pid()) > fds_before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LE(OpenFds(sidecar_->pid()), fds_before)
      << "before: " << fd_list_before << "\nafter: " << FdList(sidecar_->pid());
  // And the listener still serves.
  DubboClient client(port_);
  client.Send(9, "still-here");
  auto answer = client.Read();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(Value(*answer), "a:still-here");
}

TEST_F(DubboTest, AProviderThatGoesAwayIsAnErrorNotSilence) {
  DubboClient client(port_);
  client.Send(1, "sleep:3000:slow");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  up_->Stop();
  auto frame = client.Read();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->request_id, 1u);
  EXPECT_NE(frame->status, dubbo::kOk);
  EXPECT_TRUE(frame->status == dubbo::kServerError || frame->status == dubbo::kServiceNotFound)
      << static_cast<int>(frame->status);
}

}  // namespace
}  // namespace ottava::test

namespace ottava::test {
namespace {

// InvokeService with a Dubbo request body as its data reaches the provider through the mesh; the
// provider's answer comes back as the data (success is Dubbo status 20, not an error), and a
// provider's failure status becomes a gRPC error naming it.
TEST_F(DubboTest, InvokeServiceReachesADubboUpstream) {
  auto channel = grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Runtime::NewStub(channel);
  v1::InvokeServiceRequest request;
  request.set_id(kService);
  request.mutable_message()->set_method("echo");
  {
    request.mutable_message()->mutable_data()->set_value(RequestBody(kService, "via-grpc", ""));
    grpc::ClientContext context;
    v1::InvokeResponse response;
    grpc::Status status = stub->InvokeService(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    hessian2::Reader reader(response.data().value());
    auto flag = reader.ReadLong();
    ASSERT_TRUE(flag.ok());
    EXPECT_EQ(*flag, 1);
    auto text = reader.ReadString();
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, "a:via-grpc");
  }
  {
    request.mutable_message()->mutable_data()->set_value(RequestBody(kService, "fail:boom", ""));
    grpc::ClientContext context;
    v1::InvokeResponse response;
    grpc::Status status = stub->InvokeService(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL) << status.error_message();
    EXPECT_NE(status.error_message().find("answered status"), std::string::npos)
        << status.error_message();
    EXPECT_NE(status.error_message().find("boom"), std::string::npos) << status.error_message();
  }
  EXPECT_EQ(up_->requests(), 2u);
}

}  // namespace
}  // namespace ottava::test
