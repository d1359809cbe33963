#pragma once

// A scriptable Dubbo 2 provider for the mesh's end-to-end tests: a real server on 127.0.0.1
// (port 0), one thread per connection, framing with the mesh's own Dubbo frame layer (the interop
// test uses dubbo2.js as the client; this one exists to misbehave on cue). It answers heartbeats,
// and every request by its first argument, which must be a string:
//   - "sleep:N:TEXT" answers "echo:TEXT" after N ms;
//   - "never:" never answers;
//   - "fail:TEXT" answers status SERVICE_ERROR (70) with TEXT as a hessian2 string;
//   - anything else answers the value NAME + ":" + argument (body: int 1, then the string).
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

class DubboUpstream {
 public:
  static absl::StatusOr<std::unique_ptr<DubboUpstream>> Start(std::string name);
  ~DubboUpstream();
  DubboUpstream(const DubboUpstream&) = delete;
  DubboUpstream& operator=(const DubboUpstream&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// Requests received (heartbeats not counted), one-way ones included.
  uint64_t requests() const { return requests_.load(); }
  uint64_t heartbeats() const { return heartbeats_.load(); }
  /// Closes the listener and every connection.
  void Stop();

 private:
  DubboUpstream(std::string name, int fd, uint16_t port);
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
