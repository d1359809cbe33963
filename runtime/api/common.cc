#include "runtime/api/common.h"

#include "absl/strings/cord.h"

namespace ottava::runtime::api {
namespace {

std::string_view Noun(components::Kind kind) {
  switch (kind) {
    case components::Kind::kState:
      return "state store";
    case components::Kind::kLock:
      return "lock store";
    case components::Kind::kSequencer:
      return "sequencer";
    case components::Kind::kConfigStore:
      return "configuration store";
    case components::Kind::kPubSub:
      return "pubsub";
  }
  return "component";
}

constexpr char kLookupPayload[] = "type.ottava.dev/component-lookup";

absl::Status WithLookup(absl::Status status, std::string_view failure) {
  status.SetPayload(kLookupPayload, absl::Cord(std::string(failure)));
  return status;
}

}  // namespace

absl::Status NoComponentError(components::Kind kind) {
  return WithLookup(absl::FailedPreconditionError("no " + std::string(Noun(kind)) +
                                                  " is configured (components/" +
                                                  std::string(components::KindName(kind)) + ")"),
                    "not-configured");
}

absl::Status UnknownComponentError(components::Kind kind, std::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError(std::string(Noun(kind)) + " name is empty");
  }
  return WithLookup(absl::InvalidArgumentError(std::string(Noun(kind)) + " '" + std::string(name) +
                                               "' is not found"),
                    "not-found");
}

LookupFailure LookupFailureOf(const absl::Status& status) {
  if (status.ok()) {
    return LookupFailure::kNone;
  }
  const auto payload = status.GetPayload(kLookupPayload);  // absl::optional in Debian's Abseil
  if (!payload) {
    return LookupFailure::kNone;
  }
  return *payload == "not-found" ? LookupFailure::kNotFound : LookupFailure::kNotConfigured;
}

absl::Status ValidateKey(std::string_view key, std::string_view what) {
  if (key.empty()) {
    return absl::InvalidArgumentError(std::string(what) + " is empty");
  }
  if (key.find("||") != std::string_view::npos) {
    return absl::InvalidArgumentError(std::string(what) + " '" + std::string(key) +
                                      "' must not contain '||'");
  }
  return absl::OkStatus();
}

KeyPrefix KeyPrefix::Create(const components::Metadata& metadata,
                            std::string_view app_id,
                            std::string_view component_name,
                            std::string_view block) {
  std::string strategy = "appid";
  if (auto it = metadata.find("keyPrefix"); it != metadata.end() && !it->second.empty()) {
    strategy = it->second;
  }
  KeyPrefix prefix;
  if (!block.empty()) {
    prefix.prefix_.append(block).append("||");
  }
  if (strategy == "appid") {
    prefix.prefix_.append(app_id).append("||");
  } else if (strategy == "name") {
    prefix.prefix_.append(component_name).append("||");
  } else if (strategy != "none") {
    prefix.prefix_.append(strategy).append("||");
  }
  return prefix;
}

std::shared_ptr<Join> Join::Create(size_t count, std::function<void(absl::Status)> done) {
  auto join = std::shared_ptr<Join>(new Join(count, std::move(done)));
  if (count == 0) {
    join->done_(absl::OkStatus());
  }
  return join;
}

void Join::Complete(const absl::Status& status) {
  if (!status.ok()) {
    absl::MutexLock lock(&mu_);
    if (first_error_.ok()) {
      first_error_ = status;
    }
  }
  if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    absl::Status result;
    {
      absl::MutexLock lock(&mu_);
      result = first_error_;
    }
    done_(result);
  }
}

}  // namespace ottava::runtime::api
