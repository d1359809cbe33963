#pragma once

// The L7 connection manager of one downstream connection (as Envoy's HTTP connection manager):
// bytes → server codec → one ActiveStream per request → Router → upstream, and the response back
// through the codec. It enforces the listener's header and idle timeouts, answers pipelined
// requests in order, honours Connection: close and draining, and closes on protocol errors
// after the codec's error reply is written. With a multiplexed codec (Bolt) many streams are open
// at once and each answers as soon as its response is there; the header timeout then bounds how
// long a partly received frame may wait for its remaining bytes.
//
// Threading: worker thread only. Owned by the worker's list of connections; destroyed through
// Dispatcher::DeferredDelete once its connection has closed.

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "common/free_list.h"
#include "common/stats.h"
#include "mesh/codec/codec.h"
#include "mesh/network/connection.h"
#include "mesh/router/router.h"
#include "mesh/router/snapshot.h"

namespace ottava::mesh {

/// Metrics of one listener, labelled {listener="name"}.
struct ListenerStats {
  stats::Counter* connections_total = nullptr;
  stats::Gauge* connections_active = nullptr;
  stats::Counter* requests = nullptr;
  stats::Counter* responses[6] = {};  // by class
  stats::Counter* protocol_errors = nullptr;
  stats::Counter* header_timeouts = nullptr;
  stats::Counter* idle_timeouts = nullptr;
  stats::Counter* heartbeats = nullptr;           // protocol heartbeats answered by the mesh
  stats::Histogram* frames_per_writev = nullptr;  // downstream frames sent per flush

  /// `protocol` is the listener's ("http1", "bolt", "dubbo"), a label on every metric.
  static ListenerStats Create(stats::Store& store,
                              const std::string& listener,
                              std::string_view protocol);
};

/// What a connection manager needs from its worker and listener.
class ConnectionManagerContext {
 public:
  virtual ~ConnectionManagerContext() = default;
  virtual RouterContext& router_context() = 0;
  /// The worker's current snapshot (a new request takes it; it keeps it to the end).
  virtual MeshSnapshotConstSharedPtr snapshot() = 0;
  /// The connection closed; the owner removes and defer-deletes `manager`.
  virtual void OnConnectionClosed(class ConnectionManager& manager) = 0;
};

struct ConnectionManagerConfig {
  std::string listener;  // name, for stats
  std::string router;    // router name in the snapshot
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds header_timeout{10000};
  const CodecFactory* codec = nullptr;
  CodecOptions codec_options;
  ListenerStats* stats = nullptr;
};

class ConnectionManager : public DeferredDeletable,
                          public ReadHandler,
                          public ConnectionCallbacks,
                          public CodecOutput,
                          public ServerCodecCallbacks {
 public:
  /// `migrated`: the connection came from the previous process on upgrade (not counted as an
  /// accepted connection of the listener).
  ConnectionManager(ConnectionManagerContext& context,
                    const ConnectionManagerConfig& config,
                    ConnectionPtr connection,
                    bool migrated = false);
  ~ConnectionManager() override;

  /// Receives a migrating connection's socket and the bytes read from it but not decoded.
  using MigrateCallback = std::function<void(ConnectionManager&, int fd, std::string unread)>;
  /// Upgrade, multiplexed codecs only (Bolt, Dubbo): stops reading at once, which is at a frame
  /// boundary (the codec decodes every whole frame as it arrives; a partial one stays in the
  /// input). Once every request in flight is answered and the output is written, `ready` gets the
  /// socket and the undecoded bytes; this manager is then closed without touching the socket and
  /// the owner removes it as for any close. A close before that (the peer left, a reset) ends the
  /// migration as an ordinary close.
  void StartMigration(MigrateCallback ready);
  const ConnectionManagerConfig& config() const { return config_; }

  /// Responses from now on ask the client to close; an idle connection closes at once unless
  /// `close_idle` is false (upgrade: it closes after its next response, or at the drain deadline).
  void StartDraining(bool close_idle = true);
  Connection& connection() { return *connection_; }

  // ReadHandler
  void OnData(Buffer& data, bool end_stream) override;
  // ConnectionCallbacks
  void OnEvent(ConnectionEvent event) override;
  void OnAboveWriteHighWatermark() override;
  void OnBelowWriteLowWatermark() override;
  // CodecOutput
  void Write(Buffer& data) override { connection_->Write(data); }
  void WriteFrame(absl::FunctionRef<void(Buffer&)> encode) override {
    connection_->WriteFrame(encode);
  }
  // ServerCodecCallbacks
  RequestDecoder& NewStream(ResponseEncoder& encoder, uint64_t stream_id) override;
  void OnHeartbeat() override {
    if (config_.stats->heartbeats != nullptr) {
      config_.stats->heartbeats->Inc();
    }
  }

  std::list<std::unique_ptr<ConnectionManager>>::iterator self;

 private:
  class ActiveStream;

  void OnStreamComplete(ActiveStream& stream, bool request_complete);
  void DispatchBuffered();
  void ArmHeaderTimer();
  static void DisableTimer(const TimerPtr& timer) {
    if (timer != nullptr) {
      timer->Disable();
    }
  }
  void ArmIdleTimer();
  void OnIdleTimeout();
  void OnHeaderTimeout();
  void CloseConnection(CloseType type);
  void CheckMigrationDone();

  ConnectionManagerContext& context_;
  const ConnectionManagerConfig& config_;
  ConnectionPtr connection_;
  ServerCodecPtr codec_;
  // HTTP/1.1: at most one, answered in order; multiplexed codecs (Bolt): any number at once.
  // Nodes from the thread's free list (one per request).
  using StreamList =
      std::list<std::unique_ptr<ActiveStream>, PooledAllocator<std::unique_ptr<ActiveStream>>>;
  StreamList streams_;
  const bool multiplexed_;
  TimerPtr idle_timer_;
  TimerPtr header_timer_;
  Buffer* read_buffer_ = nullptr;  // the connection's input, kept for pipelined requests
  bool draining_ = false;
  bool graceful_drain_ = false;  // upgrade: idle connections stay, see StartDraining
  bool closed_ = false;
  bool dispatch_posted_ = false;
  bool write_above_high_ = false;
  MigrateCallback migrate_;  // set while migrating
  TimerPtr migrate_timer_;   // polls for the output to drain once the streams are done
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace ottava::mesh
