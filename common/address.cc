#include "common/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "common/json_config.h"

namespace ottava {

std::string Address::ToString() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

Address Address::Reachable() const {
  if (host.empty() || host == "0.0.0.0") {
    return Address{"127.0.0.1", port};
  }
  if (host == "::") {
    return Address{"::1", port};
  }
  return *this;
}

absl::Status Address::ToSockaddr(sockaddr_storage* out, socklen_t* length) const {
  std::memset(out, 0, sizeof(*out));
  const std::string& numeric = host == "localhost" ? std::string("127.0.0.1") : host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, numeric.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *length = sizeof(sockaddr_in);
    return absl::OkStatus();
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, numeric.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *length = sizeof(sockaddr_in6);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("'" + host + "' is not a numeric IPv4 or IPv6 address");
}

absl::StatusOr<Address> ParseAddress(std::string_view text, const std::string& pointer) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return config::ConfigError(pointer, "expected host:port, got '" + std::string(text) + "'");
  }
  std::string host(text.substr(0, colon));
  if (host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string_view port_text = text.substr(colon + 1);
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || port > 65535) {
      return config::ConfigError(pointer, "invalid port in '" + std::string(text) + "'");
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) {
    return config::ConfigError(pointer, "port out of range in '" + std::string(text) + "'");
  }
  return Address{std::move(host), static_cast<uint16_t>(port)};
}

absl::StatusOr<Address> SocketAddress(int fd, bool peer) {
  sockaddr_storage storage;
  socklen_t length = sizeof(storage);
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
  if (rc != 0) {
    return absl::InternalError(std::string(peer ? "getpeername" : "getsockname") +
                               " failed: " + std::strerror(errno));
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return Address{text, ntohs(v4->sin_port)};
  }
  if (storage.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return Address{text, ntohs(v6->sin6_port)};
  }
  return absl::InternalError("socket is neither IPv4 nor IPv6");
}

}  // namespace ottava
