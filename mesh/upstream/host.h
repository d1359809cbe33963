#pragma once

// One upstream host of a cluster. A Host is created with its cluster (main thread) and shared by
// every worker: the request path reads and updates it from many threads at once, so every mutable
// field is an atomic and nothing here takes a lock. Relaxed ordering is enough everywhere: each
// field is an independent counter or flag word, and no other memory is published through it.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/address.h"

namespace ottava::mesh {

class Host {
 public:
  /// Health flag: the active health checker saw this host fail.
  static constexpr uint32_t kFailedActiveHealthCheck = 1;
  /// Health flag: outlier detection ejected this host for a while.
  static constexpr uint32_t kEjected = 2;

  /// `weight` is the load-balancing weight (1..1000 in config).
  Host(Address address, uint32_t weight)
      : address_(std::move(address)), address_string_(address_.ToString()), weight_(weight) {}

  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const Address& address() const { return address_; }
  /// "host:port"; also the identity of the host for Maglev (stable across config updates).
  const std::string& address_string() const { return address_string_; }
  uint32_t weight() const { return weight_; }

  /// Sets, clears or tests health flags (any thread).
  void SetHealthFlag(uint32_t flag) { health_flags_.fetch_or(flag, std::memory_order_relaxed); }
  void ClearHealthFlag(uint32_t flag) { health_flags_.fetch_and(~flag, std::memory_order_relaxed); }
  bool HasHealthFlag(uint32_t flag) const {
    return (health_flags_.load(std::memory_order_relaxed) & flag) != 0;
  }
  uint32_t health_flags() const { return health_flags_.load(std::memory_order_relaxed); }
  /// No health flag is set.
  bool Healthy() const { return health_flags() == 0; }

  /// Requests in flight to this host, over all workers: the request path increments it when it
  /// sends to the host and decrements it when the exchange ends. least_request reads it. On a
  /// cache line of its own: it is written per request, the flags below are read per request.
  alignas(64) std::atomic<int64_t> active_requests{0};

  /// Outlier detection bookkeeping, updated by the request path (any worker) and read by the
  /// detector. The counters reset on a success of their kind.
  alignas(64) std::atomic<uint32_t> consecutive_5xx{0};
  std::atomic<uint32_t> consecutive_connect_failures{0};
  std::atomic<uint32_t> ejection_count{0};
  /// Monotonic time (ms) until which the host stays ejected; 0 when not ejected.
  std::atomic<int64_t> ejected_until_ms{0};

 private:
  const Address address_;
  const std::string address_string_;
  const uint32_t weight_;
  std::atomic<uint32_t> health_flags_{0};
};

using HostSharedPtr = std::shared_ptr<Host>;
using HostVector = std::vector<HostSharedPtr>;

}  // namespace ottava::mesh
