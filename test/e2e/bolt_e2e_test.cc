// End-to-end tests of Bolt through the mesh: the real `ottava` binary with a Bolt listener and
// cluster, raw Bolt clients on sockets in front, test::BoltUpstream behind. (Interop with
// sofa-rpc-node, a Bolt implementation nobody here wrote, is bolt_interop_test.)

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include "mesh/codec/bolt/bolt_frame.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/bolt_upstream.h"
#include "test/support/process.h"
#include "test/support/rpc_clients.h"

namespace ottava::test {
namespace {

namespace v1 = spec::proto::runtime::v1;
namespace bolt = mesh::bolt;
using nlohmann::json;

constexpr char kService[] = "com.example.Echo:1.0";

json BoltConfig(const std::vector<std::string>& hosts,
                json route_extra = json::object(),
                json cluster_extra = json::object()) {
  json list = json::array();
  for (const auto& host : hosts) {
    list.push_back({{"address", host}});
  }
  json route = {{"match", {{"service", kService}}}, {"cluster", "echo"}, {"timeout_ms", 3000}};
  for (auto& [key, value] : route_extra.items()) {
    route[key] = value;
  }
  json config = InMemoryConfig("bolt-e2e");
  config["mesh"] = {
      {"workers", 2},
      {"listeners",
       {{{"name", "bolt"}, {"address", "127.0.0.1:0"}, {"protocol", "bolt"}, {"router", "rb"}}}},
      {"routers", {{{"name", "rb"}, {"routes", {route}}}}},
      {"clusters",
       {{{"name", "echo"},
         {"protocol", "bolt"},
         {"hosts", list},
         {"outlier_detection", {{"consecutive_connect_failures", 1}}}}}}};
  for (auto& [key, value] : cluster_extra.items()) {
    config["mesh"]["clusters"][0][key] = value;
  }
  return config;
}

class BoltTest : public ::testing::Test {
 protected:
  void Start(const json& config) {
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    std::ifstream in(sidecar_->ready_file());
    json ready = json::parse(in);
    ASSERT_TRUE(ready["listeners"].contains("bolt")) << ready.dump();
    const std::string listener = ready["listeners"]["bolt"].get<std::string>();
    port_ = std::stoi(listener.substr(listener.rfind(':') + 1));
  }
  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }
  std::unique_ptr<BoltUpstream> Upstream(const std::string& name) {
    auto up = BoltUpstream::Start(name);
    EXPECT_TRUE(up.ok()) << up.status();
    return up.ok() ? std::move(*up) : nullptr;
  }

  std::unique_ptr<Sidecar> sidecar_;
  int port_ = 0;
};

TEST_F(BoltTest, ProxiesRequestsKeepingEachClientsOwnIds) {
  auto up = Upstream("a");
  Start(BoltConfig({up->address()}));
  BoltClient one(port_);
  BoltClient two(port_);
  ASSERT_TRUE(one.connected() && two.connected());
  // Both clients use the same ids at once, and the full 32-bit value must come back.
  for (uint32_t id : {1u, 0xFFFFFFFEu, 77u}) {
    one.Send(id, "one-" + std::to_string(id));
    two.Send(id, "two-" + std::to_string(id));
  }
  std::map<uint32_t, std::string> got_one;
  std::map<uint32_t, std::string> got_two;
  for (int i = 0; i < 3; ++i) {
    auto a = one.Read();
    auto b = two.Read();
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->head.status, bolt::kSuccess);
    EXPECT_EQ(a->head.class_name(), "com.alipay.sofa.rpc.core.response.SofaResponse");
    got_one[a->request_id] = a->content.ToString();
    got_two[b->request_id] = b->content.ToString();
  }
  for (uint32_t id : {1u, 0xFFFFFFFEu, 77u}) {
    EXPECT_EQ(got_one[id], "a:one-" + std::to_string(id));
    EXPECT_EQ(got_two[id], "a:two-" + std::to_string(id));
  }
}

TEST_F(BoltTest, AnswersHeartbeatsAndManyConcurrentCalls) {
  auto up = Upstream("a");
  // 2,000 in flight on one connection (one worker): above the default max_requests of 1,024.
  Start(BoltConfig({up->address()}, json::object(), {{"max_requests", 4096}}));
  BoltClient client(port_);
  client.SendHeartbeat(5);
  auto ack = client.Read();
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->is_heartbeat());
  EXPECT_FALSE(ack->is_request());
  EXPECT_EQ(ack->request_id, 5u);
  EXPECT_EQ(up->heartbeats(), 0u);  // answered by the sidecar, not forwarded

  // Connected first: 2,000 requests arriving while it connects would be over max_pending.
  client.Send(9999, "warm-up");
  ASSERT_TRUE(client.Read());
  constexpr uint32_t kCalls = 2000;
  for (uint32_t id = 1; id <= kCalls; ++id) {
    client.Send(id, std::to_string(id * 7));
  }
  std::map<uint32_t, std::string> answers;
  for (uint32_t i = 0; i < kCalls; ++i) {
    auto frame = client.Read();
    ASSERT_TRUE(frame) << "after " << i << " answers";
    answers[frame->request_id] = frame->content.ToString();
  }
  ASSERT_EQ(answers.size(), kCalls);
  for (uint32_t id = 1; id <= kCalls; ++id) {
    EXPECT_EQ(answers[id], "a:" + std::to_string(id * 7));
  }

  // The heartbeat was counted, and the batching shows: frames decoded from one read leave for
  // the upstream (and the answers for the client) several to a writev.
  httplib::Client admin(sidecar_->actuator_address());
  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(
      MetricSample(metrics->body,
                   "ottava_mesh_listener_heartbeats_total{listener=\"bolt\",protocol=\"bolt\"}")
          .value_or(-1),
      1.0);
  for (const char* direction : {"downstream", "upstream"}) {
    const std::string labels = std::string("{direction=\"") + direction + "\",protocol=\"bolt\"}";
    const double count =
        MetricSample(metrics->body, "ottava_mesh_frames_per_writev_count" + labels).value_or(-1);
    const double sum =
        MetricSample(metrics->body, "ottava_mesh_frames_per_writev_sum" + labels).value_or(-1);
    EXPECT_GT(count, 0) << direction;
    EXPECT_GE(sum, kCalls) << direction;
    EXPECT_GT(sum, count) << direction << ": every writev carried a single frame";
  }
}

TEST_F(BoltTest, OverflowIsAnsweredBusy) {
  auto up = Upstream("a");
  Start(BoltConfig({up->address()}, json::object(), {{"max_requests", 2}}));
  BoltClient client(port_);
  // Connected first: requests waiting for a new connection count against max_pending instead.
  client.Send(9, "warm-up");
  ASSERT_TRUE(client.Read());
  client.Send(1, "sleep:300:x");
  client.Send(2, "sleep:300:y");
  client.Send(3, "z");
  auto busy = client.Read();
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->request_id, 3u);
  EXPECT_EQ(busy->head.status, bolt::kServerThreadpoolBusy);
  for (int i = 0; i < 2; ++i) {
    auto frame = client.Read();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->head.status, bolt::kSuccess);
  }
}

TEST_F(BoltTest, ErrorsBecomeBoltStatusesAndTheConnectionStaysUsable) {
  auto up = Upstream("a");
  Start(BoltConfig({up->address()}));
  BoltClient client(port_);
  // No route for the service: no processor (0x06), empty content.
  client.Send(1, "x", "com.example.Unknown:1.0");
  auto no_route = client.Read();
  ASSERT_TRUE(no_route);
  EXPECT_EQ(no_route->request_id, 1u);
  EXPECT_EQ(no_route->head.status, bolt::kNoProcessor);
  EXPECT_TRUE(no_route->content.Empty());
  // The server's own failure status passes through.
  client.Send(2, "fail:boom");
  auto failed = client.Read();
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->head.status, bolt::kServerException);
  EXPECT_EQ(failed->content.ToString(), "boom");
  // The frame's timeout: a server that never answers gets 0x07 from the sidecar's own timer.
  auto start = std::chrono::steady_clock::now();
  client.Send(3, "never:", kService, 300);
  auto timed_out = client.Read();
  ASSERT_TRUE(timed_out);
  EXPECT_EQ(timed_out->head.status, bolt::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2500));
  // A late answer after the timeout is dropped; the next call gets its own answer.
  client.Send(4, "sleep:400:late", kService, 100);
  auto late = client.Read();
  ASSERT_TRUE(late);
  EXPECT_EQ(late->request_id, 4u);
  EXPECT_EQ(late->head.status, bolt::kTimeout);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  client.Send(5, "after");
  auto after = client.Read();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->request_id, 5u);
  EXPECT_EQ(after->content.ToString(), "a:after");
  // One-way requests reach the server and get no answer.
  const uint64_t before = up->requests();
  client.Send(6, "fire-and-forget", kService, 3000, bolt::kTypeOneway);
  client.Send(7, "next");
  auto next = client.Read();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->request_id, 7u);
  EXPECT_EQ(up->requests(), before + 2);
}

TEST_F(BoltTest, AServerLostMidRunFailsOverToTheOther) {
  auto a = Upstream("a");
  auto b = Upstream("b");
  Start(BoltConfig({a->address(), b->address()},
                   {{"retry", {{"attempts", 2}, {"on", {"connect-failure"}}}}}));
  BoltClient client(port_);
  std::map<std::string, int> by_server;
  uint32_t id = 0;
  for (int i = 0; i < 20; ++i) {
    client.Send(++id, "x");
    auto frame = client.Read();
    ASSERT_TRUE(frame);
    ASSERT_EQ(frame->head.status, bolt::kSuccess);
    by_server[frame->content.ToString().substr(0, 1)]++;
  }
  EXPECT_GT(by_server["a"], 0);
  EXPECT_GT(by_server["b"], 0);
  // A request in flight on the lost server is answered "connection closed" (0x10).
  client.Send(++id, "sleep:2000:x");
  client.Send(++id, "sleep:2000:y");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  a->Stop();
  for (int i = 0; i < 2; ++i) {
    auto frame = client.Read();
    ASSERT_TRUE(frame);
    if (frame->head.status != bolt::kSuccess) {
      EXPECT_EQ(frame->head.status, bolt::kConnectionClosed);
    }
  }
  // Every later call succeeds on the other server.
  for (int i = 0; i < 20; ++i) {
    client.Send(++id, "later");
    auto frame = client.Read();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->head.status, bolt::kSuccess) << "call " << i;
    EXPECT_EQ(frame->content.ToString(), "b:later");
  }
}

TEST_F(BoltTest, BadFramesCloseTheConnectionAndNothingElse) {
  auto up = Upstream("a");
  Start(BoltConfig({up->address()}));
  {
    BoltClient garbage(port_);
    garbage.SendRaw("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    EXPECT_TRUE(garbage.WaitClosed());
  }
  {
    // A frame announcing 100 MB (over the 16 MiB default) is refused before it is buffered.
    BoltClient huge(port_);
    std::string header = {1,
                          1,
                          0,
                          1,
                          1,
                          0,
                          0,
                          0,
                          1,
                          1,
                          0,
                          0,
                          0x0b,
                          static_cast<char>(0xb8),
                          0,
                          0,
                          0,
                          0,
                          0x05,
                          static_cast<char>(0xf5),
                          static_cast<char>(0xe1),
                          0};
    huge.SendRaw(header);
    EXPECT_TRUE(huge.WaitClosed());
  }
  BoltClient good(port_);
  good.Send(1, "still here");
  auto frame = good.Read();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->content.ToString(), "a:still here");
  httplib::Client admin(sidecar_->actuator_address());
  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body.find(
          "ottava_mesh_listener_protocol_errors_total{listener=\"bolt\",protocol=\"bolt\"} 2"),
      std::string::npos);
}

// The sidecar's resident memory in KiB (VmRSS), 0 when unreadable.
long RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return 0;
}

// An upstream that stops reading must not make the sidecar buffer everything a client sends at
// it: above the upstream connection's high watermark the streams on it pause their downstream
// (write backpressure), so the client's own sends block instead. Then every call is answered.
TEST_F(BoltTest, AStalledUpstreamPausesTheClientInsteadOfFillingMemory) {
  auto up = Upstream("a");
  Start(BoltConfig({up->address()}, {{"timeout_ms", 30000}}));
  BoltClient client(port_);
  ASSERT_TRUE(client.connected());
  client.Send(1, "warm-up", kService, 30000);
  ASSERT_TRUE(client.Read());
  const long before = RssKib(sidecar_->pid());
  ASSERT_GT(before, 0);

  // The upstream's connection thread sleeps 3 s: it reads nothing meanwhile.
  client.Send(2, "stall:3000:first", kService, 30000);
  constexpr uint32_t kBig = 48;
  const std::string megabyte(1 << 20, 'x');
  const auto start = std::chrono::steady_clock::now();
  std::atomic<int64_t> sent_after_ms{-1};
  std::thread sender([&] {
    for (uint32_t id = 3; id < 3 + kBig; ++id) {
      client.Send(id, megabyte, kService, 30000);
    }
    sent_after_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  });
  long peak = before;
  for (int i = 0; i < 50; ++i) {  // 2.5 s, all while the upstream sleeps
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    peak = std::max(peak, RssKib(sidecar_->pid()));
  }
  sender.join();
  std::map<uint32_t, size_t> answers;
  for (uint32_t i = 0; i < kBig + 1; ++i) {
    auto frame = client.Read(20000);
    ASSERT_TRUE(frame) << "after " << i << " answers";
    EXPECT_EQ(frame->head.status, bolt::kSuccess);
    answers[frame->request_id] = frame->content.Length();
  }
  EXPECT_EQ(answers.size(), kBig + 1);
  EXPECT_EQ(answers[3], megabyte.size() + 2);  // "a:" + content
  // 48 MiB were sent at the stalled upstream: the client could not send them all before it woke
  // (the kernel's socket buffers take a few MiB each way), and the sidecar held at most its
  // 4 MiB watermark, the frames being decoded and read buffers.
  EXPECT_GE(sent_after_ms.load(), 2500);
  EXPECT_LT(peak - before, 24 * 1024)
      << "resident memory grew by " << (peak - before) << " KiB; the client sent all after "
      << sent_after_ms << " ms";
}

TEST_F(BoltTest, InvokeServiceReachesABoltUpstream) {
  auto up = Upstream("a");
  Start(BoltConfig({up->address()}));
  auto channel = grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Runtime::NewStub(channel);
  v1::InvokeServiceRequest request;
  request.set_id(kService);
  request.mutable_message()->set_method("echo");
  request.mutable_message()->mutable_data()->set_value("hessian-bytes");
  {
    grpc::ClientContext context;
    v1::InvokeResponse response;
    grpc::Status status = stub->InvokeService(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.data().value(), "a:hessian-bytes");
  }
  {
    request.mutable_message()->mutable_data()->set_value("fail:no such method");
    grpc::ClientContext context;
    v1::InvokeResponse response;
    grpc::Status status = stub->InvokeService(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
    EXPECT_NE(status.error_message().find("server exception (0x02)"), std::string::npos)
        << status.error_message();
  }
  {
    // One-way: sent, answered OK at once.
    request.mutable_message()->mutable_data()->set_value("oneway-call");
    grpc::ClientContext context;
    context.AddMetadata("rpc_request_type", "oneway");
    v1::InvokeResponse response;
    const uint64_t before = up->requests();
    grpc::Status status = stub->InvokeService(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (int i = 0; i < 100 && up->requests() == before; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(up->requests(), before + 1);
  }
}

}  // namespace
}  // namespace ottava::test
