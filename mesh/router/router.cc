#include "mesh/router/router.h"

#include <algorithm>

#include "common/loop_clock.h"
#include "mesh/router/snapshot.h"

namespace ottava::mesh {
namespace {

// Request bodies up to this size are kept for retries and mirrors.
constexpr size_t kMaxRetryBodyBytes = 64 * 1024;
// Body bytes buffered while no upstream connection is ready, before reading pauses.
constexpr size_t kMaxPendingBodyBytes = 1024 * 1024;
constexpr std::chrono::milliseconds kRetryBackoffBase(25);
constexpr std::chrono::milliseconds kRetryBackoffMax(250);

}  // namespace

Router::Router(RouterContext& context,
               std::shared_ptr<const MeshSnapshot> snapshot,
               const RouteTable* table,
               DownstreamCallbacks& downstream,
               const std::vector<FilterFactoryCb>* filters)
    : context_(context), snapshot_(std::move(snapshot)), table_(table), downstream_(downstream) {
  if (filters != nullptr) {
    filters_.reserve(filters->size());
    for (const FilterFactoryCb& make : *filters) {
      filters_.push_back(make());
      filters_.back()->SetCallbacks(*this);
    }
  }
}

Router::~Router() {
  for (DestroyGuard* guard = guard_; guard != nullptr; guard = guard->previous) {
    guard->destroyed = true;
  }
  ResetUpstream();
  for (StreamFilterPtr& filter : filters_) {
    filter->OnDestroy();
  }
}

void Router::DecodeRequestHeaders(RequestHeadersPtr headers, bool end_stream) {
  caller_timeout_ = std::chrono::milliseconds(std::max<int64_t>(headers->timeout_ms, 0));
  if (filters_.empty()) {
    Route(std::move(headers), end_stream);
    return;
  }
  filtering_ = true;
  filter_headers_ = std::move(headers);
  filter_end_stream_ = end_stream;
  RunFilters();
}

void Router::RunFilters() {
  DestroyGuard guard(*this);
  while (next_filter_ < filters_.size()) {
    StreamFilter& filter = *filters_[next_filter_++];
    FilterStatus status = filter.DecodeHeaders(*filter_headers_, filter_end_stream_);
    if (guard.destroyed || done_) {
      return;
    }
    if (status == FilterStatus::kStop) {
      return;  // ContinueDecoding() resumes with the next filter
    }
  }
  filtering_ = false;
  const bool body_waiting = !filter_body_.Empty() || filter_body_end_;
  Route(std::move(filter_headers_), filter_end_stream_);
  if (body_waiting && !guard.destroyed && !done_) {
    DecodeRequestData(filter_body_, filter_body_end_);
  }
}

void Router::ContinueDecoding() {
  if (filtering_ && !done_) {
    RunFilters();
  }
}

void Router::SendLocalReply(int status, std::string_view body) {
  if (request_ == nullptr && filter_headers_ != nullptr) {
    request_ = std::move(filter_headers_);
  }
  filtering_ = false;
  SendLocalReply(status, LocalReplyReason::kFilterReply, std::string(body));
}

void Router::EncodeThroughFilters(ResponseHeaders& headers) {
  for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
    (*it)->EncodeHeaders(headers);
  }
}

ResponseHeadersPtr Router::LocalReplyHeaders(int status, size_t body_length) {
  auto headers = std::make_unique<ResponseHeaders>();
  headers->status = status;
  headers->content_length = static_cast<int64_t>(body_length);
  headers->headers.Add("content-type", "text/plain; charset=utf-8");
  headers->headers.Add("content-length", std::to_string(body_length));
  return headers;
}

void Router::Route(RequestHeadersPtr headers, bool end_stream) {
  request_complete_ = end_stream;
  route_ = table_ != nullptr ? context_.route_cache().Match(*table_, *headers) : nullptr;
  if (route_ == nullptr) {
    request_ = std::move(headers);
    SendLocalReply(404, LocalReplyReason::kNoRoute,
                   "no route for service '" + request_->service + "'\n");
    return;
  }
  route_stats_ = snapshot_->StatsOf(route_);
  if (route_stats_ != nullptr) {
    route_stats_->requests->Inc();
  }
  const RouteConfig& route = route_->config;
  if (route.direct_response) {
    request_ = std::move(headers);
    SendLocalReply(route.direct_response->status, LocalReplyReason::kDirectResponse,
                   route.direct_response->body);
    return;
  }
  const std::string& cluster_name =
      cluster_override_.empty() ? route_->PickCluster(context_.Random()) : cluster_override_;
  const ClusterInfoConstSharedPtr* cluster = snapshot_->Cluster(cluster_name);
  if (cluster == nullptr) {  // validation makes this impossible; answer rather than crash
    request_ = std::move(headers);
    SendLocalReply(503, LocalReplyReason::kNoHealthyHost,
                   "unknown cluster '" + cluster_name + "'\n");
    return;
  }
  cluster_shared_ = cluster;
  cluster_ = cluster->get();
  info_.cluster = cluster_->config.name;

  // Request rewrites. RPC frames (Bolt, Dubbo) get no x-forwarded-for: it is an HTTP convention,
  // and an untouched header map lets the frame pass through without being serialised again.
  std::string_view remote =
      headers->rpc.has_value() ? std::string_view() : downstream_.downstream_address();
  if (!remote.empty()) {
    headers->headers.Append("x-forwarded-for", remote);
  }
  for (const std::string& name : route.request_headers_to_remove) {
    headers->headers.Remove(name);
  }
  for (const HeaderValue& header : route.request_headers_to_add) {
    headers->headers.Add(header.name, header.value);
  }
  if (!route.prefix_rewrite.empty() && !route.match.path_prefix.empty() &&
      headers->path.compare(0, route.match.path_prefix.size(), route.match.path_prefix) == 0) {
    headers->path = route.prefix_rewrite + headers->path.substr(route.match.path_prefix.size());
  }
  if (cluster_->config.lb == LbPolicy::kMaglev && !cluster_->config.hash_header.empty()) {
    if (const std::string* value = headers->headers.Get(cluster_->config.hash_header)) {
      maglev_hash_ = HashKey(*value);
      has_hash_ = true;
    }
  }
  if (route.retry) {
    retries_left_ = route.retry->attempts;
  }
  request_ = std::move(headers);
  if (request_complete_) {
    OnRequestComplete();
  }
  StartTry();
}

void Router::DecodeRequestData(Buffer& data, bool end_stream) {
  if (done_) {
    data.Drain(data.Length());
    return;
  }
  if (filtering_) {
    // A filter holds the request; its body waits (bounded by the same pause as pending bodies).
    filter_body_.Move(data);
    filter_body_end_ = end_stream;
    if (filter_body_.Length() > kMaxPendingBodyBytes && !pending_paused_) {
      pending_paused_ = true;
      downstream_.ReadDisableDownstream(true);
    }
    return;
  }
  if (body_copy_valid_) {
    if (body_copy_.Length() + data.Length() <= kMaxRetryBodyBytes &&
        (route_ != nullptr && (route_->config.retry || route_->config.mirror))) {
      body_copy_.Add(data.ToString());
    } else {
      body_copy_valid_ = false;
      body_copy_.Drain(body_copy_.Length());
    }
  }
  if (end_stream) {
    request_complete_ = true;
    if (route_ != nullptr) {
      OnRequestComplete();
    }
  }
  if (encoder_ != nullptr) {
    encoder_->EncodeData(data, end_stream);
    if (end_stream) {
      upstream_request_sent_ = true;
      StartPerTryTimer();
    }
    return;
  }
  pending_body_.Move(data);
  pending_end_ = end_stream;
  if (pending_body_.Length() > kMaxPendingBodyBytes && !pending_paused_) {
    pending_paused_ = true;
    downstream_.ReadDisableDownstream(true);
  }
}

void Router::StartTry() {
  if (done_) {
    return;
  }
  tl_cluster_ = &context_.GetCluster(*cluster_shared_);
  LbContext lb_context;
  if (has_hash_) {
    lb_context.hash = maglev_hash_;
  }
  lb_context.avoid = failed_host_;
  Host* host = tl_cluster_->lb().ChooseHost(lb_context);
  if (host == nullptr) {
    SendLocalReply(503, LocalReplyReason::kNoHealthyHost,
                   "no healthy host in cluster '" + cluster_->config.name + "'\n");
    return;
  }
  chosen_host_ = host;
  ++info_.attempts;
  cluster_->stats.requests->Inc();
  try_start_ = LoopClock::Now();
  upstream_request_sent_ = false;
  DestroyGuard guard(*this);
  in_new_stream_ = true;
  inline_failure_.reset();
  upstream_ = nullptr;
  PoolStream* stream = tl_cluster_->PoolFor(*host).NewStream(*this);
  if (guard.destroyed) {
    return;
  }
  in_new_stream_ = false;
  if (inline_failure_) {
    auto failure = std::move(*inline_failure_);
    inline_failure_.reset();
    OnTryFailed(failure.first, failure.second);
    return;
  }
  if (upstream_ == nullptr) {
    upstream_ = stream;  // still pending; OnPoolReady replaces it with the connection's handle
  }
}

void Router::OnPoolReady(RequestEncoder& encoder, Host& host, PoolStream& stream) {
  encoder_ = &encoder;
  host_ = &host;
  upstream_ = &stream;
  const bool first_try = info_.attempts == 1;
  RequestHeaders* to_send = request_.get();
  RequestHeaders copy;
  if (retries_left_ > 0 || !first_try) {
    copy = *request_;
    to_send = &copy;
  }
  if (first_try) {
    bool end = request_complete_ && pending_body_.Empty();
    encoder.EncodeHeaders(*to_send, end);
    if (!pending_body_.Empty() || (pending_end_ && !end)) {
      encoder.EncodeData(pending_body_, pending_end_);
    }
    if (pending_paused_) {
      pending_paused_ = false;
      downstream_.ReadDisableDownstream(false);
    }
    upstream_request_sent_ = request_complete_;
  } else {
    // Retries resend the whole request from the kept copy.
    bool has_body = body_copy_.Length() > 0;
    encoder.EncodeHeaders(*to_send, !has_body);
    if (has_body) {
      Buffer body;
      body.Add(body_copy_.ToString());
      encoder.EncodeData(body, true);
    }
    upstream_request_sent_ = true;
  }
  if (upstream_request_sent_) {
    StartPerTryTimer();
  }
}

void Router::OnRequestComplete() {
  // As Envoy, the route timeout runs from the end of the request, so a long upload is not cut.
  std::chrono::milliseconds timeout = timeout_override_.count() > 0
                                          ? timeout_override_
                                          : std::chrono::milliseconds(route_->config.timeout_ms);
  if (caller_timeout_.count() > 0 && (timeout.count() <= 0 || caller_timeout_ < timeout)) {
    timeout = caller_timeout_;
  }
  if (timeout.count() > 0 && !route_timer_started_) {
    route_timer_started_ = true;
    if (TimeoutQueue* queue = context_.RouteTimeouts(timeout)) {
      queue->Arm(route_timeout_);
    } else {
      route_timer_ = context_.dispatcher().CreateTimer([this] { OnRouteTimeout(); });
      route_timer_->Enable(timeout);
    }
  }
  MaybeMirror();
}

void Router::StartPerTryTimer() {
  if (route_->config.retry && route_->config.retry->per_try_timeout_ms > 0) {
    try_timer_ = context_.dispatcher().CreateTimer([this] { OnPerTryTimeout(); });
    try_timer_->Enable(std::chrono::milliseconds(route_->config.retry->per_try_timeout_ms));
  }
}

void Router::OnReset(ResetReason reason, std::string_view detail) {
  if (in_new_stream_) {
    inline_failure_.emplace(reason, std::string(detail));
    return;
  }
  OnTryFailed(reason, detail);
}

void Router::OnTryFailed(ResetReason reason, std::string_view detail) {
  upstream_ = nullptr;
  encoder_ = nullptr;
  try_timer_.reset();
  if (done_) {
    return;
  }
  Host* host = chosen_host_;
  if (host != nullptr && reason != ResetReason::kOverflow) {
    context_.ReportOutcome(*cluster_, *host, 0, reason == ResetReason::kConnectFailure);
  }
  bool retry_on = false;
  if (route_->config.retry) {
    const RetryPolicyConfig& policy = *route_->config.retry;
    switch (reason) {
      case ResetReason::kConnectFailure:
        retry_on = policy.on_connect_failure;
        break;
      case ResetReason::kConnectionReset:
      case ResetReason::kProtocolError:
        retry_on = policy.on_reset;
        break;
      default:
        break;
    }
  }
  if (retry_on && RetryAllowed()) {
    failed_host_ = host;
    ScheduleRetry();
    return;
  }
  std::string message = std::string(ResetReasonName(reason)) + ": " + std::string(detail) + "\n";
  switch (reason) {
    case ResetReason::kConnectFailure:
      SendLocalReply(503, LocalReplyReason::kConnectFailure, "upstream " + message);
      return;
    case ResetReason::kOverflow:
      SendLocalReply(503, LocalReplyReason::kOverflow, message);
      return;
    default:
      SendLocalReply(502, LocalReplyReason::kUpstreamReset, message);
      return;
  }
}

bool Router::RetryAllowed() const {
  // A retry resends the whole request, so the body must still be at hand (body_copy_).
  return retries_left_ > 0 && !response_started_ && !done_ && request_complete_ && body_copy_valid_;
}

void Router::ScheduleRetry() {
  --retries_left_;
  ++retry_count_;
  cluster_->stats.retries->Inc();
  ResetUpstream();
  // Fully jittered exponential backoff, as Envoy's retry policy.
  int64_t ceiling =
      std::min<int64_t>(kRetryBackoffMax.count(), kRetryBackoffBase.count()
                                                      << std::min<uint32_t>(retry_count_ - 1, 4));
  auto delay = std::chrono::milliseconds(static_cast<int64_t>(context_.Random() % (ceiling + 1)));
  retry_timer_ = context_.dispatcher().CreateTimer([this] { StartTry(); });
  retry_timer_->Enable(delay);
}

void Router::DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) {
  const int status = headers->status;
  const int klass = std::clamp(status / 100, 1, 5);
  cluster_->stats.responses[klass]->Inc();
  if (host_ != nullptr) {
    context_.ReportOutcome(*cluster_, *host_, status, false);
  }
  if (route_->config.retry && RetryAllowed()) {
    const RetryPolicyConfig& policy = *route_->config.retry;
    bool retry = (policy.on_5xx && status >= 500) ||
                 (policy.on_gateway_error && status >= 502 && status <= 504);
    if (retry) {
      if (!end_stream) {
        ResetUpstream();  // the rest of this response is not wanted
      } else {
        upstream_ = nullptr;
        encoder_ = nullptr;
      }
      try_timer_.reset();
      failed_host_ = host_;
      ScheduleRetry();
      return;
    }
  }
  try_timer_.reset();
  ApplyResponseHeaderRules(*headers);
  EncodeThroughFilters(*headers);
  if (route_stats_ != nullptr) {
    route_stats_->responses[klass]->Inc();
  }
  response_started_ = true;
  info_.response_status = status;
  if (end_stream) {
    FinishUpstreamTime();
    upstream_ = nullptr;
    encoder_ = nullptr;
    done_ = true;
    CancelRouteTimer();
  }
  downstream_.EncodeHeaders(std::move(headers), end_stream);
}

void Router::DecodeData(Buffer& data, bool end_stream) {
  if (end_stream) {
    FinishUpstreamTime();
    upstream_ = nullptr;
    encoder_ = nullptr;
    done_ = true;
    CancelRouteTimer();
  }
  downstream_.EncodeData(data, end_stream);
}

void Router::ReadDisableUpstream(bool disable) {
  if (upstream_ != nullptr) {
    upstream_->ReadDisable(disable);
  }
}

void Router::OnRouteTimeout() {
  cluster_->stats.timeouts->Inc();
  ResetUpstream();
  if (response_started_) {
    done_ = true;
    downstream_.ResetDownstream("upstream response timeout");
    return;
  }
  SendLocalReply(504, LocalReplyReason::kTimeout, "upstream request timeout\n");
}

void Router::OnPerTryTimeout() {
  cluster_->stats.timeouts->Inc();
  ResetUpstream();
  const RetryPolicyConfig& policy = *route_->config.retry;
  if ((policy.on_5xx || policy.on_gateway_error || policy.on_reset) && RetryAllowed()) {
    failed_host_ = host_;
    ScheduleRetry();
    return;
  }
  SendLocalReply(504, LocalReplyReason::kTimeout, "upstream per-try timeout\n");
}

void Router::ResetUpstream() {
  try_timer_.reset();
  if (upstream_ != nullptr) {
    PoolStream* stream = upstream_;
    upstream_ = nullptr;
    encoder_ = nullptr;
    stream->Reset();
  }
}

void Router::FinishUpstreamTime() {
  auto elapsed = LoopClock::Now() - try_start_;
  cluster_->stats.upstream_time->Record(std::chrono::duration<double>(elapsed).count());
}

void Router::OnDownstreamReset() {
  done_ = true;
  CancelRouteTimer();
  retry_timer_.reset();
  ResetUpstream();
}

void Router::SendLocalReply(int status, LocalReplyReason reason, std::string body) {
  ResetUpstream();
  CancelRouteTimer();
  retry_timer_.reset();
  if (response_started_) {
    done_ = true;
    downstream_.ResetDownstream(body);
    return;
  }
  done_ = true;
  info_.local_reply = reason;
  info_.response_status = status;
  info_.detail = body;
  response_started_ = true;
  ResponseHeadersPtr headers = LocalReplyHeaders(status, body.size());
  headers->local_reply = reason;
  if (route_ != nullptr) {
    ApplyResponseHeaderRules(*headers);
  }
  EncodeThroughFilters(*headers);
  if (route_stats_ != nullptr) {
    route_stats_->responses[std::clamp(status / 100, 1, 5)]->Inc();
  }
  if (body.empty()) {
    downstream_.EncodeHeaders(std::move(headers), true);
    return;
  }
  DestroyGuard guard(*this);
  downstream_.EncodeHeaders(std::move(headers), false);
  if (guard.destroyed) {
    return;
  }
  Buffer data;
  data.Add(body);
  downstream_.EncodeData(data, true);
}

void Router::ApplyResponseHeaderRules(ResponseHeaders& headers) const {
  for (const std::string& name : route_->config.response_headers_to_remove) {
    headers.headers.Remove(name);
  }
  for (const HeaderValue& header : route_->config.response_headers_to_add) {
    headers.headers.Add(header.name, header.value);
  }
}

void Router::MaybeMirror() {
  if (mirrored_ || route_ == nullptr || !route_->config.mirror || !body_copy_valid_) {
    return;
  }
  mirrored_ = true;
  const MirrorConfig& mirror = *route_->config.mirror;
  if (static_cast<double>(context_.Random() % 10000) >= mirror.percent * 100.0) {
    return;
  }
  const ClusterInfoConstSharedPtr* cluster = snapshot_->Cluster(mirror.cluster);
  if (cluster == nullptr) {
    return;
  }
  auto headers = std::make_unique<RequestHeaders>(*request_);
  if (!headers->host.empty()) {
    headers->host += "-shadow";
    headers->headers.Set("host", headers->host);
  }
  std::chrono::milliseconds timeout(route_->config.timeout_ms > 0 ? route_->config.timeout_ms
                                                                  : 15000);
  context_.StartShadow(*cluster, std::move(headers), body_copy_.ToString(), timeout);
}

}  // namespace ottava::mesh
