#pragma once

// A Redis pub/sub subscriber: one dedicated hiredis async connection on a component Dispatcher
// (hiredis' event hooks over the dispatcher's file events), subscribed to a fixed set of channels
// and patterns.
//
// Pub/sub is fire-and-forget: what is published while the connection is down is lost for this
// subscriber. So the owner learns about every (re)subscription through `on_subscribed`, which runs
// once every channel and pattern is confirmed, after the first connection and after every
// reconnection; that is where it re-reads whatever it must not miss. Messages published after the
// confirmation are delivered.
//
// Availability: a lost connection (EOF, reset, or no confirmation within dialTimeout) is dialled
// again with exponential backoff (50 ms doubling to 1 s). TCP keepalive (5 s idle, 3 probes 2 s
// apart) detects a peer that vanished without closing the socket. hiredis 0.14 cannot match a PING
// reply on a subscribed connection, so there is no application-level heartbeat.
//
// Threading: all connection state lives on the dispatcher thread and every callback runs there;
// callbacks must not block. Connect() and Shutdown() are for the owner's (main) thread.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dispatcher.h"
#include "components/common/redis/redis_client.h"

namespace ottava::components::redis {

class Subscriber {
 public:
  struct Callbacks {
    /// A message on a subscribed channel (or a channel matching a subscribed pattern).
    std::function<void(const std::string& channel, const std::string& message)> on_message;
    /// Every channel and pattern is confirmed (after each connection); messages published while
    /// disconnected were lost. May be empty.
    std::function<void()> on_subscribed;
    /// The connection was lost; a reconnection follows by itself. May be empty.
    std::function<void()> on_lost;
  };

  /// Uses host, port, password, dial_timeout of `settings` (pub/sub ignores the database).
  /// `label` names the owner in logs and errors ("config_store/conf").
  static absl::StatusOr<std::unique_ptr<Subscriber>> Create(ClientSettings settings,
                                                            Dispatcher* dispatcher,
                                                            std::string label,
                                                            std::vector<std::string> channels,
                                                            std::vector<std::string> patterns,
                                                            Callbacks callbacks);
  ~Subscriber();

  /// Dials and waits until every subscription is confirmed (and on_subscribed has run) or
  /// dial_timeout passes. On failure the subscriber keeps retrying in the background. Called once.
  absl::Status Connect();

  /// Whether every subscription is confirmed right now. Any thread.
  bool subscribed() const;

  /// Closes the connection and stops reconnecting; no callback runs after this returns. Any thread
  /// but the loop. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  explicit Subscriber(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  // Shared with closures posted to the loop, so a late closure never touches a freed subscriber.
  std::shared_ptr<Impl> impl_;
};

}  // namespace ottava::components::redis
