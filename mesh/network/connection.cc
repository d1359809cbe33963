#include "mesh/network/connection.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <utility>
#include <vector>

#include "common/assert.h"

namespace ottava::mesh {
namespace {

std::atomic<uint64_t> next_connection_id{1};

// How much one read event may take before yielding to other connections on the loop.
constexpr size_t kMaxReadPerEvent = 1024 * 1024;
// How long a kFlushWrite close waits for a peer that does not read.
constexpr std::chrono::milliseconds kFlushTimeout(5000);

class ConnectionImpl : public Connection {
 public:
  ConnectionImpl(Dispatcher& dispatcher, int fd, Address remote, bool connecting)
      : dispatcher_(dispatcher),
        fd_(fd),
        remote_(std::move(remote)),
        id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)),
        state_(connecting ? State::kConnecting : State::kOpen) {
    if (fd_ >= 0) {
      event_ = dispatcher_.CreateFileEvent(
          fd_, [this](uint32_t ready) { OnFileEvent(ready); }, FileTriggerType::kEdge,
          FileReadyType::kRead | FileReadyType::kWrite | FileReadyType::kClosed);
    }
  }

  ~ConnectionImpl() override { CloseSocket(); }

  uint64_t id() const override { return id_; }
  State state() const override { return state_; }
  Dispatcher& dispatcher() override { return dispatcher_; }
  const Address& remote_address() const override { return remote_; }
  void SetReadHandler(ReadHandler* handler) override { read_handler_ = handler; }
  void AddCallbacks(ConnectionCallbacks& callbacks) override { callbacks_.push_back(&callbacks); }
  void RemoveCallbacks(ConnectionCallbacks& callbacks) override {
    auto it = std::find(callbacks_.begin(), callbacks_.end(), &callbacks);
    if (it != callbacks_.end()) {
      *it = nullptr;  // may be inside a callback loop; compacted later
    }
  }

  void Write(Buffer& data) override {
    if (state_ == State::kClosed || state_ == State::kClosing) {
      data.Drain(data.Length());
      return;
    }
    out_.Move(data);
    OnFrameQueued();
  }

  void WriteFrame(absl::FunctionRef<void(Buffer&)> encode) override {
    if (state_ == State::kClosed || state_ == State::kClosing) {
      Buffer discarded;
      encode(discarded);
      return;
    }
    encode(out_);
    OnFrameQueued();
  }

  size_t BufferedBytes() const override { return out_.Length(); }
  void SetWriteBufferLimit(size_t high) override { high_watermark_ = high; }
  void SetFramesPerWritevHistogram(stats::Histogram* histogram) override {
    frames_per_writev_ = histogram;
  }

  void ReadDisable(bool disable) override {
    if (disable) {
      ++read_disable_count_;
      return;
    }
    OTTAVA_ASSERT(read_disable_count_ > 0, "unbalanced ReadDisable(false)");
    if (read_disable_count_ > 0 && --read_disable_count_ == 0 && state_ == State::kOpen) {
      // Edge-triggered: bytes that arrived while disabled raise no new edge.
      event_->Activate(FileReadyType::kRead);
    }
  }
  bool ReadEnabled() const override { return read_disable_count_ == 0; }

  void Close(CloseType type) override {
    if (state_ == State::kClosed) {
      return;
    }
    if (type == CloseType::kFlushWrite && !out_.Empty() && state_ == State::kOpen) {
      state_ = State::kClosing;
      flush_timer_ = dispatcher_.CreateTimer([this] { CloseNow(ConnectionEvent::kLocalClose); });
      flush_timer_->Enable(kFlushTimeout);
      event_->Activate(FileReadyType::kWrite);
      return;
    }
    CloseNow(ConnectionEvent::kLocalClose);
  }

  int ReleaseFd(std::string* unread) override {
    if (state_ == State::kClosed) {
      return -1;
    }
    if (unread != nullptr) {
      *unread = in_.ToString();
    }
    in_.Drain(in_.Length());
    out_.Drain(out_.Length());
    flush_timer_.reset();
    event_.reset();
    int fd = fd_;
    fd_ = -1;
    state_ = State::kClosed;
    return fd;
  }

  // Bytes read by a previous owner of the socket: delivered before the socket's own, on the loop
  // (the read handler is set after construction).
  void Preload(std::string unread) {
    if (unread.empty()) {
      return;
    }
    in_.Add(unread);
    deliver_preloaded_ = true;
    event_->Activate(FileReadyType::kRead);
  }

  // A client connection whose socket could not be created reports the failure on the loop.
  void FailLater() {
    state_ = State::kClosed;
    dispatcher_.Post([this, alive = alive_] {
      if (*alive) {
        RaiseEvent(ConnectionEvent::kConnectFailed);
      }
    });
  }

 private:
  void OnFileEvent(uint32_t ready) {
    if (state_ == State::kConnecting) {
      if ((ready & (FileReadyType::kWrite | FileReadyType::kClosed | FileReadyType::kRead)) == 0) {
        return;
      }
      int error = 0;
      socklen_t length = sizeof(error);
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        CloseNow(ConnectionEvent::kConnectFailed);
        return;
      }
      state_ = State::kOpen;
      RaiseEvent(ConnectionEvent::kConnected);
      if (state_ != State::kOpen) {
        return;
      }
      ready |= FileReadyType::kWrite;
    }
    if ((ready & FileReadyType::kWrite) != 0) {
      write_scheduled_ = false;
      if (!Flush()) {
        return;
      }
    }
    if ((ready & FileReadyType::kClosed) != 0) {
      peer_closed_ = true;
    }
    if ((ready & (FileReadyType::kRead | FileReadyType::kClosed)) != 0 &&
        state_ != State::kClosed) {
      DoRead();
    }
  }

  // Returns false when the connection closed.
  bool Flush() {
    if (frames_per_writev_ != nullptr && frames_queued_ > 0 && !out_.Empty()) {
      // Everything queued since the last flush leaves in this pass: one writev unless the kernel
      // takes less than all of it.
      frames_per_writev_->Record(static_cast<double>(frames_queued_));
    }
    frames_queued_ = 0;
    while (!out_.Empty()) {
      ssize_t n = out_.WriteTo(fd_);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          break;  // the next write edge continues
        }
        if (errno == EINTR) {
          continue;
        }
        CloseNow(ConnectionEvent::kRemoteClose);
        return false;
      }
    }
    CheckLowWatermark();
    if (state_ == State::kClosing && out_.Empty()) {
      CloseNow(ConnectionEvent::kLocalClose);
      return false;
    }
    return true;
  }

  void DoRead() {
    if (read_disable_count_ > 0 || state_ != State::kOpen) {
      return;
    }
    bool end_stream = false;
    size_t total = 0;
    // ReadFrom reads until the socket is drained (a short read) or the cap; with edge triggering
    // a drained socket raises a new edge when more arrives, so one call suffices.
    ssize_t n = in_.ReadFrom(fd_, kMaxReadPerEvent);
    if (n > 0 && peer_closed_ && static_cast<size_t>(n) < kMaxReadPerEvent) {
      // The FIN may have come with the data: one more read tells (0 at end of stream).
      ssize_t more = in_.ReadFrom(fd_, kMaxReadPerEvent - static_cast<size_t>(n));
      if (more > 0) {
        n += more;
      } else if (more == 0) {
        end_stream = true;
      }
    }
    if (n > 0) {
      total = static_cast<size_t>(n);
    } else if (n == 0) {
      end_stream = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      CloseNow(ConnectionEvent::kRemoteClose);
      return;
    }
    if (total >= kMaxReadPerEvent) {
      event_->Activate(FileReadyType::kRead);  // more may be waiting; let others run first
    }
    const bool preloaded = std::exchange(deliver_preloaded_, false) && !in_.Empty();
    if ((total > 0 || end_stream || preloaded) && read_handler_ != nullptr) {
      std::shared_ptr<bool> alive = alive_;
      read_handler_->OnData(in_, end_stream);
      if (!*alive) {
        return;
      }
    }
    if (end_stream && state_ == State::kOpen) {
      CloseNow(ConnectionEvent::kRemoteClose);
    }
  }

  void OnFrameQueued() {
    ++frames_queued_;
    if (state_ == State::kOpen && !write_scheduled_) {
      write_scheduled_ = true;
      event_->Activate(FileReadyType::kWrite);
    }
    CheckHighWatermark();
  }

  void CheckHighWatermark() {
    if (high_watermark_ > 0 && !above_high_ && out_.Length() > high_watermark_) {
      above_high_ = true;
      for (size_t i = 0; i < callbacks_.size(); ++i) {
        if (callbacks_[i] != nullptr) {
          callbacks_[i]->OnAboveWriteHighWatermark();
        }
      }
    }
  }

  void CheckLowWatermark() {
    if (above_high_ && out_.Length() <= high_watermark_ / 2) {
      above_high_ = false;
      for (size_t i = 0; i < callbacks_.size(); ++i) {
        if (callbacks_[i] != nullptr) {
          callbacks_[i]->OnBelowWriteLowWatermark();
        }
      }
    }
  }

  void CloseNow(ConnectionEvent event) {
    if (state_ == State::kClosed && fd_ < 0) {
      return;
    }
    CloseSocket();
    state_ = State::kClosed;
    out_.Drain(out_.Length());
    RaiseEvent(event);
  }

  void CloseSocket() {
    flush_timer_.reset();
    event_.reset();
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    *alive_ = false;
    alive_ = std::make_shared<bool>(true);
  }

  void RaiseEvent(ConnectionEvent event) {
    // Callbacks may add or remove callbacks (or schedule our deletion); index, not iterators.
    for (size_t i = 0; i < callbacks_.size(); ++i) {
      if (callbacks_[i] != nullptr) {
        callbacks_[i]->OnEvent(event);
      }
    }
  }

  Dispatcher& dispatcher_;
  int fd_;
  Address remote_;
  const uint64_t id_;
  State state_;
  FileEventPtr event_;
  TimerPtr flush_timer_;
  Buffer in_;
  Buffer out_;
  ReadHandler* read_handler_ = nullptr;
  std::vector<ConnectionCallbacks*> callbacks_;
  uint32_t read_disable_count_ = 0;
  size_t high_watermark_ = 0;
  stats::Histogram* frames_per_writev_ = nullptr;
  uint32_t frames_queued_ = 0;  // Write() calls since the last flush
  bool above_high_ = false;
  bool write_scheduled_ = false;
  bool peer_closed_ = false;        // EPOLLRDHUP seen
  bool deliver_preloaded_ = false;  // Preload() bytes wait for the first read pass
  // Flipped when the socket closes, so a callback can tell it must not touch the connection.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

ConnectionPtr CreateServerConnection(Dispatcher& dispatcher,
                                     int fd,
                                     const Address& remote,
                                     std::string unread) {
  SetNoDelay(fd);
  auto connection = std::make_unique<ConnectionImpl>(dispatcher, fd, remote, /*connecting=*/false);
  connection->Preload(std::move(unread));
  return connection;
}

ConnectionPtr CreateClientConnection(Dispatcher& dispatcher, const Address& address) {
  sockaddr_storage storage;
  socklen_t length = 0;
  int fd = -1;
  if (address.ToSockaddr(&storage, &length).ok()) {
    fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  }
  if (fd >= 0) {
    SetNoDelay(fd);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&storage), length);
    if (rc == 0 || errno == EINPROGRESS) {
      // Connected or in progress: the first write edge tells which.
      return std::make_unique<ConnectionImpl>(dispatcher, fd, address, /*connecting=*/true);
    }
    ::close(fd);
  }
  auto failed = std::make_unique<ConnectionImpl>(dispatcher, -1, address, /*connecting=*/true);
  failed->FailLater();
  return failed;
}

}  // namespace ottava::mesh
