#include "runtime/flow_control.h"

#include "common/logging.h"

namespace ottava::runtime {

FlowControl::FlowControl(const std::optional<mesh::flow::FlowControlConfig>& config,
                         stats::Store& stats)
    : stats_(stats), config_(config) {
  controller_ = mesh::flow::Controller::Create(config_ ? config_->rules : mesh::flow::RuleSet{},
                                               time_, stats_);
}

FlowControl::~FlowControl() {
  Unsubscribe();
  controller_->SetClusterCounter(nullptr);
  if (adaptive_loop_) {
    adaptive_loop_->RunAndWait([this] { adaptive_timer_.reset(); });
    adaptive_loop_->Stop();
  }
  controller_->SetAdaptive(nullptr);
}

absl::Status FlowControl::StartAdaptive() {
  if (!config_ || !config_->adaptive) {
    return absl::OkStatus();
  }
  adaptive_ = std::make_unique<mesh::flow::AdaptiveLimiter>(
      *config_->adaptive, std::make_unique<mesh::flow::ProcSystemSource>());
  auto loop = Dispatcher::Create("flow-adaptive");
  if (!loop.ok()) {
    return loop.status();
  }
  adaptive_loop_ = std::move(*loop);
  adaptive_loop_->Start();
  adaptive_loop_->RunAndWait([this] {
    adaptive_timer_ = adaptive_loop_->CreateTimer([this] {
      const mesh::flow::AdaptiveLimiter::Phase before = adaptive_->phase();
      adaptive_->Tick();
      const mesh::flow::AdaptiveLimiter::Phase after = adaptive_->phase();
      if (after != before) {
        if (mesh::flow::EventListener* listener = listener_.load()) {
          static constexpr std::string_view kPhases[] = {"normal", "shed_stress", "baseline"};
          listener->OnEvent(mesh::flow::FlowEvent{mesh::flow::FlowEvent::Kind::kAdaptiveTrigger,
                                                  "*", "adaptive",
                                                  kPhases[static_cast<int>(after)]});
        }
      }
      adaptive_timer_->Enable(std::chrono::seconds(1));
    });
    adaptive_timer_->Enable(std::chrono::seconds(1));
  });
  stats_.CallbackGauge("ottava_flow_control_water_level",
                       "Adaptive limiting: max of process and host CPU share, last second", {},
                       [limiter = adaptive_.get()] { return limiter->level(); });
  controller_->SetAdaptive(adaptive_.get());
  return absl::OkStatus();
}

absl::Status FlowControl::Apply(std::string_view text, const std::string& source) {
  absl::Status status = controller_->UpdateFromText(text);
  stats_
      .CounterFor("ottava_flow_control_rule_updates_total",
                  "Flow-control rule sets received, by source and result",
                  {{"source", source}, {"result", status.ok() ? "applied" : "refused"}})
      .Inc();
  if (status.ok()) {
    OTTAVA_LOG(Runtime, info, "flow control: rule set version {} applied from {}",
               controller_->version(), source);
  } else {
    OTTAVA_LOG(Runtime, warn, "flow control: rule set from {} refused, previous kept: {}", source,
               status.message());
  }
  return status;
}

void FlowControl::AddActuatorHandlers(actuator::Actuator& actuator) {
  FlowControl* self = this;
  actuator.AddHandler("GET", "/actuator/flow-control", "flow-control rules and their live counters",
                      [self](const actuator::HttpRequest&) {
                        nlohmann::json view = self->controller_->Describe();
                        if (self->adaptive_) {
                          view["adaptive"] = self->adaptive_->Describe();
                        }
                        return actuator::HttpResponse{200, "application/json", view.dump()};
                      });
  actuator.AddHandler(
      "PUT", "/actuator/flow-control",
      "replace the flow-control rule set: {\"rules\": [...], \"reply\": {...}}",
      [self](const actuator::HttpRequest& request) {
        absl::Status status = self->Apply(request.body, "actuator");
        if (!status.ok()) {
          return actuator::HttpResponse{
              400, "application/json",
              nlohmann::json{{"error", std::string(status.message())}}.dump()};
        }
        return actuator::HttpResponse{200, "application/json",
                                      self->controller_->Describe().dump()};
      },
      /*loopback_only=*/true);
}

absl::Status FlowControl::Subscribe(const ComponentSet& set, const std::string& app_id) {
  if (!config_ || config_->config_store.empty()) {
    return absl::OkStatus();
  }
  store_ = set.FindConfigStore(config_->config_store);
  if (store_ == nullptr) {  // the bootstrap checked the name; the component may have failed
    return absl::FailedPreconditionError("flow control: config_store '" + config_->config_store +
                                         "' is not available");
  }
  components::config_store::Selector selector;
  selector.app_id = app_id;
  selector.group = config_->config_group.empty() ? store_->DefaultGroup() : config_->config_group;
  selector.label = store_->DefaultLabel();
  selector.keys = {config_->config_key};
  const std::string key = config_->config_key;
  const std::string source = "config_store/" + config_->config_store;
  auto on_items = [this, key, source](const std::vector<components::config_store::Item>& items) {
    for (const auto& item : items) {
      if (item.key != key) {
        continue;
      }
      if (item.content.empty()) {
        OTTAVA_LOG(Runtime, warn, "flow control: item '{}' deleted; the current rules stay", key);
        continue;
      }
      (void)Apply(item.content, source);
    }
  };
  absl::StatusOr<uint64_t> id = store_->Subscribe(
      selector,
      [on_items](std::vector<components::config_store::Item> changed) { on_items(changed); });
  if (!id.ok()) {
    return id.status();
  }
  subscription_ = *id;
  // The item as it is now (changes from here on arrive through the subscription).
  store_->Get(selector,
              [on_items](absl::StatusOr<std::vector<components::config_store::Item>> items) {
                if (items.ok()) {
                  on_items(*items);
                } else {
                  OTTAVA_LOG(Runtime, warn, "flow control: reading the rules item failed: {}",
                             items.status().message());
                }
              });
  return absl::OkStatus();
}

absl::Status FlowControl::StartCluster(Dispatcher* dispatcher) {
  if (!config_ || !config_->cluster) {
    return absl::OkStatus();
  }
  auto counter = RedisClusterCounter::Create(*config_->cluster, dispatcher);
  if (!counter.ok()) {
    return counter.status();
  }
  counter_ = std::move(*counter);
  counter_->Connect();
  controller_->SetClusterCounter(counter_.get());
  stats_.CallbackGauge("ottava_flow_control_cluster_counter_up",
                       "Whether the central counter of cluster rules answers (1) or the rules "
                       "use their fallback (0)",
                       {}, [counter = counter_.get()] { return counter->Healthy() ? 1.0 : 0.0; });
  return absl::OkStatus();
}

absl::Status FlowControl::StartEvents(const ComponentSet& set, const std::string& app_id) {
  if (!config_ || !config_->events) {
    return absl::OkStatus();
  }
  components::pubsub::PubSub* pubsub = set.FindPubSub(config_->events->pubsub);
  if (pubsub == nullptr) {
    return absl::FailedPreconditionError("flow control: events pubsub '" + config_->events->pubsub +
                                         "' is not available");
  }
  events_ =
      std::make_unique<FlowEventPublisher>(*pubsub, config_->events->topic, app_id, time_, stats_);
  listener_.store(events_.get());
  controller_->SetEventListener(events_.get());
  return absl::OkStatus();
}

void FlowControl::Unsubscribe() {
  controller_->SetEventListener(nullptr);
  listener_.store(nullptr);
  if (counter_) {
    counter_->Shutdown();
  }
  if (store_ != nullptr && subscription_ != 0) {
    store_->Unsubscribe(subscription_);
  }
  subscription_ = 0;
  store_ = nullptr;
}

}  // namespace ottava::runtime
