#pragma once

// The Layotto front-end: spec.proto.runtime.v1.Runtime over gRPC's callback API. Each handler
// converts the request, calls the API core and finishes from the core's completion; it never
// blocks. Streams (SubscribeConfiguration, SubscribeTopicEvents) are reactors registered with the
// StreamRegistry so shutdown can end them.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/dispatcher.h"
#include "common/stats.h"
#include "components/rpc/rpc.h"
#include "mesh/filter/flow_control/controller.h"
#include "runtime/api/config_api.h"
#include "runtime/api/lock_api.h"
#include "runtime/api/metadata_api.h"
#include "runtime/api/pubsub_api.h"
#include "runtime/api/sequencer_api.h"
#include "runtime/api/state_api.h"
#include "runtime/grpc/metrics.h"
#include "runtime/grpc/stream_registry.h"
#include "runtime/grpc/unary_call.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"

namespace ottava::runtime::grpc_api {

/// Everything the front-end calls; owned by the runtime, outlives the service.
struct Apis {
  api::StateApi* state;
  api::LockApi* lock;
  api::SequencerApi* sequencer;
  api::ConfigApi* config;
  api::PubSubApi* pubsub;
  Dispatcher* dispatcher;  // the component dispatcher (stream subscriptions run there)
  stats::Store* stats;
  std::string app_id;
  components::rpc::Rpc* rpc = nullptr;     // null when no mesh is configured
  api::MetadataApi* metadata = nullptr;    // Dapr's GetMetadata / SetMetadata
  std::function<void()> shutdown;          // Dapr's Shutdown: asks the process to stop
  mesh::flow::Controller* flow = nullptr;  // flow control of every unary call ("runtime:<Method>")
  std::string api_token;                   // when set, every call must carry it (dapr-api-token)
  CallForwarder* forward = nullptr;        // an upgrade's old process forwards calls through it
};

class LayottoService final : public spec::proto::runtime::v1::Runtime::CallbackService {
 public:
  LayottoService(Apis apis, StreamRegistry& streams);

  using Ctx = grpc::CallbackServerContext;
  using Unary = grpc::ServerUnaryReactor;
  using Empty = google::protobuf::Empty;

  Unary* SayHello(Ctx* ctx,
                  const spec::proto::runtime::v1::SayHelloRequest* request,
                  spec::proto::runtime::v1::SayHelloResponse* response) override;
  Unary* InvokeService(Ctx* ctx,
                       const spec::proto::runtime::v1::InvokeServiceRequest* request,
                       spec::proto::runtime::v1::InvokeResponse* response) override;

  Unary* GetConfiguration(Ctx* ctx,
                          const spec::proto::runtime::v1::GetConfigurationRequest* request,
                          spec::proto::runtime::v1::GetConfigurationResponse* response) override;
  Unary* SaveConfiguration(Ctx* ctx,
                           const spec::proto::runtime::v1::SaveConfigurationRequest* request,
                           Empty* response) override;
  Unary* DeleteConfiguration(Ctx* ctx,
                             const spec::proto::runtime::v1::DeleteConfigurationRequest* request,
                             Empty* response) override;
  grpc::ServerBidiReactor<spec::proto::runtime::v1::SubscribeConfigurationRequest,
                          spec::proto::runtime::v1::SubscribeConfigurationResponse>*
  SubscribeConfiguration(Ctx* ctx) override;

  Unary* TryLock(Ctx* ctx,
                 const spec::proto::runtime::v1::TryLockRequest* request,
                 spec::proto::runtime::v1::TryLockResponse* response) override;
  Unary* Unlock(Ctx* ctx,
                const spec::proto::runtime::v1::UnlockRequest* request,
                spec::proto::runtime::v1::UnlockResponse* response) override;
  Unary* LockKeepAlive(Ctx* ctx,
                       const spec::proto::runtime::v1::LockKeepAliveRequest* request,
                       spec::proto::runtime::v1::LockKeepAliveResponse* response) override;

  Unary* GetNextId(Ctx* ctx,
                   const spec::proto::runtime::v1::GetNextIdRequest* request,
                   spec::proto::runtime::v1::GetNextIdResponse* response) override;

  Unary* GetState(Ctx* ctx,
                  const spec::proto::runtime::v1::GetStateRequest* request,
                  spec::proto::runtime::v1::GetStateResponse* response) override;
  Unary* GetBulkState(Ctx* ctx,
                      const spec::proto::runtime::v1::GetBulkStateRequest* request,
                      spec::proto::runtime::v1::GetBulkStateResponse* response) override;
  Unary* SaveState(Ctx* ctx,
                   const spec::proto::runtime::v1::SaveStateRequest* request,
                   Empty* response) override;
  Unary* DeleteState(Ctx* ctx,
                     const spec::proto::runtime::v1::DeleteStateRequest* request,
                     Empty* response) override;
  Unary* DeleteBulkState(Ctx* ctx,
                         const spec::proto::runtime::v1::DeleteBulkStateRequest* request,
                         Empty* response) override;
  Unary* ExecuteStateTransaction(
      Ctx* ctx,
      const spec::proto::runtime::v1::ExecuteStateTransactionRequest* request,
      Empty* response) override;

  Unary* PublishEvent(Ctx* ctx,
                      const spec::proto::runtime::v1::PublishEventRequest* request,
                      Empty* response) override;
  grpc::ServerBidiReactor<spec::proto::runtime::v1::SubscribeTopicEventsRequest,
                          spec::proto::runtime::v1::SubscribeTopicEventsResponse>*
  SubscribeTopicEvents(Ctx* ctx) override;

  Unary* ListFile(Ctx* ctx,
                  const spec::proto::runtime::v1::ListFileRequest* request,
                  spec::proto::runtime::v1::ListFileResp* response) override;
  Unary* DelFile(Ctx* ctx,
                 const spec::proto::runtime::v1::DelFileRequest* request,
                 Empty* response) override;
  Unary* GetFileMeta(Ctx* ctx,
                     const spec::proto::runtime::v1::GetFileMetaRequest* request,
                     spec::proto::runtime::v1::GetFileMetaResponse* response) override;
  Unary* InvokeBinding(Ctx* ctx,
                       const spec::proto::runtime::v1::InvokeBindingRequest* request,
                       spec::proto::runtime::v1::InvokeBindingResponse* response) override;
  Unary* GetSecret(Ctx* ctx,
                   const spec::proto::runtime::v1::GetSecretRequest* request,
                   spec::proto::runtime::v1::GetSecretResponse* response) override;
  Unary* GetBulkSecret(Ctx* ctx,
                       const spec::proto::runtime::v1::GetBulkSecretRequest* request,
                       spec::proto::runtime::v1::GetBulkSecretResponse* response) override;

 private:
  using UnaryCall = grpc_api::UnaryCall;
  /// Begins a call of `method` (an index into m_).
  template <class Request, class Response>
  UnaryCall BeginUnary(Ctx* ctx, int method, const Request* request, Response* response) {
    return BeginUnaryCall(
        ctx, *m_[method], streams_, apis_.api_token, apis_.flow,
        Forwarding<Request, Response>{apis_.forward, kServiceName, request, response});
  }
  static constexpr std::string_view kServiceName = "spec.proto.runtime.v1.Runtime";
  /// Finishes a unary call with `status` and records it.
  Unary* Reply(Ctx* ctx, const MethodMetrics& metrics, const absl::Status& status);

  Apis apis_;
  StreamRegistry& streams_;
  ServiceMetrics metrics_;
  // Indexed by the method enum; resolved once so the request path does no map lookups.
  std::vector<const MethodMetrics*> m_;
};

}  // namespace ottava::runtime::grpc_api
