#pragma once

// Metric counters across a hot upgrade: the old process sends the value of every counter, the
// new one adds them to its own, so `/metrics` continues rather than restarts (issue 10). Gauges
// and histograms describe the process and start afresh.
//
// The counters are read from the store's Prometheus text (stats::Store keeps its cells private
// and renders every family), so nothing in common/stats changes for this. Format 1 of the
// "metrics"/"counters" state chunk: records 'K' {name, help, formatted labels `{a="x"}`, u64
// value}.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/stats.h"

namespace ottava::runtime::upgrade {

inline constexpr uint32_t kCountersFormat = 1;

struct CounterValue {
  std::string name;
  std::string help;
  std::string labels;  // as rendered: `{a="x",b="y"}`, or empty
  uint64_t value = 0;
};

/// Every counter sample of a Prometheus text exposition (families of TYPE counter).
std::vector<CounterValue> CountersFromPrometheus(std::string_view text);

/// Encodes counters as state chunks' payloads of about `chunk_bytes` each.
std::vector<std::string> EncodeCounters(const std::vector<CounterValue>& counters,
                                        size_t chunk_bytes);
/// Decodes one payload written by EncodeCounters.
absl::StatusOr<std::vector<CounterValue>> DecodeCounters(std::string_view payload);

/// `{a="x",b="y"}` back to labels (the inverse of stats::FormatLabels); false if malformed.
bool ParseLabels(std::string_view formatted, stats::Labels* labels);

/// Adds each value to the counter of that name and labels in `store` (created if needed).
/// Returns how many counters were seeded.
size_t SeedCounters(stats::Store& store, const std::vector<CounterValue>& counters);

}  // namespace ottava::runtime::upgrade
