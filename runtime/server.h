#pragma once

// The sidecar's entry points for main(): run it (runtime/sidecar.h has the phases) or validate a
// config.

#include <string>

#include "runtime/sidecar.h"

namespace ottava::runtime {

/// Runs the sidecar until SIGTERM/SIGINT; returns the process exit code. Call from main() before
/// any other thread exists (it blocks the signals it waits for).
int RunSidecar(const RunOptions& options);

/// `ottava validate`: parses the config and builds (without initialising) its components.
int ValidateConfig(const std::string& config_path);

}  // namespace ottava::runtime
