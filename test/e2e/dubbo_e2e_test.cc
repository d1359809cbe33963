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
#include "test/support/rpc_clients.h"

namespace ottava::test {
namespace {

namespace dubbo = mesh::dubbo;
namespace v1 = spec::proto::runtime::v1;
namespace hessian2 = mesh::hessian2;
using nlohmann::json;

constexpr char kService[] = "com.example.Echo";

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
      EXPECT_EQ(DubboClient::Value(*frame), "a:" + who + std::to_string(id));
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
    answers[frame->request_id] = DubboClient::Value(*frame);
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
  EXPECT_EQ(DubboClient::Value(*after), "a:after");

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
    client.SendRaw(DubboClient::Header(0xc2, 1, 1u << 30));
    EXPECT_TRUE(client.WaitClosed());
  }
  {
    // A negative length.
    DubboClient client(port_);
    client.SendRaw(DubboClient::Header(0xc2, 1, 0xFFFFFFFFu));
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
    client.SendRaw(DubboClient::RequestFrame(5, "before-garbage", kService) + "\x01\x02\x03");
    EXPECT_TRUE(client.WaitClosed());
  }
  {
    // A frame cut by the close: half a header, and a header promising more body than comes.
    DubboClient half(port_);
    half.SendRaw(DubboClient::Header(0xc2, 1, 100).substr(0, 7));
    DubboClient cut(port_);
    cut.SendRaw(DubboClient::Header(0xc2, 2, 100) + "only a part");
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
      flood += DubboClient::Header(0xe2, static_cast<uint64_t>(i), 1) + "N";
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
  EXPECT_EQ(DubboClient::Value(*answer), "a:still-here");
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
    request.mutable_message()->mutable_data()->set_value(
        DubboClient::RequestBody(kService, "via-grpc"));
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
    request.mutable_message()->mutable_data()->set_value(
        DubboClient::RequestBody(kService, "fail:boom"));
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
