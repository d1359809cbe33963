#pragma once

// The Dapr front end: dapr.proto.runtime.v1.Dapr over gRPC's callback API, on the same server
// (and port) as Layotto's Runtime. Like the Layotto service it only converts: requests to the API
// cores' types, results and errors back (reference/dapr-api.md §0.6). RPCs of building blocks
// Ottava lacks answer UNIMPLEMENTED with a message naming the API.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "dapr/proto/runtime/v1/dapr.grpc.pb.h"
#include "runtime/grpc/layotto_service.h"
#include "runtime/grpc/unary_call.h"

namespace ottava::runtime::grpc_api {

class DaprService final : public dapr::proto::runtime::v1::Dapr::CallbackService {
 public:
  /// `apis.metadata` must be set; `apis.shutdown` runs on a gRPC thread after Shutdown answered.
  DaprService(Apis apis, StreamRegistry& streams);

  using Ctx = grpc::CallbackServerContext;
  using Unary = grpc::ServerUnaryReactor;
  using Empty = google::protobuf::Empty;
  template <class T>
  using Writer = grpc::ServerWriteReactor<T>;

  Unary* InvokeService(Ctx* ctx,
                       const dapr::proto::runtime::v1::InvokeServiceRequest* request,
                       dapr::proto::common::v1::InvokeResponse* response) override;

  Unary* GetState(Ctx* ctx,
                  const dapr::proto::runtime::v1::GetStateRequest* request,
                  dapr::proto::runtime::v1::GetStateResponse* response) override;
  Unary* GetBulkState(Ctx* ctx,
                      const dapr::proto::runtime::v1::GetBulkStateRequest* request,
                      dapr::proto::runtime::v1::GetBulkStateResponse* response) override;
  Unary* SaveState(Ctx* ctx,
                   const dapr::proto::runtime::v1::SaveStateRequest* request,
                   Empty* response) override;
  Unary* QueryStateAlpha1(Ctx* ctx,
                          const dapr::proto::runtime::v1::QueryStateRequest* request,
                          dapr::proto::runtime::v1::QueryStateResponse* response) override;
  Unary* DeleteState(Ctx* ctx,
                     const dapr::proto::runtime::v1::DeleteStateRequest* request,
                     Empty* response) override;
  Unary* DeleteBulkState(Ctx* ctx,
                         const dapr::proto::runtime::v1::DeleteBulkStateRequest* request,
                         Empty* response) override;
  Unary* ExecuteStateTransaction(
      Ctx* ctx,
      const dapr::proto::runtime::v1::ExecuteStateTransactionRequest* request,
      Empty* response) override;

  Unary* PublishEvent(Ctx* ctx,
                      const dapr::proto::runtime::v1::PublishEventRequest* request,
                      Empty* response) override;
  Unary* BulkPublishEventAlpha1(Ctx* ctx,
                                const dapr::proto::runtime::v1::BulkPublishRequest* request,
                                dapr::proto::runtime::v1::BulkPublishResponse* response) override;
  Unary* BulkPublishEvent(Ctx* ctx,
                          const dapr::proto::runtime::v1::BulkPublishRequest* request,
                          dapr::proto::runtime::v1::BulkPublishResponse* response) override;

  Unary* InvokeBinding(Ctx* ctx,
                       const dapr::proto::runtime::v1::InvokeBindingRequest* request,
                       dapr::proto::runtime::v1::InvokeBindingResponse* response) override;
  Unary* GetSecret(Ctx* ctx,
                   const dapr::proto::runtime::v1::GetSecretRequest* request,
                   dapr::proto::runtime::v1::GetSecretResponse* response) override;
  Unary* GetBulkSecret(Ctx* ctx,
                       const dapr::proto::runtime::v1::GetBulkSecretRequest* request,
                       dapr::proto::runtime::v1::GetBulkSecretResponse* response) override;

  Unary* GetConfigurationAlpha1(
      Ctx* ctx,
      const dapr::proto::runtime::v1::GetConfigurationRequest* request,
      dapr::proto::runtime::v1::GetConfigurationResponse* response) override;
  Unary* GetConfiguration(Ctx* ctx,
                          const dapr::proto::runtime::v1::GetConfigurationRequest* request,
                          dapr::proto::runtime::v1::GetConfigurationResponse* response) override;
  Writer<dapr::proto::runtime::v1::SubscribeConfigurationResponse>* SubscribeConfigurationAlpha1(
      Ctx* ctx, const dapr::proto::runtime::v1::SubscribeConfigurationRequest* request) override;
  Writer<dapr::proto::runtime::v1::SubscribeConfigurationResponse>* SubscribeConfiguration(
      Ctx* ctx, const dapr::proto::runtime::v1::SubscribeConfigurationRequest* request) override;
  Unary* UnsubscribeConfigurationAlpha1(
      Ctx* ctx,
      const dapr::proto::runtime::v1::UnsubscribeConfigurationRequest* request,
      dapr::proto::runtime::v1::UnsubscribeConfigurationResponse* response) override;
  Unary* UnsubscribeConfiguration(
      Ctx* ctx,
      const dapr::proto::runtime::v1::UnsubscribeConfigurationRequest* request,
      dapr::proto::runtime::v1::UnsubscribeConfigurationResponse* response) override;

  Unary* TryLockAlpha1(Ctx* ctx,
                       const dapr::proto::runtime::v1::TryLockRequest* request,
                       dapr::proto::runtime::v1::TryLockResponse* response) override;
  Unary* UnlockAlpha1(Ctx* ctx,
                      const dapr::proto::runtime::v1::UnlockRequest* request,
                      dapr::proto::runtime::v1::UnlockResponse* response) override;

  Unary* GetMetadata(Ctx* ctx,
                     const dapr::proto::runtime::v1::GetMetadataRequest* request,
                     dapr::proto::runtime::v1::GetMetadataResponse* response) override;
  Unary* SetMetadata(Ctx* ctx,
                     const dapr::proto::runtime::v1::SetMetadataRequest* request,
                     Empty* response) override;
  Unary* Shutdown(Ctx* ctx,
                  const dapr::proto::runtime::v1::ShutdownRequest* request,
                  Empty* response) override;

  /// The open configuration subscriptions, by id (UnsubscribeConfiguration ends one).
  class ConfigSubscriptions;

 private:
  Unary* GetConfig(Ctx* ctx,
                   int method,
                   const dapr::proto::runtime::v1::GetConfigurationRequest* request,
                   dapr::proto::runtime::v1::GetConfigurationResponse* response);
  Writer<dapr::proto::runtime::v1::SubscribeConfigurationResponse>* SubscribeConfig(
      Ctx* ctx, int method, const dapr::proto::runtime::v1::SubscribeConfigurationRequest* request);
  Unary* UnsubscribeConfig(Ctx* ctx,
                           int method,
                           const dapr::proto::runtime::v1::UnsubscribeConfigurationRequest* request,
                           dapr::proto::runtime::v1::UnsubscribeConfigurationResponse* response);
  Unary* BulkPublish(Ctx* ctx,
                     int method,
                     const dapr::proto::runtime::v1::BulkPublishRequest* request,
                     dapr::proto::runtime::v1::BulkPublishResponse* response);
  template <class Request, class Response>
  UnaryCall BeginUnary(Ctx* ctx, int method, const Request* request, Response* response) {
    return BeginUnaryCall(
        ctx, *m_[method], streams_, apis_.api_token, apis_.flow,
        Forwarding<Request, Response>{apis_.forward, kServiceName, request, response});
  }
  static constexpr std::string_view kServiceName = "dapr.proto.runtime.v1.Dapr";

  Apis apis_;
  StreamRegistry& streams_;
  ServiceMetrics metrics_;
  std::vector<const MethodMetrics*> m_;  // by the method enum
  std::shared_ptr<ConfigSubscriptions> config_subscriptions_;
};

}  // namespace ottava::runtime::grpc_api
