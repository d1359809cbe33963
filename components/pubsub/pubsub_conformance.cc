#include "components/pubsub/pubsub_conformance.h"

#include <gmock/gmock.h>

#include <atomic>
#include <future>
#include <random>
#include <set>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace ottava::components::pubsub::conformance {
namespace {

using conformance_support::WaitUntil;

// Brokers with consumer groups may take seconds to assign partitions (a real or mock Kafka
// waits 3 s before the first rebalance of a group).
constexpr auto kDelivery = std::chrono::seconds(30);

// What one subscription received; acks at once unless `fail` says the first attempt fails.
class Inbox {
 public:
  MessageHandler Handler(std::function<bool(const Message&)> fail = nullptr) {
    return [this, fail = std::move(fail)](const Message& message, std::function<void()> ack) {
      absl::MutexLock lock(&mu_);
      received_.push_back(message.data);
      if (fail && fail(message) && !failed_once_.contains(message.id)) {
        failed_once_.insert(message.id);
        return;  // not acked: the broker keeps it
      }
      ack();
    };
  }
  std::vector<std::string> Received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  size_t Count() {
    absl::MutexLock lock(&mu_);
    return received_.size();
  }
  bool Has(const std::string& data) {
    absl::MutexLock lock(&mu_);
    return std::find(received_.begin(), received_.end(), data) != received_.end();
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> received_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> failed_once_ ABSL_GUARDED_BY(mu_);
};

SubscribeRequest Request(const std::string& topic, const std::string& group) {
  SubscribeRequest request;
  request.topic = topic;
  request.consumer_group = group;
  request.max_in_flight = 1;
  return request;
}

// First deliveries, in arrival order, without redeliveries.
std::vector<std::string> FirstDeliveries(const std::vector<std::string>& received) {
  std::vector<std::string> first;
  std::set<std::string> seen;
  for (const std::string& data : received) {
    if (seen.insert(data).second) {
      first.push_back(data);
    }
  }
  return first;
}

}  // namespace

void PubSubConformanceTest::SetUp() {
  harness_ = GetParam().make();
  ASSERT_NE(harness_, nullptr);
  std::random_device random;
  prefix_ = "conf-" + std::to_string(random() % 1000000) + "-";
}

absl::Status PublishAndWait(PubSub& pubsub,
                            const std::string& topic,
                            const std::string& data,
                            const Metadata& metadata) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  PublishRequest request;
  request.topic = topic;
  request.data = data;
  request.content_type = "text/plain";
  request.metadata = metadata;
  pubsub.Publish(std::move(request), [done](absl::Status status) { done->set_value(status); });
  auto future = done->get_future();
  if (future.wait_for(kDelivery) != std::future_status::ready) {
    return absl::DeadlineExceededError("publish did not complete");
  }
  return future.get();
}

// §4.2: subscribe, publish N messages with a per-run prefix; all arrive, first deliveries in
// publish order.
TEST_P(PubSubConformanceTest, EveryPublishedMessageArrivesInOrder) {
  Inbox inbox;
  const std::string topic = Unique("orders");
  ASSERT_TRUE(pubsub().Subscribe(Request(topic, Unique("g")), inbox.Handler()).ok());
  constexpr int kCount = 10;
  std::vector<std::string> sent;
  for (int i = 0; i < kCount; ++i) {
    sent.push_back(prefix_ + std::to_string(i));
    ASSERT_TRUE(PublishAndWait(pubsub(), topic, sent.back()).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return inbox.Count() >= kCount; }, kDelivery));
  EXPECT_EQ(FirstDeliveries(inbox.Received()), sent);
}

// §4.2: the handler fails (never acks) the first attempt of some messages; the others all arrive
// meanwhile (redeliveries of the failed ones are tolerated, not required).
TEST_P(PubSubConformanceTest, HandlerFailuresDoNotHoldBackOtherMessages) {
  Inbox inbox;
  const std::string topic = Unique("failing");
  auto fail = [](const Message& message) {
    return message.data.ends_with("-0") || message.data.ends_with("-5");
  };
  SubscribeRequest request = Request(topic, Unique("g"));
  request.max_in_flight = 10;
  ASSERT_TRUE(pubsub().Subscribe(request, inbox.Handler(fail)).ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(PublishAndWait(pubsub(), topic, prefix_ + "-" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return inbox.Count() >= 10; }, kDelivery));
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(inbox.Has(prefix_ + "-" + std::to_string(i))) << i;
  }
}

// §4.2 multiple handlers: two subscriptions on two topics, interleaved publishes; each gets
// exactly its own topic's messages.
TEST_P(PubSubConformanceTest, EachSubscriptionGetsOnlyItsTopic) {
  Inbox a;
  Inbox b;
  const std::string topic_a = Unique("a");
  const std::string topic_b = Unique("b");
  ASSERT_TRUE(pubsub().Subscribe(Request(topic_a, Unique("g")), a.Handler()).ok());
  ASSERT_TRUE(pubsub().Subscribe(Request(topic_b, Unique("g")), b.Handler()).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(PublishAndWait(pubsub(), topic_a, "a" + std::to_string(i)).ok());
    ASSERT_TRUE(PublishAndWait(pubsub(), topic_b, "b" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return a.Count() >= 5 && b.Count() >= 5; }, kDelivery));
  for (const std::string& data : a.Received()) {
    EXPECT_EQ(data[0], 'a') << data;
  }
  for (const std::string& data : b.Received()) {
    EXPECT_EQ(data[0], 'b') << data;
  }
  EXPECT_EQ(FirstDeliveries(a.Received()).size(), 5u);
  EXPECT_EQ(FirstDeliveries(b.Received()).size(), 5u);
}

// §4.2 stop subscribers: cancelling one subscription does not disturb another.
TEST_P(PubSubConformanceTest, UnsubscribingOneLeavesTheOthersRunning) {
  Inbox first;
  Inbox second;
  const std::string topic_1 = Unique("one");
  const std::string topic_2 = Unique("two");
  auto id = pubsub().Subscribe(Request(topic_1, Unique("g")), first.Handler());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(pubsub().Subscribe(Request(topic_2, Unique("g")), second.Handler()).ok());
  ASSERT_TRUE(PublishAndWait(pubsub(), topic_1, "before").ok());
  ASSERT_TRUE(WaitUntil([&] { return first.Has("before"); }, kDelivery));
  pubsub().Unsubscribe(*id);
  const size_t first_count = first.Count();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(PublishAndWait(pubsub(), topic_2, "t2-" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return second.Count() >= 5; }, kDelivery));
  EXPECT_EQ(first.Count(), first_count) << "the handler ran after Unsubscribe returned";
}

// Consumer groups: each group gets every message.
TEST_P(PubSubConformanceTest, EveryGroupGetsEveryMessage) {
  Inbox one;
  Inbox two;
  const std::string topic = Unique("fanout");
  ASSERT_TRUE(pubsub().Subscribe(Request(topic, Unique("g1")), one.Handler()).ok());
  ASSERT_TRUE(pubsub().Subscribe(Request(topic, Unique("g2")), two.Handler()).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(PublishAndWait(pubsub(), topic, "f" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return one.Count() >= 5 && two.Count() >= 5; }, kDelivery));
  EXPECT_EQ(FirstDeliveries(one.Received()), FirstDeliveries(two.Received()));
}

TEST_P(PubSubConformanceTest, RejectsBadRequests) {
  absl::Status no_topic = PublishAndWait(pubsub(), "", "x");
  EXPECT_EQ(no_topic.code(), absl::StatusCode::kInvalidArgument) << no_topic;
  Inbox inbox;
  SubscribeRequest zero = Request(Unique("t"), Unique("g"));
  zero.max_in_flight = 0;
  EXPECT_EQ(pubsub().Subscribe(zero, inbox.Handler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pubsub().Subscribe(Request("", Unique("g")), inbox.Handler()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace ottava::components::pubsub::conformance
