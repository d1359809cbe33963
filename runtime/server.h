#pragma once

// The sidecar process (DESIGN.md §1): config, components, actuator, gRPC API, subscriptions,
// ready file, signals, graceful drain, exit codes.

#include <string>

namespace ottava::runtime {

inline constexpr int kExitOk = 0;
inline constexpr int kExitComponentFailed = 1;
inline constexpr int kExitBadConfig = 2;

struct RunOptions {
  std::string config_path;
  std::string ready_file;          // empty: none
  std::string log_level_override;  // empty: the config's
};

/// Runs the sidecar until SIGTERM/SIGINT; returns the process exit code. Call from main() before
/// any other thread exists (it blocks the signals it waits for).
int RunSidecar(const RunOptions& options);

/// `ottava validate`: parses the config and builds (without initialising) its components.
int ValidateConfig(const std::string& config_path);

}  // namespace ottava::runtime
