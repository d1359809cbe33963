#include "components/state/in_memory/in_memory_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/dispatcher.h"
#include "components/state/state_conformance.h"

namespace ottava::components::state {
namespace {

using conformance::Get;
using conformance::Set;
using conformance::StateConformanceTest;
using conformance::WaitUntil;
using ::testing::HasSubstr;

ComponentContext Context(Dispatcher* dispatcher = nullptr, Metadata metadata = {}) {
  ComponentContext context;
  context.kind = Kind::kState;
  context.name = "mem";
  context.type = "in-memory";
  context.metadata = std::move(metadata);
  context.app_id = "app";
  context.dispatcher = dispatcher;
  return context;
}

// The shared conformance suite (components/state/state_conformance.cc) on a fresh store per test.
class InMemoryHarness : public conformance::StateStoreHarness {
 public:
  InMemoryHarness() { EXPECT_TRUE(store_.Init().ok()); }
  StateStore& store() override { return store_; }

 private:
  InMemoryStateStore store_{Context(), InMemoryStateSettings{}};
};

INSTANTIATE_TEST_SUITE_P(InMemory,
                         StateConformanceTest,
                         ::testing::Values(conformance::StateConformanceParam{
                             .name = "mem",
                             .label = "state/mem",
                             .make = [] { return std::make_unique<InMemoryHarness>(); }}),
                         conformance::StateConformanceName());

class InMemoryStateTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.Init().ok()); }
  InMemoryStateStore store_{Context(), InMemoryStateSettings{}};
};

TEST(InMemoryStateFactoryTest, CreatesAndReportsHealth) {
  InMemoryStateFactory factory;
  EXPECT_EQ(factory.type(), "in-memory");
  HealthIndicator health;
  ComponentContext context = Context();
  context.health = &health;
  auto store = factory.Create(context);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(health.state(), HealthState::kInit);
  ASSERT_TRUE((*store)->Init().ok());
  EXPECT_EQ(health.state(), HealthState::kUp);
  Features features = (*store)->features();
  EXPECT_TRUE(features.etag);
  EXPECT_TRUE(features.transactional);
  EXPECT_TRUE(features.ttl);
}

TEST(InMemoryStateFactoryTest, RejectsBadSweepInterval) {
  InMemoryStateFactory factory;
  for (const char* bad : {"abc", "0", "-5", "10ms"}) {
    auto store = factory.Create(Context(nullptr, {{"sweepIntervalMs", bad}}));
    ASSERT_FALSE(store.ok()) << bad;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(store.status().message(), HasSubstr("state/mem"));
    EXPECT_THAT(store.status().message(), HasSubstr("sweepIntervalMs"));
  }
  EXPECT_TRUE(factory.Create(Context(nullptr, {{"sweepIntervalMs", "250"}})).ok());
  // Keys the runtime owns (keyPrefix) are not the store's business.
  EXPECT_TRUE(factory.Create(Context(nullptr, {{"keyPrefix", "none"}})).ok());
}

TEST_F(InMemoryStateTest, SweepRemovesExpiredItemsNobodyReads) {
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(Set(store_, {.key = "t" + std::to_string(i), .value = "v", .ttl_seconds = 1}).ok());
  }
  ASSERT_TRUE(Set(store_, "keep", "v").ok());
  store_.SweepForTest();  // nothing has expired yet
  EXPECT_EQ(store_.EntryCountForTest(), 3001u);
  EXPECT_TRUE(WaitUntil([&] {
    store_.SweepForTest();
    return store_.EntryCountForTest() == 1;
  }));
  EXPECT_TRUE(Get(store_, "keep")->found);
}

TEST(InMemoryStatePeriodicSweepTest, SweepsOnTheDispatcher) {
  auto dispatcher = Dispatcher::Create("state-test");
  ASSERT_TRUE(dispatcher.ok());
  (*dispatcher)->Start();
  {
    auto created =
        InMemoryStateFactory().Create(Context(dispatcher->get(), {{"sweepIntervalMs", "50"}}));
    ASSERT_TRUE(created.ok());
    auto* store = static_cast<InMemoryStateStore*>(created->get());
    ASSERT_TRUE(store->Init().ok());
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(Set(*store, {.key = std::to_string(i), .value = "v", .ttl_seconds = 1}).ok());
    }
    EXPECT_EQ(store->EntryCountForTest(), 100u);
    // Nobody reads the keys: only the periodic sweep can remove them.
    EXPECT_TRUE(WaitUntil([&] { return store->EntryCountForTest() == 0; }));
    store->Shutdown();
  }
  (*dispatcher)->Stop();
}

}  // namespace
}  // namespace ottava::components::state
