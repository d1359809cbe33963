#pragma once

// Per-worker, per-host upstream connection pools (as Envoy's ConnectionPool::Instance). A request
// asks the pool for a stream; the pool answers at once when an idle connection is ready, or
// later, once a new connection is up or a busy one frees; or it fails the request (connect
// failure, overflow). HTTP/1.1 pools keep connections alive and give each one stream at a time;
// multiplexed pools (Bolt) put many streams on each connection.
//
// Threading: a pool belongs to its worker's thread; every call and callback happens there.

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/dispatcher.h"
#include "mesh/codec/codec.h"

namespace ottava::mesh {

class Host;
struct ClusterInfo;

/// Why a stream ended without a complete response.
enum class ResetReason : uint8_t {
  kConnectFailure,   // the connection could not be established (or timed out connecting)
  kOverflow,         // the pool was full (max_connections and max_pending reached)
  kConnectionReset,  // the upstream closed or reset before the response completed
  kProtocolError,    // the upstream sent bytes the codec could not parse
  kLocalReset,       // the caller reset the stream (timeout, downstream gone)
};

/// Text for logs and error bodies.
std::string_view ResetReasonName(ResetReason reason);

/// Receives one upstream stream's response and its end. Implemented by the router.
class UpstreamCallbacks : public ResponseDecoder {
 public:
  /// A connection is ready: encode the request through `encoder`. `host` is the chosen host;
  /// `stream` is the handle from now on (it replaces the one NewStream returned).
  virtual void OnPoolReady(RequestEncoder& encoder, Host& host, class PoolStream& stream) = 0;
  /// The stream ended without a complete response (or never started). Not called after the
  /// final DecodeHeaders/DecodeData with end_stream, nor after Reset().
  virtual void OnReset(ResetReason reason, std::string_view detail) = 0;
  /// The upstream connection's output is above / below its watermark (request bodies).
  virtual void OnAboveWriteHighWatermark() {}
  virtual void OnBelowWriteLowWatermark() {}
};

/// A stream handed out by a pool. Valid until the response completes, OnReset is called, or
/// the owner calls Reset().
class PoolStream {
 public:
  virtual ~PoolStream() = default;
  /// Abandons the stream: cancels a pending request, or closes its connection when the request
  /// is already on the wire (an HTTP/1.1 response cannot be skipped). No callback follows.
  virtual void Reset() = 0;
  /// Stops or resumes reading the response (downstream backpressure).
  virtual void ReadDisable(bool disable) = 0;
};

class ConnectionPool {
 public:
  virtual ~ConnectionPool() = default;
  /// Requests a stream whose events go to `callbacks`. Returns the handle; callbacks may have
  /// run already (OnPoolReady or OnReset) before it returns, in which case the handle is still
  /// valid until the response completes or Reset() is called.
  virtual PoolStream* NewStream(UpstreamCallbacks& callbacks) = 0;
  /// Whether the pool has no connection and no stream (it may be destroyed).
  virtual bool Idle() const = 0;
  /// Closes idle connections and stops creating new ones; busy ones close when done.
  virtual void Drain() = 0;
  /// Active connections (for health and stats).
  virtual size_t ConnectionCount() const = 0;
};
using ConnectionPoolPtr = std::unique_ptr<ConnectionPool>;

/// Limits shared by the pools of one cluster on one worker.
struct PoolLimits {
  uint32_t max_connections = 1024;
  uint32_t max_pending = 1024;
  uint32_t max_requests = 1024;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds idle_timeout{60000};
  /// Multiplexed pools: connections open per host on each worker, and how often an idle one is
  /// probed with a heartbeat (0: never); three unanswered probes in a row close it.
  uint32_t connections_per_host = 1;
  std::chrono::milliseconds heartbeat_interval{15000};
};

/// Per-worker counters of one cluster against PoolLimits (all pools of that cluster share it).
struct PoolUsage {
  uint32_t connections = 0;
  uint32_t pending = 0;
  uint32_t requests = 0;
};

/// A multiplexed pool (Bolt) for `host`: up to limits.connections_per_host connections, each
/// carrying many streams. `cluster` and `usage` outlive the pool; the cluster's codec factory
/// must be multiplexed.
ConnectionPoolPtr CreateMultiplexConnectionPool(Dispatcher& dispatcher,
                                                std::shared_ptr<Host> host,
                                                const ClusterInfo& cluster,
                                                PoolUsage& usage);

/// An HTTP/1.1 keep-alive pool for `host`. `cluster` and `usage` outlive the pool.
ConnectionPoolPtr CreateHttp1ConnectionPool(Dispatcher& dispatcher,
                                            std::shared_ptr<Host> host,
                                            const ClusterInfo& cluster,
                                            PoolUsage& usage);

}  // namespace ottava::mesh
