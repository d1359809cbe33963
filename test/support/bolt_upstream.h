#pragma once

// A scriptable Bolt upstream for the mesh's end-to-end tests: a real server on 127.0.0.1 (port
// 0), one thread per connection, framing with the mesh's own Bolt frame layer (the interop tests
// use sofa-rpc-node; this one exists to misbehave on cue). It answers heartbeats, and every
// request by its content:
//   - "sleep:N:TEXT" answers "echo:TEXT" after N ms;
//   - "stall:N:TEXT" stops reading the connection for N ms (its thread sleeps), then answers
//     "echo:TEXT";
//   - "never:" never answers;
//   - "fail:TEXT" answers status 0x02 (server exception) with TEXT as content;
//   - anything else answers "NAME:" + content with status 0;
// responses carry the class "com.alipay.sofa.rpc.core.response.SofaResponse", the request id
// and the request's protocol version, and a header map with `upstream` = NAME.
//
// Thread safety: public methods may be called from any thread while requests are served.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace ottava::test {

class BoltUpstream {
 public:
  static absl::StatusOr<std::unique_ptr<BoltUpstream>> Start(std::string name);
  ~BoltUpstream();
  BoltUpstream(const BoltUpstream&) = delete;
  BoltUpstream& operator=(const BoltUpstream&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// Requests received (heartbeats not counted).
  uint64_t requests() const { return requests_.load(); }
  uint64_t heartbeats() const { return heartbeats_.load(); }
  /// Closes the listener and every connection.
  void Stop();

 private:
  BoltUpstream(std::string name, int fd, uint16_t port);
  void AcceptLoop();
  void Serve(int fd);

  const std::string name_;
  int listen_fd_;
  const uint16_t port_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> heartbeats_{0};
  std::mutex mu_;
  std::vector<int> connections_;
  std::vector<std::thread> threads_;
  std::thread accept_thread_;
};

}  // namespace ottava::test
