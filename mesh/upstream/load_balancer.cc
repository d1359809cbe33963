#include "mesh/upstream/load_balancer.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

#include "common/assert.h"

namespace ottava::mesh {
namespace {

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;

// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
uint64_t Finalise(uint64_t h) {
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ULL;
  h ^= h >> 33;
  return h;
}

uint64_t MixWord(uint64_t word) {
  return std::rotl(word * kPrime2, 31) * kPrime1;
}

// SplitMix64: tiny state, passes BigCrush, and any seed (even 0) is fine.
class Prng {
 public:
  explicit Prng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// What every policy shares: the candidate set of one pick (health, panic mode, `avoid`) and
// weighted random choice over it. The candidate mask is recomputed per pick from the hosts'
// atomics: a cluster has tens of hosts, and a scan is cheaper than coordinating rebuilds with the
// health checker and outlier detector on other threads. The mask's storage is allocated once.
class BaseLoadBalancer : public LoadBalancer {
 public:
  BaseLoadBalancer(const HostVector& hosts, uint32_t panic_threshold_percent, uint64_t seed)
      : hosts_(hosts),
        candidate_(hosts.size(), 0),
        panic_threshold_percent_(panic_threshold_percent),
        prng_(seed) {}

 protected:
  // Fills candidate_ for one pick and returns how many hosts are candidates (0 only when there
  // are no hosts). Also sets candidate_weight_.
  size_t SelectCandidates(const Host* avoid) {
    const size_t total = hosts_.size();
    size_t count = 0;
    for (size_t i = 0; i < total; ++i) {
      const bool healthy = hosts_[i]->Healthy();
      candidate_[i] = healthy ? 1 : 0;
      count += healthy ? 1 : 0;
    }
    if (count == 0 || count * 100 < static_cast<size_t>(panic_threshold_percent_) * total) {
      std::fill(candidate_.begin(), candidate_.end(), 1);
      count = total;
    }
    if (avoid != nullptr && count > 1) {
      for (size_t i = 0; i < total; ++i) {
        if (candidate_[i] != 0 && hosts_[i].get() == avoid) {
          candidate_[i] = 0;
          --count;
          break;
        }
      }
    }
    candidate_weight_ = 0;
    for (size_t i = 0; i < total; ++i) {
      if (candidate_[i] != 0) {
        candidate_weight_ += hosts_[i]->weight();
      }
    }
    return count;
  }

  // The candidate whose cumulative weight range holds `point` (< candidate_weight_ minus the
  // weight of `skip`), skipping index `skip`. Requires a candidate other than `skip`.
  size_t CandidateAtWeight(uint64_t point, size_t skip) const {
    size_t last = 0;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (candidate_[i] == 0 || i == skip) {
        continue;
      }
      const uint64_t weight = hosts_[i]->weight();
      if (point < weight) {
        return i;
      }
      point -= weight;
      last = i;
    }
    return last;  // unreachable with a valid point; keeps the result in range
  }

  size_t WeightedRandomCandidate() {
    return CandidateAtWeight(prng_.Next() % candidate_weight_, hosts_.size());
  }

  const HostVector hosts_;
  std::vector<uint8_t> candidate_;
  uint64_t candidate_weight_ = 0;
  const uint32_t panic_threshold_percent_;
  Prng prng_;
};

// nginx's smooth weighted round robin: each pick adds every candidate's weight to its current
// weight, takes the largest, and subtracts the total from it. Weights 5:1:1 give a a b a c a a,
// spreading a heavy host's turns instead of sending them in a burst.
class RoundRobinLoadBalancer : public BaseLoadBalancer {
 public:
  RoundRobinLoadBalancer(const HostVector& hosts, uint32_t panic_threshold_percent, uint64_t seed)
      : BaseLoadBalancer(hosts, panic_threshold_percent, seed), current_(hosts.size(), 0) {}

  Host* ChooseHost(const LbContext& context) override {
    if (hosts_.empty()) {
      return nullptr;
    }
    SelectCandidates(context.avoid);
    int64_t total = 0;
    size_t best = hosts_.size();
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (candidate_[i] == 0) {
        continue;
      }
      const int64_t weight = hosts_[i]->weight();
      current_[i] += weight;
      total += weight;
      if (best == hosts_.size() || current_[i] > current_[best]) {
        best = i;
      }
    }
    current_[best] -= total;
    return hosts_[best].get();
  }

 private:
  std::vector<int64_t> current_;
};

class RandomLoadBalancer : public BaseLoadBalancer {
 public:
  using BaseLoadBalancer::BaseLoadBalancer;

  Host* ChooseHost(const LbContext& context) override {
    if (hosts_.empty()) {
      return nullptr;
    }
    SelectCandidates(context.avoid);
    return hosts_[WeightedRandomCandidate()].get();
  }
};

// Power of two choices: two distinct candidates drawn by weight, the one with fewer active
// requests per unit of weight wins, the first on a tie. Drawing by weight (rather than uniformly)
// keeps idle hosts' shares proportional to their weights.
class LeastRequestLoadBalancer : public BaseLoadBalancer {
 public:
  using BaseLoadBalancer::BaseLoadBalancer;

  Host* ChooseHost(const LbContext& context) override {
    if (hosts_.empty()) {
      return nullptr;
    }
    const size_t count = SelectCandidates(context.avoid);
    const size_t first = WeightedRandomCandidate();
    if (count == 1) {
      return hosts_[first].get();
    }
    const uint64_t rest = candidate_weight_ - hosts_[first]->weight();
    const size_t second = CandidateAtWeight(prng_.Next() % rest, first);
    const Host& a = *hosts_[first];
    const Host& b = *hosts_[second];
    // active_a / weight_a <= active_b / weight_b without division.
    const int64_t load_a = std::max<int64_t>(a.active_requests.load(std::memory_order_relaxed), 0);
    const int64_t load_b = std::max<int64_t>(b.active_requests.load(std::memory_order_relaxed), 0);
    if (load_a * static_cast<int64_t>(b.weight()) <= load_b * static_cast<int64_t>(a.weight())) {
      return hosts_[first].get();
    }
    return hosts_[second].get();
  }
};

// Consistent hashing over a shared MaglevTable built from every configured host. When the slot's
// host is not a candidate, the following slots are probed in order; the probe sequence depends
// only on the key, so keys whose host is a candidate never move when other hosts fail.
class MaglevLoadBalancer : public BaseLoadBalancer {
 public:
  MaglevLoadBalancer(const HostVector& hosts,
                     uint32_t panic_threshold_percent,
                     uint64_t seed,
                     MaglevTableConstSharedPtr table)
      : BaseLoadBalancer(hosts, panic_threshold_percent, seed), table_(std::move(table)) {
    OTTAVA_RELEASE_ASSERT(table_ != nullptr, "maglev needs a MaglevTable");
    OTTAVA_RELEASE_ASSERT(table_->size() == (hosts.empty() ? 0 : MaglevTable::kTableSize),
                          "MaglevTable built over another host set");
  }

  Host* ChooseHost(const LbContext& context) override {
    if (hosts_.empty()) {
      return nullptr;
    }
    if (!context.hash.has_value()) {
      SelectCandidates(context.avoid);
      return hosts_[WeightedRandomCandidate()].get();
    }
    const uint32_t size = table_->size();
    uint32_t slot = static_cast<uint32_t>(*context.hash % size);
    // Fast path: a healthy host is a candidate in every mode unless it is the one to avoid.
    Host* owner = hosts_[table_->HostIndexAt(slot)].get();
    if (owner->Healthy() && owner != context.avoid) {
      return owner;
    }
    SelectCandidates(context.avoid);
    for (uint32_t step = 0; step < size; ++step) {
      const uint32_t index = table_->HostIndexAt(slot);
      if (candidate_[index] != 0) {
        return hosts_[index].get();
      }
      slot = slot + 1 == size ? 0 : slot + 1;
    }
    // Only a candidate with no slot at all (a tiny weight among many heavy hosts) gets here.
    return hosts_[WeightedRandomCandidate()].get();
  }

 private:
  const MaglevTableConstSharedPtr table_;
};

}  // namespace

uint64_t HashKey(std::string_view key) {
  const char* data = key.data();
  size_t remaining = key.size();
  uint64_t h = kPrime3 ^ (static_cast<uint64_t>(key.size()) * kPrime1);
  while (remaining >= 8) {
    uint64_t word = 0;
    std::memcpy(&word, data, 8);
    h ^= MixWord(word);
    h = std::rotl(h, 27) * kPrime1 + kPrime3;
    data += 8;
    remaining -= 8;
  }
  if (remaining > 0) {
    uint64_t word = 0;
    std::memcpy(&word, data, remaining);
    h ^= MixWord(word);
    h = std::rotl(h, 27) * kPrime1 + kPrime3;
  }
  return Finalise(h);
}

std::shared_ptr<const MaglevTable> MaglevTable::Build(const HostVector& hosts) {
  std::shared_ptr<MaglevTable> table(new MaglevTable());
  if (hosts.empty()) {
    return table;
  }
  constexpr uint64_t kSize = kTableSize;
  const size_t count = hosts.size();
  // Fill in address order, so the table depends on the set of hosts, not on their config order.
  std::vector<uint32_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&hosts](uint32_t a, uint32_t b) {
    return hosts[a]->address_string() < hosts[b]->address_string();
  });
  struct Fill {
    uint64_t offset;
    uint64_t skip;
    uint64_t next = 0;    // position in the host's permutation
    uint64_t credit = 0;  // accumulated weight not yet spent on slots
  };
  std::vector<Fill> fill(count);
  uint64_t max_weight = 1;
  for (size_t i = 0; i < count; ++i) {
    const uint64_t h = HashKey(hosts[i]->address_string());
    fill[i].offset = h % kSize;
    fill[i].skip = Finalise(h ^ kPrime2) % (kSize - 1) + 1;
    max_weight = std::max<uint64_t>(max_weight, hosts[i]->weight());
  }
  constexpr uint32_t kEmpty = std::numeric_limits<uint32_t>::max();
  table->slots_.assign(kSize, kEmpty);
  uint64_t filled = 0;
  // Each round, every host earns its weight in credit and takes one slot per max_weight of
  // credit: the heaviest host takes one slot a round, the others proportionally fewer (the
  // paper's weighted variant). A permutation of a prime-sized table visits every slot, so the
  // search for a host's next free slot always ends.
  while (true) {
    for (uint32_t i : order) {
      Fill& f = fill[i];
      f.credit += hosts[i]->weight();
      while (f.credit >= max_weight) {
        f.credit -= max_weight;
        uint64_t slot = 0;
        do {
          slot = (f.offset + f.next * f.skip) % kSize;
          ++f.next;
        } while (table->slots_[slot] != kEmpty);
        table->slots_[slot] = i;
        if (++filled == kSize) {
          return table;
        }
      }
    }
  }
}

LoadBalancerPtr CreateLoadBalancer(LbPolicy policy,
                                   const HostVector& hosts,
                                   uint32_t panic_threshold_percent,
                                   uint64_t seed) {
  MaglevTableConstSharedPtr table;
  if (policy == LbPolicy::kMaglev) {
    table = MaglevTable::Build(hosts);
  }
  return CreateLoadBalancer(policy, hosts, panic_threshold_percent, seed, std::move(table));
}

LoadBalancerPtr CreateLoadBalancer(LbPolicy policy,
                                   const HostVector& hosts,
                                   uint32_t panic_threshold_percent,
                                   uint64_t seed,
                                   MaglevTableConstSharedPtr maglev_table) {
  switch (policy) {
    case LbPolicy::kRoundRobin:
      return std::make_unique<RoundRobinLoadBalancer>(hosts, panic_threshold_percent, seed);
    case LbPolicy::kRandom:
      return std::make_unique<RandomLoadBalancer>(hosts, panic_threshold_percent, seed);
    case LbPolicy::kLeastRequest:
      return std::make_unique<LeastRequestLoadBalancer>(hosts, panic_threshold_percent, seed);
    case LbPolicy::kMaglev:
      return std::make_unique<MaglevLoadBalancer>(hosts, panic_threshold_percent, seed,
                                                  std::move(maglev_table));
  }
  OTTAVA_RELEASE_ASSERT(false, "unknown LbPolicy");
  return nullptr;
}

LoadBalancerFactory::LoadBalancerFactory(LbPolicy policy,
                                         HostVector hosts,
                                         uint32_t panic_threshold_percent)
    : policy_(policy), hosts_(std::move(hosts)), panic_threshold_percent_(panic_threshold_percent) {
  if (policy_ == LbPolicy::kMaglev) {
    maglev_table_ = MaglevTable::Build(hosts_);
  }
}

LoadBalancerPtr LoadBalancerFactory::Create(uint64_t seed) const {
  return CreateLoadBalancer(policy_, hosts_, panic_threshold_percent_, seed, maglev_table_);
}

}  // namespace ottava::mesh
