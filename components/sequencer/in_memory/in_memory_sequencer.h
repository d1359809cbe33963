#pragma once

// The "in-memory" sequencer: one counter per key, starting at 1. Ids are strictly increasing for
// every caller (STRONG and WEAK alike). Lost on restart.
//
// Metadata: `biggerThan.<key>` = a non-negative integer floor; the first id of `<key>` is above
// it. Keys reach the store prefixed (`sequencer||<app-id>||<key>`), so a floor applies to a stored
// key that equals `<key>` or whose last `||`-separated part equals it (user keys cannot contain
// `||`). `segmentSize` (default 1000) sizes the runtime's WEAK cache; it is validated here.
//
// Threading: any thread; one mutex guards the counters; callbacks run inline after it is released.
//
// Hot upgrade (Transferable, format 1): records 'S' {key, i64 last id issued}; the new process
// continues above them. After FreezeAndExport no id is issued here (UNAVAILABLE).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "components/sequencer/floors.h"
#include "components/sequencer/sequencer.h"
#include "components/transferable.h"

namespace ottava::components::sequencer {

struct InMemorySequencerSettings {
  Floors bigger_than;

  /// Reads the metadata; errors name the metadata key. Unrelated keys are ignored (the runtime's
  /// own keys, such as keyPrefix, share the map).
  static absl::StatusOr<InMemorySequencerSettings> Parse(const Metadata& metadata);
};

class InMemorySequencer : public Sequencer, public Transferable {
 public:
  InMemorySequencer(const ComponentContext& context, InMemorySequencerSettings settings);

  absl::Status Init() override;
  void GetNextId(NextIdRequest request, std::function<void(absl::StatusOr<int64_t>)> done) override;
  void GetSegment(std::string key,
                  int64_t size,
                  std::function<void(absl::StatusOr<Segment>)> done) override;

  uint32_t StateFormat() const override { return 1; }
  std::vector<std::string> FreezeAndExport(size_t chunk_bytes) override;
  absl::Status ImportState(uint32_t format, std::string_view chunk) override;

 private:
  // Reserves `size` ids of `key`; returns the first.
  absl::StatusOr<int64_t> Reserve(const std::string& key, int64_t size);

  const std::string label_;
  HealthIndicator* const health_;
  const InMemorySequencerSettings settings_;

  absl::Mutex mu_;
  std::unordered_map<std::string, int64_t> last_issued_ ABSL_GUARDED_BY(mu_);
  bool frozen_ ABSL_GUARDED_BY(mu_) = false;  // exported to a new process: no more ids here
};

class InMemorySequencerFactory : public SequencerFactory {
 public:
  std::string_view type() const override { return "in-memory"; }
  absl::StatusOr<std::unique_ptr<Sequencer>> Create(const ComponentContext& context) const override;
};

}  // namespace ottava::components::sequencer
