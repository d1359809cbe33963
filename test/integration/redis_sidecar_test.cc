// Integration: the real `ottava` binary on a real redis-server, driven over gRPC like an app.
// Covers the sharp edges of issue "Redis components": etag races, first-write races, atomic
// transactions, lock exclusion, an outage in the middle of a write storm, two sidecars sharing
// one Redis, and at-least-once pub/sub across a sidecar crash.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"
#include "test/support/runtime_calls.h"
#include "test/support/test_app.h"

namespace ottava::test {
namespace {

namespace v1 = spec::proto::runtime::v1;
using grpc::StatusCode;

nlohmann::json RedisConfig(const RedisServer& redis, const std::string& app_id = "redis-app") {
  nlohmann::json md = {{"redisHost", redis.address()}, {"timeout", "1s"}, {"dialTimeout", "2s"}};
  nlohmann::json pubsub_md = md;
  pubsub_md["processingTimeout"] = "1s";
  pubsub_md["redeliverInterval"] = "200ms";
  return nlohmann::json{
      {"app", {{"id", app_id}}},
      {"grpc", {{"address", "127.0.0.1:0"}}},
      {"actuator", {{"address", "127.0.0.1:0"}}},
      {"dapr", {{"http_address", "127.0.0.1:0"}}},
      {"shutdown", {{"drain_seconds", 2}}},
      {"components",
       {{"state", {{"state", {{"type", "redis"}, {"metadata", md}}}}},
        {"lock", {{"lock", {{"type", "redis"}, {"metadata", md}}}}},
        {"sequencer", {{"sequencer", {{"type", "redis"}, {"metadata", md}}}}},
        {"config_store", {{"config", {{"type", "redis"}, {"metadata", md}}}}},
        {"pub_subs", {{"pubsub", {{"type", "redis"}, {"metadata", pubsub_md}}}}}}}};
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  return CallContext();
}

class RedisSidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
  }

  std::unique_ptr<Sidecar> StartSidecar(const nlohmann::json& config) {
    auto sidecar = Sidecar::Start(config);
    EXPECT_TRUE(sidecar.ok()) << sidecar.status();
    return sidecar.ok() ? std::move(*sidecar) : nullptr;
  }

  static std::unique_ptr<v1::Runtime::Stub> Stub(const Sidecar& sidecar) {
    return NewRuntimeStub(sidecar.grpc_address());
  }

  static grpc::Status Save(
      v1::Runtime::Stub& stub,
      const std::string& key,
      const std::string& value,
      const std::string& etag = "",
      v1::StateOptions::StateConcurrency concurrency = v1::StateOptions::CONCURRENCY_UNSPECIFIED,
      std::chrono::milliseconds deadline = std::chrono::milliseconds(5000)) {
    return SaveState(stub, key, value, etag, concurrency, {}, deadline);
  }

  static grpc::Status Get(v1::Runtime::Stub& stub,
                          const std::string& key,
                          v1::GetStateResponse* response) {
    return GetState(stub, key, response);
  }

  std::unique_ptr<RedisServer> redis_;
};

TEST_F(RedisSidecarTest, EtagGuardedIncrementsFromEightClientsLoseNothing) {
  auto sidecar = StartSidecar(RedisConfig(*redis_));
  ASSERT_TRUE(sidecar);
  ASSERT_TRUE(Save(*Stub(*sidecar), "counter", "0").ok());
  constexpr int kClients = 8;
  constexpr int kIncrements = 1000;
  std::atomic<int> mismatches{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      auto stub = Stub(*sidecar);
      for (int i = 0; i < kIncrements;) {
        v1::GetStateResponse got;
        if (!Get(*stub, "counter", &got).ok()) {
          ++errors;
          continue;
        }
        const int value = std::stoi(got.data());
        grpc::Status status = Save(*stub, "counter", std::to_string(value + 1), got.etag());
        if (status.ok()) {
          ++i;
        } else if (status.error_code() == StatusCode::ABORTED) {
          ++mismatches;
        } else {
          ++errors;
        }
      }
    });
  }
  for (auto& t : clients) {
    t.join();
  }
  v1::GetStateResponse final_value;
  ASSERT_TRUE(Get(*Stub(*sidecar), "counter", &final_value).ok());
  EXPECT_EQ(final_value.data(), std::to_string(kClients * kIncrements));
  EXPECT_GT(mismatches.load(), 0) << "the race was never exercised";
  EXPECT_EQ(errors.load(), 0);
  RecordProperty("etag_mismatches", mismatches.load());
  // The layout is Dapr's: a hash with data and version.
  EXPECT_EQ(redis_->Cli({"HGET", "redis-app||counter", "data"}), "8000");
  EXPECT_EQ(sidecar->Stop(SIGTERM), 0);
}

TEST_F(RedisSidecarTest, FirstWriteRacesHaveExactlyOneWinnerPerKey) {
  auto sidecar = StartSidecar(RedisConfig(*redis_));
  ASSERT_TRUE(sidecar);
  constexpr int kCreators = 16;
  constexpr int kKeys = 100;
  std::vector<std::atomic<int>> winners(kKeys);
  std::atomic<int> unexpected{0};
  std::vector<std::thread> creators;
  for (int c = 0; c < kCreators; ++c) {
    creators.emplace_back([&, c] {
      auto stub = Stub(*sidecar);
      for (int k = 0; k < kKeys; ++k) {
        grpc::Status status = Save(*stub, "new-" + std::to_string(k), "by-" + std::to_string(c), "",
                                   v1::StateOptions::CONCURRENCY_FIRST_WRITE);
        if (status.ok()) {
          ++winners[k];
        } else if (status.error_code() != StatusCode::ABORTED) {
          ++unexpected;
        }
      }
    });
  }
  for (auto& t : creators) {
    t.join();
  }
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(winners[k].load(), 1) << "key " << k;
  }
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(sidecar->Stop(SIGTERM), 0);
}

TEST_F(RedisSidecarTest, TransactionWithOneStaleEtagAppliesNothing) {
  auto sidecar = StartSidecar(RedisConfig(*redis_));
  ASSERT_TRUE(sidecar);
  auto stub = Stub(*sidecar);
  ASSERT_TRUE(Save(*stub, "a", "1").ok());
  ASSERT_TRUE(Save(*stub, "b", "1").ok());
  ASSERT_TRUE(Save(*stub, "c", "1").ok());
  v1::GetStateResponse b;
  ASSERT_TRUE(Get(*stub, "b", &b).ok());
  ASSERT_TRUE(Save(*stub, "b", "2").ok());  // makes b's etag stale
  auto snapshot = [this] {
    std::string out;
    for (const char* key : {"redis-app||a", "redis-app||b", "redis-app||c", "redis-app||d"}) {
      out += redis_->Cli({"HGETALL", key}) + "|" + redis_->Cli({"PTTL", key}) + "\n";
    }
    return out + redis_->Cli({"DBSIZE"});
  };
  const std::string before = snapshot();

  v1::ExecuteStateTransactionRequest tx;
  tx.set_storename("state");
  auto add = [&tx](const char* type, const char* key, const char* value, std::string etag,
                   bool ttl) {
    auto* op = tx.add_operations();
    op->set_operationtype(type);
    op->mutable_request()->set_key(key);
    op->mutable_request()->set_value(value);
    if (!etag.empty()) {
      op->mutable_request()->mutable_etag()->set_value(etag);
    }
    if (ttl) {
      (*op->mutable_request()->mutable_metadata())["ttlInSeconds"] = "100";
    }
  };
  add("upsert", "a", "9", "", true);
  add("delete", "c", "", "", false);
  add("upsert", "d", "new", "", true);
  add("upsert", "b", "9", b.etag(), false);  // stale
  add("upsert", "a", "10", "", false);
  google::protobuf::Empty empty;
  EXPECT_EQ(stub->ExecuteStateTransaction(Ctx().get(), tx, &empty).error_code(),
            StatusCode::ABORTED);
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(sidecar->Stop(SIGTERM), 0);
}

TEST_F(RedisSidecarTest, SixteenLockersNeverOverlap) {
  auto sidecar = StartSidecar(RedisConfig(*redis_));
  ASSERT_TRUE(sidecar);
  constexpr int kLockers = 16;
  constexpr int kRounds = 500;
  std::atomic<int> holders{0};
  std::atomic<int> double_grants{0};
  std::atomic<int> acquired{0};
  std::atomic<int> refused{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> lockers;
  for (int l = 0; l < kLockers; ++l) {
    lockers.emplace_back([&, l] {
      auto stub = Stub(*sidecar);
      const std::string owner = "owner-" + std::to_string(l);
      for (int r = 0; r < kRounds; ++r) {
        v1::TryLockRequest request;
        request.set_store_name("lock");
        request.set_resource_id("hot");
        request.set_lock_owner(owner);
        request.set_expire(30);
        v1::TryLockResponse response;
        if (!stub->TryLock(Ctx().get(), request, &response).ok()) {
          ++errors;
          continue;
        }
        if (!response.success()) {
          ++refused;
          continue;
        }
        ++acquired;
        if (holders.fetch_add(1) != 0) {
          ++double_grants;
        }
        holders.fetch_sub(1);
        v1::UnlockRequest unlock;
        unlock.set_store_name("lock");
        unlock.set_resource_id("hot");
        unlock.set_lock_owner(owner);
        v1::UnlockResponse unlocked;
        if (!stub->Unlock(Ctx().get(), unlock, &unlocked).ok() ||
            unlocked.status() != v1::UnlockResponse::SUCCESS) {
          ++errors;
        }
      }
    });
  }
  for (auto& t : lockers) {
    t.join();
  }
  EXPECT_EQ(double_grants.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(acquired.load(), 0);
  EXPECT_GT(refused.load(), 0) << "the lockers never contended";
  RecordProperty("locks_acquired", acquired.load());
  RecordProperty("locks_refused", refused.load());
  EXPECT_EQ(sidecar->Stop(SIGTERM), 0);
}

TEST_F(RedisSidecarTest, RedisKilledDuringAWriteStormLosesNoAcknowledgedWrite) {
  auto sidecar = StartSidecar(RedisConfig(*redis_));
  ASSERT_TRUE(sidecar);
  constexpr int kWriters = 4;
  constexpr int kPerWriter = 2500;
  constexpr auto kDeadline = std::chrono::milliseconds(2000);
  absl::Mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<int> attempted{0};
  std::atomic<int> failed_unavailable{0};
  std::atomic<int> failed_other{0};
  std::atomic<int> late_failures{0};
  std::atomic<int64_t> last_success_ms{0};
  const auto t0 = std::chrono::steady_clock::now();
  auto since_start = [&t0] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0)
        .count();
  };
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto stub = Stub(*sidecar);
      for (int i = 0; i < kPerWriter; ++i) {
        const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
        ++attempted;
        auto start = std::chrono::steady_clock::now();
        grpc::Status status = Save(*stub, key, "value-" + key, "",
                                   v1::StateOptions::CONCURRENCY_UNSPECIFIED, kDeadline);
        auto took = std::chrono::steady_clock::now() - start;
        if (status.ok()) {
          absl::MutexLock lock(&mu);
          acknowledged.push_back(key);
          last_success_ms = since_start();
        } else {
          if (status.error_code() == StatusCode::UNAVAILABLE) {
            ++failed_unavailable;
          } else {
            ++failed_other;
          }
          if (took > kDeadline + std::chrono::milliseconds(500)) {
            ++late_failures;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      }
    });
  }
  // Kill Redis once a good share of the writes went through, bring it back a second later.
  ASSERT_TRUE(WaitFor([&] { return attempted.load() > 3000; }, std::chrono::seconds(60)));
  redis_->Kill();
  const int64_t killed_at = since_start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ASSERT_TRUE(redis_->Restart().ok());
  const int64_t restarted_at = since_start();
  for (auto& t : writers) {
    t.join();
  }
  RecordProperty("acknowledged", static_cast<int>(acknowledged.size()));
  RecordProperty("unavailable", failed_unavailable.load());
  EXPECT_GT(failed_unavailable.load(), 0) << "the outage was never observed";
  EXPECT_EQ(failed_other.load(), 0);
  EXPECT_EQ(late_failures.load(), 0) << "a call outlived its deadline";
  EXPECT_GT(last_success_ms.load(), restarted_at) << "Ottava never served again";
  (void)killed_at;

  // Served again within 5 s of Redis returning, without a restart of Ottava.
  auto stub = Stub(*sidecar);
  ASSERT_TRUE(WaitFor([&] { return Save(*stub, "probe", "x").ok(); }, std::chrono::seconds(5)));
  // Every acknowledged write is readable.
  int missing = 0;
  for (const auto& key : acknowledged) {
    v1::GetStateResponse got;
    if (!Get(*stub, key, &got).ok() || got.data() != "value-" + key) {
      ++missing;
    }
  }
  EXPECT_EQ(missing, 0) << "of " << acknowledged.size() << " acknowledged writes";
  EXPECT_EQ(sidecar->Stop(SIGTERM), 0);
}

TEST_F(RedisSidecarTest, ReadinessFollowsRedisWhileLivenessStaysUp) {
  auto sidecar = StartSidecar(RedisConfig(*redis_));
  ASSERT_TRUE(sidecar);
  httplib::Client http(sidecar->actuator_address());
  auto status_of = [&http](const char* path) {
    auto res = http.Get(path);
    return res ? res->status : -1;
  };
  EXPECT_EQ(status_of("/actuator/health/readiness"), 200);
  redis_->Kill();
  ASSERT_TRUE(WaitFor([&] { return status_of("/actuator/health/readiness") == 503; }));
  EXPECT_EQ(status_of("/actuator/health/liveness"), 200);
  auto body = nlohmann::json::parse(http.Get("/actuator/health/readiness")->body);
  EXPECT_EQ(body["components"]["state/state"]["status"], "DOWN");
  // The API answers UNAVAILABLE, fast.
  auto stub = Stub(*sidecar);
  v1::GetStateResponse got;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Get(*stub, "k", &got).error_code(), StatusCode::UNAVAILABLE);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  ASSERT_TRUE(redis_->Restart().ok());
  EXPECT_TRUE(WaitFor([&] { return status_of("/actuator/health/readiness") == 200; },
                      std::chrono::seconds(5)));
  EXPECT_EQ(sidecar->Stop(SIGTERM), 0);
}

// SIGTERM while a call waits on Redis: the sidecar drains. A call arriving in the drain window
// gets UNAVAILABLE at once, the waiting call still completes once Redis answers, and the process
// then exits 0. (Redis is stopped with SIGSTOP to hold the first call in flight.)
TEST_F(RedisSidecarTest, CallsArrivingWhileDrainingGetUnavailableAndInFlightOnesFinish) {
  nlohmann::json config = RedisConfig(*redis_);
  config["components"]["state"]["state"]["metadata"]["timeout"] = "10s";
  config["shutdown"]["drain_seconds"] = 10;
  auto sidecar = StartSidecar(config);
  ASSERT_TRUE(sidecar);
  auto stub = Stub(*sidecar);
  ASSERT_TRUE(Save(*stub, "held", "v").ok());

  redis_->Pause();
  std::promise<grpc::Status> held;
  std::thread waiting([&] {
    v1::GetStateResponse got;
    held.set_value(Get(*Stub(*sidecar), "held", &got));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the call is waiting on Redis
  ASSERT_EQ(kill(sidecar->pid(), SIGTERM), 0);

  // The drain window stays open while the held call waits.
  grpc::Status refused;
  EXPECT_TRUE(WaitFor([&] {
    v1::GetStateResponse got;
    refused = Get(*stub, "other", &got);
    return refused.error_code() == StatusCode::UNAVAILABLE;
  })) << refused.error_message();
  EXPECT_NE(refused.error_message().find("shutting down"), std::string::npos)
      << refused.error_message();

  redis_->Resume();
  auto held_status = held.get_future();
  ASSERT_EQ(held_status.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(held_status.get().ok());
  waiting.join();
  EXPECT_EQ(sidecar->Stop(SIGTERM, std::chrono::seconds(15)), 0) << sidecar->Stderr();
}

TEST_F(RedisSidecarTest, UnreachableRequiredRedisExitsOneNamingTheComponent) {
  nlohmann::json config = RedisConfig(*redis_);
  const uint16_t dead_port = FreePort();
  config["components"]["state"]["state"]["metadata"]["redisHost"] =
      "127.0.0.1:" + std::to_string(dead_port);
  config["components"]["state"]["state"]["metadata"]["dialTimeout"] = "300ms";
  const std::string dir = MakeTempDir();
  std::ofstream(dir + "/config.json") << config.dump();
  RunResult result = RunProcess({BinDir() + "/ottava", "--config", dir + "/config.json"});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("state/state"), std::string::npos) << result.err;
}

TEST_F(RedisSidecarTest, TwoSidecarsShareStateAndConfigurationChanges) {
  auto first = StartSidecar(RedisConfig(*redis_));
  auto second = StartSidecar(RedisConfig(*redis_));
  ASSERT_TRUE(first && second);
  auto one = Stub(*first);
  auto two = Stub(*second);
  ASSERT_TRUE(Save(*one, "shared", "from-one").ok());
  v1::GetStateResponse got;
  ASSERT_TRUE(Get(*two, "shared", &got).ok());
  EXPECT_EQ(got.data(), "from-one");

  grpc::ClientContext ctx;
  auto stream = two->SubscribeConfiguration(&ctx);
  v1::SubscribeConfigurationRequest subscribe;
  subscribe.set_store_name("config");
  subscribe.add_keys("feature");
  ASSERT_TRUE(stream->Write(subscribe));
  v1::SubscribeConfigurationResponse update;
  ASSERT_TRUE(SaveConfigUntilSeen(*one, "feature", "on", *stream, &update));
  ASSERT_EQ(update.items_size(), 1);
  EXPECT_EQ(update.items(0).key(), "feature");
  EXPECT_EQ(update.items(0).content(), "on");
  ctx.TryCancel();
  stream->Finish();
  EXPECT_EQ(first->Stop(SIGTERM), 0);
  EXPECT_EQ(second->Stop(SIGTERM), 0);
}

TEST_F(RedisSidecarTest, PubSubSurvivesASidecarCrashAndDeadLettersPoisonOnce) {
  int app_port = 0;
  {
    TestApp probe({});
    app_port = probe.port();
  }
  TestApp app({}, app_port);
  app.SetPolicy([](const v1::TopicEventRequest& event, int) {
    TestApp::Reply reply;
    if (event.data() == "poison") {
      reply.verdict = v1::TopicEventResponse::RETRY;
    }
    // A slow app, so a backlog is in flight and pending when the consumer sidecar dies.
    reply.delay = std::chrono::milliseconds(2);
    return reply;
  });
  nlohmann::json config = RedisConfig(*redis_, "consumer");
  config["app"]["callback"] = {{"address", "127.0.0.1:" + std::to_string(app_port)},
                               {"timeout_ms", 2000}};
  config["subscriptions"] = nlohmann::json::array({{{"pubsub_name", "pubsub"},
                                                    {"topic", "orders"},
                                                    {"dead_letter_topic", "orders-dlq"},
                                                    {"max_retries", 2},
                                                    {"concurrency", 16},
                                                    {"retry_initial_ms", 10},
                                                    {"retry_max_ms", 50}}});
  auto consumer = StartSidecar(config);
  ASSERT_TRUE(consumer);
  // A separate publishing sidecar, so killing the consumer never affects publishing.
  auto publisher = StartSidecar(RedisConfig(*redis_, "producer"));
  ASSERT_TRUE(publisher);
  auto stub = Stub(*publisher);
  constexpr int kEvents = 10000;
  auto publish = [&stub](const std::string& data) {
    v1::PublishEventRequest request;
    request.set_pubsub_name("pubsub");
    request.set_topic("orders");
    request.set_data(data);
    google::protobuf::Empty empty;
    return stub->PublishEvent(Ctx().get(), request, &empty);
  };
  ASSERT_TRUE(publish("poison").ok());
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_TRUE(publish("e" + std::to_string(i)).ok());
    if (i == kEvents / 2) {
      // Mid-stream: the consumer sidecar dies without a chance to ack what it holds.
      ASSERT_TRUE(WaitFor([&] { return app.Events().size() > 1000; }, std::chrono::seconds(30)));
      consumer->Stop(SIGKILL);
      consumer = StartSidecar(config);
      ASSERT_TRUE(consumer);
    }
  }
  auto unique_received = [&app] {
    std::set<std::string> seen;
    for (const auto& event : app.Events()) {
      if (event.topic() == "orders") {
        seen.insert(event.data());
      }
    }
    return seen;
  };
  ASSERT_TRUE(
      WaitFor([&] { return unique_received().size() >= kEvents + 1; }, std::chrono::seconds(60)))
      << "received " << unique_received().size();
  const auto seen = unique_received();
  int lost = 0;
  for (int i = 0; i < kEvents; ++i) {
    lost += seen.count("e" + std::to_string(i)) == 0 ? 1 : 0;
  }
  int deliveries = 0;
  for (const auto& event : app.Events()) {
    deliveries += event.topic() == "orders" && event.data() != "poison" ? 1 : 0;
  }
  const int duplicates = deliveries - kEvents;
  RecordProperty("lost", lost);
  RecordProperty("duplicates", duplicates);
  std::cout << "pubsub across a sidecar crash: " << kEvents << " events, " << lost << " lost, "
            << duplicates << " duplicate deliveries\n";
  EXPECT_EQ(lost, 0);
  // The poison event reaches the dead-letter stream exactly once.
  ASSERT_TRUE(WaitFor(
      [&] {
        return redis_->Cli({"XLEN", "orders-dlq"}) == "1";
      },
      std::chrono::seconds(20)))
      << redis_->Cli({"XLEN", "orders-dlq"});
  EXPECT_EQ(consumer->Stop(SIGTERM), 0);
  EXPECT_EQ(publisher->Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace ottava::test
