#include "runtime/grpc/dapr_service.h"

#include <atomic>
#include <random>
#include <set>

#include "common/logging.h"
#include "runtime/grpc/invoke.h"
#include "runtime/grpc/state_convert.h"
#include "runtime/grpc/status_bridge.h"
#include "runtime/version.h"

namespace ottava::runtime::grpc_api {

namespace v1 = dapr::proto::runtime::v1;
namespace common = dapr::proto::common::v1;
namespace state = components::state;

namespace {

enum Method : int {
  kInvokeService,
  kGetState,
  kGetBulkState,
  kSaveState,
  kQueryStateAlpha1,
  kDeleteState,
  kDeleteBulkState,
  kExecuteStateTransaction,
  kPublishEvent,
  kBulkPublishEventAlpha1,
  kBulkPublishEvent,
  kInvokeBinding,
  kGetSecret,
  kGetBulkSecret,
  kGetConfigurationAlpha1,
  kGetConfiguration,
  kSubscribeConfigurationAlpha1,
  kSubscribeConfiguration,
  kUnsubscribeConfigurationAlpha1,
  kUnsubscribeConfiguration,
  kTryLockAlpha1,
  kUnlockAlpha1,
  kGetMetadata,
  kSetMetadata,
  kShutdown,
  kMethodCount,
};

// Counted apart from Layotto's methods of the same name.
constexpr const char* kMethodNames[kMethodCount] = {
    "dapr/InvokeService",
    "dapr/GetState",
    "dapr/GetBulkState",
    "dapr/SaveState",
    "dapr/QueryStateAlpha1",
    "dapr/DeleteState",
    "dapr/DeleteBulkState",
    "dapr/ExecuteStateTransaction",
    "dapr/PublishEvent",
    "dapr/BulkPublishEventAlpha1",
    "dapr/BulkPublishEvent",
    "dapr/InvokeBinding",
    "dapr/GetSecret",
    "dapr/GetBulkSecret",
    "dapr/GetConfigurationAlpha1",
    "dapr/GetConfiguration",
    "dapr/SubscribeConfigurationAlpha1",
    "dapr/SubscribeConfiguration",
    "dapr/UnsubscribeConfigurationAlpha1",
    "dapr/UnsubscribeConfiguration",
    "dapr/TryLockAlpha1",
    "dapr/UnlockAlpha1",
    "dapr/GetMetadata",
    "dapr/SetMetadata",
    "dapr/Shutdown",
};

api::ConfigApi::Selector ToSelector(const google::protobuf::RepeatedPtrField<std::string>& keys,
                                    const google::protobuf::Map<std::string, std::string>& md) {
  api::ConfigApi::Selector selector;  // app id, group and label: the store's defaults
  selector.keys.assign(keys.begin(), keys.end());
  selector.metadata = ToMetadata(md);
  return selector;
}

// Dapr's items carry a value, a version and metadata; Ottava's version travels in the metadata.
void ToDaprItems(const std::vector<components::config_store::Item>& items,
                 google::protobuf::Map<std::string, common::ConfigurationItem>* out) {
  for (const auto& item : items) {
    common::ConfigurationItem& dapr_item = (*out)[item.key];
    dapr_item.set_value(item.content);
    if (auto it = item.metadata.find("version"); it != item.metadata.end()) {
      dapr_item.set_version(it->second);
    }
    dapr_item.mutable_metadata()->insert(item.metadata.begin(), item.metadata.end());
  }
}

std::string NewSubscriptionId() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 random(std::random_device{}());
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%016llx-%llu", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(++counter));
  return buffer;
}

absl::Status NotBuilt(std::string_view api) {
  return absl::UnimplementedError("the " + std::string(api) + " API is not implemented by Ottava");
}

// ---------------------------------------------------------------------------------------------
// SubscribeConfiguration: a server stream. The first message carries only the subscription id
// (as daprd sends it; SDKs keep the id and skip messages without items), every later one the
// changed items. UnsubscribeConfiguration(id) or the client's cancel ends it.

class ConfigWriteStream;

}  // namespace

class DaprService::ConfigSubscriptions {
 public:
  void Add(const std::string& id, ConfigWriteStream* stream) {
    absl::MutexLock lock(&mu_);
    streams_[id] = stream;
  }
  void Remove(const std::string& id) {
    absl::MutexLock lock(&mu_);
    streams_.erase(id);
  }
  /// Ends the stream `id`; false when there is none.
  bool End(const std::string& id);

 private:
  absl::Mutex mu_;
  std::map<std::string, ConfigWriteStream*> streams_ ABSL_GUARDED_BY(mu_);
};

namespace {

class ConfigWriteStream final : public QueuedWriteReactor<v1::SubscribeConfigurationResponse> {
 public:
  ConfigWriteStream(api::ConfigApi& api,
                    StreamRegistry& registry,
                    std::shared_ptr<DaprService::ConfigSubscriptions> subscriptions,
                    MethodMetrics::Call call,
                    const v1::SubscribeConfigurationRequest& request)
      : QueuedWriteReactor(registry),
        subscriptions_(std::move(subscriptions)),
        call_(call),
        id_(NewSubscriptionId()) {
    if (registry.closed()) {
      Fail(absl::UnavailableError("the sidecar is shutting down"));
      return;
    }
    v1::SubscribeConfigurationResponse first;
    first.set_id(id_);
    Enqueue(std::move(first));
    const std::string id = id_;
    auto subscription =
        api.Subscribe(request.store_name(), ToSelector(request.keys(), request.metadata()),
                      [this, id](std::vector<components::config_store::Item> items) {
                        v1::SubscribeConfigurationResponse response;
                        response.set_id(id);
                        ToDaprItems(items, response.mutable_items());
                        Enqueue(std::move(response));
                      });
    if (!subscription.ok()) {
      Fail(subscription.status());
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      subscription_ = std::move(*subscription);
    }
    subscriptions_->Add(id_, this);
  }

 protected:
  void Cleanup() override {
    subscriptions_->Remove(id_);
    std::unique_ptr<api::ConfigApi::Subscription> subscription;
    {
      absl::MutexLock lock(&mu_);
      subscription.swap(subscription_);
    }
    subscription.reset();  // unsubscribes; no handler runs after this
    call_.Done(status_.error_code());
  }

 private:
  void Fail(const absl::Status& status) {
    status_ = ToGrpcStatus(status);
    FinishOnce(status_);
  }

  std::shared_ptr<DaprService::ConfigSubscriptions> subscriptions_;
  MethodMetrics::Call call_;
  const std::string id_;
  grpc::Status status_;
  absl::Mutex mu_;
  std::unique_ptr<api::ConfigApi::Subscription> subscription_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

bool DaprService::ConfigSubscriptions::End(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    return false;
  }
  // Finishing under the lock keeps the stream alive: its Cleanup (which removes it here) waits.
  it->second->FinishOnce(grpc::Status::OK);
  streams_.erase(it);
  return true;
}

DaprService::DaprService(Apis apis, StreamRegistry& streams)
    : apis_(std::move(apis)),
      streams_(streams),
      metrics_(*apis_.stats),
      config_subscriptions_(std::make_shared<ConfigSubscriptions>()) {
  m_.reserve(kMethodCount);
  for (const char* name : kMethodNames) {
    m_.push_back(&metrics_.Method(name));
  }
}

// ----------------------------------------------------------------------------------- invoke

DaprService::Unary* DaprService::InvokeService(Ctx* ctx,
                                               const v1::InvokeServiceRequest* request,
                                               common::InvokeResponse* response) {
  UnaryCall call = BeginUnary(ctx, kInvokeService, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  if (request->id().empty()) {
    call.Finish(absl::InvalidArgumentError("InvokeService: id (the target app) is empty"));
    return call.reactor;
  }
  if (apis_.rpc == nullptr) {
    call.Finish(absl::FailedPreconditionError(
        "InvokeService: no mesh is configured (add a \"mesh\" section with a router)"));
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

// ------------------------------------------------------------------------------------ state

DaprService::Unary* DaprService::GetState(Ctx* ctx,
                                          const v1::GetStateRequest* request,
                                          v1::GetStateResponse* response) {
  UnaryCall call = BeginUnary(ctx, kGetState, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.state->Get(request->store_name(), request->key(),
                   ToConsistency<common::StateOptions>(request->consistency()),
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

DaprService::Unary* DaprService::GetBulkState(Ctx* ctx,
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

DaprService::Unary* DaprService::SaveState(Ctx* ctx,
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

DaprService::Unary* DaprService::QueryStateAlpha1(Ctx* ctx,
                                                  const v1::QueryStateRequest*,
                                                  v1::QueryStateResponse*) {
  return ReplyNow(ctx, *m_[kQueryStateAlpha1], NotBuilt("state query"), apis_.api_token);
}

DaprService::Unary* DaprService::DeleteState(Ctx* ctx,
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
    item.concurrency = ToConcurrency<common::StateOptions>(request->options().concurrency());
    item.consistency = ToConsistency<common::StateOptions>(request->options().consistency());
  }
  item.metadata = ToMetadata(request->metadata());
  std::vector<api::StateApi::WriteItem> items;
  items.push_back(std::move(item));
  apis_.state->Delete(request->store_name(), std::move(items),
                      [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

DaprService::Unary* DaprService::DeleteBulkState(Ctx* ctx,
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

DaprService::Unary* DaprService::ExecuteStateTransaction(
    Ctx* ctx, const v1::ExecuteStateTransactionRequest* request, Empty* response) {
  UnaryCall call = BeginUnary(ctx, kExecuteStateTransaction, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  std::vector<api::StateApi::Operation> operations;
  operations.reserve(request->operations_size());
  for (const auto& op : request->operations()) {
    api::StateApi::Operation operation{op.operationtype(), ToWriteItem(op.request())};
    // Request-level metadata applies to every operation; the item's own wins.
    for (const auto& [key, value] : request->metadata()) {
      operation.item.metadata.emplace(key, value);
    }
    operations.push_back(std::move(operation));
  }
  apis_.state->Transact(request->storename(), std::move(operations),
                        [call](absl::Status status) { call.Finish(status); });
  return call.reactor;
}

// ----------------------------------------------------------------------------------- pubsub

DaprService::Unary* DaprService::PublishEvent(Ctx* ctx,
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

DaprService::Unary* DaprService::BulkPublishEventAlpha1(Ctx* ctx,
                                                        const v1::BulkPublishRequest* request,
                                                        v1::BulkPublishResponse* response) {
  return BulkPublish(ctx, kBulkPublishEventAlpha1, request, response);
}

DaprService::Unary* DaprService::BulkPublishEvent(Ctx* ctx,
                                                  const v1::BulkPublishRequest* request,
                                                  v1::BulkPublishResponse* response) {
  return BulkPublish(ctx, kBulkPublishEvent, request, response);
}

// Each entry is published on its own; the call succeeds when the request is valid, and the
// entries the broker refused are listed with their error (Dapr's partial-failure contract).
DaprService::Unary* DaprService::BulkPublish(Ctx* ctx,
                                             int method,
                                             const v1::BulkPublishRequest* request,
                                             v1::BulkPublishResponse* response) {
  UnaryCall call = BeginUnary(ctx, method, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  if (absl::StatusOr<components::pubsub::PubSub*> found =
          apis_.pubsub->Find(request->pubsub_name());
      !found.ok()) {
    call.Finish(found.status());
    return call.reactor;
  }
  if (request->topic().empty()) {
    call.Finish(absl::InvalidArgumentError("topic is empty"));
    return call.reactor;
  }
  std::set<std::string> ids;
  for (const auto& entry : request->entries()) {
    if (entry.entry_id().empty() || !ids.insert(entry.entry_id()).second) {
      call.Finish(absl::InvalidArgumentError("entryId is duplicated or not present for entry '" +
                                             entry.entry_id() + "'"));
      return call.reactor;
    }
  }
  if (request->entries().empty()) {
    call.Finish(absl::OkStatus());
    return call.reactor;
  }
  struct Failures {
    absl::Mutex mu;
    std::vector<std::pair<std::string, std::string>> list ABSL_GUARDED_BY(mu);
  };
  auto failures = std::make_shared<Failures>();
  auto join = api::Join::Create(request->entries_size(), [call, response, failures](absl::Status) {
    absl::MutexLock lock(&failures->mu);
    for (auto& [id, error] : failures->list) {
      v1::BulkPublishResponseFailedEntry* failed = response->add_failedentries();
      failed->set_entry_id(std::move(id));
      failed->set_error(std::move(error));
    }
    call.Finish(absl::OkStatus());
  });
  for (const auto& entry : request->entries()) {
    api::PubSubApi::PublishRequest publish;
    publish.pubsub_name = request->pubsub_name();
    publish.topic = request->topic();
    publish.data = entry.event();
    publish.content_type = entry.content_type();
    publish.metadata = ToMetadata(entry.metadata());
    for (const auto& [key, value] : request->metadata()) {
      publish.metadata.emplace(key, value);
    }
    apis_.pubsub->Publish(std::move(publish),
                          [join, failures, id = entry.entry_id()](absl::Status status) {
                            if (!status.ok()) {
                              absl::MutexLock lock(&failures->mu);
                              failures->list.emplace_back(id, std::string(status.message()));
                            }
                            join->Complete(absl::OkStatus());
                          });
  }
  return call.reactor;
}

// ------------------------------------------------------------------ not built in this version

DaprService::Unary* DaprService::InvokeBinding(Ctx* ctx,
                                               const v1::InvokeBindingRequest*,
                                               v1::InvokeBindingResponse*) {
  return ReplyNow(ctx, *m_[kInvokeBinding], NotBuilt("Binding"), apis_.api_token);
}

DaprService::Unary* DaprService::GetSecret(Ctx* ctx,
                                           const v1::GetSecretRequest*,
                                           v1::GetSecretResponse*) {
  return ReplyNow(ctx, *m_[kGetSecret], NotBuilt("Secret"), apis_.api_token);
}

DaprService::Unary* DaprService::GetBulkSecret(Ctx* ctx,
                                               const v1::GetBulkSecretRequest*,
                                               v1::GetBulkSecretResponse*) {
  return ReplyNow(ctx, *m_[kGetBulkSecret], NotBuilt("Secret"), apis_.api_token);
}

// ---------------------------------------------------------------------------- configuration

DaprService::Unary* DaprService::GetConfig(Ctx* ctx,
                                           int method,
                                           const v1::GetConfigurationRequest* request,
                                           v1::GetConfigurationResponse* response) {
  UnaryCall call = BeginUnary(ctx, method, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.config->Get(
      request->store_name(), ToSelector(request->keys(), request->metadata()),
      [response, call](absl::StatusOr<std::vector<components::config_store::Item>> items) {
        if (items.ok()) {
          ToDaprItems(*items, response->mutable_items());
        }
        call.Finish(items.status());
      });
  return call.reactor;
}

DaprService::Unary* DaprService::GetConfigurationAlpha1(Ctx* ctx,
                                                        const v1::GetConfigurationRequest* request,
                                                        v1::GetConfigurationResponse* response) {
  return GetConfig(ctx, kGetConfigurationAlpha1, request, response);
}

DaprService::Unary* DaprService::GetConfiguration(Ctx* ctx,
                                                  const v1::GetConfigurationRequest* request,
                                                  v1::GetConfigurationResponse* response) {
  return GetConfig(ctx, kGetConfiguration, request, response);
}

DaprService::Writer<v1::SubscribeConfigurationResponse>* DaprService::SubscribeConfig(
    Ctx* ctx, int method, const v1::SubscribeConfigurationRequest* request) {
  if (apis_.forward != nullptr && apis_.forward->active()) {
    return apis_.forward
        ->ServerStream<v1::SubscribeConfigurationRequest, v1::SubscribeConfigurationResponse>(
            ctx, MethodPath(kServiceName, *m_[method]), *request, m_[method]->Begin());
  }
  return new ConfigWriteStream(*apis_.config, streams_, config_subscriptions_, m_[method]->Begin(),
                               *request);
}

DaprService::Writer<v1::SubscribeConfigurationResponse>* DaprService::SubscribeConfigurationAlpha1(
    Ctx* ctx, const v1::SubscribeConfigurationRequest* request) {
  if (absl::Status token = CheckCallToken(*ctx, apis_.api_token); !token.ok()) {
    m_[kSubscribeConfigurationAlpha1]->Begin().Done(ToGrpcStatus(token));
    return new RefusedWriter<v1::SubscribeConfigurationResponse>(token);
  }
  return SubscribeConfig(ctx, kSubscribeConfigurationAlpha1, request);
}

DaprService::Writer<v1::SubscribeConfigurationResponse>* DaprService::SubscribeConfiguration(
    Ctx* ctx, const v1::SubscribeConfigurationRequest* request) {
  if (absl::Status token = CheckCallToken(*ctx, apis_.api_token); !token.ok()) {
    m_[kSubscribeConfiguration]->Begin().Done(ToGrpcStatus(token));
    return new RefusedWriter<v1::SubscribeConfigurationResponse>(token);
  }
  return SubscribeConfig(ctx, kSubscribeConfiguration, request);
}

DaprService::Unary* DaprService::UnsubscribeConfig(
    Ctx* ctx,
    int method,
    const v1::UnsubscribeConfigurationRequest* request,
    v1::UnsubscribeConfigurationResponse* response) {
  UnaryCall call = BeginUnary(ctx, method, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  if (request->id().empty()) {
    call.Finish(absl::InvalidArgumentError("id is empty"));
    return call.reactor;
  }
  if (config_subscriptions_->End(request->id())) {
    response->set_ok(true);
  } else {
    response->set_ok(false);
    response->set_message("subscription " + request->id() + " does not exist");
  }
  call.Finish(absl::OkStatus());
  return call.reactor;
}

DaprService::Unary* DaprService::UnsubscribeConfigurationAlpha1(
    Ctx* ctx,
    const v1::UnsubscribeConfigurationRequest* request,
    v1::UnsubscribeConfigurationResponse* response) {
  return UnsubscribeConfig(ctx, kUnsubscribeConfigurationAlpha1, request, response);
}

DaprService::Unary* DaprService::UnsubscribeConfiguration(
    Ctx* ctx,
    const v1::UnsubscribeConfigurationRequest* request,
    v1::UnsubscribeConfigurationResponse* response) {
  return UnsubscribeConfig(ctx, kUnsubscribeConfiguration, request, response);
}

// ------------------------------------------------------------------------------------- lock

DaprService::Unary* DaprService::TryLockAlpha1(Ctx* ctx,
                                               const v1::TryLockRequest* request,
                                               v1::TryLockResponse* response) {
  UnaryCall call = BeginUnary(ctx, kTryLockAlpha1, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.lock->TryLock(request->store_name(), request->resource_id(), request->lock_owner(),
                      request->expiry_in_seconds(), [response, call](absl::StatusOr<bool> ok) {
                        if (ok.ok()) {
                          response->set_success(*ok);
                        }
                        call.Finish(ok.status());
                      });
  return call.reactor;
}

DaprService::Unary* DaprService::UnlockAlpha1(Ctx* ctx,
                                              const v1::UnlockRequest* request,
                                              v1::UnlockResponse* response) {
  UnaryCall call = BeginUnary(ctx, kUnlockAlpha1, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  apis_.lock->Unlock(request->store_name(), request->resource_id(), request->lock_owner(),
                     [response, call](absl::StatusOr<components::lock::LockStatus> s) {
                       if (s.ok()) {
                         switch (*s) {
                           case components::lock::LockStatus::kSuccess:
                             response->set_status(v1::UnlockResponse::SUCCESS);
                             break;
                           case components::lock::LockStatus::kLockDoesNotExist:
                             response->set_status(v1::UnlockResponse::LOCK_DOES_NOT_EXIST);
                             break;
                           case components::lock::LockStatus::kLockBelongsToOthers:
                             response->set_status(v1::UnlockResponse::LOCK_BELONGS_TO_OTHERS);
                             break;
                         }
                       }
                       call.Finish(s.status());
                     });
  return call.reactor;
}

// --------------------------------------------------------------------- metadata, shutdown

DaprService::Unary* DaprService::GetMetadata(Ctx* ctx,
                                             const v1::GetMetadataRequest* request,
                                             v1::GetMetadataResponse* response) {
  UnaryCall call = BeginUnary(ctx, kGetMetadata, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  const api::RuntimeInfo info = apis_.metadata->Describe();
  response->set_id(info.app_id);
  response->set_runtime_version(info.version);
  for (const auto& component : info.components) {
    v1::RegisteredComponents* out = response->add_registered_components();
    out->set_name(component.name);
    out->set_type(api::DaprComponentType(component.kind, component.type));
    out->set_version("v1");
    for (const auto& capability : component.capabilities) {
      out->add_capabilities(capability);
    }
  }
  for (const auto& subscription : info.subscriptions) {
    v1::PubsubSubscription* out = response->add_subscriptions();
    out->set_pubsub_name(subscription.pubsub_name);
    out->set_topic(subscription.topic);
    out->mutable_metadata()->insert(subscription.metadata.begin(), subscription.metadata.end());
    out->set_dead_letter_topic(subscription.dead_letter_topic);
    out->set_type(subscription.source == "config" ? v1::DECLARATIVE : v1::PROGRAMMATIC);
  }
  response->mutable_extended_metadata()->insert(info.attributes.begin(), info.attributes.end());
  response->mutable_actor_runtime()->set_runtime_status(v1::ActorRuntime::DISABLED);
  call.Finish(absl::OkStatus());
  return call.reactor;
}

DaprService::Unary* DaprService::SetMetadata(Ctx* ctx,
                                             const v1::SetMetadataRequest* request,
                                             Empty* response) {
  UnaryCall call = BeginUnary(ctx, kSetMetadata, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  call.Finish(apis_.metadata->Set(request->key(), request->value()));
  return call.reactor;
}

DaprService::Unary* DaprService::Shutdown(Ctx* ctx,
                                          const v1::ShutdownRequest* request,
                                          Empty* response) {
  UnaryCall call = BeginUnary(ctx, kShutdown, request, response);
  if (call.rejected) {
    return call.reactor;
  }
  call.Finish(absl::OkStatus());
  OTTAVA_LOG(Grpc, info, "Dapr Shutdown requested");
  if (apis_.shutdown) {
    apis_.shutdown();
  }
  return call.reactor;
}

}  // namespace ottava::runtime::grpc_api
