#pragma once

// The API token (Dapr's DAPR_API_TOKEN, config `api_token`): every API call, Dapr's and Layotto's,
// over gRPC and HTTP, must carry it as `dapr-api-token`. The front ends ask CheckApiToken; the
// comparison takes the same time whatever the presented value shares with the token.

#include <string_view>

#include "absl/status/status.h"

namespace ottava::runtime::api {

/// The header (and gRPC metadata key) that carries the token.
inline constexpr std::string_view kApiTokenHeader = "dapr-api-token";

/// Compares in time that depends only on the lengths, never on where the bytes differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

/// OK when `expected` is empty (no token configured) or `presented` equals it; else
/// UNAUTHENTICATED (a missing token and a wrong one are told apart in the message only).
absl::Status CheckApiToken(std::string_view expected, const std::string_view* presented);

}  // namespace ottava::runtime::api
