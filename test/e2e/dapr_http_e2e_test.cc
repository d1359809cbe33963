// End-to-end: Dapr's HTTP API v1.0 of the real `ottava` binary, driven with plain HTTP requests
// shaped as the Dapr SDKs and curl send them (reference/dapr-sdk-wire.md).

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/http_upstream.h"
#include "test/support/process.h"
#include "test/support/runtime_calls.h"

namespace ottava::test {
namespace {

namespace lv1 = spec::proto::runtime::v1;
using nlohmann::json;

class DaprHttpTest : public ::testing::Test {
 protected:
  void StartSidecar(json config = InMemoryConfig("http-e2e")) {
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    ASSERT_FALSE(sidecar_->dapr_http_address().empty());
    client_ = std::make_unique<httplib::Client>("http://" + sidecar_->dapr_http_address());
    client_->set_read_timeout(5);
    layotto_ = lv1::Runtime::NewStub(
        grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  httplib::Result Post(const std::string& path,
                       const std::string& body,
                       const std::string& type = "application/json") {
    return client_->Post(path.c_str(), body, type.c_str());
  }

  // Status and the errorCode of an error body ("" when the body is not one).
  static std::string ErrorCode(const httplib::Result& result) {
    json body = json::parse(result->body, nullptr, false);
    return body.is_object() && body.contains("errorCode") ? body["errorCode"].get<std::string>()
                                                          : "";
  }

  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<httplib::Client> client_;
  std::unique_ptr<lv1::Runtime::Stub> layotto_;
};

TEST_F(DaprHttpTest, StateRoutesWithEtagsBulkAndTransactions) {
  StartSidecar();
  // The SDK's paths end in a bare '?'; options is always present.
  auto saved = Post("/v1.0/state/state?",
                    R"([{"key":"k","value":{"a":1},"options":{}},{"key":"s","value":"text"}])");
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->status, 204) << saved->body;
  auto got = client_->Get("/v1.0/state/state/k?");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(json::parse(got->body), json({{"a", 1}}));
  const std::string etag = got->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  // A JSON string value is stored as JSON: readable as such through both APIs.
  EXPECT_EQ(client_->Get("/v1.0/state/state/s")->body, R"("text")");
  lv1::GetStateResponse layotto_got;
  ASSERT_TRUE(GetState(*layotto_, "k", &layotto_got).ok());
  EXPECT_EQ(layotto_got.data(), R"({"a":1})");
  // And the other way round.
  ASSERT_TRUE(SaveState(*layotto_, "from-layotto", R"([1,2])").ok());
  EXPECT_EQ(client_->Get("/v1.0/state/state/from-layotto")->body, "[1,2]");

  // A missing key is 204, not 404.
  EXPECT_EQ(client_->Get("/v1.0/state/state/absent?")->status, 204);

  // Etags: a stale one is 409, a malformed one 400; the right one wins.
  auto stale = Post("/v1.0/state/state", R"([{"key":"k","value":2,"etag":"999"}])");
  EXPECT_EQ(stale->status, 409);
  EXPECT_EQ(ErrorCode(stale), "ERR_STATE_SAVE");
  EXPECT_EQ(Post("/v1.0/state/state", R"([{"key":"k","value":2,"etag":"bad"}])")->status, 400);
  EXPECT_EQ(
      Post("/v1.0/state/state", R"([{"key":"k","value":2,"etag":")" + etag + R"("}])")->status,
      204);
  // First-write refuses an existing key.
  EXPECT_EQ(Post("/v1.0/state/state",
                 R"([{"key":"k","value":3,"options":{"concurrency":"first-write"}}])")
                ->status,
            409);
  // Request metadata travels as ?metadata.k=v: a bad TTL is refused.
  EXPECT_EQ(
      Post("/v1.0/state/state?metadata.ttlInSeconds=abc", R"([{"key":"t","value":1}])")->status,
      400);

  // Bulk get: every key answered, the absent one without data.
  auto bulk = Post("/v1.0/state/state/bulk?", R"({"keys":["k","absent"]})");
  ASSERT_EQ(bulk->status, 200);
  json items = json::parse(bulk->body);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["key"], "k");
  EXPECT_EQ(items[0]["data"], 2);
  EXPECT_FALSE(items[0]["etag"].get<std::string>().empty());
  EXPECT_EQ(items[1]["key"], "absent");
  EXPECT_FALSE(items[1].contains("data"));

  // Transactions, with the SDK's "metadata": null; all or nothing.
  const std::string current = client_->Get("/v1.0/state/state/k")->get_header_value("ETag");
  auto tx = Post("/v1.0/state/state/transaction",
                 R"({"operations":[{"operation":"upsert","request":{"key":"t1","value":"one"}},
                    {"operation":"delete","request":{"key":"k","etag":"999","options":{}}}],
                    "metadata":null})");
  EXPECT_EQ(tx->status, 409) << tx->body;
  EXPECT_EQ(client_->Get("/v1.0/state/state/t1")->status, 204);
  tx = Post("/v1.0/state/state/transaction",
            R"({"operations":[{"operation":"upsert","request":{"key":"t1","value":"one"}},
               {"operation":"delete","request":{"key":"k","etag":")" +
                current + R"("}}],"metadata":null})");
  EXPECT_EQ(tx->status, 204) << tx->body;
  EXPECT_EQ(client_->Get("/v1.0/state/state/t1")->body, R"("one")");
  EXPECT_EQ(client_->Get("/v1.0/state/state/k")->status, 204);
  EXPECT_EQ(Post("/v1.0/state/state/transaction",
                 R"({"operations":[{"operation":"merge","request":{"key":"x"}}]})")
                ->status,
            501);

  // Delete with If-Match.
  httplib::Headers wrong{{"If-Match", "999"}};
  EXPECT_EQ(client_->Delete("/v1.0/state/state/t1?", wrong)->status, 409);
  httplib::Headers right{
      {"If-Match", client_->Get("/v1.0/state/state/t1")->get_header_value("ETag")}};
  EXPECT_EQ(client_->Delete("/v1.0/state/state/t1?", right)->status, 204);
  EXPECT_EQ(client_->Get("/v1.0/state/state/t1")->status, 204);
}

TEST_F(DaprHttpTest, BadRequestsGetDaprStatusesAndErrorBodies) {
  StartSidecar();
  auto bad_json = Post("/v1.0/state/state", R"([{"key":)");
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_EQ(ErrorCode(bad_json), "ERR_MALFORMED_REQUEST");
  EXPECT_EQ(Post("/v1.0/state/state", R"({"key":"k"})")->status, 400);    // not an array
  EXPECT_EQ(Post("/v1.0/state/state", R"([{"value":1}])")->status, 400);  // no key
  auto unknown = Post("/v1.0/state/nope", R"([{"key":"k","value":1}])");
  EXPECT_EQ(unknown->status, 400);
  EXPECT_NE(unknown->body.find("nope"), std::string::npos);
  EXPECT_EQ(client_->Get("/v1.0/state/nope/k")->status, 400);
  EXPECT_EQ(Post("/v1.0/state/state", R"([{"key":"a||b","value":1}])")->status, 400);
  // A body over grpc.max_message_bytes (4 MiB by default) is 413 with an error body.
  auto big = Post("/v1.0/publish/pubsub/orders", std::string(5 * 1024 * 1024, 'x'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(ErrorCode(big), "ERR_BODY_TOO_LARGE");
  auto nowhere = client_->Get("/v1.0/nothing-here");
  EXPECT_EQ(nowhere->status, 404);
  EXPECT_FALSE(ErrorCode(nowhere).empty());
  EXPECT_EQ(Post("/v1.0-alpha1/lock/lock", "not json")->status, 400);
}

TEST_F(DaprHttpTest, PublishBulkPublishLockConfigurationMetadataAndHealth) {
  StartSidecar();
  // A subscriber (Layotto's stream) sees what HTTP publishes.
  grpc::ClientContext ctx;
  auto stream = layotto_->SubscribeTopicEvents(&ctx);
  lv1::SubscribeTopicEventsRequest initial;
  initial.mutable_initial_request()->set_pubsub_name("pubsub");
  initial.mutable_initial_request()->set_topic("orders");
  ASSERT_TRUE(stream->Write(initial));
  lv1::SubscribeTopicEventsResponse response;
  ASSERT_TRUE(stream->Read(&response));
  auto next = [&](const std::string& data, const std::string& type) {
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.event_message().data(), data);
    EXPECT_EQ(response.event_message().data_content_type(), type);
    lv1::SubscribeTopicEventsRequest ack;
    ack.mutable_event_processed()->set_id(response.event_message().id());
    ack.mutable_event_processed()->mutable_status()->set_status(lv1::TopicEventResponse::SUCCESS);
    ASSERT_TRUE(stream->Write(ack));
  };
  EXPECT_EQ(Post("/v1.0/publish/pubsub/orders?", R"({"order":1})")->status, 204);
  next(R"({"order":1})", "application/json");
  auto bulk = Post("/v1.0-alpha1/publish/bulk/pubsub/orders?",
                   R"([{"entryId":"1","event":"plain","contentType":"text/plain"},
                       {"entryId":"2","event":{"n":2},"contentType":"application/json"}])");
  EXPECT_EQ(bulk->status, 204) << bulk->body;
  next("plain", "text/plain");
  next(R"({"n":2})", "application/json");
  EXPECT_EQ(Post("/v1.0/publish/nope/orders", "{}")->status, 400);
  EXPECT_EQ(
      Post("/v1.0/publish/bulk/pubsub/orders", R"([{"entryId":"1"},{"entryId":"1"}])")->status,
      400);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // Lock and unlock: a refusal is 200 {"success":false}; unlock always writes its status number.
  auto locked = Post("/v1.0-alpha1/lock/lock",
                     R"({"resourceId":"r","lockOwner":"alice","expiryInSeconds":30})");
  ASSERT_EQ(locked->status, 200);
  EXPECT_EQ(json::parse(locked->body), json({{"success", true}}));
  locked = Post("/v1.0-alpha1/lock/lock",
                R"({"resourceId":"r","lockOwner":"bob","expiryInSeconds":30})");
  EXPECT_EQ(json::parse(locked->body), json({{"success", false}}));
  EXPECT_EQ(json::parse(
                Post("/v1.0-alpha1/unlock/lock", R"({"resourceId":"r","lockOwner":"bob"})")->body),
            json({{"status", 2}}));
  EXPECT_EQ(
      json::parse(
          Post("/v1.0-alpha1/unlock/lock", R"({"resourceId":"r","lockOwner":"alice"})")->body),
      json({{"status", 0}}));
  EXPECT_EQ(
      json::parse(
          Post("/v1.0-alpha1/unlock/lock", R"({"resourceId":"r","lockOwner":"alice"})")->body),
      json({{"status", 1}}));
  EXPECT_EQ(Post("/v1.0-alpha1/lock/nope", R"({"resourceId":"r","lockOwner":"a",
                                             "expiryInSeconds":5})")
                ->status,
            400);

  // Configuration get (items written through Layotto's API).
  lv1::SaveConfigurationRequest save;
  save.set_store_name("config");
  auto* item = save.add_items();
  item->set_key("color");
  item->set_content("red");
  google::protobuf::Empty empty;
  ASSERT_TRUE(layotto_->SaveConfiguration(CallContext().get(), save, &empty).ok());
  for (const char* path :
       {"/v1.0/configuration/config?key=color", "/v1.0-alpha1/configuration/config?key=color"}) {
    auto config = client_->Get(path);
    ASSERT_EQ(config->status, 200) << config->body;
    EXPECT_EQ(json::parse(config->body)["color"]["value"], "red");
  }
  EXPECT_EQ(client_->Get("/v1.0/configuration/nope?key=a")->status, 400);
  // Updates of an HTTP subscription go to the app: without one there is nowhere to send them.
  auto no_app = client_->Get("/v1.0/configuration/config/subscribe");
  EXPECT_EQ(no_app->status, 500);
  EXPECT_EQ(ErrorCode(no_app), "ERR_CONFIGURATION_SUBSCRIBE");

  // Metadata: the SDK's readiness probe needs a non-empty body with id and components.
  EXPECT_EQ(client_->Put("/v1.0/metadata/team", "orders", "text/plain")->status, 204);
  auto metadata = client_->Get("/v1.0/metadata");
  ASSERT_EQ(metadata->status, 200);
  json described = json::parse(metadata->body);
  EXPECT_EQ(described["id"], "http-e2e");
  EXPECT_EQ(described["extended"]["team"], "orders");
  bool found_state = false;
  for (const auto& component : described["components"]) {
    if (component["name"] == "state") {
      found_state = true;
      EXPECT_EQ(component["type"], "state.in-memory");
      EXPECT_EQ(component["version"], "v1");
    }
  }
  EXPECT_TRUE(found_state);

  EXPECT_EQ(client_->Get("/v1.0/healthz")->status, 204);
  EXPECT_EQ(client_->Get("/v1.0/healthz?appid=http-e2e")->status, 204);
  EXPECT_EQ(client_->Get("/v1.0/healthz?appid=other")->status, 500);
  EXPECT_EQ(client_->Get("/v1.0/healthz/outbound")->status, 204);
}

TEST_F(DaprHttpTest, InvokeByPathAndByHeaderThroughTheMesh) {
  HttpUpstream::Options options;
  options.name = "callee";
  auto upstream = HttpUpstream::Start(options);
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  json config = InMemoryConfig("http-e2e");
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

  auto invoked = Post("/v1.0/invoke/callee/method/orders/7?x=1", R"({"a":1})");
  ASSERT_TRUE(invoked);
  ASSERT_EQ(invoked->status, 200) << invoked->body;
  json echo = json::parse(invoked->body);
  EXPECT_EQ(echo["method"], "POST");
  EXPECT_EQ(echo["path"], "/orders/7");
  EXPECT_EQ(echo["query"], "x=1");
  EXPECT_EQ(echo["body"], R"({"a":1})");
  EXPECT_EQ(echo["headers"]["content-type"], "application/json");  // passed through
  EXPECT_EQ(echo["headers"]["dapr-caller-app-id"], "http-e2e");

  httplib::Headers by_header{{"dapr-app-id", "callee"}, {"x-custom", "yes"}};
  auto got = client_->Get("/items/3", by_header);
  ASSERT_EQ(got->status, 200) << got->body;
  echo = json::parse(got->body);
  EXPECT_EQ(echo["method"], "GET");
  EXPECT_EQ(echo["path"], "/items/3");
  EXPECT_EQ(echo["headers"]["x-custom"], "yes");

  (*upstream)->SetStatus(503);
  EXPECT_GE(client_->Get("/v1.0/invoke/callee/method/down")->status, 500);
  EXPECT_EQ(client_->Get("/v1.0/invoke/nobody/method/x")->status, 404);
}

TEST_F(DaprHttpTest, ShutdownStopsTheSidecar) {
  StartSidecar();
  EXPECT_EQ(Post("/v1.0/shutdown", "")->status, 204);
  EXPECT_EQ(sidecar_->Stop(0), 0) << sidecar_->Stderr();
  sidecar_.reset();
}

}  // namespace
}  // namespace ottava::test
