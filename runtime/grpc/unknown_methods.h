#pragma once

// Answers every method no registered service declares with UNIMPLEMENTED and a message naming it
// (gRPC's own answer carries no message). Dapr's RPCs for building blocks Ottava lacks (actors,
// crypto, workflows, jobs, conversation, streaming subscriptions) arrive here.

#include <grpcpp/generic/async_generic_service.h>

namespace ottava::runtime::grpc_api {

class UnknownMethods final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;
};

}  // namespace ottava::runtime::grpc_api
