#include "components/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ottava::components {
namespace {

using ::testing::Contains;

TEST(RegistryTest, BuiltinsRegisterAnInMemoryImplementationOfEveryKind) {
  Registry registry;
  for (Kind kind :
       {Kind::kState, Kind::kLock, Kind::kSequencer, Kind::kConfigStore, Kind::kPubSub}) {
    EXPECT_TRUE(registry.Types(kind).empty());
  }
  RegisterBuiltins(registry);
  for (Kind kind :
       {Kind::kState, Kind::kLock, Kind::kSequencer, Kind::kConfigStore, Kind::kPubSub}) {
    EXPECT_THAT(registry.Types(kind), Contains("in-memory")) << KindName(kind);
  }
  ASSERT_NE(registry.FindState("in-memory"), nullptr);
  EXPECT_EQ(registry.FindState("in-memory")->type(), "in-memory");
  EXPECT_NE(registry.FindLock("in-memory"), nullptr);
  EXPECT_NE(registry.FindSequencer("in-memory"), nullptr);
  EXPECT_NE(registry.FindConfigStore("in-memory"), nullptr);
  EXPECT_NE(registry.FindPubSub("in-memory"), nullptr);
  EXPECT_EQ(registry.FindState("redis-that-does-not-exist"), nullptr);
}

TEST(RegistryTest, ContextLabelNamesKindAndInstance) {
  ComponentContext context;
  context.kind = Kind::kPubSub;
  context.name = "bus";
  EXPECT_EQ(context.Label(), "pub_subs/bus");
  context.kind = Kind::kConfigStore;
  EXPECT_EQ(context.Label(), "config_store/bus");
  EXPECT_EQ(HealthStateName(HealthState::kUp), "UP");
}

}  // namespace
}  // namespace ottava::components
