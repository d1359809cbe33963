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

#include "test/support/process.h"

namespace ottava::test {
namespace {

using nlohmann::json;

std::string PeerDir() {
  const char* source = std::getenv("OTTAVA_SOURCE_DIR");
  return std::string(source != nullptr ? source : ".") + "/test/interop/dubbo";
}

bool PeersInstalled() {
  struct stat st {};
  return stat((PeerDir() + "/node_modules/dubbo2.js/package.json").c_str(), &st) == 0;
}

// A provider.js process (test/interop/dubbo): started on port 0, its ready line read from a pipe
// (bounded wait), stopped with SIGTERM (and reaped) when destroyed.
class NodeServer {
 public:
  static std::unique_ptr<NodeServer> Start(const std::string& name) {
    int fds[2];
    if (pipe(fds) != 0) {
      return nullptr;
    }
    const std::string script = PeerDir() + "/provider.js";
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      execl("/usr/bin/env", "env", "node", script.c_str(), "--port", "0", "--name", name.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    auto server = std::unique_ptr<NodeServer>(new NodeServer(pid, fds[0]));
    std::string line;
    if (!server->ReadLine(&line, std::chrono::seconds(20))) {
      ADD_FAILURE() << "provider.js " << name << " printed no ready line";
      return nullptr;
    }
    json ready = json::parse(line, nullptr, false);
    if (!ready.is_object() || !ready.value("ready", false)) {
      ADD_FAILURE() << "provider.js " << name << " ready line: " << line;
      return nullptr;
    }
    server->port_ = ready["port"].get<int>();
    return server;
  }

  ~NodeServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      WaitFor(
          [&] {
            int status = 0;
            return waitpid(pid_, &status, WNOHANG) != 0;
          },
          std::chrono::seconds(5));
      kill(pid_, SIGKILL);  // harmless if it already exited and was reaped: ESRCH
      waitpid(pid_, nullptr, WNOHANG);
    }
    close(out_);
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  NodeServer(pid_t pid, int out) : pid_(pid), out_(out) {}

  bool ReadLine(std::string* line, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string buffer;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) {
        continue;
      }
      char c;
      ssize_t n = read(out_, &c, 1);
      if (n <= 0) {
        return false;
      }
      if (c == '\n') {
        *line = buffer;
        return true;
      }
      buffer.push_back(c);
    }
    return false;
  }

  pid_t pid_;
  int out_;
  int port_ = 0;
};

json DubboCluster(const std::string& name, const std::string& address) {
  return {{"name", name}, {"protocol", "dubbo"}, {"hosts", {{{"address", address}}}}};
}

TEST(DubboInteropTest, Dubbo2JsCallsThroughOttava) {
  if (!PeersInstalled()) {
    GTEST_SKIP() << "test/interop/dubbo/node_modules missing: run scripts/setup.sh";
  }
  auto plain = NodeServer::Start("plain");
  auto blue = NodeServer::Start("blue");
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
