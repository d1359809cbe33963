#include "runtime/grpc/unknown_methods.h"

#include <string>

namespace ottava::runtime::grpc_api {
namespace {

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
  return new Unimplemented(ctx->method());
}

}  // namespace ottava::runtime::grpc_api
