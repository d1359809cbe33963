#pragma once

// An asynchronous Redis client over hiredis, driven by a component Dispatcher (file events).
// Commands from any thread are pipelined on the connection(s): many requests in flight, replies
// matched in order.
//
// Availability: while Redis is unreachable every command fails at once with UNAVAILABLE, the
// health indicator says DOWN, and the client reconnects with exponential backoff (50 ms doubling
// to 1 s) by itself. A command that gets no reply within its deadline fails with UNAVAILABLE and
// its connection is dropped and re-dialled, so nothing waits past its deadline.
//
// Scripts: registered once, loaded with SCRIPT LOAD on every (re)connection and run with EVALSHA;
// a NOSCRIPT reply reloads the script and retries once.
//
// Threading: Command() and EvalSha() may be called from any thread. The calling thread writes the
// command to the socket itself, under the client's lock, so a request never waits for the loop to
// wake up. When nothing else is in flight on the connection, the calling thread also reads its
// own reply (waiting at most 1 ms, then the loop takes over), so a lone request costs no thread
// hand-off. Connections are dialled and dropped on the dispatcher thread.
//
// Callbacks run with no lock held and must not block. A command sent from the dispatcher thread
// has its callback run there. A command sent from another thread has its callback run on the
// thread that read the reply: the sender itself (possibly before Command() returns), another
// sender, or the dispatcher thread.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dispatcher.h"
#include "components/common/metadata.h"
#include "components/component.h"

namespace ottava::components::redis {

/// Connection settings from component metadata (names as in Dapr and Layotto).
struct ClientSettings {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string password;
  int64_t db = 0;
  std::chrono::milliseconds dial_timeout{5000};
  std::chrono::milliseconds timeout{3000};
  int64_t pool_size = 1;
  /// How long a caller reading its own reply polls the socket before it sleeps (0: never).
  std::chrono::microseconds reply_spin{100};

  /// Reads redisHost ("host:port"), redisPassword, redisDB, dialTimeout, timeout (durations such
  /// as "5s", "300ms" or plain milliseconds), poolSize and replySpinMicros. Errors name the
  /// metadata key.
  static absl::StatusOr<ClientSettings> Parse(const Metadata& metadata);
  /// As Parse, through a reader shared with the component's own keys.
  static absl::StatusOr<ClientSettings> Read(MetadataReader& reader);
};

/// A reply, copied out of hiredis so it can outlive the callback.
struct Reply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
};

/// Transport failures are statuses (UNAVAILABLE); Redis error replies are Reply::kError.
using ReplyCallback = std::function<void(absl::StatusOr<Reply>)>;

/// A Lua script known by its body; the client loads it and runs it by SHA1.
class Script {
 public:
  explicit Script(std::string body) : body_(std::move(body)) {}
  const std::string& body() const { return body_; }

 private:
  std::string body_;
};

struct PendingCommand;

class Client {
 public:
  /// `label` names the owning component in errors ("state/main"). `health` may be null.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientSettings settings,
                                                        Dispatcher* dispatcher,
                                                        HealthIndicator* health,
                                                        std::string label);
  ~Client();

  /// Registers a script before Connect(); it is loaded on every connection. Must outlive the
  /// client.
  void AddScript(const Script* script);

  /// Dials every connection and waits until one is ready (AUTH, SELECT and SCRIPT LOAD done) or
  /// dial_timeout passes. Main thread. On failure the client keeps retrying in the background.
  absl::Status Connect();

  /// Sends one command. `extra_deadline` extends the reply deadline (blocking commands).
  void Command(std::vector<std::string> args,
               ReplyCallback done,
               std::chrono::milliseconds extra_deadline = std::chrono::milliseconds(0));
  /// Runs a registered script: EVALSHA sha numkeys keys... args...
  void EvalSha(const Script& script,
               std::vector<std::string> keys,
               std::vector<std::string> args,
               ReplyCallback done);

  /// Closes every connection; pending commands fail with UNAVAILABLE. No callback runs after this
  /// returns. Main thread (or any thread but the loop).
  void Shutdown();

  const ClientSettings& settings() const;
  const std::string& label() const;

  /// An UNAVAILABLE status naming the component and the endpoint.
  absl::Status Unavailable(std::string_view why) const;

 private:
  struct Impl;
  void Submit(std::shared_ptr<PendingCommand> command);
  explicit Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  // Shared with closures posted to the loop, so a late closure never touches a freed client.
  std::shared_ptr<Impl> impl_;
};

}  // namespace ottava::components::redis
