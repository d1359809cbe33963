#pragma once

// The RPC building block as the API front ends see it: InvokeService to the sidecar's own app id
// goes to the app over its channel (Dapr's OnInvoke, or HTTP to a Dapr HTTP app); every other id
// goes through the mesh. Layotto's and Dapr's front ends (gRPC and HTTP) share it, so the choice
// is made once.
//
// Threading: as components::rpc::Rpc (any thread, never blocks).

#include <string>

#include "components/rpc/rpc.h"
#include "runtime/callback/app_channel.h"

namespace ottava::runtime::callback {

class AppAwareRpc : public components::rpc::Rpc {
 public:
  /// `mesh` may be null (no mesh section); `app` may be null or unable to invoke.
  AppAwareRpc(components::rpc::Rpc* mesh, AppChannelPtr app, std::string app_id)
      : mesh_(mesh), app_(std::move(app)), app_id_(std::move(app_id)) {}

  /// To the app when `request.app_id` is the sidecar's own id and the app's channel can invoke;
  /// else to the mesh; without a mesh, FAILED_PRECONDITION.
  void Invoke(components::rpc::RpcRequest request, components::rpc::RpcCallback done) override;
  /// Filters belong to the mesh path.
  void AddFilter(components::rpc::RpcFilterPtr filter) override;

 private:
  components::rpc::Rpc* mesh_;
  AppChannelPtr app_;
  const std::string app_id_;
};

}  // namespace ottava::runtime::callback
