// End-to-end tests of the mesh engine: the real `ottava` binary with a mesh config, real HTTP
// clients (cpp-httplib, curl, raw sockets) in front, real HTTP upstreams (test::HttpUpstream)
// behind.

#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/http_upstream.h"
#include "test/support/process.h"

namespace ottava::test {
namespace {

namespace v1 = spec::proto::runtime::v1;
using nlohmann::json;

json Cluster(const std::string& name, const std::vector<std::string>& hosts, json extra = {}) {
  json list = json::array();
  for (const auto& host : hosts) {
    list.push_back({{"address", host}, {"weight", 1}});
  }
  json cluster = {{"name", name}, {"protocol", "http1"}, {"hosts", list}};
  for (auto& [key, value] : extra.items()) {
    cluster[key] = value;
  }
  return cluster;
}

json MeshConfig(json routes, json clusters, json extra_mesh = json::object()) {
  json config = InMemoryConfig("mesh-e2e");
  config["mesh"] = {
      {"workers", 2},
      {"listeners",
       {{{"name", "http"}, {"address", "127.0.0.1:0"}, {"protocol", "http1"}, {"router", "r"}}}},
      {"routers", {{{"name", "r"}, {"routes", routes}}}},
      {"clusters", clusters}};
  for (auto& [key, value] : extra_mesh.items()) {
    config["mesh"][key] = value;
  }
  return config;
}

std::unique_ptr<HttpUpstream> Upstream(const std::string& name) {
  HttpUpstream::Options options;
  options.name = name;
  auto upstream = HttpUpstream::Start(options);
  EXPECT_TRUE(upstream.ok()) << upstream.status();
  return upstream.ok() ? std::move(*upstream) : nullptr;
}

int OpenFds(pid_t pid) {
  int count = 0;
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) {
    return -1;
  }
  while (readdir(dir) != nullptr) {
    ++count;
  }
  closedir(dir);
  return count;
}

class MeshTest : public ::testing::Test {
 protected:
  void Start(const json& config) {
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    std::ifstream in(sidecar_->ready_file());
    json ready = json::parse(in);
    ASSERT_TRUE(ready["listeners"].contains("http")) << ready.dump();
    listener_ = ready["listeners"]["http"].get<std::string>();
    port_ = std::stoi(listener_.substr(listener_.rfind(':') + 1));
  }

  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  httplib::Client Client() {
    httplib::Client client("127.0.0.1", port_);
    client.set_keep_alive(true);
    client.set_read_timeout(10, 0);
    return client;
  }

  json MeshState() {
    httplib::Client admin(sidecar_->actuator_address());
    auto result = admin.Get("/actuator/mesh");
    EXPECT_TRUE(result) << "actuator unreachable";
    if (!result) {
      return json();
    }
    return json::parse(result->body, nullptr, false);
  }

  json HostState(const std::string& cluster, const std::string& address) {
    const json state = MeshState();  // named: a temporary would die before the loop runs
    for (const auto& c : state["clusters"]) {
      if (c["name"] == cluster) {
        for (const auto& h : c["hosts"]) {
          if (h["address"] == address) {
            return h;
          }
        }
      }
    }
    return json();
  }

  // Sends raw bytes on a fresh connection and returns everything read until the peer closes or
  // `timeout` passes.
  std::string Raw(const std::string& bytes,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        break;
      }
      sent += static_cast<size_t>(n);
    }
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string out;
    char buf[4096];
    while (true) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
  }

  std::unique_ptr<Sidecar> sidecar_;
  std::string listener_;
  int port_ = 0;
};

TEST_F(MeshTest, ProxiesWithKeepAliveAndAddsForwardedFor) {
  auto up = Upstream("a");
  Start(
      MeshConfig({{{"match", json::object()}, {"cluster", "a"}}}, {Cluster("a", {up->address()})}));
  auto client = Client();
  for (int i = 0; i < 20; ++i) {
    auto result = client.Post("/echo/" + std::to_string(i) + "?x=1", "payload-" + std::to_string(i),
                              "text/plain");
    ASSERT_TRUE(result) << httplib::to_string(result.error());
    ASSERT_EQ(result->status, 200) << result->body;
    json body = json::parse(result->body);
    EXPECT_EQ(body["path"], "/echo/" + std::to_string(i));
    EXPECT_EQ(body["method"], "POST");
    EXPECT_EQ(body["body"], "payload-" + std::to_string(i));
    EXPECT_EQ(body["headers"]["x-forwarded-for"], "127.0.0.1");
  }
  // curl, a second independent client, through the same listener.
  RunResult curl = RunProcess({"/usr/bin/curl", "-sS", "-i", "http://" + listener_ + "/curl"});
  EXPECT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_NE(curl.out.find("HTTP/1.1 200"), std::string::npos) << curl.out;
  EXPECT_EQ(up->requests(), 21u);
}

TEST_F(MeshTest, UnknownServiceGets404NamingIt) {
  auto up = Upstream("a");
  Start(MeshConfig({{{"match", {{"service", "known"}}}, {"cluster", "a"}}},
                   {Cluster("a", {up->address()})}));
  auto client = Client();
  auto result = client.Get("/", {{"id", "nobody"}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_NE(result->body.find("nobody"), std::string::npos) << result->body;
  auto ok = client.Get("/", {{"id", "known"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(MeshTest, WeightedSplitNinetyTenOverTwoThousandRequests) {
  auto v1 = Upstream("v1");
  auto v2 = Upstream("v2");
  Start(MeshConfig({{{"match", json::object()},
                     {"weighted_clusters",
                      {{{"cluster", "v2"}, {"weight", 90}}, {{"cluster", "v1"}, {"weight", 10}}}}}},
                   {Cluster("v1", {v1->address()}), Cluster("v2", {v2->address()})}));
  auto client = Client();
  for (int i = 0; i < 2000; ++i) {
    auto result = client.Get("/");
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200);
  }
  double share = static_cast<double>(v2->requests()) / 2000.0;
  EXPECT_NEAR(share, 0.90, 0.03) << "v2 got " << v2->requests();
  EXPECT_EQ(v1->requests() + v2->requests(), 2000u);
}

TEST_F(MeshTest, HeaderRoutingAndDirectResponse) {
  auto stable = Upstream("stable");
  auto canary = Upstream("canary");
  Start(MeshConfig(
      {{{"match", {{"path_prefix", "/health"}}},
        {"direct_response", {{"status", 200}, {"body", "fine"}}}},
       {{"match", {{"headers", {{{"name", "x-canary"}, {"exact", "1"}}}}}}, {"cluster", "canary"}},
       {{"match", {{"headers", {{{"name", "x-user"}, {"regex", "vip-[0-9]+"}}}}}},
        {"cluster", "canary"}},
       {{"match", json::object()}, {"cluster", "stable"}}},
      {Cluster("stable", {stable->address()}), Cluster("canary", {canary->address()})}));
  auto client = Client();
  auto direct = client.Get("/healthz");
  ASSERT_TRUE(direct);
  EXPECT_EQ(direct->status, 200);
  EXPECT_EQ(direct->body, "fine");
  auto c = client.Get("/", {{"x-canary", "1"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(json::parse(c->body)["upstream"], "canary");
  auto vip = client.Get("/", {{"x-user", "vip-42"}});
  ASSERT_TRUE(vip);
  EXPECT_EQ(json::parse(vip->body)["upstream"], "canary");
  auto not_vip = client.Get("/", {{"x-user", "vip-42x"}});
  ASSERT_TRUE(not_vip);
  EXPECT_EQ(json::parse(not_vip->body)["upstream"], "stable");
  auto s = client.Get("/");
  ASSERT_TRUE(s);
  EXPECT_EQ(json::parse(s->body)["upstream"], "stable");
}

TEST_F(MeshTest, RetriesOnASecondHostWhenTheFirstRefuses) {
  auto up = Upstream("live");
  auto dead = Upstream("dead");
  std::string dead_address = dead->address();
  dead->Stop();  // its port now refuses connections
  Start(MeshConfig({{{"match", json::object()},
                     {"cluster", "pair"},
                     {"retry", {{"attempts", 2}, {"on", {"connect-failure"}}}}}},
                   {Cluster("pair", {dead_address, up->address()})}));
  auto client = Client();
  for (int i = 0; i < 20; ++i) {
    auto result = client.Get("/");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200) << result->body;
  }
  EXPECT_EQ(up->requests(), 20u);
}

TEST_F(MeshTest, NoRetryAnswers503OnConnectFailure) {
  auto dead = Upstream("dead");
  std::string dead_address = dead->address();
  dead->Stop();
  Start(
      MeshConfig({{{"match", json::object()}, {"cluster", "d"}}}, {Cluster("d", {dead_address})}));
  auto client = Client();
  auto result = client.Get("/");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
}

TEST_F(MeshTest, RouteTimeoutAnswers504AndUpstreamResetAnswers502) {
  auto slow = Upstream("slow");
  slow->SetDelay(std::chrono::milliseconds(1500));
  auto broken = Upstream("broken");
  broken->SetMode(HttpUpstream::Mode::kResetOnRequest);
  Start(
      MeshConfig({{{"match", {{"path_prefix", "/slow"}}}, {"cluster", "slow"}, {"timeout_ms", 200}},
                  {{"match", json::object()}, {"cluster", "broken"}}},
                 {Cluster("slow", {slow->address()}), Cluster("broken", {broken->address()})}));
  auto client = Client();
  auto start = std::chrono::steady_clock::now();
  auto timeout = client.Get("/slow");
  ASSERT_TRUE(timeout);
  EXPECT_EQ(timeout->status, 504);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
  auto reset = Client().Get("/reset");
  ASSERT_TRUE(reset);
  EXPECT_EQ(reset->status, 502);
}

TEST_F(MeshTest, HealthCheckEjectsADeadHostAndBringsItBack) {
  auto a = Upstream("a");
  auto b = Upstream("b");
  json health = {{"health_check",
                  {{"type", "http"},
                   {"path", "/health"},
                   {"interval_ms", 100},
                   {"timeout_ms", 200},
                   {"healthy_threshold", 1},
                   {"unhealthy_threshold", 2}}}};
  Start(MeshConfig({{{"match", json::object()}, {"cluster", "c"}}},
                   {Cluster("c", {a->address(), b->address()}, health)}));
  b->Stop();
  ASSERT_TRUE(WaitFor([&] { return HostState("c", b->address())["health"] == "unhealthy"; }))
      << MeshState().dump();
  uint64_t before = a->requests();
  auto client = Client();
  for (int i = 0; i < 20; ++i) {
    auto result = client.Get("/");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200);
  }
  EXPECT_GE(a->requests() - before, 20u);  // health checks add a few
  ASSERT_TRUE(b->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return HostState("c", b->address())["health"] == "healthy"; }))
      << MeshState().dump();
  // ottavactl shows the same state.
  RunResult ctl =
      RunProcess({BinDir() + "/ottavactl", "mesh", "--actuator", sidecar_->actuator_address()});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_NE(ctl.out.find(b->address()), std::string::npos) << ctl.out;
}

TEST_F(MeshTest, OutlierDetectionEjectsAHostAnswering5xx) {
  auto good = Upstream("good");
  auto bad = Upstream("bad");
  bad->SetStatus(500);
  json outlier = {
      {"outlier_detection",
       {{"consecutive_5xx", 3}, {"base_ejection_ms", 60000}, {"max_ejection_percent", 50}}}};
  Start(MeshConfig({{{"match", json::object()}, {"cluster", "c"}}},
                   {Cluster("c", {good->address(), bad->address()}, outlier)}));
  auto client = Client();
  for (int i = 0; i < 12; ++i) {
    client.Get("/");
  }
  ASSERT_TRUE(WaitFor([&] { return HostState("c", bad->address())["ejected"] == true; }))
      << MeshState().dump();
  uint64_t bad_before = bad->requests();
  for (int i = 0; i < 20; ++i) {
    auto result = client.Get("/");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200);
  }
  EXPECT_EQ(bad->requests(), bad_before);
}

TEST_F(MeshTest, MirrorsRequestsToAShadowCluster) {
  auto main = Upstream("main");
  auto shadow = Upstream("shadow");
  Start(MeshConfig({{{"match", json::object()},
                     {"cluster", "main"},
                     {"mirror", {{"cluster", "shadow"}, {"percent", 100}}}}},
                   {Cluster("main", {main->address()}), Cluster("shadow", {shadow->address()})}));
  auto client = Client();
  for (int i = 0; i < 10; ++i) {
    auto result = client.Post("/m", "body", "text/plain");
    ASSERT_TRUE(result);
    EXPECT_EQ(json::parse(result->body)["upstream"], "main");
  }
  ASSERT_TRUE(WaitFor([&] { return shadow->requests() == 10; })) << shadow->requests();
  auto recorded = shadow->Recorded();
  ASSERT_FALSE(recorded.empty());
  EXPECT_EQ(recorded.back().body, "body");
}

TEST_F(MeshTest, DynamicUpdateUnderLoadFailsNoRequest) {
  auto a = Upstream("a");
  auto b = Upstream("b");
  Start(MeshConfig({{{"match", json::object()}, {"cluster", "a"}}},
                   {Cluster("a", {a->address()}), Cluster("b", {b->address()})}));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> done{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      auto client = Client();
      while (!stop.load()) {
        auto result = client.Get("/");
        if (!result || result->status != 200) {
          failures.fetch_add(1);
        }
        done.fetch_add(1);
      }
    });
  }
  httplib::Client admin(sidecar_->actuator_address());
  // A bad update is refused with the pointer of the bad key; the old config stays.
  json bad = {
      {"routers",
       {{{"name", "r"}, {"routes", {{{"match", json::object()}, {"cluster", "missing"}}}}}}},
      {"clusters", {Cluster("a", {a->address()})}}};
  auto refused = admin.Put("/actuator/mesh/config", bad.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("/routers/0/routes/0/cluster"), std::string::npos) << refused->body;
  for (int round = 0; round < 6; ++round) {
    std::string target = round % 2 == 0 ? "b" : "a";
    json update = {
        {"routers",
         {{{"name", "r"}, {"routes", {{{"match", json::object()}, {"cluster", target}}}}}}},
        {"clusters", {Cluster("a", {a->address()}), Cluster("b", {b->address()})}}};
    auto applied = admin.Put("/actuator/mesh/config", update.dump(), "application/json");
    ASSERT_TRUE(applied);
    EXPECT_EQ(applied->status, 200) << applied->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  stop = true;
  for (auto& thread : load) {
    thread.join();
  }
  EXPECT_EQ(failures.load(), 0) << "of " << done.load();
  EXPECT_GT(a->requests(), 0u);
  EXPECT_GT(b->requests(), 0u);
}

TEST_F(MeshTest, BadInputGetsTheRightStatusAndLeaksNothing) {
  auto up = Upstream("a");
  json config =
      MeshConfig({{{"match", json::object()}, {"cluster", "a"}}}, {Cluster("a", {up->address()})});
  config["mesh"]["listeners"][0]["header_timeout_ms"] = 300;
  Start(config);
  // Warm up every worker's pool: concurrent keep-alive clients land on different workers, and
  // each worker keeps its own idle upstream connection afterwards.
  {
    std::vector<httplib::Client> clients;
    for (int i = 0; i < 4; ++i) {
      clients.push_back(Client());
    }
    for (auto& client : clients) {
      ASSERT_TRUE(client.Get("/"));
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int fds_before = OpenFds(sidecar_->pid());

  EXPECT_EQ(Raw("GARBAGE\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(Raw("GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  std::string huge =
      "GET / HTTP/1.1\r\nHost: x\r\nx-big: " + std::string(70 * 1024, 'a') + "\r\n\r\n";
  EXPECT_EQ(Raw(huge).rfind("HTTP/1.1 431", 0), 0u);
  EXPECT_EQ(
      Raw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
          "0\r\n\r\n")
          .rfind("HTTP/1.1 400", 0),
      0u);
  EXPECT_EQ(Raw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
                .rfind("HTTP/1.1 400", 0),
            0u);
  // Headers sent too slowly: cut after the header timeout.
  auto start = std::chrono::steady_clock::now();
  std::string slow = Raw("GET / HTTP/1.1\r\nHost: x\r\n", std::chrono::milliseconds(3000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2500));
  EXPECT_EQ(slow.rfind("HTTP/1.1 408", 0), 0u) << slow;
  // Pipelined requests are answered in order.
  std::string two =
      Raw("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n"
          "Connection: close\r\n\r\n");
  size_t one = two.find("\"/one\"");
  size_t second = two.find("\"/two\"");
  EXPECT_NE(one, std::string::npos) << two;
  EXPECT_NE(second, std::string::npos) << two;
  EXPECT_LT(one, second);

  ASSERT_TRUE(WaitFor([&] { return OpenFds(sidecar_->pid()) <= fds_before; }))
      << OpenFds(sidecar_->pid()) << " fds, was " << fds_before;
  ASSERT_TRUE(Client().Get("/"));  // still serving
}

TEST_F(MeshTest, InvokeServiceThroughTheMesh) {
  auto up = Upstream("callee");
  json config =
      MeshConfig({{{"match", {{"service", "callee"}, {"path_prefix", "/slow"}}}, {"cluster", "c"}},
                  {{"match", {{"service", "callee"}}}, {"cluster", "c"}}},
                 {Cluster("c", {up->address()})});
  config["mesh"]["rpc_headers"] = {{"x-env", "e2e"}};
  Start(config);
  auto stub = v1::Runtime::NewStub(
      grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials()));
  auto call = [&](const std::string& id, const std::string& method, v1::HTTPExtension::Verb verb,
                  const std::string& data, const std::string& query,
                  std::chrono::milliseconds deadline, v1::InvokeResponse* response,
                  std::map<std::string, std::string> metadata = {}) {
    v1::InvokeServiceRequest request;
    request.set_id(id);
    request.mutable_message()->set_method(method);
    request.mutable_message()->mutable_data()->set_value(data);
    request.mutable_message()->set_content_type("text/plain");
    request.mutable_message()->mutable_http_extension()->set_verb(verb);
    request.mutable_message()->mutable_http_extension()->set_querystring(query);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    for (const auto& [k, v] : metadata) {
      ctx.AddMetadata(k, v);
    }
    return stub->InvokeService(&ctx, request, response);
  };
  v1::InvokeResponse response;
  grpc::Status status = call("callee", "hello", v1::HTTPExtension::POST, "ping", "a=1",
                             std::chrono::seconds(5), &response, {{"x-trace", "t1"}});
  ASSERT_TRUE(status.ok()) << status.error_message();
  json echoed = json::parse(response.data().value());
  EXPECT_EQ(echoed["method"], "POST");
  EXPECT_EQ(echoed["path"], "/hello");
  EXPECT_EQ(echoed["query"], "a=1");
  EXPECT_EQ(echoed["body"], "ping");
  EXPECT_EQ(echoed["headers"]["x-trace"], "t1");
  EXPECT_EQ(echoed["headers"]["dapr-caller-app-id"], "mesh-e2e");
  EXPECT_EQ(echoed["headers"]["content-type"], "text/plain");
  EXPECT_EQ(echoed["headers"]["x-env"], "e2e") << echoed.dump();  // the builtin RPC filter

  status =
      call("callee", "get", v1::HTTPExtension::GET, "", "", std::chrono::seconds(5), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(json::parse(response.data().value())["method"], "GET");

  status = call("nobody", "x", v1::HTTPExtension::GET, "", "", std::chrono::seconds(5), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();

  up->SetStatus(500);
  status = call("callee", "x", v1::HTTPExtension::GET, "", "", std::chrono::seconds(5), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL) << status.error_message();
  EXPECT_NE(status.error_message().find("500"), std::string::npos);
  up->SetStatus(200);

  up->SetDelay(std::chrono::milliseconds(2000));
  auto start = std::chrono::steady_clock::now();
  status = call("callee", "slow", v1::HTTPExtension::GET, "", "", std::chrono::milliseconds(300),
                &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  up->SetDelay(std::chrono::milliseconds(0));
}

long RssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

TEST_F(MeshTest, HundredMegabyteBodiesStreamBothWaysWithBoundedMemory) {
  auto up = Upstream("big");
  Start(MeshConfig({{{"match", json::object()}, {"cluster", "big"}, {"timeout_ms", 60000}}},
                   {Cluster("big", {up->address()})}));
  const long rss_before = RssKib(sidecar_->pid());
  // Download: 100 MB from the upstream, chunked and with a length.
  for (const std::string& query : {std::string("?chunked=1"), std::string("")}) {
    RunResult curl = RunProcess(
        {"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
         "http://" + listener_ + "/bytes/104857600" + query},
        std::chrono::seconds(60));
    EXPECT_EQ(curl.out, "200 104857600") << curl.err;
  }
  // Upload: 100 MB chunked (curl streams from stdin) and with Expect: 100-continue.
  std::string dir = MakeTempDir();
  std::string file = dir + "/body";
  {
    std::ofstream out(file, std::ios::binary);
    std::string block(1 << 20, 'x');
    for (int i = 0; i < 100; ++i) {
      out << block;
    }
  }
  RunResult upload = RunProcess({"/usr/bin/curl", "-sS", "-H", "Expect: 100-continue",
                                 "--data-binary", "@" + file, "http://" + listener_ + "/upload"},
                                std::chrono::seconds(60));
  ASSERT_EQ(upload.exit_code, 0) << upload.err;
  json echoed = json::parse(upload.out, nullptr, false);
  ASSERT_FALSE(echoed.is_discarded()) << upload.out.substr(0, 200);
  EXPECT_EQ(echoed["body_length"], 104857600);
  RunResult chunked =
      RunProcess({"/usr/bin/bash", "-c",
                  "head -c 104857600 /dev/zero | /usr/bin/curl -sS -H 'Transfer-Encoding: chunked' "
                  "--data-binary @- http://" +
                      listener_ + "/upload"},
                 std::chrono::seconds(60));
  ASSERT_EQ(chunked.exit_code, 0) << chunked.err;
  echoed = json::parse(chunked.out, nullptr, false);
  ASSERT_FALSE(echoed.is_discarded()) << chunked.out.substr(0, 200);
  EXPECT_EQ(echoed["body_length"], 104857600);
  const long rss_after = RssKib(sidecar_->pid());
  // 400 MB went through; the sidecar may grow by buffers and pools, never by the bodies.
  EXPECT_LT(rss_after - rss_before, 32 * 1024) << rss_before << " KiB -> " << rss_after << " KiB";
}

TEST_F(MeshTest, HeadHttp10AndConnectionClose) {
  auto up = Upstream("a");
  Start(
      MeshConfig({{{"match", json::object()}, {"cluster", "a"}}}, {Cluster("a", {up->address()})}));
  std::string head = Raw("HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  size_t end = head.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(head.size(), end + 4) << "a HEAD response has no body: " << head;
  // HTTP/1.0 without keep-alive: answered, then closed by the sidecar (Raw reads to EOF).
  std::string old = Raw("GET /old HTTP/1.0\r\nHost: x\r\n\r\n");
  EXPECT_EQ(old.rfind("HTTP/1.", 0), 0u) << old;
  EXPECT_NE(old.find("\"/old\""), std::string::npos) << old;
  // Hop-by-hop headers do not reach the upstream; end-to-end ones do.
  auto client = Client();
  auto result = client.Get("/hop", {{"Connection", "keep-alive, x-private"},
                                    {"x-private", "secret"},
                                    {"x-public", "ok"},
                                    {"Keep-Alive", "timeout=5"}});
  ASSERT_TRUE(result);
  json body = json::parse(result->body);
  EXPECT_FALSE(body["headers"].contains("x-private")) << result->body;
  EXPECT_FALSE(body["headers"].contains("keep-alive")) << result->body;
  EXPECT_EQ(body["headers"]["x-public"], "ok");
}

TEST_F(MeshTest, StreamFiltersStopContinueAndAnswer) {
  auto up = Upstream("a");
  json config =
      MeshConfig({{{"match", json::object()}, {"cluster", "a"}}}, {Cluster("a", {up->address()})});
  config["mesh"]["routers"][0]["filters"] = {
      {{"name", "fault"},
       {"config", {{"abort", {{"status", 429}, {"percent", 100}}}, {"header", "x-abort"}}}},
      {{"name", "fault"},
       {"config", {{"delay", {{"ms", 300}, {"percent", 100}}}, {"header", "x-delay"}}}}};
  Start(config);
  auto client = Client();
  // Answered by the first filter: the upstream never sees it.
  auto aborted = client.Get("/", {{"x-abort", "1"}});
  ASSERT_TRUE(aborted);
  EXPECT_EQ(aborted->status, 429);
  EXPECT_EQ(up->requests(), 0u);
  // Stopped by the second filter, continued after its timer.
  auto start = std::chrono::steady_clock::now();
  auto slow = client.Post("/d", {{"x-delay", "1"}}, "body", "text/plain");
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 200);
  EXPECT_EQ(json::parse(slow->body)["body"], "body");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  // Untouched requests pass straight through.
  auto plain = client.Get("/");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
  // A bad filter config is refused by a dynamic update, naming the key.
  httplib::Client admin(sidecar_->actuator_address());
  json update = {{"routers",
                  {{{"name", "r"},
                    {"filters", {{{"name", "fault"}, {"config", {{"abort", {{"status", 42}}}}}}}},
                    {"routes", {{{"match", json::object()}, {"cluster", "a"}}}}}}}};
  auto refused = admin.Put("/actuator/mesh/config", update.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("/routers/0/filters/0/config/abort/status"), std::string::npos)
      << refused->body;
}

TEST(MeshConfigTest, ABoltFrameLimitOutOfRangeIsRefusedWithItsPointer) {
  json config =
      MeshConfig({{{"match", json::object()}, {"cluster", "a"}}}, {Cluster("a", {"127.0.0.1:1"})});
  config["mesh"]["listeners"][0]["protocol"] = "bolt";
  config["mesh"]["listeners"][0]["max_frame_bytes"] = 10;
  std::string dir = MakeTempDir();
  std::ofstream(dir + "/c.json") << config.dump();
  RunResult result = RunProcess({BinDir() + "/ottava", "validate", "--config", dir + "/c.json"});
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  EXPECT_NE(result.err.find("/mesh/listeners/0/max_frame_bytes"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace ottava::test
