#include <gtest/gtest.h>

#include <future>

#include "common/dispatcher.h"
#include "common/encoding.h"
#include "common/stats.h"
#include "components/registry.h"
#include "runtime/api/cloud_event.h"
#include "runtime/api/common.h"
#include "runtime/api/lock_api.h"
#include "runtime/api/state_api.h"
#include "runtime/component_set.h"

namespace ottava::runtime::api {
namespace {

TEST(KeyPrefixTest, StrategiesFollowLayotto) {
  EXPECT_EQ(KeyPrefix::Create({}, "app", "store", "").Apply("k"), "app||k");
  EXPECT_EQ(KeyPrefix::Create({{"keyPrefix", "appid"}}, "app", "store", "").Apply("k"), "app||k");
  EXPECT_EQ(KeyPrefix::Create({{"keyPrefix", "name"}}, "app", "store", "").Apply("k"), "store||k");
  EXPECT_EQ(KeyPrefix::Create({{"keyPrefix", "none"}}, "app", "store", "").Apply("k"), "k");
  EXPECT_EQ(KeyPrefix::Create({{"keyPrefix", "shared"}}, "app", "store", "").Apply("k"),
            "shared||k");
  EXPECT_EQ(KeyPrefix::Create({}, "app", "store", "lock").Apply("r"), "lock||app||r");
  EXPECT_EQ(KeyPrefix::Create({}, "app", "store", "sequencer").Apply("s"), "sequencer||app||s");
  EXPECT_EQ(KeyPrefix::Create({}, "app", "store", "").Strip("app||k"), "k");
}

TEST(ValidateKeyTest, RejectsEmptyAndSeparator) {
  EXPECT_TRUE(ValidateKey("ok", "key").ok());
  EXPECT_EQ(ValidateKey("", "key").code(), absl::StatusCode::kInvalidArgument);
  absl::Status status = ValidateKey("a||b", "resource_id");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("resource_id"), std::string::npos);
  EXPECT_TRUE(ValidateKey("a|b", "key").ok());
}

TEST(ParseTtlTest, IntegersOnly) {
  EXPECT_FALSE(ParseTtl({})->has_value());
  EXPECT_EQ(**ParseTtl({{"ttlInSeconds", "30"}}), 30);
  EXPECT_FALSE(ParseTtl({{"ttlInSeconds", "-1"}})->has_value());
  EXPECT_FALSE(ParseTtl({{"ttlInSeconds", "foo"}}).ok());
  EXPECT_FALSE(ParseTtl({{"ttlInSeconds", "1.5"}}).ok());
}

TEST(CloudEventTest, JsonTextAndBinaryRoundTrip) {
  struct Case {
    std::string content_type;
    std::string data;
  };
  const std::string binary("\x00\xff\x80 raw", 7);
  for (const Case& c :
       {Case{"application/json", R"({"a":1})"}, Case{"text/plain", "hello"}, Case{"", "plain"},
        Case{"application/octet-stream", binary}, Case{"text/plain", binary}}) {
    std::string envelope = BuildEnvelope(
        EnvelopeInput{"id-1", "app", "orders", "bus", c.content_type, c.data, "00-trace-01"});
    CloudEvent event = ParseEnvelope(envelope, "fallback", "orders", "bus");
    EXPECT_EQ(event.id, "id-1");
    EXPECT_EQ(event.source, "app");
    EXPECT_EQ(event.spec_version, "1.0");
    EXPECT_EQ(event.topic, "orders");
    EXPECT_EQ(event.pubsub_name, "bus");
    EXPECT_EQ(event.data, c.data) << c.content_type;
    EXPECT_EQ(event.extensions["traceparent"], "00-trace-01");
  }
  // Binary payloads travel as data_base64.
  std::string envelope =
      BuildEnvelope(EnvelopeInput{"i", "a", "t", "p", "application/octet-stream", binary, ""});
  EXPECT_NE(envelope.find("\"data_base64\":\"" + Base64Encode(binary) + "\""), std::string::npos);
  // A payload that is not an envelope (rawPayload) is delivered as-is.
  CloudEvent raw = ParseEnvelope("not json", "msg-7", "t", "p");
  EXPECT_EQ(raw.id, "msg-7");
  EXPECT_EQ(raw.data, "not json");
}

TEST(Base64Test, RoundTripsAndRejectsGarbage) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(Base64Decode(Base64Encode(s)).value_or("<bad>"), s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(Base64Decode("abc").has_value());
  EXPECT_FALSE(Base64Decode("ab!=").has_value());
}

// The API core over real in-memory components built from a config, as the sidecar does.
class StateApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bootstrap = config::ParseBootstrap(R"({
      "app": {"id": "app"},
      "components": {
        "state": {"plain": {"type": "in-memory"},
                  "named": {"type": "in-memory", "metadata": {"keyPrefix": "name"}}},
        "lock": {"lock": {"type": "in-memory"}}
      }})");
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    bootstrap_ = std::move(*bootstrap);
    components::RegisterBuiltins(registry_);
    dispatcher_ = *Dispatcher::Create("api-test");
    dispatcher_->Start();
    auto set = ComponentSet::Create(bootstrap_, registry_, dispatcher_.get(), &stats_);
    ASSERT_TRUE(set.ok()) << set.status();
    set_ = std::move(*set);
    ASSERT_TRUE(set_->InitAll().ok());
    state_ = std::make_unique<StateApi>(*set_, "app");
    lock_ = std::make_unique<LockApi>(*set_, "app");
  }
  void TearDown() override {
    set_->ShutdownAll();
    dispatcher_->Stop();
  }

  absl::Status Save(const std::string& store, const std::string& key, const std::string& value) {
    std::promise<absl::Status> done;
    StateApi::WriteItem item;
    item.key = key;
    item.value = value;
    std::vector<StateApi::WriteItem> items;
    items.push_back(item);
    state_->Save(store, std::move(items), [&done](absl::Status s) { done.set_value(s); });
    return done.get_future().get();
  }
  absl::StatusOr<StateApi::GetResult> Get(const std::string& store, const std::string& key) {
    std::promise<absl::StatusOr<StateApi::GetResult>> done;
    state_->Get(store, key, components::state::Consistency::kUnspecified,
                [&done](absl::StatusOr<StateApi::GetResult> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }

  config::Bootstrap bootstrap_;
  components::Registry registry_;
  stats::Store stats_;
  DispatcherPtr dispatcher_;
  std::unique_ptr<ComponentSet> set_;
  std::unique_ptr<StateApi> state_;
  std::unique_ptr<LockApi> lock_;
};

TEST_F(StateApiTest, StoresAreIsolatedByTheirPrefixes) {
  ASSERT_TRUE(Save("plain", "k", "1").ok());
  ASSERT_TRUE(Save("named", "k", "2").ok());
  EXPECT_EQ(Get("plain", "k")->value, "1");
  EXPECT_EQ(Get("named", "k")->value, "2");
  EXPECT_EQ(Get("plain", "k")->key, "k");  // the client's key, not the stored one
}

TEST_F(StateApiTest, ErrorsFollowTheDesignTable) {
  EXPECT_EQ(Save("nope", "k", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Save("", "k", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Save("plain", "", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Save("plain", "a||b", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("nope", "k").status().code(), absl::StatusCode::kInvalidArgument);

  // An operation type other than upsert/delete is UNIMPLEMENTED (Dapr's code, reference §0.6).
  std::promise<absl::Status> done;
  std::vector<StateApi::Operation> ops = {{"merge", {}}};
  ops[0].item.key = "k";
  state_->Transact("plain", std::move(ops), [&done](absl::Status s) { done.set_value(s); });
  absl::Status tx = done.get_future().get();
  EXPECT_EQ(tx.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(std::string(tx.message()).find("merge"), std::string::npos);

  std::promise<absl::StatusOr<bool>> locked;
  lock_->TryLock("lock", "r", "o", 0,
                 [&locked](absl::StatusOr<bool> r) { locked.set_value(std::move(r)); });
  EXPECT_EQ(locked.get_future().get().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ComponentSetTest, NoComponentOfAKindIsFailedPrecondition) {
  auto bootstrap = config::ParseBootstrap(R"({"components": {}})");
  ASSERT_TRUE(bootstrap.ok());
  components::Registry registry;
  components::RegisterBuiltins(registry);
  stats::Store stats;
  auto set = ComponentSet::Create(*bootstrap, registry, nullptr, &stats);
  ASSERT_TRUE(set.ok());
  StateApi state(**set, "app");
  std::promise<absl::Status> done;
  state.Save("state", {}, [&done](absl::Status s) { done.set_value(s); });
  EXPECT_EQ(done.get_future().get().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ComponentSetTest, UnknownTypeNamesTheKeyAndTheKnownTypes) {
  auto bootstrap = config::ParseBootstrap(R"({"components": {"lock": {"l": {"type": "zk"}}}})");
  ASSERT_TRUE(bootstrap.ok());
  components::Registry registry;
  components::RegisterBuiltins(registry);
  stats::Store stats;
  auto set = ComponentSet::Create(*bootstrap, registry, nullptr, &stats);
  ASSERT_FALSE(set.ok());
  const std::string message(set.status().message());
  EXPECT_EQ(message.rfind("/components/lock/l/type: unknown lock type 'zk'", 0), 0u) << message;
  EXPECT_NE(message.find("in-memory"), std::string::npos) << message;
}

}  // namespace
}  // namespace ottava::runtime::api
