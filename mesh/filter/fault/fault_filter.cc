#include "mesh/filter/fault/fault_filter.h"

#include <atomic>
#include <random>

#include "common/json_config.h"
#include "common/status.h"

namespace ottava::mesh {
namespace {

using config::ObjectReader;

struct FaultConfig {
  int64_t delay_ms = 0;
  double delay_percent = 0;
  int64_t abort_status = 0;
  double abort_percent = 0;
  std::string header;
};

// Percent sampling without a shared lock: one generator per thread.
bool Sample(double percent) {
  if (percent <= 0) {
    return false;
  }
  if (percent >= 100) {
    return true;
  }
  thread_local std::minstd_rand generator(std::random_device{}());
  return std::uniform_real_distribution<double>(0, 100)(generator) < percent;
}

absl::Status ReadPercent(ObjectReader& reader, double* out) {
  const nlohmann::json* value = reader.Child("percent");
  if (value == nullptr) {
    *out = 100;
    return absl::OkStatus();
  }
  if (!value->is_number() || value->get<double>() < 0 || value->get<double>() > 100) {
    return config::ConfigError(reader.PointerOf("percent"), "must be a number from 0 to 100");
  }
  *out = value->get<double>();
  return absl::OkStatus();
}

class FaultFilter : public StreamFilter {
 public:
  explicit FaultFilter(std::shared_ptr<const FaultConfig> config) : config_(std::move(config)) {}

  void SetCallbacks(StreamFilterCallbacks& callbacks) override { callbacks_ = &callbacks; }

  FilterStatus DecodeHeaders(RequestHeaders& headers, bool) override {
    if (!config_->header.empty() && headers.headers.Get(config_->header) == nullptr) {
      return FilterStatus::kContinue;
    }
    abort_ = config_->abort_status != 0 && Sample(config_->abort_percent);
    if (config_->delay_ms > 0 && Sample(config_->delay_percent)) {
      timer_ = callbacks_->dispatcher().CreateTimer([this] { AfterDelay(); });
      timer_->Enable(std::chrono::milliseconds(config_->delay_ms));
      return FilterStatus::kStop;
    }
    if (abort_) {
      Abort();
      return FilterStatus::kStop;
    }
    return FilterStatus::kContinue;
  }

  void OnDestroy() override { timer_.reset(); }

 private:
  void AfterDelay() {
    if (abort_) {
      Abort();
      return;
    }
    callbacks_->ContinueDecoding();
  }

  void Abort() {
    callbacks_->SendLocalReply(static_cast<int>(config_->abort_status),
                               "fault filter aborted the request\n");
  }

  std::shared_ptr<const FaultConfig> config_;
  StreamFilterCallbacks* callbacks_ = nullptr;
  TimerPtr timer_;
  bool abort_ = false;
};

class FaultFilterFactory : public FilterFactory {
 public:
  std::string_view name() const override { return "fault"; }

  absl::StatusOr<FilterFactoryCb> Create(const nlohmann::json& json,
                                         const std::string& pointer) const override {
    auto parsed = std::make_shared<FaultConfig>();
    ObjectReader reader(json, pointer);
    if (const nlohmann::json* delay = reader.Child("delay")) {
      OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*delay, reader.PointerOf("delay")));
      ObjectReader delay_reader(*delay, reader.PointerOf("delay"));
      OTTAVA_RETURN_IF_ERROR(delay_reader.Int("ms", &parsed->delay_ms, 1, 3600 * 1000));
      if (parsed->delay_ms == 0) {
        return config::ConfigError(delay_reader.PointerOf("ms"), "is required");
      }
      OTTAVA_RETURN_IF_ERROR(ReadPercent(delay_reader, &parsed->delay_percent));
      OTTAVA_RETURN_IF_ERROR(delay_reader.CheckNoUnknownKeys());
    }
    if (const nlohmann::json* abort = reader.Child("abort")) {
      OTTAVA_RETURN_IF_ERROR(ObjectReader::CheckObject(*abort, reader.PointerOf("abort")));
      ObjectReader abort_reader(*abort, reader.PointerOf("abort"));
      OTTAVA_RETURN_IF_ERROR(abort_reader.Int("status", &parsed->abort_status, 200, 599));
      if (parsed->abort_status == 0) {
        return config::ConfigError(abort_reader.PointerOf("status"), "is required");
      }
      OTTAVA_RETURN_IF_ERROR(ReadPercent(abort_reader, &parsed->abort_percent));
      OTTAVA_RETURN_IF_ERROR(abort_reader.CheckNoUnknownKeys());
    }
    OTTAVA_RETURN_IF_ERROR(reader.String("header", &parsed->header));
    OTTAVA_RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
    if (parsed->delay_ms == 0 && parsed->abort_status == 0) {
      return config::ConfigError(pointer, "needs \"delay\" or \"abort\"");
    }
    std::shared_ptr<const FaultConfig> shared = std::move(parsed);
    return FilterFactoryCb([shared] { return std::make_unique<FaultFilter>(shared); });
  }
};

}  // namespace

FilterFactoryPtr CreateFaultFilterFactory() {
  return std::make_unique<FaultFilterFactory>();
}

}  // namespace ottava::mesh
