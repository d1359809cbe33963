#include "runtime/api/segment_cache.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "common/logging.h"

namespace ottava::runtime::api {

using components::sequencer::Segment;
using components::sequencer::Sequencer;

class SegmentCaches::Cache : public std::enable_shared_from_this<Cache> {
 public:
  Cache(Sequencer* sequencer,
        std::string key,
        int64_t segment_size,
        int64_t threshold,
        std::shared_ptr<std::atomic<Support>> support)
      : sequencer_(sequencer),
        key_(std::move(key)),
        segment_size_(segment_size),
        threshold_(threshold),
        support_(std::move(support)) {}

  void Next(IdCallback done) {
    std::optional<int64_t> id;
    IdCallback answer_now;
    bool fetch = false;
    {
      absl::MutexLock lock(&mu_);
      id = TakeLocked();
      if (id) {
        answer_now = std::move(done);
      } else {
        waiters_.push_back(std::move(done));
      }
      if (!fetching_ && (!id || RemainingLocked() < threshold_)) {
        fetching_ = true;
        fetch = true;
      }
    }
    if (answer_now) {
      answer_now(*id);
    }
    if (fetch) {
      Fetch();
    }
  }

  void Observe(int64_t id) {
    absl::MutexLock lock(&mu_);
    floor_ = std::max(floor_, id);
  }

 private:
  // The next id above the floor, dropping used-up (or skipped) segments on the way.
  std::optional<int64_t> TakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!segments_.empty()) {
      Segment& segment = segments_.front();
      if (floor_ >= segment.last) {
        segments_.pop_front();
        continue;
      }
      segment.first = std::max(segment.first, floor_ + 1);
      const int64_t id = segment.first;
      if (id == segment.last) {
        segments_.pop_front();
      } else {
        ++segment.first;
      }
      floor_ = id;
      return id;
    }
    return std::nullopt;
  }

  int64_t RemainingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int64_t remaining = 0;
    for (const Segment& segment : segments_) {
      if (floor_ < segment.last) {
        remaining += segment.last - std::max(segment.first, floor_ + 1) + 1;
      }
    }
    return remaining;
  }

  void Fetch() {
    sequencer_->GetSegment(key_, segment_size_,
                           [self = shared_from_this()](absl::StatusOr<Segment> segment) {
                             self->OnSegment(std::move(segment));
                           });
  }

  void OnSegment(absl::StatusOr<Segment> segment) {
    std::vector<std::pair<IdCallback, absl::StatusOr<int64_t>>> answers;
    std::deque<IdCallback> fallback;
    bool again = false;
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
      if (segment.ok() && segment->first > segment->last) {
        segment = absl::InternalError("sequencer returned an empty segment [" +
                                      std::to_string(segment->first) + ", " +
                                      std::to_string(segment->last) + "]");
      }
      if (!segment.ok() && segment.status().code() == absl::StatusCode::kUnimplemented) {
        support_->store(Support::kNo);
        fallback.swap(waiters_);
      } else if (!segment.ok()) {
        // Everyone waiting gets the error; a background prefetch that fails is retried by the
        // next caller that finds the cache low.
        for (IdCallback& waiter : waiters_) {
          answers.emplace_back(std::move(waiter), segment.status());
        }
        waiters_.clear();
      } else {
        support_->store(Support::kYes);
        segments_.push_back(*segment);
        while (!waiters_.empty()) {
          std::optional<int64_t> id = TakeLocked();
          if (!id) {
            break;
          }
          answers.emplace_back(std::move(waiters_.front()), *id);
          waiters_.pop_front();
        }
        // Still waiters (the segment lay below the floor, or was smaller than the queue), or
        // already low again: fetch once more.
        again = !waiters_.empty() || RemainingLocked() < threshold_;
        fetching_ = again;
      }
    }
    if (!segment.ok()) {
      OTTAVA_LOG(Api, debug, "sequencer segment for '{}' failed: {}", key_,
                 segment.status().ToString());
    }
    for (auto& [done, id] : answers) {
      done(std::move(id));
    }
    for (IdCallback& done : fallback) {
      sequencer_->GetNextId(components::sequencer::NextIdRequest{key_, false}, std::move(done));
    }
    if (again) {
      Fetch();
    }
  }

  static constexpr int64_t kNoFloor = std::numeric_limits<int64_t>::min();

  Sequencer* const sequencer_;
  const std::string key_;
  const int64_t segment_size_;
  const int64_t threshold_;
  const std::shared_ptr<std::atomic<Support>> support_;

  absl::Mutex mu_;
  // The segment being served first, then the prefetched one; `first` advances as ids go out.
  std::deque<Segment> segments_ ABSL_GUARDED_BY(mu_);
  // Callers that found no id, in arrival order.
  std::deque<IdCallback> waiters_ ABSL_GUARDED_BY(mu_);
  // The highest id handed out or observed; later ids exceed it.
  int64_t floor_ ABSL_GUARDED_BY(mu_) = kNoFloor;
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
};

SegmentCaches::SegmentCaches(Sequencer* sequencer, int64_t segment_size)
    : sequencer_(sequencer),
      segment_size_(std::max<int64_t>(segment_size, 1)),
      threshold_(std::max<int64_t>(segment_size_ / 5, 1)),
      support_(std::make_shared<std::atomic<Support>>(Support::kUnknown)) {}

SegmentCaches::~SegmentCaches() = default;

void SegmentCaches::NextId(const std::string& key, IdCallback done) {
  if (support_->load() == Support::kNo) {
    sequencer_->GetNextId(components::sequencer::NextIdRequest{key, false}, std::move(done));
    return;
  }
  std::shared_ptr<Cache> cache;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<Cache>& slot = caches_[key];
    if (!slot) {
      slot = std::make_shared<Cache>(sequencer_, key, segment_size_, threshold_, support_);
    }
    cache = slot;
  }
  cache->Next(std::move(done));
}

void SegmentCaches::Observe(const std::string& key, int64_t id) {
  std::shared_ptr<Cache> cache;
  {
    absl::MutexLock lock(&mu_);
    auto it = caches_.find(key);
    if (it == caches_.end()) {
      return;
    }
    cache = it->second;
  }
  cache->Observe(id);
}

}  // namespace ottava::runtime::api
