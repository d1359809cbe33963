#pragma once

// Logging: one spdlog logger per module, all writing to stderr. The level is checked before any
// formatting happens, so a disabled log statement costs one load and one compare.

#include <spdlog/spdlog.h>

#include <array>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ottava::logging {

enum class Module : int {
  kRuntime = 0,
  kGrpc,
  kApi,
  kCallback,
  kComponents,
  kPubsub,
  kRedis,
  kKafka,
  kMesh,
  kWasm,
  kActuator,
  kCount,
};

/// Names used by config and the actuator's logger endpoint ("runtime", "grpc", ...).
std::string_view ModuleName(Module module);

/// The logger of a module; created on first use, lives for the process.
spdlog::logger& Logger(Module module);

/// Sets every module's level. `level` is trace|debug|info|warn|error|critical|off.
absl::Status SetAllLevels(std::string_view level);

/// Sets one module's level, by module name.
absl::Status SetLevel(std::string_view module, std::string_view level);

/// Current level name of a module, or an empty string for an unknown module.
std::string LevelOf(std::string_view module);

/// Whether `level` names a level.
bool IsValidLevel(std::string_view level);

/// The level names OTTAVA_LOG accepts: spdlog's own plus `error` and `warning`.
namespace levels {
inline constexpr auto trace = spdlog::level::trace;
inline constexpr auto debug = spdlog::level::debug;
inline constexpr auto info = spdlog::level::info;
inline constexpr auto warn = spdlog::level::warn;
inline constexpr auto warning = spdlog::level::warn;
inline constexpr auto err = spdlog::level::err;
inline constexpr auto error = spdlog::level::err;
inline constexpr auto critical = spdlog::level::critical;
}  // namespace levels

}  // namespace ottava::logging

#ifndef ABSL_USES_STD_STRING_VIEW
// Debian's Abseil has its own string_view (what absl::Status::message() returns); let logs print
// it.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(absl::string_view value, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(value.data(), value.size()),
                                                    ctx);
  }
};
#endif

/// OTTAVA_LOG(Runtime, info, "started {} components", n)
// (The level parameter must not be called `level`: it would also replace `spdlog::level`.)
#define OTTAVA_LOG(module, lvl, ...)                                                        \
  do {                                                                                      \
    auto& ottava_logger_ = ::ottava::logging::Logger(::ottava::logging::Module::k##module); \
    if (ottava_logger_.should_log(::ottava::logging::levels::lvl)) {                        \
      ottava_logger_.log(::ottava::logging::levels::lvl, __VA_ARGS__);                      \
    }                                                                                       \
  } while (false)
