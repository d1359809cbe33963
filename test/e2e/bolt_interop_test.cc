// Interop of the mesh's Bolt (SOFARPC) support with real peers from npm: sofa-rpc-node clients
// (test/interop/bolt/client.js) call sofa-rpc-node servers (server.js) through the real `ottava`
// binary with a `"protocol": "bolt"` listener and cluster. Also InvokeService to a Bolt upstream,
// with the SofaRequest content encoded by the same npm codec (encode_request.js).
//
// The peers are installed by scripts/setup.sh (`npm ci` in test/interop/bolt). Without their
// node_modules every test is skipped with a message saying so; with them, every test runs.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/node_peer.h"
#include "test/support/process.h"

namespace ottava::test {
namespace {

namespace v1 = spec::proto::runtime::v1;
using nlohmann::json;

constexpr char kService[] = "com.example.Echo:1.0";

std::string PeerDir() {
  return InteropDir("bolt");
}

bool PeersInstalled() {
  return InteropInstalled("bolt", "sofa-rpc-node");
}

// Runs `node <script> args...` in the peer folder and returns its result.
RunResult Node(const std::string& script,
               const std::vector<std::string>& args,
               std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  std::vector<std::string> argv = {"/usr/bin/env", "node", PeerDir() + "/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, timeout);
}

json Route(const std::string& cluster, int timeout_ms = 3000, json extra = json::object()) {
  json route = {
      {"match", {{"service", kService}}}, {"cluster", cluster}, {"timeout_ms", timeout_ms}};
  for (auto& [key, value] : extra.items()) {
    route[key] = value;
  }
  return route;
}

json BoltCluster(const std::string& name,
                 const std::vector<std::string>& hosts,
                 json extra = json::object()) {
  json list = json::array();
  for (const auto& host : hosts) {
    list.push_back({{"address", host}});
  }
  json cluster = {{"name", name}, {"protocol", "bolt"}, {"lb", "round_robin"}, {"hosts", list}};
  for (auto& [key, value] : extra.items()) {
    cluster[key] = value;
  }
  return cluster;
}

json BoltConfig(json routes, json clusters) {
  json config = InMemoryConfig("bolt-e2e");
  config["mesh"] = {
      {"workers", 2},
      {"listeners",
       {{{"name", "bolt"}, {"address", "127.0.0.1:0"}, {"protocol", "bolt"}, {"router", "rb"}}}},
      {"routers", {{{"name", "rb"}, {"routes", routes}}}},
      {"clusters", clusters}};
  return config;
}

std::string ToHex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

class BoltInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PeersInstalled()) {
      GTEST_SKIP() << "sofa-rpc-node is not installed in " << PeerDir()
                   << "/node_modules: run scripts/setup.sh (npm ci)";
    }
  }

  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  void Start(const json& config) {
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    std::ifstream in(sidecar_->ready_file());
    json ready = json::parse(in);
    ASSERT_TRUE(ready["listeners"].contains("bolt")) << ready.dump();
    listener_ = ready["listeners"]["bolt"].get<std::string>();
  }

  // Runs client.js against the sidecar's Bolt listener; returns its JSON line ({} if none).
  json Client(const std::string& scenario,
              std::vector<std::string> args = {},
              int* exit_code = nullptr) {
    std::vector<std::string> argv = {"--target", listener_, "--scenario", scenario};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult result = Node("client.js", argv);
    if (exit_code != nullptr) {
      *exit_code = result.exit_code;
    }
    json out = json::parse(result.out, nullptr, false);
    EXPECT_TRUE(out.is_object()) << "client.js " << scenario << " printed: " << result.out
                                 << "\nstderr: " << result.err;
    return out.is_object() ? out : json::object();
  }

  std::unique_ptr<NodeServer> Server(const std::string& name) {
    auto server = NodeServer::Start(PeerDir() + "/server.js", name);
    EXPECT_NE(server, nullptr);
    return server;
  }

  std::unique_ptr<Sidecar> sidecar_;
  std::string listener_;
};

TEST_F(BoltInteropTest, Echo) {
  auto a = Server("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo")}, {BoltCluster("echo", {a->address()})})));
  json out = Client("echo", {"--count", "20"});
  EXPECT_TRUE(out.value("pass", false)) << out.dump();
  EXPECT_EQ(out.value("ok", 0), 20) << out.dump();
  EXPECT_EQ(out.value("first_answer", ""), "a:echo:m0") << out.dump();
}

TEST_F(BoltInteropTest, TwoThousandConcurrentCallsEachGetTheirOwnAnswer) {
  auto a = Server("a");
  ASSERT_NE(a, nullptr);
  // sofa-rpc-node sends all 2,000 calls on one connection, so they land on one worker and may all
  // be in flight (or wait for the first upstream connect) at once: past the default per-worker
  // max_requests and max_pending of 1024 the sidecar rightly answers 0x04 (overflow). A cluster
  // meant for such a client raises them, as here.
  ASSERT_NO_FATAL_FAILURE(Start(BoltConfig(
      {Route("echo", 10000)},
      {BoltCluster("echo", {a->address()}, {{"max_requests", 4096}, {"max_pending", 4096}})})));
  json out = Client("concurrent", {"--count", "2000", "--timeout-ms", "10000"});
  EXPECT_TRUE(out.value("pass", false)) << out.dump();
  EXPECT_EQ(out.value("ok", 0), 2000) << out.dump();
}

TEST_F(BoltInteropTest, OneMegabyteArgument) {
  auto a = Server("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo", 10000)}, {BoltCluster("echo", {a->address()})})));
  json out = Client("big", {"--size", "1048576", "--timeout-ms", "10000"});
  EXPECT_TRUE(out.value("pass", false)) << out.dump();
  EXPECT_EQ(out.value("answer_length", 0), 1048576) << out.dump();
}

TEST_F(BoltInteropTest, ServerExceptionArrivesAsAnError) {
  auto a = Server("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo")}, {BoltCluster("echo", {a->address()})})));
  json out = Client("fail");
  EXPECT_TRUE(out.value("pass", false)) << out.dump();
  EXPECT_NE(out.value("message", "").find("boom from the server"), std::string::npos) << out.dump();
  // The connection survives a server exception.
  EXPECT_TRUE(Client("echo").value("pass", false));
}

TEST_F(BoltInteropTest, RouteTimeoutAnswersTheClientAndLaterCallsWork) {
  auto a = Server("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo", 300)}, {BoltCluster("echo", {a->address()})})));
  // The client waits 5 s itself; the route's 300 ms must answer first (status 0x07).
  json out = Client("timeout", {"--delay-ms", "1500", "--timeout-ms", "5000"});
  EXPECT_TRUE(out.value("pass", false)) << out.dump();
  EXPECT_TRUE(out.value("timed_out", false)) << out.dump();
  EXPECT_LT(out.value("timeout_elapsed_ms", 100000), 1400) << out.dump();
  ASSERT_TRUE(out["errors"].is_array() && !out["errors"].empty()) << out.dump();
  EXPECT_NE(out["errors"][0].value("name", ""), "RpcResponseTimeoutError")
      << "the client's own timer fired: the sidecar stayed silent. " << out.dump();
  EXPECT_TRUE(out.value("after_ok", false)) << out.dump();
}

TEST_F(BoltInteropTest, TwoServersShareTheLoad) {
  auto a = Server("a");
  auto b = Server("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo")}, {BoltCluster("echo", {a->address(), b->address()})})));
  json out = Client("many", {"--count", "100"});
  EXPECT_TRUE(out.value("pass", false)) << out.dump();
  EXPECT_GT(out["by_server"].value("a", 0), 10) << out.dump();
  EXPECT_GT(out["by_server"].value("b", 0), 10) << out.dump();

  // Concurrent calls on one client connection spread too (multiplexed upstream connections).
  json concurrent = Client("concurrent", {"--count", "400"});
  EXPECT_TRUE(concurrent.value("pass", false)) << concurrent.dump();
  EXPECT_GT(concurrent["by_server"].value("a", 0), 0) << concurrent.dump();
  EXPECT_GT(concurrent["by_server"].value("b", 0), 0) << concurrent.dump();
}

TEST_F(BoltInteropTest, KilledServerEveryLaterCallSucceedsOnTheOther) {
  auto a = Server("a");
  auto b = Server("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  json retry = {{"retry", {{"attempts", 2}, {"on", {"connect-failure", "reset"}}}}};
  json detection = {
      {"outlier_detection", {{"consecutive_connect_failures", 1}, {"max_ejection_percent", 50}}},
      {"health_check", {{"type", "tcp"}, {"interval_ms", 200}, {"unhealthy_threshold", 1}}}};
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo", 3000, retry)},
                       {BoltCluster("echo", {a->address(), b->address()}, detection)})));
  // client.js sends SIGTERM to server b after 40 calls, waits until b's port refuses connections,
  // then goes on: all 160 later calls must be answered, by a.
  json out = Client("many",
                    {"--count", "200", "--interval-ms", "5", "--kill-pid", std::to_string(b->pid()),
                     "--kill-port", std::to_string(b->port()), "--kill-after", "40"});
  EXPECT_TRUE(out.value("killed_port_closed", false)) << out.dump();
  EXPECT_GT(out["by_server"].value("b", 0), 0)
      << "b never answered before the kill: " << out.dump();
  EXPECT_EQ(out.value("calls_after_kill", 0), 160) << out.dump();
  EXPECT_EQ(out.value("errors_after_kill", -1), 0) << out.dump();
  EXPECT_EQ(out["by_server_after_kill"].value("a", 0), 160) << out.dump();
  EXPECT_TRUE(out.value("pass", false)) << out.dump();
}

TEST_F(BoltInteropTest, UnknownServiceGetsAnErrorQuickly) {
  auto a = Server("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo")}, {BoltCluster("echo", {a->address()})})));
  // No route for com.example.Nope:1.0: status 0x06 from the sidecar, long before the client's 5 s.
  json out = Client("noroute", {"--service", "com.example.Nope:1.0", "--timeout-ms", "5000"});
  EXPECT_TRUE(out.value("pass", false)) << out.dump();
  EXPECT_LT(out.value("error_elapsed_ms", 100000), 1000) << out.dump();
  // The same client connection still works for a routed service.
  EXPECT_TRUE(Client("echo").value("pass", false));
}

TEST_F(BoltInteropTest, HeartbeatIsAnsweredBySidecar) {
  auto a = Server("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo")}, {BoltCluster("echo", {a->address()})})));
  // A raw v1 heartbeat (22 bytes: request, cmdcode 0, id 0x01020304, hessian2, timeout -1).
  const unsigned char heartbeat[22] = {0x01, 0x01, 0x00, 0x00, 0x01, 0x01, 0x02, 0x03,
                                       0x04, 0x01, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port =
      htons(static_cast<uint16_t>(std::stoi(listener_.substr(listener_.rfind(':') + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(send(fd, heartbeat, sizeof(heartbeat), MSG_NOSIGNAL), 22);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (got.size() < 20 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) {
      continue;
    }
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  ASSERT_EQ(got.size(), 20u) << ToHex(got);
  // proto 1, response, cmdcode 0 (heartbeat), ver2 1, the same id, codec 1, status 0, no lengths.
  EXPECT_EQ(ToHex(got), std::string("01") + "00" + "0000" + "01" + "01020304" + "01" + "0000" +
                            "0000" + "0000" + "00000000");
}

TEST_F(BoltInteropTest, InvokeServiceReachesTheBoltServer) {
  auto a = Server("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NO_FATAL_FAILURE(
      Start(BoltConfig({Route("echo")}, {BoltCluster("echo", {a->address()})})));
  auto encode = [](const std::string& method, const std::string& args) {
    RunResult r = Node("encode_request.js",
                       {"encode", "--service", kService, "--method", method, "--args", args});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string hex = r.out.substr(0, r.out.find('\n'));
    return FromHex(hex);
  };
  auto stub = v1::Runtime::NewStub(
      grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials()));
  auto invoke = [&](const std::string& method, const std::string& content,
                    v1::InvokeResponse* response) {
    v1::InvokeServiceRequest request;
    request.set_id(kService);
    request.mutable_message()->set_method(method);
    request.mutable_message()->mutable_data()->set_value(content);
    grpc::ClientContext ctx;  // no `class` metadata: the default SofaRequest class
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->InvokeService(&ctx, request, response);
  };

  v1::InvokeResponse response;
  grpc::Status status = invoke("echo", encode("echo", R"(["hi"])"), &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  RunResult decoded =
      Node("encode_request.js", {"decode", "--content", ToHex(response.data().value())});
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  json answer = json::parse(decoded.out, nullptr, false);
  EXPECT_EQ(answer.value("ok", false), true) << decoded.out;
  EXPECT_EQ(answer.value("value", ""), "a:echo:hi") << decoded.out;

  // A server exception (Bolt status 0x02) is a gRPC error.
  status = invoke("fail", encode("fail", R"(["bad"])"), &response);
  EXPECT_FALSE(status.ok());
}

}  // namespace
}  // namespace ottava::test
