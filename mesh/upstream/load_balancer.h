#pragma once

// Load balancers: pick the upstream host of a cluster for one request (DESIGN.md §8).
//
// Threading: Host objects are shared by all workers (atomics only). A LoadBalancer is per worker
// and used on that worker's thread only, so it keeps its own state (round-robin weights, PRNG)
// without synchronisation. The Maglev lookup table is immutable and shared by the workers'
// maglev balancers of one cluster. ChooseHost does not allocate.
//
// Health: a host is a candidate when Healthy(). If the healthy share of the cluster's hosts is
// below the panic threshold (or no host is healthy), every host is a candidate (Envoy panic mode).

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "mesh/config/mesh_config.h"
#include "mesh/upstream/host.h"

namespace ottava::mesh {

/// A fast, well-mixed 64-bit hash of `key`, stable across processes, builds and machines of the
/// same endianness (maglev keys of sidecars must agree). Not cryptographic.
uint64_t HashKey(std::string_view key);

/// Per-request input of a host choice.
struct LbContext {
  /// maglev: the hash of the request's hash_header value (HashKey); absent → random choice.
  std::optional<uint64_t> hash;
  /// The host that failed the previous try of this request: skipped when another candidate
  /// exists. Not owned.
  const Host* avoid = nullptr;
};

/// Chooses hosts of one cluster. One instance per worker; every method is called on that worker's
/// thread only.
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;

  /// Picks the host for one try of a request. Returns nullptr only when the cluster has no host.
  /// The host is owned by the cluster (HostVector); it stays valid while the caller holds the
  /// cluster snapshot this balancer was created for.
  virtual Host* ChooseHost(const LbContext& context) = 0;
};
using LoadBalancerPtr = std::unique_ptr<LoadBalancer>;

/// The Maglev lookup table (Eisenbud et al., NSDI 2016) of one host set: 65537 slots, each naming a
/// host index, filled by the paper's permutation method with weights. A host's permutation depends
/// only on its address_string(), so removing or adding a host moves few keys of the others.
/// Immutable after Build; shared by all workers' maglev balancers of the cluster.
class MaglevTable {
 public:
  static constexpr uint32_t kTableSize = 65537;  // prime, as Envoy's default

  /// Builds the table over every host of `hosts` (healthy or not). Call once per host set.
  static std::shared_ptr<const MaglevTable> Build(const HostVector& hosts);

  /// Index into the HostVector given to Build of the host owning `slot` (slot < size()).
  uint32_t HostIndexAt(uint32_t slot) const { return slots_[slot]; }
  /// kTableSize, or 0 for an empty host set.
  uint32_t size() const { return static_cast<uint32_t>(slots_.size()); }

 private:
  MaglevTable() = default;

  std::vector<uint32_t> slots_;
};
using MaglevTableConstSharedPtr = std::shared_ptr<const MaglevTable>;

/// Creates a worker's balancer over `hosts` (shared with the cluster; the vector is copied).
/// `panic_threshold_percent` is 0..100; `seed` seeds the balancer's PRNG (give each worker a
/// different one). For kMaglev this builds a MaglevTable; when several workers balance the same
/// cluster, use LoadBalancerFactory (or the overload below) so the table is built once.
LoadBalancerPtr CreateLoadBalancer(LbPolicy policy,
                                   const HostVector& hosts,
                                   uint32_t panic_threshold_percent,
                                   uint64_t seed);

/// As above; for kMaglev, `maglev_table` must have been built over this same `hosts` (it is
/// ignored for the other policies and may be null for them).
LoadBalancerPtr CreateLoadBalancer(LbPolicy policy,
                                   const HostVector& hosts,
                                   uint32_t panic_threshold_percent,
                                   uint64_t seed,
                                   MaglevTableConstSharedPtr maglev_table);

/// Builds what the balancers of one cluster snapshot share (the Maglev table) once, on the main
/// thread, then creates one balancer per worker. Immutable; Create is thread-safe.
class LoadBalancerFactory {
 public:
  LoadBalancerFactory(LbPolicy policy, HostVector hosts, uint32_t panic_threshold_percent);

  /// A new balancer for one worker; `seed` should differ per worker.
  LoadBalancerPtr Create(uint64_t seed) const;

  const HostVector& hosts() const { return hosts_; }

 private:
  const LbPolicy policy_;
  const HostVector hosts_;
  const uint32_t panic_threshold_percent_;
  MaglevTableConstSharedPtr maglev_table_;  // kMaglev only
};

}  // namespace ottava::mesh
