#include "runtime/callback/dapr_grpc_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "common/logging.h"
#include "runtime/grpc/status_bridge.h"

namespace ottava::runtime::callback {

namespace v1 = dapr::proto::runtime::v1;
namespace common_v1 = dapr::proto::common::v1;

bool IsForwardableMetadata(const std::string& name) {
  if (name.empty() || name[0] == ':' || name.rfind("grpc-", 0) == 0) {
    return false;
  }
  static constexpr std::string_view kReserved[] = {"content-type",      "te",
                                                   "user-agent",        "host",
                                                   "connection",        "content-length",
                                                   "transfer-encoding", "keep-alive",
                                                   "upgrade",           "accept-encoding",
                                                   "dapr-api-token"};
  for (std::string_view reserved : kReserved) {
    if (name == reserved) {
      return false;
    }
  }
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

namespace {

bool IsPrintable(const std::string& value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

common_v1::HTTPExtension::Verb VerbOf(const std::string& name) {
  common_v1::HTTPExtension::Verb verb = common_v1::HTTPExtension::NONE;
  if (!common_v1::HTTPExtension::Verb_Parse(name, &verb)) {
    return common_v1::HTTPExtension::POST;
  }
  return verb;
}

}  // namespace

namespace {

// The CloudEvent attributes Dapr sends in fields, for TopicEventRequest (one event) and
// TopicEventCERequest (a bulk entry) alike: the other attributes in `extensions`, `data` the
// payload bytes.
template <typename Request>
void SplitCloudEvent(const api::CloudEvent& ce, Request* out) {
  out->set_id(ce.id);
  out->set_source(ce.source);
  out->set_type(ce.type);
  out->set_spec_version(ce.spec_version);
  out->set_data_content_type(ce.data_content_type);
  out->set_data(ce.data);
  if (!ce.extensions.empty()) {
    auto& fields = *out->mutable_extensions()->mutable_fields();
    for (const auto& [key, value] : ce.extensions) {
      fields[key].set_string_value(value);
    }
  }
}

}  // namespace

void ToDaprTopicEvent(const Event& event, v1::TopicEventRequest* out) {
  SplitCloudEvent(event.cloud_event, out);
  out->set_topic(event.cloud_event.topic);
  out->set_pubsub_name(event.cloud_event.pubsub_name);
  out->set_path(event.path);
}

void ToDaprBulkRequest(const EventBatch& batch, v1::TopicEventBulkRequest* out) {
  out->set_id(batch.id);
  out->set_topic(batch.topic);
  out->set_pubsub_name(batch.pubsub_name);
  out->set_type("com.dapr.event.sent.bulk");
  out->set_path(batch.path);
  for (const BulkEntry& entry : batch.entries) {
    const api::CloudEvent& ce = entry.event->cloud_event;
    auto* item = out->add_entries();
    item->set_entry_id(entry.entry_id);
    if (ce.raw) {
      item->set_bytes(ce.data);
      item->set_content_type("application/octet-stream");
    } else {
      SplitCloudEvent(ce, item->mutable_cloud_event());
      item->set_content_type("application/cloudevents+json");
    }
    item->mutable_metadata()->insert(entry.event->metadata.begin(), entry.event->metadata.end());
  }
}

Outcome DaprOutcomeOf(int status) {
  switch (status) {
    case v1::TopicEventResponse::SUCCESS:
      return Outcome::kSuccess;
    case v1::TopicEventResponse::DROP:
      return Outcome::kDrop;
    default:
      return Outcome::kRetry;  // RETRY, or a status daprd does not know either
  }
}

std::vector<Outcome> DaprBulkOutcomes(const EventBatch& batch,
                                      const v1::TopicEventBulkResponse& in) {
  std::vector<std::pair<std::string, Outcome>> answered;
  answered.reserve(in.statuses_size());
  for (const auto& status : in.statuses()) {
    answered.emplace_back(status.entry_id(), DaprOutcomeOf(status.status()));
  }
  return OutcomesByEntry(batch, answered);
}

AppSubscription FromDaprSubscription(const v1::TopicSubscription& in) {
  AppSubscription out;
  out.pubsub_name = in.pubsub_name();
  out.topic = in.topic();
  out.metadata = components::Metadata(in.metadata().begin(), in.metadata().end());
  for (const auto& rule : in.routes().rules()) {
    out.rules.push_back(RouteRule{rule.match(), rule.path()});
  }
  out.default_route = in.routes().default_();
  out.dead_letter_topic = in.dead_letter_topic();
  if (in.has_bulk_subscribe()) {
    out.bulk.enabled = in.bulk_subscribe().enabled();
    out.bulk.max_messages_count = in.bulk_subscribe().max_messages_count();
    out.bulk.max_await_duration_ms = in.bulk_subscribe().max_await_duration_ms();
  }
  return out;
}

std::shared_ptr<DaprGrpcChannel> DaprGrpcChannel::Create(const std::string& target,
                                                         std::chrono::milliseconds call_timeout,
                                                         std::string app_token,
                                                         Dispatcher* dispatcher) {
  grpc::ChannelArguments args;
  // Reconnect quickly when the app comes back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  return std::shared_ptr<DaprGrpcChannel>(
      new DaprGrpcChannel(std::move(channel), call_timeout, std::move(app_token), dispatcher));
}

DaprGrpcChannel::DaprGrpcChannel(std::shared_ptr<grpc::Channel> channel,
                                 std::chrono::milliseconds call_timeout,
                                 std::string app_token,
                                 Dispatcher* dispatcher)
    : channel_(std::move(channel)),
      stub_(v1::AppCallback::NewStub(channel_)),
      alpha_stub_(v1::AppCallbackAlpha::NewStub(channel_)),
      call_timeout_(call_timeout),
      app_token_(std::move(app_token)),
      dispatcher_(dispatcher) {}

void DaprGrpcChannel::AddToken(grpc::ClientContext& context) const {
  if (!app_token_.empty()) {
    context.AddMetadata("dapr-api-token", app_token_);
  }
}

void DaprGrpcChannel::ListSubscriptions(
    std::function<void(std::vector<AppSubscription>)> on_answer) {
  TryList(1, std::move(on_answer));
}

void DaprGrpcChannel::TryList(uint32_t attempt,
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
  AddToken(call->context);
  std::weak_ptr<DaprGrpcChannel> weak = weak_from_this();
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
            subscriptions.push_back(FromDaprSubscription(subscription));
          }
          OTTAVA_LOG(Callback, info, "Dapr app answered ListTopicSubscriptions: {} subscription(s)",
                     subscriptions.size());
          self->dispatcher_->Post([on_answer = std::move(on_answer),
                                   subscriptions = std::move(subscriptions)]() mutable {
            on_answer(std::move(subscriptions));
          });
          return;
        }
        if (attempt == 1) {
          OTTAVA_LOG(Callback, warn, "Dapr app not answering ListTopicSubscriptions ({}); retrying",
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

void DaprGrpcChannel::Deliver(std::shared_ptr<const Event> event,
                              std::function<void(Outcome)> done) {
  struct Call {
    grpc::ClientContext context;
    v1::TopicEventRequest request;
    v1::TopicEventResponse response;
  };
  auto call = std::make_shared<Call>();
  ToDaprTopicEvent(*event, &call->request);
  call->context.set_deadline(std::chrono::system_clock::now() + call_timeout_);
  call->context.set_wait_for_ready(true);
  AddToken(call->context);
  // The broker message's metadata travels as custom gRPC metadata, as daprd sends it.
  for (const auto& [key, value] : event->metadata) {
    if (IsForwardableMetadata(key) && IsPrintable(value)) {
      call->context.AddMetadata(key, value);
    }
  }
  if (auto it = event->cloud_event.extensions.find("traceparent");
      it != event->cloud_event.extensions.end() && IsPrintable(it->second)) {
    call->context.AddMetadata("traceparent", it->second);
  }
  stub_->async()->OnTopicEvent(
      &call->context, &call->request, &call->response,
      [call, done = std::move(done)](grpc::Status status) {
        if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
          done(Outcome::kDrop);
          return;
        }
        if (!status.ok()) {
          OTTAVA_LOG(Callback, debug, "OnTopicEvent {} failed: {} {}", call->request.id(),
                     static_cast<int>(status.error_code()), status.error_message());
          done(Outcome::kRetry);
          return;
        }
        done(DaprOutcomeOf(call->response.status()));
      });
}

struct DaprGrpcChannel::BulkCall {
  std::shared_ptr<const EventBatch> batch;
  BulkDone done;
  v1::TopicEventBulkRequest request;
  // A ClientContext serves a single call: one for the stable method, one for Alpha1.
  grpc::ClientContext stable_context;
  grpc::ClientContext alpha_context;
  v1::TopicEventBulkResponse response;
};

void DaprGrpcChannel::DeliverBulk(std::shared_ptr<const EventBatch> batch, BulkDone done) {
  auto call = std::make_shared<BulkCall>();
  ToDaprBulkRequest(*batch, &call->request);
  call->batch = std::move(batch);
  call->done = std::move(done);
  CallBulk(std::move(call), bulk_alpha_only_);
}

void DaprGrpcChannel::CallBulk(std::shared_ptr<BulkCall> call, bool alpha) {
  grpc::ClientContext& context = alpha ? call->alpha_context : call->stable_context;
  call->response.Clear();
  context.set_deadline(std::chrono::system_clock::now() + call_timeout_);
  context.set_wait_for_ready(true);
  AddToken(context);
  std::weak_ptr<DaprGrpcChannel> weak = weak_from_this();
  auto on_done = [weak, call, alpha](grpc::Status status) {
    const size_t n = call->batch->entries.size();
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      auto self = weak.lock();
      if (!alpha && self) {
        // The stable method is missing (the JS SDK has only Alpha1): ask Alpha1, from now on.
        self->bulk_alpha_only_ = true;
        self->CallBulk(call, true);
        return;
      }
      OTTAVA_LOG(Callback, warn,
                 "app implements neither OnBulkTopicEvent nor OnBulkTopicEventAlpha1: {} "
                 "event(s) of {}/{} dropped",
                 n, call->batch->pubsub_name, call->batch->topic);
      call->done(std::vector<Outcome>(n, Outcome::kDrop));
      return;
    }
    if (!status.ok()) {
      OTTAVA_LOG(Callback, debug, "{} {} failed: {} {}",
                 alpha ? "OnBulkTopicEventAlpha1" : "OnBulkTopicEvent", call->request.id(),
                 static_cast<int>(status.error_code()), status.error_message());
      call->done(std::vector<Outcome>(n, Outcome::kRetry));
      return;
    }
    call->done(DaprBulkOutcomes(*call->batch, call->response));
  };
  if (alpha) {
    alpha_stub_->async()->OnBulkTopicEventAlpha1(&context, &call->request, &call->response,
                                                 std::move(on_done));
  } else {
    stub_->async()->OnBulkTopicEvent(&context, &call->request, &call->response, std::move(on_done));
  }
}

void DaprGrpcChannel::Invoke(components::rpc::RpcRequest request,
                             components::rpc::RpcCallback done) {
  struct Call {
    grpc::ClientContext context;
    common_v1::InvokeRequest request;
    common_v1::InvokeResponse response;
  };
  auto call = std::make_shared<Call>();
  call->request.set_method(request.method);
  call->request.mutable_data()->set_value(std::move(request.data));
  call->request.set_content_type(request.content_type);
  call->request.mutable_http_extension()->set_verb(VerbOf(request.verb));
  call->request.mutable_http_extension()->set_querystring(request.query);
  const auto timeout =
      request.timeout.count() > 0 ? request.timeout : components::rpc::kDefaultRpcTimeout;
  call->context.set_deadline(std::chrono::system_clock::now() + timeout);
  // The channel may still be backing off from the app's absence at startup: wait (within the
  // deadline) for it to connect instead of failing at once.
  call->context.set_wait_for_ready(true);
  AddToken(call->context);
  for (const auto& [key, value] : request.metadata) {
    if (IsForwardableMetadata(key) && IsPrintable(value)) {
      call->context.AddMetadata(key, value);
    }
  }
  if (!request.caller_app_id.empty()) {
    call->context.AddMetadata("dapr-caller-app-id", request.caller_app_id);
  }
  stub_->async()->OnInvoke(&call->context, &call->request, &call->response,
                           [call, done = std::move(done)](grpc::Status status) {
                             if (!status.ok()) {
                               done(FromGrpcStatus(status));
                               return;
                             }
                             components::rpc::RpcResponse response;
                             response.content_type = call->response.content_type();
                             response.data = call->response.data().value();
                             done(std::move(response));
                           });
}

}  // namespace ottava::runtime::callback
