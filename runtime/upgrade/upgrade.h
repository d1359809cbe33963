#pragma once

// Hot upgrade, both ends (protocol: runtime/upgrade/handover.h; the message sequence and what
// each process does: docs/architecture.md, "Upgrade").
//
//   - UpgradeServer: in the running sidecar, a thread that answers new processes on the control
//     socket and hands them the listening sockets and the in-memory state (HandoverSource).
//   - TakeoverClient: in a new process started with --takeover, the other end.
//   - SpawnNewProcess: what `ottava upgrade`, SIGHUP, POST /actuator/upgrade do: start the new
//     process and wait (bounded) for it to report that it took over, or why it failed.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/stats.h"
#include "runtime/upgrade/handover.h"

namespace ottava::runtime::upgrade {

/// A downstream connection on its way to the new process (handover.h, "connection").
struct MigratingConnection {
  std::string listener;
  int fd = -1;
  std::string unread;  // read from the socket, not decoded
};

/// The old process's connections ready to migrate: pushed by mesh workers as each finishes its
/// requests in flight, sent by the upgrade thread. Thread-safe.
class MigrationQueue {
 public:
  MigrationQueue() = default;
  MigrationQueue(const MigrationQueue&) = delete;
  MigrationQueue& operator=(const MigrationQueue&) = delete;
  /// Closes the fds of what was never sent.
  ~MigrationQueue();

  /// Queues `connection` (the queue owns its fd from now on). After Close() the fd is closed
  /// instead and false returned: the process is stopping, the connection ends as at a drain's end.
  bool Push(MigratingConnection connection);
  /// The next connection; waits until there is one, or returns nothing once closed and empty.
  std::optional<MigratingConnection> Pop();
  /// No more pushes; Pop() returns what is queued, then nothing.
  void Close();

 private:
  absl::Mutex mu_;
  std::deque<MigratingConnection> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

/// What a running sidecar gives a new process. Called on the upgrade thread, one handover at a
/// time.
class HandoverSource {
 public:
  virtual ~HandoverSource() = default;
  /// Every listening socket by name ("grpc", "actuator", "dapr_http", "mesh/<listener>"); the
  /// fds stay owned by the source.
  virtual std::vector<std::pair<std::string, int>> ListeningSockets() = 0;
  /// Stops accepting on every socket (the new process accepts from the same sockets from now
  /// on) and sends gRPC clients GOAWAY. Must be quick: the switch time is measured over it.
  virtual void StopAccepting() = 0;
  /// Waits, bounded, for the API calls in flight, then freezes the in-memory components (every
  /// later write fails, so no acknowledged write is left out) and returns their data and the
  /// metric counters, in chunks.
  virtual std::vector<StateChunk> ExportState() = 0;
  /// The new process `pid` serves: drain and exit. The mesh connections of the listeners in
  /// `adopt` (name → protocol, what the new process adopts) migrate through `queue` instead of
  /// draining; the upgrade thread sends what arrives there until the queue is closed. Must not
  /// block (posts to the main thread).
  virtual void HandedOver(pid_t pid,
                          const std::map<std::string, std::string>& adopt,
                          std::shared_ptr<MigrationQueue> queue) = 0;
};

struct ServerSettings {
  std::string socket_path;
  std::chrono::seconds timeout{30};  // for the new process to take the sockets and be ready
  int64_t generation = 1;
  std::string ready_file;  // told to the new process, which rewrites it
};

class UpgradeServer {
 public:
  /// Serves on the listening control socket `control_fd` (owned). Nothing runs until Start().
  UpgradeServer(int control_fd,
                ServerSettings settings,
                HandoverSource& source,
                stats::Store& stats);
  /// Stops (see Stop()) and closes the control socket.
  ~UpgradeServer();
  UpgradeServer(const UpgradeServer&) = delete;
  UpgradeServer& operator=(const UpgradeServer&) = delete;

  absl::Status Start();
  /// Ends the thread (aborting a handover in progress). After a handover, the connections already
  /// queued for migration are sent first (bounded by kMigrationSendTimeout each), then "end".
  /// Idempotent.
  void Stop();
  /// Whether a new process took over (then the socket file belongs to it: not to be removed).
  bool handed_over() const { return handed_over_.load(); }
  const std::string& socket_path() const { return settings_.socket_path; }

 private:
  void Run();
  void Handle(int connection);
  void SendMigrations(int connection, pid_t pid);

  const int control_fd_;
  const ServerSettings settings_;
  HandoverSource& source_;
  stats::Counter& completed_;
  stats::Counter& aborted_;
  stats::Counter& refused_;
  stats::Counter& migrated_;
  stats::Counter& migration_errors_;
  std::shared_ptr<MigrationQueue> migrations_ = std::make_shared<MigrationQueue>();
  int wake_fd_ = -1;
  std::atomic<int> connection_{-1};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> handed_over_{false};
  std::thread thread_;
};

/// The new process's end.
class TakeoverClient {
 public:
  /// Dials the control socket and says hello. A version mismatch or a busy old process is an
  /// error carrying the old process's explanation.
  static absl::StatusOr<std::unique_ptr<TakeoverClient>> Connect(const std::string& socket_path);
  ~TakeoverClient();

  /// What the old process said in its welcome.
  int64_t old_generation() const { return generation_; }
  pid_t old_pid() const { return old_pid_; }
  const std::string& old_ready_file() const { return ready_file_; }

  /// Asks for the listening sockets. Returns name -> fd (owned by the caller from now on).
  absl::StatusOr<std::map<std::string, int>> TakeSockets(std::chrono::seconds timeout);
  /// Tells the old process that this one serves and adopts the connections of the listeners in
  /// `adopt` (name → protocol); calls `on_chunk` for each chunk of its in-memory state as it
  /// arrives (an error there is logged and counted by the caller, the handover goes on), and
  /// returns the "stopped" message once the old process stopped accepting and sent everything.
  /// `timeout` bounds the whole exchange.
  absl::StatusOr<nlohmann::json> Ready(std::chrono::seconds timeout,
                                       const std::function<void(StateChunk&&)>& on_chunk,
                                       const std::map<std::string, std::string>& adopt = {});
  /// After Ready: calls `on_connection` (owning the fd) for each connection the old process
  /// migrates, until it says "end" (returns how many came), closes, or Cancel() is called.
  absl::StatusOr<int64_t> ReceiveConnections(
      const std::function<void(MigratingConnection&&)>& on_connection);
  /// Makes a ReceiveConnections on another thread return. Any thread.
  void Cancel();

 private:
  explicit TakeoverClient(int fd) : fd_(fd) {}
  int fd_;
  int64_t generation_ = 0;
  pid_t old_pid_ = 0;
  std::string ready_file_;
};

/// How a spawned new process ended its takeover.
struct SpawnResult {
  pid_t pid = -1;
  nlohmann::json report;  // what it reported: {"ok": true, "generation": G, ...}
};

/// Starts `argv` (argv[0] is the binary) with `--takeover-status-fd 3` appended (a pipe), in a
/// new session when `detach`, with an empty signal mask. Waits until the process reports on the
/// pipe, exits, or `timeout` passes (then it is killed). Errors carry the process's report, or
/// its exit code / signal; the code is FAILED_PRECONDITION for a report with
/// "exit_code": 2 (bad config) and UNAVAILABLE otherwise.
absl::StatusOr<SpawnResult> SpawnNewProcess(std::vector<std::string> argv,
                                            std::chrono::seconds timeout,
                                            bool detach,
                                            const std::function<void(pid_t)>& on_started = {});

/// How long the old process tries to send one migrating connection before it gives up on it.
inline constexpr std::chrono::seconds kMigrationSendTimeout{5};

/// The fd number the spawned process finds its status pipe on.
inline constexpr int kStatusFd = 3;

/// Writes one JSON line to the status fd and closes it (new process side; -1: nothing).
void ReportStatus(int fd, const nlohmann::json& report);

}  // namespace ottava::runtime::upgrade
