#include "components/config_store/in_memory/in_memory_config_store.h"

#include <gtest/gtest.h>

#include <future>
#include <memory>

#include "common/dispatcher.h"
#include "components/config_store/config_store_conformance.h"

// Every case here is the shared conformance suite (components/config_store/
// config_store_conformance.cc), run with deliveries on a dispatcher and inline.

namespace ottava::components::config_store {
namespace {

using conformance::ConfigStoreConformanceTest;

class InMemoryHarness : public conformance::ConfigStoreHarness {
 public:
  explicit InMemoryHarness(bool on_dispatcher) {
    if (on_dispatcher) {
      auto dispatcher = Dispatcher::Create("config-test");
      EXPECT_TRUE(dispatcher.ok());
      dispatcher_ = std::move(*dispatcher);
      dispatcher_->Start();
    }
    ComponentContext context;
    context.kind = Kind::kConfigStore;
    context.name = "conf";
    context.type = "in-memory";
    context.app_id = "app";
    context.dispatcher = dispatcher_.get();
    auto store = InMemoryConfigStoreFactory().Create(context);
    EXPECT_TRUE(store.ok());
    store_ = std::move(*store);
    EXPECT_TRUE(store_->Init().ok());
  }
  ~InMemoryHarness() override {
    store_->Shutdown();
    store_.reset();
    if (dispatcher_) {
      dispatcher_->Stop();
    }
  }

  ConfigStore& store() override { return *store_; }

  void Flush() override {
    if (!dispatcher_) {
      return;  // inline deliveries are done when Save/Delete return
    }
    std::promise<void> done;
    dispatcher_->Post([&] { done.set_value(); });
    done.get_future().wait();
  }

 private:
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<ConfigStore> store_;
};

conformance::ConfigStoreConformanceParam Delivery(bool on_dispatcher) {
  return {.name = on_dispatcher ? "OnDispatcher" : "Inline",
          .writers = 4,
          .writes = 200,
          .make = [on_dispatcher] { return std::make_unique<InMemoryHarness>(on_dispatcher); }};
}

INSTANTIATE_TEST_SUITE_P(InMemory,
                         ConfigStoreConformanceTest,
                         ::testing::Values(Delivery(true), Delivery(false)),
                         conformance::ConfigStoreConformanceName());

}  // namespace
}  // namespace ottava::components::config_store
