#pragma once

// The offsets of one assigned partition that the consumer has taken from librdkafka and the app has
// not yet acknowledged, and the offset that may be committed: the contiguous watermark.
//
// Kafka commits one offset per partition meaning "everything below was processed", so with
// parallel delivery, out-of-order acks and RETRYing messages the committable offset is one past the
// highest offset below which every taken message is acked. A message that is still being retried
// (not acked) holds the watermark back however many later messages were acked.
//
// Offsets are taken in increasing order but need not be consecutive: transaction markers and
// compaction leave gaps, which do not block the watermark.
//
// Not thread-safe: owned by the component's loop thread.

#include <cstdint>
#include <map>
#include <optional>

namespace ottava::components::pubsub::kafka {

class OffsetTracker {
 public:
  /// Records that `offset` was taken (handed out or queued for hand-out). Offsets must increase
  /// from call to call; a repeated or lower one is ignored and false is returned.
  bool Take(int64_t offset);
  /// Records the app's ack of a taken offset. Unknown or already acked offsets are ignored (false).
  bool Ack(int64_t offset);

  /// The offset to commit (the next one to read): one past the contiguous acked prefix, or nullopt
  /// when nothing was acked since tracking began. Never decreases.
  std::optional<int64_t> Committable() const { return committable_; }
  /// Taken and not yet acked.
  size_t pending() const { return pending_count_; }
  /// Whether nothing taken is waiting for an ack.
  bool idle() const { return pending_count_ == 0; }

 private:
  // Taken offsets above the watermark: offset -> acked.
  std::map<int64_t, bool> taken_;
  std::optional<int64_t> committable_;
  std::optional<int64_t> last_taken_;
  size_t pending_count_ = 0;
};

}  // namespace ottava::components::pubsub::kafka
