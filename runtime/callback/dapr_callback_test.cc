// The protocol-neutral pieces of Dapr delivery: routing rules, the HTTP app's subscription answer
// and status rules, and the gRPC form of an event.

#include <gtest/gtest.h>

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

TEST(ApiTokenTest, MetadataNamesThatCanTravel) {
  EXPECT_TRUE(IsForwardableMetadata("x-request-id"));
  EXPECT_FALSE(IsForwardableMetadata("Content-Type"));
  EXPECT_FALSE(IsForwardableMetadata("dapr-api-token"));
  EXPECT_FALSE(IsForwardableMetadata("grpc-timeout"));
  EXPECT_FALSE(IsForwardableMetadata(":path"));
}

}  // namespace
}  // namespace ottava::runtime::callback
