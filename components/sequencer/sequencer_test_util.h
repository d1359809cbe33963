#pragma once

// Test helpers for sequencers and the runtime's WEAK id cache: many callers taking ids at once.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <set>
#include <thread>
#include <vector>

namespace ottava::components::sequencer::test_support {

/// Each of `threads` threads takes `per_thread` ids from `next`; returns every thread's ids in the
/// order it got them.
inline std::vector<std::vector<int64_t>> IdsFromThreads(int threads,
                                                        int per_thread,
                                                        const std::function<int64_t()>& next) {
  std::vector<std::vector<int64_t>> ids(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        ids[static_cast<size_t>(t)].push_back(next());
      }
    });
  }
  for (auto& worker : workers) {
    worker.join();
  }
  return ids;
}

/// Expects every caller's ids to strictly increase; returns all ids as a set (its size tells
/// whether any id was handed out twice).
inline std::set<int64_t> IncreasingPerCaller(const std::vector<std::vector<int64_t>>& ids) {
  std::set<int64_t> all;
  for (const auto& per_thread : ids) {
    EXPECT_TRUE(std::adjacent_find(per_thread.begin(), per_thread.end(), std::greater_equal<>()) ==
                per_thread.end())
        << "not strictly increasing for one caller";
    all.insert(per_thread.begin(), per_thread.end());
  }
  return all;
}

}  // namespace ottava::components::sequencer::test_support
