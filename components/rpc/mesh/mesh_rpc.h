#pragma once

// RPC over the mesh engine: the one place where components meet the mesh (DESIGN.md §2). A call
// becomes an HTTP/1.1 request (verb, "/<method>?<query>", content-type, metadata as headers,
// caller id) that enters the engine in-process on a worker, through `mesh.rpc_router`.

#include <memory>
#include <vector>

#include "components/rpc/rpc.h"
#include "mesh/engine.h"

namespace ottava::components::rpc {

class MeshRpc : public Rpc {
 public:
  /// `engine` outlives this object.
  explicit MeshRpc(mesh::Engine& engine) : engine_(engine) {}

  void Invoke(RpcRequest request, RpcCallback done) override;
  void AddFilter(RpcFilterPtr filter) override { filters_.push_back(std::move(filter)); }

 private:
  mesh::Engine& engine_;
  std::vector<RpcFilterPtr> filters_;
};

}  // namespace ottava::components::rpc
