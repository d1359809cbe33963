#include "runtime/flow_cluster_counter.h"

#include "common/logging.h"

namespace ottava::runtime {
namespace {

// KEYS[1] counter, ARGV[1] delta, ARGV[2] ttl in ms. The expiry is set by whoever created the
// key, so a window's key disappears on its own.
constexpr char kAddScript[] =
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
    "if v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
    "return v\n";

}  // namespace

RedisClusterCounter::RedisClusterCounter(std::string prefix, Dispatcher* dispatcher)
    : prefix_(std::move(prefix)), dispatcher_(dispatcher), script_(kAddScript) {}

absl::StatusOr<std::unique_ptr<RedisClusterCounter>> RedisClusterCounter::Create(
    const mesh::flow::FlowControlConfig::Cluster& config, Dispatcher* dispatcher) {
  components::Metadata metadata(config.redis.begin(), config.redis.end());
  metadata.try_emplace("timeout", "100ms");
  metadata.try_emplace("dialTimeout", "1s");
  absl::StatusOr<components::redis::ClientSettings> settings =
      components::redis::ClientSettings::Parse(metadata);
  if (!settings.ok()) {
    return absl::InvalidArgumentError("flow_control/cluster/redis: " +
                                      std::string(settings.status().message()));
  }
  std::unique_ptr<RedisClusterCounter> counter(
      new RedisClusterCounter(config.key_prefix, dispatcher));
  auto client = components::redis::Client::Create(std::move(*settings), dispatcher,
                                                  &counter->health_, "flow_control/cluster");
  if (!client.ok()) {
    return client.status();
  }
  counter->client_ = std::move(*client);
  counter->client_->AddScript(&counter->script_);
  return counter;
}

RedisClusterCounter::~RedisClusterCounter() {
  Shutdown();
}

void RedisClusterCounter::Connect() {
  if (absl::Status status = client_->Connect(); !status.ok()) {
    OTTAVA_LOG(Runtime, warn,
               "flow control: the cluster counter is not reachable yet ({}); cluster rules use "
               "their fallback until it is",
               status.message());
  }
}

void RedisClusterCounter::Shutdown() {
  if (client_) {
    client_->Shutdown();
  }
}

void RedisClusterCounter::Add(const std::string& key,
                              int64_t delta,
                              std::chrono::milliseconds ttl,
                              AddCallback done) {
  dispatcher_->Post([this, key = prefix_ + key, delta, ttl, done = std::move(done)]() mutable {
    client_->EvalSha(
        script_, {std::move(key)}, {std::to_string(delta), std::to_string(ttl.count())},
        [done = std::move(done)](absl::StatusOr<components::redis::Reply> reply) {
          if (!reply.ok()) {
            done(reply.status());
          } else if (reply->type != components::redis::Reply::Type::kInteger) {
            done(absl::UnavailableError("flow_control/cluster: unexpected reply " + reply->str));
          } else {
            done(reply->integer);
          }
        });
  });
}

}  // namespace ottava::runtime
