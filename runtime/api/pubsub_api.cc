#include "runtime/api/pubsub_api.h"

#include "common/encoding.h"
#include "runtime/api/cloud_event.h"

namespace ottava::runtime::api {

PubSubApi::PubSubApi(const ComponentSet& components, std::string app_id)
    : app_id_(std::move(app_id)) {
  for (const auto& instance : components.pubsubs()) {
    entries_.push_back(Entry{instance.config->name, instance.component.get()});
  }
}

absl::StatusOr<components::pubsub::PubSub*> PubSubApi::Find(std::string_view name) const {
  absl::StatusOr<const Entry*> entry = FindByName(entries_, components::Kind::kPubSub, name);
  if (!entry.ok()) {
    return entry.status();
  }
  return (*entry)->component;
}

void PubSubApi::Publish(PublishRequest request, std::function<void(absl::Status)> done) {
  absl::StatusOr<components::pubsub::PubSub*> pubsub = Find(request.pubsub_name);
  if (!pubsub.ok()) {
    done(pubsub.status());
    return;
  }
  if (request.topic.empty()) {
    done(absl::InvalidArgumentError("topic is empty"));
    return;
  }
  components::pubsub::PublishRequest out;
  out.topic = std::move(request.topic);
  auto raw = request.metadata.find("rawPayload");
  if (raw != request.metadata.end() && raw->second == "true") {
    out.data = std::move(request.data);
    out.content_type = std::move(request.content_type);
  } else {
    std::string traceparent;
    if (auto it = request.metadata.find("traceparent"); it != request.metadata.end()) {
      traceparent = it->second;
    }
    const std::string id = RandomUuid();
    out.data = BuildEnvelope(EnvelopeInput{id, app_id_, out.topic, request.pubsub_name,
                                           request.content_type, request.data, traceparent});
    out.content_type = "application/cloudevents+json";
  }
  out.metadata = std::move(request.metadata);
  (*pubsub)->Publish(std::move(out), std::move(done));
}

}  // namespace ottava::runtime::api
