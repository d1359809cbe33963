// End-to-end: the real `ottava` binary, started with a config file (port 0 + ready file), driven
// over gRPC and HTTP like an application and a PaaS would.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/process.h"
#include "test/support/runtime_calls.h"
#include "test/support/test_app.h"

namespace ottava::test {
namespace {

namespace v1 = spec::proto::runtime::v1;
using grpc::StatusCode;

class SidecarTest : public ::testing::Test {
 protected:
  void StartSidecar(nlohmann::json config = InMemoryConfig()) {
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    channel_ = grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials());
    stub_ = v1::Runtime::NewStub(channel_);
  }

  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  static std::unique_ptr<grpc::ClientContext> Ctx() { return CallContext(); }

  grpc::Status Save(
      const std::string& key,
      const std::string& value,
      const std::string& etag = "",
      v1::StateOptions::StateConcurrency concurrency = v1::StateOptions::CONCURRENCY_UNSPECIFIED,
      const std::map<std::string, std::string>& metadata = {}) {
    return SaveState(*stub_, key, value, etag, concurrency, metadata);
  }

  v1::GetStateResponse Get(const std::string& key, grpc::Status* status = nullptr) {
    v1::GetStateResponse response;
    grpc::Status s = GetState(*stub_, key, &response);
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return response;
  }

  httplib::Result Http(const std::string& path) {
    httplib::Client client(sidecar_->actuator_address());
    client.set_read_timeout(5);
    return client.Get(path);
  }

  std::unique_ptr<Sidecar> sidecar_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Runtime::Stub> stub_;
};

TEST_F(SidecarTest, ReadyFileHealthInfoAndHello) {
  StartSidecar();
  auto ready = Http("/actuator/health/readiness");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto body = nlohmann::json::parse(ready->body);
  EXPECT_EQ(body["status"], "UP");
  // One indicator per component instance.
  for (const char* name : {"state/state", "lock/lock", "sequencer/sequencer", "config_store/config",
                           "pub_subs/pubsub"}) {
    EXPECT_EQ(body["components"][name]["status"], "UP") << name;
  }
  auto live = Http("/actuator/health/liveness");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200) << live->body;

  auto info = nlohmann::json::parse(Http("/actuator/info")->body);
  EXPECT_EQ(info["app"]["id"], "e2e");
  EXPECT_EQ(info["components"].size(), 5u);
  EXPECT_EQ(info["components"][0]["type"], "in-memory");

  v1::SayHelloRequest hello;
  hello.set_name("ottava");
  v1::SayHelloResponse reply;
  ASSERT_TRUE(stub_->SayHello(Ctx().get(), hello, &reply).ok());
  EXPECT_EQ(reply.hello(), "greetings, ottava");
}

TEST_F(SidecarTest, StateEtagsFirstWriteTtlBulkAndTransactions) {
  StartSidecar();
  ASSERT_TRUE(Save("k", "v1").ok());
  v1::GetStateResponse got = Get("k");
  EXPECT_EQ(got.data(), "v1");
  ASSERT_FALSE(got.etag().empty());
  const std::string etag = got.etag();

  // Right etag wins and changes the etag; the old one then loses with ABORTED.
  ASSERT_TRUE(Save("k", "v2", etag).ok());
  EXPECT_NE(Get("k").etag(), etag);
  EXPECT_EQ(Save("k", "v3", etag).error_code(), StatusCode::ABORTED);
  EXPECT_EQ(Get("k").data(), "v2");
  // A malformed etag is a bad argument, not a conflict.
  EXPECT_EQ(Save("k", "v3", "not-a-number").error_code(), StatusCode::INVALID_ARGUMENT);

  // First-write: create only.
  EXPECT_TRUE(Save("fw", "a", "", v1::StateOptions::CONCURRENCY_FIRST_WRITE).ok());
  EXPECT_EQ(Save("fw", "b", "", v1::StateOptions::CONCURRENCY_FIRST_WRITE).error_code(),
            StatusCode::ABORTED);

  // Missing key: not an error, empty data and etag.
  got = Get("absent");
  EXPECT_TRUE(got.data().empty());
  EXPECT_TRUE(got.etag().empty());

  // TTL reports ttlExpireTime; no TTL reports none.
  ASSERT_TRUE(
      Save("ttl", "x", "", v1::StateOptions::CONCURRENCY_UNSPECIFIED, {{"ttlInSeconds", "3600"}})
          .ok());
  EXPECT_EQ(Get("ttl").metadata().count("ttlExpireTime"), 1u);
  EXPECT_EQ(Get("k").metadata().count("ttlExpireTime"), 0u);
  EXPECT_EQ(
      Save("ttl", "x", "", v1::StateOptions::CONCURRENCY_UNSPECIFIED, {{"ttlInSeconds", "soon"}})
          .error_code(),
      StatusCode::INVALID_ARGUMENT);

  // Bulk get returns every key, absent ones included.
  v1::GetBulkStateRequest bulk;
  bulk.set_store_name("state");
  bulk.add_keys("k");
  bulk.add_keys("fw");
  bulk.add_keys("nothing");
  v1::GetBulkStateResponse bulk_reply;
  ASSERT_TRUE(stub_->GetBulkState(Ctx().get(), bulk, &bulk_reply).ok());
  ASSERT_EQ(bulk_reply.items_size(), 3);
  EXPECT_EQ(bulk_reply.items(0).key(), "k");
  EXPECT_EQ(bulk_reply.items(0).data(), "v2");
  EXPECT_EQ(bulk_reply.items(1).data(), "a");
  EXPECT_TRUE(bulk_reply.items(2).data().empty());

  // A transaction with one stale etag applies nothing.
  v1::ExecuteStateTransactionRequest tx;
  tx.set_storename("state");
  auto* op1 = tx.add_operations();
  op1->set_operationtype("upsert");
  op1->mutable_request()->set_key("t1");
  op1->mutable_request()->set_value("one");
  auto* op2 = tx.add_operations();
  op2->set_operationtype("delete");
  op2->mutable_request()->set_key("k");
  op2->mutable_request()->mutable_etag()->set_value(etag);  // stale
  google::protobuf::Empty empty;
  EXPECT_EQ(stub_->ExecuteStateTransaction(Ctx().get(), tx, &empty).error_code(),
            StatusCode::ABORTED);
  EXPECT_TRUE(Get("t1").data().empty());
  EXPECT_EQ(Get("k").data(), "v2");
  // With the current etag everything applies, in order.
  op2->mutable_request()->mutable_etag()->set_value(Get("k").etag());
  ASSERT_TRUE(stub_->ExecuteStateTransaction(Ctx().get(), tx, &empty).ok());
  EXPECT_EQ(Get("t1").data(), "one");
  EXPECT_TRUE(Get("k").data().empty());
  op1->set_operationtype("merge");
  EXPECT_EQ(stub_->ExecuteStateTransaction(Ctx().get(), tx, &empty).error_code(),
            StatusCode::UNIMPLEMENTED);

  // Delete and bulk delete.
  v1::DeleteStateRequest del;
  del.set_store_name("state");
  del.set_key("t1");
  ASSERT_TRUE(stub_->DeleteState(Ctx().get(), del, &empty).ok());
  EXPECT_TRUE(Get("t1").data().empty());
  v1::DeleteBulkStateRequest bulk_del;
  bulk_del.set_store_name("state");
  bulk_del.add_states()->set_key("fw");
  bulk_del.add_states()->set_key("ttl");
  ASSERT_TRUE(stub_->DeleteBulkState(Ctx().get(), bulk_del, &empty).ok());
  EXPECT_TRUE(Get("fw").data().empty());
  EXPECT_TRUE(Get("ttl").data().empty());
}

TEST_F(SidecarTest, BadStateRequestsGetTheDesignedCodesAndChangeNothing) {
  StartSidecar();
  ASSERT_TRUE(Save("keep", "safe").ok());
  EXPECT_EQ(Save("", "x").error_code(), StatusCode::INVALID_ARGUMENT);
  grpc::Status status = Save("a||b", "x");
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("||"), std::string::npos);

  v1::GetStateRequest request;
  request.set_store_name("nope");
  request.set_key("keep");
  v1::GetStateResponse response;
  status = stub_->GetState(Ctx().get(), request, &response);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("nope"), std::string::npos);

  // Over grpc.max_message_bytes (4 MiB by default).
  status = Save("big", std::string(5 * 1024 * 1024, 'x'));
  EXPECT_EQ(status.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Get("keep").data(), "safe");
  grpc::Status get_status;
  Get("big", &get_status);
  EXPECT_TRUE(get_status.ok());
  EXPECT_TRUE(Get("big").data().empty());
}

TEST_F(SidecarTest, NoStoreOfAKindIsFailedPrecondition) {
  nlohmann::json config = InMemoryConfig();
  config["components"].erase("state");
  config["components"].erase("lock");
  StartSidecar(config);
  grpc::Status status;
  Get("k", &status);
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION);
  v1::TryLockRequest lock;
  lock.set_store_name("lock");
  lock.set_resource_id("r");
  lock.set_lock_owner("o");
  lock.set_expire(5);
  v1::TryLockResponse lock_reply;
  EXPECT_EQ(stub_->TryLock(Ctx().get(), lock, &lock_reply).error_code(),
            StatusCode::FAILED_PRECONDITION);
}

TEST_F(SidecarTest, LocksAreExclusiveOwnedAndKeptAlive) {
  StartSidecar();
  auto try_lock = [this](const std::string& owner, int expire, grpc::Status* status = nullptr) {
    v1::TryLockRequest request;
    request.set_store_name("lock");
    request.set_resource_id("orders");
    request.set_lock_owner(owner);
    request.set_expire(expire);
    v1::TryLockResponse response;
    grpc::Status s = stub_->TryLock(Ctx().get(), request, &response);
    if (status != nullptr) {
      *status = s;
    }
    return response.success();
  };
  auto unlock = [this](const std::string& owner, const std::string& resource = "orders") {
    v1::UnlockRequest request;
    request.set_store_name("lock");
    request.set_resource_id(resource);
    request.set_lock_owner(owner);
    v1::UnlockResponse response;
    EXPECT_TRUE(stub_->Unlock(Ctx().get(), request, &response).ok());
    return response.status();
  };
  auto keep_alive = [this](const std::string& owner, int expire) {
    v1::LockKeepAliveRequest request;
    request.set_store_name("lock");
    request.set_resource_id("orders");
    request.set_lock_owner(owner);
    request.set_expire(expire);
    v1::LockKeepAliveResponse response;
    EXPECT_TRUE(stub_->LockKeepAlive(Ctx().get(), request, &response).ok());
    return response.status();
  };

  EXPECT_TRUE(try_lock("alice", 10));
  EXPECT_FALSE(try_lock("alice", 10));  // not re-entrant
  EXPECT_FALSE(try_lock("bob", 10));
  EXPECT_EQ(unlock("bob"), v1::UnlockResponse::LOCK_BELONG_TO_OTHERS);
  EXPECT_EQ(unlock("alice", "unknown"), v1::UnlockResponse::LOCK_UNEXIST);
  EXPECT_EQ(keep_alive("bob", 10), v1::LockKeepAliveResponse::LOCK_BELONG_TO_OTHERS);
  EXPECT_EQ(keep_alive("alice", 10), v1::LockKeepAliveResponse::SUCCESS);
  EXPECT_EQ(unlock("alice"), v1::UnlockResponse::SUCCESS);
  EXPECT_TRUE(try_lock("bob", 1));
  // Expiry hands the lock over.
  EXPECT_TRUE(WaitFor([&] { return try_lock("carol", 10); }, std::chrono::seconds(5)));
  EXPECT_EQ(unlock("bob"), v1::UnlockResponse::LOCK_BELONG_TO_OTHERS);

  grpc::Status status;
  try_lock("dave", 0, &status);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  try_lock("", 5, &status);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(SidecarTest, SequencerWeakAndStrongIncrease) {
  StartSidecar();
  auto next = [this](const std::string& key, bool strong) {
    v1::GetNextIdRequest request;
    request.set_store_name("sequencer");
    request.set_key(key);
    if (strong) {
      request.mutable_options()->set_increment(v1::SequencerOptions::STRONG);
    }
    v1::GetNextIdResponse response;
    EXPECT_TRUE(stub_->GetNextId(Ctx().get(), request, &response).ok());
    return response.next_id();
  };
  int64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    int64_t id = next("orders", i % 2 == 0);
    EXPECT_GT(id, last);
    last = id;
  }
  EXPECT_EQ(next("other", true), 1);
  v1::GetNextIdRequest bad;
  bad.set_store_name("sequencer");
  v1::GetNextIdResponse response;
  EXPECT_EQ(stub_->GetNextId(Ctx().get(), bad, &response).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

TEST_F(SidecarTest, ConfigurationGetSaveDeleteAndSubscribe) {
  StartSidecar();
  google::protobuf::Empty empty;
  v1::SaveConfigurationRequest save;
  save.set_store_name("config");
  auto* item = save.add_items();
  item->set_key("timeout");
  item->set_content("30");
  (*item->mutable_tags())["owner"] = "ops";
  ASSERT_TRUE(stub_->SaveConfiguration(Ctx().get(), save, &empty).ok());

  v1::GetConfigurationRequest get;
  get.set_store_name("config");
  get.add_keys("timeout");
  v1::GetConfigurationResponse got;
  ASSERT_TRUE(stub_->GetConfiguration(Ctx().get(), get, &got).ok());
  ASSERT_EQ(got.items_size(), 1);
  EXPECT_EQ(got.items(0).content(), "30");
  EXPECT_EQ(got.items(0).tags().at("owner"), "ops");

  // A stream that sends garbage (an unknown store) fails alone; a good stream sees the changes.
  grpc::ClientContext bad_ctx;
  auto bad = stub_->SubscribeConfiguration(&bad_ctx);
  v1::SubscribeConfigurationRequest bad_request;
  bad_request.set_store_name("nope");
  ASSERT_TRUE(bad->Write(bad_request));
  v1::SubscribeConfigurationResponse ignored;
  EXPECT_FALSE(bad->Read(&ignored));
  EXPECT_EQ(bad->Finish().error_code(), StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext ctx;
  auto stream = stub_->SubscribeConfiguration(&ctx);
  v1::SubscribeConfigurationRequest subscribe;
  subscribe.set_store_name("config");
  subscribe.add_keys("timeout");
  ASSERT_TRUE(stream->Write(subscribe));
  v1::SubscribeConfigurationResponse update;
  ASSERT_TRUE(SaveConfigUntilSeen(*stub_, "timeout", "31", *stream, &update));
  ASSERT_EQ(update.items_size(), 1);
  EXPECT_EQ(update.items(0).key(), "timeout");
  EXPECT_EQ(update.items(0).content(), "31");

  v1::DeleteConfigurationRequest del;
  del.set_store_name("config");
  del.add_keys("timeout");
  ASSERT_TRUE(stub_->DeleteConfiguration(Ctx().get(), del, &empty).ok());
  // Drain repeated "31" updates, then the deletion arrives with empty content.
  bool deleted = false;
  for (int i = 0; i < 500 && !deleted; ++i) {
    ASSERT_TRUE(stream->Read(&update));
    deleted = update.items_size() == 1 && update.items(0).content().empty();
  }
  EXPECT_TRUE(deleted);
  ctx.TryCancel();
  stream->Finish();

  got = {};
  ASSERT_TRUE(stub_->GetConfiguration(Ctx().get(), get, &got).ok());
  EXPECT_EQ(got.items_size(), 0);
}

TEST_F(SidecarTest, SubscribeTopicEventsStreamRedeliversOnRetry) {
  StartSidecar();
  grpc::ClientContext ctx;
  auto stream = stub_->SubscribeTopicEvents(&ctx);
  v1::SubscribeTopicEventsRequest initial;
  initial.mutable_initial_request()->set_pubsub_name("pubsub");
  initial.mutable_initial_request()->set_topic("orders");
  ASSERT_TRUE(stream->Write(initial));
  v1::SubscribeTopicEventsResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_TRUE(response.has_initial_response());

  v1::PublishEventRequest publish;
  publish.set_pubsub_name("pubsub");
  publish.set_topic("orders");
  publish.set_data(R"({"order":1})");
  publish.set_data_content_type("application/json");
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->PublishEvent(Ctx().get(), publish, &empty).ok());

  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_event_message());
  const v1::TopicEventRequest first = response.event_message();
  EXPECT_EQ(first.data(), R"({"order":1})");
  EXPECT_EQ(first.topic(), "orders");
  EXPECT_EQ(first.pubsub_name(), "pubsub");
  EXPECT_EQ(first.source(), "e2e");
  EXPECT_EQ(first.spec_version(), "1.0");
  EXPECT_EQ(first.data_content_type(), "application/json");

  v1::SubscribeTopicEventsRequest ack;
  ack.mutable_event_processed()->set_id(first.id());
  ack.mutable_event_processed()->mutable_status()->set_status(v1::TopicEventResponse::RETRY);
  ASSERT_TRUE(stream->Write(ack));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(response.has_event_message());
  EXPECT_EQ(response.event_message().id(), first.id());  // the same event again
  ack.mutable_event_processed()->mutable_status()->set_status(v1::TopicEventResponse::SUCCESS);
  ASSERT_TRUE(stream->Write(ack));

  // Publishing to an unknown pubsub or without a topic fails and nothing else changes.
  publish.set_pubsub_name("nope");
  EXPECT_EQ(stub_->PublishEvent(Ctx().get(), publish, &empty).error_code(),
            StatusCode::INVALID_ARGUMENT);
  publish.set_pubsub_name("pubsub");
  publish.set_topic("");
  EXPECT_EQ(stub_->PublishEvent(Ctx().get(), publish, &empty).error_code(),
            StatusCode::INVALID_ARGUMENT);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // Subscription options are parsed strictly: a malformed maxRetries ends the stream at once.
  grpc::ClientContext bad_ctx;
  auto bad = stub_->SubscribeTopicEvents(&bad_ctx);
  initial.mutable_initial_request()->mutable_metadata()->insert({"maxRetries", "abc"});
  ASSERT_TRUE(bad->Write(initial));
  EXPECT_FALSE(bad->Read(&response));
  grpc::Status finished = bad->Finish();
  EXPECT_EQ(finished.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(finished.error_message().find("maxRetries"), std::string::npos)
      << finished.error_message();
}

TEST_F(SidecarTest, AppCallbackSubscriptionsRetryDropAndDeadLetter) {
  // The app starts after the sidecar: ListTopicSubscriptions is retried until it answers.
  int app_port = 0;
  {
    TestApp probe({});  // find a free port, then release it
    app_port = probe.port();
  }
  nlohmann::json config = InMemoryConfig("orders-app");
  config["app"]["callback"] = {{"address", "127.0.0.1:" + std::to_string(app_port)},
                               {"timeout_ms", 500}};
  config["subscriptions"] = nlohmann::json::array({{{"pubsub_name", "pubsub"},
                                                    {"topic", "orders"},
                                                    {"dead_letter_topic", "orders-dlq"},
                                                    {"max_retries", 2},
                                                    {"retry_initial_ms", 10},
                                                    {"retry_max_ms", 50}}});
  StartSidecar(config);
  TestApp app({Subscription("pubsub", "orders-dlq"), Subscription("pubsub", "hang")}, app_port);
  app.SetPolicy([](const v1::TopicEventRequest& event, int attempt) {
    TestApp::Reply reply;
    if (event.data() == "retry-once" && attempt == 1) {
      reply.verdict = v1::TopicEventResponse::RETRY;
    } else if (event.data() == "drop") {
      reply.verdict = v1::TopicEventResponse::DROP;
    } else if (event.data() == "poison" && event.topic() == "orders") {
      reply.status = grpc::Status(StatusCode::INTERNAL, "boom");
    } else if (event.data() == "unimplemented") {
      reply.status = grpc::Status(StatusCode::UNIMPLEMENTED, "no handler");
    } else if (event.topic() == "hang") {
      reply.delay = std::chrono::milliseconds(2000);
    }
    return reply;
  });
  ASSERT_TRUE(WaitFor([&] { return app.list_calls() > 0; }, std::chrono::seconds(10)));

  auto publish = [this](const std::string& topic, const std::string& data) {
    v1::PublishEventRequest request;
    request.set_pubsub_name("pubsub");
    request.set_topic(topic);
    request.set_data(data);
    google::protobuf::Empty empty;
    return stub_->PublishEvent(Ctx().get(), request, &empty);
  };
  // The app-declared subscriptions start once it answers; keep publishing a probe until then.
  ASSERT_TRUE(WaitFor([&] {
    publish("orders-dlq", "probe");
    return app.CountData("probe") > 0;
  }));

  ASSERT_TRUE(publish("orders", "retry-once").ok());
  ASSERT_TRUE(publish("orders", "drop").ok());
  ASSERT_TRUE(publish("orders", "unimplemented").ok());
  ASSERT_TRUE(publish("orders", "poison").ok());
  ASSERT_TRUE(publish("orders", "last").ok());
  ASSERT_TRUE(WaitFor([&] { return app.CountData("last") == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(app.CountData("retry-once"), 2);     // RETRY redelivers once
  EXPECT_EQ(app.CountData("drop"), 1);           // DROP is final
  EXPECT_EQ(app.CountData("unimplemented"), 1);  // UNIMPLEMENTED drops
  // An error retries; after max_retries=2 redeliveries the event goes to the dead-letter topic,
  // which the app also subscribes to: one copy arrives there.
  // 1 delivery + 2 redeliveries on "orders", then one copy on "orders-dlq".
  ASSERT_TRUE(WaitFor([&] { return app.CountData("poison") >= 4; }));
  int on_orders = 0;
  int on_dlq = 0;
  for (const auto& event : app.Events()) {
    if (event.data() == "poison") {
      (event.topic() == "orders" ? on_orders : on_dlq) += 1;
    }
  }
  EXPECT_EQ(on_orders, 3);
  EXPECT_EQ(on_dlq, 1);

  // A hung app never stalls the API.
  ASSERT_TRUE(publish("hang", "slow").ok());
  ASSERT_TRUE(WaitFor([&] { return app.CountData("slow") >= 1; }));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Save("during-hang", std::to_string(i)).ok());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));

  auto metrics = Http("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body.find(
          R"(ottava_pubsub_deliveries_total{pubsub="pubsub",topic="orders",outcome="dead_letter"} 1)"),
      std::string::npos)
      << metrics->body;
  auto info = nlohmann::json::parse(Http("/actuator/info")->body);
  EXPECT_GE(info["subscriptions"].size(), 3u);
}

TEST_F(SidecarTest, UnbuiltApisAreUnimplementedAndMetricsCountEveryCall) {
  StartSidecar();
  v1::InvokeServiceRequest invoke;
  invoke.set_id("com.example.Echo:1.0");
  v1::InvokeResponse invoke_reply;
  grpc::Status status = stub_->InvokeService(Ctx().get(), invoke, &invoke_reply);
  // No mesh section: nothing of that kind is configured (DESIGN §5).
  EXPECT_EQ(status.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("mesh"), std::string::npos);
  v1::GetSecretRequest secret;
  v1::GetSecretResponse secret_reply;
  EXPECT_EQ(stub_->GetSecret(Ctx().get(), secret, &secret_reply).error_code(),
            StatusCode::UNIMPLEMENTED);
  v1::InvokeBindingRequest binding;
  v1::InvokeBindingResponse binding_reply;
  EXPECT_EQ(stub_->InvokeBinding(Ctx().get(), binding, &binding_reply).error_code(),
            StatusCode::UNIMPLEMENTED);

  ASSERT_TRUE(Save("m", "1").ok());
  Get("m");
  grpc::Status bad;
  Get("", &bad);
  auto metrics = Http("/metrics");
  ASSERT_TRUE(metrics);
  const std::string& text = metrics->body;
  EXPECT_NE(text.find(R"(ottava_grpc_requests_total{method="GetState",code="OK"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(ottava_grpc_requests_total{method="GetState",code="INVALID_ARGUMENT"} 1)"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          R"(ottava_grpc_requests_total{method="InvokeService",code="FAILED_PRECONDITION"} 1)"),
      std::string::npos);
  EXPECT_NE(text.find(R"(ottava_grpc_request_duration_seconds_count{method="SaveState"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find("ottava_grpc_requests_in_flight 0"), std::string::npos);
  EXPECT_NE(text.find(R"(ottava_component_health{kind="state",name="state",type="in-memory"} 1)"),
            std::string::npos);
}

TEST_F(SidecarTest, SigtermDrainsStreamsAndExitsZero) {
  StartSidecar();
  grpc::ClientContext ctx;
  auto stream = stub_->SubscribeTopicEvents(&ctx);
  v1::SubscribeTopicEventsRequest initial;
  initial.mutable_initial_request()->set_pubsub_name("pubsub");
  initial.mutable_initial_request()->set_topic("t");
  ASSERT_TRUE(stream->Write(initial));
  v1::SubscribeTopicEventsResponse response;
  ASSERT_TRUE(stream->Read(&response));
  auto start = std::chrono::steady_clock::now();
  const std::string ready_file = sidecar_->ready_file();
  EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
  // Open streams end at once (they do not hold the drain for its whole budget).
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), StatusCode::UNAVAILABLE);
  EXPECT_NE(access(ready_file.c_str(), F_OK), 0);
  sidecar_.reset();
}

TEST(SidecarProcessTest, BadConfigExitsTwoNamingTheKey) {
  const std::string dir = MakeTempDir();
  const std::string path = dir + "/bad.json";
  std::ofstream(path) << R"({"components": {"state": {"main": {"type": "in-memroy"}}}})";
  RunResult result = RunProcess({BinDir() + "/ottava", "--config", path});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(path), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("/components/state/main/type"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("in-memroy"), std::string::npos) << result.err;

  std::ofstream(path) << R"({"grpc": {"max_message_bytes": "big"}})";
  result = RunProcess({BinDir() + "/ottava", "validate", "--config", path});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("/grpc/max_message_bytes"), std::string::npos) << result.err;

  std::ofstream(path) << InMemoryConfig().dump();
  result = RunProcess({BinDir() + "/ottava", "validate", "--config", path});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  result = RunProcess({BinDir() + "/ottava", "version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out.rfind("ottava ", 0), 0u);
}

TEST(SidecarProcessTest, PortInUseExitsOne) {
  auto first = Sidecar::Start(InMemoryConfig());
  ASSERT_TRUE(first.ok()) << first.status();
  nlohmann::json config = InMemoryConfig();
  config["grpc"]["address"] = (*first)->grpc_address();
  const std::string dir = MakeTempDir();
  const std::string path = dir + "/config.json";
  std::ofstream(path) << config.dump();
  RunResult result = RunProcess({BinDir() + "/ottava", "--config", path});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/grpc/address"), std::string::npos) << result.err;
  EXPECT_EQ((*first)->Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace ottava::test
