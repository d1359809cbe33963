#include "components/common/metadata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ottava::components {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseDurationTest, AcceptsUnitsAndRejectsGarbage) {
  EXPECT_EQ(ParseDuration("250ms")->count(), 250);
  EXPECT_EQ(ParseDuration("5s")->count(), 5000);
  EXPECT_EQ(ParseDuration("2m")->count(), 120000);
  EXPECT_EQ(ParseDuration("1h")->count(), 3600000);
  EXPECT_EQ(ParseDuration("40")->count(), 40);
  for (const char* bad : {"", "s", "-1s", "5x", "1.5s", "ms", "99999999999999999999h"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(MetadataReaderTest, ReadsTypedValuesAndKeepsDefaultsForAbsentOrEmpty) {
  Metadata metadata = {{"n", "7"},      {"flag", "true"}, {"d", "3s"},
                       {"mode", "old"}, {"empty", ""},    {"s", "text"}};
  MetadataReader reader(metadata);
  int64_t n = 1;
  int64_t absent = 9;
  int64_t empty = 5;
  bool flag = false;
  std::chrono::milliseconds d{1};
  std::string mode = "new";
  std::string s;
  EXPECT_TRUE(reader.Int("n", 0, 10, &n).ok());
  EXPECT_TRUE(reader.Int("absent", 0, 10, &absent).ok());
  EXPECT_TRUE(reader.Int("empty", 0, 10, &empty).ok());
  EXPECT_TRUE(reader.Bool("flag", &flag).ok());
  EXPECT_TRUE(reader.Duration("d", &d).ok());
  EXPECT_TRUE(reader.OneOf("mode", {"old", "new"}, &mode).ok());
  EXPECT_TRUE(reader.String("s", &s).ok());
  EXPECT_EQ(n, 7);
  EXPECT_EQ(absent, 9);
  EXPECT_EQ(empty, 5);
  EXPECT_TRUE(flag);
  EXPECT_EQ(d.count(), 3000);
  EXPECT_EQ(mode, "old");
  EXPECT_EQ(s, "text");
  EXPECT_TRUE(reader.Unknown().empty());
}

TEST(MetadataReaderTest, ErrorsNameTheKeyAndTheValue) {
  Metadata metadata = {{"n", "11"}, {"flag", "yes"}, {"d", "0"}, {"mode", "middle"}};
  MetadataReader reader(metadata);
  int64_t n = 0;
  bool flag = false;
  std::chrono::milliseconds d{1};
  std::string mode;
  absl::Status status = reader.Int("n", 0, 10, &n);
  EXPECT_THAT(std::string(status.message()), HasSubstr("metadata n: '11'"));
  EXPECT_EQ(n, 0);
  status = reader.Bool("flag", &flag);
  EXPECT_THAT(std::string(status.message()), HasSubstr("metadata flag: 'yes'"));
  status = reader.Duration("d", &d, /*allow_zero=*/false);
  EXPECT_THAT(std::string(status.message()), HasSubstr("metadata d: '0'"));
  EXPECT_EQ(d.count(), 1);
  status = reader.OneOf("mode", {"old", "new"}, &mode);
  EXPECT_THAT(std::string(status.message()), HasSubstr("one of: old, new"));
}

TEST(MetadataReaderTest, ReportsKeysNothingRead) {
  Metadata metadata = {
      {"brokers", "b:9092"}, {"consumerGroupp", "typo"},       {"kafka.linger.ms", "5"},
      {"kafka.acks", "all"}, {"kafkaX", "not a prefix match"}, {"legacy", "x"}};
  MetadataReader reader(metadata);
  std::string brokers;
  EXPECT_TRUE(reader.String("brokers", &brokers).ok());
  std::map<std::string, std::string> passthrough = reader.Prefixed("kafka.");
  EXPECT_EQ(passthrough, (std::map<std::string, std::string>{{"acks", "all"}, {"linger.ms", "5"}}));
  reader.Accept({"legacy"});
  EXPECT_THAT(reader.Unknown(), ElementsAre("consumerGroupp", "kafkaX"));
}

}  // namespace
}  // namespace ottava::components
