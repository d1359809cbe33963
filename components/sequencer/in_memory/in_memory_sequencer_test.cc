#include "components/sequencer/in_memory/in_memory_sequencer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <limits>
#include <set>
#include <thread>
#include <vector>

#include "components/sequencer/sequencer_test_util.h"

namespace ottava::components::sequencer {
namespace {

using ::testing::HasSubstr;

ComponentContext Context(Metadata metadata = {}) {
  ComponentContext context;
  context.kind = Kind::kSequencer;
  context.name = "ids";
  context.type = "in-memory";
  context.app_id = "app";
  context.metadata = std::move(metadata);
  return context;
}

std::unique_ptr<Sequencer> Make(Metadata metadata = {}) {
  auto sequencer = InMemorySequencerFactory().Create(Context(std::move(metadata)));
  EXPECT_TRUE(sequencer.ok()) << sequencer.status();
  EXPECT_TRUE((*sequencer)->Init().ok());
  return std::move(*sequencer);
}

absl::StatusOr<int64_t> NextId(Sequencer& sequencer, const std::string& key) {
  std::promise<absl::StatusOr<int64_t>> result;
  sequencer.GetNextId({.key = key}, [&](absl::StatusOr<int64_t> id) { result.set_value(id); });
  return result.get_future().get();
}

absl::StatusOr<Segment> GetSegment(Sequencer& sequencer, const std::string& key, int64_t size) {
  std::promise<absl::StatusOr<Segment>> result;
  sequencer.GetSegment(key, size, [&](absl::StatusOr<Segment> s) { result.set_value(s); });
  return result.get_future().get();
}

TEST(InMemorySequencerTest, CountsFromOnePerKey) {
  auto sequencer = Make();
  EXPECT_EQ(NextId(*sequencer, "a").value(), 1);
  EXPECT_EQ(NextId(*sequencer, "a").value(), 2);
  EXPECT_EQ(NextId(*sequencer, "b").value(), 1);
  EXPECT_EQ(NextId(*sequencer, "a").value(), 3);
}

TEST(InMemorySequencerTest, BiggerThanSetsAFloor) {
  auto sequencer = Make({{"biggerThan.order", "100"}, {"biggerThan.zero", "0"}});
  // Keys arrive prefixed by the API layer; the floor names the user's key.
  EXPECT_EQ(NextId(*sequencer, "sequencer||app||order").value(), 101);
  EXPECT_EQ(NextId(*sequencer, "sequencer||app||order").value(), 102);
  EXPECT_EQ(NextId(*sequencer, "order").value(), 101);
  EXPECT_EQ(NextId(*sequencer, "sequencer||app||zero").value(), 1);
  EXPECT_EQ(NextId(*sequencer, "sequencer||app||other").value(), 1);
  EXPECT_EQ(NextId(*sequencer, "sequencer||app||xorder").value(), 1);
}

TEST(InMemorySequencerTest, RejectsBadFloors) {
  for (const char* bad : {"", "abc", "12x", "-1", "99999999999999999999"}) {
    auto sequencer = InMemorySequencerFactory().Create(Context({{"biggerThan.order", bad}}));
    ASSERT_FALSE(sequencer.ok()) << bad;
    EXPECT_EQ(sequencer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(sequencer.status().message(), HasSubstr("biggerThan.order"));
    EXPECT_THAT(sequencer.status().message(), HasSubstr("sequencer/ids"));
  }
  auto no_key = InMemorySequencerFactory().Create(Context({{"biggerThan.", "5"}}));
  EXPECT_EQ(no_key.status().code(), absl::StatusCode::kInvalidArgument);
  // Other metadata is ignored.
  EXPECT_TRUE(InMemorySequencerFactory().Create(Context({{"keyPrefix", "none"}})).ok());
}

TEST(InMemorySequencerTest, ValidatesTheSegmentSizeTheRuntimeReads) {
  EXPECT_TRUE(InMemorySequencerFactory().Create(Context({{"segmentSize", "50"}})).ok());
  for (const char* bad : {"0", "-5", "x", "2000000000"}) {
    auto sequencer = InMemorySequencerFactory().Create(Context({{"segmentSize", bad}}));
    ASSERT_FALSE(sequencer.ok()) << bad;
    EXPECT_THAT(sequencer.status().message(), HasSubstr("segmentSize"));
  }
}

TEST(InMemorySequencerTest, SegmentsReserveConsecutiveIds) {
  auto sequencer = Make({{"biggerThan.floored", "50"}});
  auto segment = GetSegment(*sequencer, "k", 10);
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(segment->first, 1);
  EXPECT_EQ(segment->last, 10);
  EXPECT_EQ(NextId(*sequencer, "k").value(), 11);
  segment = GetSegment(*sequencer, "k", 1);
  EXPECT_EQ(segment->first, 12);
  EXPECT_EQ(segment->last, 12);
  segment = GetSegment(*sequencer, "floored", 5);
  EXPECT_EQ(segment->first, 51);
  EXPECT_EQ(segment->last, 55);
  EXPECT_EQ(GetSegment(*sequencer, "k", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetSegment(*sequencer, "k", -3).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(InMemorySequencerTest, ExhaustionIsAnErrorNotAWrap) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  auto sequencer = Make({{"biggerThan.k", std::to_string(max - 1)}});
  EXPECT_EQ(NextId(*sequencer, "k").value(), max);
  auto next = NextId(*sequencer, "k");
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(GetSegment(*sequencer, "k", 2).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(InMemorySequencerTest, ConcurrentCallersGetUniqueIds) {
  constexpr int kThreads = 8;
  constexpr int kIds = 1000;
  auto sequencer = Make();
  const std::set<int64_t> all = ::ottava::components::sequencer::test_support::IncreasingPerCaller(
      ::ottava::components::sequencer::test_support::IdsFromThreads(
          kThreads, kIds, [&] { return NextId(*sequencer, "k").value_or(-1); }));
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kIds));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kIds);
}

}  // namespace
}  // namespace ottava::components::sequencer
