#pragma once

// The channel to a Dapr gRPC app (`app.callback.protocol` = "dapr-grpc"): Dapr's
// `dapr.proto.runtime.v1.AppCallback` service. ListTopicSubscriptions (retried until the app
// answers), OnTopicEvent with the CloudEvent split apart and `path` = the route the
// subscription's rules chose, OnInvoke for InvokeService calls to the sidecar's own app id. Every
// call carries the app token (`dapr-api-token`, from APP_API_TOKEN) when one is set, and a
// deadline. A bulk subscription's batch goes to OnBulkTopicEvent; an app that answers it
// UNIMPLEMENTED (the JS SDK answers HTTP 404, which gRPC reads so) gets OnBulkTopicEventAlpha1 of
// AppCallbackAlpha instead, then and for every later batch.
//
// Threading: calls start on any thread and never block; completions run on gRPC's threads,
// subscription answers are posted to the component dispatcher.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "common/backoff.h"
#include "common/dispatcher.h"
#include "dapr/proto/runtime/v1/appcallback.grpc.pb.h"
#include "runtime/callback/app_channel.h"

namespace ottava::runtime::callback {

class DaprGrpcChannel : public AppChannel, public std::enable_shared_from_this<DaprGrpcChannel> {
 public:
  /// `target` is "host:port"; nothing connects until the first call. `call_timeout` bounds one
  /// OnTopicEvent; `app_token` (may be empty) travels as `dapr-api-token`.
  static std::shared_ptr<DaprGrpcChannel> Create(const std::string& target,
                                                 std::chrono::milliseconds call_timeout,
                                                 std::string app_token,
                                                 Dispatcher* dispatcher);

  void ListSubscriptions(std::function<void(std::vector<AppSubscription>)> on_answer) override;
  /// OnTopicEvent; SUCCESS/RETRY/DROP as answered, an unknown status retries, UNIMPLEMENTED
  /// drops and any other error retries.
  void Deliver(std::shared_ptr<const Event> event, std::function<void(Outcome)> done) override;
  /// OnBulkTopicEvent, falling back to OnBulkTopicEventAlpha1 on UNIMPLEMENTED. Per entry:
  /// the status answered (unknown: retry), an entry left out retries. The call failing: every
  /// entry retries, or drops when the app implements neither method.
  void DeliverBulk(std::shared_ptr<const EventBatch> batch, BulkDone done) override;
  bool CanInvoke() const override { return true; }
  /// OnInvoke: the verb and query string travel in `http_extension`, the data in an Any with an
  /// empty type URL (as daprd sends it), the request metadata as gRPC metadata.
  void Invoke(components::rpc::RpcRequest request, components::rpc::RpcCallback done) override;
  bool DaprSemantics() const override { return true; }
  void Stop() override { stopped_ = true; }

 private:
  DaprGrpcChannel(std::shared_ptr<grpc::Channel> channel,
                  std::chrono::milliseconds call_timeout,
                  std::string app_token,
                  Dispatcher* dispatcher);

  void TryList(uint32_t attempt, std::function<void(std::vector<AppSubscription>)> on_answer);
  void AddToken(grpc::ClientContext& context) const;
  struct BulkCall;
  void CallBulk(std::shared_ptr<BulkCall> call, bool alpha);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<dapr::proto::runtime::v1::AppCallback::Stub> stub_;
  std::unique_ptr<dapr::proto::runtime::v1::AppCallbackAlpha::Stub> alpha_stub_;
  // Set once the app answered OnBulkTopicEvent UNIMPLEMENTED: later batches go to Alpha1 first.
  std::atomic<bool> bulk_alpha_only_{false};
  std::chrono::milliseconds call_timeout_;
  const std::string app_token_;
  Dispatcher* dispatcher_;
  Backoff list_backoff_{std::chrono::milliseconds(100), std::chrono::milliseconds(5000)};
  std::atomic<bool> stopped_{false};
};

/// Dapr's form of an event: the CloudEvent attributes in fields, the other attributes in
/// `extensions`, `data` the payload bytes, `path` the matched route.
void ToDaprTopicEvent(const Event& event, dapr::proto::runtime::v1::TopicEventRequest* out);

/// Dapr's form of a batch: each entry's CloudEvent split apart in `cloud_event` (a raw payload in
/// `bytes`), the message metadata per entry, `type` com.dapr.event.sent.bulk, `path` the route.
void ToDaprBulkRequest(const EventBatch& batch,
                       dapr::proto::runtime::v1::TopicEventBulkRequest* out);

/// The verdict a Dapr TopicEventResponse status stands for (an unknown status retries).
Outcome DaprOutcomeOf(int status);

/// The verdicts of a batch from the app's bulk answer (an entry left out retries).
std::vector<Outcome> DaprBulkOutcomes(const EventBatch& batch,
                                      const dapr::proto::runtime::v1::TopicEventBulkResponse& in);

/// The Dapr subscription as the protocol-neutral one: the metadata's `deadLetterTopic` is
/// overridden by the field when that is set.
AppSubscription FromDaprSubscription(const dapr::proto::runtime::v1::TopicSubscription& in);

/// Whether `name` can travel as gRPC metadata (lower-case token characters, not reserved).
bool IsForwardableMetadata(const std::string& name);

}  // namespace ottava::runtime::callback
