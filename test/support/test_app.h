#pragma once

// A test application serving AppCallback (the sync gRPC API, so handlers may sleep to play a hung
// app). It subscribes to the topics it is given and answers each event from a policy.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "spec/proto/runtime/v1/appcallback.grpc.pb.h"

namespace ottava::test {

class TestApp final : public spec::proto::runtime::v1::AppCallback::Service {
 public:
  struct Reply {
    grpc::Status status = grpc::Status::OK;
    spec::proto::runtime::v1::TopicEventResponse::TopicEventResponseStatus verdict =
        spec::proto::runtime::v1::TopicEventResponse::SUCCESS;
    std::chrono::milliseconds delay{0};
  };
  using Policy =
      std::function<Reply(const spec::proto::runtime::v1::TopicEventRequest&, int attempt)>;

  /// Listens on `port` (0 = any) on 127.0.0.1.
  explicit TestApp(std::vector<spec::proto::runtime::v1::TopicSubscription> subscriptions,
                   int port = 0);
  ~TestApp() override;

  int port() const { return port_; }
  void SetPolicy(Policy policy);
  /// Every event received, in arrival order (including redeliveries).
  std::vector<spec::proto::runtime::v1::TopicEventRequest> Events();
  /// How many events with this data arrived.
  int CountData(const std::string& data);
  int list_calls() const { return list_calls_; }

  grpc::Status ListTopicSubscriptions(
      grpc::ServerContext* context,
      const google::protobuf::Empty* request,
      spec::proto::runtime::v1::ListTopicSubscriptionsResponse* response) override;
  grpc::Status OnTopicEvent(grpc::ServerContext* context,
                            const spec::proto::runtime::v1::TopicEventRequest* request,
                            spec::proto::runtime::v1::TopicEventResponse* response) override;

 private:
  std::vector<spec::proto::runtime::v1::TopicSubscription> subscriptions_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<int> list_calls_{0};
  absl::Mutex mu_;
  Policy policy_ ABSL_GUARDED_BY(mu_);
  std::vector<spec::proto::runtime::v1::TopicEventRequest> events_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> attempts_ ABSL_GUARDED_BY(mu_);
};

/// A subscription entry.
spec::proto::runtime::v1::TopicSubscription Subscription(const std::string& pubsub,
                                                         const std::string& topic);

}  // namespace ottava::test
