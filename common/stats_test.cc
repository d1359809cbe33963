#include "common/stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ottava::stats {
namespace {

using ::testing::HasSubstr;

TEST(StatsTest, CounterSumsIncrementsFromManyThreads) {
  Counter counter;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.Inc();
      }
      counter.Inc(5);
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(counter.Value(), 8u * 10005u);
}

// Threads that claim a cell of their own (more of them than there are such cells, so some fall
// back to shared ones) update beside threads that never claim; no update is lost, and cells of
// threads that exited are claimed again by later threads.
TEST(StatsTest, ExclusiveCellsLoseNoUpdateBesideSharedOnes) {
  Counter counter;
  Gauge gauge;
  Histogram histogram({1.0, 2.0});
  constexpr int kThreads = static_cast<int>(kExclusiveShards) + 6;  // 10 of them claim
  std::atomic<int> claimed{0};
  for (int generation = 0; generation < 2; ++generation) {
    std::vector<std::thread> threads;
    std::atomic<int> ready{0};
    for (int t = 0; t < kThreads; ++t) {
      const bool claim = t % 3 != 2;
      threads.emplace_back([&, claim] {
        if (claim && ClaimExclusiveShard()) {
          claimed.fetch_add(1);
          EXPECT_TRUE(CurrentShard().exclusive);
          EXPECT_LT(CurrentShard().index, kExclusiveShards);
        }
        // Nobody exits (releasing a cell) before every thread has tried to claim.
        ready.fetch_add(1);
        while (ready.load() < kThreads) {
          std::this_thread::yield();
        }
        for (int i = 0; i < 20000; ++i) {
          counter.Inc();
          gauge.Add(3);
          gauge.Sub(1);
          histogram.Record(1.5);
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
  }
  const uint64_t updates = 2u * kThreads * 20000u;
  EXPECT_EQ(counter.Value(), updates);
  EXPECT_EQ(gauge.Value(), static_cast<int64_t>(2 * updates));
  Histogram::Snapshot snap = histogram.Take();
  EXPECT_EQ(snap.count, updates);
  EXPECT_EQ(snap.cumulative[0], 0u);
  EXPECT_EQ(snap.cumulative[1], updates);
  EXPECT_DOUBLE_EQ(snap.sum, 1.5 * static_cast<double>(updates));
  // Both generations found free cells: the first one's were released when its threads ended.
  EXPECT_EQ(claimed.load(), 2 * static_cast<int>(kExclusiveShards));
}

TEST(StatsTest, GaugeGoesUpAndDown) {
  Gauge gauge;
  gauge.Add(10);
  gauge.Sub(3);
  EXPECT_EQ(gauge.Value(), 7);
  gauge.Sub(10);
  EXPECT_EQ(gauge.Value(), -3);
  gauge.Set(42);
  EXPECT_EQ(gauge.Value(), 42);
}

// A worker adds when a request starts and another thread may subtract when it ends: the shards
// of the two threads sum to the right value, below zero included.
TEST(StatsTest, GaugeMovedFromSeveralThreadsSumsItsShards) {
  Gauge gauge;
  std::thread adder([&] {
    for (int i = 0; i < 1000; ++i) {
      gauge.Add(2);
    }
  });
  std::thread subtractor([&] {
    for (int i = 0; i < 1000; ++i) {
      gauge.Sub(3);
    }
  });
  adder.join();
  subtractor.join();
  EXPECT_EQ(gauge.Value(), -1000);
  gauge.Set(5);
  EXPECT_EQ(gauge.Value(), 5);
}

TEST(StatsTest, HistogramCountsIntoCumulativeBuckets) {
  Histogram histogram({0.1, 1, 10});
  for (double value : {0.05, 0.1, 0.5, 2.0, 20.0, 30.0}) {
    histogram.Record(value);
  }
  Histogram::Snapshot snap = histogram.Take();
  EXPECT_EQ(snap.bounds, (std::vector<double>{0.1, 1, 10}));
  // le=0.1 counts 0.05 and 0.1 (bounds are inclusive); +Inf counts everything.
  EXPECT_EQ(snap.cumulative, (std::vector<uint64_t>{2, 3, 4, 6}));
  EXPECT_EQ(snap.count, 6u);
  EXPECT_DOUBLE_EQ(snap.sum, 52.65);
}

TEST(StatsTest, StoreReturnsTheSameMetricForTheSameNameAndLabels) {
  Store store;
  Counter& a = store.CounterFor("ottava_test_total", "help", {{"k", "v"}});
  Counter& b = store.CounterFor("ottava_test_total", "help", {{"k", "v"}});
  Counter& c = store.CounterFor("ottava_test_total", "help", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  EXPECT_EQ(&store.GaugeFor("ottava_g", "help"), &store.GaugeFor("ottava_g", "help"));
}

TEST(StatsTest, RendersPrometheusText) {
  Store store;
  store.CounterFor("ottava_requests_total", "Requests served", {{"api", "state"}}).Inc(3);
  store.GaugeFor("ottava_connections", "Open connections").Set(-2);
  store.CallbackGauge("ottava_queue_depth", "Queued messages", {{"topic", "t"}},
                      [] { return 1.5; });
  Histogram& latency =
      store.HistogramFor("ottava_latency_seconds", "Latency", {{"api", "state"}}, {0.01, 0.1});
  latency.Record(0.005);
  latency.Record(0.05);
  latency.Record(1);

  const std::string text = store.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# HELP ottava_requests_total Requests served\n"
                              "# TYPE ottava_requests_total counter\n"
                              "ottava_requests_total{api=\"state\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE ottava_connections gauge\nottava_connections -2\n"));
  EXPECT_THAT(text, HasSubstr("ottava_queue_depth{topic=\"t\"} 1.5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE ottava_latency_seconds histogram\n"
                              "ottava_latency_seconds_bucket{api=\"state\",le=\"0.01\"} 1\n"
                              "ottava_latency_seconds_bucket{api=\"state\",le=\"0.1\"} 2\n"
                              "ottava_latency_seconds_bucket{api=\"state\",le=\"+Inf\"} 3\n"
                              "ottava_latency_seconds_sum{api=\"state\"} 1.055\n"
                              "ottava_latency_seconds_count{api=\"state\"} 3\n"));
}

TEST(StatsTest, FormatLabelsEscapesValues) {
  EXPECT_EQ(FormatLabels({}), "");
  EXPECT_EQ(FormatLabels({{"a", "x"}, {"b", "y"}}), "{a=\"x\",b=\"y\"}");
  EXPECT_EQ(FormatLabels({{"v", "q\"b\\n\nz"}}), "{v=\"q\\\"b\\\\n\\nz\"}");
}

TEST(StatsDeathTest, RegisteringANameWithTwoTypesIsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Store store;
  store.CounterFor("ottava_x", "help");
  EXPECT_DEATH(store.GaugeFor("ottava_x", "help"), "different types");
}

}  // namespace
}  // namespace ottava::stats
