#pragma once

// The client side of the app's AppCallback service: asks which topics the app wants (retried with
// backoff until it answers) and delivers events with OnTopicEvent. Every call has a deadline, so an
// app that is down or hangs costs a delivery attempt, never an API thread.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/dispatcher.h"
#include "runtime/callback/app_channel.h"
#include "spec/proto/runtime/v1/appcallback.grpc.pb.h"

namespace ottava::runtime::callback {

class AppCallbackClient : public AppChannel,
                          public std::enable_shared_from_this<AppCallbackClient> {
 public:
  /// `target` is "host:port"; nothing connects until the first call.
  static std::shared_ptr<AppCallbackClient> Create(const std::string& target,
                                                   std::chrono::milliseconds call_timeout,
                                                   Dispatcher* dispatcher);

  /// Calls ListTopicSubscriptions until the app answers (backoff 100 ms doubling to 5 s), then
  /// runs `on_answer` once on the dispatcher thread. Stop() ends the retries.
  void ListSubscriptions(std::function<void(std::vector<AppSubscription>)> on_answer) override;

  /// EventSink: OnTopicEvent with the configured deadline.
  void Deliver(std::shared_ptr<const Event> event, std::function<void(Outcome)> done) override;
  /// Layotto's AppCallback has no bulk call: one OnTopicEvent per entry.
  void DeliverBulk(std::shared_ptr<const EventBatch> batch, BulkDone done) override {
    DeliverEach(*this, batch, std::move(done));
  }

  /// Layotto's AppCallback has no invocation method.
  bool CanInvoke() const override { return false; }
  void Invoke(components::rpc::RpcRequest request, components::rpc::RpcCallback done) override;
  bool DaprSemantics() const override { return false; }

  /// Ends pending retries of ListSubscriptions. Any thread.
  void Stop() override { stopped_ = true; }

 private:
  AppCallbackClient(std::shared_ptr<grpc::Channel> channel,
                    std::chrono::milliseconds call_timeout,
                    Dispatcher* dispatcher);

  void TryList(uint32_t attempt, std::function<void(std::vector<AppSubscription>)> on_answer);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<spec::proto::runtime::v1::AppCallback::Stub> stub_;
  std::chrono::milliseconds call_timeout_;
  Dispatcher* dispatcher_;
  Backoff list_backoff_{std::chrono::milliseconds(100), std::chrono::milliseconds(5000)};
  std::atomic<bool> stopped_{false};
};

/// Layotto's form of an event: the CloudEvent attributes in fields, its extensions and the message
/// metadata together in `metadata` (the message's win).
void ToTopicEventRequest(const Event& event, spec::proto::runtime::v1::TopicEventRequest* out);

/// Maps an OnTopicEvent result to a verdict (DESIGN.md §7): OK -> the reply's status (an unknown
/// status retries), UNIMPLEMENTED -> drop, any other error -> retry.
Outcome OutcomeOf(const grpc::Status& status,
                  const spec::proto::runtime::v1::TopicEventResponse& response);

}  // namespace ottava::runtime::callback
