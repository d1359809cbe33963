// The protocol-neutral pieces of Dapr delivery: routing rules, the HTTP app's subscription answer
// and status rules, the gRPC form of an event, and bulk delivery in both protocols (the bulk
// forms, per-entry statuses, and the OnBulkTopicEventAlpha1 fallback against a real gRPC app).

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>

#include "runtime/callback/dapr_grpc_channel.h"
#include "runtime/callback/http_app_channel.h"
#include "runtime/callback/route_match.h"

namespace ottava::runtime::callback {
namespace {

api::CloudEvent OrderEvent() {
  api::CloudEvent event;
  event.id = "e1";
  event.source = "checkout";
  event.type = "order.placed";
  event.spec_version = "1.0";
  event.data_content_type = "application/json";
  event.data = R"({"amount": 120, "customer": {"tier": "gold"}, "note": "rush"})";
  event.topic = "orders";
  event.pubsub_name = "pubsub";
  event.extensions["region"] = "eu-west";
  return event;
}

bool Match(const char* expression) {
  absl::StatusOr<RouteMatcher> matcher = RouteMatcher::Parse(expression);
  EXPECT_TRUE(matcher.ok()) << expression << ": " << matcher.status();
  return matcher.ok() && matcher->Matches(OrderEvent());
}

TEST(RouteMatcherTest, EvaluatesTheRulesAppsWrite) {
  EXPECT_TRUE(Match(R"(event.type == "order.placed")"));
  EXPECT_TRUE(Match("event.type == 'order.placed'"));
  EXPECT_FALSE(Match(R"(event.type == "order.cancelled")"));
  EXPECT_TRUE(Match(R"(event.type != "order.cancelled")"));
  EXPECT_TRUE(Match("event.data.amount > 100"));
  EXPECT_FALSE(Match("event.data.amount >= 121"));
  EXPECT_TRUE(Match(R"(event.data.customer.tier == "gold" && event.source == "checkout")"));
  EXPECT_TRUE(Match(R"(event.data.amount < 10 || event.region == "eu-west")"));
  EXPECT_TRUE(Match(R"(!(event.topic == "payments"))"));
  EXPECT_TRUE(Match(R"(event.type.startsWith("order."))"));
  EXPECT_TRUE(Match(R"(event.region.endsWith("-west"))"));
  EXPECT_FALSE(Match(R"(event.data.note.contains("slow"))"));
}

TEST(RouteMatcherTest, AnAbsentFieldDoesNotMatch) {
  EXPECT_FALSE(Match(R"(event.data.missing == "x")"));
  EXPECT_FALSE(Match(R"(event.nosuch != "x")"));
  // CEL: false && error is false, true || error is true.
  EXPECT_TRUE(Match(R"(event.type == "order.placed" || event.data.missing == 1)"));
  EXPECT_FALSE(Match(R"(event.data.amount > "10")"));  // a number against a string
}

TEST(RouteMatcherTest, RefusesWhatItCannotRead) {
  for (const char* bad :
       {"", "event.type ==", R"(size(event.data) > 1)", R"(event.type == "x)", "event.type == x",
        R"(event.type.matches("o.*"))", "(event.type", "event.type @ 1"}) {
    absl::StatusOr<RouteMatcher> matcher = RouteMatcher::Parse(bad);
    EXPECT_FALSE(matcher.ok()) << bad;
    if (!matcher.ok()) {
      EXPECT_EQ(matcher.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(std::string(matcher.status().message()).find("routing rule"), std::string::npos);
    }
  }
}

TEST(HttpAppTest, ReadsBothSubscribeShapes) {
  auto subscriptions = ParseDaprSubscribeAnswer(R"([
    {"pubsubname": "pubsub", "topic": "orders", "route": "/pubsub--orders--default"},
    {"pubsubname": "pubsub", "topic": "routed", "deadLetterTopic": "dlq",
     "metadata": {"maxRetries": 3, "rawPayload": "true"},
     "routes": {"rules": [{"match": "event.type == \"a\"", "path": "a"}], "default": "/other"}},
    {"pubsubname": "pubsub", "topic": "bare"}])");
  ASSERT_TRUE(subscriptions.ok()) << subscriptions.status();
  ASSERT_EQ(subscriptions->size(), 3u);
  EXPECT_EQ((*subscriptions)[0].default_route, "/pubsub--orders--default");
  EXPECT_TRUE((*subscriptions)[0].rules.empty());
  const AppSubscription& routed = (*subscriptions)[1];
  EXPECT_EQ(routed.dead_letter_topic, "dlq");
  EXPECT_EQ(routed.metadata.at("maxRetries"), "3");
  EXPECT_EQ(routed.metadata.at("rawPayload"), "true");
  ASSERT_EQ(routed.rules.size(), 1u);
  EXPECT_EQ(routed.rules[0].path, "/a");
  EXPECT_EQ(routed.default_route, "/other");
  EXPECT_EQ((*subscriptions)[2].default_route, "/bare");  // no route: the topic
}

TEST(HttpAppTest, RefusesBadSubscribeAnswers) {
  for (const char* bad : {"", "{}", "[1]", R"([{"topic": "t"}])",
                          R"([{"pubsubname": "p", "topic": "t", "metadata": []}])",
                          R"([{"pubsubname": "p", "topic": "t", "routes": {"rules": {}}}])"}) {
    EXPECT_FALSE(ParseDaprSubscribeAnswer(bad).ok()) << bad;
  }
}

TEST(HttpAppTest, StatusRules) {
  EXPECT_EQ(OutcomeOfHttp(200, ""), Outcome::kSuccess);
  EXPECT_EQ(OutcomeOfHttp(204, ""), Outcome::kSuccess);
  EXPECT_EQ(OutcomeOfHttp(200, "not json"), Outcome::kSuccess);
  EXPECT_EQ(OutcomeOfHttp(200, R"({"status": "SUCCESS"})"), Outcome::kSuccess);
  EXPECT_EQ(OutcomeOfHttp(200, R"({"status": "RETRY"})"), Outcome::kRetry);
  EXPECT_EQ(OutcomeOfHttp(200, R"({"status": "drop"})"), Outcome::kDrop);
  EXPECT_EQ(OutcomeOfHttp(200, R"({"status": "MAYBE"})"), Outcome::kRetry);
  EXPECT_EQ(OutcomeOfHttp(404, ""), Outcome::kDrop);
  EXPECT_EQ(OutcomeOfHttp(500, R"({"status": "SUCCESS"})"), Outcome::kRetry);
  EXPECT_EQ(OutcomeOfHttp(400, ""), Outcome::kRetry);
}

TEST(DaprGrpcTest, SplitsTheCloudEventApart) {
  Event event;
  event.cloud_event = OrderEvent();
  event.path = "/pubsub--orders--default";
  dapr::proto::runtime::v1::TopicEventRequest request;
  ToDaprTopicEvent(event, &request);
  EXPECT_EQ(request.id(), "e1");
  EXPECT_EQ(request.type(), "order.placed");
  EXPECT_EQ(request.spec_version(), "1.0");
  EXPECT_EQ(request.data(), event.cloud_event.data);  // the payload, not the envelope
  EXPECT_EQ(request.topic(), "orders");
  EXPECT_EQ(request.pubsub_name(), "pubsub");
  EXPECT_EQ(request.path(), "/pubsub--orders--default");
  EXPECT_EQ(request.extensions().fields().at("region").string_value(), "eu-west");
}

TEST(DaprGrpcTest, ReadsSubscriptions) {
  dapr::proto::runtime::v1::TopicSubscription in;
  in.set_pubsub_name("pubsub");
  in.set_topic("orders");
  in.set_dead_letter_topic("orders-dlq");
  (*in.mutable_metadata())["maxRetries"] = "2";
  auto* rule = in.mutable_routes()->add_rules();
  rule->set_match("event.type == \"x\"");
  rule->set_path("/x");
  in.mutable_routes()->set_default_("/d");
  AppSubscription out = FromDaprSubscription(in);
  EXPECT_EQ(out.dead_letter_topic, "orders-dlq");
  EXPECT_EQ(out.metadata.at("maxRetries"), "2");
  ASSERT_EQ(out.rules.size(), 1u);
  EXPECT_EQ(out.rules[0].path, "/x");
  EXPECT_EQ(out.default_route, "/d");
}

namespace v1 = dapr::proto::runtime::v1;

// A batch of `ids.size()` events; the raw one (if named) carries no envelope.
std::shared_ptr<EventBatch> Batch(const std::vector<std::string>& ids,
                                  const std::string& raw = "") {
  auto batch = std::make_shared<EventBatch>();
  batch->id = "batch-1";
  batch->pubsub_name = "pubsub";
  batch->topic = "orders";
  batch->path = "/pubsub--orders--default";
  for (const std::string& id : ids) {
    auto event = std::make_shared<Event>();
    event->cloud_event = OrderEvent();
    event->cloud_event.id = id;
    event->cloud_event.raw = id == raw;
    if (event->cloud_event.raw) {
      event->cloud_event.data = "raw bytes";
    }
    event->metadata["partition"] = "0";
    event->path = batch->path;
    batch->entries.push_back(BulkEntry{"entry-" + id, event});
  }
  return batch;
}

TEST(DaprBulkTest, GrpcRequestSplitsEachCloudEvent) {
  v1::TopicEventBulkRequest request;
  ToDaprBulkRequest(*Batch({"e1", "e2"}, "e2"), &request);
  EXPECT_EQ(request.id(), "batch-1");
  EXPECT_EQ(request.type(), "com.dapr.event.sent.bulk");
  EXPECT_EQ(request.topic(), "orders");
  EXPECT_EQ(request.pubsub_name(), "pubsub");
  EXPECT_EQ(request.path(), "/pubsub--orders--default");
  ASSERT_EQ(request.entries_size(), 2);
  const auto& ce = request.entries(0);
  EXPECT_EQ(ce.entry_id(), "entry-e1");
  EXPECT_EQ(ce.content_type(), "application/cloudevents+json");
  ASSERT_TRUE(ce.has_cloud_event());
  EXPECT_EQ(ce.cloud_event().id(), "e1");
  EXPECT_EQ(ce.cloud_event().type(), "order.placed");
  EXPECT_EQ(ce.cloud_event().data(), OrderEvent().data);  // the payload, not the envelope
  EXPECT_EQ(ce.cloud_event().extensions().fields().at("region").string_value(), "eu-west");
  EXPECT_EQ(ce.metadata().at("partition"), "0");
  const auto& raw = request.entries(1);
  EXPECT_EQ(raw.event_case(), v1::TopicEventBulkRequestEntry::kBytes);
  EXPECT_EQ(raw.bytes(), "raw bytes");
  EXPECT_EQ(raw.content_type(), "application/octet-stream");
}

TEST(DaprBulkTest, GrpcStatusesPerEntry) {
  auto batch = Batch({"a", "b", "c", "d"});
  v1::TopicEventBulkResponse response;
  auto add = [&response](const std::string& id, int status) {
    auto* entry = response.add_statuses();
    entry->set_entry_id(id);
    entry->set_status(static_cast<v1::TopicEventResponse::TopicEventResponseStatus>(status));
  };
  add("entry-d", v1::TopicEventResponse::SUCCESS);
  add("entry-b", v1::TopicEventResponse::DROP);
  add("entry-a", 9);  // unknown: retry
  // entry-c left out: retry
  EXPECT_EQ(
      DaprBulkOutcomes(*batch, response),
      (std::vector<Outcome>{Outcome::kRetry, Outcome::kDrop, Outcome::kRetry, Outcome::kSuccess}));
}

TEST(DaprBulkTest, HttpBodyIsDaprsBulkEnvelope) {
  auto body = nlohmann::json::parse(DaprBulkBody(*Batch({"e1", "e2"}, "e2")));
  EXPECT_EQ(body["id"], "batch-1");
  EXPECT_EQ(body["type"], "com.dapr.event.sent.bulk");
  EXPECT_EQ(body["topic"], "orders");
  EXPECT_EQ(body["pubsubname"], "pubsub");
  ASSERT_EQ(body["entries"].size(), 2u);
  const auto& ce = body["entries"][0];
  EXPECT_EQ(ce["entryId"], "entry-e1");
  EXPECT_EQ(ce["contentType"], "application/cloudevents+json");
  EXPECT_EQ(ce["event"]["id"], "e1");
  EXPECT_EQ(ce["event"]["data"]["amount"], 120);  // JSON data stays JSON, as the SDK reads it
  EXPECT_EQ(ce["metadata"]["partition"], "0");
  const auto& raw = body["entries"][1];
  EXPECT_EQ(raw["contentType"], "application/octet-stream");
  EXPECT_EQ(raw["event"], "cmF3IGJ5dGVz");  // base64("raw bytes")
}

TEST(DaprBulkTest, HttpStatusRules) {
  auto batch = Batch({"a", "b", "c"});
  using O = Outcome;
  EXPECT_EQ(OutcomesOfHttpBulk(*batch, 200, R"({"statuses": [
              {"entryId": "entry-a", "status": "SUCCESS"}, {"entryId": "entry-c", "status": "drop"}]})"),
            (std::vector<O>{O::kSuccess, O::kRetry, O::kDrop}));
  EXPECT_EQ(OutcomesOfHttpBulk(*batch, 200, R"({"statuses": [{"entryId": "entry-b",
              "status": "RETRY"}, {"entryId": "entry-a", "status": "what"}]})"),
            (std::vector<O>{O::kRetry, O::kRetry, O::kRetry}));
  // Unlike a single event, an answer without statuses cannot ack anything.
  EXPECT_EQ(OutcomesOfHttpBulk(*batch, 200, ""), (std::vector<O>(3, O::kRetry)));
  EXPECT_EQ(OutcomesOfHttpBulk(*batch, 200, R"({"status": "SUCCESS"})"),
            (std::vector<O>(3, O::kRetry)));
  EXPECT_EQ(OutcomesOfHttpBulk(*batch, 404, ""), (std::vector<O>(3, O::kDrop)));
  EXPECT_EQ(OutcomesOfHttpBulk(*batch, 500, R"({"statuses": []})"), (std::vector<O>(3, O::kRetry)));
}

TEST(DaprBulkTest, SubscriptionsDeclareBulk) {
  auto subscriptions = ParseDaprSubscribeAnswer(R"([
    {"pubsubname": "p", "topic": "t", "route": "/t",
     "bulkSubscribe": {"enabled": true, "maxMessagesCount": 50, "maxAwaitDurationMs": 40}},
    {"pubsubname": "p", "topic": "u", "bulkSubscribe": {"enabled": true}},
    {"pubsubname": "p", "topic": "v"}])");
  ASSERT_TRUE(subscriptions.ok()) << subscriptions.status();
  const BulkSubscribe& full = (*subscriptions)[0].bulk;
  EXPECT_TRUE(full.enabled);
  EXPECT_EQ(full.MaxMessages(), 50);
  EXPECT_EQ(full.MaxAwaitMs(), 40);
  EXPECT_TRUE((*subscriptions)[1].bulk.enabled);
  EXPECT_EQ((*subscriptions)[1].bulk.MaxMessages(), 100);  // Dapr's defaults
  EXPECT_EQ((*subscriptions)[1].bulk.MaxAwaitMs(), 1000);
  EXPECT_FALSE((*subscriptions)[2].bulk.enabled);
  for (const char* bad :
       {R"([{"pubsubname": "p", "topic": "t", "bulkSubscribe": {"enabled": "yes"}}])",
        R"([{"pubsubname": "p", "topic": "t", "bulkSubscribe": {"maxMessagesCount": 1.5}}])",
        R"([{"pubsubname": "p", "topic": "t", "bulkSubscribe": []}])"}) {
    auto refused = ParseDaprSubscribeAnswer(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find("bulkSubscribe"), std::string_view::npos);
  }

  v1::TopicSubscription in;
  in.set_pubsub_name("p");
  in.set_topic("t");
  in.mutable_bulk_subscribe()->set_enabled(true);
  in.mutable_bulk_subscribe()->set_max_messages_count(7);
  AppSubscription out = FromDaprSubscription(in);
  EXPECT_TRUE(out.bulk.enabled);
  EXPECT_EQ(out.bulk.MaxMessages(), 7);
  EXPECT_EQ(out.bulk.MaxAwaitMs(), 1000);

  BulkSubscribe too_many{true, 10001, 0};
  EXPECT_FALSE(too_many.Validate("maxMessagesCount", "maxAwaitDurationMs").ok());
  BulkSubscribe negative{true, 0, -1};
  absl::Status status = negative.Validate("maxMessagesCount", "maxAwaitDurationMs");
  EXPECT_NE(status.message().find("maxAwaitDurationMs"), std::string_view::npos) << status;
}

// A Dapr gRPC app with the bulk methods it is told to have. Statuses: entry 0 SUCCESS, 1 RETRY,
// 2 DROP, the rest left out.
class BulkApp {
 public:
  BulkApp(bool stable, bool alpha) : stable_service_(this, stable), alpha_service_(this, alpha) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&stable_service_);
    builder.RegisterService(&alpha_service_);
    server_ = builder.BuildAndStart();
  }
  ~BulkApp() { server_->Shutdown(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> stable_calls{0};
  std::atomic<int> alpha_calls{0};
  std::atomic<int> last_entries{0};

 private:
  static grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                          const v1::TopicEventBulkRequest* request,
                                          v1::TopicEventBulkResponse* response,
                                          bool implemented) {
    auto* reactor = context->DefaultReactor();
    if (!implemented) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not here"));
      return reactor;
    }
    const v1::TopicEventResponse::TopicEventResponseStatus statuses[] = {
        v1::TopicEventResponse::SUCCESS, v1::TopicEventResponse::RETRY,
        v1::TopicEventResponse::DROP};
    for (int i = 0; i < request->entries_size() && i < 3; ++i) {
      auto* entry = response->add_statuses();
      entry->set_entry_id(request->entries(i).entry_id());
      entry->set_status(statuses[i]);
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  class Stable : public v1::AppCallback::CallbackService {
   public:
    Stable(BulkApp* app, bool implemented) : app_(app), implemented_(implemented) {}
    grpc::ServerUnaryReactor* OnBulkTopicEvent(grpc::CallbackServerContext* context,
                                               const v1::TopicEventBulkRequest* request,
                                               v1::TopicEventBulkResponse* response) override {
      ++app_->stable_calls;
      app_->last_entries = request->entries_size();
      return Answer(context, request, response, implemented_);
    }

   private:
    BulkApp* app_;
    bool implemented_;
  };
  class Alpha : public v1::AppCallbackAlpha::CallbackService {
   public:
    Alpha(BulkApp* app, bool implemented) : app_(app), implemented_(implemented) {}
    grpc::ServerUnaryReactor* OnBulkTopicEventAlpha1(
        grpc::CallbackServerContext* context,
        const v1::TopicEventBulkRequest* request,
        v1::TopicEventBulkResponse* response) override {
      ++app_->alpha_calls;
      app_->last_entries = request->entries_size();
      return Answer(context, request, response, implemented_);
    }

   private:
    BulkApp* app_;
    bool implemented_;
  };

  int port_ = 0;
  Stable stable_service_;
  Alpha alpha_service_;
  std::unique_ptr<grpc::Server> server_;
};

class DaprGrpcBulkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dispatcher_ = *Dispatcher::Create("test");
    dispatcher_->Start();
  }
  void TearDown() override { dispatcher_->Stop(); }

  std::vector<Outcome> Deliver(DaprGrpcChannel& channel, std::shared_ptr<EventBatch> batch) {
    std::promise<std::vector<Outcome>> answered;
    channel.DeliverBulk(std::move(batch), [&answered](std::vector<Outcome> outcomes) {
      answered.set_value(std::move(outcomes));
    });
    auto future = answered.get_future();
    EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return future.get();
  }

  DispatcherPtr dispatcher_;
};

const std::vector<Outcome> kAnswered = {Outcome::kSuccess, Outcome::kRetry, Outcome::kDrop,
                                        Outcome::kRetry};

TEST_F(DaprGrpcBulkTest, FallsBackToAlpha1OnUnimplementedAndStaysThere) {
  BulkApp app(/*stable=*/false, /*alpha=*/true);
  auto channel =
      DaprGrpcChannel::Create(app.address(), std::chrono::seconds(5), "", dispatcher_.get());
  EXPECT_EQ(Deliver(*channel, Batch({"a", "b", "c", "d"})), kAnswered);
  EXPECT_EQ(app.stable_calls, 1);
  EXPECT_EQ(app.alpha_calls, 1);
  EXPECT_EQ(app.last_entries, 4);
  EXPECT_EQ(Deliver(*channel, Batch({"a", "b", "c"})),
            (std::vector<Outcome>{Outcome::kSuccess, Outcome::kRetry, Outcome::kDrop}));
  EXPECT_EQ(app.stable_calls, 1);  // not asked again
  EXPECT_EQ(app.alpha_calls, 2);
}

TEST_F(DaprGrpcBulkTest, UsesTheStableMethodWhenTheAppHasIt) {
  BulkApp app(/*stable=*/true, /*alpha=*/true);
  auto channel =
      DaprGrpcChannel::Create(app.address(), std::chrono::seconds(5), "", dispatcher_.get());
  EXPECT_EQ(Deliver(*channel, Batch({"a", "b", "c", "d"})), kAnswered);
  EXPECT_EQ(app.stable_calls, 1);
  EXPECT_EQ(app.alpha_calls, 0);
}

TEST_F(DaprGrpcBulkTest, AnAppWithoutEitherMethodDropsAndAnAbsentAppRetries) {
  BulkApp app(/*stable=*/false, /*alpha=*/false);
  auto channel =
      DaprGrpcChannel::Create(app.address(), std::chrono::seconds(5), "", dispatcher_.get());
  EXPECT_EQ(Deliver(*channel, Batch({"a", "b"})), (std::vector<Outcome>(2, Outcome::kDrop)));
  EXPECT_EQ(app.alpha_calls, 1);

  // Nothing listens there: the call fails as a whole, every entry retries.
  auto absent =
      DaprGrpcChannel::Create("127.0.0.1:1", std::chrono::milliseconds(300), "", dispatcher_.get());
  EXPECT_EQ(Deliver(*absent, Batch({"a", "b"})), (std::vector<Outcome>(2, Outcome::kRetry)));
}

TEST(ApiTokenTest, MetadataNamesThatCanTravel) {
  EXPECT_TRUE(IsForwardableMetadata("x-request-id"));
  EXPECT_FALSE(IsForwardableMetadata("Content-Type"));
  EXPECT_FALSE(IsForwardableMetadata("dapr-api-token"));
  EXPECT_FALSE(IsForwardableMetadata("grpc-timeout"));
  EXPECT_FALSE(IsForwardableMetadata(":path"));
}

}  // namespace
}  // namespace ottava::runtime::callback
