// The multiplexed pool (Bolt): per worker and host, up to connections_per_host connections, each
// carrying any number of streams. A stream goes to the connected connection with the fewest
// streams; while none is connected it waits (bounded by max_pending). A stream abandoned by its
// owner (timeout, downstream gone) is cancelled in the codec: its connection stays, and a late
// answer is dropped and counted. A connection that closes fails every stream on it. Idle
// connections are probed with heartbeats; three probes in a row without an answer close one.

#include <algorithm>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "common/free_list.h"
#include "common/logging.h"
#include "mesh/network/connection.h"
#include "mesh/upstream/cluster.h"
#include "mesh/upstream/conn_pool.h"
#include "mesh/upstream/host.h"
#include "mesh/upstream/pool_counters.h"

namespace ottava::mesh {
namespace {

constexpr size_t kUpstreamWriteHighWatermark = 4 * 1024 * 1024;
constexpr int kMaxMissedHeartbeats = 3;

class MuxPool;
class MuxClient;
class MuxStream;
// Nodes from the thread's free list (one per request).
using MuxStreamList =
    std::list<std::unique_ptr<MuxStream>, PooledAllocator<std::unique_ptr<MuxStream>>>;

// One request on the pool: pending (no connection yet) or attached to a connection.
class MuxStream : public DeferredDeletable, public PoolStream, public ResponseDecoder {
 public:
  MuxStream(MuxPool& pool, UpstreamCallbacks& callbacks) : pool_(pool), callbacks_(&callbacks) {}
  OTTAVA_POOLED_NEW(MuxStream)

  // PoolStream
  void Reset() override;
  void ReadDisable(bool) override {}  // one stream of many: the connection keeps reading

  // ResponseDecoder
  void DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) override;
  void DecodeData(Buffer& data, bool end_stream) override;

  UpstreamCallbacks* callbacks() { return callbacks_; }
  /// Detaches the owner: nothing more reaches it (its stream failed with the connection).
  UpstreamCallbacks* TakeCallbacks() {
    UpstreamCallbacks* callbacks = callbacks_;
    callbacks_ = nullptr;
    return callbacks;
  }
  MuxClient* client = nullptr;
  bool released = false;
  bool backpressured = false;  // told its connection's output is above the high watermark
  uint64_t id = 0;
  MuxStreamList::iterator self;  // in the pool's list

 private:
  void Complete();

  MuxPool& pool_;
  UpstreamCallbacks* callbacks_;
};

// One upstream connection.
class MuxClient : public DeferredDeletable,
                  public ReadHandler,
                  public ConnectionCallbacks,
                  public CodecOutput {
 public:
  MuxClient(MuxPool& pool, Dispatcher& dispatcher, const Address& address);
  ~MuxClient() override;

  void OnData(Buffer& data, bool end_stream) override;
  void OnEvent(ConnectionEvent event) override;
  void OnAboveWriteHighWatermark() override;
  void OnBelowWriteLowWatermark() override;
  void Write(Buffer& data) override { connection_->Write(data); }
  void WriteFrame(absl::FunctionRef<void(Buffer&)> encode) override {
    connection_->WriteFrame(encode);
  }

  Connection& connection() { return *connection_; }
  MultiplexClientCodec& codec() { return *codec_; }
  bool connected() const { return connected_; }
  bool closed() const { return closed_; }
  size_t streams = 0;       // attached streams
  bool above_high = false;  // output above the high watermark: its streams' sources are paused
  std::list<std::unique_ptr<MuxClient>>::iterator self;
  TimerPtr connect_timer;
  TimerPtr idle_timer;       // closes the connection after idle_timeout without streams
  TimerPtr heartbeat_timer;  // probes while idle
  int missed_heartbeats = 0;
  bool heartbeat_outstanding = false;

 private:
  MuxPool& pool_;
  ConnectionPtr connection_;
  MultiplexClientCodecPtr codec_;
  bool connected_ = false;
  bool closed_ = false;
};

class MuxPool : public ConnectionPool {
 public:
  MuxPool(Dispatcher& dispatcher,
          std::shared_ptr<Host> host,
          const ClusterInfo& cluster,
          PoolUsage& usage)
      : dispatcher_(dispatcher), host_(std::move(host)), cluster_(cluster), usage_(usage) {}

  ~MuxPool() override {
    // Owners are gone first (worker shutdown): no callbacks.
    for (auto& stream : streams_) {
      if (stream->client == nullptr) {
        counters_.PendingRemoved();
      } else {
        counters_.RequestEnded();
      }
    }
    streams_.clear();
    for (auto& client : clients_) {
      client->connection().RemoveCallbacks(*client);
      client->connection().Close(CloseType::kNoFlush);
      counters_.ConnectionClosed();
    }
    clients_.clear();
  }

  PoolStream* NewStream(UpstreamCallbacks& callbacks) override {
    if (usage_.requests >= cluster_.limits.max_requests) {
      return counters_.Overflow(callbacks, "max_requests");
    }
    const bool can_connect = !draining_ && clients_.size() < cluster_.limits.connections_per_host &&
                             usage_.connections < cluster_.limits.max_connections;
    MuxClient* target = LeastLoadedConnected();
    if (can_connect && (target == nullptr || target->streams > 0)) {
      Connect();  // connections open up to connections_per_host as load arrives
    }
    if (target == nullptr) {
      const bool connecting = std::any_of(clients_.begin(), clients_.end(),
                                          [](const auto& c) { return !c->connected(); });
      if (!connecting) {
        return counters_.Overflow(callbacks, "max_connections");
      }
      if (usage_.pending >= cluster_.limits.max_pending && pending_count_ > 0) {
        return counters_.Overflow(callbacks, "max_pending");
      }
    }
    auto owned = std::make_unique<MuxStream>(*this, callbacks);
    MuxStream* stream = owned.get();
    streams_.push_back(std::move(owned));
    stream->self = std::prev(streams_.end());
    if (target != nullptr) {
      Attach(*stream, *target);
    } else {
      ++pending_count_;
      counters_.PendingAdded();
    }
    return stream;
  }

  bool Idle() const override { return streams_.empty() && clients_.empty(); }

  void Drain() override {
    draining_ = true;
    std::vector<MuxClient*> idle;
    for (auto& client : clients_) {
      if (client->streams == 0) {
        idle.push_back(client.get());
      }
    }
    for (MuxClient* client : idle) {
      client->connection().Close(CloseType::kNoFlush);
    }
  }

  size_t ConnectionCount() const override { return clients_.size(); }

  // ---- called by MuxClient and MuxStream.

  void OnConnected(MuxClient& client) {
    client.connect_timer.reset();
    // Every pending stream goes to the connected connections, least loaded first. Collected
    // first: attaching runs the owner's code, which may end or reset other streams.
    std::vector<MuxStream*> pending;
    for (auto& stream : streams_) {
      if (stream->client == nullptr) {
        pending.push_back(stream.get());
      }
    }
    for (MuxStream* stream : pending) {
      if (stream->released || stream->client != nullptr || client.closed()) {
        continue;
      }
      MuxClient* target = LeastLoadedConnected();
      --pending_count_;
      counters_.PendingRemoved();
      Attach(*stream, target != nullptr ? *target : client);
    }
    if (!client.closed() && client.streams == 0) {
      OnClientIdle(client);
    }
  }

  void OnStreamComplete(MuxStream& stream) {
    MuxClient* client = stream.client;
    counters_.RequestEnded();
    Release(stream);
    if (client != nullptr && !client->closed()) {
      --client->streams;
      if (client->streams == 0) {
        if (draining_) {
          client->connection().Close(CloseType::kNoFlush);
        } else {
          OnClientIdle(*client);
        }
      }
    }
  }

  void OnStreamReset(MuxStream& stream) {
    MuxClient* client = stream.client;
    if (client == nullptr) {
      --pending_count_;
      counters_.PendingRemoved();
      Release(stream);
      return;
    }
    client->codec().CancelStream(stream.id);
    OnStreamComplete(stream);
  }

  void OnClosed(MuxClient& client, ResetReason reason, const std::string& detail) {
    const bool connect_failed = !client.connected();
    if (connect_failed) {
      cluster_.stats.connect_failures->Inc();
    }
    // Fail the streams on this connection (and, when no other connection can serve them, the
    // pending ones). Collect first: callbacks may start new streams on this pool.
    std::vector<MuxStream*> failed;
    const bool others_alive =
        std::any_of(clients_.begin(), clients_.end(),
                    [&client](const auto& c) { return c.get() != &client && !c->closed(); });
    for (auto& stream : streams_) {
      if (stream->client == &client || (stream->client == nullptr && !others_alive)) {
        failed.push_back(stream.get());
      }
    }
    std::unique_ptr<MuxClient> owned = std::move(*client.self);
    clients_.erase(client.self);
    counters_.ConnectionClosed();
    dispatcher_.DeferredDelete(std::move(owned));
    std::vector<UpstreamCallbacks*> callbacks;
    for (MuxStream* stream : failed) {
      if (stream->client == nullptr) {
        --pending_count_;
        counters_.PendingRemoved();
      } else {
        counters_.RequestEnded();
        if (!connect_failed) {
          cluster_.stats.resets->Inc();
        }
      }
      callbacks.push_back(stream->TakeCallbacks());
      Release(*stream);
    }
    const ResetReason why = connect_failed ? ResetReason::kConnectFailure : reason;
    for (UpstreamCallbacks* cb : callbacks) {
      if (cb != nullptr) {
        cb->OnReset(why, detail);
      }
    }
  }

  void OnHeartbeatDue(MuxClient& client) {
    if (client.heartbeat_outstanding) {
      if (++client.missed_heartbeats >= kMaxMissedHeartbeats) {
        OTTAVA_LOG(Mesh, warn, "upstream {} missed {} heartbeats in a row; closing the connection",
                   host_->address_string(), client.missed_heartbeats);
        client.connection().Close(CloseType::kNoFlush);
        return;
      }
    }
    client.heartbeat_outstanding = true;
    MuxClient* raw = &client;
    client.codec().SendHeartbeat([raw] {
      raw->heartbeat_outstanding = false;
      raw->missed_heartbeats = 0;
    });
    client.heartbeat_timer->Enable(cluster_.limits.heartbeat_interval);
  }

  const ClusterInfo& cluster() const { return cluster_; }
  const Host& host() const { return *host_; }

 private:
  MuxClient* LeastLoadedConnected() {
    MuxClient* best = nullptr;
    for (auto& client : clients_) {
      if (client->connected() && !client->closed() &&
          (best == nullptr || client->streams < best->streams)) {
        best = client.get();
      }
    }
    return best;
  }

  void Connect() {
    auto client = std::make_unique<MuxClient>(*this, dispatcher_, host_->address());
    MuxClient* raw = client.get();
    clients_.push_back(std::move(client));
    raw->self = std::prev(clients_.end());
    counters_.ConnectionOpened();
    raw->connect_timer = ArmConnectTimeout(dispatcher_, cluster_, raw);
  }

 public:
  // Write backpressure, as Envoy's: while a connection's output is above its high watermark,
  // every stream on it pauses the downstream it reads from (the router read-disables it); below
  // the low watermark they resume. A stream that completes meanwhile restores its own reads.
  void OnClientAboveHigh(MuxClient& client) {
    client.above_high = true;
    for (auto& stream : streams_) {
      if (stream->client == &client) {
        Backpressure(*stream);
      }
    }
  }
  void OnClientBelowLow(MuxClient& client) {
    client.above_high = false;
    for (auto& stream : streams_) {
      if (stream->client == &client && stream->backpressured) {
        stream->backpressured = false;
        if (UpstreamCallbacks* callbacks = stream->callbacks()) {
          callbacks->OnBelowWriteLowWatermark();
        }
      }
    }
  }
  static void Backpressure(MuxStream& stream) {
    if (!stream.backpressured && stream.callbacks() != nullptr) {
      stream.backpressured = true;
      stream.callbacks()->OnAboveWriteHighWatermark();
    }
  }

 private:
  void Attach(MuxStream& stream, MuxClient& client) {
    stream.client = &client;
    ++client.streams;
    // Disarmed, not destroyed: a request must not cost a timer allocation.
    if (client.idle_timer != nullptr) {
      client.idle_timer->Disable();
    }
    if (client.heartbeat_timer != nullptr) {
      client.heartbeat_timer->Disable();
    }
    counters_.RequestStarted();
    RequestEncoder& encoder = client.codec().NewStream(stream);
    stream.id = client.codec().LastStreamId();
    UpstreamCallbacks* callbacks = stream.callbacks();
    if (client.above_high) {
      Backpressure(stream);
    }
    callbacks->OnPoolReady(encoder, *host_, stream);
  }

  void OnClientIdle(MuxClient& client) {
    MuxClient* raw = &client;
    if (client.idle_timer == nullptr) {
      client.idle_timer =
          dispatcher_.CreateTimer([raw] { raw->connection().Close(CloseType::kNoFlush); });
    }
    client.idle_timer->Enable(cluster_.limits.idle_timeout);
    if (cluster_.limits.heartbeat_interval.count() > 0) {
      if (client.heartbeat_timer == nullptr) {
        client.heartbeat_timer = dispatcher_.CreateTimer([this, raw] { OnHeartbeatDue(*raw); });
      }
      client.heartbeat_timer->Enable(cluster_.limits.heartbeat_interval);
    }
  }

  void Release(MuxStream& stream) {
    std::unique_ptr<MuxStream> owned = std::move(*stream.self);
    streams_.erase(stream.self);
    owned->client = nullptr;
    owned->released = true;
    dispatcher_.DeferredDelete(std::move(owned));
  }

  Dispatcher& dispatcher_;
  std::shared_ptr<Host> host_;
  const ClusterInfo& cluster_;
  PoolUsage& usage_;
  PoolCounters counters_{cluster_, *host_, usage_};
  bool draining_ = false;
  size_t pending_count_ = 0;
  MuxStreamList streams_;
  std::list<std::unique_ptr<MuxClient>> clients_;
};

void MuxClient::OnAboveWriteHighWatermark() {
  pool_.OnClientAboveHigh(*this);
}
void MuxClient::OnBelowWriteLowWatermark() {
  pool_.OnClientBelowLow(*this);
}

void MuxStream::Reset() {
  if (callbacks_ == nullptr) {
    return;
  }
  callbacks_ = nullptr;
  pool_.OnStreamReset(*this);
}

void MuxStream::DecodeHeaders(ResponseHeadersPtr headers, bool end_stream) {
  UpstreamCallbacks* callbacks = callbacks_;
  if (end_stream) {
    Complete();
  }
  if (callbacks != nullptr) {
    callbacks->DecodeHeaders(std::move(headers), end_stream);
  }
}

void MuxStream::DecodeData(Buffer& data, bool end_stream) {
  UpstreamCallbacks* callbacks = callbacks_;
  if (end_stream) {
    Complete();
  }
  if (callbacks != nullptr) {
    callbacks->DecodeData(data, end_stream);
  } else {
    data.Drain(data.Length());
  }
}

void MuxStream::Complete() {
  if (callbacks_ == nullptr) {
    return;
  }
  callbacks_ = nullptr;
  pool_.OnStreamComplete(*this);  // deferred deletion: this object lives to the end of the call
}

MuxClient::MuxClient(MuxPool& pool, Dispatcher& dispatcher, const Address& address)
    : pool_(pool), connection_(CreateClientConnection(dispatcher, address)) {
  connection_->SetFramesPerWritevHistogram(pool_.cluster().stats.frames_per_writev);
  connection_->SetReadHandler(this);
  connection_->AddCallbacks(*this);
  connection_->SetWriteBufferLimit(kUpstreamWriteHighWatermark);
  ClientCodecPtr codec =
      pool_.cluster().codec->CreateClientCodec(*this, pool_.cluster().codec_options);
  codec_.reset(static_cast<MultiplexClientCodec*>(codec.release()));
}

MuxClient::~MuxClient() {
  if (connection_->state() != Connection::State::kClosed) {
    connection_->RemoveCallbacks(*this);
    connection_->Close(CloseType::kNoFlush);
  }
}

void MuxClient::OnData(Buffer& data, bool end_stream) {
  absl::Status status = codec_->Dispatch(data);
  if (closed_) {
    return;
  }
  if (status.ok() && end_stream) {
    status = codec_->DispatchEof();
  }
  if (!status.ok()) {
    data.Drain(data.Length());
    OTTAVA_LOG(Mesh, warn, "upstream {}: {}", pool_.host().address_string(), status.message());
    pool_.cluster().stats.resets->Inc();
    connection_->Close(CloseType::kNoFlush);
  }
}

void MuxClient::OnEvent(ConnectionEvent event) {
  switch (event) {
    case ConnectionEvent::kConnected:
      connected_ = true;
      pool_.OnConnected(*this);
      return;
    case ConnectionEvent::kConnectFailed:
    case ConnectionEvent::kRemoteClose:
    case ConnectionEvent::kLocalClose: {
      if (closed_) {
        return;
      }
      closed_ = true;
      connect_timer.reset();
      idle_timer.reset();
      heartbeat_timer.reset();
      const std::string detail =
          connected_ ? "upstream " + pool_.host().address_string() + " closed the connection"
                     : "connection to " + pool_.host().address_string() + " failed";
      pool_.OnClosed(*this, ResetReason::kConnectionReset, detail);  // schedules our deletion
      return;
    }
  }
}

}  // namespace

ConnectionPoolPtr CreateMultiplexConnectionPool(Dispatcher& dispatcher,
                                                std::shared_ptr<Host> host,
                                                const ClusterInfo& cluster,
                                                PoolUsage& usage) {
  return std::make_unique<MuxPool>(dispatcher, std::move(host), cluster, usage);
}

}  // namespace ottava::mesh
