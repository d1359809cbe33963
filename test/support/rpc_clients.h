#pragma once

// Blocking Bolt and Dubbo clients on one raw TCP connection, for the mesh's end-to-end and
// upgrade tests: frames are built and parsed with the mesh's own frame layers, so a test controls
// every byte (a frame split across writes, a heartbeat, garbage). Not thread-safe: one thread
// per client.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "mesh/codec/bolt/bolt_frame.h"
#include "mesh/codec/dubbo/dubbo_frame.h"
#include "mesh/network/buffer.h"

namespace ottava::test {

/// The connection both clients share: connect, raw sends, buffered reads.
class FramedClient {
 public:
  /// Connects to 127.0.0.1:`port` (TCP_NODELAY).
  explicit FramedClient(int port);
  ~FramedClient();
  FramedClient(const FramedClient&) = delete;
  FramedClient& operator=(const FramedClient&) = delete;

  bool connected() const { return connected_; }
  /// Whether the peer closed the connection (seen by a read).
  bool closed() const { return closed_; }
  /// Sends every byte (a test failure when the socket refuses them).
  void SendRaw(const std::string& bytes);
  /// Whether the peer closed the connection within `timeout_ms` (bytes that arrive are dropped).
  bool WaitClosed(int timeout_ms = 3000);

 protected:
  /// Waits up to `deadline` for more bytes into `in_`; false on timeout or close.
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  mesh::Buffer in_;
};

class BoltClient : public FramedClient {
 public:
  /// `service`: what Send(id, content) calls.
  explicit BoltClient(int port, std::string service = "com.example.Echo:1.0")
      : FramedClient(port), service_(std::move(service)) {}
  /// The bytes of a request frame for `service` with `content`.
  static std::string RequestFrame(uint32_t id,
                                  const std::string& content,
                                  const std::string& service,
                                  int32_t timeout_ms = 3000,
                                  uint8_t type = mesh::bolt::kTypeRequest);
  void Send(uint32_t id, const std::string& content) { Send(id, content, service_); }
  void Send(uint32_t id,
            const std::string& content,
            const std::string& service,
            int32_t timeout_ms = 3000,
            uint8_t type = mesh::bolt::kTypeRequest) {
    SendRaw(RequestFrame(id, content, service, timeout_ms, type));
  }
  void SendHeartbeat(uint32_t id);
  /// The next frame, or nullopt on timeout or close.
  std::optional<mesh::bolt::Frame> Read(int timeout_ms = 5000);

 private:
  const std::string service_;
};

class DubboClient : public FramedClient {
 public:
  /// `service`: what Send(id, argument) calls.
  explicit DubboClient(int port, std::string service = "com.example.Echo")
      : FramedClient(port), service_(std::move(service)) {}
  /// A 16-byte Dubbo header.
  static std::string Header(uint8_t flag, uint64_t id, uint32_t length);
  /// The hessian2 body of a request calling `echo(argument)` on `service` (version 1.0.0).
  static std::string RequestBody(const std::string& service,
                                 const std::string& argument,
                                 const std::string& group = "");
  /// The bytes of a request frame with that body.
  static std::string RequestFrame(uint64_t id,
                                  const std::string& argument,
                                  const std::string& service,
                                  const std::string& group = "",
                                  bool two_way = true);
  void Send(uint64_t id, const std::string& argument) { Send(id, argument, service_); }
  void Send(uint64_t id,
            const std::string& argument,
            const std::string& service,
            const std::string& group = "",
            bool two_way = true) {
    SendRaw(RequestFrame(id, argument, service, group, two_way));
  }
  void SendHeartbeat(uint64_t id) { SendRaw(Header(0xe2, id, 1) + "N"); }
  /// The next frame, or nullopt on timeout or close.
  std::optional<mesh::dubbo::Frame> Read(int timeout_ms = 5000);
  /// The value of a successful response: int 1, then a string ("<...>" when not that shape).
  static std::string Value(const mesh::dubbo::Frame& frame);

 private:
  const std::string service_;
};

}  // namespace ottava::test
