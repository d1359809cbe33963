#pragma once

// CloudEvents 1.0 JSON envelopes: built on publish, taken apart on delivery.

#include <map>
#include <string>
#include <string_view>

namespace ottava::runtime::api {

/// The attributes of one event, as delivered to the app.
struct CloudEvent {
  std::string id;
  std::string source;
  std::string type;
  std::string spec_version;
  std::string data_content_type;
  std::string data;  // the payload bytes
  std::string topic;
  std::string pubsub_name;
  std::map<std::string, std::string> extensions;  // other string attributes (traceparent ...)
  /// The message was not an envelope (published with rawPayload): `data` is all of it.
  bool raw = false;
};

struct EnvelopeInput {
  std::string_view id;
  std::string_view source;  // the publishing app's id
  std::string_view topic;
  std::string_view pubsub_name;
  std::string_view content_type;  // empty means text/plain
  std::string_view data;
  std::string_view traceparent;  // empty: omitted
};

/// The JSON envelope. JSON content with a JSON content type goes in "data" as JSON, UTF-8 text in
/// "data" as a string, anything else in "data_base64".
std::string BuildEnvelope(const EnvelopeInput& input);

/// The JSON envelope of an event taken apart by ParseEnvelope (for apps that take the CloudEvent
/// whole, as Dapr's HTTP apps do): the attributes, the extensions, and the data placed as
/// BuildEnvelope places it.
std::string RebuildEnvelope(const CloudEvent& event);

/// Takes apart a delivered payload. A payload that is not a CloudEvents envelope (a raw message)
/// is delivered as-is, with `fallback_id` and the given topic.
CloudEvent ParseEnvelope(std::string_view payload,
                         std::string_view fallback_id,
                         std::string_view topic,
                         std::string_view pubsub_name);

}  // namespace ottava::runtime::api
