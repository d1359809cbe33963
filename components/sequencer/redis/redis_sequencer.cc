#include "components/sequencer/redis/redis_sequencer.h"

#include <charconv>
#include <string_view>

#include "components/sequencer/floors.h"
#include "components/sequencer/segment_size.h"

namespace ottava::components::sequencer {
namespace {

// KEYS[1] = counter, ARGV[1] = floor (canonical non-negative decimal), ARGV[2] = increment.
// Lua numbers are doubles, so the counter is compared with the floor as decimal text (length,
// then bytes), and the result goes back as the stored text rather than INCRBY's integer (which
// passes through a Lua number and rounds above 2^53). A value that is not an integer is left
// alone for INCRBY to reject.
constexpr const char* kFloorScript = R"lua(
local current = redis.call('GET', KEYS[1])
local floor = ARGV[1]
local raise = false
if not current then
  raise = true
elseif string.match(current, '^%-%d+$') then
  raise = true
elseif string.match(current, '^%d+$') then
  raise = (#current < #floor) or (#current == #floor and current < floor)
end
if raise then
  redis.call('SET', KEYS[1], floor)
end
redis.call('INCRBY', KEYS[1], ARGV[2])
return redis.call('GET', KEYS[1])
)lua";

}  // namespace

absl::StatusOr<RedisSequencerSettings> RedisSequencerSettings::Parse(const Metadata& metadata) {
  RedisSequencerSettings settings;
  absl::StatusOr<redis::ClientSettings> client = redis::ClientSettings::Parse(metadata);
  if (!client.ok()) {
    return client.status();
  }
  settings.client = std::move(*client);
  absl::StatusOr<int64_t> segment_size = ParseSegmentSize(metadata);
  if (!segment_size.ok()) {
    return segment_size.status();
  }
  settings.segment_size = *segment_size;
  absl::StatusOr<Floors> floors = ParseFloors(metadata);
  if (!floors.ok()) {
    return floors.status();
  }
  settings.bigger_than = std::move(*floors);
  return settings;
}

RedisSequencer::RedisSequencer(const ComponentContext& context,
                               RedisSequencerSettings settings,
                               std::unique_ptr<redis::Client> client)
    : label_(context.Label()),
      settings_(std::move(settings)),
      floor_script_(kFloorScript),
      client_(std::move(client)) {
  client_->AddScript(&floor_script_);
}

RedisSequencer::~RedisSequencer() {
  Shutdown();
}

absl::Status RedisSequencer::Init() {
  return client_->Connect();
}

void RedisSequencer::Shutdown() {
  client_->Shutdown();
}

void RedisSequencer::Reserve(const std::string& key,
                             int64_t size,
                             std::function<void(absl::StatusOr<int64_t>)> done) {
  auto on_reply = [label = label_, key,
                   done = std::move(done)](absl::StatusOr<redis::Reply> reply) {
    if (!reply.ok()) {
      done(reply.status());
      return;
    }
    if (reply->is_error()) {
      if (reply->str.find("would overflow") != std::string::npos) {
        done(absl::OutOfRangeError(label + ": ids of key '" + key + "' are exhausted"));
      } else {
        done(absl::FailedPreconditionError(label + ": redis refused to count key '" + key +
                                           "': " + reply->str));
      }
      return;
    }
    if (reply->type == redis::Reply::Type::kInteger) {
      done(reply->integer);
      return;
    }
    int64_t last = 0;
    const std::string& text = reply->str;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), last);
    if (reply->type != redis::Reply::Type::kString || ec != std::errc() ||
        end != text.data() + text.size()) {
      done(absl::InternalError(label + ": unexpected redis reply for key '" + key + "'"));
      return;
    }
    done(last);
  };
  const int64_t floor = FloorOf(settings_.bigger_than, key);
  if (floor == 0) {
    client_->Command({"INCRBY", key, std::to_string(size)}, std::move(on_reply));
    return;
  }
  client_->EvalSha(floor_script_, {key}, {std::to_string(floor), std::to_string(size)},
                   std::move(on_reply));
}

void RedisSequencer::GetNextId(NextIdRequest request,
                               std::function<void(absl::StatusOr<int64_t>)> done) {
  Reserve(request.key, 1, std::move(done));
}

void RedisSequencer::GetSegment(std::string key,
                                int64_t size,
                                std::function<void(absl::StatusOr<Segment>)> done) {
  if (size <= 0) {
    done(absl::InvalidArgumentError(label_ + ": segment size must be positive for key '" + key +
                                    "', got " + std::to_string(size)));
    return;
  }
  Reserve(key, size, [size, done = std::move(done)](absl::StatusOr<int64_t> last) {
    if (!last.ok()) {
      done(last.status());
      return;
    }
    done(Segment{.first = *last - size + 1, .last = *last});
  });
}

absl::StatusOr<std::unique_ptr<Sequencer>> RedisSequencerFactory::Create(
    const ComponentContext& context) const {
  auto settings = RedisSequencerSettings::Parse(context.metadata);
  if (!settings.ok()) {
    return absl::InvalidArgumentError(context.Label() + ": " +
                                      std::string(settings.status().message()));
  }
  auto client =
      redis::Client::Create(settings->client, context.dispatcher, context.health, context.Label());
  if (!client.ok()) {
    return client.status();
  }
  return std::make_unique<RedisSequencer>(context, std::move(*settings), std::move(*client));
}

}  // namespace ottava::components::sequencer
