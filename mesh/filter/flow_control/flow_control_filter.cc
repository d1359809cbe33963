#include "mesh/filter/flow_control/flow_control_filter.h"

#include "common/json_config.h"
#include "common/status.h"

namespace ottava::mesh::flow {
namespace {

class HeaderMapLookup : public HeaderLookup {
 public:
  explicit HeaderMapLookup(const HeaderMap& headers) : headers_(headers) {}
  const std::string* Get(std::string_view lower_name) const override {
    return headers_.Get(lower_name);
  }

 private:
  const HeaderMap& headers_;
};

// "10.0.0.1:5000" → "10.0.0.1"; "[::1]:5000" → "::1".
std::string_view HostOf(std::string_view address) {
  if (address.starts_with('[')) {
    const size_t end = address.find(']');
    return end == std::string_view::npos ? address : address.substr(1, end - 1);
  }
  const size_t colon = address.rfind(':');
  return colon == std::string_view::npos ? address : address.substr(0, colon);
}

class FlowControlFilter : public StreamFilter {
 public:
  FlowControlFilter(Controller& controller, std::shared_ptr<const std::string> mode)
      : controller_(controller), mode_(std::move(mode)) {}

  void SetCallbacks(StreamFilterCallbacks& callbacks) override { callbacks_ = &callbacks; }

  FilterStatus DecodeHeaders(RequestHeaders& headers, bool) override {
    const std::string_view peer = callbacks_->downstream_address();
    const std::string resource = ResourceOf(headers, peer.empty(), *mode_);
    HeaderMapLookup lookup(headers.headers);
    Traffic traffic;
    traffic.resource = resource;
    traffic.source_ip = HostOf(peer);
    traffic.query = headers.Query();
    traffic.headers = &lookup;
    entry_ = controller_.Check(traffic);
    active_ = true;
    if (entry_.blocked()) {
      return Blocked(/*stopped=*/false);
    }
    if (entry_.cluster_pending()) {
      // The central counter answers on another thread (or this one, before CheckCluster
      // returns): the verdict always comes back through the worker's queue, and only while this
      // filter still exists.
      token_ = std::make_shared<Token>(Token{this, &callbacks_->dispatcher()});
      std::weak_ptr<Token> weak = token_;
      controller_.CheckCluster(entry_, [weak](int verdict) {
        if (std::shared_ptr<Token> token = weak.lock()) {
          token->dispatcher->Post([weak, verdict] {
            if (std::shared_ptr<Token> alive = weak.lock()) {
              alive->filter->OnClusterVerdict(verdict);
            }
          });
        }
      });
      return FilterStatus::kStop;
    }
    return Proceed(/*stopped=*/false);
  }

  void EncodeHeaders(ResponseHeaders& headers) override {
    responded_ = true;
    error_ = headers.status >= 500;
  }

  void OnDestroy() override {
    token_.reset();
    timer_.reset();
    if (active_) {
      controller_.Exit(entry_, Outcome{!responded_ || error_});
      active_ = false;
    }
  }

 private:
  Controller& controller_;
  std::shared_ptr<const std::string> mode_;
  StreamFilterCallbacks* callbacks_ = nullptr;
  // Lets a verdict of the central counter find this filter (on its worker) while it lives.
  struct Token {
    FlowControlFilter* filter;
    Dispatcher* dispatcher;
  };

  // Refused by a rule: answered, or sent on to the rule's fallback (downgrade) cluster.
  FilterStatus Blocked(bool stopped) {
    const ReplySpec& reply = *entry_.reply();
    if (!reply.fallback_cluster.empty()) {
      callbacks_->RouteToCluster(reply.fallback_cluster);
      if (stopped) {
        callbacks_->ContinueDecoding();
      }
      return FilterStatus::kContinue;
    }
    callbacks_->SendLocalReply(reply.status, reply.body);
    return FilterStatus::kStop;
  }

  // Passed every check: go on now, or after the throttling wait. `stopped`: the chain is waiting
  // for this filter, so going on means ContinueDecoding().
  FilterStatus Proceed(bool stopped) {
    if (entry_.wait().count() > 0) {
      timer_ = callbacks_->dispatcher().CreateTimer([this] { callbacks_->ContinueDecoding(); });
      // Rounded up: a request never leaves its queue before its turn.
      const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(entry_.wait());
      timer_->Enable(wait_ms);
      return FilterStatus::kStop;
    }
    if (stopped) {
      callbacks_->ContinueDecoding();
    }
    return FilterStatus::kContinue;
  }

  void OnClusterVerdict(int verdict) {
    token_.reset();
    controller_.FinishCluster(entry_, verdict);
    if (entry_.blocked()) {
      Blocked(/*stopped=*/true);
      return;
    }
    Proceed(/*stopped=*/true);
  }

  Entry entry_;
  std::shared_ptr<Token> token_;
  TimerPtr timer_;
  bool active_ = false;
  bool responded_ = false;
  bool error_ = false;
};

class FlowControlFilterFactory : public FilterFactory {
 public:
  explicit FlowControlFilterFactory(Controller& controller) : controller_(controller) {}
  std::string_view name() const override { return "flow_control"; }

  absl::StatusOr<FilterFactoryCb> Create(const nlohmann::json& json,
                                         const std::string& pointer) const override {
    config::ObjectReader reader(json, pointer);
    std::string mode = "auto";
    OTTAVA_RETURN_IF_ERROR(reader.String("resource", &mode));
    if (mode != "auto" && mode != "path" && mode != "service") {
      return config::ConfigError(reader.PointerOf("resource"),
                                 "must be one of auto, path, service (got '" + mode + "')");
    }
    OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
    auto shared = std::make_shared<const std::string>(mode);
    Controller* controller = &controller_;
    return FilterFactoryCb(
        [controller, shared] { return std::make_unique<FlowControlFilter>(*controller, shared); });
  }

 private:
  Controller& controller_;
};

}  // namespace

std::string ResourceOf(const RequestHeaders& headers, bool in_process, std::string_view mode) {
  if (mode == "path") {
    return std::string(headers.PathOnly());
  }
  if (mode == "service") {
    return headers.service;
  }
  if (headers.rpc.has_value()) {
    const std::string* method = headers.headers.Get("sofa_head_method_name");
    return method != nullptr && !method->empty() ? headers.service + "#" + *method
                                                 : headers.service;
  }
  if (in_process) {
    std::string_view method = headers.PathOnly();
    if (method.starts_with('/')) {
      method.remove_prefix(1);
    }
    return headers.service + "#" + std::string(method);
  }
  return std::string(headers.PathOnly());
}

FilterFactoryPtr CreateFlowControlFilterFactory(Controller& controller) {
  return std::make_unique<FlowControlFilterFactory>(controller);
}

}  // namespace ottava::mesh::flow
