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

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "components/sequencer/floors.h"
#include "components/sequencer/sequencer.h"

namespace ottava::components::sequencer {

struct InMemorySequencerSettings {
  Floors bigger_than;

  /// Reads the metadata; errors name the metadata key. Unrelated keys are ignored (the runtime's
  /// own keys, such as keyPrefix, share the map).
  static absl::StatusOr<InMemorySequencerSettings> Parse(const Metadata& metadata);
};

class InMemorySequencer : public Sequencer {
 public:
  InMemorySequencer(const ComponentContext& context, InMemorySequencerSettings settings);

  absl::Status Init() override;
  void GetNextId(NextIdRequest request, std::function<void(absl::StatusOr<int64_t>)> done) override;
  void GetSegment(std::string key,
                  int64_t size,
                  std::function<void(absl::StatusOr<Segment>)> done) override;

 private:
  // Reserves `size` ids of `key`; returns the first.
  absl::StatusOr<int64_t> Reserve(const std::string& key, int64_t size);

  const std::string label_;
  HealthIndicator* const health_;
  const InMemorySequencerSettings settings_;

  absl::Mutex mu_;
  std::unordered_map<std::string, int64_t> last_issued_ ABSL_GUARDED_BY(mu_);
};

class InMemorySequencerFactory : public SequencerFactory {
 public:
  std::string_view type() const override { return "in-memory"; }
  absl::StatusOr<std::unique_ptr<Sequencer>> Create(const ComponentContext& context) const override;
};

}  // namespace ottava::components::sequencer
