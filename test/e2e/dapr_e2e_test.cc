// End-to-end: the real `ottava` binary serving dapr.proto.runtime.v1.Dapr on the same port as
// Layotto's Runtime, driven with a gRPC client the way a Dapr SDK drives daprd.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "dapr/proto/runtime/v1/dapr.grpc.pb.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/http_upstream.h"
#include "test/support/process.h"
#include "test/support/runtime_calls.h"

namespace ottava::test {
namespace {

namespace dv1 = dapr::proto::runtime::v1;
namespace dcommon = dapr::proto::common::v1;
namespace lv1 = spec::proto::runtime::v1;
using grpc::StatusCode;
using nlohmann::json;

class DaprTest : public ::testing::Test {
 protected:
  void StartSidecar(json config = InMemoryConfig("dapr-e2e")) {
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    auto channel =
        grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials());
    dapr_ = dv1::Dapr::NewStub(channel);
    layotto_ = lv1::Runtime::NewStub(channel);
    generic_ = std::make_unique<grpc::GenericStub>(channel);
  }

  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  static std::unique_ptr<grpc::ClientContext> Ctx() { return CallContext(); }

  grpc::Status Save(const std::string& key,
                    const std::string& value,
                    const std::string* etag = nullptr,
                    dcommon::StateOptions::StateConcurrency concurrency =
                        dcommon::StateOptions::CONCURRENCY_UNSPECIFIED,
                    const std::string& store = "state") {
    dv1::SaveStateRequest request;
    request.set_store_name(store);
    dcommon::StateItem* item = request.add_states();
    item->set_key(key);
    item->set_value(value);
    if (etag != nullptr) {
      item->mutable_etag()->set_value(*etag);
    }
    if (concurrency != dcommon::StateOptions::CONCURRENCY_UNSPECIFIED) {
      item->mutable_options()->set_concurrency(concurrency);
    }
    google::protobuf::Empty empty;
    return dapr_->SaveState(Ctx().get(), request, &empty);
  }

  dv1::GetStateResponse Get(const std::string& key, grpc::Status* status = nullptr) {
    dv1::GetStateRequest request;
    request.set_store_name("state");
    request.set_key(key);
    dv1::GetStateResponse response;
    grpc::Status s = dapr_->GetState(Ctx().get(), request, &response);
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return response;
  }

  // A raw call of `method` with an empty request: for methods our proto does not declare.
  grpc::Status CallRaw(const std::string& method, const std::string& token = "") {
    grpc::Slice empty_message("");  // an uninitialised ByteBuffer is not a message
    grpc::ByteBuffer request(&empty_message, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    if (!token.empty()) {
      ctx.AddMetadata("dapr-api-token", token);
    }
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    std::promise<grpc::Status> done;
    generic_->UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                        [&done](grpc::Status status) { done.set_value(std::move(status)); });
    return done.get_future().get();
  }

  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<dv1::Dapr::Stub> dapr_;
  std::unique_ptr<lv1::Runtime::Stub> layotto_;
  std::unique_ptr<grpc::GenericStub> generic_;
};

TEST_F(DaprTest, MetadataDescribesTheSidecarAndKeepsAttributes) {
  StartSidecar();
  dv1::GetMetadataResponse metadata;
  ASSERT_TRUE(dapr_->GetMetadata(Ctx().get(), dv1::GetMetadataRequest(), &metadata).ok());
  EXPECT_EQ(metadata.id(), "dapr-e2e");
  EXPECT_FALSE(metadata.runtime_version().empty());
  std::map<std::string, dv1::RegisteredComponents> components;
  for (const auto& component : metadata.registered_components()) {
    components[component.name()] = component;
  }
  ASSERT_EQ(components.size(), 5u);
  EXPECT_EQ(components["state"].type(), "state.in-memory");
  EXPECT_EQ(components["state"].version(), "v1");
  EXPECT_NE(std::find(components["state"].capabilities().begin(),
                      components["state"].capabilities().end(), "ETAG"),
            components["state"].capabilities().end());
  EXPECT_EQ(components["pubsub"].type(), "pubsub.in-memory");
  EXPECT_EQ(components["lock"].type(), "lock.in-memory");
  EXPECT_EQ(components["config"].type(), "configuration.in-memory");

  dv1::SetMetadataRequest set;
  set.set_key("team");
  set.set_value("orders");
  google::protobuf::Empty empty;
  ASSERT_TRUE(dapr_->SetMetadata(Ctx().get(), set, &empty).ok());
  metadata.Clear();
  ASSERT_TRUE(dapr_->GetMetadata(Ctx().get(), dv1::GetMetadataRequest(), &metadata).ok());
  EXPECT_EQ(metadata.extended_metadata().at("team"), "orders");
  set.set_key("");
  EXPECT_EQ(dapr_->SetMetadata(Ctx().get(), set, &empty).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

TEST_F(DaprTest, StateWithEtagsBulkTransactionsAndDaprErrorCodes) {
  StartSidecar();
  ASSERT_TRUE(Save("k", "v1").ok());
  dv1::GetStateResponse got = Get("k");
  EXPECT_EQ(got.data(), "v1");
  ASSERT_FALSE(got.etag().empty());
  const std::string etag = got.etag();
  ASSERT_TRUE(Save("k", "v2", &etag).ok());
  EXPECT_EQ(Save("k", "v3", &etag).error_code(), StatusCode::ABORTED);  // stale etag
  const std::string malformed = "not-a-number";
  EXPECT_EQ(Save("k", "v3", &malformed).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get("k").data(), "v2");
  EXPECT_TRUE(Save("fw", "a", nullptr, dcommon::StateOptions::CONCURRENCY_FIRST_WRITE).ok());
  EXPECT_EQ(Save("fw", "b", nullptr, dcommon::StateOptions::CONCURRENCY_FIRST_WRITE).error_code(),
            StatusCode::ABORTED);
  EXPECT_EQ(
      Save("x", "y", nullptr, dcommon::StateOptions::CONCURRENCY_UNSPECIFIED, "nope").error_code(),
      StatusCode::INVALID_ARGUMENT);  // unknown store
  EXPECT_EQ(Save("a||b", "y").error_code(), StatusCode::INVALID_ARGUMENT);

  // A missing key is an empty answer, not an error.
  got = Get("absent");
  EXPECT_TRUE(got.data().empty());
  EXPECT_TRUE(got.etag().empty());

  dv1::GetBulkStateRequest bulk;
  bulk.set_store_name("state");
  bulk.add_keys("k");
  bulk.add_keys("absent");
  bulk.set_parallelism(10);
  dv1::GetBulkStateResponse items;
  ASSERT_TRUE(dapr_->GetBulkState(Ctx().get(), bulk, &items).ok());
  ASSERT_EQ(items.items_size(), 2);
  EXPECT_EQ(items.items(0).key(), "k");
  EXPECT_EQ(items.items(0).data(), "v2");
  EXPECT_FALSE(items.items(0).etag().empty());
  EXPECT_EQ(items.items(1).key(), "absent");
  EXPECT_TRUE(items.items(1).data().empty());

  // Transactions are all-or-nothing: a stale etag in the second operation applies nothing.
  dv1::ExecuteStateTransactionRequest tx;
  tx.set_storename("state");
  auto* upsert = tx.add_operations();
  upsert->set_operationtype("upsert");
  upsert->mutable_request()->set_key("t1");
  upsert->mutable_request()->set_value("one");
  auto* del = tx.add_operations();
  del->set_operationtype("delete");
  del->mutable_request()->set_key("k");
  del->mutable_request()->mutable_etag()->set_value(etag);  // stale
  google::protobuf::Empty empty;
  EXPECT_EQ(dapr_->ExecuteStateTransaction(Ctx().get(), tx, &empty).error_code(),
            StatusCode::ABORTED);
  EXPECT_TRUE(Get("t1").data().empty());
  del->mutable_request()->mutable_etag()->set_value(Get("k").etag());
  ASSERT_TRUE(dapr_->ExecuteStateTransaction(Ctx().get(), tx, &empty).ok());
  EXPECT_EQ(Get("t1").data(), "one");
  EXPECT_TRUE(Get("k").data().empty());
  upsert->set_operationtype("merge");
  EXPECT_EQ(dapr_->ExecuteStateTransaction(Ctx().get(), tx, &empty).error_code(),
            StatusCode::UNIMPLEMENTED);

  // Delete with a wrong etag is refused; with the right one it deletes. Bulk delete.
  dv1::DeleteStateRequest delete_one;
  delete_one.set_store_name("state");
  delete_one.set_key("t1");
  delete_one.mutable_etag()->set_value(etag);
  EXPECT_EQ(dapr_->DeleteState(Ctx().get(), delete_one, &empty).error_code(), StatusCode::ABORTED);
  delete_one.mutable_etag()->set_value(Get("t1").etag());
  ASSERT_TRUE(dapr_->DeleteState(Ctx().get(), delete_one, &empty).ok());
  EXPECT_TRUE(Get("t1").data().empty());
  ASSERT_TRUE(Save("b1", "1").ok());
  ASSERT_TRUE(Save("b2", "2").ok());
  dv1::DeleteBulkStateRequest delete_bulk;
  delete_bulk.set_store_name("state");
  delete_bulk.add_states()->set_key("b1");
  delete_bulk.add_states()->set_key("b2");
  ASSERT_TRUE(dapr_->DeleteBulkState(Ctx().get(), delete_bulk, &empty).ok());
  EXPECT_TRUE(Get("b1").data().empty());
  EXPECT_TRUE(Get("b2").data().empty());
}

TEST_F(DaprTest, NoStoreOfAKindIsFailedPrecondition) {
  json config = InMemoryConfig("dapr-e2e");
  config["components"].erase("state");
  config["components"].erase("lock");
  StartSidecar(config);
  EXPECT_EQ(Save("k", "v").error_code(), StatusCode::FAILED_PRECONDITION);
  dv1::TryLockRequest lock;
  lock.set_store_name("lock");
  lock.set_resource_id("r");
  lock.set_lock_owner("o");
  lock.set_expiry_in_seconds(5);
  dv1::TryLockResponse locked;
  EXPECT_EQ(dapr_->TryLockAlpha1(Ctx().get(), lock, &locked).error_code(),
            StatusCode::FAILED_PRECONDITION);
}

TEST_F(DaprTest, DataWrittenThroughOneApiIsReadThroughTheOther) {
  StartSidecar();
  ASSERT_TRUE(Save("shared", "from-dapr").ok());
  lv1::GetStateResponse layotto_got;
  ASSERT_TRUE(GetState(*layotto_, "shared", &layotto_got).ok());
  EXPECT_EQ(layotto_got.data(), "from-dapr");
  EXPECT_EQ(layotto_got.etag(), Get("shared").etag());
  ASSERT_TRUE(SaveState(*layotto_, "shared", "from-layotto", layotto_got.etag()).ok());
  EXPECT_EQ(Get("shared").data(), "from-layotto");
}

TEST_F(DaprTest, PublishAndBulkPublishReachASubscriber) {
  StartSidecar();
  // The subscriber is a Layotto stream: delivery is shared, only the publish side is Dapr's.
  grpc::ClientContext ctx;
  auto stream = layotto_->SubscribeTopicEvents(&ctx);
  lv1::SubscribeTopicEventsRequest initial;
  initial.mutable_initial_request()->set_pubsub_name("pubsub");
  initial.mutable_initial_request()->set_topic("orders");
  ASSERT_TRUE(stream->Write(initial));
  lv1::SubscribeTopicEventsResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_initial_response());

  auto expect_event = [&](const std::string& data, const std::string& content_type) {
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_TRUE(response.has_event_message());
    EXPECT_EQ(response.event_message().data(), data);
    EXPECT_EQ(response.event_message().data_content_type(), content_type);
    EXPECT_EQ(response.event_message().source(), "dapr-e2e");
    lv1::SubscribeTopicEventsRequest ack;
    ack.mutable_event_processed()->set_id(response.event_message().id());
    ack.mutable_event_processed()->mutable_status()->set_status(lv1::TopicEventResponse::SUCCESS);
    ASSERT_TRUE(stream->Write(ack));
  };

  dv1::PublishEventRequest publish;
  publish.set_pubsub_name("pubsub");
  publish.set_topic("orders");
  publish.set_data(R"({"order":1})");
  publish.set_data_content_type("application/json");
  google::protobuf::Empty empty;
  ASSERT_TRUE(dapr_->PublishEvent(Ctx().get(), publish, &empty).ok());
  expect_event(R"({"order":1})", "application/json");

  dv1::BulkPublishRequest bulk;
  bulk.set_pubsub_name("pubsub");
  bulk.set_topic("orders");
  for (const char* id : {"e1", "e2"}) {
    auto* entry = bulk.add_entries();
    entry->set_entry_id(id);
    entry->set_event(std::string("bulk-") + id);
    entry->set_content_type("text/plain");
  }
  dv1::BulkPublishResponse bulk_response;
  ASSERT_TRUE(dapr_->BulkPublishEventAlpha1(Ctx().get(), bulk, &bulk_response).ok());
  EXPECT_EQ(bulk_response.failedentries_size(), 0);
  expect_event("bulk-e1", "text/plain");
  expect_event("bulk-e2", "text/plain");
  ASSERT_TRUE(dapr_->BulkPublishEvent(Ctx().get(), bulk, &bulk_response).ok());
  expect_event("bulk-e1", "text/plain");
  expect_event("bulk-e2", "text/plain");

  // Bad requests: unknown pubsub, no topic, a repeated entry id.
  publish.set_pubsub_name("nope");
  EXPECT_EQ(dapr_->PublishEvent(Ctx().get(), publish, &empty).error_code(),
            StatusCode::INVALID_ARGUMENT);
  bulk.set_pubsub_name("nope");
  EXPECT_EQ(dapr_->BulkPublishEvent(Ctx().get(), bulk, &bulk_response).error_code(),
            StatusCode::INVALID_ARGUMENT);
  bulk.set_pubsub_name("pubsub");
  bulk.set_topic("");
  EXPECT_EQ(dapr_->BulkPublishEvent(Ctx().get(), bulk, &bulk_response).error_code(),
            StatusCode::INVALID_ARGUMENT);
  bulk.set_topic("orders");
  bulk.mutable_entries(1)->set_entry_id("e1");
  EXPECT_EQ(dapr_->BulkPublishEvent(Ctx().get(), bulk, &bulk_response).error_code(),
            StatusCode::INVALID_ARGUMENT);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(DaprTest, ConfigurationGetSubscribeAndUnsubscribe) {
  StartSidecar();
  // Items are saved through Layotto's API (Dapr's has no write call).
  lv1::SaveConfigurationRequest save;
  save.set_store_name("config");
  auto* item = save.add_items();
  item->set_key("color");
  item->set_content("red");
  (*item->mutable_metadata())["version"] = "1";
  google::protobuf::Empty empty;
  ASSERT_TRUE(layotto_->SaveConfiguration(Ctx().get(), save, &empty).ok());

  for (bool alpha : {false, true}) {
    dv1::GetConfigurationRequest get;
    get.set_store_name("config");
    get.add_keys("color");
    dv1::GetConfigurationResponse got;
    grpc::Status status = alpha ? dapr_->GetConfigurationAlpha1(Ctx().get(), get, &got)
                                : dapr_->GetConfiguration(Ctx().get(), get, &got);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(got.items().count("color"), 1u);
    EXPECT_EQ(got.items().at("color").value(), "red");
    EXPECT_EQ(got.items().at("color").version(), "1");
  }
  dv1::GetConfigurationRequest unknown_store;
  unknown_store.set_store_name("nope");
  dv1::GetConfigurationResponse got;
  EXPECT_EQ(dapr_->GetConfiguration(Ctx().get(), unknown_store, &got).error_code(),
            StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext ctx;
  dv1::SubscribeConfigurationRequest subscribe;
  subscribe.set_store_name("config");
  subscribe.add_keys("color");
  auto reader = dapr_->SubscribeConfiguration(&ctx, subscribe);
  dv1::SubscribeConfigurationResponse update;
  ASSERT_TRUE(reader->Read(&update));
  const std::string id = update.id();
  EXPECT_FALSE(id.empty());
  EXPECT_TRUE(update.items().empty());  // the first message only names the subscription

  // A subscription registers asynchronously: save until the change is seen.
  std::atomic<bool> seen{false};
  std::thread saver([&] {
    item->set_content("blue");
    for (int i = 0; i < 250 && !seen; ++i) {
      google::protobuf::Empty ignored;
      layotto_->SaveConfiguration(CallContext().get(), save, &ignored);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const bool read = reader->Read(&update);
  seen = true;
  saver.join();
  ASSERT_TRUE(read);
  EXPECT_EQ(update.id(), id);
  ASSERT_EQ(update.items().count("color"), 1u);
  EXPECT_EQ(update.items().at("color").value(), "blue");

  dv1::UnsubscribeConfigurationRequest unsubscribe;
  unsubscribe.set_store_name("config");
  unsubscribe.set_id(id);
  dv1::UnsubscribeConfigurationResponse unsubscribed;
  ASSERT_TRUE(dapr_->UnsubscribeConfiguration(Ctx().get(), unsubscribe, &unsubscribed).ok());
  EXPECT_TRUE(unsubscribed.ok());
  // The stream ends (further reads stop) with OK.
  while (reader->Read(&update)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(dapr_->UnsubscribeConfigurationAlpha1(Ctx().get(), unsubscribe, &unsubscribed).ok());
  EXPECT_FALSE(unsubscribed.ok());
  EXPECT_FALSE(unsubscribed.message().empty());
}

TEST_F(DaprTest, LocksAreExclusiveAndOnlyTheOwnerUnlocks) {
  StartSidecar();
  dv1::TryLockRequest lock;
  lock.set_store_name("lock");
  lock.set_resource_id("res");
  lock.set_lock_owner("alice");
  lock.set_expiry_in_seconds(30);
  dv1::TryLockResponse locked;
  ASSERT_TRUE(dapr_->TryLockAlpha1(Ctx().get(), lock, &locked).ok());
  EXPECT_TRUE(locked.success());
  lock.set_lock_owner("bob");
  ASSERT_TRUE(dapr_->TryLockAlpha1(Ctx().get(), lock, &locked).ok());
  EXPECT_FALSE(locked.success());

  dv1::UnlockRequest unlock;
  unlock.set_store_name("lock");
  unlock.set_resource_id("res");
  unlock.set_lock_owner("bob");
  dv1::UnlockResponse unlocked;
  ASSERT_TRUE(dapr_->UnlockAlpha1(Ctx().get(), unlock, &unlocked).ok());
  EXPECT_EQ(unlocked.status(), dv1::UnlockResponse::LOCK_BELONGS_TO_OTHERS);
  unlock.set_lock_owner("alice");
  ASSERT_TRUE(dapr_->UnlockAlpha1(Ctx().get(), unlock, &unlocked).ok());
  EXPECT_EQ(unlocked.status(), dv1::UnlockResponse::SUCCESS);
  ASSERT_TRUE(dapr_->UnlockAlpha1(Ctx().get(), unlock, &unlocked).ok());
  EXPECT_EQ(unlocked.status(), dv1::UnlockResponse::LOCK_DOES_NOT_EXIST);

  lock.set_store_name("nope");
  EXPECT_EQ(dapr_->TryLockAlpha1(Ctx().get(), lock, &locked).error_code(),
            StatusCode::INVALID_ARGUMENT);
  lock.set_store_name("lock");
  lock.set_expiry_in_seconds(0);
  EXPECT_EQ(dapr_->TryLockAlpha1(Ctx().get(), lock, &locked).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

TEST_F(DaprTest, InvokeServiceGoesThroughTheMesh) {
  HttpUpstream::Options options;
  options.name = "callee";
  auto upstream = HttpUpstream::Start(options);
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  json config = InMemoryConfig("dapr-e2e");
  config["mesh"] = {
      {"workers", 1},
      {"listeners", json::array()},
      {"routers",
       {{{"name", "r"}, {"routes", {{{"match", {{"service", "callee"}}}, {"cluster", "c"}}}}}}},
      {"clusters",
       {{{"name", "c"},
         {"protocol", "http1"},
         {"hosts", {{{"address", (*upstream)->address()}, {"weight", 1}}}}}}}};
  StartSidecar(config);

  dv1::InvokeServiceRequest request;
  request.set_id("callee");
  request.mutable_message()->set_method("orders/1");
  request.mutable_message()->mutable_data()->set_value(R"({"a":1})");
  request.mutable_message()->set_content_type("application/json");
  request.mutable_message()->mutable_http_extension()->set_verb(dcommon::HTTPExtension::PUT);
  request.mutable_message()->mutable_http_extension()->set_querystring("x=1");
  dcommon::InvokeResponse response;
  grpc::Status status = dapr_->InvokeService(Ctx().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  json echo = json::parse(response.data().value());
  EXPECT_EQ(echo["method"], "PUT");
  EXPECT_EQ(echo["path"], "/orders/1");
  EXPECT_EQ(echo["query"], "x=1");
  EXPECT_EQ(echo["body"], R"({"a":1})");
  EXPECT_EQ(echo["headers"]["content-type"], "application/json");
  EXPECT_EQ(echo["headers"]["dapr-caller-app-id"], "dapr-e2e");

  request.set_id("");
  EXPECT_EQ(dapr_->InvokeService(Ctx().get(), request, &response).error_code(),
            StatusCode::INVALID_ARGUMENT);
  request.set_id("nobody");
  EXPECT_EQ(dapr_->InvokeService(Ctx().get(), request, &response).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(DaprTest, UnbuiltApisAnswerUnimplementedWithAMessage) {
  StartSidecar();
  dv1::InvokeServiceRequest invoke;
  invoke.set_id("someone");
  dcommon::InvokeResponse invoked;
  EXPECT_EQ(dapr_->InvokeService(Ctx().get(), invoke, &invoked).error_code(),
            StatusCode::FAILED_PRECONDITION);  // no mesh configured

  dv1::InvokeBindingRequest binding;
  dv1::InvokeBindingResponse bound;
  grpc::Status status = dapr_->InvokeBinding(Ctx().get(), binding, &bound);
  EXPECT_EQ(status.error_code(), StatusCode::UNIMPLEMENTED);
  EXPECT_NE(status.error_message().find("Binding"), std::string::npos);
  dv1::QueryStateRequest query;
  dv1::QueryStateResponse queried;
  EXPECT_EQ(dapr_->QueryStateAlpha1(Ctx().get(), query, &queried).error_code(),
            StatusCode::UNIMPLEMENTED);
  // Methods our proto does not declare still get a message naming them.
  for (const char* method :
       {"/dapr.proto.runtime.v1.Dapr/InvokeActor", "/dapr.proto.runtime.v1.Dapr/StartWorkflowBeta1",
        "/dapr.proto.runtime.v1.Dapr/SubscribeTopicEventsAlpha1"}) {
    status = CallRaw(method);
    EXPECT_EQ(status.error_code(), StatusCode::UNIMPLEMENTED) << method;
    EXPECT_NE(status.error_message().find(std::string(method).substr(1)), std::string::npos)
        << status.error_message();
  }
  // Layotto's service is still there on the same port.
  lv1::SayHelloRequest hello;
  lv1::SayHelloResponse reply;
  EXPECT_TRUE(layotto_->SayHello(Ctx().get(), hello, &reply).ok());
}

TEST_F(DaprTest, ShutdownStopsTheSidecarCleanly) {
  StartSidecar();
  google::protobuf::Empty empty;
  ASSERT_TRUE(dapr_->Shutdown(Ctx().get(), dv1::ShutdownRequest(), &empty).ok());
  EXPECT_EQ(sidecar_->Stop(0), 0) << sidecar_->Stderr();
  sidecar_.reset();
}

// With an API token, every gRPC method wants it: Dapr's, Layotto's and the ones Ottava does not
// implement (those must not tell an unauthenticated caller which methods exist).
TEST_F(DaprTest, TheTokenGuardsEveryMethodUnknownOnesIncluded) {
  json config = InMemoryConfig("dapr-e2e");
  config["api_token"] = "s3cret";
  ASSERT_NO_FATAL_FAILURE(StartSidecar(config));

  grpc::Status status;
  Get("k", &status);
  EXPECT_EQ(status.error_code(), StatusCode::UNAUTHENTICATED) << status.error_message();
  {
    lv1::GetStateRequest request;
    request.set_store_name("state");
    request.set_key("k");
    lv1::GetStateResponse response;
    status = layotto_->GetState(Ctx().get(), request, &response);
    EXPECT_EQ(status.error_code(), StatusCode::UNAUTHENTICATED) << status.error_message();
  }
  const std::string unknown = "/dapr.proto.runtime.v1.Dapr/InvokeActor";
  status = CallRaw(unknown);
  EXPECT_EQ(status.error_code(), StatusCode::UNAUTHENTICATED) << status.error_message();
  status = CallRaw(unknown, "wrong");
  EXPECT_EQ(status.error_code(), StatusCode::UNAUTHENTICATED) << status.error_message();

  status = CallRaw(unknown, "s3cret");
  EXPECT_EQ(status.error_code(), StatusCode::UNIMPLEMENTED) << status.error_message();
  EXPECT_NE(status.error_message().find("InvokeActor"), std::string::npos);
  {
    dv1::GetStateRequest request;
    request.set_store_name("state");
    request.set_key("k");
    dv1::GetStateResponse response;
    auto ctx = Ctx();
    ctx->AddMetadata("dapr-api-token", "s3cret");
    status = dapr_->GetState(ctx.get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
}

}  // namespace
}  // namespace ottava::test
