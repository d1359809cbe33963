#include "sdk/client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "sdk/testing/fake_runtime.h"

namespace ottava::sdk {
namespace {

using std::chrono_literals::operator""ms;
using testing::FakeRuntime;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = fake_.Start();
    ClientOptions options;
    options.timeout = 2000ms;
    auto client = Client::Connect(address_, options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  FakeRuntime fake_;
  std::string address_;
  ClientPtr client_;
};

TEST(ClientConnectTest, RejectsEmptyAddressAndNonPositiveTimeout) {
  EXPECT_EQ(Client::Connect("").status().code(), absl::StatusCode::kInvalidArgument);
  ClientOptions options;
  options.timeout = 0ms;
  EXPECT_EQ(Client::Connect("127.0.0.1:1", options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClientConnectTest, UnreachableSidecarIsUnavailable) {
  // Port 1 on loopback is never served in a test environment.
  auto client = Client::Connect("127.0.0.1:1", {});
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->SayHello("", "x").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ClientTest, SayHello) {
  auto hello = client_->SayHello("helloworld", "alice");
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_EQ(*hello, "greeting, alice");
  EXPECT_EQ(fake_.last_hello().service_name(), "helloworld");
}

TEST_F(ClientTest, SaveThenGetReturnsValueAndEtag) {
  ASSERT_TRUE(client_->SaveState("state", {.key = "k", .value = std::string("v\0x", 3)}).ok());
  auto entry = client_->GetState("state", "k", Consistency::kStrong);
  ASSERT_TRUE(entry.ok()) << entry.status();
  ASSERT_TRUE(entry->has_value());
  EXPECT_EQ((*entry)->key, "k");
  EXPECT_EQ((*entry)->value, std::string("v\0x", 3));
  EXPECT_EQ((*entry)->etag, "1");
  EXPECT_EQ(fake_.last_get_state().consistency(),
            spec::proto::runtime::v1::StateOptions::CONSISTENCY_STRONG);
}

TEST_F(ClientTest, AbsentKeyIsNullopt) {
  auto entry = client_->GetState("state", "missing");
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_FALSE(entry->has_value());
}

TEST_F(ClientTest, SaveSendsEtagConcurrencyTtlAndMetadata) {
  ASSERT_TRUE(client_->SaveState("state", {.key = "k", .value = "1"}).ok());
  StateWrite write;
  write.key = "k";
  write.value = "2";
  write.etag = "1";
  write.concurrency = Concurrency::kFirstWrite;
  write.ttl_seconds = 60;
  write.metadata = {{"contentType", "text/plain"}};
  ASSERT_TRUE(client_->SaveState("state", write).ok());

  const auto sent = fake_.last_save_state();
  ASSERT_EQ(sent.states_size(), 1);
  EXPECT_EQ(sent.states(0).etag().value(), "1");
  EXPECT_EQ(sent.states(0).options().concurrency(),
            spec::proto::runtime::v1::StateOptions::CONCURRENCY_FIRST_WRITE);
  EXPECT_EQ(sent.states(0).metadata().at("ttlInSeconds"), "60");
  EXPECT_EQ(sent.states(0).metadata().at("contentType"), "text/plain");

  auto entry = client_->GetState("state", "k");
  ASSERT_TRUE(entry.ok() && entry->has_value());
  EXPECT_EQ((*entry)->metadata.at("ttlExpireTime"), "2030-01-01T00:00:00Z");
}

TEST_F(ClientTest, EtagMismatchAndFirstWriteConflictAreAborted) {
  ASSERT_TRUE(client_->SaveState("state", {.key = "k", .value = "1"}).ok());
  auto stale = client_->SaveState("state", {.key = "k", .value = "2", .etag = "7"});
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_NE(stale.message().find("etag mismatch"), std::string_view::npos);
  auto conflict = client_->SaveState(
      "state", {.key = "k", .value = "2", .concurrency = Concurrency::kFirstWrite});
  EXPECT_EQ(conflict.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(client_->DeleteState("state", {.key = "k", .etag = "9"}).code(),
            absl::StatusCode::kAborted);
}

TEST_F(ClientTest, DeleteWithMatchingEtag) {
  ASSERT_TRUE(client_->SaveState("state", {.key = "k", .value = "1"}).ok());
  ASSERT_TRUE(client_->DeleteState("state", {.key = "k", .etag = "1"}).ok());
  EXPECT_EQ(fake_.last_delete_state().etag().value(), "1");
  auto entry = client_->GetState("state", "k");
  ASSERT_TRUE(entry.ok());
  EXPECT_FALSE(entry->has_value());
}

TEST_F(ClientTest, UnknownStoreIsInvalidArgumentWithTheSidecarsMessage) {
  auto entry = client_->GetState("nope", "k");
  EXPECT_EQ(entry.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(entry.status().message(), "state store 'nope' is not configured");
}

TEST_F(ClientTest, BulkStateMarksFoundMissingAndErrors) {
  ASSERT_TRUE(
      client_->SaveStates("state", {{.key = "a", .value = "1"}, {.key = "b", .value = "2"}}).ok());
  auto entries = client_->GetBulkState("state", {"a", "missing", "bad||key"}, 4);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_TRUE((*entries)[0].found);
  EXPECT_EQ((*entries)[0].value, "1");
  EXPECT_EQ((*entries)[0].etag, "1");
  EXPECT_FALSE((*entries)[1].found);
  EXPECT_TRUE((*entries)[1].error.empty());
  EXPECT_FALSE((*entries)[2].found);
  EXPECT_FALSE((*entries)[2].error.empty());
  EXPECT_EQ(fake_.last_get_bulk_state().parallelism(), 4);
}

TEST_F(ClientTest, TransactionSendsLayottoOperationTypes) {
  ASSERT_TRUE(client_->SaveState("state", {.key = "gone", .value = "x"}).ok());
  ASSERT_TRUE(
      client_
          ->ExecuteStateTransaction("state", {StateOperation::Upsert({.key = "a", .value = "1"}),
                                              StateOperation::Delete("gone", "1")})
          .ok());
  const auto sent = fake_.last_transaction();
  EXPECT_EQ(sent.storename(), "state");
  ASSERT_EQ(sent.operations_size(), 2);
  EXPECT_EQ(sent.operations(0).operationtype(), "upsert");
  EXPECT_EQ(sent.operations(1).operationtype(), "delete");
  EXPECT_EQ(sent.operations(1).request().etag().value(), "1");
  EXPECT_TRUE(client_->GetState("state", "a")->has_value());
  EXPECT_FALSE(client_->GetState("state", "gone")->has_value());
}

TEST_F(ClientTest, LockLifecycle) {
  EXPECT_EQ(client_->TryLock("lock", "r", "alice", 10).value(), true);
  EXPECT_EQ(fake_.last_try_lock().expire(), 10);
  EXPECT_EQ(client_->TryLock("lock", "r", "bob", 10).value(), false);
  EXPECT_EQ(client_->LockKeepAlive("lock", "r", "alice", 20).value(), LockStatus::kSuccess);
  EXPECT_EQ(client_->Unlock("lock", "r", "bob").value(), LockStatus::kLockBelongsToOthers);
  EXPECT_EQ(client_->Unlock("lock", "r", "alice").value(), LockStatus::kSuccess);
  EXPECT_EQ(client_->Unlock("lock", "r", "alice").value(), LockStatus::kLockDoesNotExist);
  EXPECT_EQ(LockStatusName(LockStatus::kLockDoesNotExist), "LOCK_UNEXIST");
}

TEST_F(ClientTest, NextIdIncreasesAndSendsIncrement) {
  EXPECT_EQ(client_->GetNextId("sequencer", "orders").value(), 1);
  EXPECT_EQ(client_->GetNextId("sequencer", "orders", IdIncrement::kStrong).value(), 2);
  EXPECT_EQ(fake_.last_get_next_id().options().increment(),
            spec::proto::runtime::v1::SequencerOptions::STRONG);
}

TEST_F(ClientTest, DeadlineExceeded) {
  ClientOptions options;
  options.timeout = 100ms;
  auto client = Client::Connect(address_, options);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->GetState("state", "hang").status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, ConfigurationGetSaveDelete) {
  ConfigurationItem item{.key = "feature", .content = "on", .group = "web", .tags = {{"o", "a"}}};
  ASSERT_TRUE(client_->SaveConfiguration("config", {item}).ok());
  EXPECT_EQ(fake_.last_save_configuration().items(0).tags().at("o"), "a");
  auto items = client_->GetConfiguration("config", {.keys = {"feature", "other"}, .group = "web"});
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].content, "on");
  EXPECT_EQ((*items)[0].group, "web");
  EXPECT_EQ(fake_.last_get_configuration().group(), "web");
  ASSERT_TRUE(client_->DeleteConfiguration("config", {.keys = {"feature"}}).ok());
  EXPECT_TRUE(client_->GetConfiguration("config", {.keys = {"feature"}})->empty());
}

TEST_F(ClientTest, ConfigurationWatchReceivesChangesAndDeletions) {
  auto watch = client_->SubscribeConfiguration("config", {.keys = {"feature"}});
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(fake_.WaitForConfigWatchers(1, absl::Seconds(5)));
  ASSERT_TRUE(client_->SaveConfiguration("config", {{.key = "other", .content = "x"}}).ok());
  ASSERT_TRUE(client_->SaveConfiguration("config", {{.key = "feature", .content = "on"}}).ok());
  ASSERT_TRUE(client_->DeleteConfiguration("config", {.keys = {"feature"}}).ok());

  auto update = (*watch)->Read();
  ASSERT_TRUE(update.ok() && update->has_value()) << update.status();
  EXPECT_EQ((*update)->store_name, "config");
  ASSERT_EQ((*update)->items.size(), 1u);
  EXPECT_EQ((*update)->items[0].key, "feature");
  EXPECT_EQ((*update)->items[0].content, "on");
  update = (*watch)->Read();
  ASSERT_TRUE(update.ok() && update->has_value()) << update.status();
  EXPECT_EQ((*update)->items[0].content, "");
}

TEST_F(ClientTest, CancelEndsABlockedWatchCleanly) {
  auto watch = client_->SubscribeConfiguration("config", {.keys = {"feature"}});
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(fake_.WaitForConfigWatchers(1, absl::Seconds(5)));
  std::thread canceller([&] { (*watch)->Cancel(); });
  auto update = (*watch)->Read();
  canceller.join();
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_FALSE(update->has_value());
}

TEST_F(ClientTest, WatchEndedBySidecarIsACleanEnd) {
  auto watch = client_->SubscribeConfiguration("config", {});
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(fake_.WaitForConfigWatchers(1, absl::Seconds(5)));
  fake_.EndStreams();
  auto update = (*watch)->Read();
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_FALSE(update->has_value());
  // Every later Read repeats the end.
  EXPECT_FALSE((*watch)->Read()->has_value());
}

TEST_F(ClientTest, WatchWithMaxDurationEndsWithDeadlineExceeded) {
  auto watch = client_->SubscribeConfiguration("config", {}, {.max_duration = 100ms});
  ASSERT_TRUE(watch.ok());
  EXPECT_EQ((*watch)->Read().status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, PublishSendsDataContentTypeAndMetadata) {
  ASSERT_TRUE(
      client_->PublishEvent("pubsub", "orders", "{}", "application/json", {{"key", "c7"}}).ok());
  const auto sent = fake_.last_publish();
  EXPECT_EQ(sent.topic(), "orders");
  EXPECT_EQ(sent.data(), "{}");
  EXPECT_EQ(sent.data_content_type(), "application/json");
  EXPECT_EQ(sent.metadata().at("key"), "c7");
}

TEST_F(ClientTest, SubscribeReceivesEventsAndAcksReachTheSidecar) {
  fake_.AddEvent("orders", "e1", "first");
  auto subscription = client_->SubscribeTopicEvents(
      {.pubsub_name = "pubsub", .topic = "orders", .dead_letter_topic = "orders-dlq"});
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  EXPECT_EQ(fake_.last_subscription().dead_letter_topic(), "orders-dlq");
  ASSERT_TRUE(client_->PublishEvent("pubsub", "orders", "second", "text/plain").ok());

  auto first = (*subscription)->Read();
  ASSERT_TRUE(first.ok() && first->has_value()) << first.status();
  EXPECT_EQ((*first)->id, "e1");
  EXPECT_EQ((*first)->data, "first");
  EXPECT_EQ((*first)->topic, "orders");
  ASSERT_TRUE((*subscription)->Ack("e1", EventStatus::kSuccess).ok());
  auto second = (*subscription)->Read();
  ASSERT_TRUE(second.ok() && second->has_value()) << second.status();
  EXPECT_EQ((*second)->data, "second");
  ASSERT_TRUE((*subscription)->Ack((*second)->id, EventStatus::kRetry).ok());

  EXPECT_TRUE((*subscription)->Close().ok());
  const auto acks = fake_.acks();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0], std::make_pair(std::string("e1"), 0));
  EXPECT_EQ(acks[1].second, 1);
  EXPECT_EQ((*subscription)->Ack("late", EventStatus::kSuccess).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, UnconfirmedSubscriptionTimesOut) {
  ClientOptions options;
  options.timeout = 200ms;
  auto client = Client::Connect(address_, options);
  ASSERT_TRUE(client.ok());
  auto subscription = (*client)->SubscribeTopicEvents({.pubsub_name = "pubsub", .topic = "silent"});
  EXPECT_EQ(subscription.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, SubscriptionToUnknownPubSubFails) {
  auto subscription = client_->SubscribeTopicEvents({.pubsub_name = "nope", .topic = "t"});
  EXPECT_EQ(subscription.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ottava::sdk
