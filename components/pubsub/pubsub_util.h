#pragma once

// Helpers shared by the pub/sub components for closures posted to a dispatcher that may drop them
// unrun (when it stops).

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dispatcher.h"
#include "components/common/metadata.h"
#include "components/pubsub/pubsub.h"

namespace ottava::components::pubsub {

// Runs `done` exactly once: with the result, or with UNAVAILABLE when destroyed unrun (the
// dispatcher dropped the closure that held it).
class DoneGuard {
 public:
  DoneGuard(DoneCallback done, std::string label)
      : done_(std::move(done)), label_(std::move(label)) {}
  ~DoneGuard() {
    if (done_) {
      done_(absl::UnavailableError(label_ + ": the component event loop has stopped"));
    }
  }
  DoneGuard(const DoneGuard&) = delete;
  DoneGuard& operator=(const DoneGuard&) = delete;

  void Run(absl::Status status) {
    DoneCallback done = std::move(done_);
    done_ = nullptr;
    done(std::move(status));
  }

 private:
  DoneCallback done_;
  std::string label_;
};

/// Runs `fn(*core)` on the dispatcher thread (inline when called there) and waits until it has run,
/// or until the dispatcher dropped it unrun (it has stopped).
template <class Core>
void RunOnLoopAndWait(Dispatcher& dispatcher,
                      const std::shared_ptr<Core>& core,
                      std::function<void(Core&)> fn) {
  dispatcher.RunAndWait([core, fn = std::move(fn)] { fn(*core); });
}

/// The checks every Subscribe makes: a topic, a positive max_in_flight and a handler.
inline absl::Status CheckSubscribe(const std::string& label,
                                   const SubscribeRequest& request,
                                   const MessageHandler& handler) {
  if (request.topic.empty()) {
    return absl::InvalidArgumentError(label + ": subscribe needs a topic");
  }
  if (request.max_in_flight == 0) {
    return absl::InvalidArgumentError(label + ": max_in_flight must be positive for topic '" +
                                      request.topic + "'");
  }
  if (!handler) {
    return absl::InvalidArgumentError(label + ": subscribe needs a handler");
  }
  return absl::OkStatus();
}

/// A pub/sub factory's Create: the component needs the context's dispatcher (`what` names the
/// component kind in the error), and its settings are read from the metadata by
/// `Settings::Read(MetadataReader&)` (errors name the component; keys it did not read are logged).
template <class Impl, class Settings>
absl::StatusOr<std::unique_ptr<PubSub>> CreatePubSub(const ComponentContext& context,
                                                     std::string_view what) {
  if (context.dispatcher == nullptr) {
    return absl::FailedPreconditionError(context.Label() + ": the " + std::string(what) +
                                         " needs the component dispatcher");
  }
  MetadataReader reader(context.metadata);
  absl::StatusOr<Settings> settings = Settings::Read(reader);
  if (!settings.ok()) {
    return absl::InvalidArgumentError(context.Label() + ": " +
                                      std::string(settings.status().message()));
  }
  reader.ReportUnknown(context.Label());
  return std::make_unique<Impl>(context, std::move(*settings));
}

}  // namespace ottava::components::pubsub
