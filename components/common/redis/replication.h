#pragma once

// How many replicas a Redis primary has, from `INFO replication`. The state store uses it to know
// whether a strong write must WAIT for replicas; the lock store refuses to grant locks on a server
// with replicas (asynchronous replication can lose a grant on failover).
//
// Header-only so that each Redis component library can use it without a library of its own.

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "common/dispatcher.h"
#include "components/common/redis/redis_client.h"
#include "components/periodic_task.h"

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

/// The replica count of one Redis server, kept current for a store: read when the store starts,
/// then again every interval on the dispatcher thread. count() and set() are any thread.
class ReplicaWatch {
 public:
  /// Runs on the dispatcher thread after every successful background read, with the count before
  /// and after it (they may be equal).
  using OnRead = std::function<void(int64_t before, int64_t now)>;

  /// `client` must outlive the watch; `initial` is the count until the first read succeeds.
  ReplicaWatch(Client& client, int64_t initial, OnRead on_read)
      : client_(client), on_read_(std::move(on_read)), count_(initial) {}
  ~ReplicaWatch() { Stop(); }

  ReplicaWatch(const ReplicaWatch&) = delete;
  ReplicaWatch& operator=(const ReplicaWatch&) = delete;

  /// Starts the reads every `interval` on `dispatcher`. At most once.
  void Start(Dispatcher& dispatcher, std::chrono::milliseconds interval) {
    task_ = std::make_unique<PeriodicTask>(dispatcher, interval, [this] { Refresh(); });
    task_->Start();
  }
  /// Stops the periodic reads (a read already sent may still complete). Idempotent.
  void Stop() {
    if (task_ != nullptr) {
      task_->Stop();
    }
  }

  /// Reads the count now, waiting for the answer, and keeps it. Never on the dispatcher thread.
  absl::StatusOr<int64_t> ReadBlocking() {
    absl::StatusOr<int64_t> count = CountReplicasBlocking(client_);
    if (count.ok()) {
      count_.store(*count);
    }
    return count;
  }

  /// Reads the count in the background. A failed read changes nothing: the next round tries again.
  void Refresh() {
    CountReplicas(client_, [this](absl::StatusOr<int64_t> count) {
      if (!count.ok()) {
        return;
      }
      const int64_t before = count_.exchange(*count);
      on_read_(before, *count);
    });
  }

  int64_t count() const { return count_.load(); }
  void set(int64_t count) { count_.store(count); }

 private:
  Client& client_;
  const OnRead on_read_;
  std::atomic<int64_t> count_;
  std::unique_ptr<PeriodicTask> task_;
};

}  // namespace ottava::components::redis
