#pragma once

// The WEAK-mode id cache of the Sequencer API (Layotto's "double-buffered segments"): WEAK ids are
// served from ranges reserved with Sequencer::GetSegment, so most calls never reach the backend.
//
// Per key: the cache holds up to two segments (the one being served and the next). When fewer than
// `threshold` ids remain (segmentSize / 5, at least 1) the next segment is fetched in the
// background. At most one fetch per key is in flight; callers that find the cache empty queue up
// behind it and are served in arrival order when it lands, or all receive its error. Ids handed
// out by one cache strictly increase: besides its own ids, the cache skips every id up to the
// highest STRONG id this sidecar handed out for the key (Observe), so a caller mixing WEAK and
// STRONG still sees increasing ids. Unused ids of a segment are lost when the sidecar stops (ids
// are unique, not dense).
//
// Support is probed once per store: the first GetSegment that answers UNIMPLEMENTED switches the
// whole store to plain GetNextId calls (the waiting callers included).
//
// Threading: any thread. One mutex per store guards its map of caches and one per key guards that
// key's buffers; callbacks and component calls run after the mutex is released. Callbacks run on
// the caller's thread (served from the cache) or on the component's thread (after a fetch).

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "components/sequencer/sequencer.h"

namespace ottava::runtime::api {

/// The WEAK caches of one sequencer store, one per key, created on first use. The sequencer must
/// outlive this object; fetches still in flight keep their cache alive by themselves.
class SegmentCaches {
 public:
  using IdCallback = std::function<void(absl::StatusOr<int64_t>)>;

  /// `segment_size` ids are reserved per fetch (at least 1).
  SegmentCaches(components::sequencer::Sequencer* sequencer, int64_t segment_size);
  ~SegmentCaches();

  /// The next WEAK id of `key` (already prefixed).
  void NextId(const std::string& key, IdCallback done);
  /// A STRONG id of `key` was handed out: later WEAK ids of `key` from this sidecar exceed it.
  void Observe(const std::string& key, int64_t id);

  /// Whether the store answered UNIMPLEMENTED to GetSegment (WEAK ids then go to GetNextId).
  bool segments_unsupported() const { return support_->load() == Support::kNo; }
  int64_t segment_size() const { return segment_size_; }
  int64_t threshold() const { return threshold_; }

  enum class Support { kUnknown, kYes, kNo };

 private:
  class Cache;

  components::sequencer::Sequencer* const sequencer_;
  const int64_t segment_size_;
  const int64_t threshold_;
  // Shared with the caches, whose fetch callbacks may outlive this object.
  const std::shared_ptr<std::atomic<Support>> support_;

  absl::Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Cache>> caches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ottava::runtime::api
