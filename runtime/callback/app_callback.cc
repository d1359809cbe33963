#include "runtime/callback/app_callback.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "common/logging.h"

namespace ottava::runtime::callback {

namespace v1 = spec::proto::runtime::v1;

void ToTopicEventRequest(const Event& event, v1::TopicEventRequest* out) {
  const api::CloudEvent& ce = event.cloud_event;
  out->set_id(ce.id);
  out->set_source(ce.source);
  out->set_type(ce.type);
  out->set_spec_version(ce.spec_version);
  out->set_data_content_type(ce.data_content_type);
  out->set_data(ce.data);
  out->set_topic(ce.topic);
  out->set_pubsub_name(ce.pubsub_name);
  auto& metadata = *out->mutable_metadata();
  for (const auto& [key, value] : ce.extensions) {
    metadata[key] = value;
  }
  for (const auto& [key, value] : event.metadata) {
    metadata[key] = value;
  }
}

Outcome OutcomeOf(const grpc::Status& status, const v1::TopicEventResponse& response) {
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return Outcome::kDrop;
  }
  if (!status.ok()) {
    return Outcome::kRetry;
  }
  switch (response.status()) {
    case v1::TopicEventResponse::SUCCESS:
      return Outcome::kSuccess;
    case v1::TopicEventResponse::DROP:
      return Outcome::kDrop;
    default:
      return Outcome::kRetry;
  }
}

std::shared_ptr<AppCallbackClient> AppCallbackClient::Create(const std::string& target,
                                                             std::chrono::milliseconds call_timeout,
                                                             Dispatcher* dispatcher) {
  grpc::ChannelArguments args;
  // Reconnect quickly when the app comes back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  return std::shared_ptr<AppCallbackClient>(
      new AppCallbackClient(std::move(channel), call_timeout, dispatcher));
}

AppCallbackClient::AppCallbackClient(std::shared_ptr<grpc::Channel> channel,
                                     std::chrono::milliseconds call_timeout,
                                     Dispatcher* dispatcher)
    : channel_(std::move(channel)),
      stub_(v1::AppCallback::NewStub(channel_)),
      call_timeout_(call_timeout),
      dispatcher_(dispatcher) {}

void AppCallbackClient::ListSubscriptions(
    std::function<void(std::vector<AppSubscription>)> on_answer) {
  TryList(1, std::move(on_answer));
}

void AppCallbackClient::TryList(uint32_t attempt,
                                std::function<void(std::vector<AppSubscription>)> on_answer) {
  if (stopped_) {
    return;
  }
  struct Call {
    grpc::ClientContext context;
    google::protobuf::Empty request;
    v1::ListTopicSubscriptionsResponse response;
  };
  auto call = std::make_shared<Call>();
  call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  call->context.set_wait_for_ready(false);
  std::weak_ptr<AppCallbackClient> weak = weak_from_this();
  stub_->async()->ListTopicSubscriptions(
      &call->context, &call->request, &call->response,
      [weak, call, attempt, on_answer = std::move(on_answer)](grpc::Status status) mutable {
        auto self = weak.lock();
        if (!self || self->stopped_) {
          return;
        }
        if (status.ok() || status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
          std::vector<AppSubscription> subscriptions;
          for (const auto& subscription : call->response.subscriptions()) {
            AppSubscription out;
            out.pubsub_name = subscription.pubsub_name();
            out.topic = subscription.topic();
            out.metadata = components::Metadata(subscription.metadata().begin(),
                                                subscription.metadata().end());
            subscriptions.push_back(std::move(out));
          }
          OTTAVA_LOG(Callback, info, "app answered ListTopicSubscriptions: {} subscription(s)",
                     subscriptions.size());
          self->dispatcher_->Post([on_answer = std::move(on_answer),
                                   subscriptions = std::move(subscriptions)]() mutable {
            on_answer(std::move(subscriptions));
          });
          return;
        }
        if (attempt == 1) {
          OTTAVA_LOG(Callback, warn,
                     "app callback not answering ListTopicSubscriptions ({}); retrying",
                     status.error_message());
        }
        auto delay = self->list_backoff_.Delay(attempt);
        self->dispatcher_->PostDelayed(delay,
                                       [weak, attempt, on_answer = std::move(on_answer)]() mutable {
                                         if (auto again = weak.lock()) {
                                           again->TryList(attempt + 1, std::move(on_answer));
                                         }
                                       });
      });
}

void AppCallbackClient::Invoke(components::rpc::RpcRequest, components::rpc::RpcCallback done) {
  done(absl::UnimplementedError("Layotto's AppCallback has no invocation method"));
}

void AppCallbackClient::Deliver(std::shared_ptr<const Event> event,
                                std::function<void(Outcome)> done) {
  struct Call {
    grpc::ClientContext context;
    v1::TopicEventRequest request;
    v1::TopicEventResponse response;
  };
  auto call = std::make_shared<Call>();
  ToTopicEventRequest(*event, &call->request);
  call->context.set_deadline(std::chrono::system_clock::now() + call_timeout_);
  stub_->async()->OnTopicEvent(
      &call->context, &call->request, &call->response,
      [call, done = std::move(done)](grpc::Status status) {
        if (!status.ok()) {
          OTTAVA_LOG(Callback, debug, "OnTopicEvent {} failed: {} {}", call->request.id(),
                     static_cast<int>(status.error_code()), status.error_message());
        }
        done(OutcomeOf(status, call->response));
      });
}

}  // namespace ottava::runtime::callback
