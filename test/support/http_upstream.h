#pragma once

// A scriptable HTTP/1.1 upstream for the mesh's end-to-end tests: a real server on 127.0.0.1 (port
// 0), one accept thread plus one thread per connection, with a small request parser of its own
// (keep-alive, Content-Length and chunked request bodies), so that it can also misbehave in ways an
// HTTP library will not: reset the connection on a request, or answer bytes that are not HTTP.
//
// Paths:
//   - `/bytes/N` (any method) answers N bytes of a fixed pattern, streamed in 64 KiB pieces, with
//     Content-Length, or chunked when the query has `chunked=1`; each piece is generated as it is
//     sent, so 100 MB responses cost no memory.
//   - every other path answers the echo: JSON {"upstream", "method", "path", "query", "headers"
//     (lower-cased name -> value, repeated names joined with ", "), "body_length", "body_checksum"
//     (BodyChecksum, 16 hex digits), and "body" when the body is at most kMaxStoredBody bytes}.
// Every answer carries the header `x-upstream: <name>`. Request bodies above kMaxStoredBody are
// counted and checksummed while they stream in, never stored. `Expect: 100-continue` is honoured.
//
// Thread safety: every public method may be called from any thread, while requests are served.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ottava::test {

/// One request as the upstream received it.
struct RecordedRequest {
  std::string method;
  std::string path;                                          // without the query
  std::string query;                                         // after '?', empty when none
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;          // empty when the body was larger than kMaxStoredBody
  uint64_t body_length = 0;  // always the real length
  uint64_t body_checksum = 0;

  /// The value of the first header called `name` (lower case), or "" when absent.
  std::string Header(const std::string& name) const;
};

class HttpUpstream {
 public:
  /// What the upstream does with each request.
  enum class Mode {
    kNormal,          // answer (after the delay, with the scripted status)
    kResetOnRequest,  // read the request head, then close the connection with a RST, no answer
    kGarbage,         // read the request head, answer bytes that are not HTTP, close
  };

  struct Options {
    std::string name = "upstream";  // echoed in the header x-upstream and the JSON "upstream"
    size_t max_recorded = 1000;     // Recorded() keeps the most recent requests up to this many
  };

  /// Bodies up to this size are stored (Recorded, echo "body"); larger ones only counted.
  static constexpr uint64_t kMaxStoredBody = 1 << 20;

  /// Listens on 127.0.0.1:0 and starts serving.
  static absl::StatusOr<std::unique_ptr<HttpUpstream>> Start(Options options);
  /// Stops (see Stop).
  ~HttpUpstream();
  HttpUpstream(const HttpUpstream&) = delete;
  HttpUpstream& operator=(const HttpUpstream&) = delete;

  /// "127.0.0.1:PORT"; the same after Stop and Restart.
  std::string address() const;
  uint16_t port() const { return port_; }

  /// Closes the listener and every open connection (requests in progress get no answer) and joins
  /// the threads; new connections are refused until Restart. Idempotent.
  void Stop();
  /// Listens again on the same port. Fails if running or if the port was taken meanwhile.
  absl::Status Restart();
  /// True between Start/Restart and Stop.
  bool running() const;

  /// The status of every normal answer from now on (default 200).
  void SetStatus(int status);
  /// A delay before every normal answer from now on (default 0); Stop interrupts it.
  void SetDelay(std::chrono::milliseconds delay);
  void SetMode(Mode mode);

  /// Requests whose head was received (whatever the mode or path), since Start.
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  /// Connections accepted since Start.
  uint64_t connections() const { return connections_.load(std::memory_order_relaxed); }
  /// The most recent requests, oldest first (only complete ones: head and body received).
  std::vector<RecordedRequest> Recorded() const;

  /// The checksum in the echo's "body_checksum": 64-bit FNV-1a over the bytes.
  static uint64_t BodyChecksum(const std::string& bytes, uint64_t seed = kChecksumSeed);
  static constexpr uint64_t kChecksumSeed = 14695981039346656037ULL;

 private:
  struct Connection;

  explicit HttpUpstream(Options options);
  absl::Status Listen(uint16_t port);
  void AcceptLoop(int listen_fd, int wake_fd);
  void Serve(Connection* connection);
  void Finish(Connection* connection, bool reset);
  void ReapFinished();
  bool WaitDelay(std::chrono::milliseconds delay);

  const Options options_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> connections_{0};
  std::atomic<int> status_{200};
  std::atomic<int64_t> delay_ms_{0};
  std::atomic<Mode> mode_{Mode::kNormal};

  // Start/Stop/Restart are serialized by control_mutex_ (they join threads, so mutex_ cannot be
  // held across them).
  mutable std::mutex control_mutex_;
  std::thread accept_thread_;    // guarded by control_mutex_
  int listen_fd_ = -1;           // guarded by control_mutex_
  int wake_pipe_[2] = {-1, -1};  // guarded by control_mutex_

  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;                                    // guarded by mutex_
  std::list<std::unique_ptr<Connection>> connections_list_;  // guarded by mutex_
  std::deque<RecordedRequest> recorded_;                     // guarded by mutex_
};

}  // namespace ottava::test
