#include "common/json_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ottava::config {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(JsonConfigTest, JoinPointerEscapesAsRfc6901Says) {
  EXPECT_EQ(JoinPointer("", "a"), "/a");
  EXPECT_EQ(JoinPointer("/components", "state"), "/components/state");
  EXPECT_EQ(JoinPointer("", "a/b~c"), "/a~1b~0c");
  EXPECT_EQ(JoinPointer("/x", ""), "/x/");
}

TEST(JsonConfigTest, ConfigErrorNamesThePointer) {
  absl::Status error = ConfigError("/grpc/address", "must not be empty");
  EXPECT_EQ(error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(error.message(), "/grpc/address: must not be empty");
  EXPECT_EQ(ConfigError("", "expected an object").message(), "/: expected an object");
}

TEST(JsonConfigTest, CheckObject) {
  EXPECT_TRUE(ObjectReader::CheckObject(json::object(), "").ok());
  absl::Status status = ObjectReader::CheckObject(json::array(), "/mesh");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("/mesh: expected an object, got array"));
}

TEST(JsonConfigTest, ReadsStrings) {
  json object = {{"name", "orders"}, {"empty", ""}, {"number", 5}};
  ObjectReader reader(object, "/app");
  std::string name = "default";
  EXPECT_TRUE(reader.String("name", &name).ok());
  EXPECT_EQ(name, "orders");
  std::string absent = "kept";
  EXPECT_TRUE(reader.String("absent", &absent).ok());
  EXPECT_EQ(absent, "kept");
  std::string out;
  absl::Status wrong_type = reader.String("number", &out);
  EXPECT_EQ(wrong_type.message(), "/app/number: expected a string, got number");

  EXPECT_EQ(reader.RequiredString("missing", &out).message(), "/app/missing: is required");
  EXPECT_EQ(reader.RequiredString("empty", &out).message(), "/app/empty: must not be empty");
  EXPECT_TRUE(reader.RequiredString("name", &out).ok());
  EXPECT_EQ(out, "orders");
}

TEST(JsonConfigTest, ReadsIntegersWithinRange) {
  json object = {
      {"ok", 42}, {"low", -1}, {"float", 1.5}, {"text", "42"}, {"huge", 18446744073709551615ULL}};
  ObjectReader reader(object, "");
  int64_t value = 7;
  EXPECT_TRUE(reader.Int("absent", &value, 0, 100).ok());
  EXPECT_EQ(value, 7);
  EXPECT_TRUE(reader.Int("ok", &value, 0, 100).ok());
  EXPECT_EQ(value, 42);
  EXPECT_EQ(reader.Int("low", &value, 0, 100).message(), "/low: must be between 0 and 100, got -1");
  EXPECT_EQ(reader.Int("ok", &value, 0, 10).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reader.Int("float", &value, 0, 100).message(), HasSubstr("expected an integer"));
  EXPECT_THAT(reader.Int("text", &value, 0, 100).message(), HasSubstr("expected an integer"));
  EXPECT_EQ(reader.Int("huge", &value, 0, INT64_MAX).message(), "/huge: is out of range");
  EXPECT_EQ(value, 42);  // failures leave the output alone
}

TEST(JsonConfigTest, ReadsBooleans) {
  json object = {{"yes", true}, {"text", "true"}};
  ObjectReader reader(object, "/log");
  bool value = false;
  EXPECT_TRUE(reader.Bool("yes", &value).ok());
  EXPECT_TRUE(value);
  EXPECT_EQ(reader.Bool("text", &value).message(), "/log/text: expected a boolean, got string");
}

TEST(JsonConfigTest, ReadsStringMaps) {
  json object = {{"metadata", {{"redisHost", "127.0.0.1:6379"}, {"db", "0"}}},
                 {"bad", {{"port", 6379}}},
                 {"list", json::array()}};
  ObjectReader reader(object, "/components/state/main");
  std::map<std::string, std::string> metadata;
  ASSERT_TRUE(reader.StringMap("metadata", &metadata).ok());
  EXPECT_EQ(metadata.at("redisHost"), "127.0.0.1:6379");
  EXPECT_EQ(metadata.at("db"), "0");
  std::map<std::string, std::string> bad;
  EXPECT_EQ(reader.StringMap("bad", &bad).message(),
            "/components/state/main/bad/port: metadata values are strings, got number");
  EXPECT_THAT(reader.StringMap("list", &bad).message(), HasSubstr("expected an object"));
}

TEST(JsonConfigTest, ReportsTheFirstUnknownKey) {
  json object = {{"address", "127.0.0.1:1"}, {"adress", "typo"}};
  ObjectReader reader(object, "/grpc");
  std::string address;
  ASSERT_TRUE(reader.String("address", &address).ok());
  EXPECT_EQ(reader.CheckNoUnknownKeys().message(), "/grpc/adress: unknown key");
  // Asking for a key, present or not, makes it known.
  EXPECT_EQ(reader.Child("adress")->get<std::string>(), "typo");
  EXPECT_EQ(reader.Child("nothing"), nullptr);
  EXPECT_TRUE(reader.CheckNoUnknownKeys().ok());
  EXPECT_EQ(reader.PointerOf("x"), "/grpc/x");
  EXPECT_EQ(reader.pointer(), "/grpc");
}

}  // namespace
}  // namespace ottava::config
