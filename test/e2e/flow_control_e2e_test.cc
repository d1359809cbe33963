// End-to-end tests of unified flow control (issue 9) with the real `ottava` binary: the
// `flow_control` filter on HTTP/1.1 and Bolt listeners and on InvokeService, the gRPC API adapter,
// live rules through the actuator and the configuration store, and the config checks. Upstreams
// are test::HttpUpstream and test::BoltUpstream.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "mesh/codec/bolt/bolt_frame.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/bolt_upstream.h"
#include "test/support/http_upstream.h"
#include "test/support/process.h"
#include "test/support/rpc_clients.h"
#include "test/support/runtime_calls.h"

namespace ottava::test {
namespace {

namespace v1 = spec::proto::runtime::v1;
namespace bolt = mesh::bolt;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr char kService[] = "com.example.Echo:1.0";

// One Bolt call of `method` (the `sofa_head_method_name` header, which names the flow-control
// resource with the service) on `client`: the answer's status, or -1 when none came.
int CallMethod(BoltClient& client, uint32_t id, const std::string& method) {
  mesh::RpcHead head;
  head.type = bolt::kTypeRequest;
  head.cmd_code = bolt::kCmdRequest;
  head.timeout_ms = 3000;
  head.set_class_name(std::string(bolt::kDefaultRequestClass));
  mesh::HeaderMap headers;
  headers.AddCased("service", kService);
  headers.AddCased("sofa_head_method_name", method);
  mesh::Buffer body;
  body.Add("hello");
  mesh::Buffer out;
  bolt::EncodeFrame(head, id, headers, body, out);
  client.SendRaw(out.ToString());
  std::optional<bolt::Frame> frame = client.Read(5000);
  return frame ? frame->head.status : -1;
}

json Config(const std::string& upstream, json rules, const std::string& bolt_upstream = "") {
  json config = InMemoryConfig("flow-e2e");
  json listeners = {
      {{"name", "http"}, {"address", "127.0.0.1:0"}, {"protocol", "http1"}, {"router", "r"}}};
  json routers = {
      {{"name", "r"},
       {"filters", {{{"name", "flow_control"}}}},
       {"routes", {{{"match", json::object()}, {"cluster", "c"}, {"timeout_ms", 5000}}}}}};
  json clusters = {{{"name", "c"},
                    {"protocol", "http1"},
                    {"max_requests", 10000},
                    {"max_pending", 10000},
                    {"hosts", {{{"address", upstream}}}},
                    {"outlier_detection", {{"consecutive_5xx", 0}}}}};
  if (!bolt_upstream.empty()) {
    listeners.push_back(
        {{"name", "bolt"}, {"address", "127.0.0.1:0"}, {"protocol", "bolt"}, {"router", "rb"}});
    routers.push_back({{"name", "rb"},
                       {"filters", {{{"name", "flow_control"}}}},
                       {"routes", {{{"match", {{"service", kService}}}, {"cluster", "echo"}}}}});
    clusters.push_back(
        {{"name", "echo"}, {"protocol", "bolt"}, {"hosts", {{{"address", bolt_upstream}}}}});
  }
  config["mesh"] = {{"workers", 2},
                    {"listeners", listeners},
                    {"routers", routers},
                    {"clusters", clusters},
                    {"rpc_router", "r"}};
  config["flow_control"] = {{"rules", rules}};
  return config;
}

class FlowControlE2eTest : public ::testing::Test {
 protected:
  void Start(const json& config) {
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    std::ifstream in(sidecar_->ready_file());
    ready_ = json::parse(in);
    http_port_ = PortOf("http");
  }

  int PortOf(const std::string& listener) {
    const std::string address = ready_["listeners"][listener].get<std::string>();
    return std::stoi(address.substr(address.rfind(':') + 1));
  }

  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  std::unique_ptr<HttpUpstream> Upstream() {
    auto upstream = HttpUpstream::Start(HttpUpstream::Options{});
    EXPECT_TRUE(upstream.ok()) << upstream.status();
    return upstream.ok() ? std::move(*upstream) : nullptr;
  }

  std::unique_ptr<httplib::Client> Client() {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", http_port_);
    client->set_keep_alive(true);
    client->set_read_timeout(10, 0);
    return client;
  }

  int Get(httplib::Client& client, const std::string& path, httplib::Headers headers = {}) {
    auto result = client.Get(path, headers);
    return result ? result->status : -1;
  }

  json Rules() {
    httplib::Client admin(sidecar_->actuator_address());
    auto result = admin.Get("/actuator/flow-control");
    return result ? json::parse(result->body, nullptr, false) : json();
  }

  std::string Metrics() {
    httplib::Client admin(sidecar_->actuator_address());
    auto result = admin.Get("/metrics");
    return result ? result->body : "";
  }

  std::unique_ptr<Sidecar> sidecar_;
  json ready_;
  int http_port_ = 0;
};

// 300 requests per second for 6 s against a 100 QPS rule: every second after the first admits
// 100 ± 5, whichever of the two workers the connections landed on.
TEST_F(FlowControlE2eTest, QpsLimitOf100Admits100PerSecondUnder300Qps) {
  auto up = Upstream();
  Start(Config(up->address(),
               {{{"id", "q100"}, {"resource", "/qps"}, {"kind", "qps"}, {"threshold", 100}}}));
  constexpr int kSeconds = 6;
  constexpr int kThreads = 3;  // 100 rps each, on its own connection
  std::vector<std::array<std::atomic<int>, kSeconds>> passed(kThreads);
  std::atomic<int> failures{0};
  const auto start = std::chrono::steady_clock::now() + milliseconds(50);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = Client();
      for (int i = 0; i < 100 * kSeconds; ++i) {
        const auto due = start + std::chrono::microseconds(10000 * i + 3333 * t);
        std::this_thread::sleep_until(due);
        const int status = Get(*client, "/qps");
        const auto second = std::chrono::duration_cast<std::chrono::seconds>(due - start).count();
        if (status == 200) {
          passed[t][second]++;
        } else if (status != 429) {
          failures++;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(failures.load(), 0);
  int total = 0;
  for (int second = 1; second < kSeconds; ++second) {
    int sum = 0;
    for (int t = 0; t < kThreads; ++t) {
      sum += passed[t][second].load();
    }
    total += sum;
    std::cout << "second " << second << ": " << sum << " admitted of 300\n";
    EXPECT_GE(sum, 95) << "second " << second;
    EXPECT_LE(sum, 105) << "second " << second;
  }
  EXPECT_NEAR(total, 100 * (kSeconds - 1), 5 * (kSeconds - 1));
  EXPECT_NE(Metrics().find("ottava_flow_control_blocks_total{resource=\"/qps\",rule=\"q100\","
                           "kind=\"qps\"}"),
            std::string::npos)
      << Metrics();
}

TEST_F(FlowControlE2eTest, ConcurrencyLimitOf4AgainstASlowUpstream) {
  auto up = Upstream();
  up->SetDelay(milliseconds(600));
  json config =
      Config(up->address(),
             {{{"id", "c4"}, {"resource", "/slow"}, {"kind", "concurrency"}, {"threshold", 4}}});
  // Adaptive limiting on, with a level it never reaches: it must not shed anything.
  config["flow_control"]["adaptive"] = {{"threshold", 1.0}, {"trigger_seconds", 1}};
  Start(config);
  std::atomic<int> ok{0};
  std::atomic<int> limited{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&] {
      auto client = Client();
      const int status = Get(*client, "/slow");
      (status == 200 ? ok : limited)++;
      if (status != 200 && status != 429) {
        ADD_FAILURE() << "status " << status;
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(limited.load(), 6);
  EXPECT_EQ(up->requests(), 4u);
  EXPECT_EQ(Rules()["rules"][0]["live"]["in_flight"], 0) << "every slot was released";
  EXPECT_EQ(Rules()["adaptive"]["phase"], "normal") << Rules().dump();
  EXPECT_NE(Metrics().find("ottava_flow_control_water_level"), std::string::npos);
  auto client = Client();
  EXPECT_EQ(Get(*client, "/slow"), 200);
}

TEST_F(FlowControlE2eTest, BreakerOpensOnUpstreamErrorsAndClosesAfterRecovery) {
  auto up = Upstream();
  up->SetStatus(500);
  Start(Config(up->address(), {{{"id", "b"},
                                {"resource", "/b"},
                                {"kind", "breaker"},
                                {"strategy", "error_ratio"},
                                {"threshold", 0.5},
                                {"min_requests", 5},
                                {"open_ms", 1000},
                                {"reply", {{"status", 503}, {"body", "breaker open\n"}}}}}));
  auto client = Client();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Get(*client, "/b"), 500);
  }
  auto blocked = client->Get("/b");
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->status, 503);
  EXPECT_EQ(blocked->body, "breaker open\n");
  EXPECT_EQ(up->requests(), 5u) << "an open breaker keeps requests from the upstream";
  EXPECT_EQ(Rules()["rules"][0]["live"]["state"], "open");
  up->SetStatus(200);
  EXPECT_TRUE(WaitFor([&] { return Get(*client, "/b") == 200; }, std::chrono::seconds(3)));
  EXPECT_EQ(Rules()["rules"][0]["live"]["state"], "closed");
  EXPECT_EQ(Get(*client, "/b"), 200);
  const std::string metrics = Metrics();
  for (const char* to : {"open", "half_open", "closed"}) {
    EXPECT_NE(metrics.find("ottava_flow_control_breaker_transitions_total{resource=\"/b\",rule="
                           "\"b\",to=\"" +
                           std::string(to) + "\"} 1"),
              std::string::npos)
        << to << "\n"
        << metrics;
  }
}

TEST_F(FlowControlE2eTest, RefinedLimitBlocksOneCallerAppAndNotAnother) {
  auto up = Upstream();
  Start(Config(up->address(),
               {{{"id", "no-batch"},
                 {"resource", "/api/"},
                 {"match", "prefix"},
                 {"kind", "qps"},
                 {"threshold", 0},
                 {"when", {{"all", {{{"caller_app", "batch"}}, {{"header", "x-tier"}}}}}}},
                {{"id", "invoke"},
                 {"resource", "callee#"},
                 {"match", "prefix"},
                 {"kind", "qps"},
                 {"threshold", 0},
                 {"when", {{"any", {{{"caller_app", "flow-e2e"}}}}}}}}));
  auto client = Client();
  EXPECT_EQ(Get(*client, "/api/x", {{"x-caller-app-id", "batch"}, {"x-tier", "1"}}), 429);
  EXPECT_EQ(Get(*client, "/api/x", {{"x-caller-app-id", "batch"}}), 200);
  EXPECT_EQ(Get(*client, "/api/x", {{"x-caller-app-id", "web"}, {"x-tier", "1"}}), 200);
  EXPECT_EQ(Get(*client, "/other", {{"x-caller-app-id", "batch"}, {"x-tier", "1"}}), 200);
  // InvokeService carries this sidecar's app id as the caller (dapr-caller-app-id).
  auto stub = NewRuntimeStub(sidecar_->grpc_address());
  v1::InvokeServiceRequest request;
  request.set_id("callee");
  request.mutable_message()->set_method("hello");
  request.mutable_message()->set_content_type("text/plain");
  v1::InvokeResponse response;
  grpc::Status status = stub->InvokeService(CallContext().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
}

// A rule whose reply names a fallback cluster sends what it blocks there instead of refusing it
// (a downgrade service); the gRPC API, with no cluster to go to, still gets RESOURCE_EXHAUSTED.
TEST_F(FlowControlE2eTest, BlockedRequestsGoToTheFallbackCluster) {
  auto main_up = Upstream();
  auto down = HttpUpstream::Start(HttpUpstream::Options{.name = "downgrade"});
  ASSERT_TRUE(down.ok()) << down.status();
  json config = Config(main_up->address(), {{{"id", "two-a-minute"},
                                             {"resource", "/api"},
                                             {"kind", "qps"},
                                             {"threshold", 2},
                                             {"window_ms", 60000},
                                             {"buckets", 60},
                                             {"reply", {{"fallback_cluster", "down"}}}}});
  config["mesh"]["clusters"].push_back(
      {{"name", "down"}, {"protocol", "http1"}, {"hosts", {{{"address", (*down)->address()}}}}});
  Start(config);
  auto client = Client();
  std::map<std::string, int> by_upstream;
  for (int i = 0; i < 6; ++i) {
    auto result = client->Get("/api");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200);
    by_upstream[result->get_header_value("x-upstream")]++;
  }
  EXPECT_EQ(by_upstream["upstream"], 2);
  EXPECT_EQ(by_upstream["downgrade"], 4);
  EXPECT_EQ(Get(*client, "/other"), 200);  // other resources are untouched
  EXPECT_EQ((*down)->Recorded().size(), 4u);

  // A reply that names a cluster and a status is refused whole, with the pointer.
  httplib::Client admin(sidecar_->actuator_address());
  json bad = {{"rules",
               {{{"id", "x"},
                 {"resource", "/api"},
                 {"kind", "qps"},
                 {"threshold", 1},
                 {"reply", {{"fallback_cluster", "down"}, {"status", 503}}}}}}};
  auto result = admin.Put("/actuator/flow-control", bad.dump(), "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400) << result->body;
  EXPECT_NE(result->body.find("/rules/0/reply"), std::string::npos) << result->body;

  // A fallback cluster the mesh does not have is refused on a live push, with the pointer, and
  // the rules in force keep working.
  bad = {{"rules",
          {{{"id", "y"},
            {"resource", "/api"},
            {"kind", "qps"},
            {"threshold", 1},
            {"reply", {{"fallback_cluster", "nowhere"}}}}}}};
  result = admin.Put("/actuator/flow-control", bad.dump(), "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400) << result->body;
  EXPECT_NE(result->body.find("/rules/0/reply/fallback_cluster"), std::string::npos)
      << result->body;
  EXPECT_NE(result->body.find("nowhere"), std::string::npos) << result->body;
  auto after = client->Get("/api");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->get_header_value("x-upstream"), "downgrade");
}

// One rule set, three kinds of traffic: a Bolt method, an HTTP path and a gRPC API method each
// get their limit of 3 in a minute-long window, answered in their own protocol's terms.
TEST_F(FlowControlE2eTest, SameRulesOnBoltHttpAndGrpcApiTraffic) {
  auto up = Upstream();
  auto bolt_up = BoltUpstream::Start("bolt");
  ASSERT_TRUE(bolt_up.ok()) << bolt_up.status();
  auto rule = [](const std::string& id, const std::string& resource) {
    return json{{"id", id},       {"resource", resource}, {"kind", "qps"},
                {"threshold", 3}, {"window_ms", 60000},   {"buckets", 60}};
  };
  Start(Config(up->address(),
               {rule("bolt", std::string(kService) + "#echo"), rule("http", "/h"),
                rule("grpc", "runtime:GetState")},
               (*bolt_up)->address()));
  BoltClient bolt_client(PortOf("bolt"));
  uint32_t bolt_id = 0;
  ASSERT_TRUE(bolt_client.connected());
  auto client = Client();
  auto stub = NewRuntimeStub(sidecar_->grpc_address());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(CallMethod(bolt_client, ++bolt_id, "echo"), bolt::kSuccess);
    EXPECT_EQ(Get(*client, "/h"), 200);
    v1::GetStateResponse response;
    EXPECT_TRUE(GetState(*stub, "k", &response).ok());
  }
  EXPECT_EQ(CallMethod(bolt_client, ++bolt_id, "echo"), bolt::kServerThreadpoolBusy);
  EXPECT_EQ(CallMethod(bolt_client, ++bolt_id, "other"), bolt::kSuccess)
      << "another method is another resource";
  EXPECT_EQ(Get(*client, "/h"), 429);
  v1::GetStateResponse response;
  grpc::Status status = GetState(*stub, "k", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_TRUE(SaveState(*stub, "k", "v").ok()) << "SaveState is a resource of its own";
  EXPECT_EQ((*bolt_up)->requests(), 4u);
  (*bolt_up)->Stop();
}

TEST_F(FlowControlE2eTest, RulesPushedThroughTheActuatorAndTheConfigurationStore) {
  auto up = Upstream();
  json config = Config(up->address(), json::array());
  config["flow_control"]["config_store"] = {{"store", "config"}, {"key", "flow-rules"}};
  Start(config);
  auto client = Client();
  EXPECT_EQ(Get(*client, "/p"), 200);
  httplib::Client admin(sidecar_->actuator_address());
  // Actuator: a good set applies at once; a bad one is refused whole, naming the key.
  json block_p = {
      {"rules", {{{"id", "p0"}, {"resource", "/p"}, {"kind", "qps"}, {"threshold", 0}}}}};
  auto put = admin.Put("/actuator/flow-control", block_p.dump(), "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200) << put->body;
  EXPECT_EQ(Get(*client, "/p"), 429);
  auto bad =
      admin.Put("/actuator/flow-control",
                R"({"rules": [{"id": "x", "resource": "/q", "kind": "qps"}]})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("/rules/0/threshold"), std::string::npos) << bad->body;
  EXPECT_EQ(Get(*client, "/p"), 429) << "the previous rules stay";

  // Configuration store: saving the item through the Configuration API applies within a second.
  auto stub = NewRuntimeStub(sidecar_->grpc_address());
  auto save = [&](const std::string& content) {
    v1::SaveConfigurationRequest request;
    request.set_store_name("config");
    auto* item = request.add_items();
    item->set_key("flow-rules");
    item->set_content(content);
    google::protobuf::Empty empty;
    return stub->SaveConfiguration(CallContext().get(), request, &empty);
  };
  json block_q = {
      {"rules", {{{"id", "q0"}, {"resource", "/q"}, {"kind", "qps"}, {"threshold", 0}}}}};
  ASSERT_TRUE(save(block_q.dump()).ok());
  EXPECT_TRUE(WaitFor([&] { return Get(*client, "/q") == 429; }, milliseconds(1000)));
  EXPECT_EQ(Get(*client, "/p"), 200);
  ASSERT_TRUE(
      save(R"({"rules": [{"id": "q0", "resource": "/q", "kind": "nope", "threshold": 1}]})").ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        return Metrics().find(
                   "ottava_flow_control_rule_updates_total{source=\"config_store/config\","
                   "result=\"refused\"} 1") != std::string::npos;
      },
      milliseconds(1000)))
      << Metrics();
  EXPECT_EQ(Get(*client, "/q"), 429) << "a malformed item leaves the rules as they were";
  EXPECT_EQ(Rules()["rules"][0]["rule"]["id"], "q0");
  // ottavactl shows the rules and their live counters.
  RunResult shown =
      RunProcess({BinDir() + "/ottavactl", "flow", "--actuator", sidecar_->actuator_address()});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("q0 qps /q blocks=2 passes=0"), std::string::npos) << shown.out;
}

// The events hook: a flood of blocks reaches a subscriber of the sidecar's own in-memory pub/sub
// as one JSON event (per resource and second), and the metrics count it.
TEST_F(FlowControlE2eTest, BlocksArePublishedToThePubSubTopicOfTheEventsHook) {
  auto up = Upstream();
  json config =
      Config(up->address(),
             {{{"id", "none"}, {"resource", "/blocked"}, {"kind", "qps"}, {"threshold", 0}}});
  config["flow_control"]["events"] = {{"pubsub", "pubsub"}, {"topic", "flow-events"}};
  Start(config);
  auto stub = NewRuntimeStub(sidecar_->grpc_address());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->SubscribeTopicEvents(&ctx);
  v1::SubscribeTopicEventsRequest initial;
  initial.mutable_initial_request()->set_pubsub_name("pubsub");
  initial.mutable_initial_request()->set_topic("flow-events");
  ASSERT_TRUE(stream->Write(initial));
  v1::SubscribeTopicEventsResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_initial_response());

  auto client = Client();
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(Get(*client, "/blocked"), 429);
  }
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_event_message());
  json event = json::parse(response.event_message().data(), nullptr, false);
  EXPECT_EQ(event["resource"], "/blocked") << event.dump();
  EXPECT_EQ(event["rule"], "none");
  EXPECT_EQ(event["kind"], "block");
  EXPECT_EQ(event["state"], "qps");
  EXPECT_EQ(event["app_id"], "flow-e2e");
  EXPECT_TRUE(event["time"].is_string());
  v1::SubscribeTopicEventsRequest ack;
  ack.mutable_event_processed()->set_id(response.event_message().id());
  ack.mutable_event_processed()->mutable_status()->set_status(v1::TopicEventResponse::SUCCESS);
  ASSERT_TRUE(stream->Write(ack));
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("ottava_flow_control_blocks_total{resource=\"/blocked\",rule=\"none\","
                         "kind=\"qps\"} 200"),
            std::string::npos)
      << metrics;
  // 200 blocks within a second or two: one or two events, never 200.
  const size_t at =
      metrics.find("ottava_flow_control_events_total{kind=\"block\",result=\"published\"} ");
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_LE(std::stoi(metrics.substr(at + 66)), 2) << metrics.substr(at, 80);
  ctx.TryCancel();
}

TEST(FlowControlConfigTest, ABadRuleInTheConfigFileExits2WithThePointer) {
  json config = Config("127.0.0.1:1", {{{"id", "a"},
                                        {"resource", "/x"},
                                        {"kind", "qps"},
                                        {"threshold", 10},
                                        {"behavior", "sometimes"}}});
  std::string dir = MakeTempDir();
  std::ofstream(dir + "/c.json") << config.dump();
  RunResult result = RunProcess({BinDir() + "/ottava", "validate", "--config", dir + "/c.json"});
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  EXPECT_NE(result.err.find("/flow_control/rules/0/behavior"), std::string::npos) << result.err;
  config["flow_control"] = {{"config_store", {{"store", "missing"}, {"key", "k"}}}};
  std::ofstream(dir + "/d.json") << config.dump();
  result = RunProcess({BinDir() + "/ottava", "--config", dir + "/d.json"});
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  EXPECT_NE(result.err.find("/flow_control/config_store/store"), std::string::npos) << result.err;
  // A cluster rule without the counter's section, an events hook on an unknown pub/sub.
  config["flow_control"] = {{"rules",
                             {{{"id", "c"},
                               {"resource", "/x"},
                               {"kind", "cluster"},
                               {"threshold", 10},
                               {"fallback", "allow"}}}}};
  std::ofstream(dir + "/e.json") << config.dump();
  result = RunProcess({BinDir() + "/ottava", "validate", "--config", dir + "/e.json"});
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  EXPECT_NE(result.err.find("/flow_control/rules/0: a cluster rule needs flow_control.cluster"),
            std::string::npos)
      << result.err;
  config["flow_control"] = {{"events", {{"pubsub", "missing"}, {"topic", "t"}}}};
  std::ofstream(dir + "/f.json") << config.dump();
  result = RunProcess({BinDir() + "/ottava", "validate", "--config", dir + "/f.json"});
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  EXPECT_NE(result.err.find("/flow_control/events/pubsub"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace ottava::test
