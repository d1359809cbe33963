#include "runtime/grpc/unknown_methods.h"

#include <string>

#include "runtime/grpc/api_token_check.h"

namespace ottava::runtime::grpc_api {
namespace {

class Refused final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refused(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

class Unimplemented final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Unimplemented(const std::string& method) {
    // "/dapr.proto.runtime.v1.Dapr/InvokeActor" -> "dapr.proto.runtime.v1.Dapr/InvokeActor".
    std::string name = method.empty() || method[0] != '/' ? method : method.substr(1);
    Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        name + " is not implemented by Ottava (this building block is not "
                               "built; see README \"Dapr compatibility\")"));
  }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerGenericBidiReactor* UnknownMethods::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  if (absl::Status token = CheckCallToken(*ctx, api_token_); !token.ok()) {
    return new Refused(token);
  }
  return new Unimplemented(ctx->method());
}

}  // namespace ottava::runtime::grpc_api
