#pragma once

// InvokeService, shared by the Layotto and Dapr front ends: both protos number the HTTP verbs
// alike, and both pass the caller's metadata and deadline on to the RPC component.

#include <grpcpp/grpcpp.h>

#include <string_view>

#include "components/rpc/rpc.h"

namespace ottava::runtime::grpc_api {

/// The HTTP verb of HTTPExtension.Verb `verb` (GET 1 ... PATCH 9); NONE and unknown values are
/// POST.
std::string_view VerbName(int verb);

/// Copies the call's metadata into `rpc.metadata` (except `rpc_request_timeout`, which sets the
/// timeout in ms) and lets the caller's deadline, when it has one, win over that timeout.
void ApplyCallContext(const grpc::CallbackServerContext& ctx, components::rpc::RpcRequest& rpc);

}  // namespace ottava::runtime::grpc_api
