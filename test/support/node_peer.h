#pragma once

// The npm interop peers of test/interop/<peer> (installed by scripts/setup.sh): where they live,
// whether they are installed, and a long-running peer server (server.js, provider.js) started on
// port 0 that prints one JSON ready line {"ready":true,"port":N,...}.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace ottava::test {

/// $OTTAVA_SOURCE_DIR/test/interop/`peer`.
std::string InteropDir(const std::string& peer);
/// Whether `InteropDir(peer)/node_modules/<package>/package.json` exists.
bool InteropInstalled(const std::string& peer, const std::string& package);

/// A `node <script> --port 0 --name NAME` server: its ready line read from a pipe (bounded wait),
/// stopped with SIGTERM (and reaped) when destroyed.
class NodeServer {
 public:
  /// Null (and a test failure) when the script printed no ready line within 20 s.
  static std::unique_ptr<NodeServer> Start(const std::string& script, const std::string& name);
  ~NodeServer();
  NodeServer(const NodeServer&) = delete;
  NodeServer& operator=(const NodeServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  NodeServer(pid_t pid, int out) : pid_(pid), out_(out) {}
  bool ReadLine(std::string* line, std::chrono::milliseconds timeout);

  pid_t pid_;
  int out_;
  int port_ = 0;
};

}  // namespace ottava::test
