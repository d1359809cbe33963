#include "runtime/api/api_token.h"

#include <cstdint>
#include <string>

namespace ottava::runtime::api {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the whole presented value against the token (cycled), so the time depends on the
  // lengths only; the length difference is folded into the result.
  uint8_t diff = a.size() == b.size() ? 0 : 1;
  if (a.empty()) {
    return b.empty();
  }
  for (size_t i = 0; i < b.size(); ++i) {
    diff |= static_cast<uint8_t>(a[i % a.size()] ^ b[i]);
  }
  volatile uint8_t result = diff;
  return result == 0;
}

absl::Status CheckApiToken(std::string_view expected, const std::string_view* presented) {
  if (expected.empty()) {
    return absl::OkStatus();
  }
  if (presented == nullptr) {
    return absl::UnauthenticatedError("missing api token in request metadata (" +
                                      std::string(kApiTokenHeader) + ")");
  }
  if (!ConstantTimeEquals(expected, *presented)) {
    return absl::UnauthenticatedError("authentication error: api token mismatch");
  }
  return absl::OkStatus();
}

}  // namespace ottava::runtime::api
