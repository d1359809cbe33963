#pragma once

// Where delivered events go: the app's AppCallback service or a SubscribeTopicEvents stream.

#include <functional>
#include <memory>

#include "spec/proto/runtime/v1/appcallback.pb.h"

namespace ottava::runtime::callback {

/// The app's verdict on one event.
enum class Outcome { kSuccess, kRetry, kDrop };

class EventSink {
 public:
  virtual ~EventSink() = default;
  /// Hands one event to the app. `done` runs exactly once, on any thread, with the verdict: a
  /// timeout or transport error is kRetry, UNIMPLEMENTED is kDrop. Must not block.
  virtual void Deliver(std::shared_ptr<const spec::proto::runtime::v1::TopicEventRequest> event,
                       std::function<void(Outcome)> done) = 0;
};

using EventSinkPtr = std::shared_ptr<EventSink>;

}  // namespace ottava::runtime::callback
