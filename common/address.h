#pragma once

// A "host:port" network address as written in config files, and its conversion to a socket
// address. Shared by the runtime's listeners and the mesh.

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ottava {

/// A "host:port" address; port 0 asks the kernel for a free port.
struct Address {
  std::string host;
  uint16_t port = 0;

  /// "host:port", IPv6 hosts in brackets.
  std::string ToString() const;
  /// Fills a sockaddr for a numeric IPv4 or IPv6 host ("localhost" means 127.0.0.1). No DNS.
  absl::Status ToSockaddr(sockaddr_storage* out, socklen_t* length) const;

  /// Where a client on this host reaches a socket bound here: a wildcard host (0.0.0.0, ::,
  /// empty) becomes the loopback address of its family.
  Address Reachable() const;

  bool operator==(const Address& other) const = default;
};

/// Parses "host:port" (IPv6 hosts in brackets). `pointer` names the config key in errors.
absl::StatusOr<Address> ParseAddress(std::string_view text, const std::string& pointer);

/// The address a socket is bound to (getsockname) or connected to (getpeername, `peer`).
absl::StatusOr<Address> SocketAddress(int fd, bool peer = false);

}  // namespace ottava
