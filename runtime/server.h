#pragma once

// The sidecar's entry points for main(): run it (runtime/sidecar.h has the phases) or validate a
// config.

#include <string>
#include <vector>

#include "runtime/sidecar.h"

namespace ottava::runtime {

/// Runs the sidecar until SIGTERM/SIGINT; returns the process exit code. Call from main() before
/// any other thread exists (it blocks the signals it waits for).
int RunSidecar(const RunOptions& options);

struct UpgradeOptions {
  std::string config_path;
  std::string ready_file;  // also where the control socket is looked for
  std::string socket_dir;  // overrides upgrade.socket_dir / the ready file's directory
  std::string log_level;
  int64_t timeout_seconds = 35;
  /// Dapr resource directories of the new process (`--resources-path`).
  std::vector<std::string> resources_paths;
};

/// `ottava upgrade`: starts a new sidecar that takes over from the running one (same socket
/// directory) and waits until it did (exit 0, its report on stdout) or failed (its error on
/// stderr; exit 2 for a bad config, 1 otherwise). The running one keeps serving on failure.
int UpgradeCommand(const UpgradeOptions& options);

/// `ottava validate`: parses the config (and the Dapr resource files of `resources_paths`) and
/// builds (without initialising) its components.
int ValidateConfig(const std::string& config_path,
                   const std::vector<std::string>& resources_paths = {});

}  // namespace ottava::runtime
