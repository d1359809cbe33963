#include "sdk/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cctype>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace ottava::sdk {
namespace {

namespace rt = spec::proto::runtime::v1;

// The SDK must not depend on common/ (DESIGN.md §2), so it carries its own copy of this one-liner.
absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) {
    return absl::OkStatus();
  }
  return {static_cast<absl::StatusCode>(status.error_code()), status.error_message()};
}

Metadata ToMetadata(const google::protobuf::Map<std::string, std::string>& map) {
  return {map.begin(), map.end()};
}

void FillMap(const Metadata& from, google::protobuf::Map<std::string, std::string>* to) {
  for (const auto& [key, value] : from) {
    (*to)[key] = value;
  }
}

rt::StateOptions::StateConcurrency ToProto(Concurrency concurrency) {
  switch (concurrency) {
    case Concurrency::kFirstWrite:
      return rt::StateOptions::CONCURRENCY_FIRST_WRITE;
    case Concurrency::kLastWrite:
      return rt::StateOptions::CONCURRENCY_LAST_WRITE;
    case Concurrency::kUnspecified:
      break;
  }
  return rt::StateOptions::CONCURRENCY_UNSPECIFIED;
}

rt::StateOptions::StateConsistency ToProto(Consistency consistency) {
  switch (consistency) {
    case Consistency::kEventual:
      return rt::StateOptions::CONSISTENCY_EVENTUAL;
    case Consistency::kStrong:
      return rt::StateOptions::CONSISTENCY_STRONG;
    case Consistency::kUnspecified:
      break;
  }
  return rt::StateOptions::CONSISTENCY_UNSPECIFIED;
}

void FillOptions(Concurrency concurrency, Consistency consistency, rt::StateOptions* options) {
  options->set_concurrency(ToProto(concurrency));
  options->set_consistency(ToProto(consistency));
}

void FillStateItem(const StateWrite& from, rt::StateItem* to) {
  to->set_key(from.key);
  to->set_value(from.value);
  if (from.etag.has_value()) {
    to->mutable_etag()->set_value(*from.etag);
  }
  FillMap(from.metadata, to->mutable_metadata());
  if (from.ttl_seconds.has_value()) {
    (*to->mutable_metadata())["ttlInSeconds"] = std::to_string(*from.ttl_seconds);
  }
  // Options are only sent when set, so a request with defaults matches what other Layotto SDKs
  // send.
  if (from.concurrency != Concurrency::kUnspecified ||
      from.consistency != Consistency::kUnspecified) {
    FillOptions(from.concurrency, from.consistency, to->mutable_options());
  }
}

// UnlockResponse and LockKeepAliveResponse share the numbering of their Status enums.
absl::StatusOr<LockStatus> ToLockStatus(int value) {
  switch (value) {
    case rt::UnlockResponse::SUCCESS:
      return LockStatus::kSuccess;
    case rt::UnlockResponse::LOCK_UNEXIST:
      return LockStatus::kLockDoesNotExist;
    case rt::UnlockResponse::LOCK_BELONG_TO_OTHERS:
      return LockStatus::kLockBelongsToOthers;
    case rt::UnlockResponse::INTERNAL_ERROR:
      return LockStatus::kInternalError;
    default:
      return absl::UnknownError("sidecar returned unknown lock status " + std::to_string(value));
  }
}

ConfigurationItem FromProto(const rt::ConfigurationItem& item) {
  return {item.key(),   item.content(),          item.group(),
          item.label(), ToMetadata(item.tags()), ToMetadata(item.metadata())};
}

template <typename Request>
void FillQuery(const std::string& store, const ConfigurationQuery& query, Request* request) {
  request->set_store_name(store);
  request->set_group(query.group);
  request->set_label(query.label);
  for (const auto& key : query.keys) {
    request->add_keys(key);
  }
  FillMap(query.metadata, request->mutable_metadata());
}

TopicEvent FromProto(const rt::TopicEventRequest& event) {
  return {event.id(),
          event.source(),
          event.type(),
          event.spec_version(),
          event.data_content_type(),
          event.topic(),
          event.pubsub_name(),
          event.data(),
          ToMetadata(event.metadata())};
}

rt::TopicEventResponse::TopicEventResponseStatus ToProto(EventStatus status) {
  switch (status) {
    case EventStatus::kRetry:
      return rt::TopicEventResponse::RETRY;
    case EventStatus::kDrop:
      return rt::TopicEventResponse::DROP;
    case EventStatus::kSuccess:
      break;
  }
  return rt::TopicEventResponse::SUCCESS;
}

// Cancels `context` unless Disarm() is called within `timeout`. A sync stream read cannot be given
// its own deadline, so this bounds one blocking read without limiting the whole stream.
class CancelTimer {
 public:
  CancelTimer(grpc::ClientContext* context, std::chrono::milliseconds timeout)
      : thread_([this, context, timeout] {
          if (!disarmed_.WaitForNotificationWithTimeout(absl::FromChrono(timeout))) {
            fired_ = true;
            context->TryCancel();
          }
        }) {}
  ~CancelTimer() { Disarm(); }
  CancelTimer(const CancelTimer&) = delete;
  CancelTimer& operator=(const CancelTimer&) = delete;

  /// Stops the timer; true when it had already cancelled the context.
  bool Disarm() {
    if (thread_.joinable()) {
      disarmed_.Notify();
      thread_.join();
    }
    return fired_;
  }

 private:
  absl::Notification disarmed_;
  bool fired_ = false;  // written by thread_ only, read after join()
  std::thread thread_;
};

}  // namespace

std::string_view LockStatusName(LockStatus status) {
  switch (status) {
    case LockStatus::kSuccess:
      return "SUCCESS";
    case LockStatus::kLockDoesNotExist:
      return "LOCK_UNEXIST";
    case LockStatus::kLockBelongsToOthers:
      return "LOCK_BELONG_TO_OTHERS";
    case LockStatus::kInternalError:
      break;
  }
  return "INTERNAL_ERROR";
}

// --- Client ----------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(std::string address,
                                                        ClientOptions options) {
  if (address.empty()) {
    return absl::InvalidArgumentError("sidecar address is empty");
  }
  if (options.timeout <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError("client timeout must be positive");
  }
  grpc::ChannelArguments args;
  // Values and events are bytes of any size the sidecar accepts; let its limit be the only one.
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<Client>(new Client(std::move(channel), options));
}

Client::Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : channel_(std::move(channel)), stub_(rt::Runtime::NewStub(channel_)), options_(options) {}

void Client::ApplyCallOptions(grpc::ClientContext& context) const {
  context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  context.set_wait_for_ready(options_.wait_for_ready);
}

std::unique_ptr<grpc::ClientContext> Client::NewStreamContext(StreamOptions stream_options) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (stream_options.max_duration > std::chrono::milliseconds::zero()) {
    context->set_deadline(std::chrono::system_clock::now() + stream_options.max_duration);
  }
  context->set_wait_for_ready(options_.wait_for_ready);
  return context;
}

absl::StatusOr<std::string> Client::SayHello(const std::string& service_name,
                                             const std::string& name) {
  rt::SayHelloRequest request;
  request.set_service_name(service_name);
  request.set_name(name);
  rt::SayHelloResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  if (auto status = FromGrpc(stub_->SayHello(&context, request, &response)); !status.ok()) {
    return status;
  }
  return response.hello();
}

absl::StatusOr<InvokeResult> Client::InvokeService(
    const std::string& id,
    const std::string& method,
    const std::string& data,
    const std::string& verb,
    const std::string& content_type,
    const std::string& query,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  rt::InvokeServiceRequest request;
  request.set_id(id);
  auto* message = request.mutable_message();
  message->set_method(method);
  message->mutable_data()->set_value(data);
  message->set_content_type(content_type);
  rt::HTTPExtension::Verb parsed = rt::HTTPExtension::POST;
  if (!verb.empty()) {
    std::string upper;
    for (char c : verb) {
      upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
    if (!rt::HTTPExtension::Verb_Parse(upper, &parsed) || parsed == rt::HTTPExtension::NONE) {
      return absl::InvalidArgumentError("unknown HTTP verb '" + verb + "'");
    }
  }
  message->mutable_http_extension()->set_verb(parsed);
  message->mutable_http_extension()->set_querystring(query);
  rt::InvokeResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  for (const auto& [name, value] : headers) {
    std::string lower;
    for (char c : name) {
      lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    context.AddMetadata(lower, value);
  }
  if (auto status = FromGrpc(stub_->InvokeService(&context, request, &response)); !status.ok()) {
    return status;
  }
  return InvokeResult{response.data().value(), response.content_type()};
}

absl::StatusOr<std::optional<StateEntry>> Client::GetState(const std::string& store,
                                                           const std::string& key,
                                                           Consistency consistency,
                                                           const Metadata& metadata) {
  rt::GetStateRequest request;
  request.set_store_name(store);
  request.set_key(key);
  request.set_consistency(ToProto(consistency));
  FillMap(metadata, request.mutable_metadata());
  rt::GetStateResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  if (auto status = FromGrpc(stub_->GetState(&context, request, &response)); !status.ok()) {
    return status;
  }
  // Layotto and Dapr answer an absent key with an empty response, never NOT_FOUND; a stored value
  // always carries an etag.
  if (response.data().empty() && response.etag().empty()) {
    return std::nullopt;
  }
  return StateEntry{key, response.data(), response.etag(), ToMetadata(response.metadata())};
}

absl::StatusOr<std::vector<BulkStateEntry>> Client::GetBulkState(
    const std::string& store,
    const std::vector<std::string>& keys,
    int32_t parallelism,
    const Metadata& metadata) {
  rt::GetBulkStateRequest request;
  request.set_store_name(store);
  for (const auto& key : keys) {
    request.add_keys(key);
  }
  request.set_parallelism(parallelism);
  FillMap(metadata, request.mutable_metadata());
  rt::GetBulkStateResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  if (auto status = FromGrpc(stub_->GetBulkState(&context, request, &response)); !status.ok()) {
    return status;
  }
  std::vector<BulkStateEntry> entries;
  entries.reserve(response.items_size());
  for (const auto& item : response.items()) {
    BulkStateEntry entry;
    entry.key = item.key();
    entry.value = item.data();
    entry.etag = item.etag();
    entry.error = item.error();
    entry.metadata = ToMetadata(item.metadata());
    entry.found = entry.error.empty() && !(entry.value.empty() && entry.etag.empty());
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::Status Client::SaveState(const std::string& store, const StateWrite& item) {
  return SaveStates(store, {item});
}

absl::Status Client::SaveStates(const std::string& store, const std::vector<StateWrite>& items) {
  rt::SaveStateRequest request;
  request.set_store_name(store);
  for (const auto& item : items) {
    FillStateItem(item, request.add_states());
  }
  google::protobuf::Empty response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  return FromGrpc(stub_->SaveState(&context, request, &response));
}

absl::Status Client::DeleteState(const std::string& store, const StateDelete& item) {
  rt::DeleteStateRequest request;
  request.set_store_name(store);
  request.set_key(item.key);
  if (item.etag.has_value()) {
    request.mutable_etag()->set_value(*item.etag);
  }
  if (item.concurrency != Concurrency::kUnspecified ||
      item.consistency != Consistency::kUnspecified) {
    FillOptions(item.concurrency, item.consistency, request.mutable_options());
  }
  FillMap(item.metadata, request.mutable_metadata());
  google::protobuf::Empty response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  return FromGrpc(stub_->DeleteState(&context, request, &response));
}

absl::Status Client::ExecuteStateTransaction(const std::string& store,
                                             const std::vector<StateOperation>& operations,
                                             const Metadata& metadata) {
  rt::ExecuteStateTransactionRequest request;
  request.set_storename(store);
  for (const auto& operation : operations) {
    auto* op = request.add_operations();
    op->set_operationtype(operation.type == StateOperation::Type::kDelete ? "delete" : "upsert");
    FillStateItem(operation.item, op->mutable_request());
  }
  FillMap(metadata, request.mutable_metadata());
  google::protobuf::Empty response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  return FromGrpc(stub_->ExecuteStateTransaction(&context, request, &response));
}

absl::StatusOr<bool> Client::TryLock(const std::string& store,
                                     const std::string& resource,
                                     const std::string& owner,
                                     int32_t expire_seconds) {
  rt::TryLockRequest request;
  request.set_store_name(store);
  request.set_resource_id(resource);
  request.set_lock_owner(owner);
  request.set_expire(expire_seconds);
  rt::TryLockResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  if (auto status = FromGrpc(stub_->TryLock(&context, request, &response)); !status.ok()) {
    return status;
  }
  return response.success();
}

absl::StatusOr<LockStatus> Client::Unlock(const std::string& store,
                                          const std::string& resource,
                                          const std::string& owner) {
  rt::UnlockRequest request;
  request.set_store_name(store);
  request.set_resource_id(resource);
  request.set_lock_owner(owner);
  rt::UnlockResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  if (auto status = FromGrpc(stub_->Unlock(&context, request, &response)); !status.ok()) {
    return status;
  }
  return ToLockStatus(response.status());
}

absl::StatusOr<LockStatus> Client::LockKeepAlive(const std::string& store,
                                                 const std::string& resource,
                                                 const std::string& owner,
                                                 int32_t expire_seconds) {
  rt::LockKeepAliveRequest request;
  request.set_store_name(store);
  request.set_resource_id(resource);
  request.set_lock_owner(owner);
  request.set_expire(expire_seconds);
  rt::LockKeepAliveResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  if (auto status = FromGrpc(stub_->LockKeepAlive(&context, request, &response)); !status.ok()) {
    return status;
  }
  return ToLockStatus(response.status());
}

absl::StatusOr<int64_t> Client::GetNextId(const std::string& store,
                                          const std::string& key,
                                          IdIncrement increment,
                                          const Metadata& metadata) {
  rt::GetNextIdRequest request;
  request.set_store_name(store);
  request.set_key(key);
  request.mutable_options()->set_increment(increment == IdIncrement::kStrong
                                               ? rt::SequencerOptions::STRONG
                                               : rt::SequencerOptions::WEAK);
  FillMap(metadata, request.mutable_metadata());
  rt::GetNextIdResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  if (auto status = FromGrpc(stub_->GetNextId(&context, request, &response)); !status.ok()) {
    return status;
  }
  return response.next_id();
}

absl::StatusOr<std::vector<ConfigurationItem>> Client::GetConfiguration(
    const std::string& store, const ConfigurationQuery& query) {
  rt::GetConfigurationRequest request;
  FillQuery(store, query, &request);
  rt::GetConfigurationResponse response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  if (auto status = FromGrpc(stub_->GetConfiguration(&context, request, &response)); !status.ok()) {
    return status;
  }
  std::vector<ConfigurationItem> items;
  items.reserve(response.items_size());
  for (const auto& item : response.items()) {
    items.push_back(FromProto(item));
  }
  return items;
}

absl::Status Client::SaveConfiguration(const std::string& store,
                                       const std::vector<ConfigurationItem>& items,
                                       const Metadata& metadata) {
  rt::SaveConfigurationRequest request;
  request.set_store_name(store);
  for (const auto& item : items) {
    auto* out = request.add_items();
    out->set_key(item.key);
    out->set_content(item.content);
    out->set_group(item.group);
    out->set_label(item.label);
    FillMap(item.tags, out->mutable_tags());
    FillMap(item.metadata, out->mutable_metadata());
  }
  FillMap(metadata, request.mutable_metadata());
  google::protobuf::Empty response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  return FromGrpc(stub_->SaveConfiguration(&context, request, &response));
}

absl::Status Client::DeleteConfiguration(const std::string& store,
                                         const ConfigurationQuery& query) {
  rt::DeleteConfigurationRequest request;
  FillQuery(store, query, &request);
  google::protobuf::Empty response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  return FromGrpc(stub_->DeleteConfiguration(&context, request, &response));
}

absl::StatusOr<ConfigurationWatchPtr> Client::SubscribeConfiguration(
    const std::string& store, const ConfigurationQuery& query, StreamOptions stream_options) {
  ConfigurationWatchPtr watch(new ConfigurationWatch(channel_, NewStreamContext(stream_options)));
  watch->stream_ = stub_->SubscribeConfiguration(watch->context_.get());
  rt::SubscribeConfigurationRequest request;
  FillQuery(store, query, &request);
  // The request side stays open: a half-close could be read by the sidecar as "unsubscribe".
  if (!watch->stream_->Write(request)) {
    if (auto status = watch->Finish(); !status.ok()) {
      return status;
    }
    return absl::UnavailableError("sidecar closed the configuration subscription at once");
  }
  return watch;
}

absl::Status Client::PublishEvent(const std::string& pubsub,
                                  const std::string& topic,
                                  const std::string& data,
                                  const std::string& content_type,
                                  const Metadata& metadata) {
  rt::PublishEventRequest request;
  request.set_pubsub_name(pubsub);
  request.set_topic(topic);
  request.set_data(data);
  request.set_data_content_type(content_type);
  FillMap(metadata, request.mutable_metadata());
  google::protobuf::Empty response;
  grpc::ClientContext context;
  ApplyCallOptions(context);
  return FromGrpc(stub_->PublishEvent(&context, request, &response));
}

absl::StatusOr<TopicSubscriptionPtr> Client::SubscribeTopicEvents(
    const TopicSubscriptionRequest& request, StreamOptions stream_options) {
  TopicSubscriptionPtr subscription(
      new TopicSubscription(channel_, NewStreamContext(stream_options), options_.timeout));
  subscription->stream_ = stub_->SubscribeTopicEvents(subscription->context_.get());

  rt::SubscribeTopicEventsRequest initial;
  auto* init = initial.mutable_initial_request();
  init->set_pubsub_name(request.pubsub_name);
  init->set_topic(request.topic);
  FillMap(request.metadata, init->mutable_metadata());
  if (request.dead_letter_topic.has_value()) {
    init->set_dead_letter_topic(*request.dead_letter_topic);
  }

  // Wait for the sidecar's initial_response so that the caller knows events published from now on
  // reach this stream. Tolerate a sidecar that skips it and starts with an event.
  rt::SubscribeTopicEventsResponse first;
  bool got_first = false;
  bool timed_out = false;
  {
    CancelTimer timer(subscription->context_.get(), options_.timeout);
    got_first = subscription->stream_->Write(initial) && subscription->stream_->Read(&first);
    timed_out = timer.Disarm();
  }
  if (!got_first) {
    absl::Status status = subscription->Finish();
    if (timed_out) {
      return absl::DeadlineExceededError("sidecar did not confirm the subscription to " +
                                         request.pubsub_name + "/" + request.topic + " within " +
                                         std::to_string(options_.timeout.count()) + " ms");
    }
    if (!status.ok()) {
      return status;
    }
    return absl::UnavailableError("sidecar ended the subscription to " + request.pubsub_name + "/" +
                                  request.topic + " before confirming it");
  }
  if (first.has_event_message()) {
    subscription->pending_ = FromProto(first.event_message());
  }
  return subscription;
}

// --- ConfigurationWatch ----------------------------------------------------------------------

ConfigurationWatch::ConfigurationWatch(std::shared_ptr<grpc::Channel> channel,
                                       std::unique_ptr<grpc::ClientContext> context)
    : channel_(std::move(channel)), context_(std::move(context)) {}

ConfigurationWatch::~ConfigurationWatch() {
  if (!final_status_.has_value() && stream_ != nullptr) {
    Cancel();
    // Finish() is only valid once every incoming message has been read.
    rt::SubscribeConfigurationResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    Finish().IgnoreError();
  }
}

absl::StatusOr<std::optional<ConfigurationUpdate>> ConfigurationWatch::Read() {
  if (!final_status_.has_value()) {
    rt::SubscribeConfigurationResponse response;
    if (stream_->Read(&response)) {
      ConfigurationUpdate update;
      update.store_name = response.store_name();
      update.items.reserve(response.items_size());
      for (const auto& item : response.items()) {
        update.items.push_back(FromProto(item));
      }
      return update;
    }
    Finish().IgnoreError();
  }
  if (!final_status_->ok()) {
    return *final_status_;
  }
  return std::nullopt;
}

void ConfigurationWatch::Cancel() {
  cancelled_ = true;
  context_->TryCancel();
}

absl::Status ConfigurationWatch::Finish() {
  absl::Status status = FromGrpc(stream_->Finish());
  if (cancelled_ && status.code() == absl::StatusCode::kCancelled) {
    status = absl::OkStatus();
  }
  final_status_ = status;
  return status;
}

// --- TopicSubscription -----------------------------------------------------------------------

TopicSubscription::TopicSubscription(std::shared_ptr<grpc::Channel> channel,
                                     std::unique_ptr<grpc::ClientContext> context,
                                     std::chrono::milliseconds close_timeout)
    : channel_(std::move(channel)), context_(std::move(context)), close_timeout_(close_timeout) {}

TopicSubscription::~TopicSubscription() {
  if (!final_status_.has_value() && stream_ != nullptr) {
    Cancel();
    rt::SubscribeTopicEventsResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    Finish().IgnoreError();
  }
}

absl::StatusOr<std::optional<TopicEvent>> TopicSubscription::Read() {
  if (pending_.has_value()) {
    std::optional<TopicEvent> event = std::move(pending_);
    pending_.reset();
    return event;
  }
  if (!final_status_.has_value()) {
    rt::SubscribeTopicEventsResponse response;
    while (stream_->Read(&response)) {
      // A repeated initial_response carries nothing; only events are surfaced.
      if (response.has_event_message()) {
        return FromProto(response.event_message());
      }
    }
    Finish().IgnoreError();
  }
  if (!final_status_->ok()) {
    return *final_status_;
  }
  return std::nullopt;
}

absl::Status TopicSubscription::Ack(const std::string& id, EventStatus status) {
  rt::SubscribeTopicEventsRequest request;
  auto* processed = request.mutable_event_processed();
  processed->set_id(id);
  processed->mutable_status()->set_status(ToProto(status));
  absl::MutexLock lock(&write_mu_);
  if (writes_done_) {
    return absl::FailedPreconditionError("subscription is closing; cannot acknowledge " + id);
  }
  if (!stream_->Write(request)) {
    return absl::UnavailableError("subscription stream is closed; cannot acknowledge " + id);
  }
  return absl::OkStatus();
}

absl::Status TopicSubscription::Close() {
  if (final_status_.has_value()) {
    return *final_status_;
  }
  pending_.reset();
  {
    absl::MutexLock lock(&write_mu_);
    writes_done_ = true;
    stream_->WritesDone();
  }
  bool timed_out = false;
  {
    CancelTimer timer(context_.get(), close_timeout_);
    rt::SubscribeTopicEventsResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    timed_out = timer.Disarm();
  }
  // Every ack was written before the half-close and had the whole grace period to arrive, so
  // cancelling a sidecar that does not end the stream by itself still counts as a clean end.
  if (timed_out) {
    cancelled_ = true;
  }
  return Finish();
}

void TopicSubscription::Cancel() {
  cancelled_ = true;
  context_->TryCancel();
}

absl::Status TopicSubscription::Finish() {
  absl::Status status = FromGrpc(stream_->Finish());
  if (cancelled_ && status.code() == absl::StatusCode::kCancelled) {
    status = absl::OkStatus();
  }
  final_status_ = status;
  return status;
}

}  // namespace ottava::sdk
