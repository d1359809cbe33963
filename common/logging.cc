#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <memory>

namespace ottava::logging {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Module::kCount)> kNames = {
    "runtime", "grpc",  "api",  "callback", "components", "pubsub",
    "redis",   "kafka", "mesh", "wasm",     "actuator",
};

struct Loggers {
  Loggers() {
    // One shared, mutex-protected sink so lines from different threads never interleave.
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    for (size_t i = 0; i < kNames.size(); ++i) {
      loggers[i] = std::make_shared<spdlog::logger>(std::string(kNames[i]), sink);
      loggers[i]->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L [%n] %v");
      loggers[i]->set_level(spdlog::level::info);
      loggers[i]->flush_on(spdlog::level::warn);
    }
  }
  std::array<std::shared_ptr<spdlog::logger>, kNames.size()> loggers;
};

Loggers& AllLoggers() {
  static Loggers* loggers = new Loggers();  // never destroyed: threads may log during exit
  return *loggers;
}

bool ParseLevel(std::string_view name, spdlog::level::level_enum* out) {
  if (name == "warning") {
    name = "warn";
  }
  if (name == "error") {
    name = "err";
  }
  auto level = spdlog::level::from_str(std::string(name));
  // from_str answers "off" for anything it does not know.
  if (level == spdlog::level::off && name != "off") {
    return false;
  }
  *out = level;
  return true;
}

}  // namespace

std::string_view ModuleName(Module module) {
  return kNames[static_cast<size_t>(module)];
}

spdlog::logger& Logger(Module module) {
  return *AllLoggers().loggers[static_cast<size_t>(module)];
}

bool IsValidLevel(std::string_view level) {
  spdlog::level::level_enum parsed;
  return ParseLevel(level, &parsed);
}

absl::Status SetAllLevels(std::string_view level) {
  spdlog::level::level_enum parsed;
  if (!ParseLevel(level, &parsed)) {
    return absl::InvalidArgumentError("unknown log level '" + std::string(level) +
                                      "' (trace|debug|info|warn|error|critical|off)");
  }
  for (auto& logger : AllLoggers().loggers) {
    logger->set_level(parsed);
  }
  return absl::OkStatus();
}

absl::Status SetLevel(std::string_view module, std::string_view level) {
  spdlog::level::level_enum parsed;
  if (!ParseLevel(level, &parsed)) {
    return absl::InvalidArgumentError("unknown log level '" + std::string(level) +
                                      "' (trace|debug|info|warn|error|critical|off)");
  }
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == module) {
      AllLoggers().loggers[i]->set_level(parsed);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError("unknown logger module '" + std::string(module) + "'");
}

std::string LevelOf(std::string_view module) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == module) {
      auto view = spdlog::level::to_string_view(AllLoggers().loggers[i]->level());
      return std::string(view.data(), view.size());
    }
  }
  return "";
}

}  // namespace ottava::logging
