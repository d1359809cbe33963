#include "mesh/upstream/load_balancer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace ottava::mesh {
namespace {

HostVector MakeHosts(const std::vector<uint32_t>& weights) {
  HostVector hosts;
  for (size_t i = 0; i < weights.size(); ++i) {
    hosts.push_back(
        std::make_shared<Host>(Address{"10.0.0." + std::to_string(i + 1), 8080}, weights[i]));
  }
  return hosts;
}

size_t IndexOf(const HostVector& hosts, const Host* host) {
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i].get() == host) {
      return i;
    }
  }
  ADD_FAILURE() << "host not in the cluster";
  return hosts.size();
}

// Share of `picks` choices that went to each host.
std::vector<double> Shares(LoadBalancer& lb, const HostVector& hosts, int picks) {
  std::vector<int> counts(hosts.size(), 0);
  for (int i = 0; i < picks; ++i) {
    Host* host = lb.ChooseHost({});
    counts[IndexOf(hosts, host)]++;
  }
  std::vector<double> shares;
  for (int count : counts) {
    shares.push_back(static_cast<double>(count) / picks);
  }
  return shares;
}

const LbPolicy kAllPolicies[] = {LbPolicy::kRoundRobin, LbPolicy::kRandom, LbPolicy::kLeastRequest,
                                 LbPolicy::kMaglev};

TEST(LoadBalancerTest, HostBasics) {
  Host host(Address{"::1", 80}, 7);
  EXPECT_EQ(host.address_string(), "[::1]:80");
  EXPECT_EQ(host.weight(), 7u);
  EXPECT_TRUE(host.Healthy());
  host.SetHealthFlag(Host::kEjected);
  EXPECT_TRUE(host.HasHealthFlag(Host::kEjected));
  EXPECT_FALSE(host.HasHealthFlag(Host::kFailedActiveHealthCheck));
  EXPECT_FALSE(host.Healthy());
  host.SetHealthFlag(Host::kFailedActiveHealthCheck);
  host.ClearHealthFlag(Host::kEjected);
  EXPECT_FALSE(host.Healthy());
  host.ClearHealthFlag(Host::kFailedActiveHealthCheck);
  EXPECT_TRUE(host.Healthy());
}

TEST(LoadBalancerTest, EmptyClusterGivesNull) {
  for (LbPolicy policy : kAllPolicies) {
    LoadBalancerPtr lb = CreateLoadBalancer(policy, {}, 50, 1);
    EXPECT_EQ(lb->ChooseHost({}), nullptr);
    EXPECT_EQ(lb->ChooseHost({.hash = 42}), nullptr);
  }
}

TEST(LoadBalancerTest, DistributionFollowsWeights) {
  const HostVector hosts = MakeHosts({1, 2, 3});
  for (LbPolicy policy : kAllPolicies) {
    // Maglev without a hash falls back to weighted random.
    LoadBalancerPtr lb = CreateLoadBalancer(policy, hosts, 50, 1234);
    const std::vector<double> shares = Shares(*lb, hosts, 60000);
    EXPECT_NEAR(shares[0], 1.0 / 6, 0.02) << LbPolicyName(policy);
    EXPECT_NEAR(shares[1], 2.0 / 6, 0.02) << LbPolicyName(policy);
    EXPECT_NEAR(shares[2], 3.0 / 6, 0.02) << LbPolicyName(policy);
  }
}

std::string Sequence(LoadBalancer& lb, const HostVector& hosts, int picks) {
  std::string out;
  for (int i = 0; i < picks; ++i) {
    out += static_cast<char>('a' + IndexOf(hosts, lb.ChooseHost({})));
  }
  return out;
}

TEST(LoadBalancerTest, RoundRobinIsSmooth) {
  // nginx's documented example: weights 5, 1, 1.
  HostVector hosts = MakeHosts({5, 1, 1});
  LoadBalancerPtr lb = CreateLoadBalancer(LbPolicy::kRoundRobin, hosts, 50, 1);
  EXPECT_EQ(Sequence(*lb, hosts, 14), "aabacaaaabacaa");
  hosts = MakeHosts({3, 2, 1});
  lb = CreateLoadBalancer(LbPolicy::kRoundRobin, hosts, 50, 1);
  EXPECT_EQ(Sequence(*lb, hosts, 12), "abacbaabacba");
  hosts = MakeHosts({1, 1, 1});
  lb = CreateLoadBalancer(LbPolicy::kRoundRobin, hosts, 50, 1);
  EXPECT_EQ(Sequence(*lb, hosts, 6), "abcabc");
}

TEST(LoadBalancerTest, UnhealthyHostsAreSkipped) {
  for (LbPolicy policy : kAllPolicies) {
    const HostVector hosts = MakeHosts({1, 1, 1, 1});
    hosts[1]->SetHealthFlag(Host::kFailedActiveHealthCheck);
    LoadBalancerPtr lb = CreateLoadBalancer(policy, hosts, 50, 99);
    std::vector<int> counts(hosts.size(), 0);
    for (uint64_t i = 0; i < 3000; ++i) {
      LbContext context;
      if (policy == LbPolicy::kMaglev) {
        context.hash = HashKey(std::to_string(i));
      }
      counts[IndexOf(hosts, lb->ChooseHost(context))]++;
    }
    EXPECT_EQ(counts[1], 0) << LbPolicyName(policy);
    EXPECT_GT(counts[0], 700) << LbPolicyName(policy);
    EXPECT_GT(counts[2], 700) << LbPolicyName(policy);
    EXPECT_GT(counts[3], 700) << LbPolicyName(policy);
  }
}

TEST(LoadBalancerTest, PanicModeUsesAllHosts) {
  for (LbPolicy policy : kAllPolicies) {
    const HostVector hosts = MakeHosts(std::vector<uint32_t>(10, 1));
    LoadBalancerPtr lb = CreateLoadBalancer(policy, hosts, 50, 5);
    auto count_unhealthy_picks = [&] {
      int unhealthy = 0;
      for (uint64_t i = 0; i < 5000; ++i) {
        LbContext context;
        if (policy == LbPolicy::kMaglev) {
          context.hash = HashKey("key" + std::to_string(i));
        }
        unhealthy += lb->ChooseHost(context)->Healthy() ? 0 : 1;
      }
      return unhealthy;
    };
    // 5 of 10 healthy: 50 % is not below the threshold, so no panic.
    for (int i = 0; i < 5; ++i) {
      hosts[i]->SetHealthFlag(Host::kEjected);
    }
    EXPECT_EQ(count_unhealthy_picks(), 0) << LbPolicyName(policy);
    // 4 of 10 healthy: panic, every host takes traffic (about 60 % to unhealthy ones).
    hosts[5]->SetHealthFlag(Host::kEjected);
    EXPECT_NEAR(count_unhealthy_picks() / 5000.0, 0.6, 0.05) << LbPolicyName(policy);
    // No healthy host at all: still a host, even with a threshold of 0.
    LoadBalancerPtr no_panic = CreateLoadBalancer(policy, hosts, 0, 5);
    for (auto& host : hosts) {
      host->SetHealthFlag(Host::kFailedActiveHealthCheck);
    }
    EXPECT_NE(no_panic->ChooseHost({.hash = 1}), nullptr) << LbPolicyName(policy);
  }
}

TEST(LoadBalancerTest, AvoidSkipsThePreviousHostWhenPossible) {
  for (LbPolicy policy : kAllPolicies) {
    const HostVector hosts = MakeHosts({1, 1, 1});
    LoadBalancerPtr lb = CreateLoadBalancer(policy, hosts, 50, 3);
    for (uint64_t i = 0; i < 1000; ++i) {
      LbContext context{.hash = HashKey(std::to_string(i)), .avoid = hosts[i % 3].get()};
      if (policy != LbPolicy::kMaglev && i % 2 == 0) {
        context.hash.reset();
      }
      ASSERT_NE(lb->ChooseHost(context), hosts[i % 3].get()) << LbPolicyName(policy);
    }
    // The only healthy host is still chosen... unless panic mode offers the others.
    hosts[1]->SetHealthFlag(Host::kEjected);
    hosts[2]->SetHealthFlag(Host::kEjected);
    LoadBalancerPtr no_panic = CreateLoadBalancer(policy, hosts, 0, 3);
    EXPECT_EQ(no_panic->ChooseHost({.hash = 7, .avoid = hosts[0].get()}), hosts[0].get());
    // A single-host cluster returns its host even when asked to avoid it.
    const HostVector one = MakeHosts({1});
    LoadBalancerPtr single = CreateLoadBalancer(policy, one, 50, 3);
    EXPECT_EQ(single->ChooseHost({.hash = 7, .avoid = one[0].get()}), one[0].get());
  }
}

TEST(LoadBalancerTest, MaglevAvoidMovesOnlyToTheNextSlotOwner) {
  // A retry of a key goes to one deterministic other host, the same on every worker.
  const HostVector hosts = MakeHosts({1, 1, 1, 1, 1});
  auto table = MaglevTable::Build(hosts);
  LoadBalancerPtr lb1 = CreateLoadBalancer(LbPolicy::kMaglev, hosts, 50, 1, table);
  LoadBalancerPtr lb2 = CreateLoadBalancer(LbPolicy::kMaglev, hosts, 50, 2, table);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t hash = HashKey("k" + std::to_string(i));
    Host* first = lb1->ChooseHost({.hash = hash});
    Host* retry = lb1->ChooseHost({.hash = hash, .avoid = first});
    ASSERT_NE(retry, first);
    ASSERT_EQ(lb2->ChooseHost({.hash = hash, .avoid = first}), retry);
  }
}

TEST(LoadBalancerTest, LeastRequestPrefersTheLessLoadedHost) {
  const HostVector hosts = MakeHosts({1, 1});
  LoadBalancerPtr lb = CreateLoadBalancer(LbPolicy::kLeastRequest, hosts, 50, 8);
  hosts[0]->active_requests = 10;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(lb->ChooseHost({}), hosts[1].get());
  }
  // Simulated traffic: each pick stays active for a while; a slow host ends with fewer picks.
  const HostVector three = MakeHosts({1, 1, 1});
  lb = CreateLoadBalancer(LbPolicy::kLeastRequest, three, 50, 8);
  std::vector<int> counts(3, 0);
  std::vector<std::pair<Host*, int>> in_flight;  // host, completion step
  for (int step = 0; step < 30000; ++step) {
    std::erase_if(in_flight, [&](const std::pair<Host*, int>& request) {
      if (request.second > step) {
        return false;
      }
      request.first->active_requests--;
      return true;
    });
    Host* host = lb->ChooseHost({});
    const size_t index = IndexOf(three, host);
    counts[index]++;
    host->active_requests++;
    in_flight.emplace_back(host, step + (index == 0 ? 40 : 10));  // host a is 4x slower
  }
  EXPECT_LT(counts[0], counts[1] / 2);
  EXPECT_LT(counts[0], counts[2] / 2);
  // With weights, load is compared per unit of weight: 4 active on weight 4 beats 2 on weight 1.
  const HostVector weighted = MakeHosts({4, 1});
  lb = CreateLoadBalancer(LbPolicy::kLeastRequest, weighted, 50, 8);
  weighted[0]->active_requests = 4;
  weighted[1]->active_requests = 2;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(lb->ChooseHost({}), weighted[0].get());
  }
}

// Host index (in `hosts`) chosen for each of `keys` keys.
std::vector<std::string> MaglevAssignments(const HostVector& hosts, int keys) {
  LoadBalancerPtr lb = CreateLoadBalancer(LbPolicy::kMaglev, hosts, 0, 1);
  std::vector<std::string> out;
  out.reserve(keys);
  for (int i = 0; i < keys; ++i) {
    out.push_back(lb->ChooseHost({.hash = HashKey("user-" + std::to_string(i))})->address_string());
  }
  return out;
}

TEST(MaglevTest, SameKeySameHostAcrossBalancers) {
  const HostVector hosts = MakeHosts({1, 1, 1, 1, 1});
  LoadBalancerFactory factory(LbPolicy::kMaglev, hosts, 50);
  LoadBalancerPtr a = factory.Create(1);
  LoadBalancerPtr b = factory.Create(2);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t hash = HashKey("key-" + std::to_string(i));
    Host* host = a->ChooseHost({.hash = hash});
    ASSERT_EQ(a->ChooseHost({.hash = hash}), host);
    ASSERT_EQ(b->ChooseHost({.hash = hash}), host);
  }
  // The table depends on the host set, not on the config order.
  HostVector reversed(hosts.rbegin(), hosts.rend());
  EXPECT_EQ(MaglevAssignments(hosts, 2000), MaglevAssignments(reversed, 2000));
}

TEST(MaglevTest, BalancedTableAndKeys) {
  const HostVector hosts = MakeHosts({1, 1, 1, 1, 1});
  auto table = MaglevTable::Build(hosts);
  ASSERT_EQ(table->size(), MaglevTable::kTableSize);
  std::vector<int> slots(hosts.size(), 0);
  for (uint32_t slot = 0; slot < table->size(); ++slot) {
    slots[table->HostIndexAt(slot)]++;
  }
  for (int count : slots) {
    EXPECT_NEAR(count, MaglevTable::kTableSize / 5.0, 2);  // the fill is round robin
  }
  std::map<std::string, int> keys;
  for (const std::string& host : MaglevAssignments(hosts, 100000)) {
    keys[host]++;
  }
  ASSERT_EQ(keys.size(), 5u);
  for (const auto& [host, count] : keys) {
    EXPECT_NEAR(count / 100000.0, 0.2, 0.01) << host;
  }
}

TEST(MaglevTest, WeightedTable) {
  const HostVector hosts = MakeHosts({1, 2, 3});
  auto table = MaglevTable::Build(hosts);
  std::vector<int> slots(hosts.size(), 0);
  for (uint32_t slot = 0; slot < table->size(); ++slot) {
    slots[table->HostIndexAt(slot)]++;
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    EXPECT_NEAR(slots[i] / static_cast<double>(table->size()), (i + 1) / 6.0, 0.001);
  }
}

TEST(MaglevTest, OnlyTheKeysOfAnUnhealthyHostMove) {
  const HostVector hosts = MakeHosts({1, 1, 1, 1, 1});
  constexpr int kKeys = 100000;
  const std::vector<std::string> before = MaglevAssignments(hosts, kKeys);
  hosts[2]->SetHealthFlag(Host::kFailedActiveHealthCheck);
  const std::vector<std::string> after = MaglevAssignments(hosts, kKeys);
  const std::string& down = hosts[2]->address_string();
  int moved_healthy = 0;
  int moved_down = 0;
  int down_keys = 0;
  std::map<std::string, int> receivers;
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] == down) {
      ++down_keys;
      moved_down += after[i] != down ? 1 : 0;
      receivers[after[i]]++;
    } else {
      moved_healthy += after[i] != before[i] ? 1 : 0;
    }
  }
  EXPECT_EQ(moved_healthy, 0);
  EXPECT_EQ(moved_down, down_keys);
  // The orphaned keys spread over the remaining hosts rather than piling onto one.
  ASSERT_EQ(receivers.size(), 4u);
  for (const auto& [host, count] : receivers) {
    EXPECT_NEAR(count / static_cast<double>(down_keys), 0.25, 0.05) << host;
  }
  std::printf(
      "maglev, host unhealthy: %d of %d keys of healthy hosts moved; %d of %d keys of the "
      "unhealthy host moved\n",
      moved_healthy, kKeys - down_keys, moved_down, down_keys);
}

TEST(MaglevTest, FewOtherKeysMoveWhenAHostIsRemoved) {
  const HostVector hosts = MakeHosts({1, 1, 1, 1, 1});
  constexpr int kKeys = 100000;
  const std::vector<std::string> before = MaglevAssignments(hosts, kKeys);
  HostVector remaining = hosts;
  const std::string removed = remaining[2]->address_string();
  remaining.erase(remaining.begin() + 2);  // the table is rebuilt without it
  const std::vector<std::string> after = MaglevAssignments(remaining, kKeys);
  int others = 0;
  int moved = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] != removed) {
      ++others;
      moved += after[i] != before[i] ? 1 : 0;
    }
  }
  const double fraction = static_cast<double>(moved) / others;
  std::printf("maglev, host removed: %d of %d keys of the other hosts moved (%.2f %%)\n", moved,
              others, 100 * fraction);
  EXPECT_LT(fraction, 0.05);
}

TEST(HashKeyTest, StableAndSpread) {
  EXPECT_EQ(HashKey("abc"), HashKey(std::string("abc")));
  EXPECT_NE(HashKey("abc"), HashKey("abd"));
  EXPECT_NE(HashKey(""), HashKey(std::string(1, '\0')));
  EXPECT_NE(HashKey("12345678"), HashKey("123456789"));
  // Bucketing sequential keys (the common case: user ids) is balanced.
  std::vector<int> buckets(16, 0);
  for (int i = 0; i < 160000; ++i) {
    buckets[HashKey(std::to_string(i)) % 16]++;
  }
  for (int count : buckets) {
    EXPECT_NEAR(count, 10000, 400);
  }
}

}  // namespace
}  // namespace ottava::mesh
