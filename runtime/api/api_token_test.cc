#include "runtime/api/api_token.h"

#include <gtest/gtest.h>

namespace ottava::runtime::api {
namespace {

TEST(ApiTokenTest, ComparesWholeValues) {
  EXPECT_TRUE(ConstantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", "s3cre"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", "s3cretX"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", "s3cres"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", ""));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abab"));  // the cycled token must not pass
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(ApiTokenTest, ChecksOnlyWhenConfigured) {
  std::string_view wrong = "nope";
  std::string_view right = "tok";
  EXPECT_TRUE(CheckApiToken("", nullptr).ok());
  EXPECT_TRUE(CheckApiToken("", &wrong).ok());
  EXPECT_EQ(CheckApiToken("tok", nullptr).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(CheckApiToken("tok", &wrong).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(CheckApiToken("tok", &right).ok());
}

}  // namespace
}  // namespace ottava::runtime::api
