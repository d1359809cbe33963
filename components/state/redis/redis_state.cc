#include "components/state/redis/redis_state.h"

#include <charconv>
#include <optional>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "components/common/redis/replication.h"
#include "components/common/redis/store_util.h"

namespace ottava::components::state {
namespace {

using redis::Reply;

// Reads one key: {data, version, absolute expiry in Unix ms (-1 none, -2 no such key)}. A key that
// is not a hash makes HMGET fail with WRONGTYPE.
constexpr char kGetLua[] = R"lua(
local v = redis.call('HMGET', KEYS[1], 'data', 'version')
local at = redis.pcall('PEXPIRETIME', KEYS[1])
if type(at) ~= 'number' then
  -- Servers before 7.0 have no PEXPIRETIME.
  at = redis.call('PTTL', KEYS[1])
  if at >= 0 then
    local t = redis.call('TIME')
    at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + at
  end
end
return {v[1], v[2], at}
)lua";

// Applies state operations atomically: every condition is checked first, then every effect is
// applied; a failed check returns an error before anything was written.
//
// KEYS[i] is the key of operation i; ARGV holds four values per operation:
//   ARGV[4i-3]  kind: 'set' or 'del'
//   ARGV[4i-2]  condition: '' none; 'absent' only if the key is absent; otherwise the version the
//               key must have (a canonical decimal)
//   ARGV[4i-1]  value (set)
//   ARGV[4i]    seconds to live as a decimal, or '' for no expiry (set)
// Conditions see the state the earlier operations leave: a key written earlier in the same script
// has a fresh version nobody can hold.
// Errors: 'ETAG_MISMATCH i', 'KEY_EXISTS i', 'ETAG_MALFORMED i', 'NOT_A_HASH i' (a key of another
// type), 'BAD_VERSION i' (a version field that is not an integer), 'BAD_ARGS'.
// Returns the number of operations applied.
//
// The apply phase cannot fail once the checks passed: keys are hashes or absent, versions are
// integers, TTLs were range-checked by the caller, and an out-of-memory server rejects the first
// write command, which comes after every check.
constexpr char kWriteLua[] = R"lua(
redis.replicate_commands()
local n = #KEYS
if #ARGV ~= 4 * n then
  return redis.error_reply('BAD_ARGS')
end
local seen = {}
for i = 1, n do
  local key, kind, cond = KEYS[i], ARGV[4 * i - 3], ARGV[4 * i - 2]
  local s = seen[key]
  if s == nil then
    local t = redis.call('TYPE', key)['ok']
    if t == 'none' then
      s = {exists = false}
    elseif t == 'hash' then
      local v = redis.call('HGET', key, 'version')
      if v == false then
        v = '0'
      end
      if not string.match(v, '^%d+$') then
        return redis.error_reply('BAD_VERSION ' .. i)
      end
      s = {exists = true, version = v}
    else
      return redis.error_reply('NOT_A_HASH ' .. i)
    end
  end
  if cond == 'absent' then
    if s.exists then
      if kind == 'set' then
        return redis.error_reply('KEY_EXISTS ' .. i)
      end
      return redis.error_reply('ETAG_MISMATCH ' .. i)
    end
  elseif cond ~= '' then
    if not string.match(cond, '^%d+$') then
      return redis.error_reply('ETAG_MALFORMED ' .. i)
    end
    if not s.exists or s.version ~= cond then
      return redis.error_reply('ETAG_MISMATCH ' .. i)
    end
  end
  if kind == 'set' then
    seen[key] = {exists = true, version = false}
  elseif kind == 'del' then
    seen[key] = {exists = false}
  else
    return redis.error_reply('BAD_ARGS')
  end
end
local now = redis.call('TIME')
local fresh = now[1] .. string.format('%06d', tonumber(now[2]))
for i = 1, n do
  local key = KEYS[i]
  if ARGV[4 * i - 3] == 'del' then
    redis.call('DEL', key)
  else
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'data', ARGV[4 * i - 1])
      redis.call('HINCRBY', key, 'version', 1)
    else
      redis.call('HSET', key, 'data', ARGV[4 * i - 1], 'version', fresh)
    end
    if ARGV[4 * i] == '' then
      redis.call('PERSIST', key)
    else
      redis.call('EXPIRE', key, ARGV[4 * i])
    end
  end
end
return n
)lua";

// Longer TTLs would overflow Redis' millisecond expiry arithmetic inside the script, after the
// checks, which must not fail. 10^12 s is over 30,000 years.
constexpr int64_t kMaxTtlSeconds = 1'000'000'000'000;

// The etag as a canonical decimal, or nullopt if it is not one (the same rule as in-memory).
std::optional<std::string> CanonicalEtag(const std::string& etag) {
  uint64_t version = 0;
  const char* end = etag.data() + etag.size();
  auto [ptr, ec] = std::from_chars(etag.data(), end, version);
  if (etag.empty() || ec != std::errc() || ptr != end) {
    return std::nullopt;
  }
  return std::to_string(version);
}

}  // namespace

absl::StatusOr<RedisStateSettings> RedisStateSettings::Parse(const Metadata& metadata) {
  RedisStateSettings settings;
  absl::StatusOr<redis::ClientSettings> client = redis::ClientSettings::Parse(metadata);
  if (!client.ok()) {
    return client.status();
  }
  settings.client = std::move(*client);
  auto is = [&metadata](const char* key, const char* value) {
    auto it = metadata.find(key);
    return it != metadata.end() && it->second == value;
  };
  if (is("enableTLS", "true")) {
    return absl::InvalidArgumentError("metadata enableTLS: TLS is not supported");
  }
  if (is("failover", "true")) {
    return absl::InvalidArgumentError("metadata failover: Sentinel failover is not supported");
  }
  if (is("redisType", "cluster")) {
    return absl::InvalidArgumentError("metadata redisType: Redis Cluster is not supported");
  }
  return settings;
}

absl::StatusOr<std::unique_ptr<RedisStateStore>> RedisStateStore::Create(
    const ComponentContext& context, RedisStateSettings settings) {
  auto client =
      redis::Client::Create(settings.client, context.dispatcher, context.health, context.Label());
  if (!client.ok()) {
    return client.status();
  }
  // The strong-write connection reports no health of its own: the request pool speaks for the
  // component, and a strong write on a dead connection fails with UNAVAILABLE anyway.
  redis::ClientSettings strong_settings = settings.client;
  strong_settings.pool_size = 1;
  auto strong_client =
      redis::Client::Create(strong_settings, context.dispatcher, nullptr, context.Label());
  if (!strong_client.ok()) {
    return strong_client.status();
  }
  return std::unique_ptr<RedisStateStore>(new RedisStateStore(
      context, std::move(settings), std::move(*client), std::move(*strong_client)));
}

RedisStateStore::RedisStateStore(const ComponentContext& context,
                                 RedisStateSettings settings,
                                 std::unique_ptr<redis::Client> client,
                                 std::unique_ptr<redis::Client> strong_client)
    : label_(context.Label()),
      dispatcher_(context.dispatcher),
      settings_(std::move(settings)),
      get_script_(kGetLua),
      write_script_(kWriteLua),
      client_(std::move(client)),
      strong_client_(std::move(strong_client)),
      replicas_(*client_, 0, [this](int64_t before, int64_t now) {
        if (before != now) {
          OTTAVA_LOG(Redis, info, "{}: redis now has {} connected replicas (was {})", label_, now,
                     before);
        }
      }) {
  client_->AddScript(&get_script_);
  client_->AddScript(&write_script_);
  strong_client_->AddScript(&write_script_);
}

RedisStateStore::~RedisStateStore() {
  Shutdown();
}

absl::Status RedisStateStore::Init() {
  // Both clients dial at once, so a dead server costs one dialTimeout, not two. Connect() only
  // waits for the loop; the thread is joined before Init returns.
  absl::Status strong_status;
  std::thread strong([this, &strong_status] { strong_status = strong_client_->Connect(); });
  absl::Status status = client_->Connect();
  strong.join();
  replicas_.Start(*dispatcher_, settings_.replica_check_interval);
  if (!status.ok()) {
    return status;
  }
  if (!strong_status.ok()) {
    return strong_status;
  }
  absl::StatusOr<int64_t> replicas = replicas_.ReadBlocking();
  if (!replicas.ok()) {
    return replicas.status();
  }
  OTTAVA_LOG(Redis, info, "{}: connected to {}:{} ({} replicas)", label_, settings_.client.host,
             settings_.client.port, *replicas);
  return absl::OkStatus();
}

void RedisStateStore::Shutdown() {
  if (shut_down_) {
    return;
  }
  shut_down_ = true;
  replicas_.Stop();
  client_->Shutdown();
  strong_client_->Shutdown();
}

absl::Status RedisStateStore::RedisError(const std::string& key, const std::string& error) const {
  return redis::ReplyErrorStatus(
      error, label_ + ": redis error for key '" + key + "': " + error,
      absl::FailedPreconditionError(label_ + ": key '" + key +
                                    "' holds a Redis value that is not a state hash"));
}

absl::StatusOr<Item> RedisStateStore::ToItem(const std::string& key,
                                             absl::StatusOr<Reply> reply) const {
  if (!reply.ok()) {
    return reply.status();
  }
  if (reply->is_error()) {
    return RedisError(key, reply->str);
  }
  if (reply->type != Reply::Type::kArray || reply->elements.size() != 3 ||
      reply->elements[2].type != Reply::Type::kInteger) {
    return absl::InternalError(label_ + ": unexpected reply from the get script for key '" + key +
                               "'");
  }
  Item item;
  item.key = key;
  const int64_t expire_at_ms = reply->elements[2].integer;
  if (expire_at_ms == -2) {
    return item;  // no such key
  }
  item.found = true;
  item.value = std::move(reply->elements[0].str);
  // A hash without a version (not written by a state store) counts as version 0, as in the
  // write script.
  item.etag = reply->elements[1].is_nil() ? "0" : std::move(reply->elements[1].str);
  if (expire_at_ms >= 0) {
    item.expire_time = SystemTime(std::chrono::milliseconds(expire_at_ms));
  }
  return item;
}

void RedisStateStore::Get(GetRequest request, GetCallback done) {
  std::vector<std::string> keys = {request.key};
  client_->EvalSha(get_script_, std::move(keys), {},
                   [this, key = std::move(request.key), done = std::move(done)](
                       absl::StatusOr<Reply> reply) { done(ToItem(key, std::move(reply))); });
}

void RedisStateStore::BulkGet(std::vector<GetRequest> requests, BulkGetCallback done) {
  if (requests.empty()) {
    done(std::vector<Item>());
    return;
  }
  // Every read is pipelined at once; the last reply completes the call. Each reply writes only
  // its own slot; the counter's acquire-release orders the slots before the final read.
  struct Join {
    std::vector<absl::StatusOr<Item>> items;
    std::atomic<size_t> remaining;
    BulkGetCallback done;
  };
  auto join = std::make_shared<Join>();
  join->items.resize(requests.size(), absl::UnknownError("no reply"));
  join->remaining.store(requests.size());
  join->done = std::move(done);
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<std::string> keys = {requests[i].key};
    client_->EvalSha(
        get_script_, std::move(keys), {},
        [this, join, i, key = std::move(requests[i].key)](absl::StatusOr<Reply> reply) {
          join->items[i] = ToItem(key, std::move(reply));
          if (join->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) {
            return;
          }
          std::vector<Item> items;
          items.reserve(join->items.size());
          for (auto& item : join->items) {
            if (!item.ok()) {
              join->done(item.status());
              return;
            }
            items.push_back(std::move(*item));
          }
          join->done(std::move(items));
        });
  }
}

absl::Status RedisStateStore::AddSet(SetRequest& request, WriteBatch& batch) const {
  std::string condition;
  if ((request.etag.has_value() && request.etag->empty()) ||
      (!request.etag.has_value() && request.concurrency == Concurrency::kFirstWrite)) {
    condition = "absent";
  } else if (request.etag.has_value()) {
    std::optional<std::string> canonical = CanonicalEtag(*request.etag);
    if (!canonical.has_value()) {
      return absl::InvalidArgumentError(label_ + ": malformed etag '" + *request.etag +
                                        "' for key '" + request.key + "'");
    }
    condition = std::move(*canonical);
  }
  std::string ttl;
  if (request.ttl_seconds.has_value() && *request.ttl_seconds > 0) {
    if (*request.ttl_seconds > kMaxTtlSeconds) {
      return absl::InvalidArgumentError(label_ + ": ttlInSeconds " +
                                        std::to_string(*request.ttl_seconds) + " for key '" +
                                        request.key + "' is too large");
    }
    ttl = std::to_string(*request.ttl_seconds);
  }
  batch.keys.push_back(std::move(request.key));
  batch.args.push_back("set");
  batch.args.push_back(std::move(condition));
  batch.args.push_back(std::move(request.value));
  batch.args.push_back(std::move(ttl));
  batch.strong = batch.strong || request.consistency == Consistency::kStrong;
  return absl::OkStatus();
}

absl::Status RedisStateStore::AddDelete(const DeleteRequest& request, WriteBatch& batch) const {
  std::string condition;
  if (request.etag.has_value()) {
    if (request.etag->empty()) {
      condition = "absent";  // deleting nothing succeeds; a present key is a conflict
    } else {
      std::optional<std::string> canonical = CanonicalEtag(*request.etag);
      if (!canonical.has_value()) {
        return absl::InvalidArgumentError(label_ + ": malformed etag '" + *request.etag +
                                          "' for key '" + request.key + "'");
      }
      condition = std::move(*canonical);
    }
  }
  batch.keys.push_back(request.key);
  batch.args.push_back("del");
  batch.args.push_back(std::move(condition));
  batch.args.emplace_back();
  batch.args.emplace_back();
  batch.strong = batch.strong || request.consistency == Consistency::kStrong;
  return absl::OkStatus();
}

absl::Status RedisStateStore::WriteError(const Reply& reply,
                                         const std::vector<std::string>& keys,
                                         bool transaction) const {
  std::string error = reply.str;
  if (!error.empty() && error[0] == '-') {
    error.erase(0, 1);
  }
  // "<CODE> <1-based operation index>" from the write script.
  const size_t space = error.find(' ');
  const std::string code = error.substr(0, space);
  size_t index = 0;
  bool ours = false;
  if (space != std::string::npos &&
      (code == "ETAG_MISMATCH" || code == "KEY_EXISTS" || code == "ETAG_MALFORMED" ||
       code == "NOT_A_HASH" || code == "BAD_VERSION")) {
    const char* begin = error.data() + space + 1;
    const char* end = error.data() + error.size();
    auto [ptr, ec] = std::from_chars(begin, end, index);
    ours = ec == std::errc() && ptr == end && index >= 1 && index <= keys.size();
  }
  absl::Status status;
  if (!ours) {
    // Not one of ours (OOM, READONLY...): name the first keys of the batch.
    std::string named;
    for (size_t i = 0; i < keys.size() && i < 3; ++i) {
      named += (i > 0 ? "', '" : "") + keys[i];
    }
    status = RedisError(named + (keys.size() > 3 ? "', ..." : ""), error);
  } else {
    const std::string& key = keys[index - 1];
    if (code == "ETAG_MISMATCH") {
      status = absl::AbortedError(label_ + ": etag mismatch for key '" + key + "'");
    } else if (code == "KEY_EXISTS") {
      status = absl::AbortedError(label_ + ": key '" + key +
                                  "' already exists (first-write without etag)");
    } else if (code == "ETAG_MALFORMED") {
      status = absl::InvalidArgumentError(label_ + ": malformed etag for key '" + key + "'");
    } else if (code == "NOT_A_HASH") {
      status = absl::FailedPreconditionError(label_ + ": key '" + key +
                                             "' holds a Redis value that is not a state hash");
    } else {
      status = absl::InternalError(label_ + ": key '" + key +
                                   "' has a version field that is not an integer");
    }
    if (transaction) {
      status =
          absl::Status(status.code(), std::string(status.message()) + " (transaction operation " +
                                          std::to_string(index - 1) + "; nothing applied)");
    }
  }
  return status;
}

void RedisStateStore::Write(WriteBatch batch, DoneCallback done) {
  const bool wait = batch.strong && replicas_.count() > 0;
  redis::Client& client = wait ? *strong_client_ : *client_;
  // The keys are kept to name the one an error reply points at.
  std::vector<std::string> keys = batch.keys;
  client.EvalSha(write_script_, std::move(batch.keys), std::move(batch.args),
                 [this, wait, keys = std::move(keys), transaction = batch.transaction,
                  done = std::move(done)](absl::StatusOr<Reply> reply) mutable {
                   if (!reply.ok()) {
                     done(reply.status());
                     return;
                   }
                   if (reply->is_error()) {
                     done(WriteError(*reply, keys, transaction));
                     return;
                   }
                   if (!wait) {
                     done(absl::OkStatus());
                     return;
                   }
                   // We are on the loop thread, straight after the write's reply: the WAIT goes out
                   // on the strong client's only connection, the one that carried the write.
                   WaitForReplicas(std::move(done));
                 });
}

void RedisStateStore::WaitForReplicas(DoneCallback done) {
  const int64_t replicas = replicas_.count();
  const auto timeout = settings_.client.timeout;
  strong_client_->Command(
      {"WAIT", std::to_string(replicas), std::to_string(timeout.count())},
      [this, replicas, timeout, done = std::move(done)](absl::StatusOr<Reply> reply) {
        if (!reply.ok()) {
          done(absl::Status(reply.status().code(),
                            std::string(reply.status().message()) +
                                " (while waiting for replicas; the write is applied on the "
                                "primary)"));
          return;
        }
        if (reply->type != Reply::Type::kInteger) {
          done(absl::InternalError(label_ + ": WAIT failed: " + reply->str +
                                   " (the write is applied on the primary)"));
          return;
        }
        if (reply->integer < replicas) {
          replicas_.Refresh();  // a replica may have gone away
          done(absl::DeadlineExceededError(
              label_ + ": only " + std::to_string(reply->integer) + " of " +
              std::to_string(replicas) + " replicas acknowledged the write within " +
              std::to_string(timeout.count()) + " ms (the write is applied on the primary)"));
          return;
        }
        done(absl::OkStatus());
      },
      timeout);
}

void RedisStateStore::Set(SetRequest request, DoneCallback done) {
  WriteBatch batch;
  if (absl::Status status = AddSet(request, batch); !status.ok()) {
    done(std::move(status));
    return;
  }
  Write(std::move(batch), std::move(done));
}

void RedisStateStore::Delete(DeleteRequest request, DoneCallback done) {
  WriteBatch batch;
  if (absl::Status status = AddDelete(request, batch); !status.ok()) {
    done(std::move(status));
    return;
  }
  Write(std::move(batch), std::move(done));
}

void RedisStateStore::Transact(std::vector<Operation> operations, DoneCallback done) {
  if (operations.empty()) {
    done(absl::OkStatus());
    return;
  }
  WriteBatch batch;
  batch.transaction = true;
  batch.keys.reserve(operations.size());
  batch.args.reserve(4 * operations.size());
  for (size_t i = 0; i < operations.size(); ++i) {
    absl::Status status;
    if (auto* set = std::get_if<SetRequest>(&operations[i])) {
      status = AddSet(*set, batch);
    } else {
      status = AddDelete(std::get<DeleteRequest>(operations[i]), batch);
    }
    if (!status.ok()) {
      done(absl::Status(status.code(), std::string(status.message()) + " (transaction operation " +
                                           std::to_string(i) + "; nothing applied)"));
      return;
    }
  }
  Write(std::move(batch), std::move(done));
}

absl::StatusOr<std::unique_ptr<StateStore>> RedisStateFactory::Create(
    const ComponentContext& context) const {
  return redis::CreateStore<StateStore, RedisStateStore, RedisStateSettings>(context);
}

}  // namespace ottava::components::state
