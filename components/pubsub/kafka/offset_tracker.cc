#include "components/pubsub/kafka/offset_tracker.h"

namespace ottava::components::pubsub::kafka {

bool OffsetTracker::Take(int64_t offset) {
  if (offset < 0 || (last_taken_ && offset <= *last_taken_)) {
    return false;
  }
  last_taken_ = offset;
  taken_.emplace(offset, false);
  ++pending_count_;
  return true;
}

bool OffsetTracker::Ack(int64_t offset) {
  auto it = taken_.find(offset);
  if (it == taken_.end() || it->second) {
    return false;
  }
  it->second = true;
  --pending_count_;
  // Advance over the acked prefix.
  while (!taken_.empty() && taken_.begin()->second) {
    committable_ = taken_.begin()->first + 1;
    taken_.erase(taken_.begin());
  }
  return true;
}

}  // namespace ottava::components::pubsub::kafka
