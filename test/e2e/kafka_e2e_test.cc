// End-to-end over Kafka: the real `ottava` binary with `pub_subs.kafka`, librdkafka's mock cluster
// (the kafka_mock helper, with faults injected through its stdin) and an app subscriber (TestApp).
// The checks are the ones a user of at-least-once delivery cares about: every acknowledged
// Publish reaches the app, poison goes to the dead-letter topic once, and a retried event is
// never skipped by a commit.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/kafka_cluster.h"
#include "test/support/process.h"
#include "test/support/runtime_calls.h"
#include "test/support/test_app.h"

namespace ottava::test {
namespace {

namespace v1 = spec::proto::runtime::v1;
using grpc::StatusCode;

constexpr auto kLong = std::chrono::seconds(60);

class KafkaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = KafkaCluster::Start(
        3, {{"events", 4}, {"poison", 1}, {"poison-dlq", 1}, {"retry", 1}, {"interop", 1}});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    app_ = std::make_unique<TestApp>(std::vector<v1::TopicSubscription>{});
  }
  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  // A config with the Kafka pub/sub "pubsub" and the given subscriptions, delivering to app_.
  nlohmann::json Config(nlohmann::json subscriptions, const nlohmann::json& extra_metadata = {}) {
    nlohmann::json config = InMemoryConfig("kafka-e2e");
    config["app"]["callback"] = {{"address", "127.0.0.1:" + std::to_string(app_->port())},
                                 {"timeout_ms", 2000}};
    // sessionTimeout: the mock cluster (librdkafka 2.0.2) holds a rejoining group until the
    // session of the member that left has expired.
    nlohmann::json metadata = {{"brokers", cluster_->bootstrap()},
                               {"publishTimeout", "20s"},
                               {"sessionTimeout", "6s"},
                               {"heartbeatInterval", "1s"},
                               {"kafka.linger.ms", "1"}};
    for (const auto& [key, value] : extra_metadata.items()) {
      metadata[key] = value;
    }
    config["components"]["pub_subs"]["pubsub"] = {{"type", "kafka"}, {"metadata", metadata}};
    config["subscriptions"] = std::move(subscriptions);
    return config;
  }

  void StartSidecar(const nlohmann::json& config) {
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    stub_ = NewRuntimeStub(sidecar_->grpc_address());
  }

  grpc::Status Publish(v1::Runtime::Stub& stub, const std::string& topic, const std::string& data) {
    v1::PublishEventRequest request;
    request.set_pubsub_name("pubsub");
    request.set_topic(topic);
    request.set_data(data);
    google::protobuf::Empty empty;
    return stub.PublishEvent(CallContext(std::chrono::seconds(30)).get(), request, &empty);
  }

  // How many deliveries of `data` on `topic` the app has seen.
  int Count(const std::string& topic, const std::string& data) {
    int count = 0;
    for (const auto& event : app_->Events()) {
      count += event.topic() == topic && event.data() == data ? 1 : 0;
    }
    return count;
  }

  std::unique_ptr<KafkaCluster> cluster_;
  std::unique_ptr<TestApp> app_;
  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<v1::Runtime::Stub> stub_;
};

// 10,000 events from 8 publishers while the mock fails three Produce requests (not leader, timed
// out, a dropped connection) and a broker goes down and comes back mid-stream. Every Publish that
// returned OK reaches the app; a Publish that failed is retried by its publisher, as an app
// would.
TEST_F(KafkaE2eTest, NothingAcknowledgedIsLostThroughProduceErrorsAndABrokerOutage) {
  StartSidecar(Config(nlohmann::json::array(
      {{{"pubsub_name", "pubsub"}, {"topic", "events"}, {"concurrency", 16}}})));
  ASSERT_TRUE(cluster_->Command("error Produce NOT_LEADER_FOR_PARTITION 1").ok());
  ASSERT_TRUE(cluster_->Command("error Produce REQUEST_TIMED_OUT 1").ok());
  ASSERT_TRUE(cluster_->Command("error Produce _TRANSPORT 1").ok());

  constexpr int kPublishers = 8;
  constexpr int kPerPublisher = 1250;
  std::atomic<int> acknowledged{0};
  std::atomic<int> failures{0};
  std::atomic<bool> gave_up{false};
  std::atomic<bool> stop{false};
  absl::Mutex last_failure_mutex;
  std::string last_failure;  // of a publisher that gave up
  std::vector<std::thread> publishers;
  // Joins the publishers however the test ends (an ASSERT returning early included).
  struct Joiner {
    std::vector<std::thread>& threads;
    std::atomic<bool>& stop;
    ~Joiner() {
      stop = true;
      for (auto& thread : threads) {
        if (thread.joinable()) {
          thread.join();
        }
      }
    }
  } joiner{publishers, stop};
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      auto stub = NewRuntimeStub(sidecar_->grpc_address());
      for (int i = 0; i < kPerPublisher && !stop; ++i) {
        const std::string data = "e" + std::to_string(p * kPerPublisher + i);
        int attempts = 0;
        for (grpc::Status status = Publish(*stub, "events", data); !status.ok();
             status = Publish(*stub, "events", data)) {
          ++failures;
          if (++attempts == 20 || stop) {
            absl::MutexLock lock(&last_failure_mutex);
            last_failure = std::to_string(status.error_code()) + " " + status.error_message();
            gave_up = true;
            return;
          }
        }
        ++acknowledged;
      }
    });
  }
  // A broker down and up while the stream runs. Publishes to the partitions it leads wait for it
  // (replication factor 1), so the stream runs against the outage for a bounded while only.
  ASSERT_TRUE(WaitFor([&] { return acknowledged.load() >= 3000; }, kLong));
  ASSERT_TRUE(cluster_->Command("down 1").ok());
  const int at_outage = acknowledged.load();
  WaitFor([&] { return acknowledged.load() >= at_outage + 500 || gave_up; },
          std::chrono::seconds(3));
  ASSERT_TRUE(cluster_->Command("up 1").ok());
  for (auto& publisher : publishers) {
    publisher.join();
  }
  {
    absl::MutexLock lock(&last_failure_mutex);
    ASSERT_FALSE(gave_up) << "a publisher failed 20 times in a row, last: " << last_failure
                          << "\nsidecar log:\n"
                          << sidecar_->Stderr();
  }
  ASSERT_EQ(acknowledged.load(), kPublishers * kPerPublisher);

  auto missing = [&] {
    std::set<std::string> seen;
    for (const auto& event : app_->Events()) {
      seen.insert(event.data());
    }
    int lost = 0;
    for (int i = 0; i < kPublishers * kPerPublisher; ++i) {
      lost += seen.contains("e" + std::to_string(i)) ? 0 : 1;
    }
    return lost;
  };
  EXPECT_TRUE(WaitFor([&] { return missing() == 0; }, kLong)) << missing() << " events lost";
  const int deliveries = static_cast<int>(app_->Events().size());
  std::cout << "[kafka e2e] " << acknowledged << " acknowledged, " << failures
            << " publish failures retried, " << deliveries - kPublishers * kPerPublisher
            << " duplicate deliveries" << std::endl;
}

// A poison event (the app always fails it) goes to the dead-letter topic exactly once, and its
// offset is committed afterwards: a restarted sidecar does not replay it.
TEST_F(KafkaE2eTest, PoisonGoesToTheDeadLetterTopicOnceAndIsNotReplayedAfterARestart) {
  const nlohmann::json subscriptions =
      nlohmann::json::array({{{"pubsub_name", "pubsub"},
                              {"topic", "poison"},
                              {"dead_letter_topic", "poison-dlq"},
                              {"max_retries", 2},
                              {"retry_initial_ms", 10},
                              {"retry_max_ms", 50}},
                             {{"pubsub_name", "pubsub"}, {"topic", "poison-dlq"}}});
  app_->SetPolicy([](const v1::TopicEventRequest& event, int) {
    TestApp::Reply reply;
    if (event.data() == "bad" && event.topic() == "poison") {
      reply.status = grpc::Status(StatusCode::INTERNAL, "cannot handle this");
    }
    return reply;
  });
  StartSidecar(Config(subscriptions));
  ASSERT_TRUE(Publish(*stub_, "poison", "bad").ok());
  ASSERT_TRUE(Publish(*stub_, "poison", "good-1").ok());
  ASSERT_TRUE(WaitFor([&] { return Count("poison", "good-1") == 1; }, kLong));
  ASSERT_TRUE(WaitFor([&] { return Count("poison-dlq", "bad") == 1; }, kLong));
  EXPECT_EQ(Count("poison", "bad"), 3) << "one delivery and max_retries=2 redeliveries";
  // The app can read the dead-letter copy before the sidecar has handled the broker's delivery
  // report for it (which acks the source event). A stop inside that window redelivers the poison
  // after the restart (at-least-once, known gap: the drain does not wait for in-flight
  // dead-letter publishes); give the report time to land so this checks the committed case.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  ASSERT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
  StartSidecar(Config(subscriptions));
  ASSERT_TRUE(Publish(*stub_, "poison", "good-2").ok());
  ASSERT_TRUE(WaitFor([&] { return Count("poison", "good-2") == 1; }, kLong));
  EXPECT_EQ(Count("poison", "bad"), 3) << "the poison event was replayed after the restart";
  EXPECT_EQ(Count("poison-dlq", "bad"), 1) << "dead-lettered more than once";
  EXPECT_EQ(Count("poison", "good-1"), 1);
}

// With concurrency 4 later events of the partition are delivered and acked while the first one
// is being retried. A graceful stop commits what is acked, which must stop short of the retried
// event: after a restart it is delivered again (and succeeds).
TEST_F(KafkaE2eTest, ARetryingEventIsNotSkippedByTheCommit) {
  const nlohmann::json subscriptions = nlohmann::json::array({{{"pubsub_name", "pubsub"},
                                                               {"topic", "retry"},
                                                               {"concurrency", 4},
                                                               {"retry_initial_ms", 20},
                                                               {"retry_max_ms", 100}}});
  std::atomic<bool> accept_stuck{false};
  app_->SetPolicy([&accept_stuck](const v1::TopicEventRequest& event, int) {
    TestApp::Reply reply;
    if (event.data() == "stuck" && !accept_stuck) {
      reply.verdict = v1::TopicEventResponse::RETRY;
    }
    return reply;
  });
  StartSidecar(Config(subscriptions, {{"kafka.auto.commit.interval.ms", "100"}}));
  ASSERT_TRUE(Publish(*stub_, "retry", "stuck").ok());
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(Publish(*stub_, "retry", "after-" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return Count("retry", "after-5") >= 1; }, kLong));
  ASSERT_TRUE(WaitFor([&] { return Count("retry", "stuck") >= 3; }, kLong));
  ASSERT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();

  const int before = Count("retry", "stuck");
  accept_stuck = true;
  StartSidecar(Config(subscriptions));
  EXPECT_TRUE(WaitFor([&] { return Count("retry", "stuck") > before; }, kLong))
      << "the retried event was committed past and never came back";
}

// The subscriber's sidecar is SIGKILLed mid-stream and restarted: every event still arrives
// (what it had not committed is redelivered).
TEST_F(KafkaE2eTest, NothingIsLostWhenTheSidecarIsKilledMidStream) {
  const nlohmann::json subscriptions =
      nlohmann::json::array({{{"pubsub_name", "pubsub"}, {"topic", "events"}}});
  StartSidecar(Config(subscriptions, {{"kafka.auto.commit.interval.ms", "200"}}));
  constexpr int kCount = 2000;
  for (int i = 0; i < kCount / 2; ++i) {
    ASSERT_TRUE(Publish(*stub_, "events", "k" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return app_->Events().size() >= 300; }, kLong));
  ASSERT_EQ(sidecar_->Stop(SIGKILL), -SIGKILL);
  sidecar_.reset();
  StartSidecar(Config(subscriptions));
  for (int i = kCount / 2; i < kCount; ++i) {
    ASSERT_TRUE(Publish(*stub_, "events", "k" + std::to_string(i)).ok());
  }
  auto missing = [&] {
    std::set<std::string> seen;
    for (const auto& event : app_->Events()) {
      seen.insert(event.data());
    }
    int lost = 0;
    for (int i = 0; i < kCount; ++i) {
      lost += seen.contains("k" + std::to_string(i)) ? 0 : 1;
    }
    return lost;
  };
  EXPECT_TRUE(WaitFor([&] { return missing() == 0; }, kLong)) << missing() << " events lost";
  std::cout << "[kafka e2e] SIGKILL: " << app_->Events().size() - kCount << " duplicate deliveries"
            << std::endl;
}

// Two sidecars of one app share the consumer group; one is stopped and restarted while both
// consume. The partitions move to the survivor and back (cooperative rebalancing); every event
// arrives.
TEST_F(KafkaE2eTest, NothingIsLostWhenAGroupMemberLeavesAndComesBack) {
  const nlohmann::json config =
      Config(nlohmann::json::array({{{"pubsub_name", "pubsub"}, {"topic", "events"}}}),
             {{"kafka.auto.commit.interval.ms", "200"}});
  StartSidecar(config);
  auto second = Sidecar::Start(config);
  ASSERT_TRUE(second.ok()) << second.status();
  constexpr int kCount = 3000;
  int published = 0;
  auto publish_until = [&](int end) {
    for (; published < end; ++published) {
      ASSERT_TRUE(Publish(*stub_, "events", "g" + std::to_string(published)).ok());
    }
  };
  publish_until(kCount / 3);
  ASSERT_TRUE(WaitFor([&] { return app_->Events().size() >= 500; }, kLong));
  EXPECT_EQ((*second)->Stop(SIGTERM), 0) << (*second)->Stderr();
  publish_until(2 * kCount / 3);
  second = Sidecar::Start(config);
  ASSERT_TRUE(second.ok()) << second.status();
  publish_until(kCount);
  auto missing = [&] {
    std::set<std::string> seen;
    for (const auto& event : app_->Events()) {
      seen.insert(event.data());
    }
    int lost = 0;
    for (int i = 0; i < kCount; ++i) {
      lost += seen.contains("g" + std::to_string(i)) ? 0 : 1;
    }
    return lost;
  };
  EXPECT_TRUE(WaitFor([&] { return missing() == 0; }, kLong)) << missing() << " events lost";
  std::cout << "[kafka e2e] group member restart: " << app_->Events().size() - kCount
            << " duplicate deliveries" << std::endl;
  EXPECT_EQ((*second)->Stop(SIGTERM), 0) << (*second)->Stderr();
}

// kcat (Debian) against the same mock cluster: what Ottava publishes reads as a CloudEvents JSON
// envelope, and what kcat produces reaches the app.
TEST_F(KafkaE2eTest, KcatReadsOurCloudEventsAndItsEventsReachTheApp) {
  if (RunProcess({"/bin/sh", "-c", "command -v kcat"}).exit_code != 0) {
    GTEST_SKIP() << "kcat is not installed (scripts/setup.sh installs it)";
  }
  StartSidecar(Config(nlohmann::json::array({{{"pubsub_name", "pubsub"}, {"topic", "interop"}}})));
  ASSERT_TRUE(Publish(*stub_, "interop", "from-ottava").ok());
  RunResult read = RunProcess({"/usr/bin/kcat", "-b", cluster_->bootstrap(), "-C", "-t", "interop",
                               "-o", "beginning", "-c", "1", "-e", "-q"});
  ASSERT_EQ(read.exit_code, 0) << read.err;
  nlohmann::json event = nlohmann::json::parse(read.out, nullptr, false);
  ASSERT_FALSE(event.is_discarded()) << read.out;
  EXPECT_EQ(event["specversion"], "1.0");
  EXPECT_EQ(event["source"], "kafka-e2e");
  EXPECT_EQ(event["topic"], "interop");
  EXPECT_EQ(event["pubsubname"], "pubsub");
  EXPECT_EQ(event["data"], "from-ottava");

  RunResult produce = RunProcess(
      {"/bin/sh", "-c",
       "printf 'from-kcat' | kcat -P -b '" + cluster_->bootstrap() + "' -t interop -k customer-1"});
  ASSERT_EQ(produce.exit_code, 0) << produce.err;
  EXPECT_TRUE(WaitFor([&] { return Count("interop", "from-kcat") >= 1; }, kLong));
}

}  // namespace
}  // namespace ottava::test
