#pragma once

// A librdkafka mock cluster for one test: the `kafka_mock` helper binary started with N brokers on
// 127.0.0.1 (random ports), driven through its stdin (see test/support/kafka_mock.cc for the
// commands). The destructor kills it.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ottava::test {

class KafkaCluster {
 public:
  /// Starts `brokers` brokers with `topics` (name, partitions) created; waits (bounded) for the
  /// bootstrap address.
  static absl::StatusOr<std::unique_ptr<KafkaCluster>> Start(
      int brokers, const std::vector<std::pair<std::string, int>>& topics = {});
  ~KafkaCluster();

  /// "127.0.0.1:p1,127.0.0.1:p2,...", what the `brokers` metadata takes.
  const std::string& bootstrap() const { return bootstrap_; }

  /// Sends one command ("down -1", "error Produce NOT_LEADER_FOR_PARTITION 3", ...) and waits
  /// (at most 5 s) for its answer; an error when the helper answers "error: ...".
  absl::Status Command(const std::string& line);

 private:
  KafkaCluster() = default;

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string bootstrap_;
  std::string buffered_;
};

}  // namespace ottava::test
