#include "components/pubsub/kafka/offset_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace ottava::components::pubsub::kafka {
namespace {

TEST(OffsetTrackerTest, NothingCommittableUntilTheFirstTakenOffsetIsAcked) {
  OffsetTracker tracker;
  EXPECT_FALSE(tracker.Committable());
  ASSERT_TRUE(tracker.Take(10));
  ASSERT_TRUE(tracker.Take(11));
  EXPECT_TRUE(tracker.Ack(11));
  EXPECT_FALSE(tracker.Committable()) << "11 acked but 10 is not: nothing may be committed";
  EXPECT_TRUE(tracker.Ack(10));
  EXPECT_EQ(tracker.Committable(), 12);
  EXPECT_TRUE(tracker.idle());
}

TEST(OffsetTrackerTest, OutOfOrderAcksCommitOnlyTheContiguousPrefix) {
  OffsetTracker tracker;
  for (int64_t offset = 0; offset < 6; ++offset) {
    ASSERT_TRUE(tracker.Take(offset));
  }
  tracker.Ack(0);
  EXPECT_EQ(tracker.Committable(), 1);
  tracker.Ack(2);
  tracker.Ack(3);
  tracker.Ack(5);
  EXPECT_EQ(tracker.Committable(), 1);
  EXPECT_EQ(tracker.pending(), 2u);
  tracker.Ack(1);
  EXPECT_EQ(tracker.Committable(), 4) << "1..3 acked; 4 still pending";
  tracker.Ack(4);
  EXPECT_EQ(tracker.Committable(), 6);
}

TEST(OffsetTrackerTest, ARetryingMessageHoldsTheWatermarkWhateverFollows) {
  OffsetTracker tracker;
  ASSERT_TRUE(tracker.Take(100));  // the app keeps answering RETRY for this one
  for (int64_t offset = 101; offset < 1100; ++offset) {
    ASSERT_TRUE(tracker.Take(offset));
    ASSERT_TRUE(tracker.Ack(offset));
  }
  EXPECT_FALSE(tracker.Committable());
  EXPECT_EQ(tracker.pending(), 1u);
  tracker.Ack(100);
  EXPECT_EQ(tracker.Committable(), 1100);
}

TEST(OffsetTrackerTest, GapsInOffsetsDoNotBlock) {
  OffsetTracker tracker;
  // 3 and 4 are transaction markers, 7..9 compacted away: never taken.
  for (int64_t offset : {1, 2, 5, 6, 10}) {
    ASSERT_TRUE(tracker.Take(offset));
  }
  for (int64_t offset : {10, 6, 5, 2, 1}) {
    tracker.Ack(offset);
  }
  EXPECT_EQ(tracker.Committable(), 11);
}

TEST(OffsetTrackerTest, IgnoresDuplicatesUnknownsAndRegressions) {
  OffsetTracker tracker;
  ASSERT_TRUE(tracker.Take(5));
  EXPECT_FALSE(tracker.Take(5));
  EXPECT_FALSE(tracker.Take(4));
  EXPECT_FALSE(tracker.Take(-1));
  EXPECT_FALSE(tracker.Ack(6)) << "never taken";
  EXPECT_TRUE(tracker.Ack(5));
  EXPECT_FALSE(tracker.Ack(5)) << "a second ack of the same message";
  EXPECT_EQ(tracker.Committable(), 6);
  EXPECT_FALSE(tracker.Ack(5));
  EXPECT_EQ(tracker.Committable(), 6) << "the watermark never moves back";
}

// Whatever the ack order, the committable offset is always one past a prefix of taken offsets
// that are all acked, and it ends one past the last offset.
TEST(OffsetTrackerTest, RandomAckOrdersNeverCommitPastAnUnackedOffset) {
  std::mt19937 random(42);
  for (int round = 0; round < 50; ++round) {
    OffsetTracker tracker;
    std::vector<int64_t> offsets(200);
    std::iota(offsets.begin(), offsets.end(), 1000);
    for (int64_t offset : offsets) {
      ASSERT_TRUE(tracker.Take(offset));
    }
    std::vector<int64_t> order = offsets;
    std::shuffle(order.begin(), order.end(), random);
    std::vector<bool> acked(offsets.size(), false);
    int64_t last = 0;
    for (int64_t offset : order) {
      tracker.Ack(offset);
      acked[offset - 1000] = true;
      if (auto committable = tracker.Committable()) {
        ASSERT_GE(*committable, last);
        last = *committable;
        for (int64_t below = 1000; below < *committable; ++below) {
          ASSERT_TRUE(acked[below - 1000]) << "committed past unacked offset " << below;
        }
        if (*committable - 1000 < static_cast<int64_t>(acked.size())) {
          ASSERT_FALSE(acked[*committable - 1000]) << "watermark stopped short";
        }
      }
    }
    EXPECT_EQ(tracker.Committable(), 1200);
  }
}

}  // namespace
}  // namespace ottava::components::pubsub::kafka
