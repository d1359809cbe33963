// Test-only: a redis-server with one component of a Redis implementation on it, on its own loop;
// what the Redis components' tests (shared conformance cases and their own) start from.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "common/dispatcher.h"
#include "components/component.h"
#include "test/support/redis_server.h"

namespace ottava::components {

// Store: the building block's interface (StateStore, ...); Factory: the implementation's factory.
template <class Store, class Factory>
class RedisComponentTestEnv {
 protected:
  RedisComponentTestEnv(Kind kind, std::string name, std::string loop, std::string timeout)
      : kind_(kind), name_(std::move(name)), loop_(std::move(loop)), timeout_(std::move(timeout)) {}

  // Records the failure and returns false if the server or the component cannot be started.
  bool Start() {
    auto server = test::RedisServer::Start();
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) {
      return false;
    }
    server_ = std::move(*server);
    dispatcher_ = *Dispatcher::Create(loop_);
    dispatcher_->Start();
    store_ = MakeStore(*server_);
    if (store_ == nullptr) {
      return false;
    }
    absl::Status init = store_->Init();
    EXPECT_TRUE(init.ok()) << init;
    return init.ok();
  }
  void Stop() {
    store_.reset();
    if (dispatcher_ != nullptr) {
      dispatcher_->Stop();
    }
  }

  ComponentContext Context(Metadata metadata) {
    ComponentContext context;
    context.kind = kind_;
    context.name = name_;
    context.type = "redis";
    context.metadata = std::move(metadata);
    context.app_id = "app";
    context.health = &health_;
    context.dispatcher = dispatcher_.get();
    return context;
  }

  Metadata MetadataFor(const test::RedisServer& server, Metadata extra = {}) {
    Metadata metadata = {
        {"redisHost", server.address()}, {"timeout", timeout_}, {"dialTimeout", "2s"}};
    for (auto& [key, value] : extra) {
      metadata[key] = value;  // overrides the defaults above
    }
    return metadata;
  }

  // Not initialised; nullptr (after recording the failure) if the factory refuses.
  std::unique_ptr<Store> Create(const ComponentContext& context) {
    auto store = Factory().Create(context);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::unique_ptr<Store> MakeStore(const test::RedisServer& server, Metadata extra = {}) {
    return Create(Context(MetadataFor(server, std::move(extra))));
  }

  std::unique_ptr<test::RedisServer> server_;
  DispatcherPtr dispatcher_;
  HealthIndicator health_;
  std::unique_ptr<Store> store_;

 private:
  Kind kind_;
  std::string name_;
  std::string loop_;
  std::string timeout_;
};

}  // namespace ottava::components
