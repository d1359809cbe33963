#pragma once

// The hot-upgrade handover protocol (docs/architecture.md, "Upgrade"): the running sidecar (the
// "old" process) listens on a Unix stream socket, `<upgrade.socket_dir>/ottava-upgrade.sock`; a
// new process dials it and they exchange length-prefixed JSON messages, some carrying file
// descriptors (SCM_RIGHTS) or a binary payload. Version 3:
//
//   new → old  {"type":"hello","version":3,"pid":N}
//   old → new  {"type":"welcome","version":3,"pid":N,"generation":G,"ready_file":"..."}
//              or {"type":"refused","version":V,"error":"..."} (version skew, upgrade busy)
//   ...        the new process initialises its components...
//   new → old  {"type":"take_sockets"}
//   old → new  {"type":"sockets","names":["grpc","actuator",...]} + one fd per name
//   ...        the new process starts serving on them (not the state APIs: gRPC and Dapr HTTP
//              wait), rewrites the ready file...
//   new → old  {"type":"ready","pid":N,"adopt":{"<listener>":"bolt",...}}
//              ("adopt": the mesh listeners whose connections the new process takes over, with
//              their protocol) the old process stops accepting, waits (bounded) for the API calls
//              in flight, freezes its in-memory components (later writes fail) and exports them:
//   old → new  {"type":"state","component":"state/cache","component_type":"in-memory",
//               "format":F,"seq":I,"payload_bytes":N} + N bytes   (zero or more, one component's
//               chunks in order; "metrics"/"counters" carries the counter values)
//   old → new  {"type":"stopped","stop_us":T,"freeze_us":F,"chunks":C,"state_bytes":B}
//              the new process imports the state, then its gRPC API and Dapr HTTP accept
//   old → new  {"type":"connection","listener":"<name>","payload_bytes":N} + the socket's fd
//              + N bytes read from it and not decoded (zero or more, as the old process's Bolt
//              and Dubbo downstream connections finish the requests they already forwarded;
//              only for listeners in "adopt" with the same protocol)
//   old → new  {"type":"end","connections":C}  the old process is done (it exits)
//
// The old process keeps serving until "ready"; if the new one disconnects, times out or sends
// anything else first, the handover is aborted and nothing changed for the old process.
//
// Wire: each message is a 4-byte big-endian length and that many bytes of JSON; when the JSON
// has "payload_bytes": N, N raw bytes follow (the state records: runtime/upgrade/state.h and
// components/transferable.h). The fds of a message travel with its first byte. A state chunk
// is kept under kStateChunkBytes, so a large store streams as many bounded messages. Every call
// here is blocking with a deadline.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ottava::runtime::upgrade {

/// The version of the protocol above. A process refuses a peer that speaks another one.
inline constexpr int kHandoverVersion = 3;
/// The largest JSON part of a message.
inline constexpr uint32_t kMaxMessageBytes = 1u << 20;
/// The largest binary payload of a message.
inline constexpr uint64_t kMaxPayloadBytes = 64u << 20;
/// What a state chunk aims at (a single record larger than this makes a larger chunk).
inline constexpr size_t kStateChunkBytes = 256u << 10;
/// The most fds one message carries.
inline constexpr size_t kMaxFds = 200;

using Deadline = std::chrono::steady_clock::time_point;

/// A received message. Owns `fds` until they are taken (set to -1); closes the rest.
struct Message {
  nlohmann::json body;
  std::vector<int> fds;
  std::string payload;  // the bytes announced by "payload_bytes"

  Message() = default;
  Message(Message&& other) noexcept
      : body(std::move(other.body)), fds(std::move(other.fds)), payload(std::move(other.payload)) {
    other.fds.clear();
  }
  Message& operator=(Message&&) = delete;
  ~Message();
  std::string type() const;
};

/// "<dir>/ottava-upgrade.sock".
std::string ControlSocketPath(const std::string& socket_dir);

/// One component's data, or part of it, as it travels in a "state" message.
struct StateChunk {
  std::string component;       // "state/cache" (kind/name), or "metrics"
  std::string component_type;  // "in-memory", or "counters"
  uint32_t format = 0;         // the component's record format (Transferable::StateFormat)
  std::string payload;
};

/// Sends `body` with `fds` (not taken; the receiver gets duplicates) and, when not empty,
/// `payload` (announced as "payload_bytes").
absl::Status SendMessage(int socket,
                         const nlohmann::json& body,
                         const std::vector<int>& fds = {},
                         const std::string& payload = {});
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
