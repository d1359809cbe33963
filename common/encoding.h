#pragma once

// Small encodings: base64 (RFC 4648, padded) and random UUIDs (version 4).

#include <optional>
#include <string>
#include <string_view>

namespace ottava {

std::string Base64Encode(std::string_view bytes);
/// nullopt when `text` is not valid padded base64.
std::optional<std::string> Base64Decode(std::string_view text);

/// A random version-4 UUID, lower-case hex with dashes. Any thread.
std::string RandomUuid();

}  // namespace ottava
