#include "test/support/test_app.h"

#include <thread>

namespace ottava::test {

namespace v1 = spec::proto::runtime::v1;

v1::TopicSubscription Subscription(const std::string& pubsub, const std::string& topic) {
  v1::TopicSubscription subscription;
  subscription.set_pubsub_name(pubsub);
  subscription.set_topic(topic);
  return subscription;
}

TestApp::TestApp(std::vector<v1::TopicSubscription> subscriptions, int port)
    : subscriptions_(std::move(subscriptions)) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
}

TestApp::~TestApp() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  }
}

void TestApp::SetPolicy(Policy policy) {
  absl::MutexLock lock(&mu_);
  policy_ = std::move(policy);
}

std::vector<v1::TopicEventRequest> TestApp::Events() {
  absl::MutexLock lock(&mu_);
  return events_;
}

int TestApp::CountData(const std::string& data) {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& event : events_) {
    n += event.data() == data ? 1 : 0;
  }
  return n;
}

grpc::Status TestApp::ListTopicSubscriptions(grpc::ServerContext*,
                                             const google::protobuf::Empty*,
                                             v1::ListTopicSubscriptionsResponse* response) {
  ++list_calls_;
  for (const auto& subscription : subscriptions_) {
    *response->add_subscriptions() = subscription;
  }
  return grpc::Status::OK;
}

grpc::Status TestApp::OnTopicEvent(grpc::ServerContext*,
                                   const v1::TopicEventRequest* request,
                                   v1::TopicEventResponse* response) {
  Reply reply;
  {
    absl::MutexLock lock(&mu_);
    events_.push_back(*request);
    int attempt = ++attempts_[request->id()];
    if (policy_) {
      reply = policy_(*request, attempt);
    }
  }
  if (reply.delay.count() > 0) {
    std::this_thread::sleep_for(reply.delay);
  }
  response->set_status(reply.verdict);
  return reply.status;
}

}  // namespace ottava::test
