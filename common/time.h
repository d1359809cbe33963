#pragma once

#include <chrono>
#include <string>

namespace ottava {

using SystemTime = std::chrono::system_clock::time_point;
using MonotonicTime = std::chrono::steady_clock::time_point;

/// RFC 3339 UTC with second precision, e.g. "2026-11-22T10:00:00Z".
std::string FormatRfc3339(SystemTime time);

}  // namespace ottava
