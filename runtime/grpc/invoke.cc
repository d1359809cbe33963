#include "runtime/grpc/invoke.h"

#include <algorithm>
#include <cstdlib>

namespace ottava::runtime::grpc_api {

std::string_view VerbName(int verb) {
  static constexpr std::string_view kNames[] = {"POST",   "GET",     "HEAD",    "POST",  "PUT",
                                                "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  if (verb < 0 || verb >= static_cast<int>(std::size(kNames))) {
    return "POST";
  }
  return kNames[verb];
}

void ApplyCallContext(const grpc::CallbackServerContext& ctx, components::rpc::RpcRequest& rpc) {
  for (const auto& [key, value] : ctx.client_metadata()) {
    std::string name(key.data(), key.size());
    std::string text(value.data(), value.size());
    if (name == "rpc_request_timeout") {
      int64_t ms = std::strtoll(text.c_str(), nullptr, 10);
      if (ms > 0) {
        rpc.timeout = std::chrono::milliseconds(ms);
      }
      continue;
    }
    rpc.metadata.emplace_back(std::move(name), std::move(text));
  }
  // The caller's deadline wins over the metadata timeout, which wins over the default.
  auto deadline = ctx.deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::system_clock::now());
    rpc.timeout = std::max(left, std::chrono::milliseconds(1));
  }
}

}  // namespace ottava::runtime::grpc_api
