#pragma once

// The sidecar process (DESIGN.md §1) as an object with phases, as Envoy's server instance:
//   Create()        config, log levels, component loop, components built (not initialised)
//   Start()         components initialised, actuator, [mesh], gRPC API, subscriptions, ready file
//   WaitForSignal() until SIGTERM/SIGINT
//   Drain()         stop taking work, finish in-flight requests up to shutdown.drain_seconds
//   Stop()          components, loops and actuator down, ready file removed
// Each subsystem is a member that stops itself when destroyed, so a failed Start() unwinds by
// destruction alone.
//
// Threading: every method is for the main thread. Create() blocks SIGTERM/SIGINT on the calling
// thread, so it must run before any other thread exists (threads inherit the mask).

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ottava::runtime {

inline constexpr int kExitOk = 0;
inline constexpr int kExitComponentFailed = 1;
inline constexpr int kExitBadConfig = 2;

struct RunOptions {
  std::string config_path;
  std::string ready_file;          // empty: none (on takeover: the old process's)
  std::string log_level_override;  // empty: the config's
  /// Directories of Dapr resource files (`--resources-path`), merged into the config.
  std::vector<std::string> resources_paths;
  /// Upgrade: take over from the sidecar listening on this control socket.
  std::string takeover_socket;
  /// Upgrade: report the outcome as one JSON line on this fd (-1: none).
  int takeover_status_fd = -1;
};

/// A part of the sidecar that serves traffic next to the gRPC API and has its own lifecycle: the
/// slot the mesh engine (mesh::Engine, DESIGN.md §8) fills. Main thread only.
class Subsystem {
 public:
  virtual ~Subsystem() = default;
  /// Binds listeners and starts serving. Called after the components are initialised and before
  /// the gRPC API starts; an error fails startup with exit code 1.
  virtual absl::Status Start() = 0;
  /// Stops accepting and finishes in-flight work until `deadline`; called with the gRPC drain.
  virtual void Drain(std::chrono::steady_clock::time_point deadline) = 0;
  /// Stops everything; called before the components shut down. Idempotent.
  virtual void Stop() = 0;
  /// Listener name -> bound "host:port", for the ready file's "listeners" object.
  virtual std::map<std::string, std::string> Listeners() const = 0;
};

class Sidecar {
 public:
  /// Loads the config, applies log levels and builds the components without initialising them.
  /// On error the message is what follows "ottava: " on stderr; the code says the exit code:
  /// InvalidArgument -> kExitBadConfig, anything else -> kExitComponentFailed (ExitCodeOf).
  static absl::StatusOr<std::unique_ptr<Sidecar>> Create(const RunOptions& options);
  /// Stops whatever is still running (see Stop()).
  ~Sidecar();

  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  /// Initialises the components, starts the actuator, the gRPC API and the subscriptions, then
  /// writes the ready file. On error (exit code kExitComponentFailed; the message follows
  /// "ottava: ") what was started is stopped again when the sidecar is destroyed.
  absl::Status Start();
  /// Blocks until SIGTERM or SIGINT arrives, or a new process took over; returns the signal
  /// number (SIGUSR2 for a takeover). SIGHUP starts an upgrade to the binary at this process's
  /// path with the same config and keeps waiting.
  int WaitForSignal();
  /// Starts a new process (`binary`, `config_path`) that takes over from this one and waits
  /// (bounded by upgrade.timeout_seconds) until it did or failed; returns its report or its
  /// error. One at a time (ALREADY_EXISTS otherwise). Any thread.
  absl::StatusOr<nlohmann::json> Upgrade(const std::string& config_path);
  /// Reports DOWN, stops the subscriptions and streams, waits for in-flight API requests up to
  /// shutdown.drain_seconds, then shuts the gRPC server down.
  void Drain();
  /// Shuts down the components and their loop, stops the actuator, removes the ready file.
  /// Idempotent.
  void Stop();

  struct State;  // every subsystem, in construction order (named by helpers in sidecar.cc)

 private:
  explicit Sidecar(std::unique_ptr<State> state);
  absl::Status StartUpgradeControl();
  /// New process: adopts the connections the old one migrates, on a thread of its own.
  void StartMigrationReceiver();
  void DrainAfterHandover();

  std::unique_ptr<State> state_;
};

/// The exit code for an error of Sidecar::Create().
int ExitCodeOf(const absl::Status& create_error);

}  // namespace ottava::runtime
