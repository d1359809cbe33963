#include "runtime/config/dapr_resources.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "common/logging.h"
#include "common/status.h"
#include "runtime/callback/route_match.h"
#include "runtime/callback/subscription_options.h"

namespace ottava::runtime::config {
namespace {

using components::Kind;

// Dapr's component types we serve, and the kind and factory type they become.
struct TypeMapping {
  std::string_view dapr_type;
  Kind kind;
  std::string_view type;
};

constexpr TypeMapping kTypes[] = {
    {"state.redis", Kind::kState, "redis"},
    {"state.in-memory", Kind::kState, "in-memory"},
    {"pubsub.redis", Kind::kPubSub, "redis"},
    {"pubsub.in-memory", Kind::kPubSub, "in-memory"},
    {"pubsub.kafka", Kind::kPubSub, "kafka"},
    {"lock.redis", Kind::kLock, "redis"},
    {"configuration.redis", Kind::kConfigStore, "redis"},
};

std::string SupportedTypes() {
  std::string out;
  for (const auto& mapping : kTypes) {
    out += (out.empty() ? "" : ", ") + std::string(mapping.dapr_type);
  }
  return out;
}

// Dapr metadata whose meaning we cannot honour: refusing is better than silently ignoring (a
// user asking for TLS must not get plain text). Keyed by the type prefix ("state.redis" and
// "pubsub.redis" share "redis" keys).
struct Refused {
  std::string_view backend;  // suffix of the Dapr type: "redis", "kafka"
  std::string_view key;
  std::string_view reason;
};

constexpr Refused kRefused[] = {
    {"redis", "enableTLS", "TLS to Redis is not supported"},
    {"redis", "failover", "Redis Sentinel failover is not supported"},
    {"redis", "sentinelMasterName", "Redis Sentinel is not supported"},
    {"redis", "redisUsername", "Redis ACL user names are not supported (use redisPassword)"},
};

// Where a field sits inside one document of one file.
class Where {
 public:
  Where(const std::string& file, size_t index) : file_(file), index_(index) {}

  std::string Document() const { return file_ + ": document " + std::to_string(index_); }
  absl::Status Error(const std::string& path, std::string_view reason) const {
    return absl::InvalidArgumentError(Document() + ": " + path + ": " + std::string(reason));
  }

 private:
  const std::string& file_;
  size_t index_;
};

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

const char* NodeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "nothing";
  }
}

// Reads the keys of one map and refuses the ones it was not asked about.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path, const Where& where)
      : node_(node), path_(std::move(path)), where_(where) {}

  static absl::Status CheckMap(const YAML::Node& node, const std::string& path, const Where& w) {
    if (!node.IsMap()) {
      return w.Error(path, std::string("expected a map, got ") + NodeKind(node));
    }
    return absl::OkStatus();
  }

  std::string PathOf(std::string_view key) const { return Join(path_, key); }

  // The child, or an undefined node when absent. Marks the key as known.
  YAML::Node Child(std::string_view key) {
    known_.insert(std::string(key));
    return node_[std::string(key)];
  }
  bool Has(std::string_view key) const {
    const YAML::Node child = node_[std::string(key)];
    return child.IsDefined() && !child.IsNull();
  }

  absl::Status String(std::string_view key, std::string* out) {
    YAML::Node child = Child(key);
    if (!child.IsDefined() || child.IsNull()) {
      return absl::OkStatus();
    }
    if (!child.IsScalar()) {
      return where_.Error(PathOf(key), std::string("expected a string, got ") + NodeKind(child));
    }
    *out = child.Scalar();
    return absl::OkStatus();
  }
  absl::Status RequiredString(std::string_view key, std::string* out) {
    OTTAVA_RETURN_IF_ERROR(String(key, out));
    if (out->empty()) {
      return where_.Error(PathOf(key), "required");
    }
    return absl::OkStatus();
  }
  absl::Status Bool(std::string_view key, bool* out) {
    std::string text;
    OTTAVA_RETURN_IF_ERROR(String(key, &text));
    if (text.empty()) {
      return absl::OkStatus();
    }
    if (text == "true" || text == "True" || text == "TRUE") {
      *out = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
      *out = false;
    } else {
      return where_.Error(PathOf(key), "expected true or false, got '" + text + "'");
    }
    return absl::OkStatus();
  }
  // A whole number in [min, max] (0 where the field means "the default").
  absl::Status Int(std::string_view key, int64_t min, int64_t max, int64_t* out) {
    std::string text;
    OTTAVA_RETURN_IF_ERROR(String(key, &text));
    if (text.empty()) {
      return absl::OkStatus();
    }
    int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
      return where_.Error(PathOf(key), "expected a whole number from " + std::to_string(min) +
                                           " to " + std::to_string(max) + ", got '" + text + "'");
    }
    *out = value;
    return absl::OkStatus();
  }
  // A list of strings (`scopes`).
  absl::Status StringList(std::string_view key, std::vector<std::string>* out) {
    YAML::Node child = Child(key);
    if (!child.IsDefined() || child.IsNull()) {
      return absl::OkStatus();
    }
    if (!child.IsSequence()) {
      return where_.Error(PathOf(key), std::string("expected a list, got ") + NodeKind(child));
    }
    for (size_t i = 0; i < child.size(); ++i) {
      if (!child[i].IsScalar()) {
        return where_.Error(Index(PathOf(key), i), "expected a string");
      }
      out->push_back(child[i].Scalar());
    }
    return absl::OkStatus();
  }
  // A map of strings (a Subscription's `metadata`).
  absl::Status StringMap(std::string_view key, components::Metadata* out) {
    YAML::Node child = Child(key);
    if (!child.IsDefined() || child.IsNull()) {
      return absl::OkStatus();
    }
    OTTAVA_RETURN_IF_ERROR(CheckMap(child, PathOf(key), where_));
    for (const auto& item : child) {
      const std::string name = item.first.Scalar();
      if (!item.second.IsScalar()) {
        return where_.Error(Join(PathOf(key), name),
                            std::string("expected a string, got ") + NodeKind(item.second));
      }
      (*out)[name] = item.second.Scalar();
    }
    return absl::OkStatus();
  }

  absl::Status CheckNoUnknownKeys() const {
    for (const auto& item : node_) {
      const std::string key = item.first.Scalar();
      if (known_.count(key) == 0) {
        return where_.Error(PathOf(key), "unknown key");
      }
    }
    return absl::OkStatus();
  }

 private:
  const YAML::Node node_;
  const std::string path_;
  const Where& where_;
  std::set<std::string> known_;
};

std::string NewUuid() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const uint64_t high = random();
  const uint64_t low = random();
  char text[37];
  std::snprintf(text, sizeof(text), "%08x-%04x-4%03x-%04x-%012llx",
                static_cast<unsigned>(high >> 32), static_cast<unsigned>((high >> 16) & 0xffff),
                static_cast<unsigned>(high & 0x0fff),
                static_cast<unsigned>(0x8000 | ((low >> 48) & 0x3fff)),
                static_cast<unsigned long long>(low & 0xffffffffffffULL));
  return text;
}

// daprd's value templating: {appID} and {uuid}; {namespace} and {podName} mean nothing here.
std::string Expand(std::string value, const std::string& app_id) {
  for (size_t at = value.find("{appID}"); at != std::string::npos;
       at = value.find("{appID}", at + app_id.size())) {
    value.replace(at, 7, app_id);
  }
  for (size_t at = value.find("{uuid}"); at != std::string::npos; at = value.find("{uuid}", at)) {
    value.replace(at, 6, NewUuid());
  }
  return value;
}

// `spec.metadata`: a list of {name, value | envRef | secretKeyRef}.
absl::Status ReadComponentMetadata(const YAML::Node& list,
                                   const std::string& path,
                                   const Where& where,
                                   const std::string& app_id,
                                   components::Metadata* out) {
  if (!list.IsDefined() || list.IsNull()) {
    return absl::OkStatus();
  }
  if (!list.IsSequence()) {
    return where.Error(path,
                       std::string("expected a list of {name, value}, got ") + NodeKind(list));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item_path = Index(path, i);
    OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(list[i], item_path, where));
    MapReader item(list[i], item_path, where);
    std::string name;
    OTTAVA_RETURN_IF_ERROR(item.RequiredString("name", &name));
    if (item.Has("secretKeyRef")) {
      return where.Error(item.PathOf("secretKeyRef"),
                         "secretKeyRef is not supported: Ottava has no secret stores; give the "
                         "value directly or through envRef");
    }
    item.Child("secretKeyRef");
    const bool has_value = item.Has("value");
    const bool has_env = item.Has("envRef");
    if (has_value && has_env) {
      return where.Error(item_path, "give either value or envRef, not both");
    }
    std::string value;
    if (has_env) {
      std::string variable;
      OTTAVA_RETURN_IF_ERROR(item.String("envRef", &variable));
      const char* env = std::getenv(variable.c_str());
      if (env == nullptr) {
        return where.Error(item.PathOf("envRef"),
                           "environment variable '" + variable + "' is not set");
      }
      value = env;
    } else {
      OTTAVA_RETURN_IF_ERROR(item.String("value", &value));
    }
    OTTAVA_RETURN_IF_ERROR(item.CheckNoUnknownKeys());
    if (!out->emplace(name, Expand(std::move(value), app_id)).second) {
      return where.Error(item.PathOf("name"), "'" + name + "' is given twice");
    }
  }
  return absl::OkStatus();
}

// Dapr's metadata names are ours for nearly every key (our components took them from Dapr); the
// exceptions are renamed or refused here.
absl::Status MapMetadata(std::string_view dapr_type,
                         const std::string& path,
                         const Where& where,
                         components::Metadata* metadata) {
  const std::string_view backend = dapr_type.substr(dapr_type.find('.') + 1);
  for (const Refused& refused : kRefused) {
    if (refused.backend != backend) {
      continue;
    }
    auto it = metadata->find(std::string(refused.key));
    if (it == metadata->end() || it->second.empty() || it->second == "false") {
      metadata->erase(std::string(refused.key));
      continue;
    }
    return where.Error(path + "." + std::string(refused.key), refused.reason);
  }
  if (backend == "kafka") {
    // Dapr's Kafka takes the consumer group from consumerGroup, else consumerID.
    if (auto it = metadata->find("consumerID");
        it != metadata->end() && metadata->count("consumerGroup") == 0) {
      (*metadata)["consumerGroup"] = it->second;
      metadata->erase(it);
    }
  }
  // daprd's own keys that mean nothing to the component.
  if (auto it = metadata->find("actorStateStore"); it != metadata->end()) {
    if (it->second == "true") {
      OTTAVA_LOG(Runtime, warn, "{}: actorStateStore: Ottava has no actors; ignored",
                 where.Document());
    }
    metadata->erase(it);
  }
  return absl::OkStatus();
}

absl::Status ParseComponent(const YAML::Node& doc,
                            const Where& where,
                            const std::string& app_id,
                            DaprResources* out) {
  MapReader top(doc, "", where);
  std::string api_version;
  OTTAVA_RETURN_IF_ERROR(top.RequiredString("apiVersion", &api_version));
  if (api_version != "dapr.io/v1alpha1") {
    return where.Error("apiVersion", "a Component is dapr.io/v1alpha1, got '" + api_version + "'");
  }
  top.Child("kind");
  std::vector<std::string> scopes;
  OTTAVA_RETURN_IF_ERROR(top.StringList("scopes", &scopes));

  YAML::Node meta = top.Child("metadata");
  OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(meta, "metadata", where));
  MapReader meta_reader(meta, "metadata", where);
  ComponentConfig config;
  OTTAVA_RETURN_IF_ERROR(meta_reader.RequiredString("name", &config.name));
  if (config.name.find("||") != std::string::npos) {
    return where.Error("metadata.name", "must not contain '||'");
  }

  // `auth.secretStore` only resolves secretKeyRefs, which are refused below.
  if (YAML::Node auth = top.Child("auth"); auth.IsDefined() && !auth.IsNull()) {
    OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(auth, "auth", where));
    MapReader auth_reader(auth, "auth", where);
    std::string ignored;
    OTTAVA_RETURN_IF_ERROR(auth_reader.String("secretStore", &ignored));
    OTTAVA_RETURN_IF_ERROR(auth_reader.CheckNoUnknownKeys());
  }

  YAML::Node spec = top.Child("spec");
  OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(spec, "spec", where));
  OTTAVA_RETURN_IF_ERROR(top.CheckNoUnknownKeys());
  MapReader spec_reader(spec, "spec", where);
  std::string dapr_type;
  OTTAVA_RETURN_IF_ERROR(spec_reader.RequiredString("type", &dapr_type));
  const TypeMapping* mapping = nullptr;
  for (const auto& candidate : kTypes) {
    if (candidate.dapr_type == dapr_type) {
      mapping = &candidate;
    }
  }
  if (mapping == nullptr) {
    return where.Error(
        "spec.type", "unsupported type '" + dapr_type + "' (supported: " + SupportedTypes() + ")");
  }
  std::string version;
  OTTAVA_RETURN_IF_ERROR(spec_reader.RequiredString("version", &version));
  if (version != "v1") {
    return where.Error("spec.version",
                       "unsupported version '" + version + "' of " + dapr_type + " (v1)");
  }
  bool ignore_errors = false;
  OTTAVA_RETURN_IF_ERROR(spec_reader.Bool("ignoreErrors", &ignore_errors));
  std::string init_timeout;
  OTTAVA_RETURN_IF_ERROR(spec_reader.String("initTimeout", &init_timeout));
  if (!init_timeout.empty()) {
    OTTAVA_LOG(Runtime, warn,
               "{}: spec.initTimeout is ignored: components bound their own initialisation "
               "with their timeouts",
               where.Document());
  }
  OTTAVA_RETURN_IF_ERROR(ReadComponentMetadata(spec_reader.Child("metadata"), "spec.metadata",
                                               where, app_id, &config.metadata));
  OTTAVA_RETURN_IF_ERROR(spec_reader.CheckNoUnknownKeys());
  OTTAVA_RETURN_IF_ERROR(MapMetadata(dapr_type, "spec.metadata", where, &config.metadata));

  if (!scopes.empty() && std::find(scopes.begin(), scopes.end(), app_id) == scopes.end()) {
    OTTAVA_LOG(Runtime, info, "{}: component {} is scoped to other apps; skipped", where.Document(),
               config.name);
    return absl::OkStatus();
  }
  config.kind = mapping->kind;
  config.type = std::string(mapping->type);
  config.required = !ignore_errors;
  config.pointer = where.Document();
  out->components.push_back(std::move(config));
  return absl::OkStatus();
}

absl::Status ParseRoutes(const YAML::Node& routes, const Where& where, SubscriptionConfig* sub) {
  OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(routes, "spec.routes", where));
  MapReader reader(routes, "spec.routes", where);
  OTTAVA_RETURN_IF_ERROR(reader.String("default", &sub->default_route));
  YAML::Node rules = reader.Child("rules");
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  if (rules.IsDefined() && !rules.IsNull()) {
    if (!rules.IsSequence()) {
      return where.Error("spec.routes.rules",
                         std::string("expected a list of {match, path}, got ") + NodeKind(rules));
    }
    for (size_t i = 0; i < rules.size(); ++i) {
      const std::string path = Index("spec.routes.rules", i);
      OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(rules[i], path, where));
      MapReader rule_reader(rules[i], path, where);
      RouteRuleConfig rule;
      OTTAVA_RETURN_IF_ERROR(rule_reader.RequiredString("match", &rule.match));
      OTTAVA_RETURN_IF_ERROR(rule_reader.RequiredString("path", &rule.path));
      OTTAVA_RETURN_IF_ERROR(rule_reader.CheckNoUnknownKeys());
      if (absl::StatusOr<callback::RouteMatcher> matcher =
              callback::RouteMatcher::Parse(rule.match);
          !matcher.ok()) {
        return where.Error(rule_reader.PathOf("match"), std::string(matcher.status().message()));
      }
      sub->rules.push_back(std::move(rule));
    }
  }
  if (sub->rules.empty() && sub->default_route.empty()) {
    return where.Error("spec.routes", "needs rules or a default");
  }
  return absl::OkStatus();
}

absl::Status ParseSubscription(const YAML::Node& doc,
                               const Where& where,
                               const std::string& app_id,
                               DaprResources* out) {
  MapReader top(doc, "", where);
  std::string api_version;
  OTTAVA_RETURN_IF_ERROR(top.RequiredString("apiVersion", &api_version));
  const bool v2 = api_version == "dapr.io/v2alpha1";
  if (!v2 && api_version != "dapr.io/v1alpha1") {
    return where.Error(
        "apiVersion",
        "a Subscription is dapr.io/v1alpha1 or dapr.io/v2alpha1, got '" + api_version + "'");
  }
  top.Child("kind");
  std::vector<std::string> scopes;
  OTTAVA_RETURN_IF_ERROR(top.StringList("scopes", &scopes));
  YAML::Node meta = top.Child("metadata");
  OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(meta, "metadata", where));
  std::string name;
  OTTAVA_RETURN_IF_ERROR(MapReader(meta, "metadata", where).RequiredString("name", &name));
  YAML::Node spec = top.Child("spec");
  OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(spec, "spec", where));
  OTTAVA_RETURN_IF_ERROR(top.CheckNoUnknownKeys());

  MapReader reader(spec, "spec", where);
  SubscriptionConfig sub;
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("pubsubname", &sub.pubsub_name));
  OTTAVA_RETURN_IF_ERROR(reader.RequiredString("topic", &sub.topic));
  OTTAVA_RETURN_IF_ERROR(reader.StringMap("metadata", &sub.metadata));
  OTTAVA_RETURN_IF_ERROR(reader.String("deadLetterTopic", &sub.dead_letter_topic));
  if (!sub.dead_letter_topic.empty() && sub.dead_letter_topic == sub.topic) {
    return where.Error("spec.deadLetterTopic", "must differ from the subscribed topic");
  }
  if (v2) {
    if (reader.Has("route")) {
      return where.Error("spec.route", "v2alpha1 routes through spec.routes (rules, default)");
    }
    YAML::Node routes = reader.Child("routes");
    if (!routes.IsDefined() || routes.IsNull()) {
      return where.Error("spec.routes", "required");
    }
    OTTAVA_RETURN_IF_ERROR(ParseRoutes(routes, where, &sub));
  } else {
    if (reader.Has("routes")) {
      return where.Error("spec.routes", "v1alpha1 takes one spec.route (routes is v2alpha1)");
    }
    OTTAVA_RETURN_IF_ERROR(reader.RequiredString("route", &sub.default_route));
  }
  if (YAML::Node bulk = reader.Child("bulkSubscribe"); bulk.IsDefined() && !bulk.IsNull()) {
    OTTAVA_RETURN_IF_ERROR(MapReader::CheckMap(bulk, "spec.bulkSubscribe", where));
    MapReader bulk_reader(bulk, "spec.bulkSubscribe", where);
    OTTAVA_RETURN_IF_ERROR(bulk_reader.Bool("enabled", &sub.bulk.enabled));
    OTTAVA_RETURN_IF_ERROR(bulk_reader.Int("maxMessagesCount", 0,
                                           callback::BulkSubscribe::kMaxMessagesLimit,
                                           &sub.bulk.max_messages_count));
    OTTAVA_RETURN_IF_ERROR(bulk_reader.Int("maxAwaitDurationMs", 0,
                                           callback::BulkSubscribe::kMaxAwaitLimitMs,
                                           &sub.bulk.max_await_duration_ms));
    OTTAVA_RETURN_IF_ERROR(bulk_reader.CheckNoUnknownKeys());
  }
  OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  if (!scopes.empty() && std::find(scopes.begin(), scopes.end(), app_id) == scopes.end()) {
    OTTAVA_LOG(Runtime, info, "{}: subscription {} is scoped to other apps; skipped",
               where.Document(), name);
    return absl::OkStatus();
  }
  out->subscriptions.push_back(std::move(sub));
  out->subscription_origins.push_back(where.Document());
  return absl::OkStatus();
}

size_t KindOrder(Kind kind) {
  return static_cast<size_t>(kind);
}

std::string Describe(const ComponentConfig& component, const std::string& config_path) {
  // JSON components carry a JSON pointer; resource ones "<file>: document <n>".
  return !component.pointer.empty() && component.pointer[0] == '/'
             ? config_path + " at " + component.pointer
             : component.pointer;
}

}  // namespace

absl::Status ParseDaprResources(std::string_view yaml_text,
                                const std::string& file,
                                const std::string& app_id,
                                DaprResources* out) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(file + ": line " + std::to_string(e.mark.line + 1) +
                                      ", column " + std::to_string(e.mark.column + 1) +
                                      ": invalid YAML: " + e.msg);
  }
  for (size_t i = 0; i < documents.size(); ++i) {
    const YAML::Node& doc = documents[i];
    if (doc.IsNull()) {
      continue;  // an empty document, e.g. after a trailing `---`
    }
    Where where(file, i);
    try {
      if (!doc.IsMap()) {
        return absl::InvalidArgumentError(where.Document() + ": expected a map, got " +
                                          NodeKind(doc));
      }
      std::string kind;
      OTTAVA_RETURN_IF_ERROR(MapReader(doc, "", where).RequiredString("kind", &kind));
      if (kind == "Component") {
        OTTAVA_RETURN_IF_ERROR(ParseComponent(doc, where, app_id, out));
      } else if (kind == "Subscription") {
        OTTAVA_RETURN_IF_ERROR(ParseSubscription(doc, where, app_id, out));
      } else {
        OTTAVA_LOG(Runtime, warn, "{}: kind {} is not supported by Ottava; skipped",
                   where.Document(), kind);
      }
    } catch (const YAML::Exception& e) {
      // Only a malformed key (a map or a list used as a key) gets here.
      return absl::InvalidArgumentError(where.Document() + ": line " +
                                        std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
  }
  return absl::OkStatus();
}

absl::Status LoadDaprResources(const std::vector<std::string>& dirs,
                               const std::string& app_id,
                               DaprResources* out) {
  namespace fs = std::filesystem;
  for (const std::string& dir : dirs) {
    std::error_code error;
    if (!fs::is_directory(dir, error)) {
      return absl::InvalidArgumentError("--resources-path " + dir + ": not a directory");
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      const std::string extension = entry.path().extension().string();
      if (entry.is_regular_file() && (extension == ".yaml" || extension == ".yml")) {
        files.push_back(entry.path());
      }
    }
    if (error) {
      return absl::InvalidArgumentError("--resources-path " + dir + ": " + error.message());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& path : files) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        return absl::InvalidArgumentError(path.string() + ": cannot open the file");
      }
      std::stringstream text;
      text << in.rdbuf();
      OTTAVA_RETURN_IF_ERROR(ParseDaprResources(text.str(), path.string(), app_id, out));
    }
  }
  return absl::OkStatus();
}

absl::Status MergeDaprResources(DaprResources resources,
                                const std::string& config_path,
                                Bootstrap* bootstrap) {
  for (ComponentConfig& component : resources.components) {
    if (const ComponentConfig* existing =
            bootstrap->FindComponent(component.kind, component.name)) {
      return absl::InvalidArgumentError(component.pointer + ": metadata.name: component " +
                                        std::string(components::KindName(component.kind)) + "/" +
                                        component.name + " is also defined in " +
                                        Describe(*existing, config_path));
    }
    bootstrap->components.push_back(std::move(component));
  }
  std::stable_sort(bootstrap->components.begin(), bootstrap->components.end(),
                   [](const ComponentConfig& a, const ComponentConfig& b) {
                     if (a.kind != b.kind) {
                       return KindOrder(a.kind) < KindOrder(b.kind);
                     }
                     return a.name < b.name;
                   });
  // Where each existing subscription came from, for collision messages.
  std::vector<std::string> origins;
  for (size_t i = 0; i < bootstrap->subscriptions.size(); ++i) {
    origins.push_back(config_path + " at /subscriptions/" + std::to_string(i));
  }
  for (size_t i = 0; i < resources.subscriptions.size(); ++i) {
    SubscriptionConfig& sub = resources.subscriptions[i];
    const std::string& origin = resources.subscription_origins[i];
    if (!bootstrap->app.callback) {
      return absl::InvalidArgumentError(
          origin + ": subscriptions deliver to the app: set /app/callback in " + config_path);
    }
    if (bootstrap->FindComponent(Kind::kPubSub, sub.pubsub_name) == nullptr) {
      return absl::InvalidArgumentError(origin + ": spec.pubsubname: no pub/sub component named '" +
                                        sub.pubsub_name + "'");
    }
    for (size_t j = 0; j < bootstrap->subscriptions.size(); ++j) {
      const SubscriptionConfig& other = bootstrap->subscriptions[j];
      if (other.pubsub_name == sub.pubsub_name && other.topic == sub.topic) {
        return absl::InvalidArgumentError(origin + ": spec.topic: " + sub.pubsub_name + "/" +
                                          sub.topic + " is also subscribed in " + origins[j]);
      }
    }
    bootstrap->subscriptions.push_back(std::move(sub));
    origins.push_back(origin);
  }
  return absl::OkStatus();
}

absl::StatusOr<Bootstrap> LoadWithResources(const std::string& config_path,
                                            const std::vector<std::string>& dirs) {
  OTTAVA_ASSIGN_OR_RETURN(Bootstrap bootstrap, LoadBootstrap(config_path));
  if (dirs.empty()) {
    return bootstrap;
  }
  DaprResources resources;
  OTTAVA_RETURN_IF_ERROR(LoadDaprResources(dirs, bootstrap.app.id, &resources));
  OTTAVA_RETURN_IF_ERROR(MergeDaprResources(std::move(resources), config_path, &bootstrap));
  return bootstrap;
}

}  // namespace ottava::runtime::config
