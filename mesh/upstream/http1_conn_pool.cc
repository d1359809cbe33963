// The HTTP/1.1 keep-alive pool: one stream per connection at a time, idle connections reused
// most-recently-used first (their TCP state and the upstream's caches are warm), pending
// requests served in arrival order.

#include <list>

#include "common/logging.h"
#include "mesh/network/connection.h"
#include "mesh/upstream/cluster.h"
#include "mesh/upstream/conn_pool.h"
#include "mesh/upstream/host.h"
#include "mesh/upstream/pool_counters.h"

namespace ottava::mesh {

std::string_view ResetReasonName(ResetReason reason) {
  switch (reason) {
    case ResetReason::kConnectFailure:
      return "connect failure";
    case ResetReason::kOverflow:
      return "overflow";
    case ResetReason::kConnectionReset:
      return "upstream reset";
    case ResetReason::kProtocolError:
      return "upstream protocol error";
    case ResetReason::kLocalReset:
      return "local reset";
  }
  return "unknown";
}

namespace {

// Upstream output above this read-disables the downstream body source.
constexpr size_t kUpstreamWriteHighWatermark = 1024 * 1024;

class Http1Pool;

// One upstream connection and the stream it carries.
class ActiveClient : public DeferredDeletable,
                     public ReadHandler,
                     public ConnectionCallbacks,
                     public CodecOutput,
                     public ResponseDecoder,
                     public PoolStream {
 public:
  ActiveClient(Http1Pool& pool, Dispatcher& dispatcher, const Address& address);
  ~ActiveClient() override;

  // ReadHandler
  void OnData(Buffer& data, bool end_stream) override;
  // ConnectionCallbacks
  void OnEvent(ConnectionEvent event) override;
  void OnAboveWriteHighWatermark() override {
    if (callbacks_ != nullptr) {
      callbacks_->OnAboveWriteHighWatermark();
    }
  }
  void OnBelowWriteLowWatermark() override {
    if (callbacks_ != nullptr) {
      callbacks_->OnBelowWriteLowWatermark();
    }
  }
  // CodecOutput
  void Write(Buffer& data) override { connection_->Write(data); }
  // ResponseDecoder: forwards to the stream's owner and notices the end of the response.
  void Decode1xxHeaders(ResponseHeadersPtr headers) override {
    if (callbacks_ != nullptr) {
      callbacks_->Decode1xxHeaders(std::move(headers));
    }
  }
  void DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) override;
  void DecodeData(Buffer& data, bool end_stream) override;
  // PoolStream
  void Reset() override;
  void ReadDisable(bool disable) override {
    if (connection_->state() == Connection::State::kOpen) {
      connection_->ReadDisable(disable);
      read_disables_ += disable ? 1 : -1;
    }
  }

  void Attach(UpstreamCallbacks& callbacks);
  bool connected() const { return connected_; }
  Connection& connection() { return *connection_; }

  std::list<std::unique_ptr<ActiveClient>>::iterator self;
  enum class List : uint8_t { kConnecting, kIdle, kBusy } list = List::kConnecting;
  TimerPtr timer;  // connect timeout while connecting, idle timeout while idle

 private:
  void ResponseComplete();
  void Closed(ResetReason reason, std::string_view detail);

  Http1Pool& pool_;
  ConnectionPtr connection_;
  ClientCodecPtr codec_;
  UpstreamCallbacks* callbacks_ = nullptr;
  bool connected_ = false;
  bool done_pending_ = false;
  int read_disables_ = 0;
};

class Http1Pool : public ConnectionPool {
 public:
  Http1Pool(Dispatcher& dispatcher,
            std::shared_ptr<Host> host,
            const ClusterInfo& cluster,
            PoolUsage& usage)
      : dispatcher_(dispatcher), host_(std::move(host)), cluster_(cluster), usage_(usage) {}

  ~Http1Pool() override {
    // Streams still pending get no callback: their owners are gone first (worker shutdown).
    for (auto& pending : pending_) {
      (void)pending;
      counters_.PendingRemoved();
    }
    pending_.clear();
    for (auto* list : {&connecting_, &idle_, &busy_}) {
      for (auto& client : *list) {
        client->connection().RemoveCallbacks(*client);
        client->connection().Close(CloseType::kNoFlush);
      }
      while (!list->empty()) {
        counters_.ConnectionClosed();
        list->pop_front();
      }
    }
  }

  PoolStream* NewStream(UpstreamCallbacks& callbacks) override {
    if (usage_.requests >= cluster_.limits.max_requests) {
      return counters_.Overflow(callbacks, "max_requests");
    }
    if (!idle_.empty()) {
      ActiveClient* client = idle_.front().get();
      MoveTo(client, ActiveClient::List::kBusy);
      StartStream(*client, callbacks);
      return client;
    }
    bool can_connect = usage_.connections < cluster_.limits.max_connections && !draining_;
    // max_pending bounds requests queued behind busy connections. A request that gets a
    // connection of its own (opened for it now, or already opening with no earlier request
    // waiting for it) is not refused by it: before, max_pending 0 refused every request of a
    // pool without an idle connection, and since none could then ever open, the cluster only
    // answered 503 (found by mesh_router_test OverflowWhenTheOnlyConnectionIsBusy).
    bool own_connection = can_connect || connecting_.size() > pending_.size();
    if (!own_connection && usage_.pending >= cluster_.limits.max_pending) {
      return counters_.Overflow(callbacks, "max_connections and max_pending");
    }
    auto pending = std::make_unique<PendingStream>(*this, callbacks);
    PendingStream* handle = pending.get();
    pending_.push_back(std::move(pending));
    handle->self = std::prev(pending_.end());
    counters_.PendingAdded();
    // A connection already connecting will serve the oldest pending stream; open another only
    // when there are more pending streams than connections on the way.
    if (can_connect && connecting_.size() < pending_.size()) {
      Connect();
    }
    return handle;
  }

  bool Idle() const override {
    return pending_.empty() && connecting_.empty() && idle_.empty() && busy_.empty();
  }

  void Drain() override {
    draining_ = true;
    while (!idle_.empty()) {
      idle_.front()->connection().Close(CloseType::kNoFlush);
    }
  }

  size_t ConnectionCount() const override {
    return connecting_.size() + idle_.size() + busy_.size();
  }

  // Called by ActiveClient.
  void OnConnected(ActiveClient& client) {
    client.timer.reset();
    ServeOrIdle(client);
  }

  void OnResponseComplete(ActiveClient& client, bool reusable) {
    counters_.RequestEnded();
    if (!reusable || draining_) {
      client.connection().Close(CloseType::kNoFlush);
      return;
    }
    ServeOrIdle(client);
  }

  void OnStreamEnded() { counters_.RequestEnded(); }

  void OnClosed(ActiveClient& client, bool connect_failed) {
    if (connect_failed) {
      cluster_.stats.connect_failures->Inc();
    }
    auto& list = ListOf(client.list);
    std::unique_ptr<ActiveClient> owned = std::move(*client.self);
    list.erase(client.self);
    counters_.ConnectionClosed();
    dispatcher_.DeferredDelete(std::move(owned));
    if (connect_failed) {
      // Every pending stream beyond what the remaining connections can serve fails now: the
      // host refuses, and a retry may pick another one.
      while (pending_.size() > connecting_.size()) {
        FailPending(ResetReason::kConnectFailure,
                    "connection to " + host_->address_string() + " failed");
      }
    } else if (pending_.size() > connecting_.size() && !draining_ &&
               usage_.connections < cluster_.limits.max_connections) {
      Connect();
    }
  }

  const ClusterInfo& cluster() const { return cluster_; }
  Dispatcher& dispatcher() { return dispatcher_; }
  const Host& host() const { return *host_; }

 private:
  class PendingStream : public PoolStream {
   public:
    PendingStream(Http1Pool& pool, UpstreamCallbacks& owner) : pool_(pool), callbacks(owner) {}
    void Reset() override { pool_.CancelPending(*this); }
    void ReadDisable(bool) override {}
    std::list<std::unique_ptr<PendingStream>>::iterator self;

   private:
    Http1Pool& pool_;

   public:
    UpstreamCallbacks& callbacks;
  };

  void Connect() {
    auto client = std::make_unique<ActiveClient>(*this, dispatcher_, host_->address());
    ActiveClient* raw = client.get();
    connecting_.push_back(std::move(client));
    raw->self = std::prev(connecting_.end());
    raw->list = ActiveClient::List::kConnecting;
    counters_.ConnectionOpened();
    raw->timer = ArmConnectTimeout(dispatcher_, cluster_, raw);
  }

  void ServeOrIdle(ActiveClient& client) {
    if (!pending_.empty()) {
      std::unique_ptr<PendingStream> pending = std::move(pending_.front());
      pending_.pop_front();
      counters_.PendingRemoved();
      MoveTo(&client, ActiveClient::List::kBusy);
      StartStream(client, pending->callbacks);
      return;
    }
    MoveTo(&client, ActiveClient::List::kIdle);
    ActiveClient* raw = &client;
    client.timer = dispatcher_.CreateTimer([raw] { raw->connection().Close(CloseType::kNoFlush); });
    client.timer->Enable(cluster_.limits.idle_timeout);
  }

  void StartStream(ActiveClient& client, UpstreamCallbacks& callbacks) {
    client.timer.reset();
    counters_.RequestStarted();
    client.Attach(callbacks);
  }

  void CancelPending(PendingStream& pending) {
    pending_.erase(pending.self);
    counters_.PendingRemoved();
  }

  void FailPending(ResetReason reason, const std::string& detail) {
    std::unique_ptr<PendingStream> pending = std::move(pending_.front());
    pending_.pop_front();
    counters_.PendingRemoved();
    pending->callbacks.OnReset(reason, detail);
  }

  std::list<std::unique_ptr<ActiveClient>>& ListOf(ActiveClient::List list) {
    switch (list) {
      case ActiveClient::List::kConnecting:
        return connecting_;
      case ActiveClient::List::kIdle:
        return idle_;
      case ActiveClient::List::kBusy:
        return busy_;
    }
    return busy_;
  }

  void MoveTo(ActiveClient* client, ActiveClient::List to) {
    auto& from_list = ListOf(client->list);
    auto& to_list = ListOf(to);
    // Most recently used first for idle connections.
    auto position = to == ActiveClient::List::kIdle ? to_list.begin() : to_list.end();
    to_list.splice(position, from_list, client->self);
    client->list = to;
  }

  Dispatcher& dispatcher_;
  std::shared_ptr<Host> host_;
  const ClusterInfo& cluster_;
  PoolUsage& usage_;
  PoolCounters counters_{cluster_, *host_, usage_};
  bool draining_ = false;
  std::list<std::unique_ptr<PendingStream>> pending_;
  std::list<std::unique_ptr<ActiveClient>> connecting_;
  std::list<std::unique_ptr<ActiveClient>> idle_;
  std::list<std::unique_ptr<ActiveClient>> busy_;
};

ActiveClient::ActiveClient(Http1Pool& pool, Dispatcher& dispatcher, const Address& address)
    : pool_(pool), connection_(CreateClientConnection(dispatcher, address)) {
  connection_->SetFramesPerWritevHistogram(pool_.cluster().stats.frames_per_writev);
  connection_->SetReadHandler(this);
  connection_->AddCallbacks(*this);
  connection_->SetWriteBufferLimit(kUpstreamWriteHighWatermark);
  codec_ = pool_.cluster().codec->CreateClientCodec(*this, pool_.cluster().codec_options);
}

ActiveClient::~ActiveClient() {
  if (connection_->state() != Connection::State::kClosed) {
    connection_->RemoveCallbacks(*this);
    connection_->Close(CloseType::kNoFlush);
  }
}

void ActiveClient::Attach(UpstreamCallbacks& callbacks) {
  callbacks_ = &callbacks;
  done_pending_ = false;
  RequestEncoder& encoder = codec_->NewStream(*this);
  callbacks.OnPoolReady(encoder, *const_cast<Host*>(&pool_.host()), *this);
}

void ActiveClient::OnData(Buffer& data, bool end_stream) {
  absl::Status status = codec_->Dispatch(data);
  if (status.ok() && end_stream && connection_->state() == Connection::State::kOpen) {
    status = codec_->DispatchEof();
  }
  if (done_pending_) {
    // The response ended inside Dispatch; hand the connection back only now that the codec has
    // returned, so a next stream never starts inside the previous one's parse.
    done_pending_ = false;
    if (connection_->state() == Connection::State::kClosed) {
      // The stream's owner reset it inside Dispatch (a 5xx it retries elsewhere) and the codec
      // went on parsing the rest of the response: the request already ended in Reset() and the
      // pool has dropped this client, so handing it back would double-count and corrupt the lists.
      return;
    }
    bool reusable = status.ok() && !end_stream && !codec_->WantsClose() &&
                    connection_->BufferedBytes() == 0 && data.Empty();
    pool_.OnResponseComplete(*this, reusable);
    return;
  }
  if (!status.ok()) {
    data.Drain(data.Length());
    UpstreamCallbacks* callbacks = callbacks_;
    callbacks_ = nullptr;
    connection_->Close(CloseType::kNoFlush);  // OnEvent(kLocalClose) sees no stream
    if (callbacks != nullptr) {
      pool_.OnStreamEnded();
      pool_.cluster().stats.resets->Inc();
      callbacks->OnReset(ResetReason::kProtocolError, std::string(status.message()));
    }
  }
}

void ActiveClient::DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) {
  UpstreamCallbacks* callbacks = callbacks_;
  if (end_stream) {
    ResponseComplete();
  }
  if (callbacks != nullptr) {
    callbacks->DecodeHeaders(std::move(headers), end_stream);
  }
}

void ActiveClient::DecodeData(Buffer& data, bool end_stream) {
  UpstreamCallbacks* callbacks = callbacks_;
  if (end_stream) {
    ResponseComplete();
  }
  if (callbacks != nullptr) {
    callbacks->DecodeData(data, end_stream);
  } else {
    data.Drain(data.Length());
  }
}

void ActiveClient::ResponseComplete() {
  callbacks_ = nullptr;
  done_pending_ = true;
  // ReadDisable() ignores a closed connection (reset mid-response): stop there rather than spin.
  while (read_disables_ > 0 && connection_->state() == Connection::State::kOpen) {
    ReadDisable(false);
  }
}

void ActiveClient::Reset() {
  if (callbacks_ == nullptr) {
    return;
  }
  callbacks_ = nullptr;
  pool_.OnStreamEnded();
  connection_->Close(CloseType::kNoFlush);
}

void ActiveClient::OnEvent(ConnectionEvent event) {
  switch (event) {
    case ConnectionEvent::kConnected:
      connected_ = true;
      pool_.OnConnected(*this);
      return;
    case ConnectionEvent::kConnectFailed:
      Closed(ResetReason::kConnectFailure,
             "connection to " + pool_.host().address_string() + " failed");
      return;
    case ConnectionEvent::kRemoteClose:
    case ConnectionEvent::kLocalClose:
      Closed(ResetReason::kConnectionReset,
             "upstream " + pool_.host().address_string() + " closed the connection");
      return;
  }
}

void ActiveClient::Closed(ResetReason reason, std::string_view detail) {
  bool connect_failed = !connected_;
  UpstreamCallbacks* callbacks = callbacks_;
  callbacks_ = nullptr;
  if (callbacks != nullptr) {
    pool_.OnStreamEnded();
    if (!connect_failed) {
      pool_.cluster().stats.resets->Inc();
    }
  }
  std::string text(detail);
  pool_.OnClosed(*this, connect_failed);  // schedules our deletion
  if (callbacks != nullptr) {
    callbacks->OnReset(connect_failed ? ResetReason::kConnectFailure : reason, text);
  }
}

}  // namespace

ConnectionPoolPtr CreateHttp1ConnectionPool(Dispatcher& dispatcher,
                                            std::shared_ptr<Host> host,
                                            const ClusterInfo& cluster,
                                            PoolUsage& usage) {
  return std::make_unique<Http1Pool>(dispatcher, std::move(host), cluster, usage);
}

}  // namespace ottava::mesh
