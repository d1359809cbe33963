#pragma once

// A real redis-server (Debian's) for one test: free port on 127.0.0.1, its own directory, AOF
// with appendfsync always, no RDB snapshots. Can be killed (SIGKILL) and restarted on the same
// port and data directory to test outages.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ottava::test {

class RedisServer {
 public:
  struct Options {
    bool append_only = true;
    std::vector<std::string> extra_args;  // e.g. {"--requirepass", "secret"}
  };

  /// Starts redis-server and waits until it answers PING.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start() { return Start(Options{}); }
  ~RedisServer();

  uint16_t port() const { return port_; }
  /// "127.0.0.1:<port>", what redisHost metadata takes.
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// SIGKILL and reap.
  void Kill();
  /// SIGSTOP / SIGCONT: a server that hangs without closing connections.
  void Pause();
  void Resume();
  /// Starts again on the same port and directory (AOF replayed); waits for PING.
  absl::Status Restart();

  /// Runs one command with redis-cli and returns its raw output (trailing newline removed).
  std::string Cli(const std::vector<std::string>& args) const;

 private:
  RedisServer() = default;
  absl::Status Launch();

  Options options_;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

/// A TCP port that was free a moment ago on 127.0.0.1.
uint16_t FreePort();

}  // namespace ottava::test
