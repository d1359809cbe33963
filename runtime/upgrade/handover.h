#pragma once

// The hot-upgrade handover protocol (docs/architecture.md, "Upgrade"): the running sidecar (the
// "old" process) listens on a Unix stream socket, `<upgrade.socket_dir>/ottava-upgrade.sock`; a
// new process dials it and they exchange length-prefixed JSON messages, some carrying file
// descriptors (SCM_RIGHTS). Version 1:
//
//   new → old  {"type":"hello","version":1,"pid":N}
//   old → new  {"type":"welcome","version":1,"pid":N,"generation":G,"ready_file":"..."}
//              or {"type":"refused","version":V,"error":"..."} (version skew, upgrade busy)
//   ...        the new process initialises its components...
//   new → old  {"type":"take_sockets"}
//   old → new  {"type":"sockets","names":["grpc","actuator",...],"state":{...}} + one fd per name
//   ...        the new process starts serving on them, rewrites the ready file...
//   new → old  {"type":"ready","pid":N}
//   old → new  {"type":"stopped","stop_us":T,"state":{...}}  once the old process no longer
//              accepts (the new one starts accepting on the gRPC socket only then)
//
// The old process keeps serving until "ready"; if the new one disconnects, times out or sends
// anything else first, the handover is aborted and nothing changed for the old process.
//
// Wire: each message is a 4-byte big-endian length and that many bytes of JSON; the fds of a
// message travel with its first byte. Every call here is blocking with a deadline.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ottava::runtime::upgrade {

/// The version of the protocol above. A process refuses a peer that speaks another one.
inline constexpr int kHandoverVersion = 1;
/// The largest message (the state snapshot is the big one).
inline constexpr uint32_t kMaxMessageBytes = 512u << 20;
/// The most fds one message carries.
inline constexpr size_t kMaxFds = 200;

using Deadline = std::chrono::steady_clock::time_point;

/// A received message. Owns `fds` until they are taken (set to -1); closes the rest.
struct Message {
  nlohmann::json body;
  std::vector<int> fds;

  Message() = default;
  Message(Message&& other) noexcept : body(std::move(other.body)), fds(std::move(other.fds)) {
    other.fds.clear();
  }
  Message& operator=(Message&&) = delete;
  ~Message();
  std::string type() const;
};

/// "<dir>/ottava-upgrade.sock".
std::string ControlSocketPath(const std::string& socket_dir);

/// Sends `body` with `fds` (not taken; the receiver gets duplicates).
absl::Status SendMessage(int socket, const nlohmann::json& body, const std::vector<int>& fds = {});
/// Receives one message. EOF before a whole message is UNAVAILABLE ("peer closed").
absl::StatusOr<Message> ReceiveMessage(int socket, Deadline deadline);
/// Receives one message and checks its type; a "refused" message or another type is an error
/// carrying the peer's text.
absl::StatusOr<Message> Expect(int socket, const std::string& type, Deadline deadline);

/// Connects to the control socket at `path` (blocking, close-on-exec).
absl::StatusOr<int> ConnectControlSocket(const std::string& path);
/// Binds and listens on the control socket at `path`. A stale socket file (nobody answers) is
/// replaced; a live one (another sidecar) is an error.
absl::StatusOr<int> ListenControlSocket(const std::string& path);

}  // namespace ottava::runtime::upgrade
