// The official Dapr JavaScript SDK (@dapr/dapr 3.18.0, pinned by test/interop/dapr's lockfile)
// against the real `ottava` binary: test/interop/dapr/sdk_test.js runs a DaprServer app (pub/sub
// handlers answering SUCCESS, RETRY and DROP, an invocation method) and a DaprClient (state with
// etags and transactions, publish, invocation of its own app, configuration get and subscribe,
// lock, metadata, health, the API token accepted and refused), over gRPC (the app on
// `dapr-grpc`) and over HTTP (the app on `http`).
//
// The peers are installed by scripts/setup.sh (`npm ci` in test/interop/dapr). Without their
// node_modules every test is skipped with a message saying so.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::test {
namespace {

namespace v1 = spec::proto::runtime::v1;
using nlohmann::json;

constexpr char kAppId[] = "sdkapp";

std::string PeerDir() {
  const char* source = std::getenv("OTTAVA_SOURCE_DIR");
  return std::string(source != nullptr ? source : ".") + "/test/interop/dapr";
}

bool PeersInstalled() {
  struct stat st {};
  return stat((PeerDir() + "/node_modules/@dapr/dapr/package.json").c_str(), &st) == 0;
}

int PortOf(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

class DaprSdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PeersInstalled()) {
      GTEST_SKIP() << "@dapr/dapr is not installed in " << PeerDir()
                   << "/node_modules (scripts/setup.sh runs npm ci there)";
    }
  }

  void TearDown() override {
    stop_writer_ = true;
    if (writer_.joinable()) {
      writer_.join();
    }
  }

  // Starts the sidecar with the app on `protocol` at a free port.
  void StartSidecar(const std::string& protocol, const std::string& token) {
    app_port_ = FreePort();
    json config = InMemoryConfig(kAppId);
    config["app"]["callback"] = {{"address", "127.0.0.1:" + std::to_string(app_port_)},
                                 {"protocol", protocol},
                                 {"timeout_ms", 5000}};
    if (!token.empty()) {
      config["api_token"] = token;
    }
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    token_ = token;
  }

  std::unique_ptr<grpc::ClientContext> Ctx() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!token_.empty()) {
      ctx->AddMetadata("dapr-api-token", token_);
    }
    return ctx;
  }

  // Configuration items go in through Layotto's API (Dapr's has no write call): "color" = red
  // once, then "size" = big-<n> every 100 ms while the SDK script runs, for its subscription.
  void SeedConfiguration() {
    auto stub = v1::Runtime::NewStub(
        grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials()));
    v1::SaveConfigurationRequest save;
    save.set_store_name("config");
    auto* item = save.add_items();
    item->set_key("color");
    item->set_content("red");
    google::protobuf::Empty empty;
    grpc::Status status = stub->SaveConfiguration(Ctx().get(), save, &empty);
    ASSERT_TRUE(status.ok()) << status.error_message();
    writer_ = std::thread([this, stub = std::shared_ptr<v1::Runtime::Stub>(std::move(stub))] {
      for (int n = 0; !stop_writer_; ++n) {
        v1::SaveConfigurationRequest size;
        size.set_store_name("config");
        auto* entry = size.add_items();
        entry->set_key("size");
        entry->set_content("big-" + std::to_string(n));
        google::protobuf::Empty ignored;
        stub->SaveConfiguration(Ctx().get(), size, &ignored);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }

  RunResult RunScript(const std::string& protocol) {
    const std::string& sdk_address =
        protocol == "grpc" ? sidecar_->grpc_address() : sidecar_->dapr_http_address();
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "node",
                                     PeerDir() + "/sdk_test.js",
                                     "--protocol",
                                     protocol,
                                     "--dapr-port",
                                     std::to_string(PortOf(sdk_address)),
                                     "--http-port",
                                     std::to_string(PortOf(sidecar_->dapr_http_address())),
                                     "--app-port",
                                     std::to_string(app_port_),
                                     "--app-id",
                                     kAppId,
                                     "--config-store",
                                     "config"};
    if (!token_.empty()) {
      argv.push_back("--token");
      argv.push_back(token_);
    }
    return RunProcess(argv, std::chrono::seconds(120));
  }

  static void ExpectPassed(const RunResult& result, const std::vector<std::string>& checks) {
    EXPECT_EQ(result.exit_code, 0) << result.out << "\nstderr:\n" << result.err.substr(0, 4000);
    for (const std::string& check : checks) {
      EXPECT_NE(result.out.find("PASS " + check + "\n"), std::string::npos)
          << "missing PASS " << check << " in:\n"
          << result.out;
    }
    EXPECT_EQ(result.out.find("FAIL "), std::string::npos) << result.out;
  }

  std::unique_ptr<Sidecar> sidecar_;
  uint16_t app_port_ = 0;
  std::string token_;
  std::thread writer_;
  std::atomic<bool> stop_writer_{false};
};

const std::vector<std::string> kCommonChecks = {
    "app started",
    "health",
    "metadata",
    "state save/get/delete",
    "state etags",
    "state transaction",
    "invoke own app",
    "lock and unlock",
    "subscriptions discovered",
    "publish SUCCESS",
    "publish RETRY",
    "publish DROP to dead letter",
    "publish to an unknown pubsub fails",
};

TEST_F(DaprSdkTest, GrpcClientAndGrpcAppWithToken) {
  StartSidecar("dapr-grpc", "sdk-token-1");
  SeedConfiguration();
  RunResult result = RunScript("grpc");
  std::vector<std::string> checks = kCommonChecks;
  for (const char* extra : {"configuration get", "configuration subscribe",
                            "token refused over HTTP", "token refused over gRPC"}) {
    checks.emplace_back(extra);
  }
  ExpectPassed(result, checks);
  // The sidecar asked the app for its subscriptions until it answered, over Dapr's AppCallback.
  EXPECT_NE(sidecar_->Stderr().find("Dapr app answered ListTopicSubscriptions: 4"),
            std::string::npos)
      << sidecar_->Stderr();
}

TEST_F(DaprSdkTest, HttpClientAndHttpAppWithToken) {
  StartSidecar("http", "sdk-token-2");
  RunResult result = RunScript("http");
  std::vector<std::string> checks = kCommonChecks;
  checks.emplace_back("token refused over HTTP");
  ExpectPassed(result, checks);
  EXPECT_NE(sidecar_->Stderr().find("Dapr HTTP app answered /dapr/subscribe: 4"), std::string::npos)
      << sidecar_->Stderr();
}

TEST_F(DaprSdkTest, GrpcClientWithoutToken) {
  StartSidecar("dapr-grpc", "");
  SeedConfiguration();
  RunResult result = RunScript("grpc");
  std::vector<std::string> checks = kCommonChecks;
  checks.emplace_back("configuration get");
  checks.emplace_back("configuration subscribe");
  ExpectPassed(result, checks);
}

}  // namespace
}  // namespace ottava::test
