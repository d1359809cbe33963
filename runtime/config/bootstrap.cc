#include "runtime/config/bootstrap.h"

#include <fstream>
#include <sstream>

#include "common/json_config.h"
#include "common/logging.h"
#include "common/status.h"
#include "runtime/callback/subscription_options.h"

namespace ottava::runtime::config {
namespace {

using ottava::config::ConfigError;
using ottava::config::JoinPointer;
using ottava::config::ObjectReader;

constexpr components::Kind kKinds[] = {
    components::Kind::kState,       components::Kind::kLock,   components::Kind::kSequencer,
    components::Kind::kConfigStore, components::Kind::kPubSub,
};

absl::Status ReadAddress(ObjectReader& reader, std::string_view key, Address* out) {
  std::string text;
  OTTAVA_RETURN_IF_ERROR(reader.String(key, &text));
  if (text.empty()) {
    return absl::OkStatus();
  }
  OTTAVA_ASSIGN_OR_RETURN(*out, ParseAddress(text, reader.PointerOf(key)));
  return absl::OkStatus();
}

// A token travels in an HTTP header: printable ASCII without spaces.
absl::Status ValidateToken(const std::string& token, const std::string& pointer) {
  for (char c : token) {
    if (c <= 0x20 || c > 0x7e) {
      return ConfigError(pointer, "must be printable ASCII without spaces or control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseApp(const nlohmann::json& value, const std::string& pointer, AppConfig* app) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader reader(value, pointer);
  OTTAVA_RETURN_IF_ERROR(reader.String("id", &app->id));
  if (app->id.empty()) {
    return ConfigError(reader.PointerOf("id"), "must not be empty");
  }
  if (app->id.find("||") != std::string::npos) {
    return ConfigError(reader.PointerOf("id"), "must not contain '||'");
  }
  if (const nlohmann::json* callback = reader.Child("callback");
      callback != nullptr && !callback->is_null()) {
    const std::string cb_pointer = reader.PointerOf("callback");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*callback, cb_pointer));
    ObjectReader cb(*callback, cb_pointer);
    CallbackConfig config;
    OTTAVA_RETURN_IF_ERROR(ReadAddress(cb, "address", &config.address));
    OTTAVA_RETURN_IF_ERROR(cb.String("protocol", &config.protocol));
    if (config.protocol != "auto" && config.protocol != "grpc" && config.protocol != "dapr-grpc" &&
        config.protocol != "http") {
      return ConfigError(cb.PointerOf("protocol"), "unsupported protocol '" + config.protocol +
                                                       "' (auto|grpc|dapr-grpc|http)");
    }
    OTTAVA_RETURN_IF_ERROR(cb.String("api_token", &config.api_token));
    OTTAVA_RETURN_IF_ERROR(ValidateToken(config.api_token, cb.PointerOf("api_token")));
    OTTAVA_RETURN_IF_ERROR(cb.Int("timeout_ms", &config.timeout_ms, 1, 3600 * 1000));
    OTTAVA_RETURN_IF_ERROR(cb.CheckNoUnknownKeys());
    app->callback = config;
  }
  return reader.CheckNoUnknownKeys();
}

absl::Status ParseComponents(const nlohmann::json& value,
                             const std::string& pointer,
                             std::vector<ComponentConfig>* out) {
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value, pointer));
  ObjectReader kinds(value, pointer);
  for (components::Kind kind : kKinds) {
    const std::string kind_name(components::KindName(kind));
    const nlohmann::json* instances = kinds.Child(kind_name);
    if (instances == nullptr) {
      continue;
    }
    const std::string kind_pointer = kinds.PointerOf(kind_name);
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*instances, kind_pointer));
    for (const auto& [name, body] : instances->items()) {
      const std::string instance_pointer = JoinPointer(kind_pointer, name);
      if (name.empty()) {
        return ConfigError(instance_pointer, "component names must not be empty");
      }
      OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(body, instance_pointer));
      ObjectReader reader(body, instance_pointer);
      ComponentConfig config;
      config.kind = kind;
      config.name = name;
      config.pointer = instance_pointer;
      OTTAVA_RETURN_IF_ERROR(reader.RequiredString("type", &config.type));
      OTTAVA_RETURN_IF_ERROR(reader.StringMap("metadata", &config.metadata));
      OTTAVA_RETURN_IF_ERROR(reader.Bool("required", &config.required));
      OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
      out->push_back(std::move(config));
    }
  }
  return kinds.CheckNoUnknownKeys();
}

absl::Status ParseSubscriptions(const nlohmann::json& value,
                                const std::string& pointer,
                                const Bootstrap& bootstrap,
                                std::vector<SubscriptionConfig>* out) {
  if (!value.is_array()) {
    return ConfigError(pointer, std::string("expected an array, got ") + value.type_name());
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item_pointer = JoinPointer(pointer, std::to_string(i));
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(value[i], item_pointer));
    ObjectReader reader(value[i], item_pointer);
    SubscriptionConfig sub;
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString("pubsub_name", &sub.pubsub_name));
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString("topic", &sub.topic));
    OTTAVA_RETURN_IF_ERROR(reader.String("dead_letter_topic", &sub.dead_letter_topic));
    OTTAVA_RETURN_IF_ERROR(reader.Int("max_retries", &sub.max_retries, -1, 1000000));
    OTTAVA_RETURN_IF_ERROR(reader.Int("concurrency", &sub.concurrency, 1, 10000));
    OTTAVA_RETURN_IF_ERROR(reader.Int("retry_initial_ms", &sub.retry_initial_ms, 1, 3600000));
    OTTAVA_RETURN_IF_ERROR(reader.Int("retry_max_ms", &sub.retry_max_ms, 1, 3600000));
    OTTAVA_RETURN_IF_ERROR(reader.StringMap("metadata", &sub.metadata));
    if (const nlohmann::json* bulk = reader.Child("bulk_subscribe")) {
      const std::string bulk_pointer = reader.PointerOf("bulk_subscribe");
      OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*bulk, bulk_pointer));
      ObjectReader bulk_reader(*bulk, bulk_pointer);
      OTTAVA_RETURN_IF_ERROR(bulk_reader.Bool("enabled", &sub.bulk.enabled));
      OTTAVA_RETURN_IF_ERROR(bulk_reader.Int("max_messages_count", &sub.bulk.max_messages_count, 0,
                                             callback::BulkSubscribe::kMaxMessagesLimit));
      OTTAVA_RETURN_IF_ERROR(bulk_reader.Int("max_await_duration_ms",
                                             &sub.bulk.max_await_duration_ms, 0,
                                             callback::BulkSubscribe::kMaxAwaitLimitMs));
      OTTAVA_RETURN_IF_ERROR(bulk_reader.CheckNoUnknownKeys());
    }
    OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
    if (sub.retry_max_ms < sub.retry_initial_ms) {
      return ConfigError(reader.PointerOf("retry_max_ms"), "must be >= retry_initial_ms");
    }
    if (!bootstrap.app.callback) {
      return ConfigError(item_pointer, "subscriptions deliver to the app: set /app/callback");
    }
    if (bootstrap.FindComponent(components::Kind::kPubSub, sub.pubsub_name) == nullptr) {
      return ConfigError(reader.PointerOf("pubsub_name"),
                         "no pub_subs component named '" + sub.pubsub_name + "'");
    }
    if (sub.dead_letter_topic == sub.topic) {
      return ConfigError(reader.PointerOf("dead_letter_topic"),
                         "must differ from the subscribed topic");
    }
    out->push_back(std::move(sub));
  }
  return absl::OkStatus();
}

absl::Status ParseMesh(const nlohmann::json& value, const std::string& pointer, Bootstrap* out) {
  OTTAVA_ASSIGN_OR_RETURN(mesh::MeshConfig mesh, mesh::MeshConfig::Parse(value, pointer));
  out->mesh = std::move(mesh);
  return absl::OkStatus();
}

}  // namespace

const ComponentConfig* Bootstrap::FindComponent(components::Kind kind,
                                                std::string_view name) const {
  for (const auto& component : components) {
    if (component.kind == kind && component.name == name) {
      return &component;
    }
  }
  return nullptr;
}

absl::StatusOr<Bootstrap> ParseBootstrap(std::string_view json_text) {
  nlohmann::json root = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    // Re-parse with exceptions only to get the position of the syntax error.
    try {
      nlohmann::json ignored = nlohmann::json::parse(json_text);
      (void)ignored;
    } catch (const nlohmann::json::parse_error& e) {
      return ConfigError("", std::string("invalid JSON: ") + e.what());
    }
    return ConfigError("", "invalid JSON");
  }
  OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(root, ""));
  ObjectReader reader(root, "");
  Bootstrap bootstrap;

  if (const nlohmann::json* app = reader.Child("app")) {
    OTTAVA_RETURN_IF_ERROR(ParseApp(*app, reader.PointerOf("app"), &bootstrap.app));
  }
  if (const nlohmann::json* grpc = reader.Child("grpc")) {
    const std::string pointer = reader.PointerOf("grpc");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*grpc, pointer));
    ObjectReader r(*grpc, pointer);
    OTTAVA_RETURN_IF_ERROR(ReadAddress(r, "address", &bootstrap.grpc_address));
    OTTAVA_RETURN_IF_ERROR(
        r.Int("max_message_bytes", &bootstrap.max_message_bytes, 1024, 1024LL * 1024 * 1024));
    OTTAVA_RETURN_IF_ERROR(r.Int("max_connection_age_ms", &bootstrap.grpc_max_connection_age_ms, 0,
                                 24LL * 3600 * 1000));
    OTTAVA_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  }
  if (const nlohmann::json* actuator = reader.Child("actuator")) {
    const std::string pointer = reader.PointerOf("actuator");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*actuator, pointer));
    ObjectReader r(*actuator, pointer);
    OTTAVA_RETURN_IF_ERROR(ReadAddress(r, "address", &bootstrap.actuator_address));
    OTTAVA_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  }
  if (const nlohmann::json* dapr = reader.Child("dapr")) {
    const std::string pointer = reader.PointerOf("dapr");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*dapr, pointer));
    ObjectReader r(*dapr, pointer);
    OTTAVA_RETURN_IF_ERROR(ReadAddress(r, "http_address", &bootstrap.dapr_http_address));
    OTTAVA_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  }
  if (reader.Child("api_token") != nullptr) {
    OTTAVA_RETURN_IF_ERROR(reader.String("api_token", &bootstrap.api_token));
    if (bootstrap.api_token.empty()) {
      return ConfigError(reader.PointerOf("api_token"), "must not be empty (omit the key instead)");
    }
    OTTAVA_RETURN_IF_ERROR(ValidateToken(bootstrap.api_token, reader.PointerOf("api_token")));
  }
  if (const nlohmann::json* log = reader.Child("log")) {
    const std::string pointer = reader.PointerOf("log");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*log, pointer));
    ObjectReader r(*log, pointer);
    OTTAVA_RETURN_IF_ERROR(r.String("level", &bootstrap.log_level));
    if (!logging::IsValidLevel(bootstrap.log_level)) {
      return ConfigError(r.PointerOf("level"), "unknown level '" + bootstrap.log_level +
                                                   "' (trace|debug|info|warn|error|critical|off)");
    }
    OTTAVA_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  }
  if (const nlohmann::json* shutdown = reader.Child("shutdown")) {
    const std::string pointer = reader.PointerOf("shutdown");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*shutdown, pointer));
    ObjectReader r(*shutdown, pointer);
    OTTAVA_RETURN_IF_ERROR(r.Int("drain_seconds", &bootstrap.drain_seconds, 0, 3600));
    OTTAVA_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  }
  if (const nlohmann::json* upgrade = reader.Child("upgrade")) {
    const std::string pointer = reader.PointerOf("upgrade");
    OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*upgrade, pointer));
    ObjectReader r(*upgrade, pointer);
    OTTAVA_RETURN_IF_ERROR(r.String("socket_dir", &bootstrap.upgrade.socket_dir));
    OTTAVA_RETURN_IF_ERROR(r.Int("drain_seconds", &bootstrap.upgrade.drain_seconds, 0, 3600));
    OTTAVA_RETURN_IF_ERROR(r.Int("timeout_seconds", &bootstrap.upgrade.timeout_seconds, 1, 3600));
    OTTAVA_RETURN_IF_ERROR(r.CheckNoUnknownKeys());
  }
  if (const nlohmann::json* components = reader.Child("components")) {
    OTTAVA_RETURN_IF_ERROR(
        ParseComponents(*components, reader.PointerOf("components"), &bootstrap.components));
  }
  if (const nlohmann::json* subscriptions = reader.Child("subscriptions")) {
    OTTAVA_RETURN_IF_ERROR(ParseSubscriptions(*subscriptions, reader.PointerOf("subscriptions"),
                                              bootstrap, &bootstrap.subscriptions));
  }
  if (const nlohmann::json* mesh = reader.Child("mesh")) {
    OTTAVA_RETURN_IF_ERROR(ParseMesh(*mesh, reader.PointerOf("mesh"), &bootstrap));
  }
  if (const nlohmann::json* flow = reader.Child("flow_control")) {
    const std::string at = reader.PointerOf("flow_control");
    OTTAVA_ASSIGN_OR_RETURN(bootstrap.flow_control,
                            mesh::flow::FlowControlConfig::Parse(*flow, at));
    OTTAVA_RETURN_IF_ERROR(bootstrap.flow_control->rules.CheckFallbackClusters(
        [&](std::string_view name) {
          if (!bootstrap.mesh) {
            return false;
          }
          for (const mesh::ClusterConfig& cluster : bootstrap.mesh->clusters) {
            if (cluster.name == name) {
              return true;
            }
          }
          return false;
        },
        at));
    const std::string& store = bootstrap.flow_control->config_store;
    if (!store.empty() &&
        bootstrap.FindComponent(components::Kind::kConfigStore, store) == nullptr) {
      return ConfigError(at + "/config_store/store",
                         "no config_store component named '" + store + "'");
    }
    if (const auto& events = bootstrap.flow_control->events;
        events && bootstrap.FindComponent(components::Kind::kPubSub, events->pubsub) == nullptr) {
      return ConfigError(at + "/events/pubsub",
                         "no pub_subs component named '" + events->pubsub + "'");
    }
  }
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  return bootstrap;
}

absl::StatusOr<Bootstrap> LoadBootstrap(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(path + ": cannot open the file");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  absl::StatusOr<Bootstrap> bootstrap = ParseBootstrap(buffer.str());
  if (!bootstrap.ok()) {
    return absl::InvalidArgumentError(path + ": " + std::string(bootstrap.status().message()));
  }
  return bootstrap;
}

}  // namespace ottava::runtime::config
