#pragma once

// The router: the terminal step of a stream's decode path and its per-request state machine
// (as Envoy's router filter). It matches the route, picks the cluster (weighted split), a host
// (load balancer), takes a stream from that host's pool, forwards the request, enforces the
// route and per-try timeouts, retries, mirrors, and sends the response (or a local reply that
// names what went wrong) back to the downstream.
//
// Threading: one Router per request, on its worker's thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/dispatcher.h"
#include "common/timeout_queue.h"
#include "mesh/codec/codec.h"
#include "mesh/filter/filter.h"
#include "mesh/router/route_table.h"
#include "mesh/upstream/cluster.h"

namespace ottava::mesh {

struct MeshSnapshot;
struct RouteStats;
class OutlierReporter;

/// What the router needs from its worker. Worker thread only.
class RouterContext {
 public:
  virtual ~RouterContext() = default;
  virtual Dispatcher& dispatcher() = 0;
  /// The worker's state for `cluster` (created on first use); the cluster belongs to a snapshot
  /// the caller holds.
  virtual ThreadLocalCluster& GetCluster(const ClusterInfoConstSharedPtr& cluster) = 0;
  virtual RouteCache& route_cache() = 0;
  /// A fast per-worker random number.
  virtual uint64_t Random() = 0;
  /// Passive health: the outcome of one try on `host` of `cluster`.
  virtual void ReportOutcome(const ClusterInfo& cluster,
                             Host& host,
                             int status,
                             bool connect_failure) = 0;
  /// Starts a fire-and-forget copy of a request on `cluster` (mirroring); the worker owns it.
  virtual void StartShadow(const ClusterInfoConstSharedPtr& cluster,
                           std::unique_ptr<RequestHeaders> headers,
                           std::string body,
                           std::chrono::milliseconds timeout) = 0;
  /// The worker's queue for route timeouts of `timeout`, or nullptr: the router then makes a
  /// timer of its own. A queue outlives the routers armed on it or unlinks them when it goes.
  virtual TimeoutQueue* RouteTimeouts(std::chrono::milliseconds /*timeout*/) { return nullptr; }
};

/// Where the router sends the response. Implemented by the connection manager's stream and by
/// the in-process InvokeService entry.
class DownstreamCallbacks {
 public:
  virtual ~DownstreamCallbacks() = default;
  virtual void EncodeHeaders(ResponseHeadersPtr headers, bool end_stream) = 0;
  virtual void EncodeData(Buffer& data, bool end_stream) = 0;
  /// The response cannot be completed after its head was sent: abort the downstream.
  virtual void ResetDownstream(std::string_view reason) = 0;
  /// Stop / resume reading the request body (upstream backpressure).
  virtual void ReadDisableDownstream(bool disable) = 0;
  /// The downstream peer's address, for x-forwarded-for; empty for in-process callers.
  virtual std::string_view downstream_address() const = 0;
};

/// Stream-level facts recorded for logs, stats and the InvokeService mapping.
struct StreamInfo {
  LocalReplyReason local_reply = LocalReplyReason::kNone;
  int response_status = 0;
  std::string cluster;
  uint32_t attempts = 0;
  std::string detail;  // what went wrong, for local replies
};

class Router : public UpstreamCallbacks, public StreamFilterCallbacks {
 public:
  /// `filters`: the router's stream-filter chain (may be null), run before the route is chosen.
  Router(RouterContext& context,
         std::shared_ptr<const MeshSnapshot> snapshot,
         const RouteTable* table,
         DownstreamCallbacks& downstream,
         const std::vector<FilterFactoryCb>* filters = nullptr);
  ~Router() override;

  /// The request head (from the codec or from InvokeService).
  void DecodeRequestHeaders(RequestHeadersPtr headers, bool end_stream);
  /// A request body chunk.
  void DecodeRequestData(Buffer& data, bool end_stream);
  /// The downstream went away: abandon the upstream side. No downstream callback follows.
  void OnDownstreamReset();
  /// A route timeout override in milliseconds (InvokeService deadline), 0 = the route's.
  void SetTimeoutOverride(std::chrono::milliseconds timeout) { timeout_override_ = timeout; }

  /// Stops or resumes reading the upstream response (downstream backpressure).
  void ReadDisableUpstream(bool disable);

  const StreamInfo& info() const { return info_; }

  // UpstreamCallbacks
  void OnPoolReady(RequestEncoder& encoder, Host& host, PoolStream& stream) override;
  void OnReset(ResetReason reason, std::string_view detail) override;
  void OnAboveWriteHighWatermark() override { downstream_.ReadDisableDownstream(true); }
  void OnBelowWriteLowWatermark() override { downstream_.ReadDisableDownstream(false); }
  void Decode1xxHeaders(ResponseHeadersPtr) override {}
  void DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) override;
  void DecodeData(Buffer& data, bool end_stream) override;

  // StreamFilterCallbacks
  void ContinueDecoding() override;
  void SendLocalReply(int status, std::string_view body) override;
  Dispatcher& dispatcher() override { return context_.dispatcher(); }
  std::string_view downstream_address() const override { return downstream_.downstream_address(); }
  void RouteToCluster(std::string cluster) override { cluster_override_ = std::move(cluster); }

  /// A local reply with a plain-text body.
  static ResponseHeadersPtr LocalReplyHeaders(int status, size_t body_length);

 private:
  void RunFilters();
  void Route(RequestHeadersPtr headers, bool end_stream);
  void EncodeThroughFilters(ResponseHeaders& headers);
  void OnRequestComplete();
  void StartPerTryTimer();
  void StartTry();
  void CancelRouteTimer() {
    route_timer_.reset();
    route_timeout_.Cancel();
  }
  void SendLocalReply(int status, LocalReplyReason reason, std::string body);
  void OnTryFailed(ResetReason reason, std::string_view detail);
  void OnRouteTimeout();
  void OnPerTryTimeout();
  bool RetryAllowed() const;
  void ScheduleRetry();
  void ResetUpstream();
  void FinishUpstreamTime();
  void ApplyResponseHeaderRules(ResponseHeaders& headers) const;
  void MaybeMirror();

  RouterContext& context_;
  std::shared_ptr<const MeshSnapshot> snapshot_;
  const RouteTable* table_;
  DownstreamCallbacks& downstream_;
  const RouteEntry* route_ = nullptr;
  const RouteStats* route_stats_ = nullptr;
  // Both point into snapshot_, which keeps the cluster alive: no reference count per request.
  const ClusterInfo* cluster_ = nullptr;
  const ClusterInfoConstSharedPtr* cluster_shared_ = nullptr;
  std::string cluster_override_;  // set by a filter: this cluster instead of the route's
  ThreadLocalCluster* tl_cluster_ = nullptr;
  RequestHeadersPtr request_;
  uint64_t maglev_hash_ = 0;
  bool has_hash_ = false;

  // The body kept for retries and mirrors while it is small enough; once it is not, retries stop.
  Buffer body_copy_;
  bool body_copy_valid_ = true;
  bool request_complete_ = false;  // downstream sent its whole request
  // The upstream try in progress.
  PoolStream* upstream_ = nullptr;
  RequestEncoder* encoder_ = nullptr;
  Host* host_ = nullptr;
  Host* failed_host_ = nullptr;
  Host* chosen_host_ = nullptr;
  bool in_new_stream_ = false;  // inside ConnectionPool::NewStream
  std::optional<std::pair<ResetReason, std::string>> inline_failure_;
  bool pending_paused_ = false;
  bool mirrored_ = false;
  bool upstream_request_sent_ = false;  // every byte of the request handed to the encoder
  Buffer pending_body_;                 // body arriving before the pool was ready
  bool pending_end_ = false;
  bool response_started_ = false;  // headers sent downstream
  bool done_ = false;              // response complete or abandoned
  std::chrono::steady_clock::time_point try_start_;
  std::chrono::milliseconds timeout_override_{0};
  std::chrono::milliseconds caller_timeout_{0};  // RequestHeaders::timeout_ms
  uint32_t retries_left_ = 0;
  uint32_t retry_count_ = 0;
  // The route timeout: an entry in the worker's queue for its duration, or a timer of its own.
  TimeoutEntry route_timeout_{[this] { OnRouteTimeout(); }};
  TimerPtr route_timer_;
  bool route_timer_started_ = false;
  TimerPtr try_timer_;
  TimerPtr retry_timer_;
  StreamInfo info_;
  // The filter chain: each filter, the next one to run, and what waits while one has stopped.
  std::vector<StreamFilterPtr> filters_;
  size_t next_filter_ = 0;
  bool filtering_ = false;
  RequestHeadersPtr filter_headers_;
  bool filter_end_stream_ = false;
  Buffer filter_body_;
  bool filter_body_end_ = false;
  // Guards against callbacks after this router was destroyed inside one of them: a member
  // function that calls out keeps one on its stack and checks `destroyed` after the call. The
  // destructor marks every guard in the chain. (A shared flag would cost an allocation and two
  // atomic operations per request.)
  struct DestroyGuard {
    explicit DestroyGuard(Router& router) : slot(router.guard_), previous(router.guard_) {
      slot = this;
    }
    ~DestroyGuard() {
      if (!destroyed) {
        slot = previous;
      }
    }
    DestroyGuard(const DestroyGuard&) = delete;
    DestroyGuard& operator=(const DestroyGuard&) = delete;
    DestroyGuard*& slot;
    DestroyGuard* const previous;
    bool destroyed = false;
  };
  DestroyGuard* guard_ = nullptr;
};

}  // namespace ottava::mesh
