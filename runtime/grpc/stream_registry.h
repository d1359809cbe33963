#pragma once

// Bookkeeping for long-lived streams so shutdown can end them before draining: a stream that
// waits for events would otherwise hold the drain for its whole budget.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <optional>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ottava::runtime::grpc_api {

class StreamHandle {
 public:
  virtual ~StreamHandle() = default;
  /// Ends the stream with UNAVAILABLE. Any thread; must not wait for the stream's callbacks.
  virtual void Shutdown() = 0;
};

class StreamRegistry {
 public:
  void Add(StreamHandle* stream) {
    absl::MutexLock lock(&mu_);
    streams_.insert(stream);
  }
  void Remove(StreamHandle* stream) {
    absl::MutexLock lock(&mu_);
    streams_.erase(stream);
  }
  /// Asks every open stream to finish; refuses new streams and unary calls from now on.
  void ShutdownAll() {
    unary_closed_.store(true, std::memory_order_release);
    ShutdownStreams();
  }
  /// Upgrade drain: ends the open streams and refuses new ones (clients re-subscribe on the new
  /// process), while unary calls are still served until the clients' channels follow GOAWAY.
  void ShutdownStreams() {
    closed_.store(true, std::memory_order_release);
    absl::MutexLock lock(&mu_);
    for (StreamHandle* stream : streams_) {
      stream->Shutdown();
    }
  }
  /// Whether new streams are refused. Lock-free: every request checks it.
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  /// Whether new unary calls are refused.
  bool unary_closed() const { return unary_closed_.load(std::memory_order_acquire); }

 private:
  mutable absl::Mutex mu_;
  std::set<StreamHandle*> streams_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> closed_{false};
  std::atomic<bool> unary_closed_{false};
};

/// A server-streaming or bidi reactor (`Base`) with a write queue (one write in flight at a time,
/// as gRPC requires), a finish-once guard that waits for the write in flight, and registration
/// for shutdown. Subclasses implement Cleanup (called from OnDone before deletion), and OnReadDone
/// for bidi streams.
template <class Base, class Response>
class QueuedStreamReactor : public Base, public StreamHandle {
 public:
  explicit QueuedStreamReactor(StreamRegistry& registry) : registry_(registry) {
    registry_.Add(this);
  }

  /// Queues a message; dropped once the stream is finishing. Any thread.
  void Enqueue(Response response) {
    absl::MutexLock lock(&mu_);
    if (finishing_) {
      return;
    }
    queue_.push_back(std::move(response));
    if (!writing_) {
      writing_ = true;
      this->StartWrite(&queue_.front());
    }
  }

  /// Finishes the stream once; waits for the write in flight. Any thread.
  void FinishOnce(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (finishing_) {
      return;
    }
    finishing_ = true;
    if (writing_) {
      pending_finish_ = std::move(status);
      return;
    }
    this->Finish(std::move(status));
  }

  void Shutdown() override {
    FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the sidecar is shutting down"));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    if (!ok) {
      // The peer is gone; nothing more can be written.
      queue_.clear();
      writing_ = false;
      if (!finishing_) {
        finishing_ = true;
        this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed"));
      } else if (pending_finish_) {
        this->Finish(std::move(*pending_finish_));
        pending_finish_.reset();
      }
      return;
    }
    if (finishing_) {
      writing_ = false;
      if (pending_finish_) {
        this->Finish(std::move(*pending_finish_));
        pending_finish_.reset();
      }
      return;
    }
    if (!queue_.empty()) {
      this->StartWrite(&queue_.front());
    } else {
      writing_ = false;
    }
  }

  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }

  void OnDone() override {
    Cleanup();
    registry_.Remove(this);
    delete this;
  }

 protected:
  /// Releases subscriptions; after it returns nothing calls Enqueue on this stream.
  virtual void Cleanup() = 0;

 private:
  StreamRegistry& registry_;
  absl::Mutex mu_;
  std::deque<Response> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> pending_finish_ ABSL_GUARDED_BY(mu_);
};

template <class Request, class Response>
class QueuedBidiReactor
    : public QueuedStreamReactor<grpc::ServerBidiReactor<Request, Response>, Response> {
 public:
  explicit QueuedBidiReactor(StreamRegistry& registry)
      : QueuedStreamReactor<grpc::ServerBidiReactor<Request, Response>, Response>(registry) {}
};

/// Server streaming: the request came with the call; only writes.
template <class Response>
class QueuedWriteReactor
    : public QueuedStreamReactor<grpc::ServerWriteReactor<Response>, Response> {
 public:
  explicit QueuedWriteReactor(StreamRegistry& registry)
      : QueuedStreamReactor<grpc::ServerWriteReactor<Response>, Response>(registry) {}
};

}  // namespace ottava::runtime::grpc_api
