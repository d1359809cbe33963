#include "components/common/redis/redis_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::components::redis {
namespace {

using test::RedisServer;

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    dispatcher_ = *Dispatcher::Create("redis-test");
    dispatcher_->Start();
  }
  void TearDown() override {
    client_.reset();
    dispatcher_->Stop();
  }

  void Connect(Metadata extra = {}, const Script* script = nullptr) {
    Metadata metadata = {
        {"redisHost", server_->address()}, {"timeout", "500ms"}, {"dialTimeout", "2s"}};
    for (auto& [key, value] : extra) {
      metadata[key] = value;  // overrides the defaults above
    }
    auto settings = ClientSettings::Parse(metadata);
    ASSERT_TRUE(settings.ok()) << settings.status();
    auto client = Client::Create(*settings, dispatcher_.get(), &health_, "state/test");
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    if (script != nullptr) {
      client_->AddScript(script);
    }
    ASSERT_TRUE(client_->Connect().ok());
    EXPECT_EQ(health_.state(), HealthState::kUp);
  }

  absl::StatusOr<Reply> Run(std::vector<std::string> args) {
    std::promise<absl::StatusOr<Reply>> promise;
    client_->Command(std::move(args),
                     [&promise](absl::StatusOr<Reply> reply) { promise.set_value(reply); });
    return promise.get_future().get();
  }

  std::unique_ptr<RedisServer> server_;
  DispatcherPtr dispatcher_;
  HealthIndicator health_;
  std::unique_ptr<Client> client_;
};

TEST(ClientSettingsTest, ParsesMetadataAndNamesBadKeys) {
  auto settings = ClientSettings::Parse({{"redisHost", "10.0.0.1:6380"},
                                         {"redisDB", "3"},
                                         {"dialTimeout", "250ms"},
                                         {"timeout", "2s"},
                                         {"poolSize", "4"},
                                         {"replySpinMicros", "0"}});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->host, "10.0.0.1");
  EXPECT_EQ(settings->port, 6380);
  EXPECT_EQ(settings->db, 3);
  EXPECT_EQ(settings->dial_timeout.count(), 250);
  EXPECT_EQ(settings->timeout.count(), 2000);
  EXPECT_EQ(settings->pool_size, 4);
  EXPECT_EQ(settings->reply_spin.count(), 0);
  for (auto [key, value] : {std::pair{"redisHost", "h:notaport"}, std::pair{"redisDB", "x"},
                            std::pair{"timeout", "soon"}, std::pair{"poolSize", "0"},
                            std::pair{"replySpinMicros", "5000"}}) {
    auto bad = ClientSettings::Parse({{key, value}});
    ASSERT_FALSE(bad.ok()) << key;
    EXPECT_NE(std::string(bad.status().message()).find(key), std::string::npos) << bad.status();
  }
}

TEST_F(RedisClientTest, PipelinesManyCommandsInOrder) {
  Connect();
  constexpr int kCount = 2000;
  std::atomic<int> done{0};
  std::atomic<int> out_of_order{0};
  std::promise<void> all;
  for (int i = 0; i < kCount; ++i) {
    client_->Command({"INCR", "counter"}, [&, i](absl::StatusOr<Reply> reply) {
      if (!reply.ok() || reply->integer != i + 1) {
        ++out_of_order;
      }
      if (++done == kCount) {
        all.set_value();
      }
    });
  }
  all.get_future().wait();
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(server_->Cli({"GET", "counter"}), std::to_string(kCount));
}

// Senders on many threads at once, some waiting for each reply (so they read it themselves) and
// some not (so the loop, or another sender, reads it): every callback runs exactly once, with the
// reply to its own command, in each thread's sending order.
TEST_F(RedisClientTest, ConcurrentSendersGetTheirOwnRepliesInOrder) {
  Connect();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 1500;
  std::atomic<int> wrong{0};
  std::atomic<int> callbacks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "counter-" + std::to_string(t);
      const bool wait_each = t % 2 == 0;
      auto last = std::make_shared<std::promise<void>>();
      for (int i = 0; i < kPerThread; ++i) {
        auto replied = std::make_shared<std::promise<void>>();
        client_->Command({"INCR", key}, [&, i, replied](absl::StatusOr<Reply> reply) {
          if (!reply.ok() || reply->integer != i + 1) {
            ++wrong;
          }
          ++callbacks;
          replied->set_value();
        });
        if (wait_each || i + 1 == kPerThread) {
          replied->get_future().wait();
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  ASSERT_TRUE(test::WaitFor([&] { return callbacks.load() == kThreads * kPerThread; }));
  EXPECT_EQ(wrong, 0);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(server_->Cli({"GET", "counter-" + std::to_string(t)}), std::to_string(kPerThread));
  }
}

// Components keep loop-only state in the callbacks of commands they send from the loop: those run
// on the loop even when a sender reading its own reply on another thread reads theirs too. Redis
// is stopped while a sender's command and then a loop command go out, so that both replies come
// back together, to the sender.
TEST_F(RedisClientTest, CallbacksOfCommandsSentFromTheLoopRunOnTheLoop) {
  Connect();
  std::atomic<int> off_loop{0};
  for (int round = 0; round < 10; ++round) {
    ASSERT_TRUE(Run({"PING"}).ok());  // read by this thread: nobody watches the connection now
    server_->Pause();
    std::thread sender([&] { EXPECT_TRUE(Run({"INCR", "from-thread"}).ok()); });
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    std::promise<void> sent;
    std::promise<void> replied;
    dispatcher_->Post([&] {
      client_->Command({"INCR", "from-loop"}, [&](absl::StatusOr<Reply> reply) {
        if (!reply.ok() || !dispatcher_->IsLoopThread()) {
          ++off_loop;
        }
        replied.set_value();
      });
      sent.set_value();
    });
    sent.get_future().wait();
    server_->Resume();
    sender.join();
    replied.get_future().wait();
    // Caller reads pause after a round with company; let that lapse.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  EXPECT_EQ(off_loop, 0);
  EXPECT_EQ(server_->Cli({"GET", "from-loop"}), "10");
}

// Nobody watches an idle connection's socket, yet a server that closes it is noticed: the next
// command, a moment later, goes out on a new connection instead of failing.
TEST_F(RedisClientTest, AnIdleConnectionClosedByTheServerIsRedialled) {
  Connect();
  ASSERT_TRUE(Run({"PING"}).ok());
  EXPECT_EQ(server_->Cli({"CLIENT", "KILL", "TYPE", "normal"}), "1");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto reply = Run({"PING"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->str, "PONG");
}

// Redis dies and comes back under a stream of lone requests, so the end of the connection is seen
// by whichever thread is reading: the sender (which then releases the connection off the loop)
// or the loop. Every call fails with UNAVAILABLE or succeeds, and service resumes by itself.
TEST_F(RedisClientTest, RestartsUnderLoneRequestsFailCleanlyAndRecover) {
  Connect();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> unavailable{0};
  std::atomic<int> other{0};
  std::thread sender([&] {
    while (!stop.load()) {
      auto reply = Run({"INCR", "lone"});
      if (reply.ok()) {
        ++ok;
      } else if (reply.status().code() == absl::StatusCode::kUnavailable) {
        ++unavailable;
      } else {
        ++other;
      }
    }
  });
  for (int cycle = 0; cycle < 3; ++cycle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server_->Kill();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(server_->Restart().ok());
    const int before = ok.load();
    EXPECT_TRUE(test::WaitFor([&] { return ok.load() > before + 10; }, std::chrono::seconds(5)))
        << "cycle " << cycle;
  }
  stop.store(true);
  sender.join();
  EXPECT_GT(unavailable.load(), 0);
  EXPECT_EQ(other.load(), 0);
}

// A command bigger than the socket buffer: the sender writes what fits and the loop the rest.
TEST_F(RedisClientTest, ACommandLargerThanTheSocketBufferIsWrittenWhole) {
  Connect({{"timeout", "5s"}});
  const std::string big(16 << 20, 'x');
  auto reply = Run({"SET", "big", big});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->str, "OK");
  EXPECT_EQ(server_->Cli({"STRLEN", "big"}), std::to_string(big.size()));
  reply = Run({"GET", "big"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->str.size(), big.size());
}

TEST_F(RedisClientTest, EvalShaSurvivesAScriptFlush) {
  static const Script script("return redis.call('SET', KEYS[1], ARGV[1])");
  Connect({}, &script);
  auto run = [this] {
    std::promise<absl::StatusOr<Reply>> promise;
    client_->EvalSha(script, {"k"}, {"v"},
                     [&promise](absl::StatusOr<Reply> reply) { promise.set_value(reply); });
    return promise.get_future().get();
  };
  auto reply = run();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->str, "OK");
  server_->Cli({"SCRIPT", "FLUSH"});
  reply = run();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->str, "OK") << reply->str;
}

TEST_F(RedisClientTest, OutageFailsFastThenRecoversByItself) {
  Connect();
  ASSERT_TRUE(Run({"SET", "a", "1"}).ok());
  server_->Kill();
  // Every call fails quickly with UNAVAILABLE while Redis is away.
  ASSERT_TRUE(test::WaitFor([&] { return health_.state() == HealthState::kDown; }));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) {
    auto reply = Run({"GET", "a"});
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(std::string(reply.status().message()).find("state/test"), std::string::npos);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(
      test::WaitFor([&] { return health_.state() == HealthState::kUp; }, std::chrono::seconds(5)));
  auto reply = Run({"GET", "a"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->str, "1");  // AOF replayed
}

// The runtime destroys its components after stopping their dispatcher. (Not connected: a live
// connection could not be freed without its loop, which LeakSanitizer would report.)
TEST_F(RedisClientTest, DestroyingAfterTheDispatcherStoppedDoesNotWait) {
  auto settings = ClientSettings::Parse({{"redisHost", server_->address()}});
  ASSERT_TRUE(settings.ok());
  client_ = *Client::Create(*settings, dispatcher_.get(), &health_, "state/test");
  dispatcher_->Stop();
  auto start = std::chrono::steady_clock::now();
  client_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(RedisClientTest, AHungServerFailsCallsWithinTheirDeadline) {
  Connect();
  server_->Pause();
  auto start = std::chrono::steady_clock::now();
  auto reply = Run({"GET", "a"});
  auto took = std::chrono::steady_clock::now() - start;
  server_->Resume();
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(took, std::chrono::milliseconds(1500));  // timeout is 500 ms
  ASSERT_TRUE(test::WaitFor([&] { return Run({"PING"}).ok(); }, std::chrono::seconds(5)));
}

// The runtime stops the component loop before it destroys the components: ~Client() must not then
// wait for a closure the stopped dispatcher will never run.
TEST_F(RedisClientTest, DestroyedAfterTheDispatcherStoppedReturnsAtOnce) {
  Connect();
  client_->Shutdown();
  dispatcher_->Stop();
  const auto start = std::chrono::steady_clock::now();
  client_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

TEST_F(RedisClientTest, ConnectingAfterTheDispatcherStoppedFailsAtOnce) {
  auto settings = ClientSettings::Parse({{"redisHost", server_->address()}});
  ASSERT_TRUE(settings.ok());
  client_ = *Client::Create(*settings, dispatcher_.get(), &health_, "state/test");
  dispatcher_->Stop();
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = client_->Connect();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(std::string(status.message()).find("loop has stopped"), std::string::npos) << status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

// A sender waits for its own reply only while Redis answers fast. Against a slow one (every reply
// takes 3 ms here) Command() soon returns at once and the loop reads, instead of holding the
// calling thread (a gRPC thread, in the sidecar) for its whole 1 ms budget each time.
TEST(RedisClientSlowServerTest, ASlowServerIsNotWaitedForOnTheCallersThread) {
  auto server = RedisServer::Start({true, {"--enable-debug-command", "yes"}});
  ASSERT_TRUE(server.ok()) << server.status();
  auto dispatcher = *Dispatcher::Create("redis-slow");
  dispatcher->Start();
  HealthIndicator health;
  {
    auto settings = ClientSettings::Parse({{"redisHost", (*server)->address()}});
    auto client = *Client::Create(*settings, dispatcher.get(), &health, "state/slow");
    ASSERT_TRUE(client->Connect().ok());
    std::vector<std::chrono::nanoseconds> in_call;
    for (int i = 0; i < 40; ++i) {
      std::promise<absl::StatusOr<Reply>> promise;
      const auto start = std::chrono::steady_clock::now();
      client->Command({"DEBUG", "SLEEP", "0.003"},
                      [&promise](absl::StatusOr<Reply> reply) { promise.set_value(reply); });
      in_call.push_back(std::chrono::steady_clock::now() - start);
      auto reply = promise.get_future().get();
      ASSERT_TRUE(reply.ok()) << reply.status();
    }
    // Once the average round trip is known, no call waits. (On a quiet machine the first calls
    // wait out the 1 ms budget; under `make test`'s load the connection's handshake may already
    // have set a slow average, so the test does not require that.)
    std::vector<std::chrono::nanoseconds> last(in_call.end() - 10, in_call.end());
    std::sort(last.begin(), last.end());
    EXPECT_LT(last[5], std::chrono::microseconds(500));
  }
  dispatcher->Stop();
}

TEST(RedisClientAuthTest, AuthenticatesAndSelectsTheDatabase) {
  auto server = RedisServer::Start({true, {"--requirepass", "s3cret"}});
  ASSERT_TRUE(server.ok()) << server.status();
  auto dispatcher = *Dispatcher::Create("redis-auth");
  dispatcher->Start();
  HealthIndicator health;
  {
    auto settings = ClientSettings::Parse(
        {{"redisHost", (*server)->address()}, {"redisPassword", "s3cret"}, {"redisDB", "2"}});
    auto client = *Client::Create(*settings, dispatcher.get(), &health, "state/auth");
    ASSERT_TRUE(client->Connect().ok());
    std::promise<absl::StatusOr<Reply>> promise;
    client->Command({"SET", "in-db-2", "yes"},
                    [&promise](absl::StatusOr<Reply> reply) { promise.set_value(reply); });
    ASSERT_TRUE(promise.get_future().get().ok());
    EXPECT_EQ((*server)->Cli({"-n", "2", "GET", "in-db-2"}), "yes");
  }
  {
    auto settings = ClientSettings::Parse({{"redisHost", (*server)->address()},
                                           {"redisPassword", "wrong"},
                                           {"dialTimeout", "300ms"}});
    auto client = *Client::Create(*settings, dispatcher.get(), &health, "state/auth");
    absl::Status status = client->Connect();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(health.state(), HealthState::kDown);
  }
  dispatcher->Stop();
}

}  // namespace
}  // namespace ottava::components::redis
