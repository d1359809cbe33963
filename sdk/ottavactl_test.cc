// Tests of ottavactl: the pure parsing and rendering in cli_format.h, then whole command lines run
// in-process (RunCli) against the fake Runtime service and a fake actuator.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sdk/cli.h"
#include "sdk/cli_format.h"
#include "sdk/testing/fake_runtime.h"

namespace ottava::sdk::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// --- Parsing ---------------------------------------------------------------------------------

TEST(ParseKeyValueTest, SplitsAtTheFirstEquals) {
  auto parsed = ParseKeyValue("a=b=c");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->first, "a");
  EXPECT_EQ(parsed->second, "b=c");
  EXPECT_EQ(ParseKeyValue("empty=")->second, "");
  EXPECT_FALSE(ParseKeyValue("novalue").ok());
  EXPECT_FALSE(ParseKeyValue("=v").ok());
}

TEST(ParseMetadataTest, LastValueOfARepeatedKeyWins) {
  auto metadata = ParseMetadata({"a=1", "b=2", "a=3"});
  ASSERT_TRUE(metadata.ok());
  EXPECT_EQ(*metadata, (Metadata{{"a", "3"}, {"b", "2"}}));
  EXPECT_EQ(ParseMetadata({"a=1", "bad"}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseTxOperationTest, Upserts) {
  auto op = ParseTxOperation("upsert:a:b=c=d");
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->type, StateOperation::Type::kUpsert);
  EXPECT_EQ(op->item.key, "a:b");
  EXPECT_EQ(op->item.value, "c=d");
  EXPECT_FALSE(op->item.etag.has_value());

  op = ParseTxOperation("upsert@3:k=");
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->item.key, "k");
  EXPECT_EQ(op->item.value, "");
  EXPECT_EQ(op->item.etag, "3");
}

TEST(ParseTxOperationTest, Deletes) {
  auto op = ParseTxOperation("delete:k=v");
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->type, StateOperation::Type::kDelete);
  EXPECT_EQ(op->item.key, "k=v");
  op = ParseTxOperation("delete@7:k");
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->item.etag, "7");
}

TEST(ParseTxOperationTest, RejectsMalformedOperations) {
  for (const char* bad :
       {"set:k=v", "upsert:k", "upsert:=v", "delete:", "upsert@:k=v", "k=v", "Upsert:k=v"}) {
    auto op = ParseTxOperation(bad);
    EXPECT_EQ(op.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(op.status().message()), HasSubstr(bad));
  }
}

TEST(ParseEventStatusTest, Names) {
  EXPECT_EQ(ParseEventStatus("success").value(), EventStatus::kSuccess);
  EXPECT_EQ(ParseEventStatus("retry").value(), EventStatus::kRetry);
  EXPECT_EQ(ParseEventStatus("drop").value(), EventStatus::kDrop);
  EXPECT_FALSE(ParseEventStatus("SUCCESS").ok());
}

// --- Formatting ------------------------------------------------------------------------------

TEST(FormatErrorTest, CodeNameAndMessage) {
  EXPECT_EQ(FormatError(absl::AbortedError("etag mismatch")), "error: ABORTED: etag mismatch");
  EXPECT_EQ(FormatError(absl::DeadlineExceededError("x")), "error: DEADLINE_EXCEEDED: x");
}

TEST(Utf8Test, AcceptsWellFormedAndRejectsMalformed) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo \xE6\x97\xA5 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xE6\x97"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xFF\x00", 2)), "/wA=");
}

std::string Dump(const Rendered& rendered) {
  return rendered.json.dump();
}

TEST(RenderStateTest, FoundValue) {
  auto rendered =
      RenderState("k", StateEntry{"k", "hello", "3", {{"ttlExpireTime", "2030-01-01T00:00:00Z"}}});
  EXPECT_EQ(rendered.text, "hello\netag: 3\nttlExpireTime: 2030-01-01T00:00:00Z\n");
  EXPECT_EQ(Dump(rendered), R"({"key":"k","found":true,"value":"hello","etag":"3",)"
                            R"("metadata":{"ttlExpireTime":"2030-01-01T00:00:00Z"}})");
  EXPECT_EQ(rendered.note, "");
}

TEST(RenderStateTest, AbsentKeyPrintsNothingAndNotes) {
  auto rendered = RenderState("k", std::nullopt);
  EXPECT_EQ(rendered.text, "");
  EXPECT_EQ(rendered.note, "not found: k\n");
  EXPECT_EQ(Dump(rendered), R"({"key":"k","found":false})");
}

TEST(RenderStateTest, BinaryValueIsBase64InJson) {
  auto rendered = RenderState("k", StateEntry{"k", std::string("\xFF\x00", 2), "1", {}});
  EXPECT_EQ(Dump(rendered),
            R"({"key":"k","found":true,"value_base64":"/wA=","etag":"1","metadata":{}})");
}

TEST(RenderBulkStateTest, OneLinePerKey) {
  std::vector<BulkStateEntry> entries = {
      {.key = "a", .found = true, .value = "1", .etag = "4"},
      {.key = "b"},
      {.key = "c", .error = "boom"},
  };
  auto rendered = RenderBulkState(entries);
  EXPECT_EQ(rendered.text, "a: 1 (etag: 4)\nb: (not found)\nc: (error: boom)\n");
  EXPECT_EQ(Dump(rendered),
            R"({"items":[{"key":"a","found":true,"value":"1","etag":"4","metadata":{}},)"
            R"({"key":"b","found":false},{"key":"c","found":false,"error":"boom"}]})");
}

TEST(RenderLockTest, TryAndStatuses) {
  EXPECT_EQ(RenderTryLock("r", "o", true).text, "acquired\n");
  EXPECT_EQ(RenderTryLock("r", "o", false).text, "not acquired\n");
  EXPECT_EQ(Dump(RenderTryLock("r", "o", false)),
            R"({"resource":"r","owner":"o","acquired":false})");
  EXPECT_EQ(RenderLockStatus("r", "o", LockStatus::kSuccess, false).text, "unlocked\n");
  EXPECT_EQ(RenderLockStatus("r", "o", LockStatus::kSuccess, true).text, "renewed\n");
  auto others = RenderLockStatus("r", "o", LockStatus::kLockBelongsToOthers, false);
  EXPECT_EQ(others.text, "lock belongs to another owner\n");
  EXPECT_EQ(Dump(others), R"({"resource":"r","owner":"o","status":"LOCK_BELONG_TO_OTHERS"})");
}

TEST(RenderConfigurationTest, ItemsAndMissingKeys) {
  std::vector<ConfigurationItem> items = {{.key = "a", .content = "1"},
                                          {.key = "b", .content = "2", .group = "g"}};
  auto rendered = RenderConfiguration(items, {"a", "b", "c", "d"});
  EXPECT_EQ(rendered.text, "a: 1\nb: 2 (group: g, label: )\n");
  EXPECT_EQ(rendered.note, "not found: c, d\n");
  EXPECT_EQ(rendered.json["items"][1]["group"], "g");

  auto update = RenderConfigurationUpdate({"config", {{.key = "a", .content = ""}}});
  EXPECT_EQ(update.text, "a: (deleted)\n");
  EXPECT_EQ(Dump(update),
            R"({"store":"config","items":[{"key":"a","content":"","group":"","label":"",)"
            R"("tags":{},"metadata":{}}]})");
}

TEST(RenderTopicEventTest, TextAndJson) {
  TopicEvent event{"e1", "app", "t", "1.0", "text/plain", "orders", "pubsub", "hi", {{"k", "v"}}};
  auto rendered = RenderTopicEvent(event);
  EXPECT_EQ(rendered.text, "[orders] e1: hi\n");
  EXPECT_EQ(Dump(rendered),
            R"({"id":"e1","source":"app","type":"t","spec_version":"1.0",)"
            R"("data_content_type":"text/plain","topic":"orders","pubsub_name":"pubsub",)"
            R"("data":"hi","metadata":{"k":"v"}})");
}

TEST(RenderHealthTest, UpWithComponents) {
  HttpProbe live{200, R"({"status":"UP"})"};
  HttpProbe ready{200, R"({"status":"UP","components":{"state/cache":{"status":"UP"},)"
                       R"("lock/redis":"UP"}})"};
  auto rendered = RenderHealth(live, ready);
  EXPECT_EQ(rendered.text, "liveness: UP\nreadiness: UP\n  state/cache: UP\n  lock/redis: UP\n");
  EXPECT_EQ(rendered.json["up"], true);
  EXPECT_EQ(rendered.json["readiness"]["http_status"], 200);
  EXPECT_EQ(rendered.json["readiness"]["components"]["state/cache"]["status"], "UP");
}

TEST(RenderHealthTest, DownAndOddAnswers) {
  HttpProbe live{200, "not json"};
  HttpProbe ready{503, R"({"status":"INIT"})"};
  EXPECT_TRUE(ProbeIsUp(live));
  EXPECT_FALSE(ProbeIsUp(ready));
  auto rendered = RenderHealth(live, ready);
  EXPECT_EQ(rendered.text, "liveness: UP\nreadiness: INIT\n");
  EXPECT_EQ(rendered.json["up"], false);
  EXPECT_EQ(rendered.json["liveness"]["body"], "not json");
  EXPECT_EQ(RenderHealth(live, {500, ""}).text, "liveness: UP\nreadiness: DOWN (HTTP 500)\n");
  // A 200 whose body says DOWN is not UP.
  EXPECT_FALSE(ProbeIsUp({200, R"({"status":"DOWN"})"}));
}

// --- Whole command lines ---------------------------------------------------------------------

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

CliResult RunArgs(const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<const char*> argv = {"ottavactl"};
  for (const auto& arg : args) {
    argv.push_back(arg.c_str());
  }
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  CliResult result;
  result.code = RunCli(static_cast<int>(argv.size()), argv.data(), in, out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

class OttavactlTest : public ::testing::Test {
 protected:
  void SetUp() override { address_ = fake_.Start(); }

  // Runs ottavactl against the fake sidecar.
  CliResult Run(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {"--address", address_});
    return RunArgs(args, input);
  }

  testing::FakeRuntime fake_;
  std::string address_;
};

TEST_F(OttavactlTest, StateSetThenGet) {
  auto set = Run({"state", "set", "k", "hello"});
  EXPECT_EQ(set.code, kExitOk) << set.err;
  EXPECT_EQ(set.out, "OK\n");
  auto get = Run({"state", "get", "k"});
  EXPECT_EQ(get.code, kExitOk) << get.err;
  EXPECT_EQ(get.out, "hello\netag: 1\n");
  EXPECT_EQ(get.err, "");
}

TEST_F(OttavactlTest, JsonOutputAndGlobalOptionsAfterTheCommand) {
  ASSERT_EQ(Run({"state", "set", "k", "v"}).code, kExitOk);
  auto get = Run({"state", "get", "k", "--json", "--timeout", "2"});
  EXPECT_EQ(get.code, kExitOk) << get.err;
  EXPECT_EQ(get.out, R"({"key":"k","found":true,"value":"v","etag":"1","metadata":{}})"
                     "\n");
  auto set = Run({"--json", "state", "set", "k", "w"});
  EXPECT_EQ(set.out, R"({"ok":true,"key":"k"})"
                     "\n");
}

TEST_F(OttavactlTest, AbsentKeyExitsZeroWithANote) {
  auto get = Run({"state", "get", "nope"});
  EXPECT_EQ(get.code, kExitOk);
  EXPECT_EQ(get.out, "");
  EXPECT_EQ(get.err, "not found: nope\n");
  auto json = Run({"--json", "state", "get", "nope"});
  EXPECT_EQ(json.out, R"({"key":"nope","found":false})"
                      "\n");
}

TEST_F(OttavactlTest, ValuesFromStdinAndAfterDoubleDash) {
  ASSERT_EQ(Run({"state", "set", "k", "-"}, "line1\nline2").code, kExitOk);
  EXPECT_EQ(fake_.last_save_state().states(0).value(), "line1\nline2");
  auto negative = Run({"state", "set", "n", "--", "-5"});
  EXPECT_EQ(negative.code, kExitOk) << negative.err;
  EXPECT_EQ(fake_.last_save_state().states(0).value(), "-5");
}

TEST_F(OttavactlTest, SetOptionsReachTheRequest) {
  ASSERT_EQ(Run({"state", "set", "k", "1"}).code, kExitOk);
  // --meta takes one value per occurrence, so it does not swallow the positionals after it.
  auto set = Run({"state", "set", "--meta", "a=b", "--meta", "c=d", "k", "2", "--etag", "1",
                  "--ttl", "30", "--first-write"});
  ASSERT_EQ(set.code, kExitOk) << set.err;
  const auto item = fake_.last_save_state().states(0);
  EXPECT_EQ(item.key(), "k");
  EXPECT_EQ(item.value(), "2");
  EXPECT_EQ(item.etag().value(), "1");
  EXPECT_EQ(item.metadata().at("a"), "b");
  EXPECT_EQ(item.metadata().at("c"), "d");
  EXPECT_EQ(item.metadata().at("ttlInSeconds"), "30");
  EXPECT_EQ(item.options().concurrency(),
            spec::proto::runtime::v1::StateOptions::CONCURRENCY_FIRST_WRITE);
}

TEST_F(OttavactlTest, GrpcErrorsPrintCodeAndMessageAndExitOne) {
  ASSERT_EQ(Run({"state", "set", "k", "1"}).code, kExitOk);
  auto stale = Run({"state", "set", "k", "2", "--etag", "9"});
  EXPECT_EQ(stale.code, kExitError);
  EXPECT_EQ(stale.out, "");
  EXPECT_EQ(stale.err, "error: ABORTED: state/fake: etag mismatch for key 'k'\n");
  auto unknown = Run({"state", "get", "k", "--store", "nope"});
  EXPECT_EQ(unknown.code, kExitError);
  EXPECT_EQ(unknown.err, "error: INVALID_ARGUMENT: state store 'nope' is not configured\n");
}

TEST_F(OttavactlTest, UnreachableSidecar) {
  auto hello = RunArgs({"--address", "127.0.0.1:1", "--timeout", "2", "hello"});
  EXPECT_EQ(hello.code, kExitError);
  EXPECT_THAT(hello.err, StartsWith("error: UNAVAILABLE: "));
}

TEST_F(OttavactlTest, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"state"},
           {"state", "get"},
           {"state", "frobnicate"},
           {"state", "set", "k", "v", "--meta", "novalue"},
           {"state", "set", "k", "v", "--first-write", "--last-write"},
           {"state", "tx", "upsert:k"},
           {"lock", "try", "--resource", "r", "--owner", "o"},
           {"lock", "try", "--resource", "r", "--owner", "o", "--expire", "0"},
           {"subscribe", "t", "--ack", "maybe"},
           {"--timeout", "-1", "hello"},
       }) {
    auto result = Run(args);
    EXPECT_EQ(result.code, kExitUsage) << ::testing::PrintToString(args) << "\n" << result.err;
    EXPECT_EQ(result.out, "") << ::testing::PrintToString(args);
  }
  EXPECT_THAT(Run({"state", "tx", "upsert:k"}).err, HasSubstr("bad operation 'upsert:k'"));
}

TEST_F(OttavactlTest, HelpHasExamplesAndExitsZero) {
  auto help = Run({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("Examples:"));
  EXPECT_THAT(help.out, HasSubstr("subscribe"));
  auto tx = Run({"state", "tx", "--help"});
  EXPECT_EQ(tx.code, kExitOk);
  EXPECT_THAT(tx.out, HasSubstr("upsert[@ETAG]:KEY=VALUE"));
}

TEST_F(OttavactlTest, DeleteBulkAndTransaction) {
  auto tx = Run({"state", "tx", "upsert:a=1", "upsert:b=2", "upsert:c=3"});
  ASSERT_EQ(tx.code, kExitOk) << tx.err;
  EXPECT_EQ(tx.out, "OK\n");
  ASSERT_EQ(Run({"state", "tx", "upsert@1:a=10", "delete@1:b"}).code, kExitOk);
  ASSERT_EQ(Run({"state", "del", "c", "--etag", "1"}).code, kExitOk);
  auto bulk = Run({"state", "bulk", "a", "b", "c"});
  EXPECT_EQ(bulk.code, kExitOk) << bulk.err;
  EXPECT_EQ(bulk.out, "a: 10 (etag: 2)\nb: (not found)\nc: (not found)\n");
  auto stale = Run({"state", "tx", "upsert:x=1", "delete@5:a"});
  EXPECT_EQ(stale.code, kExitError);
  EXPECT_THAT(stale.err, StartsWith("error: ABORTED: "));
  EXPECT_EQ(Run({"state", "get", "x"}).out, "");  // nothing of the failed transaction applied
}

TEST_F(OttavactlTest, Locks) {
  const std::vector<std::string> target = {"--resource", "r", "--owner", "alice"};
  auto with = [&](std::vector<std::string> args, const std::vector<std::string>& extra) {
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  };
  EXPECT_EQ(with({"lock", "try", "--expire", "10"}, target).out, "acquired\n");
  EXPECT_EQ(fake_.last_try_lock().expire(), 10);
  EXPECT_EQ(Run({"lock", "try", "-r", "r", "-o", "bob", "-e", "10"}).out, "not acquired\n");
  EXPECT_EQ(with({"lock", "renew", "--expire", "5"}, target).out, "renewed\n");
  auto other = Run({"--json", "lock", "unlock", "--resource", "r", "--owner", "bob"});
  EXPECT_EQ(other.code, kExitOk);
  EXPECT_EQ(other.out, R"({"resource":"r","owner":"bob","status":"LOCK_BELONG_TO_OTHERS"})"
                       "\n");
  EXPECT_EQ(with({"lock", "unlock"}, target).out, "unlocked\n");
  EXPECT_EQ(with({"lock", "unlock"}, target).out, "lock does not exist\n");
}

TEST_F(OttavactlTest, Sequencer) {
  EXPECT_EQ(Run({"seq", "next", "orders"}).out, "1\n");
  EXPECT_EQ(Run({"seq", "next", "orders", "--strong"}).out, "2\n");
  EXPECT_EQ(fake_.last_get_next_id().options().increment(),
            spec::proto::runtime::v1::SequencerOptions::STRONG);
  EXPECT_EQ(Run({"--json", "seq", "next", "orders"}).out, R"({"key":"orders","id":3})"
                                                          "\n");
}

TEST_F(OttavactlTest, HelloUsesNameAndService) {
  auto hello = Run({"hello", "alice", "--service", "helloworld"});
  EXPECT_EQ(hello.out, "greeting, alice\n");
  EXPECT_EQ(fake_.last_hello().service_name(), "helloworld");
}

TEST_F(OttavactlTest, ConfigurationSetGetDel) {
  auto set = Run({"config", "set", "feature", "on", "--group", "web", "--tag", "owner=alice"});
  ASSERT_EQ(set.code, kExitOk) << set.err;
  EXPECT_EQ(fake_.last_save_configuration().items(0).tags().at("owner"), "alice");
  auto get = Run({"config", "get", "feature", "other"});
  EXPECT_EQ(get.code, kExitOk);
  EXPECT_EQ(get.out, "feature: on (group: web, label: )\n");
  EXPECT_EQ(get.err, "not found: other\n");
  ASSERT_EQ(Run({"config", "del", "feature"}).code, kExitOk);
  EXPECT_EQ(Run({"--json", "config", "get", "feature"}).out, R"({"items":[]})"
                                                             "\n");
}

TEST_F(OttavactlTest, ConfigWatchStreamsUntilMax) {
  CliResult watch;
  std::thread runner([&] { watch = Run({"config", "watch", "feature", "--max", "2"}); });
  ASSERT_TRUE(fake_.WaitForConfigWatchers(1, absl::Seconds(10)));
  ASSERT_EQ(Run({"config", "set", "feature", "on"}).code, kExitOk);
  ASSERT_EQ(Run({"config", "del", "feature"}).code, kExitOk);
  runner.join();
  EXPECT_EQ(watch.code, kExitOk) << watch.err;
  EXPECT_EQ(watch.out, "feature: on\nfeature: (deleted)\n");
  EXPECT_EQ(watch.err, "watching config\n");
}

TEST_F(OttavactlTest, StreamTimeoutIsCleanUnlessMaxWasNotReached) {
  auto idle = Run({"config", "watch", "feature", "--timeout", "0.2"});
  EXPECT_EQ(idle.code, kExitOk) << idle.err;
  auto short_of_max = Run({"config", "watch", "feature", "--max", "1", "--timeout", "0.2"});
  EXPECT_EQ(short_of_max.code, kExitError);
  EXPECT_THAT(short_of_max.err,
              HasSubstr("error: DEADLINE_EXCEEDED: received 0 of 1 updates before the timeout"));
}

TEST_F(OttavactlTest, StreamEndedBySidecarBeforeMaxIsAnError) {
  CliResult watch;
  std::thread runner([&] { watch = Run({"config", "watch", "feature", "--max", "1"}); });
  ASSERT_TRUE(fake_.WaitForConfigWatchers(1, absl::Seconds(10)));
  fake_.EndStreams();
  runner.join();
  EXPECT_EQ(watch.code, kExitError);
  EXPECT_THAT(watch.err,
              HasSubstr("error: UNAVAILABLE: the sidecar ended the stream after 0 of 1 updates"));
}

TEST_F(OttavactlTest, Publish) {
  auto publish =
      Run({"publish", "orders", "-", "--content-type", "application/json", "--meta", "key=c7"},
          R"({"id":1})");
  EXPECT_EQ(publish.code, kExitOk) << publish.err;
  EXPECT_EQ(publish.out, "OK\n");
  const auto sent = fake_.last_publish();
  EXPECT_EQ(sent.pubsub_name(), "pubsub");
  EXPECT_EQ(sent.data(), R"({"id":1})");
  EXPECT_EQ(sent.data_content_type(), "application/json");
  EXPECT_EQ(sent.metadata().at("key"), "c7");
  EXPECT_EQ(Run({"publish", "orders", "x", "--pubsub", "nope"}).code, kExitError);
}

TEST_F(OttavactlTest, SubscribePrintsJsonLinesAndAcksEveryEvent) {
  fake_.AddEvent("orders", "e1", "one");
  fake_.AddEvent("orders", "e2", std::string("\xFF", 1));
  auto subscribe =
      Run({"--json", "subscribe", "orders", "--max", "2", "--dead-letter-topic", "orders-dlq"});
  EXPECT_EQ(subscribe.code, kExitOk) << subscribe.err;
  EXPECT_EQ(subscribe.err, "subscribed to pubsub/orders\n");
  EXPECT_EQ(subscribe.out,
            R"({"id":"e1","source":"fake","type":"com.example.test","spec_version":"1.0",)"
            R"("data_content_type":"text/plain","topic":"orders","pubsub_name":"pubsub",)"
            R"("data":"one","metadata":{}})"
            "\n"
            R"({"id":"e2","source":"fake","type":"com.example.test","spec_version":"1.0",)"
            R"("data_content_type":"text/plain","topic":"orders","pubsub_name":"pubsub",)"
            R"("data_base64":"/w==","metadata":{}})"
            "\n");
  EXPECT_EQ(fake_.last_subscription().dead_letter_topic(), "orders-dlq");
  // Close() half-closes after the last ack, so both acks have arrived when the command returns.
  const auto acks = fake_.acks();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0], std::make_pair(std::string("e1"), 0));
  EXPECT_EQ(acks[1], std::make_pair(std::string("e2"), 0));
}

TEST_F(OttavactlTest, SubscribeAcksWithTheChosenStatus) {
  fake_.AddEvent("orders", "e1", "one");
  auto subscribe = Run({"subscribe", "orders", "--max", "1", "--ack", "drop"});
  EXPECT_EQ(subscribe.code, kExitOk) << subscribe.err;
  EXPECT_EQ(subscribe.out, "[orders] e1: one\n");
  ASSERT_EQ(fake_.acks().size(), 1u);
  EXPECT_EQ(fake_.acks()[0].second, 2);  // DROP
}

TEST_F(OttavactlTest, SubscribeToUnconfirmedTopicTimesOut) {
  auto subscribe = Run({"subscribe", "silent", "--timeout", "0.3"});
  EXPECT_EQ(subscribe.code, kExitError);
  EXPECT_THAT(subscribe.err, StartsWith("error: DEADLINE_EXCEEDED: "));
}

// --- health ----------------------------------------------------------------------------------

class FakeActuator {
 public:
  FakeActuator(int readiness_status, std::string readiness_body) {
    server_.Get("/actuator/health/liveness", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"UP"})", "application/json");
    });
    server_.Get("/actuator/health/readiness", [readiness_status, body = std::move(readiness_body)](
                                                  const httplib::Request&, httplib::Response& res) {
      res.status = readiness_status;
      res.set_content(body, "application/json");
    });
    // Bound before the thread starts, so connections wait in the backlog until it accepts.
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeActuator() {
    server_.stop();
    thread_.join();
  }
  FakeActuator(const FakeActuator&) = delete;
  FakeActuator& operator=(const FakeActuator&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(OttavactlHealthTest, UpExitsZero) {
  FakeActuator actuator(200, R"({"status":"UP","components":{"state/state":{"status":"UP"}}})");
  auto health = RunArgs({"health", "--actuator", actuator.address()});
  EXPECT_EQ(health.code, kExitOk) << health.err;
  EXPECT_EQ(health.out, "liveness: UP\nreadiness: UP\n  state/state: UP\n");
  auto json = RunArgs({"health", "--actuator", actuator.address(), "--json"});
  EXPECT_EQ(json.code, kExitOk);
  EXPECT_EQ(json.out, R"({"up":true,"liveness":{"http_status":200,"status":"UP"},)"
                      R"("readiness":{"http_status":200,"status":"UP",)"
                      R"("components":{"state/state":{"status":"UP"}}}})"
                      "\n");
}

TEST(OttavactlHealthTest, NotReadyExitsOne) {
  FakeActuator actuator(503, R"({"status":"DOWN","components":{"lock/redis":{"status":"DOWN"}}})");
  auto health = RunArgs({"health", "--actuator", actuator.address()});
  EXPECT_EQ(health.code, kExitError);
  EXPECT_EQ(health.out, "liveness: UP\nreadiness: DOWN\n  lock/redis: DOWN\n");
}

TEST(OttavactlHealthTest, UnreachableActuatorIsUnavailable) {
  auto health = RunArgs({"health", "--actuator", "127.0.0.1:1", "--timeout", "2"});
  EXPECT_EQ(health.code, kExitError);
  EXPECT_THAT(health.err,
              StartsWith("error: UNAVAILABLE: actuator 127.0.0.1:1/actuator/health/liveness: "
                         "request failed: "));
}

// --- upgrade ---------------------------------------------------------------------------------

// Answers POST /actuator/upgrade with `status` and `body`, recording the request body.
class FakeUpgradeActuator {
 public:
  FakeUpgradeActuator(int status, std::string body) {
    server_.Post("/actuator/upgrade", [this, status, body = std::move(body)](
                                          const httplib::Request& req, httplib::Response& res) {
      request_body_ = req.body;
      res.status = status;
      res.set_content(body, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeUpgradeActuator() {
    server_.stop();
    thread_.join();
  }
  FakeUpgradeActuator(const FakeUpgradeActuator&) = delete;
  FakeUpgradeActuator& operator=(const FakeUpgradeActuator&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& request_body() const { return request_body_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::string request_body_;
};

TEST(OttavactlUpgradeTest, PrintsTheNewGeneration) {
  FakeUpgradeActuator actuator(
      200, R"({"ok":true,"pid":42,"generation":3,"previous_pid":41,"stop_us":1500,)"
           R"("api_pause_us":12300,"state_chunks":4,"state_bytes":9000})");
  auto upgrade = RunArgs({"upgrade", "--actuator", actuator.address(), "--config", "/etc/n.json"});
  EXPECT_EQ(upgrade.code, kExitOk) << upgrade.err;
  EXPECT_EQ(upgrade.out,
            "upgraded: generation 3, pid 42 (previous pid 41)\n"
            "old process stopped accepting in 1.5 ms; API paused 12.3 ms; state carried over: 4 "
            "chunks, 9000 bytes\n");
  EXPECT_EQ(actuator.request_body(), R"({"config":"/etc/n.json"})");
  auto json = RunArgs({"--json", "upgrade", "--actuator", actuator.address()});
  EXPECT_EQ(json.code, kExitOk);
  EXPECT_THAT(json.out, StartsWith(R"({"ok":true,"pid":42)"));
  EXPECT_EQ(actuator.request_body(), "{}");
}

TEST(OttavactlUpgradeTest, RollbackExitsOneWithTheNewProcessError) {
  FakeUpgradeActuator actuator(
      500,
      R"j({"error":"invalid config /x.json: /grpc/address: bad (new process pid 7 exited)"})j");
  auto upgrade = RunArgs({"upgrade", "--actuator", actuator.address()});
  EXPECT_EQ(upgrade.code, kExitError);
  EXPECT_EQ(upgrade.out, "");
  EXPECT_EQ(upgrade.err,
            "error: ABORTED: upgrade rolled back, the running process keeps serving: invalid "
            "config /x.json: /grpc/address: bad (new process pid 7 exited)\n");
}

TEST(OttavactlUpgradeTest, BusyAndUnreachable) {
  FakeUpgradeActuator busy(409, R"({"error":"an upgrade is already in progress"})");
  auto upgrade = RunArgs({"upgrade", "--actuator", busy.address()});
  EXPECT_EQ(upgrade.code, kExitError);
  EXPECT_THAT(upgrade.err, StartsWith("error: ALREADY_EXISTS: an upgrade is already in progress"));
  auto unreachable = RunArgs({"upgrade", "--actuator", "127.0.0.1:1", "--timeout", "2"});
  EXPECT_EQ(unreachable.code, kExitError);
  EXPECT_THAT(unreachable.err, StartsWith("error: UNAVAILABLE: actuator 127.0.0.1:1"));
}

}  // namespace
}  // namespace ottava::sdk::cli
