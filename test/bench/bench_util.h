#pragma once

// Small helpers shared by the benchmark tools in test/bench/: command-line flags and the ready
// file. The tools are stand-alone programs driven by run.sh, so they parse their own flags and
// depend on nothing of Ottava's but the generated protos.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ottava::bench {

/// Flags given as `--name value` or `--name=value`; everything after a bare `--` is positional.
/// Each typed getter marks its flag as read, so CheckAllRead() can reject unknown flags.
class Flags {
 public:
  /// Parses argv[1..argc). Fails on an argument that is not a flag or a flag given twice.
  static absl::StatusOr<Flags> Parse(int argc, const char* const* argv);

  /// The value of `--name`, or `default_value` when absent.
  std::string String(const std::string& name, const std::string& default_value);
  /// The value of `--name` as an integer in [min, max], or `default_value` when absent.
  absl::StatusOr<int64_t> Int(const std::string& name,
                              int64_t default_value,
                              int64_t min,
                              int64_t max);
  /// The value of `--name` as a number in [min, max], or `default_value` when absent.
  absl::StatusOr<double> Double(const std::string& name,
                                double default_value,
                                double min,
                                double max);
  /// Fails naming the first flag that no getter asked for (a typo or an unknown flag).
  absl::Status CheckAllRead() const;
  /// Arguments after `--`, in order.
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> read_;
  std::vector<std::string> positional_;
};

/// Writes `content` to `path` atomically: a temporary file in the same directory, then rename, so a
/// reader polling for `path` never sees a partial file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content);

/// The `VmRSS` line of /proc/PID/status in KiB.
absl::StatusOr<int64_t> ReadVmRssKib(int pid);

}  // namespace ottava::bench
