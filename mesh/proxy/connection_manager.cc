#include "mesh/proxy/connection_manager.h"

#include <algorithm>
#include <optional>

#include "common/assert.h"

namespace ottava::mesh {

// Downstream output above this pauses reading the upstream response.
constexpr size_t kDownstreamWriteHighWatermark = 1024 * 1024;

ListenerStats ListenerStats::Create(stats::Store& store,
                                    const std::string& listener,
                                    std::string_view protocol) {
  const stats::Labels labels{{"listener", listener}, {"protocol", std::string(protocol)}};
  ListenerStats s;
  s.connections_total = &store.CounterFor("ottava_mesh_listener_connections_total",
                                          "Downstream connections accepted", labels);
  s.connections_active = &store.GaugeFor("ottava_mesh_listener_connections_active",
                                         "Open downstream connections", labels);
  s.requests = &store.CounterFor("ottava_mesh_listener_requests_total",
                                 "Requests received on a listener", labels);
  for (int klass = 1; klass <= 5; ++klass) {
    stats::Labels with_class = labels;
    with_class.emplace_back("class", std::to_string(klass) + "xx");
    s.responses[klass] =
        &store.CounterFor("ottava_mesh_listener_responses_total",
                          "Responses sent on a listener by status class", with_class);
  }
  s.protocol_errors = &store.CounterFor("ottava_mesh_listener_protocol_errors_total",
                                        "Connections closed for malformed requests", labels);
  s.header_timeouts = &store.CounterFor("ottava_mesh_listener_header_timeouts_total",
                                        "Connections cut for sending headers too slowly", labels);
  s.idle_timeouts = &store.CounterFor("ottava_mesh_listener_idle_timeouts_total",
                                      "Idle connections closed", labels);
  s.heartbeats = &store.CounterFor("ottava_mesh_listener_heartbeats_total",
                                   "Protocol heartbeats answered by the mesh", labels);
  stats::Labels downstream = {{"direction", "downstream"}, {"protocol", std::string(protocol)}};
  s.frames_per_writev = &store.HistogramFor("ottava_mesh_frames_per_writev",
                                            "Frames sent on a connection by one flush (one writev)",
                                            downstream, FramesPerWritevBounds());
  return s;
}

// One request/response exchange on the connection.
class ConnectionManager::ActiveStream : public DeferredDeletable,
                                        public RequestDecoder,
                                        public DownstreamCallbacks {
 public:
  ActiveStream(ConnectionManager& parent, ResponseEncoder& encoder)
      : parent_(parent), encoder_(encoder) {}
  OTTAVA_POOLED_NEW(ActiveStream)

  StreamList::iterator self;

  // RequestDecoder
  void DecodeHeaders(RequestHeadersPtr headers, bool end_stream) override {
    parent_.DisableTimer(parent_.header_timer_);
    parent_.config_.stats->requests->Inc();
    request_complete_ = end_stream;
    MeshSnapshotConstSharedPtr snapshot = parent_.context_.snapshot();
    const RouteTable* table = snapshot->Router(parent_.config_.router);
    const std::vector<FilterFactoryCb>* filters = snapshot->Filters(parent_.config_.router);
    router_.emplace(parent_.context_.router_context(), std::move(snapshot), table, *this, filters);
    router_->DecodeRequestHeaders(std::move(headers), end_stream);
  }

  void DecodeData(Buffer& data, bool end_stream) override {
    if (end_stream) {
      request_complete_ = true;
    }
    if (router_.has_value() && !response_complete_) {
      router_->DecodeRequestData(data, end_stream);
    } else {
      data.Drain(data.Length());
    }
    if (end_stream && response_complete_ && !completion_reported_) {
      // The response ended first; now the request has too.
      completion_reported_ = true;
      parent_.OnStreamComplete(*this, true);
    }
  }

  // DownstreamCallbacks
  void EncodeHeaders(ResponseHeadersPtr headers, bool end_stream) override {
    int klass = std::clamp(headers->status / 100, 1, 5);
    parent_.config_.stats->responses[klass]->Inc();
    encoder_.EncodeHeaders(*headers, end_stream);
    close_announced_ = parent_.codec_->WantsClose();
    if (end_stream) {
      Complete();
    }
  }

  /// Whether the response head told the client the connection closes after it.
  bool close_announced() const { return close_announced_; }

  void EncodeData(Buffer& data, bool end_stream) override {
    encoder_.EncodeData(data, end_stream);
    if (end_stream) {
      Complete();
    }
  }

  void ResetDownstream(std::string_view) override {
    response_complete_ = true;
    parent_.CloseConnection(CloseType::kNoFlush);
  }

  void ReadDisableDownstream(bool disable) override {
    if (parent_.connection_->state() == Connection::State::kOpen) {
      parent_.connection_->ReadDisable(disable);
      read_disables_ += disable ? 1 : -1;
    }
  }

  std::string_view downstream_address() const override {
    return parent_.connection_->remote_address().host;
  }

  void OnDownstreamReset() {
    if (router_.has_value()) {
      router_->OnDownstreamReset();
    }
  }

  void ReadDisableUpstream(bool disable) {
    if (router_.has_value()) {
      router_->ReadDisableUpstream(disable);
    }
  }

  void RestoreReads() {
    while (read_disables_ > 0) {
      ReadDisableDownstream(false);
    }
  }

  bool request_complete() const { return request_complete_; }

 private:
  void Complete() {
    response_complete_ = true;
    if (request_complete_ || parent_.multiplexed_) {
      // Reported once: the stream is gone from the manager's list after this.
      completion_reported_ = true;
    }
    parent_.OnStreamComplete(*this, request_complete_);
  }

  ConnectionManager& parent_;
  ResponseEncoder& encoder_;
  std::optional<Router> router_;  // inline: one allocation less per request
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool completion_reported_ = false;  // OnStreamComplete ran with the request complete
  int read_disables_ = 0;
  bool close_announced_ = false;
};

ConnectionManager::ConnectionManager(ConnectionManagerContext& context,
                                     const ConnectionManagerConfig& config,
                                     ConnectionPtr connection,
                                     bool migrated)
    : context_(context),
      config_(config),
      connection_(std::move(connection)),
      multiplexed_(config.codec->multiplexed()) {
  connection_->SetReadHandler(this);
  connection_->AddCallbacks(*this);
  connection_->SetWriteBufferLimit(kDownstreamWriteHighWatermark);
  connection_->SetFramesPerWritevHistogram(config_.stats->frames_per_writev);
  codec_ = config_.codec->CreateServerCodec(*this, *this, config_.codec_options);
  if (!migrated) {
    config_.stats->connections_total->Inc();
  }
  config_.stats->connections_active->Add(1);
  ArmIdleTimer();
}

ConnectionManager::~ConnectionManager() {
  *alive_ = false;
  for (auto& stream : streams_) {
    stream->OnDownstreamReset();
  }
  streams_.clear();
  if (connection_->state() != Connection::State::kClosed) {
    connection_->RemoveCallbacks(*this);
    connection_->Close(CloseType::kNoFlush);
  }
  if (!closed_) {
    config_.stats->connections_active->Sub(1);
  }
}

void ConnectionManager::OnData(Buffer& data, bool end_stream) {
  read_buffer_ = &data;
  if (!multiplexed_ && streams_.empty() && !data.Empty()) {
    DisableTimer(idle_timer_);
    ArmHeaderTimer();
  }
  std::shared_ptr<bool> alive = alive_;
  absl::Status status = codec_->Dispatch(data);
  if (!*alive) {
    return;
  }
  if (!status.ok()) {
    config_.stats->protocol_errors->Inc();
    data.Drain(data.Length());
    CloseConnection(CloseType::kFlushWrite);
    return;
  }
  if (multiplexed_ && !closed_) {
    // A partly received frame must complete within the header timeout.
    if (data.Empty()) {
      DisableTimer(header_timer_);
    } else {
      ArmHeaderTimer();
    }
  }
  if (end_stream && !closed_) {
    (void)codec_->DispatchEof();
  }
}

RequestDecoder& ConnectionManager::NewStream(ResponseEncoder& encoder, uint64_t) {
  DisableTimer(idle_timer_);
  streams_.push_back(std::make_unique<ActiveStream>(*this, encoder));
  streams_.back()->self = std::prev(streams_.end());
  return *streams_.back();
}

void ConnectionManager::OnStreamComplete(ActiveStream& stream, bool request_complete) {
  if (closed_) {
    return;
  }
  if (multiplexed_) {
    stream.RestoreReads();
    std::unique_ptr<ActiveStream> owned = std::move(*stream.self);
    streams_.erase(stream.self);
    connection_->dispatcher().DeferredDelete(std::move(owned));
    if (streams_.empty()) {
      if (migrate_ != nullptr) {
        CheckMigrationDone();
      } else if (draining_) {
        CloseConnection(CloseType::kFlushWrite);
      } else {
        ArmIdleTimer();
      }
    }
    return;
  }
  if (!request_complete) {
    // Answered before the request body ended (a local reply, an early upstream answer): the rest
    // of the body cannot be told from the next request, so the connection ends here.
    CloseConnection(CloseType::kFlushWrite);
    return;
  }
  stream.RestoreReads();
  connection_->dispatcher().DeferredDelete(std::move(streams_.front()));
  streams_.clear();
  // A graceful drain never closes under a client that was not told: a response whose head went
  // out before the drain began leaves the connection open for one more, announced, response.
  if ((codec_->WantsClose() || draining_) && !(graceful_drain_ && !stream.close_announced())) {
    CloseConnection(CloseType::kFlushWrite);
    return;
  }
  ArmIdleTimer();
  if (read_buffer_ != nullptr && !read_buffer_->Empty() && !dispatch_posted_) {
    // Pipelined requests wait in the input; resume parsing outside the current callback.
    dispatch_posted_ = true;
    std::shared_ptr<bool> alive = alive_;
    connection_->dispatcher().Post([this, alive] {
      if (*alive) {
        dispatch_posted_ = false;
        DispatchBuffered();
      }
    });
  }
}

void ConnectionManager::DispatchBuffered() {
  if (closed_ || !streams_.empty() || read_buffer_ == nullptr || read_buffer_->Empty()) {
    return;
  }
  OnData(*read_buffer_, false);
}

void ConnectionManager::ArmIdleTimer() {
  if (!multiplexed_) {
    DisableTimer(header_timer_);
  }
  if (config_.idle_timeout.count() <= 0) {
    return;
  }
  if (idle_timer_ == nullptr) {
    idle_timer_ = connection_->dispatcher().CreateTimer([this] { OnIdleTimeout(); });
  }
  idle_timer_->Enable(config_.idle_timeout);
}

// Timers are made once per connection and re-armed: a request must not cost a timer allocation.
void ConnectionManager::ArmHeaderTimer() {
  if (header_timer_ == nullptr) {
    header_timer_ = connection_->dispatcher().CreateTimer([this] { OnHeaderTimeout(); });
  }
  if (!header_timer_->Enabled()) {  // a running one keeps its deadline
    header_timer_->Enable(config_.header_timeout);
  }
}

void ConnectionManager::OnIdleTimeout() {
  if (!streams_.empty()) {
    return;
  }
  config_.stats->idle_timeouts->Inc();
  CloseConnection(CloseType::kFlushWrite);
}

void ConnectionManager::OnHeaderTimeout() {
  config_.stats->header_timeouts->Inc();
  if (!multiplexed_ && streams_.empty()) {
    Buffer reply;
    reply.Add(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 33\r\n"
        "connection: close\r\n\r\nrequest headers took too long\r\n\r\n");
    connection_->Write(reply);
  }
  CloseConnection(CloseType::kFlushWrite);
}

void ConnectionManager::StartDraining(bool close_idle) {
  draining_ = true;
  graceful_drain_ = !close_idle;
  codec_->StartDraining();
  if (streams_.empty() && close_idle) {
    CloseConnection(CloseType::kFlushWrite);
  }
}

void ConnectionManager::StartMigration(MigrateCallback ready) {
  OTTAVA_ASSERT(multiplexed_, "only multiplexed codecs migrate between frames");
  if (closed_ || migrate_ != nullptr) {
    return;
  }
  migrate_ = std::move(ready);
  connection_->ReadDisable(true);  // never enabled again: the next process reads from here on
  DisableTimer(idle_timer_);
  DisableTimer(header_timer_);  // a partial frame completes in the next process
  CheckMigrationDone();
}

// Called when the last stream ended and on the poll timer. The hand-off itself runs from the
// timer, never inside a stream's callback (the codec is still on the stack there).
void ConnectionManager::CheckMigrationDone() {
  if (migrate_timer_ == nullptr) {
    migrate_timer_ = connection_->dispatcher().CreateTimer([this] {
      if (closed_ || migrate_ == nullptr) {
        return;
      }
      if (!streams_.empty() || connection_->BufferedBytes() > 0) {
        // Waiting for responses (bounded by their routes' timeouts) or for the client to read.
        migrate_timer_->Enable(std::chrono::milliseconds(1));
        return;
      }
      closed_ = true;
      config_.stats->connections_active->Sub(1);
      idle_timer_.reset();
      header_timer_.reset();
      read_buffer_ = nullptr;
      std::string unread;
      const int fd = connection_->ReleaseFd(&unread);
      MigrateCallback ready = std::move(migrate_);
      migrate_ = nullptr;
      ready(*this, fd, std::move(unread));
      context_.OnConnectionClosed(*this);
    });
  }
  if (!migrate_timer_->Enabled()) {
    migrate_timer_->Enable(std::chrono::milliseconds(0));
  }
}

void ConnectionManager::OnAboveWriteHighWatermark() {
  write_above_high_ = true;
  for (auto& stream : streams_) {
    stream->ReadDisableUpstream(true);
  }
}

void ConnectionManager::OnBelowWriteLowWatermark() {
  write_above_high_ = false;
  for (auto& stream : streams_) {
    stream->ReadDisableUpstream(false);
  }
}

void ConnectionManager::CloseConnection(CloseType type) {
  if (connection_->state() == Connection::State::kClosed) {
    return;
  }
  connection_->Close(type);
}

void ConnectionManager::OnEvent(ConnectionEvent event) {
  if (event != ConnectionEvent::kRemoteClose && event != ConnectionEvent::kLocalClose) {
    return;
  }
  if (closed_) {
    return;
  }
  closed_ = true;
  config_.stats->connections_active->Sub(1);
  idle_timer_.reset();
  header_timer_.reset();
  migrate_timer_.reset();
  migrate_ = nullptr;
  read_buffer_ = nullptr;
  for (auto& stream : streams_) {
    stream->OnDownstreamReset();
    connection_->dispatcher().DeferredDelete(std::move(stream));
  }
  streams_.clear();
  context_.OnConnectionClosed(*this);
}

}  // namespace ottava::mesh
