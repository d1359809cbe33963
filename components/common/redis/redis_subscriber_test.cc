#include "components/common/redis/redis_subscriber.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <utility>
#include <vector>

#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::components::redis {
namespace {

using test::RedisServer;

class RedisSubscriberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    dispatcher_ = *Dispatcher::Create("sub-test");
    dispatcher_->Start();
  }
  void TearDown() override {
    subscriber_.reset();
    dispatcher_->Stop();
  }

  void Subscribe(Metadata extra = {}) {
    Metadata metadata = {{"redisHost", server_->address()}, {"dialTimeout", "2s"}};
    metadata.insert(extra.begin(), extra.end());
    auto settings = ClientSettings::Parse(metadata);
    ASSERT_TRUE(settings.ok());
    Subscriber::Callbacks callbacks;
    callbacks.on_message = [this](const std::string& channel, const std::string& message) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.emplace_back(channel, message);
    };
    callbacks.on_subscribed = [this] { subscribed_count_++; };
    callbacks.on_lost = [this] { lost_count_++; };
    auto subscriber = Subscriber::Create(*settings, dispatcher_.get(), "test/sub", {"plain"},
                                         {"news.*"}, std::move(callbacks));
    ASSERT_TRUE(subscriber.ok()) << subscriber.status();
    subscriber_ = std::move(*subscriber);
    absl::Status status = subscriber_->Connect();
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_TRUE(subscriber_->subscribed());
    EXPECT_EQ(subscribed_count_.load(), 1);
  }

  bool Received(const std::string& channel, const std::string& message) {
    return test::WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu_);
          for (const auto& [c, m] : messages_) {
            if (c == channel && m == message) {
              return true;
            }
          }
          return false;
        },
        std::chrono::seconds(5));
  }

  std::unique_ptr<RedisServer> server_;
  DispatcherPtr dispatcher_;
  std::unique_ptr<Subscriber> subscriber_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> messages_;
  std::atomic<int> subscribed_count_{0};
  std::atomic<int> lost_count_{0};
};

TEST_F(RedisSubscriberTest, ReceivesChannelAndPatternMessages) {
  Subscribe();
  server_->Cli({"PUBLISH", "plain", "one"});
  server_->Cli({"PUBLISH", "news.sport",
                std::string("bin\x01"
                            "ary",
                            7)});
  server_->Cli({"PUBLISH", "other", "ignored"});
  EXPECT_TRUE(Received("plain", "one"));
  EXPECT_TRUE(Received("news.sport", std::string("bin\x01"
                                                 "ary",
                                                 7)));
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(messages_.size(), 2u);
}

TEST_F(RedisSubscriberTest, ResubscribesAfterRedisRestarts) {
  Subscribe();
  server_->Kill();
  ASSERT_TRUE(test::WaitFor([&] { return lost_count_.load() == 1; }));
  EXPECT_FALSE(subscriber_->subscribed());
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(test::WaitFor([&] { return subscribed_count_.load() == 2; }));
  server_->Cli({"PUBLISH", "news.x", "after"});
  EXPECT_TRUE(Received("news.x", "after"));
}

TEST_F(RedisSubscriberTest, ReconnectsAfterTheServerDropsTheConnection) {
  Subscribe();
  server_->Cli({"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(test::WaitFor([&] { return subscribed_count_.load() == 2; }));
  server_->Cli({"PUBLISH", "plain", "again"});
  EXPECT_TRUE(Received("plain", "again"));
}

// The runtime stops the component loop before it destroys the components: destroying the
// subscriber then must not wait for a closure the stopped dispatcher will never run.
TEST_F(RedisSubscriberTest, DestroyedAfterTheDispatcherStoppedReturnsAtOnce) {
  Subscribe();
  subscriber_->Shutdown();
  dispatcher_->Stop();
  const auto start = std::chrono::steady_clock::now();
  subscriber_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST(RedisSubscriberAuthTest, AuthenticatesAndReportsAWrongPassword) {
  auto server = RedisServer::Start({true, {"--requirepass", "s3cret"}});
  ASSERT_TRUE(server.ok()) << server.status();
  auto dispatcher = *Dispatcher::Create("sub-auth");
  dispatcher->Start();
  {
    auto settings =
        ClientSettings::Parse({{"redisHost", (*server)->address()}, {"redisPassword", "s3cret"}});
    std::atomic<int> received{0};
    Subscriber::Callbacks callbacks;
    callbacks.on_message = [&](const std::string&, const std::string&) { received++; };
    auto subscriber =
        *Subscriber::Create(*settings, dispatcher.get(), "test/auth", {"c"}, {}, callbacks);
    ASSERT_TRUE(subscriber->Connect().ok());
    (*server)->Cli({"PUBLISH", "c", "x"});
    EXPECT_TRUE(test::WaitFor([&] { return received.load() == 1; }));
  }
  {
    auto settings = ClientSettings::Parse({{"redisHost", (*server)->address()},
                                           {"redisPassword", "wrong"},
                                           {"dialTimeout", "300ms"}});
    auto subscriber = *Subscriber::Create(*settings, dispatcher.get(), "test/auth", {"c"}, {}, {});
    absl::Status status = subscriber->Connect();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(std::string(status.message()).find("AUTH"), std::string::npos) << status;
  }
  dispatcher->Stop();
}

}  // namespace
}  // namespace ottava::components::redis
