// What the building blocks' conformance suites (components/*/*_conformance.h) share. Test-only.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ottava::components::conformance_support {

// A look at the backend behind the store under test, for the checks that the data really landed
// there.
class BackendProbe {
 public:
  virtual ~BackendProbe() = default;
  // The backend's answer to `command` (a redis-cli argv); std::nullopt for implementations with no
  // backend to look at, which then skip those checks.
  virtual std::optional<std::string> Backend(const std::vector<std::string>& command) {
    (void)command;
    return std::nullopt;
  }
};

// Polls `done` until it holds or `timeout` passes.
inline bool WaitUntil(const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// The test-name suffix of a conformance parameter: its `name`.
struct ParamName {
  template <class Param>
  std::string operator()(const ::testing::TestParamInfo<Param>& info) const {
    return info.param.name;
  }
};

}  // namespace ottava::components::conformance_support
