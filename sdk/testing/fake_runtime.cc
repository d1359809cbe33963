#include "sdk/testing/fake_runtime.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace ottava::sdk::testing {
namespace {

// Streams poll for cancellation at this period: a sync handler cannot wait on the mutex and on
// the call's cancellation at once.
constexpr absl::Duration kPoll = absl::Milliseconds(20);

grpc::Status UnknownStore(const std::string& kind, const std::string& name) {
  return {grpc::StatusCode::INVALID_ARGUMENT, kind + " '" + name + "' is not configured"};
}

grpc::Status CheckKey(const std::string& key) {
  if (key.empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "key is empty"};
  }
  if (key.find("||") != std::string::npos) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "key '" + key + "' contains '||'"};
  }
  return grpc::Status::OK;
}

// Blocks until the client cancels or its deadline passes.
void WaitForCancellation(grpc::ServerContext* context) {
  while (!context->IsCancelled()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

FakeRuntime::~FakeRuntime() {
  Stop();
}

std::string FakeRuntime::Start() {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  return "127.0.0.1:" + std::to_string(port);
}

void FakeRuntime::Stop() {
  if (server_ == nullptr) {
    return;
  }
  EndStreams();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_->Wait();
  server_.reset();
}

void FakeRuntime::EndStreams() {
  absl::MutexLock lock(&mu_);
  streams_ended_ = true;
}

void FakeRuntime::AddEvent(const std::string& topic,
                           const std::string& id,
                           const std::string& data) {
  rt::TopicEventRequest event;
  event.set_id(id);
  event.set_source("fake");
  event.set_type("com.example.test");
  event.set_spec_version("1.0");
  event.set_data_content_type("text/plain");
  event.set_topic(topic);
  event.set_pubsub_name("pubsub");
  event.set_data(data);
  absl::MutexLock lock(&mu_);
  topics_[topic].push_back(std::move(event));
}

std::vector<std::pair<std::string, int>> FakeRuntime::acks() {
  absl::MutexLock lock(&mu_);
  return acks_;
}

bool FakeRuntime::WaitForAcks(size_t count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, count]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return acks_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeRuntime::WaitForConfigWatchers(size_t count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, count]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return watchers_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

#define OTTAVA_FAKE_LAST(type, name) \
  rt::type FakeRuntime::name() {     \
    absl::MutexLock lock(&mu_);      \
    return name##_;                  \
  }
OTTAVA_FAKE_LAST(SayHelloRequest, last_hello)
OTTAVA_FAKE_LAST(GetStateRequest, last_get_state)
OTTAVA_FAKE_LAST(GetBulkStateRequest, last_get_bulk_state)
OTTAVA_FAKE_LAST(SaveStateRequest, last_save_state)
OTTAVA_FAKE_LAST(DeleteStateRequest, last_delete_state)
OTTAVA_FAKE_LAST(ExecuteStateTransactionRequest, last_transaction)
OTTAVA_FAKE_LAST(TryLockRequest, last_try_lock)
OTTAVA_FAKE_LAST(GetNextIdRequest, last_get_next_id)
OTTAVA_FAKE_LAST(GetConfigurationRequest, last_get_configuration)
OTTAVA_FAKE_LAST(SaveConfigurationRequest, last_save_configuration)
OTTAVA_FAKE_LAST(PublishEventRequest, last_publish)
OTTAVA_FAKE_LAST(SubscribeTopicEventsRequestInitial, last_subscription)
#undef OTTAVA_FAKE_LAST

grpc::Status FakeRuntime::SayHello(grpc::ServerContext* /*context*/,
                                   const rt::SayHelloRequest* request,
                                   rt::SayHelloResponse* response) {
  absl::MutexLock lock(&mu_);
  last_hello_ = *request;
  response->set_hello("greeting, " + request->name());
  return grpc::Status::OK;
}

// --- State -----------------------------------------------------------------------------------

grpc::Status FakeRuntime::CheckEtag(const std::string& key,
                                    const rt::Etag* etag,
                                    rt::StateOptions::StateConcurrency concurrency) {
  auto it = state_.find(key);
  if (etag != nullptr && !etag->value().empty()) {
    if (it == state_.end() || std::to_string(it->second.version) != etag->value()) {
      return {grpc::StatusCode::ABORTED, "state/fake: etag mismatch for key '" + key + "'"};
    }
  } else if (concurrency == rt::StateOptions::CONCURRENCY_FIRST_WRITE && it != state_.end()) {
    return {grpc::StatusCode::ABORTED, "state/fake: first-write conflict for key '" + key + "'"};
  }
  return grpc::Status::OK;
}

void FakeRuntime::ApplySave(const rt::StateItem& item) {
  StateValue& value = state_[item.key()];
  value.data = item.value();
  ++value.version;
  value.has_ttl = item.metadata().contains("ttlInSeconds");
}

grpc::Status FakeRuntime::GetState(grpc::ServerContext* context,
                                   const rt::GetStateRequest* request,
                                   rt::GetStateResponse* response) {
  if (request->key() == "hang") {
    WaitForCancellation(context);
    return {grpc::StatusCode::CANCELLED, "cancelled"};
  }
  absl::MutexLock lock(&mu_);
  last_get_state_ = *request;
  if (request->store_name() != "state") {
    return UnknownStore("state store", request->store_name());
  }
  if (auto status = CheckKey(request->key()); !status.ok()) {
    return status;
  }
  auto it = state_.find(request->key());
  if (it != state_.end()) {
    response->set_data(it->second.data);
    response->set_etag(std::to_string(it->second.version));
    if (it->second.has_ttl) {
      (*response->mutable_metadata())["ttlExpireTime"] = "2030-01-01T00:00:00Z";
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::GetBulkState(grpc::ServerContext* /*context*/,
                                       const rt::GetBulkStateRequest* request,
                                       rt::GetBulkStateResponse* response) {
  absl::MutexLock lock(&mu_);
  last_get_bulk_state_ = *request;
  if (request->store_name() != "state") {
    return UnknownStore("state store", request->store_name());
  }
  for (const auto& key : request->keys()) {
    auto* item = response->add_items();
    item->set_key(key);
    if (auto status = CheckKey(key); !status.ok()) {
      item->set_error(status.error_message());
      continue;
    }
    if (auto it = state_.find(key); it != state_.end()) {
      item->set_data(it->second.data);
      item->set_etag(std::to_string(it->second.version));
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::SaveState(grpc::ServerContext* /*context*/,
                                    const rt::SaveStateRequest* request,
                                    google::protobuf::Empty* /*response*/) {
  absl::MutexLock lock(&mu_);
  last_save_state_ = *request;
  if (request->store_name() != "state") {
    return UnknownStore("state store", request->store_name());
  }
  for (const auto& item : request->states()) {
    if (auto status = CheckKey(item.key()); !status.ok()) {
      return status;
    }
    auto status = CheckEtag(item.key(), item.has_etag() ? &item.etag() : nullptr,
                            item.options().concurrency());
    if (!status.ok()) {
      return status;
    }
    ApplySave(item);
  }
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::DeleteState(grpc::ServerContext* /*context*/,
                                      const rt::DeleteStateRequest* request,
                                      google::protobuf::Empty* /*response*/) {
  absl::MutexLock lock(&mu_);
  last_delete_state_ = *request;
  if (request->store_name() != "state") {
    return UnknownStore("state store", request->store_name());
  }
  if (auto status = CheckKey(request->key()); !status.ok()) {
    return status;
  }
  auto status = CheckEtag(request->key(), request->has_etag() ? &request->etag() : nullptr,
                          rt::StateOptions::CONCURRENCY_UNSPECIFIED);
  if (!status.ok()) {
    return status;
  }
  state_.erase(request->key());
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::ExecuteStateTransaction(grpc::ServerContext* /*context*/,
                                                  const rt::ExecuteStateTransactionRequest* request,
                                                  google::protobuf::Empty* /*response*/) {
  absl::MutexLock lock(&mu_);
  last_transaction_ = *request;
  if (request->storename() != "state") {
    return UnknownStore("state store", request->storename());
  }
  // All or nothing: check every operation before applying any.
  for (const auto& operation : request->operations()) {
    const auto& item = operation.request();
    if (operation.operationtype() != "upsert" && operation.operationtype() != "delete") {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "unknown operation type '" + operation.operationtype() + "'"};
    }
    if (auto status = CheckKey(item.key()); !status.ok()) {
      return status;
    }
    auto status = CheckEtag(item.key(), item.has_etag() ? &item.etag() : nullptr,
                            item.options().concurrency());
    if (!status.ok()) {
      return status;
    }
  }
  for (const auto& operation : request->operations()) {
    if (operation.operationtype() == "upsert") {
      ApplySave(operation.request());
    } else {
      state_.erase(operation.request().key());
    }
  }
  return grpc::Status::OK;
}

// --- Lock and sequencer ----------------------------------------------------------------------

grpc::Status FakeRuntime::TryLock(grpc::ServerContext* /*context*/,
                                  const rt::TryLockRequest* request,
                                  rt::TryLockResponse* response) {
  absl::MutexLock lock(&mu_);
  last_try_lock_ = *request;
  if (request->store_name() != "lock") {
    return UnknownStore("lock store", request->store_name());
  }
  response->set_success(lock_owners_.emplace(request->resource_id(), request->lock_owner()).second);
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::Unlock(grpc::ServerContext* /*context*/,
                                 const rt::UnlockRequest* request,
                                 rt::UnlockResponse* response) {
  absl::MutexLock lock(&mu_);
  if (request->store_name() != "lock") {
    return UnknownStore("lock store", request->store_name());
  }
  auto it = lock_owners_.find(request->resource_id());
  if (it == lock_owners_.end()) {
    response->set_status(rt::UnlockResponse::LOCK_UNEXIST);
  } else if (it->second != request->lock_owner()) {
    response->set_status(rt::UnlockResponse::LOCK_BELONG_TO_OTHERS);
  } else {
    lock_owners_.erase(it);
    response->set_status(rt::UnlockResponse::SUCCESS);
  }
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::LockKeepAlive(grpc::ServerContext* /*context*/,
                                        const rt::LockKeepAliveRequest* request,
                                        rt::LockKeepAliveResponse* response) {
  absl::MutexLock lock(&mu_);
  if (request->store_name() != "lock") {
    return UnknownStore("lock store", request->store_name());
  }
  auto it = lock_owners_.find(request->resource_id());
  if (it == lock_owners_.end()) {
    response->set_status(rt::LockKeepAliveResponse::LOCK_UNEXIST);
  } else if (it->second != request->lock_owner()) {
    response->set_status(rt::LockKeepAliveResponse::LOCK_BELONG_TO_OTHERS);
  } else {
    response->set_status(rt::LockKeepAliveResponse::SUCCESS);
  }
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::GetNextId(grpc::ServerContext* /*context*/,
                                    const rt::GetNextIdRequest* request,
                                    rt::GetNextIdResponse* response) {
  absl::MutexLock lock(&mu_);
  last_get_next_id_ = *request;
  if (request->store_name() != "sequencer") {
    return UnknownStore("sequencer", request->store_name());
  }
  response->set_next_id(++sequences_[request->key()]);
  return grpc::Status::OK;
}

// --- Configuration ---------------------------------------------------------------------------

void FakeRuntime::NotifyWatchers(const rt::ConfigurationItem& item) {
  for (auto& [id, watcher] : watchers_) {
    bool wanted = watcher.keys.empty();
    for (const auto& key : watcher.keys) {
      wanted = wanted || key == item.key();
    }
    if (wanted) {
      rt::SubscribeConfigurationResponse update;
      update.set_store_name("config");
      *update.add_items() = item;
      watcher.pending.push_back(std::move(update));
    }
  }
}

grpc::Status FakeRuntime::GetConfiguration(grpc::ServerContext* /*context*/,
                                           const rt::GetConfigurationRequest* request,
                                           rt::GetConfigurationResponse* response) {
  absl::MutexLock lock(&mu_);
  last_get_configuration_ = *request;
  if (request->store_name() != "config") {
    return UnknownStore("configuration store", request->store_name());
  }
  if (request->keys().empty()) {
    for (const auto& [key, item] : configuration_) {
      *response->add_items() = item;
    }
  }
  for (const auto& key : request->keys()) {
    if (auto it = configuration_.find(key); it != configuration_.end()) {
      *response->add_items() = it->second;
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::SaveConfiguration(grpc::ServerContext* /*context*/,
                                            const rt::SaveConfigurationRequest* request,
                                            google::protobuf::Empty* /*response*/) {
  absl::MutexLock lock(&mu_);
  last_save_configuration_ = *request;
  if (request->store_name() != "config") {
    return UnknownStore("configuration store", request->store_name());
  }
  for (const auto& item : request->items()) {
    configuration_[item.key()] = item;
    NotifyWatchers(item);
  }
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::DeleteConfiguration(grpc::ServerContext* /*context*/,
                                              const rt::DeleteConfigurationRequest* request,
                                              google::protobuf::Empty* /*response*/) {
  absl::MutexLock lock(&mu_);
  if (request->store_name() != "config") {
    return UnknownStore("configuration store", request->store_name());
  }
  for (const auto& key : request->keys()) {
    if (configuration_.erase(key) > 0) {
      rt::ConfigurationItem deleted;
      deleted.set_key(key);
      deleted.set_group(request->group());
      NotifyWatchers(deleted);
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::SubscribeConfiguration(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<rt::SubscribeConfigurationResponse, rt::SubscribeConfigurationRequest>*
        stream) {
  rt::SubscribeConfigurationRequest request;
  if (!stream->Read(&request)) {
    return grpc::Status::OK;
  }
  if (request.store_name() != "config") {
    return UnknownStore("configuration store", request.store_name());
  }
  int id = 0;
  {
    absl::MutexLock lock(&mu_);
    id = next_watcher_++;
    watchers_[id].keys.assign(request.keys().begin(), request.keys().end());
  }
  while (!context->IsCancelled()) {
    std::deque<rt::SubscribeConfigurationResponse> updates;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return streams_ended_ || !watchers_[id].pending.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), kPoll);
      if (streams_ended_) {
        break;
      }
      updates.swap(watchers_[id].pending);
    }
    for (const auto& update : updates) {
      stream->Write(update);
    }
  }
  absl::MutexLock lock(&mu_);
  watchers_.erase(id);
  return grpc::Status::OK;
}

// --- Pub/Sub ---------------------------------------------------------------------------------

grpc::Status FakeRuntime::PublishEvent(grpc::ServerContext* /*context*/,
                                       const rt::PublishEventRequest* request,
                                       google::protobuf::Empty* /*response*/) {
  absl::MutexLock lock(&mu_);
  last_publish_ = *request;
  if (request->pubsub_name() != "pubsub") {
    return UnknownStore("pub/sub", request->pubsub_name());
  }
  rt::TopicEventRequest event;
  event.set_id("event-" + std::to_string(++next_event_));
  event.set_source("fake");
  event.set_type("com.example.test");
  event.set_spec_version("1.0");
  event.set_data_content_type(request->data_content_type());
  event.set_topic(request->topic());
  event.set_pubsub_name(request->pubsub_name());
  event.set_data(request->data());
  topics_[request->topic()].push_back(std::move(event));
  return grpc::Status::OK;
}

grpc::Status FakeRuntime::SubscribeTopicEvents(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<rt::SubscribeTopicEventsResponse, rt::SubscribeTopicEventsRequest>*
        stream) {
  rt::SubscribeTopicEventsRequest first;
  if (!stream->Read(&first) || !first.has_initial_request()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be initial_request"};
  }
  const auto initial = first.initial_request();
  {
    absl::MutexLock lock(&mu_);
    last_subscription_ = initial;
  }
  if (initial.pubsub_name() != "pubsub") {
    return UnknownStore("pub/sub", initial.pubsub_name());
  }
  if (initial.topic() == "silent") {
    WaitForCancellation(context);
    return {grpc::StatusCode::CANCELLED, "cancelled"};
  }
  rt::SubscribeTopicEventsResponse confirm;
  confirm.mutable_initial_response();
  stream->Write(confirm);

  // Acks arrive while events are written: one thread reads, this one writes, as gRPC allows.
  std::atomic<bool> client_done{false};
  std::thread reader([&] {
    rt::SubscribeTopicEventsRequest request;
    while (stream->Read(&request)) {
      if (request.has_event_processed()) {
        absl::MutexLock lock(&mu_);
        acks_.emplace_back(request.event_processed().id(),
                           request.event_processed().status().status());
      }
    }
    client_done = true;
  });
  while (!client_done && !context->IsCancelled()) {
    std::deque<rt::TopicEventRequest> events;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, &initial]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return streams_ended_ || !topics_[initial.topic()].empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), kPoll);
      if (streams_ended_) {
        break;
      }
      events.swap(topics_[initial.topic()]);
    }
    for (const auto& event : events) {
      rt::SubscribeTopicEventsResponse response;
      *response.mutable_event_message() = event;
      stream->Write(response);
    }
  }
  // Returning ends the call; the reader's pending Read then fails and the thread exits.
  if (!client_done) {
    context->TryCancel();
  }
  reader.join();
  return grpc::Status::OK;
}

}  // namespace ottava::sdk::testing
