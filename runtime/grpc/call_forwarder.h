#pragma once

// Upgrade, old process: the calls its gRPC clients still send after the handover are forwarded
// to the new process until each client connection has aged out.
//
// Why: `Server::Shutdown()` is the only GOAWAY the C++ API offers, and a call that crosses it
// (sent by the client before it read the GOAWAY) is cancelled unserved. A connection that reaches
// GRPC_ARG_MAX_CONNECTION_AGE_MS gets a graceful GOAWAY instead, and the calls that cross that one
// are served. So after the handover the old server stays up, every call it receives goes on to
// the new process (which owns the components now), and only when every connection has aged out
// does it shut down, with no client left to race. Unary calls are relayed message for message;
// streams are proxied (server streaming and bidi) and ended with UNAVAILABLE before the shutdown,
// so their clients re-subscribe on their new connection.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/grpc/metrics.h"

namespace ottava::runtime::grpc_api {

/// A call being forwarded; the forwarder can cancel it.
class ForwardedCall {
 public:
  virtual ~ForwardedCall() = default;
  /// Ends the call now: UNAVAILABLE to the client, the upstream half cancelled. Any thread; does
  /// not wait for callbacks.
  virtual void End() = 0;
};

/// Copies what the client sent as metadata (not gRPC's own headers) and its deadline.
inline void CopyCallContext(const grpc::CallbackServerContext& from, grpc::ClientContext& to) {
  for (const auto& [key, value] : from.client_metadata()) {
    const std::string_view name(key.data(), key.size());
    if (name.starts_with("grpc-") || name.starts_with(':') || name == "user-agent" ||
        name == "te" || name == "content-type") {
      continue;
    }
    to.AddMetadata(std::string(name), std::string(value.data(), value.size()));
  }
  to.set_deadline(from.deadline());
}

class CallForwarder {
 public:
  ~CallForwarder() { CancelAll(std::chrono::steady_clock::now() + std::chrono::seconds(1)); }

  /// From now on calls are forwarded over `channel`; calls already running here finish here.
  void Arm(std::shared_ptr<grpc::Channel> channel) {
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      channel_ = std::move(channel);
    }
    active_.store(true, std::memory_order_seq_cst);
  }
  bool active() const { return active_.load(std::memory_order_acquire); }

  /// Counts a call that is to be served here, unless forwarding is armed: then it counts nothing
  /// and returns false. Together with Arm() and local_in_flight() no call slips between the two
  /// (each side writes its flag before it reads the other's).
  bool EnterLocal() {
    local_.fetch_add(1, std::memory_order_seq_cst);
    if (active_.load(std::memory_order_seq_cst)) {
      local_.fetch_sub(1, std::memory_order_seq_cst);
      return false;
    }
    return true;
  }
  void ExitLocal() { local_.fetch_sub(1, std::memory_order_seq_cst); }
  int64_t local_in_flight() const { return local_.load(std::memory_order_seq_cst); }

  int64_t forwarded_in_flight() const {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return static_cast<int64_t>(calls_.size());
  }
  uint64_t forwarded_total() const { return total_.load(std::memory_order_relaxed); }

  /// Forwards a unary call; `done` gets the new process's status (`response` filled on OK).
  template <class Request, class Response>
  void Unary(grpc::CallbackServerContext* ctx,
             const std::string& method,
             const Request& request,
             Response* response,
             std::function<void(const grpc::Status&)> done);

  /// Proxies a bidi stream to the new process.
  template <class Request, class Response>
  grpc::ServerBidiReactor<Request, Response>* Bidi(grpc::CallbackServerContext* ctx,
                                                   const std::string& method,
                                                   MethodMetrics::Call metrics);

  /// Proxies a server stream to the new process.
  template <class Request, class Response>
  grpc::ServerWriteReactor<Response>* ServerStream(grpc::CallbackServerContext* ctx,
                                                   const std::string& method,
                                                   const Request& request,
                                                   MethodMetrics::Call metrics);

  /// Ends the forwarded streams with UNAVAILABLE (their clients re-subscribe elsewhere).
  void EndStreams() { EndCalls(/*streams_only=*/true); }

  /// Ends every forwarded call and waits (bounded) until their callbacks have run.
  void CancelAll(std::chrono::steady_clock::time_point deadline) {
    EndCalls(/*streams_only=*/false);
    while (forwarded_in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // For the forwarded calls themselves.
  std::shared_ptr<grpc::Channel> channel() const {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return channel_;
  }
  void Add(ForwardedCall* call, bool is_stream) {
    total_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::recursive_mutex> lock(mu_);
    calls_.emplace(call, is_stream);
  }
  void Remove(ForwardedCall* call) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    calls_.erase(call);
  }

 private:
  // A call is deleted only after Remove(), which waits for `mu_`; the lock is recursive because
  // End() may run a call's completion inline, and a completion removes its call. So each call is
  // looked up again right before it is ended.
  void EndCalls(bool streams_only) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::vector<ForwardedCall*> ending;
    for (const auto& [call, is_stream] : calls_) {
      if (is_stream || !streams_only) {
        ending.push_back(call);
      }
    }
    for (ForwardedCall* call : ending) {
      if (calls_.contains(call)) {
        call->End();
      }
    }
  }

  mutable std::recursive_mutex mu_;
  std::shared_ptr<grpc::Channel> channel_;
  std::map<ForwardedCall*, bool> calls_;  // -> whether it is a stream
  std::atomic<bool> active_{false};
  std::atomic<int64_t> local_{0};
  std::atomic<uint64_t> total_{0};
};

namespace forward_detail {

// A unary call on its way to the new process.
class PendingUnary final : public ForwardedCall {
 public:
  explicit PendingUnary(CallForwarder& forwarder) : forwarder_(forwarder) {
    forwarder_.Add(this, /*is_stream=*/false);
  }
  void End() override { client.TryCancel(); }
  void Done() {
    forwarder_.Remove(this);
    delete this;
  }
  grpc::ClientContext client;

 private:
  CallForwarder& forwarder_;
};

// The callbacks of the upstream half of a proxied stream, implemented by its owner.
template <class Request, class Response>
class UpstreamOwner {
 public:
  virtual ~UpstreamOwner() = default;
  virtual void UpstreamHeaders(bool ok) = 0;
  virtual void UpstreamRead(bool ok) = 0;
  virtual void UpstreamWrote(bool ok) = 0;
  virtual void UpstreamDone(const grpc::Status& status) = 0;
};

template <class Request, class Response>
class Upstream final : public grpc::ClientBidiReactor<Request, Response> {
 public:
  explicit Upstream(UpstreamOwner<Request, Response>& owner) : owner_(owner) {}
  void OnReadInitialMetadataDone(bool ok) override { owner_.UpstreamHeaders(ok); }
  void OnReadDone(bool ok) override { owner_.UpstreamRead(ok); }
  void OnWriteDone(bool ok) override { owner_.UpstreamWrote(ok); }
  void OnWritesDoneDone(bool) override {}
  void OnDone(const grpc::Status& status) override { owner_.UpstreamDone(status); }

 private:
  UpstreamOwner<Request, Response>& owner_;
};

// What both stream shapes share: the upstream call, the relay of the new process's messages to
// the client, finish-once, and deletion once both halves are done.
//
// Operations on one half are started from the other half's callbacks, which gRPC allows only
// while the call is known to be alive. The server half: only before Finish (`finished_`), after
// which it starts nothing. The upstream half: a hold (AddHold) keeps its OnDone back until its
// reads have ended (`upstream_ended_`); every upstream operation is started under `mu_` after
// checking that flag. `mu_` is recursive because gRPC may run a completion inline, on the thread
// that started the operation.
template <class ServerReactor, class Request, class Response>
class StreamProxy : public ServerReactor,
                    public UpstreamOwner<Request, Response>,
                    public ForwardedCall {
 public:
  StreamProxy(CallForwarder& forwarder,
              grpc::CallbackServerContext* ctx,
              MethodMetrics::Call metrics)
      : forwarder_(forwarder), metrics_(metrics), upstream_(*this) {
    CopyCallContext(*ctx, client_);
    forwarder_.Add(this, /*is_stream=*/true);
  }

  void End() override {
    FinishOnce(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the sidecar was upgraded; subscribe again"));
    client_.TryCancel();
  }

  // The new process's messages go to the client one at a time.
  void UpstreamHeaders(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (ok && !finished_ && !wrote_) {
      wrote_ = true;
      this->StartSendInitialMetadata();
    }
  }
  void UpstreamRead(bool ok) override {
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      if (ok && !finished_) {
        wrote_ = true;
        writing_ = true;
        this->StartWrite(&response_);
        return;
      }
      if (ok) {  // finishing: read on until the upstream ends
        upstream_.StartRead(&response_);
        return;
      }
      upstream_ended_ = true;
    }
    upstream_.RemoveHold();  // OnDone may follow: nothing of this object is touched after it
  }
  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      writing_ = false;
      if (finished_) {
        finish = std::move(pending_finish_);
        pending_finish_.reset();
      }
      if (!upstream_ended_) {
        upstream_.StartRead(&response_);  // when cancelled below, it fails and ends the reads
      }
    }
    if (!ok) {
      client_.TryCancel();  // the client is gone
    }
    if (finish) {
      this->Finish(*finish);
    }
  }
  void UpstreamDone(const grpc::Status& status) override {
    FinishOnce(status);
    Release();
  }
  void OnSendInitialMetadataDone(bool) override {}
  void OnCancel() override { client_.TryCancel(); }
  void OnDone() override {
    metrics_.Done(status_);
    Release();
  }

 protected:
  // Prepares the upstream call and its first read; the subclass starts it.
  void Open(const std::string& method) {
    grpc::TemplatedGenericStub<Request, Response> stub(forwarder_.channel());
    stub.PrepareBidiStreamingCall(&client_, method, grpc::StubOptions(), &upstream_);
    upstream_.AddHold();
    upstream_.StartRead(&response_);
  }

  // Finishes once, after the write in flight (gRPC allows one operation of a kind at a time).
  void FinishOnce(const grpc::Status& status) {
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      if (finished_) {
        return;
      }
      finished_ = true;
      status_ = status;
      if (writing_) {
        pending_finish_ = status;
        return;
      }
    }
    this->Finish(status);
  }

  CallForwarder& forwarder_;
  MethodMetrics::Call metrics_;
  grpc::ClientContext client_;
  Upstream<Request, Response> upstream_;
  Response response_;
  std::recursive_mutex mu_;
  bool finished_ = false;        // Finish was called (or is pending on a write): no server ops
  bool upstream_ended_ = false;  // the upstream reads ended: no upstream ops, the hold is gone

 private:
  // Deleted when the server half (OnDone) and the upstream half (UpstreamDone) are both done.
  void Release() {
    if (halves_left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      forwarder_.Remove(this);
      delete this;
    }
  }

  bool wrote_ = false;  // headers or a message went out
  bool writing_ = false;
  std::optional<grpc::Status> pending_finish_;
  grpc::Status status_;  // set before Finish; read in OnDone after it
  std::atomic<int> halves_left_{2};
};

template <class Request, class Response>
class BidiProxy final
    : public StreamProxy<grpc::ServerBidiReactor<Request, Response>, Request, Response> {
  using Base = StreamProxy<grpc::ServerBidiReactor<Request, Response>, Request, Response>;

 public:
  BidiProxy(CallForwarder& forwarder,
            grpc::CallbackServerContext* ctx,
            const std::string& method,
            MethodMetrics::Call metrics)
      : Base(forwarder, ctx, metrics) {
    this->Open(method);
    this->StartRead(&request_);
    this->upstream_.StartCall();
  }

  // The client's messages go to the new process one at a time; its half-close follows them.
  void OnReadDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(this->mu_);
    if (this->upstream_ended_) {
      return;
    }
    if (ok) {
      this->upstream_.StartWrite(&request_);
    } else {
      this->upstream_.StartWritesDone();
    }
  }
  void UpstreamWrote(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(this->mu_);
    if (ok && !this->finished_) {
      this->StartRead(&request_);
    }
  }

 private:
  Request request_;
};

template <class Request, class Response>
class ServerStreamProxy final
    : public StreamProxy<grpc::ServerWriteReactor<Response>, Request, Response> {
  using Base = StreamProxy<grpc::ServerWriteReactor<Response>, Request, Response>;

 public:
  ServerStreamProxy(CallForwarder& forwarder,
                    grpc::CallbackServerContext* ctx,
                    const std::string& method,
                    const Request& request,
                    MethodMetrics::Call metrics)
      : Base(forwarder, ctx, metrics), request_(request) {
    this->Open(method);
    this->upstream_.StartWriteLast(&request_, grpc::WriteOptions());
    this->upstream_.StartCall();
  }
  void UpstreamWrote(bool) override {}

 private:
  Request request_;
};

}  // namespace forward_detail

template <class Request, class Response>
void CallForwarder::Unary(grpc::CallbackServerContext* ctx,
                          const std::string& method,
                          const Request& request,
                          Response* response,
                          std::function<void(const grpc::Status&)> done) {
  auto* pending = new forward_detail::PendingUnary(*this);
  CopyCallContext(*ctx, pending->client);
  grpc::TemplatedGenericStub<Request, Response> stub(channel());
  stub.UnaryCall(&pending->client, method, grpc::StubOptions(), &request, response,
                 [pending, done = std::move(done)](grpc::Status status) {
                   pending->Done();
                   done(status);
                 });
}

template <class Request, class Response>
grpc::ServerBidiReactor<Request, Response>* CallForwarder::Bidi(grpc::CallbackServerContext* ctx,
                                                                const std::string& method,
                                                                MethodMetrics::Call metrics) {
  return new forward_detail::BidiProxy<Request, Response>(*this, ctx, method, metrics);
}

template <class Request, class Response>
grpc::ServerWriteReactor<Response>* CallForwarder::ServerStream(grpc::CallbackServerContext* ctx,
                                                                const std::string& method,
                                                                const Request& request,
                                                                MethodMetrics::Call metrics) {
  return new forward_detail::ServerStreamProxy<Request, Response>(*this, ctx, method, request,
                                                                  metrics);
}

}  // namespace ottava::runtime::grpc_api
