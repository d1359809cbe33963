// Interop of the mesh's Dubbo 2 support with a real client from npm: dubbo2.js 2.3.9 in direct
// mode (DirectlyDubbo, no zookeeper; test/interop/dubbo/client.js) calls a small provider built
// on hessian.js (provider.js) through the real `ottava` binary with a `"protocol": "dubbo"`
// listener and cluster: an echo, 200 concurrent calls each getting its own answer, a route by
// group, and a service with no route arriving as an error the client decodes.
//
// The peers are installed by scripts/setup.sh (`npm ci` in test/interop/dubbo). Without their
// node_modules every test is skipped with a message saying so.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "test/support/node_peer.h"
#include "test/support/process.h"

namespace ottava::test {
namespace {

using nlohmann::json;

std::string PeerDir() {
  return InteropDir("dubbo");
}

bool PeersInstalled() {
  return InteropInstalled("dubbo", "dubbo2.js");
}

json DubboCluster(const std::string& name, const std::string& address) {
  return {{"name", name}, {"protocol", "dubbo"}, {"hosts", {{{"address", address}}}}};
}

TEST(DubboInteropTest, Dubbo2JsCallsThroughOttava) {
  if (!PeersInstalled()) {
    GTEST_SKIP() << "test/interop/dubbo/node_modules missing: run scripts/setup.sh";
  }
  auto plain = NodeServer::Start(PeerDir() + "/provider.js", "plain");
  auto blue = NodeServer::Start(PeerDir() + "/provider.js", "blue");
  ASSERT_TRUE(plain && blue);
  json config = InMemoryConfig("dubbo-interop");
  json routes = json::array();
  routes.push_back(
      {{"match",
        {{"service", "com.example.Echo"}, {"headers", {{{"name", "group"}, {"exact", "blue"}}}}}},
       {"cluster", "blue"}});
  routes.push_back({{"match", {{"service", "com.example.Echo"}}}, {"cluster", "plain"}});
  config["mesh"] = {
      {"workers", 2},
      {"listeners",
       {{{"name", "dubbo"}, {"address", "127.0.0.1:0"}, {"protocol", "dubbo"}, {"router", "rd"}}}},
      {"routers", {{{"name", "rd"}, {"routes", routes}}}},
      {"clusters",
       {DubboCluster("plain", plain->address()), DubboCluster("blue", blue->address())}}};
  auto sidecar = Sidecar::Start(config);
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  std::ifstream in((*sidecar)->ready_file());
  json ready = json::parse(in);
  const std::string listener = ready["listeners"]["dubbo"].get<std::string>();

  RunResult run = RunProcess({"/usr/bin/env", "node", PeerDir() + "/client.js", "--address",
                              listener, "--concurrent", "200"},
                             std::chrono::seconds(60));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  json out = json::parse(run.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << run.out << run.err;
  EXPECT_EQ(out["echo"], "plain:echo:hi");
  EXPECT_EQ(out["concurrent"]["ok"], 200) << out.dump();
  EXPECT_EQ(out["concurrent"]["wrong"], 0) << out.dump();
  EXPECT_EQ(out["group"], "blue:echo:g");
  // SERVICE_NOT_FOUND: dubbo2.js shows the body of a non-OK status as its message.
  EXPECT_NE(out["missing"].get<std::string>().find("no route for service 'com.example.Nowhere'"),
            std::string::npos)
      << out.dump();
  EXPECT_EQ((*sidecar)->Stop(SIGTERM), 0) << (*sidecar)->Stderr();
}

}  // namespace
}  // namespace ottava::test
