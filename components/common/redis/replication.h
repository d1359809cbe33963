#pragma once

// How many replicas a Redis primary has, from `INFO replication`. The state store uses it to know
// whether a strong write must WAIT for replicas; the lock store refuses to grant locks on a server
// with replicas (asynchronous replication can lose a grant on failover).
//
// Header-only so that each Redis component library can use it without a library of its own.

#include <charconv>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "components/common/redis/redis_client.h"

namespace ottava::components::redis {

/// The integer value of `field` in an INFO reply ("connected_slaves" in "...\r\nconnected_slaves:
/// 2\r\n..."), or nullopt when the field is absent or not an integer.
inline std::optional<int64_t> InfoInteger(std::string_view info, std::string_view field) {
  size_t pos = 0;
  while (pos < info.size()) {
    size_t end = info.find('\n', pos);
    if (end == std::string_view::npos) {
      end = info.size();
    }
    std::string_view line = info.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.size() > field.size() && line.substr(0, field.size()) == field &&
        line[field.size()] == ':') {
      std::string_view text = line.substr(field.size() + 1);
      int64_t value = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || ptr != text.data() + text.size()) {
        return std::nullopt;
      }
      return value;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

/// Asks the server how many replicas are connected to it. `done` runs once, on the client's
/// dispatcher thread (or inline when the client fails at once).
inline void CountReplicas(Client& client, std::function<void(absl::StatusOr<int64_t>)> done) {
  client.Command(
      {"INFO", "replication"}, [&client, done = std::move(done)](absl::StatusOr<Reply> reply) {
        if (!reply.ok()) {
          done(reply.status());
          return;
        }
        if (reply->is_error()) {
          done(absl::InternalError(client.label() + ": INFO replication failed: " + reply->str));
          return;
        }
        std::optional<int64_t> count = InfoInteger(reply->str, "connected_slaves");
        if (!count.has_value()) {
          done(absl::InternalError(client.label() +
                                   ": INFO replication has no connected_slaves field"));
          return;
        }
        done(*count);
      });
}

/// CountReplicas, waiting for the answer (bounded by the client's command timeout). Never call it
/// on the dispatcher thread.
inline absl::StatusOr<int64_t> CountReplicasBlocking(Client& client) {
  std::promise<absl::StatusOr<int64_t>> promise;
  std::future<absl::StatusOr<int64_t>> result = promise.get_future();
  CountReplicas(client,
                [&promise](absl::StatusOr<int64_t> count) { promise.set_value(std::move(count)); });
  return result.get();
}

}  // namespace ottava::components::redis
