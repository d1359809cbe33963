#include "runtime/flow_events.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/time.h"

namespace ottava::runtime {

using mesh::flow::FlowEvent;

FlowEventPublisher::FlowEventPublisher(components::pubsub::PubSub& pubsub,
                                       std::string topic,
                                       std::string app_id,
                                       const TimeSource& time,
                                       stats::Store& stats)
    : pubsub_(pubsub),
      topic_(std::move(topic)),
      app_id_(std::move(app_id)),
      time_(time),
      stats_(stats) {}

stats::Counter& FlowEventPublisher::Count(FlowEvent::Kind kind, const char* result) {
  return stats_.CounterFor(
      "ottava_flow_control_events_total",
      "Flow-control events for the events hook, by kind and result",
      {{"kind", std::string(mesh::flow::FlowEventKindName(kind))}, {"result", result}});
}

void FlowEventPublisher::OnEvent(const FlowEvent& event) {
  const int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(time_.MonotonicTime().time_since_epoch())
          .count();
  std::string key =
      std::string(mesh::flow::FlowEventKindName(event.kind)) + "|" + std::string(event.resource);
  if (event.kind == FlowEvent::Kind::kBreakerState) {
    key += "|" + std::string(event.state);
  }
  {
    absl::MutexLock lock(&mu_);
    auto [it, fresh] = last_.try_emplace(std::move(key), second);
    if (!fresh) {
      if (it->second == second) {
        Count(event.kind, "dropped").Inc();
        return;
      }
      it->second = second;
    }
  }
  const SystemTime now = time_.SystemTime();
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::string time = FormatRfc3339(now);  // "...:SSZ": add the milliseconds before the Z
  if (!time.empty() && time.back() == 'Z') {
    char fraction[8];
    std::snprintf(fraction, sizeof(fraction), ".%03lldZ", static_cast<long long>(millis));
    time.pop_back();
    time += fraction;
  }
  nlohmann::json body = {{"app_id", app_id_},
                         {"resource", std::string(event.resource)},
                         {"rule", std::string(event.rule)},
                         {"kind", std::string(mesh::flow::FlowEventKindName(event.kind))},
                         {"state", std::string(event.state)},
                         {"time", time}};
  components::pubsub::PublishRequest request;
  request.topic = topic_;
  request.data = body.dump();
  request.content_type = "application/json";
  request.metadata["rawPayload"] = "true";
  stats::Counter* published = &Count(event.kind, "published");
  stats::Counter* failed = &Count(event.kind, "failed");
  pubsub_.Publish(std::move(request), [published, failed](absl::Status status) {
    if (status.ok()) {
      published->Inc();
    } else {
      failed->Inc();
      OTTAVA_LOG(Runtime, debug, "flow control: publishing an event failed: {}", status.message());
    }
  });
}

}  // namespace ottava::runtime
