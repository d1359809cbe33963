#pragma once

// Answers every method no registered service declares with UNIMPLEMENTED and a message naming it
// (gRPC's own answer carries no message). Dapr's RPCs for building blocks Ottava lacks (actors,
// crypto, workflows, jobs, conversation, streaming subscriptions) arrive here. With an API token
// configured, a call without it gets UNAUTHENTICATED first, as on every other method: an unknown
// method must not tell an unauthenticated caller which methods exist.

#include <grpcpp/generic/async_generic_service.h>

#include <string>
#include <utility>

namespace ottava::runtime::grpc_api {

class UnknownMethods final : public grpc::CallbackGenericService {
 public:
  /// `api_token` empty: no token required.
  explicit UnknownMethods(std::string api_token) : api_token_(std::move(api_token)) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  const std::string api_token_;
};

}  // namespace ottava::runtime::grpc_api
