#pragma once

// Small helpers for tests that drive the Runtime gRPC service the way an app does.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "spec/proto/runtime/v1/runtime.grpc.pb.h"

namespace ottava::test {

/// A client context whose deadline is `deadline` from now.
std::unique_ptr<grpc::ClientContext> CallContext(
    std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));

/// A stub on its own connection (channels to one target otherwise share a TCP connection).
std::unique_ptr<spec::proto::runtime::v1::Runtime::Stub> NewRuntimeStub(const std::string& target);

/// SaveState of one item in store "state". An empty etag sends none.
grpc::Status SaveState(spec::proto::runtime::v1::Runtime::Stub& stub,
                       const std::string& key,
                       const std::string& value,
                       const std::string& etag = "",
                       spec::proto::runtime::v1::StateOptions::StateConcurrency concurrency =
                           spec::proto::runtime::v1::StateOptions::CONCURRENCY_UNSPECIFIED,
                       const std::map<std::string, std::string>& metadata = {},
                       std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));

/// GetState of one key in store "state".
grpc::Status GetState(spec::proto::runtime::v1::Runtime::Stub& stub,
                      const std::string& key,
                      spec::proto::runtime::v1::GetStateResponse* response);

/// Saves config item `key` = `content` in store "config" through `writer`, again every 20 ms,
/// until `stream` (already subscribed to the key) delivers an update, which is returned. A
/// subscription registers asynchronously, so one save right after subscribing may go unseen.
/// Returns false when the stream ends first.
bool SaveConfigUntilSeen(
    spec::proto::runtime::v1::Runtime::Stub& writer,
    const std::string& key,
    const std::string& content,
    grpc::ClientReaderWriter<spec::proto::runtime::v1::SubscribeConfigurationRequest,
                             spec::proto::runtime::v1::SubscribeConfigurationResponse>& stream,
    spec::proto::runtime::v1::SubscribeConfigurationResponse* update);

}  // namespace ottava::test
