#include "runtime/api/segment_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/dispatcher.h"
#include "components/registry.h"
#include "components/sequencer/in_memory/in_memory_sequencer.h"
#include "components/sequencer/sequencer_test_util.h"
#include "runtime/api/sequencer_api.h"
#include "runtime/component_set.h"
#include "runtime/config/bootstrap.h"

namespace ottava::runtime::api {
namespace {

using components::sequencer::InMemorySequencer;
using components::sequencer::NextIdRequest;
using components::sequencer::Segment;
using components::sequencer::Sequencer;

constexpr auto kWait = std::chrono::seconds(5);

// The in-memory sequencer behind a fake that counts calls and can answer GetSegment inline, on a
// dispatcher thread (as a Redis reply would arrive), or only when the test releases it.
class FakeSequencer : public Sequencer {
 public:
  enum class Mode { kInline, kDispatcher, kHold, kNoSegments };

  explicit FakeSequencer(Mode mode = Mode::kInline)
      : mode_(mode), inner_(components::ComponentContext{}, {}) {
    if (mode_ == Mode::kDispatcher) {
      dispatcher_ = *Dispatcher::Create("fake-seq");
      dispatcher_->Start();
    }
  }
  ~FakeSequencer() override {
    if (dispatcher_) {
      dispatcher_->Stop();
    }
  }

  absl::Status Init() override { return absl::OkStatus(); }

  void GetNextId(NextIdRequest request,
                 std::function<void(absl::StatusOr<int64_t>)> done) override {
    next_id_calls_++;
    inner_.GetNextId(std::move(request), std::move(done));
  }

  void GetSegment(std::string key,
                  int64_t size,
                  std::function<void(absl::StatusOr<Segment>)> done) override {
    segment_calls_++;
    last_size_ = size;
    const int in_flight = ++in_flight_;
    int seen = max_in_flight_.load();
    while (in_flight > seen && !max_in_flight_.compare_exchange_weak(seen, in_flight)) {
    }
    auto finish = [this, done = std::move(done)](absl::StatusOr<Segment> segment) {
      --in_flight_;
      done(std::move(segment));
    };
    switch (mode_) {
      case Mode::kNoSegments:
        finish(absl::UnimplementedError("no segments"));
        return;
      case Mode::kInline:
        inner_.GetSegment(std::move(key), size, std::move(finish));
        return;
      case Mode::kDispatcher:
        dispatcher_->Post([this, key = std::move(key), size, finish = std::move(finish)]() mutable {
          inner_.GetSegment(std::move(key), size, std::move(finish));
        });
        return;
      case Mode::kHold: {
        std::lock_guard<std::mutex> lock(mu_);
        held_.push_back([this, key = std::move(key), size,
                         finish = std::move(finish)](absl::Status error) mutable {
          if (!error.ok()) {
            finish(error);
          } else {
            inner_.GetSegment(std::move(key), size, std::move(finish));
          }
        });
        return;
      }
    }
  }

  // kHold: answers the oldest held GetSegment (with `error` if it is not OK).
  bool Release(absl::Status error = absl::OkStatus()) {
    std::function<void(absl::Status)> next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (held_.empty()) {
        return false;
      }
      next = std::move(held_.front());
      held_.erase(held_.begin());
    }
    next(std::move(error));
    return true;
  }
  // A strong id straight from the store, bypassing any cache.
  int64_t Strong(const std::string& key) {
    int64_t id = -1;
    inner_.GetNextId({key, true}, [&](absl::StatusOr<int64_t> got) { id = got.value_or(-1); });
    return id;
  }

  int segment_calls() const { return segment_calls_.load(); }
  int next_id_calls() const { return next_id_calls_.load(); }
  int max_in_flight() const { return max_in_flight_.load(); }
  int64_t last_size() const { return last_size_.load(); }

 private:
  const Mode mode_;
  InMemorySequencer inner_;
  DispatcherPtr dispatcher_;
  std::atomic<int> segment_calls_{0};
  std::atomic<int> next_id_calls_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<int64_t> last_size_{0};
  std::mutex mu_;
  std::vector<std::function<void(absl::Status)>> held_;
};

absl::StatusOr<int64_t> Next(SegmentCaches& caches, const std::string& key) {
  auto result = std::make_shared<std::promise<absl::StatusOr<int64_t>>>();
  auto future = result->get_future();
  caches.NextId(key, [result](absl::StatusOr<int64_t> id) { result->set_value(std::move(id)); });
  if (future.wait_for(kWait) != std::future_status::ready) {
    return absl::DeadlineExceededError("no id within 5 s");
  }
  return future.get();
}

// Records callbacks that may run later, on another thread.
class Answers {
 public:
  SegmentCaches::IdCallback Callback() {
    return [this](absl::StatusOr<int64_t> id) {
      std::lock_guard<std::mutex> lock(mu_);
      answers_.push_back(std::move(id));
      cv_.notify_all();
    };
  }
  std::vector<absl::StatusOr<int64_t>> WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kWait, [&] { return answers_.size() >= n; });
    return answers_;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return answers_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<absl::StatusOr<int64_t>> answers_;
};

TEST(SegmentCacheTest, TenThousandWeakIdsTakeAboutTenFetches) {
  for (auto mode : {FakeSequencer::Mode::kInline, FakeSequencer::Mode::kDispatcher}) {
    FakeSequencer fake(mode);
    SegmentCaches caches(&fake, 1000);
    EXPECT_EQ(caches.threshold(), 200);
    int64_t last = 0;
    for (int i = 0; i < 10000; ++i) {
      absl::StatusOr<int64_t> id = Next(caches, "k");
      ASSERT_TRUE(id.ok()) << id.status();
      ASSERT_GT(*id, last);
      last = *id;
    }
    // One segment per 1000 ids, plus at most the prefetch of the next one.
    EXPECT_GE(fake.segment_calls(), 10);
    EXPECT_LE(fake.segment_calls(), 11);
    EXPECT_EQ(fake.last_size(), 1000);
    EXPECT_EQ(fake.next_id_calls(), 0);
    EXPECT_EQ(fake.max_in_flight(), 1);
    // In-memory segments are dense, so the ids are exactly 1..10000.
    EXPECT_EQ(last, 10000);
  }
}

TEST(SegmentCacheTest, KeysHaveSeparateCaches) {
  FakeSequencer fake;
  SegmentCaches caches(&fake, 10);
  EXPECT_EQ(Next(caches, "a").value(), 1);
  EXPECT_EQ(Next(caches, "b").value(), 1);
  EXPECT_EQ(Next(caches, "a").value(), 2);
  EXPECT_EQ(fake.segment_calls(), 2);
}

TEST(SegmentCacheTest, CallersWaitingForAFetchShareIt) {
  FakeSequencer fake(FakeSequencer::Mode::kHold);
  SegmentCaches caches(&fake, 100);
  Answers answers;
  for (int i = 0; i < 5; ++i) {
    caches.NextId("k", answers.Callback());
  }
  EXPECT_EQ(fake.segment_calls(), 1) << "one fetch in flight, the other callers queue behind it";
  EXPECT_EQ(answers.size(), 0u);
  ASSERT_TRUE(fake.Release());
  auto got = answers.WaitFor(5);
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(got[i].value(), i + 1) << "served in arrival order";
  }
  EXPECT_EQ(fake.segment_calls(), 1) << "95 ids left, above the threshold of 20";
}

TEST(SegmentCacheTest, PrefetchesInTheBackgroundBeforeRunningOut) {
  FakeSequencer fake(FakeSequencer::Mode::kHold);
  SegmentCaches caches(&fake, 10);  // threshold 2
  Answers answers;
  caches.NextId("k", answers.Callback());
  ASSERT_TRUE(fake.Release());
  for (int i = 0; i < 8; ++i) {
    caches.NextId("k", answers.Callback());
  }
  // 9 ids served, 1 left (< 2): the next segment is being fetched while the last id is served.
  EXPECT_EQ(answers.size(), 9u);
  EXPECT_EQ(fake.segment_calls(), 2);
  caches.NextId("k", answers.Callback());
  EXPECT_EQ(answers.size(), 10u) << "the last id of the segment needs no fetch";
  caches.NextId("k", answers.Callback());
  EXPECT_EQ(answers.size(), 10u) << "now empty: this caller waits for the prefetch";
  EXPECT_EQ(fake.segment_calls(), 2) << "and does not start another one";
  ASSERT_TRUE(fake.Release());
  auto got = answers.WaitFor(11);
  ASSERT_EQ(got.size(), 11u);
  EXPECT_EQ(got[10].value(), 11);
}

TEST(SegmentCacheTest, AFailedFetchFailsEveryWaiterThenRecovers) {
  FakeSequencer fake(FakeSequencer::Mode::kHold);
  SegmentCaches caches(&fake, 100);
  Answers answers;
  for (int i = 0; i < 3; ++i) {
    caches.NextId("k", answers.Callback());
  }
  ASSERT_TRUE(fake.Release(absl::UnavailableError("redis down")));
  auto got = answers.WaitFor(3);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& answer : got) {
    EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_FALSE(caches.segments_unsupported());
  caches.NextId("k", answers.Callback());
  EXPECT_EQ(fake.segment_calls(), 2) << "the next caller fetches again";
  ASSERT_TRUE(fake.Release());
  got = answers.WaitFor(4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3].value(), 1);
}

TEST(SegmentCacheTest, AFailedPrefetchLeavesTheCurrentSegmentServing) {
  FakeSequencer fake(FakeSequencer::Mode::kHold);
  SegmentCaches caches(&fake, 5);  // threshold 1
  Answers answers;
  caches.NextId("k", answers.Callback());
  ASSERT_TRUE(fake.Release());
  for (int i = 0; i < 4; ++i) {
    caches.NextId("k", answers.Callback());
  }
  EXPECT_EQ(answers.size(), 5u);
  EXPECT_EQ(fake.segment_calls(), 2);  // the prefetch started with 0 left
  ASSERT_TRUE(fake.Release(absl::UnavailableError("blip")));
  EXPECT_EQ(answers.size(), 5u) << "nobody was waiting for the prefetch";
  caches.NextId("k", answers.Callback());
  EXPECT_EQ(fake.segment_calls(), 3);
  ASSERT_TRUE(fake.Release());
  auto got = answers.WaitFor(6);
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[5].value(), 6);
}

TEST(SegmentCacheTest, UnimplementedSegmentsFallBackToGetNextIdOnce) {
  FakeSequencer fake(FakeSequencer::Mode::kNoSegments);
  SegmentCaches caches(&fake, 1000);
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(Next(caches, "k").value(), i);
  }
  EXPECT_EQ(Next(caches, "other").value(), 1);
  EXPECT_TRUE(caches.segments_unsupported());
  EXPECT_EQ(fake.segment_calls(), 1) << "probed once for the whole store";
  EXPECT_EQ(fake.next_id_calls(), 6);
}

TEST(SegmentCacheTest, ConcurrentCallersGetUniqueIncreasingIds) {
  constexpr int kThreads = 8;
  constexpr int kIds = 2000;
  FakeSequencer fake(FakeSequencer::Mode::kDispatcher);
  SegmentCaches caches(&fake, 1000);
  const std::set<int64_t> all = ::ottava::components::sequencer::test_support::IncreasingPerCaller(
      ::ottava::components::sequencer::test_support::IdsFromThreads(
          kThreads, kIds, [&] { return Next(caches, "k").value_or(-1); }));
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kIds));
  EXPECT_GT(*all.begin(), 0);
  EXPECT_EQ(fake.max_in_flight(), 1) << "never two fetches for one key";
  EXPECT_LE(fake.segment_calls(), kThreads * kIds / 1000 + 1);
}

TEST(SegmentCacheTest, WeakIdsStayAboveObservedStrongIds) {
  FakeSequencer fake;
  SegmentCaches caches(&fake, 1000);
  EXPECT_EQ(Next(caches, "k").value(), 1);  // segment [1, 1000]
  const int64_t strong = fake.Strong("k");  // 1001
  caches.Observe("k", strong);
  const int64_t weak = Next(caches, "k").value();
  EXPECT_GT(weak, strong) << "the rest of [1, 1000] is skipped";
  EXPECT_EQ(fake.segment_calls(), 2);
  caches.Observe("never-used", 5);  // no cache is created for it
  EXPECT_EQ(Next(caches, "never-used").value(), 1);
}

// The API core over a component set: segmentSize from the component's metadata, and WEAK and
// STRONG ids of one sidecar increase together.
class SequencerApiTest : public ::testing::Test {
 protected:
  void Start(const std::string& metadata_json) {
    auto bootstrap = config::ParseBootstrap(
        R"({"app": {"id": "app"}, "components": {"sequencer": {
              "ids": {"type": "in-memory", "metadata": )" +
        metadata_json + R"(},
              "counted": {"type": "counted", "metadata": )" +
        metadata_json + "}}}}");
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    bootstrap_ = std::move(*bootstrap);
    components::RegisterBuiltins(registry_);
    registry_.Add(std::make_unique<CountedFactory>(&counted_));
    auto set = ComponentSet::Create(bootstrap_, registry_, nullptr, nullptr);
    ASSERT_TRUE(set.ok()) << set.status();
    set_ = std::move(*set);
    ASSERT_TRUE(set_->InitAll().ok());
    api_ = std::make_unique<SequencerApi>(*set_, "app");
  }

  absl::StatusOr<int64_t> Next(const std::string& store, const std::string& key, bool strong) {
    absl::StatusOr<int64_t> result = absl::UnknownError("no answer");
    api_->GetNextId(store, key, strong, [&](absl::StatusOr<int64_t> id) { result = id; });
    return result;  // both components answer inline
  }

  class CountedFactory : public components::sequencer::SequencerFactory {
   public:
    explicit CountedFactory(FakeSequencer** out) : out_(out) {}
    std::string_view type() const override { return "counted"; }
    absl::StatusOr<std::unique_ptr<Sequencer>> Create(
        const components::ComponentContext&) const override {
      auto fake = std::make_unique<FakeSequencer>();
      *out_ = fake.get();
      return fake;
    }

   private:
    FakeSequencer** out_;
  };

  config::Bootstrap bootstrap_;
  components::Registry registry_;
  FakeSequencer* counted_ = nullptr;
  std::unique_ptr<ComponentSet> set_;
  std::unique_ptr<SequencerApi> api_;
};

TEST_F(SequencerApiTest, WeakUsesSegmentsOfTheConfiguredSize) {
  Start(R"({"segmentSize": "10"})");
  int64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    auto id = Next("counted", "orders", false);
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_GT(*id, last);
    last = *id;
  }
  EXPECT_EQ(counted_->last_size(), 10);
  EXPECT_GE(counted_->segment_calls(), 10);
  EXPECT_LE(counted_->segment_calls(), 11);
  EXPECT_EQ(counted_->next_id_calls(), 0);
  // STRONG always reaches the component.
  ASSERT_TRUE(Next("counted", "orders", true).ok());
  EXPECT_EQ(counted_->next_id_calls(), 1);
}

TEST_F(SequencerApiTest, MixedWeakAndStrongIdsIncrease) {
  Start("{}");
  for (const char* store : {"ids", "counted"}) {
    int64_t last = 0;
    for (int i = 0; i < 50; ++i) {
      auto id = Next(store, "orders", i % 2 == 0);
      ASSERT_TRUE(id.ok()) << id.status();
      EXPECT_GT(*id, last) << store << " call " << i;
      last = *id;
    }
    EXPECT_EQ(Next(store, "other", true).value(), 1);
  }
  EXPECT_EQ(Next("ids", "", false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Next("nope", "k", false).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ottava::runtime::api
