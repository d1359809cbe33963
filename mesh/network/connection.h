#pragma once

// A non-blocking TCP connection on one worker's Dispatcher (as Envoy's Network::Connection).
// Reads arrive in a Buffer handed to the ReadHandler; writes are queued and flushed with one
// writev per loop iteration, so every frame a request produces leaves in a single syscall.
//
// Threading: created, used and destroyed on its dispatcher's thread only. A connection that
// closes itself from a callback is destroyed through Dispatcher::DeferredDelete by its owner.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "common/address.h"
#include "common/dispatcher.h"
#include "common/stats.h"
#include "mesh/network/buffer.h"

namespace ottava::mesh {

enum class ConnectionEvent : uint8_t {
  kConnected,      // a client connection finished connecting
  kConnectFailed,  // a client connection could not connect (refused, unreachable)
  kRemoteClose,    // the peer closed or reset; the socket is closed
  kLocalClose,     // Close() was called and the socket is now closed
};

enum class CloseType : uint8_t {
  kFlushWrite,  // write what is queued first (bounded by the flush timeout), then close
  kNoFlush,     // close at once, discarding queued bytes
};

/// Receives a connection's events. Called on the connection's worker thread.
class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  virtual void OnEvent(ConnectionEvent event) = 0;
  /// The queued output went above the high watermark: stop producing (read-disable the source).
  virtual void OnAboveWriteHighWatermark() {}
  /// The queued output drained below the low watermark: produce again.
  virtual void OnBelowWriteLowWatermark() {}
};

/// Receives bytes read from a connection.
class ReadHandler {
 public:
  virtual ~ReadHandler() = default;
  /// `data` holds everything read and not yet consumed; the handler drains what it used.
  /// `end_stream` when the peer closed its side after these bytes.
  virtual void OnData(Buffer& data, bool end_stream) = 0;
};

class Connection : public DeferredDeletable {
 public:
  enum class State : uint8_t { kConnecting, kOpen, kClosing, kClosed };

  /// Process-unique id (for logs and the upgrade hand-off).
  virtual uint64_t id() const = 0;
  virtual State state() const = 0;
  virtual Dispatcher& dispatcher() = 0;
  /// The peer's address (downstream: the client; upstream: the host).
  virtual const Address& remote_address() const = 0;

  /// Who receives read bytes; set before the first read. Not owned.
  virtual void SetReadHandler(ReadHandler* handler) = 0;
  /// Adds a receiver of events; it must outlive the connection or be removed first.
  virtual void AddCallbacks(ConnectionCallbacks& callbacks) = 0;
  virtual void RemoveCallbacks(ConnectionCallbacks& callbacks) = 0;

  /// Queues every byte of `data` (moves them out) and flushes before the loop sleeps again.
  virtual void Write(Buffer& data) = 0;
  /// As Write, for one frame that `encode` appends straight onto the output queue it is handed
  /// (no intermediate buffer to fill and move). `encode` only appends.
  virtual void WriteFrame(absl::FunctionRef<void(Buffer&)> encode) = 0;
  /// Bytes queued and not yet written.
  virtual size_t BufferedBytes() const = 0;
  /// Output above `high` bytes raises the high-watermark callback; below half of it, the low one.
  virtual void SetWriteBufferLimit(size_t high) = 0;
  /// Where each flush records how many Write() calls (codec frames) it sent at once; the batching
  /// of a loop pass made visible. Not owned; null (the default) records nothing.
  virtual void SetFramesPerWritevHistogram(stats::Histogram* histogram) = 0;

  /// Stops (true) or resumes (false) reading. Calls nest: every disable needs an enable.
  virtual void ReadDisable(bool disable) = 0;
  virtual bool ReadEnabled() const = 0;

  /// Closes. Callbacks get kLocalClose once the socket is closed (at once for kNoFlush).
  virtual void Close(CloseType type) = 0;

  /// Detaches and returns the socket fd, leaving the connection closed without raising events
  /// (the hot-upgrade migration of a downstream connection). `unread`, when not null, receives
  /// the bytes read from the socket and not consumed by the read handler; queued output is
  /// dropped (the caller waits for BufferedBytes() == 0 first). -1 when already closed.
  virtual int ReleaseFd(std::string* unread) = 0;
};
using ConnectionPtr = std::unique_ptr<Connection>;

/// Buckets of the frames-per-writev histograms.
inline std::vector<double> FramesPerWritevBounds() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256};
}

/// Wraps an accepted, connected socket. Takes ownership of `fd`. `unread` are bytes read from
/// the socket before (by the previous process, on upgrade): the read handler gets them first, on
/// the loop, before anything read from the socket.
ConnectionPtr CreateServerConnection(Dispatcher& dispatcher,
                                     int fd,
                                     const Address& remote,
                                     std::string unread = {});

/// Starts a non-blocking connect to `address`; the outcome arrives as kConnected or
/// kConnectFailed. A failure to even create the socket also arrives as kConnectFailed (posted).
ConnectionPtr CreateClientConnection(Dispatcher& dispatcher, const Address& address);

}  // namespace ottava::mesh
