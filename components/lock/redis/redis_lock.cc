#include "components/lock/redis/redis_lock.h"

#include <string>
#include <string_view>
#include <utility>

#include "common/logging.h"
#include "common/status.h"
#include "components/common/metadata.h"
#include "components/common/redis/replication.h"
#include "components/common/redis/store_util.h"

namespace ottava::components::lock {
namespace {

using redis::Reply;

// The owner-checked scripts: KEYS[1] resource, ARGV[1] owner. Return -1 when there is no such lock,
// -2 when another owner holds it; otherwise they run `action` and return 1.
std::string OwnerCheckedLua(std::string_view action) {
  return std::string(R"lua(
local v = redis.call('GET', KEYS[1])
if v == false then
  return -1
end
if v ~= ARGV[1] then
  return -2
end
)lua") + std::string(action) +
         "\nreturn 1\n";
}

// Release.
constexpr char kUnlockAction[] = "redis.call('DEL', KEYS[1])";
// Renewal; ARGV[2] is the new expiry in milliseconds.
constexpr char kKeepAliveAction[] = "redis.call('PEXPIRE', KEYS[1], ARGV[2])";

}  // namespace

absl::StatusOr<RedisLockSettings> RedisLockSettings::Parse(const Metadata& metadata) {
  RedisLockSettings settings;
  absl::StatusOr<redis::ClientSettings> client = redis::ClientSettings::Parse(metadata);
  if (!client.ok()) {
    return client.status();
  }
  settings.client = std::move(*client);
  MetadataReader reader(metadata);
  OTTAVA_RETURN_IF_ERROR(reader.Bool("allowReplicas", &settings.allow_replicas));
  for (const char* key : {"enableTLS", "failover"}) {
    if (auto it = metadata.find(key); it != metadata.end() && it->second == "true") {
      return absl::InvalidArgumentError("metadata " + std::string(key) + ": not supported");
    }
  }
  if (auto it = metadata.find("redisType"); it != metadata.end() && it->second == "cluster") {
    return absl::InvalidArgumentError("metadata redisType: Redis Cluster is not supported");
  }
  return settings;
}

absl::StatusOr<std::unique_ptr<RedisLockStore>> RedisLockStore::Create(
    const ComponentContext& context, RedisLockSettings settings) {
  auto client =
      redis::Client::Create(settings.client, context.dispatcher, context.health, context.Label());
  if (!client.ok()) {
    return client.status();
  }
  return std::unique_ptr<RedisLockStore>(
      new RedisLockStore(context, std::move(settings), std::move(*client)));
}

RedisLockStore::RedisLockStore(const ComponentContext& context,
                               RedisLockSettings settings,
                               std::unique_ptr<redis::Client> client)
    : label_(context.Label()),
      dispatcher_(context.dispatcher),
      settings_(std::move(settings)),
      unlock_script_(OwnerCheckedLua(kUnlockAction)),
      keep_alive_script_(OwnerCheckedLua(kKeepAliveAction)),
      client_(std::move(client)),
      replicas_(*client_, kUnknown, [this](int64_t before, int64_t now) {
        if (before != now && now > 0 && !settings_.allow_replicas) {
          OTTAVA_LOG(Redis, error, "{}: refusing new locks: {}", label_,
                     ReplicasRefusal(now).message());
        } else if (before > 0 && now == 0 && !settings_.allow_replicas) {
          OTTAVA_LOG(Redis, info, "{}: redis has no replicas any more; granting locks again",
                     label_);
        }
      }) {
  client_->AddScript(&unlock_script_);
  client_->AddScript(&keep_alive_script_);
}

RedisLockStore::~RedisLockStore() {
  Shutdown();
}

absl::Status RedisLockStore::ReplicasRefusal(int64_t replicas) const {
  return absl::FailedPreconditionError(
      label_ + ": redis " + settings_.client.host + ":" + std::to_string(settings_.client.port) +
      " has " + std::to_string(replicas) +
      " connected replica(s); replication is asynchronous, so after a failover the same lock can "
      "be granted twice. Use a Redis without replicas, or set metadata allowReplicas=true to "
      "accept that risk");
}

absl::Status RedisLockStore::Init() {
  absl::Status status = client_->Connect();
  // The check keeps running even when Init fails: an optional component is still called, and
  // TryLock must know the replication state before it grants anything.
  replicas_.Start(*dispatcher_, settings_.replica_check_interval);
  if (!status.ok()) {
    return status;
  }
  absl::StatusOr<int64_t> replicas = replicas_.ReadBlocking();
  if (!replicas.ok()) {
    return replicas.status();
  }
  if (*replicas > 0) {
    if (!settings_.allow_replicas) {
      return ReplicasRefusal(*replicas);
    }
    OTTAVA_LOG(Redis, warn,
               "{}: redis has {} connected replicas and allowReplicas=true: a failover can grant "
               "a lock twice",
               label_, *replicas);
  }
  return absl::OkStatus();
}

void RedisLockStore::Shutdown() {
  if (shut_down_) {
    return;
  }
  shut_down_ = true;
  replicas_.Stop();
  client_->Shutdown();
}

absl::Status RedisLockStore::RedisError(const std::string& resource,
                                        const std::string& error) const {
  return redis::ReplyErrorStatus(
      error, label_ + ": redis error for lock '" + resource + "': " + error,
      absl::FailedPreconditionError(label_ + ": key '" + resource +
                                    "' holds a Redis value that is not a lock"));
}

absl::Status RedisLockStore::ReplyStatus(const std::string& resource,
                                         const absl::StatusOr<Reply>& reply) const {
  if (!reply.ok()) {
    return reply.status();
  }
  if (reply->is_error()) {
    return RedisError(resource, reply->str);
  }
  return absl::OkStatus();
}

absl::Status RedisLockStore::CheckExpiry(const std::string& resource,
                                         int32_t expire_seconds) const {
  if (expire_seconds <= 0) {
    return absl::InvalidArgumentError(label_ + ": expire must be positive for lock '" + resource +
                                      "', got " + std::to_string(expire_seconds));
  }
  return absl::OkStatus();
}

void RedisLockStore::TryLock(TryLockRequest request,
                             std::function<void(absl::StatusOr<bool>)> done) {
  if (absl::Status status = CheckExpiry(request.resource_id, request.expire_seconds);
      !status.ok()) {
    done(std::move(status));
    return;
  }
  if (settings_.allow_replicas) {
    SetNx(std::move(request), std::move(done));
    return;
  }
  const int64_t replicas = replicas_.count();
  if (replicas > 0) {
    done(ReplicasRefusal(replicas));
    return;
  }
  if (replicas == 0) {
    SetNx(std::move(request), std::move(done));
    return;
  }
  // Init could not ask (Redis was down): ask now, before granting anything.
  redis::CountReplicas(*client_, [this, request = std::move(request),
                                  done = std::move(done)](absl::StatusOr<int64_t> count) mutable {
    if (!count.ok()) {
      done(count.status());
      return;
    }
    replicas_.set(*count);
    if (*count > 0) {
      done(ReplicasRefusal(*count));
      return;
    }
    SetNx(std::move(request), std::move(done));
  });
}

void RedisLockStore::SetNx(TryLockRequest request, std::function<void(absl::StatusOr<bool>)> done) {
  const int64_t expire_ms = int64_t{request.expire_seconds} * 1000;
  std::string resource = request.resource_id;
  client_->Command(
      {"SET", std::move(request.resource_id), std::move(request.owner), "NX", "PX",
       std::to_string(expire_ms)},
      [this, resource = std::move(resource), done = std::move(done)](absl::StatusOr<Reply> reply) {
        if (absl::Status status = ReplyStatus(resource, reply); !status.ok()) {
          done(std::move(status));
          return;
        }
        if (reply->is_nil()) {
          done(false);  // held, by someone else or by the caller
          return;
        }
        if (reply->type == Reply::Type::kStatus && reply->str == "OK") {
          done(true);
          return;
        }
        done(absl::InternalError(label_ + ": unexpected reply to SET NX for lock '" + resource +
                                 "'"));
      });
}

void RedisLockStore::RunOwnerScript(const redis::Script& script,
                                    std::string resource,
                                    std::vector<std::string> args,
                                    std::function<void(absl::StatusOr<LockStatus>)> done) {
  std::vector<std::string> keys = {resource};
  client_->EvalSha(
      script, std::move(keys), std::move(args),
      [this, resource = std::move(resource), done = std::move(done)](absl::StatusOr<Reply> reply) {
        if (absl::Status status = ReplyStatus(resource, reply); !status.ok()) {
          done(std::move(status));
          return;
        }
        if (reply->type == Reply::Type::kInteger) {
          switch (reply->integer) {
            case 1:
              done(LockStatus::kSuccess);
              return;
            case -1:
              done(LockStatus::kLockDoesNotExist);
              return;
            case -2:
              done(LockStatus::kLockBelongsToOthers);
              return;
            default:
              break;
          }
        }
        done(absl::InternalError(label_ + ": unexpected reply from the lock script for lock '" +
                                 resource + "'"));
      });
}

void RedisLockStore::Unlock(UnlockRequest request,
                            std::function<void(absl::StatusOr<LockStatus>)> done) {
  std::vector<std::string> args = {std::move(request.owner)};
  RunOwnerScript(unlock_script_, std::move(request.resource_id), std::move(args), std::move(done));
}

void RedisLockStore::KeepAlive(KeepAliveRequest request,
                               std::function<void(absl::StatusOr<LockStatus>)> done) {
  if (absl::Status status = CheckExpiry(request.resource_id, request.expire_seconds);
      !status.ok()) {
    done(std::move(status));
    return;
  }
  std::vector<std::string> args = {std::move(request.owner),
                                   std::to_string(int64_t{request.expire_seconds} * 1000)};
  RunOwnerScript(keep_alive_script_, std::move(request.resource_id), std::move(args),
                 std::move(done));
}

absl::StatusOr<std::unique_ptr<LockStore>> RedisLockFactory::Create(
    const ComponentContext& context) const {
  return redis::CreateStore<LockStore, RedisLockStore, RedisLockSettings>(context);
}

}  // namespace ottava::components::lock
