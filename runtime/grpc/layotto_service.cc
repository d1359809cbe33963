#include "runtime/grpc/layotto_service.h"

#include "common/logging.h"
#include "common/status.h"
#include "runtime/callback/app_callback.h"
#include "runtime/callback/stream_subscription.h"
#include "runtime/grpc/invoke.h"
#include "runtime/grpc/state_convert.h"
#include "runtime/grpc/status_bridge.h"

namespace ottava::runtime::grpc_api {

namespace v1 = spec::proto::runtime::v1;
namespace state = components::state;

namespace {

enum Method : int {
  kSayHello,
  kInvokeService,
  kGetConfiguration,
  kSaveConfiguration,
  kDeleteConfiguration,
  kSubscribeConfiguration,
  kTryLock,
  kUnlock,
  kLockKeepAlive,
  kGetNextId,
  kGetState,
  kGetBulkState,
  kSaveState,
  kDeleteState,
  kDeleteBulkState,
  kExecuteStateTransaction,
  kPublishEvent,
  kSubscribeTopicEvents,
  kListFile,
  kDelFile,
  kGetFileMeta,
  kInvokeBinding,
  kGetSecret,
  kGetBulkSecret,
  kMethodCount,
};

constexpr const char* kMethodNames[kMethodCount] = {
    "SayHello",
    "InvokeService",
    "GetConfiguration",
    "SaveConfiguration",
    "DeleteConfiguration",
    "SubscribeConfiguration",
    "TryLock",
    "Unlock",
    "LockKeepAlive",
    "GetNextId",
    "GetState",
    "GetBulkState",
    "SaveState",
    "DeleteState",
    "DeleteBulkState",
    "ExecuteStateTransaction",
    "PublishEvent",
    "SubscribeTopicEvents",
    "ListFile",
    "DelFile",
    "GetFileMeta",
    "InvokeBinding",
    "GetSecret",
    "GetBulkSecret",
};

api::ConfigApi::Selector ToSelector(const std::string& app_id,
                                    const std::string& group,
                                    const std::string& label,
                                    const google::protobuf::RepeatedPtrField<std::string>& keys,
                                    const google::protobuf::Map<std::string, std::string>& md) {
  api::ConfigApi::Selector selector;
  selector.app_id = app_id;
  selector.group = group;
  selector.label = label;
  selector.keys.assign(keys.begin(), keys.end());
  selector.metadata = ToMetadata(md);
  return selector;
}

void ToProto(const components::config_store::Item& item, v1::ConfigurationItem* out) {
  out->set_key(item.key);
  out->set_content(item.content);
  out->set_group(item.group);
  out->set_label(item.label);
  out->mutable_tags()->insert(item.tags.begin(), item.tags.end());
  out->mutable_metadata()->insert(item.metadata.begin(), item.metadata.end());
}

// ---------------------------------------------------------------------------------------------
// SubscribeConfiguration: every request on the stream adds a subscription; changes stream back.

class ConfigStream final : public QueuedBidiReactor<v1::SubscribeConfigurationRequest,
                                                    v1::SubscribeConfigurationResponse> {
 public:
  ConfigStream(api::ConfigApi& api, StreamRegistry& registry, MethodMetrics::Call call)
      : QueuedBidiReactor(registry), api_(api), call_(call) {
    if (registry.closed()) {
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the sidecar is shutting down"));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client closed its side (or the stream broke): the subscription ends with it.
      FinishOnce(grpc::Status::OK);
      return;
    }
    const std::string store = request_.store_name();
    auto selector = ToSelector(request_.app_id(), request_.group(), request_.label(),
                               request_.keys(), request_.metadata());
    const std::string app_id = request_.app_id();
    auto subscription =
        api_.Subscribe(store, std::move(selector),
                       [this, store, app_id](std::vector<components::config_store::Item> items) {
                         v1::SubscribeConfigurationResponse response;
                         response.set_store_name(store);
                         response.set_app_id(app_id);
                         for (const auto& item : items) {
                           ToProto(item, response.add_items());
                         }
                         Enqueue(std::move(response));
                       });
    if (!subscription.ok()) {
      status_ = ToGrpcStatus(subscription.status());
      FinishOnce(status_);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      subscriptions_.push_back(std::move(*subscription));
    }
    StartRead(&request_);
  }

 protected:
  void Cleanup() override {
    std::vector<std::unique_ptr<api::ConfigApi::Subscription>> subscriptions;
    {
      absl::MutexLock lock(&mu_);
      subscriptions.swap(subscriptions_);
    }
    subscriptions.clear();  // unsubscribes; no handler runs after this
    call_.Done(status_.error_code());
  }

 private:
  api::ConfigApi& api_;
  MethodMetrics::Call call_;
  v1::SubscribeConfigurationRequest request_;
  grpc::Status status_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<api::ConfigApi::Subscription>> subscriptions_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------------------------
// SubscribeTopicEvents: the first message subscribes, later ones acknowledge events by id.

callback::Outcome ToOutcome(v1::TopicEventResponse::TopicEventResponseStatus status) {
  switch (status) {
    case v1::TopicEventResponse::SUCCESS:
      return callback::Outcome::kSuccess;
    case v1::TopicEventResponse::DROP:
      return callback::Outcome::kDrop;
    default:
      return callback::Outcome::kRetry;
  }
}

class TopicStream final
    : public QueuedBidiReactor<v1::SubscribeTopicEventsRequest, v1::SubscribeTopicEventsResponse> {
 public:
  TopicStream(const Apis& apis, StreamRegistry& registry, MethodMetrics::Call call)
      : QueuedBidiReactor(registry), apis_(apis), call_(call) {
    if (registry.closed()) {
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the sidecar is shutting down"));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      FinishOnce(grpc::Status::OK);
      return;
    }
    if (!subscription_) {
      if (!request_.has_initial_request()) {
        Fail(absl::InvalidArgumentError(
            "the first message of SubscribeTopicEvents must be initial_request"));
        return;
      }
      if (absl::Status status = Subscribe(request_.initial_request()); !status.ok()) {
        Fail(status);
        return;
      }
    } else if (request_.has_event_processed()) {
      const auto& processed = request_.event_processed();
      if (!subscription_->OnProcessed(processed.id(), ToOutcome(processed.status().status()))) {
        OTTAVA_LOG(Grpc, debug, "acknowledgement for unknown event id {}", processed.id());
      }
    } else {
      Fail(absl::InvalidArgumentError("initial_request may only be sent once per stream"));
      return;
    }
    StartRead(&request_);
  }

 protected:
  void Cleanup() override {
    if (subscription_) {
      subscription_->Stop();  // no event is sent to this stream after this
    }
    call_.Done(status_.error_code());
  }

 private:
  absl::Status Subscribe(const v1::SubscribeTopicEventsRequestInitial& initial) {
    OTTAVA_ASSIGN_OR_RETURN(
        callback::SubscriptionOptions options,
        callback::SubscriptionOptions::FromMetadata(initial.pubsub_name(), initial.topic(),
                                                    ToMetadata(initial.metadata())));
    if (initial.has_dead_letter_topic()) {
      options.dead_letter_topic = initial.dead_letter_topic();
    }
    // Subscribe first, so that an event published once the client has the initial response is
    // not missed; events arriving before the initial response is queued wait for it.
    OTTAVA_ASSIGN_OR_RETURN(subscription_, callback::StreamSubscription::Start(
                                               *apis_.pubsub, std::move(options),
                                               [this](const callback::Event& event) {
                                                 v1::SubscribeTopicEventsResponse message;
                                                 callback::ToTopicEventRequest(
                                                     event, message.mutable_event_message());
                                                 absl::MutexLock lock(&gate_mu_);
                                                 if (!initial_sent_) {
                                                   early_.push_back(std::move(message));
                                                   return;
                                                 }
                                                 Enqueue(std::move(message));
                                               },
                                               apis_.dispatcher, apis_.stats, apis_.app_id));
    absl::MutexLock lock(&gate_mu_);
    v1::SubscribeTopicEventsResponse response;
    response.mutable_initial_response();
    Enqueue(std::move(response));
    for (auto& message : early_) {
      Enqueue(std::move(message));
    }
    early_.clear();
    initial_sent_ = true;
    return absl::OkStatus();
  }

  void Fail(const absl::Status& status) {
    status_ = ToGrpcStatus(status);
    FinishOnce(status_);
  }

  const Apis& apis_;
  MethodMetrics::Call call_;
  v1::SubscribeTopicEventsRequest request_;
  grpc::Status status_;
  std::unique_ptr<callback::StreamSubscription> subscription_;
  absl::Mutex gate_mu_;
  bool initial_sent_ ABSL_GUARDED_BY(gate_mu_) = false;
  std::vector<v1::SubscribeTopicEventsResponse> early_ ABSL_GUARDED_BY(gate_mu_);
};

}  // namespace

LayottoService::LayottoService(Apis apis, StreamRegistry& streams)
    : apis_(std::move(apis)), streams_(streams), metrics_(*apis_.stats) {
  m_.reserve(kMethodCount);
  for (const char* name : kMethodNames) {
    m_.push_back(&metrics_.Method(name));
  }
}

LayottoService::Unary* LayottoService::Reply(Ctx* ctx,
                                             const MethodMetrics& metrics,
                                             const absl::Status& status) {
  return ReplyNow(ctx, metrics, status, apis_.api_token);
}

LayottoService::Unary* LayottoService::SayHello(Ctx* ctx,
                                                const v1::SayHelloRequest* request,
                                                v1::SayHelloResponse* response) {
  UnaryCall call = BeginUnary(ctx, kSayHello, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  response->set_hello("greetings, " +
                      (request->name().empty() ? std::string("world") : request->name()));
  if (request->has_data()) {
    *response->mutable_data() = request->data();
  }
  call.Finish(absl::OkStatus());
  return call.reactor;
}

LayottoService::Unary* LayottoService::InvokeService(Ctx* ctx,
                                                     const v1::InvokeServiceRequest* request,
                                                     v1::InvokeResponse* response) {
  UnaryCall call = BeginUnary(ctx, kInvokeService, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  if (apis_.rpc == nullptr) {
    call.Finish(absl::FailedPreconditionError(
        "InvokeService: no mesh is configured (add a \"mesh\" section with a router)"));
    return call.reactor;
  }
  if (request->id().empty()) {
    call.Finish(absl::InvalidArgumentError("InvokeService: id (the target app) is empty"));
    return call.reactor;
  }
  components::rpc::RpcRequest rpc;
  rpc.app_id = request->id();
  rpc.method = request->message().method();
  rpc.verb = std::string(VerbName(request->message().http_extension().verb()));
  rpc.query = request->message().http_extension().querystring();
  rpc.content_type = request->message().content_type();
  rpc.data = request->message().data().value();
  rpc.caller_app_id = apis_.app_id;
  ApplyCallContext(*ctx, rpc);
  apis_.rpc->Invoke(std::move(rpc),
                    [call, response](absl::StatusOr<components::rpc::RpcResponse> result) {
                      if (!result.ok()) {
                        call.Finish(result.status());
                        return;
                      }
                      response->set_content_type(result->content_type);
                      response->mutable_data()->set_value(std::move(result->data));
                      call.Finish(absl::OkStatus());
                    });
  return call.reactor;
}

// ------------------------------------------------------------------------------ configuration

LayottoService::Unary* LayottoService::GetConfiguration(Ctx* ctx,
                                                        const v1::GetConfigurationRequest* request,
                                                        v1::GetConfigurationResponse* response) {
  UnaryCall call = BeginUnary(ctx, kGetConfiguration, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.config->Get(
      request->store_name(),
      ToSelector(request->app_id(), request->group(), request->label(), request->keys(),
                 request->metadata()),
      [response, call](absl::StatusOr<std::vector<components::config_store::Item>> items) {
        if (items.ok()) {
          for (const auto& item : *items) {
            ToProto(item, response->add_items());
          }
        }
        call.Finish(items.status());
      });
  return call.reactor;
}

LayottoService::Unary* LayottoService::SaveConfiguration(
    Ctx* ctx, const v1::SaveConfigurationRequest* request, Empty* response) {
  UnaryCall call = BeginUnary(ctx, kSaveConfiguration, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  std::vector<components::config_store::Item> items;
  items.reserve(request->items_size());
  for (const auto& in : request->items()) {
    components::config_store::Item item;
    item.key = in.key();
    item.content = in.content();
    item.group = in.group();
    item.label = in.label();
    item.tags = ToMetadata(in.tags());
    item.metadata = ToMetadata(in.metadata());
    items.push_back(std::move(item));
  }
  apis_.config->Save(request->store_name(), request->app_id(), std::move(items),
                     ToMetadata(request->metadata()),
                     [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

LayottoService::Unary* LayottoService::DeleteConfiguration(
    Ctx* ctx, const v1::DeleteConfigurationRequest* request, Empty* response) {
  UnaryCall call = BeginUnary(ctx, kDeleteConfiguration, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.config->Delete(request->store_name(),
                       ToSelector(request->app_id(), request->group(), request->label(),
                                  request->keys(), request->metadata()),
                       [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

grpc::ServerBidiReactor<v1::SubscribeConfigurationRequest, v1::SubscribeConfigurationResponse>*
LayottoService::SubscribeConfiguration(Ctx* ctx) {
  if (absl::Status token = CheckCallToken(*ctx, apis_.api_token); !token.ok()) {
    m_[kSubscribeConfiguration]->Begin().Done(ToGrpcStatus(token));
    return new RefusedBidi<v1::SubscribeConfigurationRequest, v1::SubscribeConfigurationResponse>(
        token);
  }
  if (apis_.forward != nullptr && apis_.forward->active()) {
    return apis_.forward
        ->Bidi<v1::SubscribeConfigurationRequest, v1::SubscribeConfigurationResponse>(
            ctx, MethodPath(kServiceName, *m_[kSubscribeConfiguration]),
            m_[kSubscribeConfiguration]->Begin());
  }
  return new ConfigStream(*apis_.config, streams_, m_[kSubscribeConfiguration]->Begin());
}

// ------------------------------------------------------------------------------------- lock

LayottoService::Unary* LayottoService::TryLock(Ctx* ctx,
                                               const v1::TryLockRequest* request,
                                               v1::TryLockResponse* response) {
  UnaryCall call = BeginUnary(ctx, kTryLock, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.lock->TryLock(request->store_name(), request->resource_id(), request->lock_owner(),
                      request->expire(), [response, call](absl::StatusOr<bool> ok) {
                        if (ok.ok()) {
                          response->set_success(*ok);
                        }
                        call.Finish(ok.status());
                      });
  return call.reactor;
}

namespace {

template <class Enum>
Enum ToProtoLockStatus(components::lock::LockStatus status) {
  switch (status) {
    case components::lock::LockStatus::kSuccess:
      return static_cast<Enum>(0);
    case components::lock::LockStatus::kLockDoesNotExist:
      return static_cast<Enum>(1);
    case components::lock::LockStatus::kLockBelongsToOthers:
      return static_cast<Enum>(2);
  }
  return static_cast<Enum>(3);
}

}  // namespace

LayottoService::Unary* LayottoService::Unlock(Ctx* ctx,
                                              const v1::UnlockRequest* request,
                                              v1::UnlockResponse* response) {
  UnaryCall call = BeginUnary(ctx, kUnlock, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.lock->Unlock(request->store_name(), request->resource_id(), request->lock_owner(),
                     [response, call](absl::StatusOr<components::lock::LockStatus> s) {
                       if (s.ok()) {
                         response->set_status(ToProtoLockStatus<v1::UnlockResponse::Status>(*s));
                       }
                       call.Finish(s.status());
                     });
  return call.reactor;
}

LayottoService::Unary* LayottoService::LockKeepAlive(Ctx* ctx,
                                                     const v1::LockKeepAliveRequest* request,
                                                     v1::LockKeepAliveResponse* response) {
  UnaryCall call = BeginUnary(ctx, kLockKeepAlive, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.lock->KeepAlive(
      request->store_name(), request->resource_id(), request->lock_owner(), request->expire(),
      [response, call](absl::StatusOr<components::lock::LockStatus> s) {
        if (s.ok()) {
          response->set_status(ToProtoLockStatus<v1::LockKeepAliveResponse::Status>(*s));
        }
        call.Finish(s.status());
      });
  return call.reactor;
}

// -------------------------------------------------------------------------------- sequencer

LayottoService::Unary* LayottoService::GetNextId(Ctx* ctx,
                                                 const v1::GetNextIdRequest* request,
                                                 v1::GetNextIdResponse* response) {
  UnaryCall call = BeginUnary(ctx, kGetNextId, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  const bool strong =
      request->has_options() && request->options().increment() == v1::SequencerOptions::STRONG;
  apis_.sequencer->GetNextId(request->store_name(), request->key(), strong,
                             [response, call](absl::StatusOr<int64_t> id) {
                               if (id.ok()) {
                                 response->set_next_id(*id);
                               }
                               call.Finish(id.status());
                             });
  return call.reactor;
}

// ------------------------------------------------------------------------------------ state

LayottoService::Unary* LayottoService::GetState(Ctx* ctx,
                                                const v1::GetStateRequest* request,
                                                v1::GetStateResponse* response) {
  UnaryCall call = BeginUnary(ctx, kGetState, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.state->Get(request->store_name(), request->key(),
                   ToConsistency<v1::StateOptions>(request->consistency()),
                   [response, call](absl::StatusOr<api::StateApi::GetResult> result) {
                     if (result.ok()) {
                       response->set_data(std::move(result->value));
                       response->set_etag(std::move(result->etag));
                       response->mutable_metadata()->insert(result->metadata.begin(),
                                                            result->metadata.end());
                     }
                     call.Finish(result.status());
                   });
  return call.reactor;
}

LayottoService::Unary* LayottoService::GetBulkState(Ctx* ctx,
                                                    const v1::GetBulkStateRequest* request,
                                                    v1::GetBulkStateResponse* response) {
  UnaryCall call = BeginUnary(ctx, kGetBulkState, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  apis_.state->BulkGet(
      request->store_name(), keys,
      [response, call](absl::StatusOr<std::vector<api::StateApi::GetResult>> results) {
        if (results.ok()) {
          for (auto& result : *results) {
            v1::BulkStateItem* item = response->add_items();
            item->set_key(std::move(result.key));
            item->set_data(std::move(result.value));
            item->set_etag(std::move(result.etag));
            item->set_error(std::move(result.error));
            item->mutable_metadata()->insert(result.metadata.begin(), result.metadata.end());
          }
        }
        call.Finish(results.status());
      });
  return call.reactor;
}

LayottoService::Unary* LayottoService::SaveState(Ctx* ctx,
                                                 const v1::SaveStateRequest* request,
                                                 Empty* response) {
  UnaryCall call = BeginUnary(ctx, kSaveState, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.state->Save(request->store_name(), ToWriteItems(request->states()),
                    [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

LayottoService::Unary* LayottoService::DeleteState(Ctx* ctx,
                                                   const v1::DeleteStateRequest* request,
                                                   Empty* response) {
  UnaryCall call = BeginUnary(ctx, kDeleteState, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  api::StateApi::WriteItem item;
  item.key = request->key();
  if (request->has_etag() && !request->etag().value().empty()) {
    item.etag = request->etag().value();
  }
  if (request->has_options()) {
    item.concurrency = ToConcurrency<v1::StateOptions>(request->options().concurrency());
    item.consistency = ToConsistency<v1::StateOptions>(request->options().consistency());
  }
  std::vector<api::StateApi::WriteItem> items;
  items.push_back(std::move(item));
  apis_.state->Delete(request->store_name(), std::move(items),
                      [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

LayottoService::Unary* LayottoService::DeleteBulkState(Ctx* ctx,
                                                       const v1::DeleteBulkStateRequest* request,
                                                       Empty* response) {
  UnaryCall call = BeginUnary(ctx, kDeleteBulkState, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.state->Delete(request->store_name(), ToWriteItems(request->states()),
                      [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

LayottoService::Unary* LayottoService::ExecuteStateTransaction(
    Ctx* ctx, const v1::ExecuteStateTransactionRequest* request, Empty* response) {
  UnaryCall call = BeginUnary(ctx, kExecuteStateTransaction, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  std::vector<api::StateApi::Operation> operations;
  operations.reserve(request->operations_size());
  for (const auto& op : request->operations()) {
    operations.push_back(api::StateApi::Operation{op.operationtype(), ToWriteItem(op.request())});
  }
  apis_.state->Transact(request->storename(), std::move(operations),
                        [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

// ----------------------------------------------------------------------------------- pubsub

LayottoService::Unary* LayottoService::PublishEvent(Ctx* ctx,
                                                    const v1::PublishEventRequest* request,
                                                    Empty* response) {
  UnaryCall call = BeginUnary(ctx, kPublishEvent, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  api::PubSubApi::PublishRequest publish;
  publish.pubsub_name = request->pubsub_name();
  publish.topic = request->topic();
  publish.data = request->data();
  publish.content_type = request->data_content_type();
  publish.metadata = ToMetadata(request->metadata());
  apis_.pubsub->Publish(std::move(publish), [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

grpc::ServerBidiReactor<v1::SubscribeTopicEventsRequest, v1::SubscribeTopicEventsResponse>*
LayottoService::SubscribeTopicEvents(Ctx* ctx) {
  if (absl::Status token = CheckCallToken(*ctx, apis_.api_token); !token.ok()) {
    m_[kSubscribeTopicEvents]->Begin().Done(ToGrpcStatus(token));
    return new RefusedBidi<v1::SubscribeTopicEventsRequest, v1::SubscribeTopicEventsResponse>(
        token);
  }
  if (apis_.forward != nullptr && apis_.forward->active()) {
    return apis_.forward->Bidi<v1::SubscribeTopicEventsRequest, v1::SubscribeTopicEventsResponse>(
        ctx, MethodPath(kServiceName, *m_[kSubscribeTopicEvents]),
        m_[kSubscribeTopicEvents]->Begin());
  }
  return new TopicStream(apis_, streams_, m_[kSubscribeTopicEvents]->Begin());
}

// ------------------------------------------------------------------ not built in this version

LayottoService::Unary* LayottoService::ListFile(Ctx* ctx,
                                                const v1::ListFileRequest*,
                                                v1::ListFileResp*) {
  return Reply(ctx, *m_[kListFile], absl::UnimplementedError("the File API is not implemented"));
}
LayottoService::Unary* LayottoService::DelFile(Ctx* ctx, const v1::DelFileRequest*, Empty*) {
  return Reply(ctx, *m_[kDelFile], absl::UnimplementedError("the File API is not implemented"));
}
LayottoService::Unary* LayottoService::GetFileMeta(Ctx* ctx,
                                                   const v1::GetFileMetaRequest*,
                                                   v1::GetFileMetaResponse*) {
  return Reply(ctx, *m_[kGetFileMeta], absl::UnimplementedError("the File API is not implemented"));
}
LayottoService::Unary* LayottoService::InvokeBinding(Ctx* ctx,
                                                     const v1::InvokeBindingRequest*,
                                                     v1::InvokeBindingResponse*) {
  return Reply(ctx, *m_[kInvokeBinding],
               absl::UnimplementedError("the Binding API is not implemented"));
}
LayottoService::Unary* LayottoService::GetSecret(Ctx* ctx,
                                                 const v1::GetSecretRequest*,
                                                 v1::GetSecretResponse*) {
  return Reply(ctx, *m_[kGetSecret], absl::UnimplementedError("the Secret API is not implemented"));
}
LayottoService::Unary* LayottoService::GetBulkSecret(Ctx* ctx,
                                                     const v1::GetBulkSecretRequest*,
                                                     v1::GetBulkSecretResponse*) {
  return Reply(ctx, *m_[kGetBulkSecret],
               absl::UnimplementedError("the Secret API is not implemented"));
}

}  // namespace ottava::runtime::grpc_api
