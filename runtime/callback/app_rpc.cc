#include "runtime/callback/app_rpc.h"

namespace ottava::runtime::callback {

void AppAwareRpc::Invoke(components::rpc::RpcRequest request, components::rpc::RpcCallback done) {
  if (app_ && app_->CanInvoke() && request.app_id == app_id_) {
    app_->Invoke(std::move(request), std::move(done));
    return;
  }
  if (mesh_ == nullptr) {
    done(absl::FailedPreconditionError("InvokeService to '" + request.app_id +
                                       "': no mesh is configured (add a \"mesh\" section with a "
                                       "router); only the sidecar's own app is reachable"));
    return;
  }
  mesh_->Invoke(std::move(request), std::move(done));
}

void AppAwareRpc::AddFilter(components::rpc::RpcFilterPtr filter) {
  if (mesh_ != nullptr) {
    mesh_->AddFilter(std::move(filter));
  }
}

}  // namespace ottava::runtime::callback
