#pragma once

// Launches real processes for tests: the `ottava` binary with a config (port 0 + ready file),
// `ottavactl`, anything else. Every wait is bounded; destructors kill what is still running.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ottava::test {

/// Directory of the built binaries (OTTAVA_BIN_DIR, set by ctest).
std::string BinDir();
/// A fresh temporary directory for one test.
std::string MakeTempDir();

struct RunResult {
  int exit_code = -1;  // -N when killed by signal N
  std::string out;
  std::string err;
};

/// Runs `argv` to completion (killed after `timeout`) and captures its output. A bare program
/// name is looked up on PATH.
RunResult RunProcess(const std::vector<std::string>& argv,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// A running sidecar.
class Sidecar {
 public:
  /// Writes `config` to a temp file and starts `ottava --config F --ready-file R`; waits for
  /// the ready file. Fails with the captured stderr if the process exits first. `extra_args` go
  /// after the others (e.g. {"--resources-path", DIR}).
  static absl::StatusOr<std::unique_ptr<Sidecar>> Start(
      const nlohmann::json& config,
      std::chrono::milliseconds timeout = std::chrono::seconds(15),
      const std::vector<std::string>& extra_args = {});
  ~Sidecar();

  const std::string& grpc_address() const { return grpc_; }
  const std::string& actuator_address() const { return actuator_; }
  /// Dapr's HTTP API ("dapr_http" in the ready file).
  const std::string& dapr_http_address() const { return dapr_http_; }
  pid_t pid() const { return pid_; }
  const std::string& ready_file() const { return ready_file_; }

  /// Sends `signal` and waits for exit; returns the exit code (-N if killed by signal N, -1000 on
  /// timeout, after which the process is killed).
  int Stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  /// Everything the process wrote to stderr so far.
  std::string Stderr() const;

 private:
  Sidecar() = default;

  pid_t pid_ = -1;
  std::string dir_;
  std::string ready_file_;
  std::string stderr_file_;
  std::string grpc_;
  std::string actuator_;
  std::string dapr_http_;
};

/// A JSON config with every in-memory component and ports 0 (the quickstart names).
nlohmann::json InMemoryConfig(const std::string& app_id = "e2e");

/// A `mesh` section: 2 workers, one HTTP/1.1 listener "http" whose router "r" (with the
/// `flow_control` filter) sends everything to cluster "c" at `upstream` ("host:port"), with
/// limits high enough that only flow control refuses.
nlohmann::json FlowControlledMesh(const std::string& upstream);

/// The value of the sample `series` (metric name and labels exactly as rendered, e.g.
/// `ottava_x_total{a="b"}`) in a Prometheus text page; nullopt when absent.
std::optional<double> MetricSample(const std::string& page, const std::string& series);

/// Waits until `ready` returns true or the timeout passes; polls every 10 ms.
bool WaitFor(const std::function<bool()>& ready,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace ottava::test
