#pragma once

// The sidecar's channel to its own application, whatever protocol the app speaks
// (`app.callback.protocol`): Layotto's AppCallback over gRPC, Dapr's AppCallback over gRPC, or
// Dapr's HTTP app contract. A channel asks the app for its subscriptions, delivers events (it is
// the EventSink of the app's subscriptions) and, when the protocol has it, invokes the app's
// methods. Everything here is protocol-neutral; each implementation converts to its wire form.

#include <functional>
#include <string>
#include <vector>

#include "components/component.h"
#include "components/rpc/rpc.h"
#include "runtime/callback/event_sink.h"
#include "runtime/callback/route_match.h"
#include "runtime/callback/subscription_options.h"

namespace ottava::runtime::callback {

/// One subscription the app asked for.
struct AppSubscription {
  std::string pubsub_name;
  std::string topic;
  components::Metadata metadata;
  /// Dapr's routes (empty for Layotto apps).
  std::vector<RouteRule> rules;
  std::string default_route;
  std::string dead_letter_topic;  // empty: none, or the metadata's deadLetterTopic
  /// Dapr's bulkSubscribe as the app declared it (checked when the subscription starts).
  BulkSubscribe bulk;
};

class AppChannel : public EventSink {
 public:
  /// Asks the app for its subscriptions until it answers (apps often start after the sidecar;
  /// backoff 100 ms doubling to 5 s), then runs `on_answer` once on the component dispatcher
  /// thread. An app that does not implement the call answers "none". Stop() ends the retries.
  virtual void ListSubscriptions(std::function<void(std::vector<AppSubscription>)> on_answer) = 0;

  /// Whether Invoke() reaches the app (Layotto's AppCallback has no invocation method).
  virtual bool CanInvoke() const = 0;

  /// Calls one of the app's methods; `done` runs once, on any thread, with the answer or an
  /// error (UNAVAILABLE when the app cannot be reached, DEADLINE_EXCEEDED, or the mapping of the
  /// app's non-2xx HTTP status). Any thread; never blocks. Only when CanInvoke().
  virtual void Invoke(components::rpc::RpcRequest request, components::rpc::RpcCallback done) = 0;

  /// Whether the app follows Dapr's subscription semantics (DROP dead-letters).
  virtual bool DaprSemantics() const = 0;

  /// Ends pending ListSubscriptions retries. Any thread; idempotent.
  virtual void Stop() = 0;
};

using AppChannelPtr = std::shared_ptr<AppChannel>;

}  // namespace ottava::runtime::callback
