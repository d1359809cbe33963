#include "components/pubsub/redis/redis_pubsub.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/backoff.h"
#include "common/dispatcher.h"
#include "common/logging.h"
#include "common/stats.h"
#include "common/status.h"
#include "components/pubsub/pubsub_util.h"

namespace ottava::components::pubsub {
namespace {

using redis::Reply;
using Clock = std::chrono::steady_clock;

// How long one XREADGROUP blocks on the subscription's own connection.
constexpr std::chrono::milliseconds kBlock{1000};
constexpr std::chrono::milliseconds kMinTick{10};
// Ids per XACK or touch command, so one command never grows without bound.
constexpr size_t kMaxIdsPerCommand = 500;

constexpr char kDataField[] = "data";
constexpr char kContentTypeField[] = "contentType";
constexpr char kMetadataField[] = "metadata";

// Removes the consumers of group ARGV[1] on stream KEYS[1] that hold no pending entry and have
// been idle for at least ARGV[2] ms, except ARGV[3] (the caller). Every sidecar start is a new
// consumer, so without this the group would keep one per start forever. Atomic: a consumer that
// still holds entries is never removed, and a live one that was idle is simply re-created by its
// next XREADGROUP. Returns the removed names.
const redis::Script& ReapScript() {
  static const auto* script = new redis::Script(R"lua(
local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local field = {}
  for i = 1, #consumer, 2 do
    field[consumer[i]] = consumer[i + 1]
  end
  if field['name'] ~= ARGV[3] and field['pending'] == 0 and field['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], field['name'])
    removed[#removed + 1] = field['name']
  end
end
return removed
)lua");
  return *script;
}

// Resets the idle time of the entries ARGV[3..] that are still pending for consumer ARGV[2] of
// group ARGV[1] on stream KEYS[1]; entries a peer has claimed meanwhile are left alone, so a touch
// never takes an entry back.
const redis::Script& TouchScript() {
  static const auto* script = new redis::Script(R"lua(
local touched = 0
for i = 3, #ARGV do
  local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #owned == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    touched = touched + 1
  end
end
return touched
)lua");
  return *script;
}

struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
};

std::optional<StreamId> ParseStreamId(std::string_view text) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    return std::nullopt;
  }
  StreamId id;
  auto parse = [](std::string_view part, uint64_t* out) {
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), *out);
    return !part.empty() && ec == std::errc() && end == part.data() + part.size();
  };
  if (!parse(text.substr(0, dash), &id.ms) || !parse(text.substr(dash + 1), &id.seq)) {
    return std::nullopt;
  }
  return id;
}

bool StartsWith(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// One stream entry as XREADGROUP and XAUTOCLAIM return it: [id, [field, value, ...]], or
// [id, nil] for an entry still pending but trimmed from the stream.
struct Entry {
  StreamId id;
  bool deleted = false;
  Message message;
};

bool ParseEntry(const Reply& reply, const std::string& topic, Entry* out) {
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 2 ||
      reply.elements[0].type != Reply::Type::kString) {
    return false;
  }
  std::optional<StreamId> id = ParseStreamId(reply.elements[0].str);
  if (!id) {
    return false;
  }
  out->id = *id;
  out->message.id = reply.elements[0].str;
  out->message.topic = topic;
  const Reply& fields = reply.elements[1];
  if (fields.is_nil()) {
    out->deleted = true;
    return true;
  }
  if (fields.type != Reply::Type::kArray) {
    return false;
  }
  std::string content_type;
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const std::string& name = fields.elements[i].str;
    const std::string& value = fields.elements[i + 1].str;
    if (name == kDataField) {
      out->message.data = value;
    } else if (name == kContentTypeField) {
      content_type = value;
    } else if (name == kMetadataField) {
      // Written by a publisher we do not control: a malformed value is ignored, not fatal.
      nlohmann::json json = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
      if (json.is_object()) {
        for (const auto& [key, item] : json.items()) {
          if (item.is_string()) {
            out->message.metadata[key] = item.get<std::string>();
          }
        }
      }
    }
  }
  if (!content_type.empty()) {
    out->message.metadata.try_emplace("contentType", std::move(content_type));
  }
  return true;
}

bool ParseEntries(const Reply& reply, const std::string& topic, std::vector<Entry>* out) {
  if (reply.is_nil()) {
    return true;
  }
  if (reply.type != Reply::Type::kArray) {
    return false;
  }
  for (const Reply& element : reply.elements) {
    Entry entry;
    if (!ParseEntry(element, topic, &entry)) {
      return false;
    }
    out->push_back(std::move(entry));
  }
  return true;
}

// XREADGROUP: nil when BLOCK timed out, else [[stream, entries]].
bool ParseReadReply(const Reply& reply, const std::string& topic, std::vector<Entry>* out) {
  if (reply.is_nil()) {
    return true;
  }
  if (reply.type != Reply::Type::kArray) {
    return false;
  }
  for (const Reply& stream : reply.elements) {
    if (stream.type != Reply::Type::kArray || stream.elements.size() != 2) {
      return false;
    }
    if (!ParseEntries(stream.elements[1], topic, out)) {
      return false;
    }
  }
  return true;
}

std::string DefaultConsumerName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "ottava");
  }
  std::random_device random;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%08x", static_cast<unsigned>(random()));
  return std::string(host) + "-" + std::to_string(getpid()) + "-" + suffix;
}

// An entry read from Redis and not yet acked.
struct Held {
  std::shared_ptr<const Message> message;
  Clock::time_point touched;  // when Redis last reset its idle time, as far as we know
};

struct Subscription {
  enum class Phase { kCreateGroup, kOwnPending, kNew };

  uint64_t id = 0;
  std::string topic;
  std::string group;
  std::string consumer;
  uint32_t max_in_flight = 1;
  std::shared_ptr<const MessageHandler> handler;
  std::shared_ptr<redis::Client> reader;  // this subscription's own connection
  std::shared_ptr<std::atomic<bool>> cancelled;
  bool reader_started = false;

  Phase phase = Phase::kCreateGroup;
  std::string pending_cursor = "0";
  bool reading = false;  // an XGROUP CREATE or XREADGROUP is outstanding
  bool claiming = false;
  std::string claim_cursor = "0-0";
  Clock::time_point last_claim;
  Clock::time_point last_reap;

  std::map<StreamId, Held> queued;     // read, not handed out; stream order
  std::map<StreamId, Held> in_flight;  // handed out, not acked

  uint32_t failures = 0;
  Backoff backoff{std::chrono::milliseconds(50), std::chrono::milliseconds(1000)};
  TimerPtr retry_timer;
  TimerPtr tick_timer;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

class RedisPubSub::Connector {
 public:
  Connector() : thread_([this] { Run(); }) {}
  ~Connector() { Stop(); }
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  /// Dials `client` (Connect() waits up to dialTimeout, which is why it happens here), then runs
  /// `then` on this thread, unless `cancelled` was set meanwhile.
  void Dial(std::shared_ptr<redis::Client> client,
            std::shared_ptr<std::atomic<bool>> cancelled,
            std::function<void()> then) {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(Request{std::move(client), std::move(cancelled), std::move(then)});
    }
  }

  /// Drops what is queued and waits for the dial in progress. Not on the dispatcher thread.
  void Stop() {
    std::deque<Request> dropped;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      dropped.swap(queue_);
    }
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  struct Request {
    std::shared_ptr<redis::Client> client;
    std::shared_ptr<std::atomic<bool>> cancelled;
    std::function<void()> then;
  };

  void Run() {
    while (true) {
      Request request;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !queue_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (stopping_) {
          return;
        }
        request = std::move(queue_.front());
        queue_.pop_front();
      }
      if (request.cancelled->load()) {
        continue;
      }
      // On failure the client keeps dialling in the background; the read loop retries until
      // it answers.
      (void)request.client->Connect();
      if (!request.cancelled->load()) {
        request.then();
      }
    }
  }

  absl::Mutex mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------

struct RedisPubSub::Core : std::enable_shared_from_this<Core> {
  Core(std::string label_in,
       Dispatcher* dispatcher_in,
       RedisPubSubSettings settings_in,
       stats::Store* stats)
      : label(std::move(label_in)), dispatcher(dispatcher_in), settings(std::move(settings_in)) {
    if (stats != nullptr) {
      reclaimed = &stats->CounterFor("ottava_pubsub_redis_reclaimed_total",
                                     "Stream entries claimed from consumers idle longer than "
                                     "processingTimeout and delivered again",
                                     {{"component", label}});
      trimmed = &stats->CounterFor("ottava_pubsub_redis_trimmed_pending_total",
                                   "Pending stream entries trimmed by MAXLEN before delivery",
                                   {{"component", label}});
    }
  }

  const std::string label;
  Dispatcher* const dispatcher;
  const RedisPubSubSettings settings;
  stats::Counter* reclaimed = nullptr;
  stats::Counter* trimmed = nullptr;

  // Set by Init() before the first command; used and released on the loop thread.
  std::unique_ptr<redis::Client> main;
  std::map<uint64_t, std::shared_ptr<Subscription>> subscriptions;
  // XACKs not yet confirmed by Redis, by (topic, group): false = sent, true = failed, owed.
  std::map<std::pair<std::string, std::string>, std::map<StreamId, bool>> acks;
  TimerPtr ack_retry_timer;
  Backoff ack_backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(2000)};
  uint32_t ack_failures = 0;
  bool stopped = false;

  Subscription* Find(uint64_t id) {
    auto it = subscriptions.find(id);
    return it == subscriptions.end() ? nullptr : it->second.get();
  }

  std::chrono::milliseconds TickPeriod() const {
    const auto& timeout = settings.processing_timeout;
    if (timeout.count() == 0) {
      return std::chrono::milliseconds(0);
    }
    auto period = timeout / 3;
    if (settings.redeliver_interval.count() > 0) {
      period = std::min(period, settings.redeliver_interval);
    }
    return std::max(period, kMinTick);
  }

  // ---- Publish ----

  void Publish(PublishRequest request, const std::shared_ptr<DoneGuard>& guard) {
    if (stopped || !main) {
      guard->Run(absl::UnavailableError(label + ": shut down"));
      return;
    }
    std::vector<std::string> args = {"XADD", request.topic};
    if (settings.max_len_approx > 0) {
      args.insert(args.end(), {"MAXLEN", "~", std::to_string(settings.max_len_approx)});
    }
    args.emplace_back("*");
    args.emplace_back(kDataField);
    args.push_back(std::move(request.data));
    if (!request.content_type.empty()) {
      args.insert(args.end(), {kContentTypeField, std::move(request.content_type)});
    }
    if (!request.metadata.empty()) {
      nlohmann::json metadata(request.metadata);
      args.insert(args.end(), {kMetadataField, metadata.dump()});
    }
    main->Command(std::move(args), [guard, label = label,
                                    topic = std::move(request.topic)](absl::StatusOr<Reply> reply) {
      if (!reply.ok()) {
        guard->Run(reply.status());
      } else if (reply->is_error()) {
        guard->Run(
            absl::InternalError(label + ": XADD to topic '" + topic + "' failed: " + reply->str));
      } else {
        guard->Run(absl::OkStatus());
      }
    });
  }

  // ---- Subscriptions ----

  void AddSubscription(std::shared_ptr<Subscription> sub) {
    if (stopped) {
      sub->cancelled->store(true);
      return;
    }
    sub->consumer = settings.consumer_name;
    for (const auto& [other_id, other] : subscriptions) {
      if (other->topic == sub->topic && other->group == sub->group &&
          other->consumer == sub->consumer) {
        sub->consumer += "-" + std::to_string(sub->id);
        break;
      }
    }
    const uint64_t id = sub->id;
    std::weak_ptr<Core> weak = weak_from_this();
    sub->retry_timer = dispatcher->CreateTimer([weak, id] {
      if (auto core = weak.lock()) {
        core->Pump(id);
      }
    });
    if (TickPeriod().count() > 0) {
      sub->tick_timer = dispatcher->CreateTimer([weak, id] {
        if (auto core = weak.lock()) {
          core->Tick(id);
        }
      });
      sub->tick_timer->Enable(TickPeriod());
    }
    OTTAVA_LOG(Pubsub, info, "{}: subscribed to topic '{}' as consumer '{}' of group '{}'", label,
               sub->topic, sub->consumer, sub->group);
    subscriptions.emplace(id, std::move(sub));
    Pump(id);
  }

  void OnReaderStarted(uint64_t id) {
    if (Subscription* sub = Find(id); sub != nullptr && !stopped) {
      sub->reader_started = true;
      Pump(id);
    }
  }

  void RemoveSubscription(uint64_t id) {
    auto it = subscriptions.find(id);
    if (it == subscriptions.end()) {
      return;
    }
    std::shared_ptr<Subscription> sub = std::move(it->second);
    subscriptions.erase(it);
    Close(*sub);
  }

  // Stops a removed subscription's timers and connection. We may be inside one of the reader's
  // own reply callbacks (a handler unsubscribing): hiredis defers freeing the connection until the
  // callback returns, and the client object is released from a later loop iteration.
  void Close(Subscription& sub) {
    sub.cancelled->store(true);
    sub.retry_timer.reset();
    sub.tick_timer.reset();
    sub.reader->Shutdown();
    dispatcher->Post([reader = std::move(sub.reader)] {});
  }

  void Stop() {
    stopped = true;
    auto subscriptions_left = std::move(subscriptions);
    subscriptions.clear();
    for (auto& [id, sub] : subscriptions_left) {
      Close(*sub);
    }
    ack_retry_timer.reset();
    if (main) {
      // Destroyed here, on the loop thread, where the client shuts down without waiting.
      main->Shutdown();
      main.reset();
    }
  }

  // Whether `id` is already with us: queued, in flight, or acked and the XACK not confirmed.
  bool Holds(const Subscription& sub, StreamId id) const {
    if (sub.queued.contains(id) || sub.in_flight.contains(id)) {
      return true;
    }
    auto it = acks.find({sub.topic, sub.group});
    return it != acks.end() && it->second.contains(id);
  }

  // Hands queued entries out while the subscription has room, then reads more.
  void Pump(uint64_t id) {
    while (!stopped) {
      Subscription* sub = Find(id);
      if (sub == nullptr) {
        return;
      }
      if (sub->queued.empty() || sub->in_flight.size() >= sub->max_in_flight) {
        break;
      }
      auto node = sub->queued.extract(sub->queued.begin());
      const StreamId entry_id = node.key();
      std::shared_ptr<const Message> message = node.mapped().message;
      sub->in_flight.insert(std::move(node));
      // Handlers may unsubscribe or shut down from inside: hold only our own references across
      // the call and look the subscription up again afterwards.
      std::shared_ptr<const MessageHandler> handler = sub->handler;
      (*handler)(*message, MakeAck(id, sub->topic, sub->group, entry_id));
    }
    if (Subscription* sub = Find(id); sub != nullptr && !stopped) {
      Read(*sub);
    }
  }

  std::function<void()> MakeAck(uint64_t id,
                                const std::string& topic,
                                const std::string& group,
                                StreamId entry_id) {
    return [weak = weak_from_this(), dispatcher = dispatcher, id, topic, group, entry_id] {
      dispatcher->Post([weak, id, topic, group, entry_id] {
        if (auto core = weak.lock()) {
          core->OnAck(id, topic, group, entry_id);
        }
      });
    };
  }

  void OnAck(uint64_t id, const std::string& topic, const std::string& group, StreamId entry_id) {
    if (stopped) {
      return;
    }
    Subscription* sub = Find(id);
    if (sub != nullptr && sub->in_flight.erase(entry_id) == 0) {
      return;  // a repeated ack
    }
    // Also when the subscription is gone: the app has the message, so it should not come back.
    SendAcks(topic, group, {entry_id});
    if (sub != nullptr) {
      Pump(id);
    }
  }

  void SendAcks(const std::string& topic, const std::string& group, std::vector<StreamId> ids) {
    if (stopped || ids.empty()) {
      return;
    }
    auto& unconfirmed = acks[{topic, group}];
    std::vector<std::string> args = {"XACK", topic, group};
    args.reserve(3 + ids.size());
    for (StreamId entry_id : ids) {
      unconfirmed[entry_id] = false;
      args.push_back(std::to_string(entry_id.ms) + "-" + std::to_string(entry_id.seq));
    }
    main->Command(std::move(args), [weak = weak_from_this(), topic, group,
                                    ids = std::move(ids)](const absl::StatusOr<Reply>& reply) {
      auto core = weak.lock();
      if (core && !core->stopped) {
        core->OnAckReply(topic, group, ids, reply);
      }
    });
  }

  void OnAckReply(const std::string& topic,
                  const std::string& group,
                  const std::vector<StreamId>& ids,
                  const absl::StatusOr<Reply>& reply) {
    auto it = acks.find({topic, group});
    if (it == acks.end()) {
      return;
    }
    if (!reply.ok()) {
      for (StreamId entry_id : ids) {
        if (auto entry = it->second.find(entry_id); entry != it->second.end()) {
          entry->second = true;
        }
      }
      ScheduleAckRetry();
      return;
    }
    // An error reply (NOGROUP: the group is gone) leaves nothing to acknowledge either.
    if (reply->is_error()) {
      OTTAVA_LOG(Pubsub, debug, "{}: XACK on topic '{}' group '{}': {}", label, topic, group,
                 reply->str);
    }
    for (StreamId entry_id : ids) {
      it->second.erase(entry_id);
    }
    if (it->second.empty()) {
      acks.erase(it);
    }
    ack_failures = 0;
  }

  void ScheduleAckRetry() {
    if (!ack_retry_timer) {
      ack_retry_timer = dispatcher->CreateTimer([weak = weak_from_this()] {
        if (auto core = weak.lock()) {
          core->RetryAcks();
        }
      });
    }
    if (!ack_retry_timer->Enabled()) {
      ack_retry_timer->Enable(ack_backoff.Delay(++ack_failures));
    }
  }

  void RetryAcks() {
    if (stopped) {
      return;
    }
    std::vector<std::tuple<std::string, std::string, std::vector<StreamId>>> batches;
    for (auto& [key, ids] : acks) {
      std::vector<StreamId> owed;
      for (auto& [entry_id, failed] : ids) {
        if (failed) {
          owed.push_back(entry_id);
          if (owed.size() == kMaxIdsPerCommand) {
            batches.emplace_back(key.first, key.second, std::move(owed));
            owed.clear();
          }
        }
      }
      if (!owed.empty()) {
        batches.emplace_back(key.first, key.second, std::move(owed));
      }
    }
    for (auto& [topic, group, ids] : batches) {
      SendAcks(topic, group, std::move(ids));
    }
  }

  // ---- Reading ----

  void Read(Subscription& sub) {
    if (sub.reading || (sub.retry_timer && sub.retry_timer->Enabled())) {
      return;
    }
    if (sub.phase == Subscription::Phase::kCreateGroup) {
      CreateGroup(sub);
      return;
    }
    if (!sub.reader_started || sub.queued.size() >= settings.queue_depth) {
      return;
    }
    const bool own_pending = sub.phase == Subscription::Phase::kOwnPending;
    std::vector<std::string> args = {
        "XREADGROUP", "GROUP", sub.group,
        sub.consumer, "COUNT", std::to_string(settings.queue_depth - sub.queued.size())};
    std::chrono::milliseconds extra_deadline(0);
    if (!own_pending) {
      args.insert(args.end(), {"BLOCK", std::to_string(kBlock.count())});
      extra_deadline = kBlock;
    }
    args.insert(args.end(), {"STREAMS", sub.topic, own_pending ? sub.pending_cursor : ">"});
    sub.reading = true;
    sub.reader->Command(
        std::move(args),
        [weak = weak_from_this(), id = sub.id, own_pending](absl::StatusOr<Reply> reply) {
          if (auto core = weak.lock()) {
            core->OnRead(id, own_pending, std::move(reply));
          }
        },
        extra_deadline);
  }

  void CreateGroup(Subscription& sub) {
    sub.reading = true;
    main->Command({"XGROUP", "CREATE", sub.topic, sub.group, "0", "MKSTREAM"},
                  ForSubscription(sub.id, &Core::OnGroupCreated));
  }

  // A reply callback that hands the reply to `on_reply` for subscription `id`, unless the core is
  // gone by then.
  redis::ReplyCallback ForSubscription(uint64_t id,
                                       void (Core::*on_reply)(uint64_t, absl::StatusOr<Reply>)) {
    return [weak = weak_from_this(), id, on_reply](absl::StatusOr<Reply> reply) {
      if (auto core = weak.lock()) {
        ((*core).*on_reply)(id, std::move(reply));
      }
    };
  }

  void OnGroupCreated(uint64_t id, absl::StatusOr<Reply> reply) {
    Subscription* sub = Find(id);
    if (sub == nullptr || stopped) {
      return;
    }
    sub->reading = false;
    if (!reply.ok() || (reply->is_error() && !StartsWith(reply->str, "BUSYGROUP"))) {
      Failed(*sub, "XGROUP CREATE", reply);
      return;
    }
    sub->phase = Subscription::Phase::kOwnPending;
    sub->pending_cursor = "0";
    Recovered(*sub);
    Pump(id);
  }

  void OnRead(uint64_t id, bool own_pending, absl::StatusOr<Reply> reply) {
    Subscription* sub = Find(id);
    if (sub == nullptr || stopped) {
      return;  // unsubscribed: what this read took stays pending under the consumer
    }
    sub->reading = false;
    std::vector<Entry> entries;
    if (!reply.ok() || reply->is_error()) {
      Failed(*sub, "XREADGROUP", reply);
      return;
    }
    if (!ParseReadReply(*reply, sub->topic, &entries)) {
      Failed(*sub, "XREADGROUP", absl::InternalError("unexpected reply shape"));
      return;
    }
    Recovered(*sub);
    const auto now = Clock::now();
    std::vector<StreamId> gone;
    for (Entry& entry : entries) {
      if (entry.deleted) {
        gone.push_back(entry.id);
      } else if (!Holds(*sub, entry.id)) {
        sub->queued.emplace(entry.id,
                            Held{std::make_shared<const Message>(std::move(entry.message)), now});
      }
    }
    if (own_pending) {
      if (entries.empty()) {
        sub->phase = Subscription::Phase::kNew;
        if (settings.redeliver_interval.count() > 0 && settings.processing_timeout.count() > 0) {
          Claim(*sub);  // a crashed predecessor's entries, without waiting for the first tick
        }
      } else {
        // By value: the entries' messages were moved into the queue.
        const StreamId last = entries.back().id;
        sub->pending_cursor = std::to_string(last.ms) + "-" + std::to_string(last.seq);
      }
    }
    Trimmed(*sub, std::move(gone));
    Pump(id);
  }

  void Failed(Subscription& sub, const char* what, const absl::StatusOr<Reply>& reply) {
    const std::string why = reply.ok() ? reply->str : std::string(reply.status().message());
    if (reply.ok() && StartsWith(reply->str, "NOGROUP")) {
      // The stream or the group was deleted (or Redis restarted without persistence).
      sub.phase = Subscription::Phase::kCreateGroup;
    } else if (!reply.ok() && sub.phase == Subscription::Phase::kNew) {
      // A lost reply may have carried entries, which are now pending under our name: re-read
      // them rather than wait processingTimeout for XAUTOCLAIM.
      sub.phase = Subscription::Phase::kOwnPending;
      sub.pending_cursor = "0";
    }
    if (++sub.failures == 1) {
      OTTAVA_LOG(Pubsub, warn, "{}: {} on topic '{}' (group '{}') failed: {}; retrying", label,
                 what, sub.topic, sub.group, why);
    }
    sub.retry_timer->Enable(sub.backoff.Delay(sub.failures));
  }

  void Recovered(Subscription& sub) {
    if (sub.failures > 0) {
      OTTAVA_LOG(Pubsub, info, "{}: reading topic '{}' (group '{}') again after {} failure(s)",
                 label, sub.topic, sub.group, sub.failures);
      sub.failures = 0;
    }
  }

  // Entries pending for us but trimmed from the stream can never be delivered: ack them so they
  // leave the pending list.
  void Trimmed(Subscription& sub, std::vector<StreamId> gone) {
    if (gone.empty()) {
      return;
    }
    OTTAVA_LOG(Pubsub, warn,
               "{}: {} pending entr{} of topic '{}' (group '{}') trimmed by MAXLEN before delivery",
               label, gone.size(), gone.size() == 1 ? "y" : "ies", sub.topic, sub.group);
    if (trimmed != nullptr) {
      trimmed->Inc(gone.size());
    }
    SendAcks(sub.topic, sub.group, std::move(gone));
  }

  // ---- Reclaiming and touching ----

  void Tick(uint64_t id) {
    Subscription* sub = Find(id);
    if (sub == nullptr || stopped) {
      return;
    }
    Touch(*sub);
    if (settings.redeliver_interval.count() > 0 && sub->phase == Subscription::Phase::kNew &&
        Clock::now() - sub->last_claim >= settings.redeliver_interval) {
      Claim(*sub);
    }
    sub->tick_timer->Enable(TickPeriod());
  }

  // Keeps the entries we hold from looking idle to our peers' XAUTOCLAIM.
  void Touch(Subscription& sub) {
    const auto now = Clock::now();
    const auto stale = now - settings.processing_timeout / 3;
    std::vector<std::string> args = {sub.group, sub.consumer};
    std::vector<StreamId> ids;
    auto flush = [&] {
      if (ids.empty()) {
        return;
      }
      main->EvalSha(TouchScript(), {sub.topic}, std::move(args),
                    [weak = weak_from_this(), id = sub.id, ids](absl::StatusOr<Reply> reply) {
                      auto core = weak.lock();
                      if (core && !core->stopped && (!reply.ok() || reply->is_error())) {
                        core->TouchFailed(id, ids);
                      }
                    });
      args = {sub.group, sub.consumer};
      ids.clear();
    };
    for (auto* held : {&sub.queued, &sub.in_flight}) {
      for (auto& [entry_id, entry] : *held) {
        if (entry.touched <= stale) {
          entry.touched = now;
          args.push_back(entry.message->id);
          ids.push_back(entry_id);
          if (ids.size() == kMaxIdsPerCommand) {
            flush();
          }
        }
      }
    }
    flush();
  }

  // Tries again at the next tick.
  void TouchFailed(uint64_t id, const std::vector<StreamId>& ids) {
    Subscription* sub = Find(id);
    if (sub == nullptr) {
      return;
    }
    for (StreamId entry_id : ids) {
      for (auto* held : {&sub->queued, &sub->in_flight}) {
        if (auto it = held->find(entry_id); it != held->end()) {
          it->second.touched = Clock::time_point();
        }
      }
    }
  }

  void Claim(Subscription& sub) {
    if (sub.claiming || sub.queued.size() >= settings.queue_depth) {
      return;
    }
    sub.claiming = true;
    main->Command({"XAUTOCLAIM", sub.topic, sub.group, sub.consumer,
                   std::to_string(settings.processing_timeout.count()), sub.claim_cursor, "COUNT",
                   std::to_string(settings.queue_depth - sub.queued.size())},
                  ForSubscription(sub.id, &Core::OnClaim));
  }

  // XAUTOCLAIM: [next cursor, entries, ids of pending entries no longer in the stream].
  void OnClaim(uint64_t id, absl::StatusOr<Reply> reply) {
    Subscription* sub = Find(id);
    if (sub == nullptr || stopped) {
      return;
    }
    sub->claiming = false;
    sub->last_claim = Clock::now();
    std::vector<Entry> entries;
    if (!reply.ok() || reply->type != Reply::Type::kArray || reply->elements.size() < 2 ||
        reply->elements[0].type != Reply::Type::kString ||
        !ParseEntries(reply->elements[1], sub->topic, &entries)) {
      // The read loop reports outages; the next tick tries again from the start.
      OTTAVA_LOG(Pubsub, debug, "{}: XAUTOCLAIM on topic '{}' failed: {}", label, sub->topic,
                 reply.ok() ? reply->str : std::string(reply.status().message()));
      sub->claim_cursor = "0-0";
      return;
    }
    const auto now = Clock::now();
    size_t taken = 0;
    std::vector<StreamId> gone;
    for (Entry& entry : entries) {
      if (entry.deleted) {
        gone.push_back(entry.id);
      } else if (!Holds(*sub, entry.id)) {
        sub->queued.emplace(entry.id,
                            Held{std::make_shared<const Message>(std::move(entry.message)), now});
        ++taken;
      }
    }
    // Redis 7 already dropped these from the pending list; count them as lost to trimming.
    const size_t deleted = reply->elements.size() > 2 ? reply->elements[2].elements.size() : 0;
    if (deleted > 0) {
      OTTAVA_LOG(Pubsub, warn,
                 "{}: {} pending entr{} of topic '{}' (group '{}') trimmed by MAXLEN before "
                 "delivery",
                 label, deleted, deleted == 1 ? "y" : "ies", sub->topic, sub->group);
      if (trimmed != nullptr) {
        trimmed->Inc(deleted);
      }
    }
    if (taken > 0) {
      OTTAVA_LOG(Pubsub, info,
                 "{}: reclaimed {} entr{} of topic '{}' (group '{}') idle for over {} ms", label,
                 taken, taken == 1 ? "y" : "ies", sub->topic, sub->group,
                 settings.processing_timeout.count());
      if (reclaimed != nullptr) {
        reclaimed->Inc(taken);
      }
    }
    Trimmed(*sub, std::move(gone));
    sub->claim_cursor = reply->elements[0].str;
    if (sub->claim_cursor != "0-0" && !entries.empty()) {
      Claim(*sub);  // more of the pending list to scan while there is room
    } else if (sub->claim_cursor == "0-0") {
      MaybeReap(*sub);  // a full pass: what dead consumers held has been taken over
    }
    Pump(id);
  }

  // Removes idle consumers that hold nothing, at most every idleConsumerTTL / 2 (and every minute
  // at least), after a full reclaim pass.
  void MaybeReap(Subscription& sub) {
    const auto ttl = settings.idle_consumer_ttl;
    const auto now = Clock::now();
    if (ttl.count() == 0 ||
        now - sub.last_reap < std::min<Clock::duration>(ttl / 2, std::chrono::minutes(1))) {
      return;
    }
    sub.last_reap = now;
    main->EvalSha(
        ReapScript(), {sub.topic}, {sub.group, std::to_string(ttl.count()), sub.consumer},
        [weak = weak_from_this(), topic = sub.topic,
         group = sub.group](absl::StatusOr<Reply> reply) {
          auto core = weak.lock();
          if (!core || core->stopped) {
            return;
          }
          if (!reply.ok() || reply->type != Reply::Type::kArray) {
            OTTAVA_LOG(Pubsub, debug, "{}: removing idle consumers of topic '{}' failed: {}",
                       core->label, topic,
                       reply.ok() ? reply->str : std::string(reply.status().message()));
            return;
          }
          if (!reply->elements.empty()) {
            std::string names;
            for (const Reply& name : reply->elements) {
              names += (names.empty() ? "" : ", ") + name.str;
            }
            OTTAVA_LOG(Pubsub, info,
                       "{}: removed {} consumer(s) of topic '{}' (group '{}') idle for over {} ms "
                       "with nothing pending: {}",
                       core->label, reply->elements.size(), topic, group,
                       core->settings.idle_consumer_ttl.count(), names);
          }
        });
  }
};

// ---------------------------------------------------------------------------------------------

absl::StatusOr<RedisPubSubSettings> RedisPubSubSettings::Parse(const Metadata& metadata) {
  MetadataReader reader(metadata);
  return Read(reader);
}

absl::StatusOr<RedisPubSubSettings> RedisPubSubSettings::Read(MetadataReader& reader) {
  RedisPubSubSettings settings;
  OTTAVA_ASSIGN_OR_RETURN(settings.client, redis::ClientSettings::Read(reader));
  OTTAVA_RETURN_IF_ERROR(reader.String("consumerID", &settings.consumer_id));
  OTTAVA_RETURN_IF_ERROR(reader.String("consumerName", &settings.consumer_name));
  OTTAVA_RETURN_IF_ERROR(reader.Duration("processingTimeout", &settings.processing_timeout));
  OTTAVA_RETURN_IF_ERROR(reader.Duration("redeliverInterval", &settings.redeliver_interval));
  OTTAVA_RETURN_IF_ERROR(reader.Duration("idleConsumerTTL", &settings.idle_consumer_ttl));
  OTTAVA_RETURN_IF_ERROR(
      reader.Int("maxLenApprox", 0, std::numeric_limits<int64_t>::max(), &settings.max_len_approx));
  OTTAVA_RETURN_IF_ERROR(reader.Uint("queueDepth", 1, 100000, &settings.queue_depth));
  // Dapr's `concurrency` is the subscription's max_in_flight here (read by the runtime).
  reader.Accept({"concurrency"});
  return settings;
}

RedisPubSub::RedisPubSub(const ComponentContext& context, RedisPubSubSettings settings)
    : label_(context.Label()),
      settings_(std::move(settings)),
      health_(context.health),
      dispatcher_(*context.dispatcher) {
  if (settings_.consumer_name.empty()) {
    settings_.consumer_name = DefaultConsumerName();
  }
  core_ = std::make_shared<Core>(label_, context.dispatcher, settings_, context.stats);
}

RedisPubSub::~RedisPubSub() {
  Shutdown();
}

absl::Status RedisPubSub::Init() {
  if (initialized_.load() || shut_down_.load()) {
    return absl::FailedPreconditionError(label_ + ": Init called twice or after Shutdown");
  }
  OTTAVA_ASSIGN_OR_RETURN(std::unique_ptr<redis::Client> client,
                          redis::Client::Create(settings_.client, &dispatcher_, health_, label_));
  client->AddScript(&TouchScript());
  client->AddScript(&ReapScript());
  redis::Client* main = client.get();
  // Handed over before the client's first loop use: Connect() posts to the loop.
  core_->main = std::move(client);
  connector_ = std::make_unique<Connector>();
  initialized_ = true;
  return main->Connect();
}

void RedisPubSub::Shutdown() {
  if (shut_down_.exchange(true)) {
    return;
  }
  if (!initialized_.load()) {
    return;
  }
  RunOnLoopAndWait([](Core& core) { core.Stop(); });
  connector_->Stop();
}

void RedisPubSub::RunOnLoopAndWait(std::function<void(Core&)> fn) {
  pubsub::RunOnLoopAndWait(dispatcher_, core_, std::move(fn));
}

void RedisPubSub::Publish(PublishRequest request, DoneCallback done) {
  if (request.topic.empty()) {
    done(absl::InvalidArgumentError(label_ + ": publish needs a topic"));
    return;
  }
  if (!initialized_.load() || shut_down_.load()) {
    done(
        absl::UnavailableError(label_ + (shut_down_.load() ? ": shut down" : ": not initialised")));
    return;
  }
  auto guard = std::make_shared<DoneGuard>(std::move(done), label_);
  dispatcher_.Post(
      [core = core_, request = std::move(request), guard = std::move(guard)]() mutable {
        core->Publish(std::move(request), guard);
      });
}

absl::StatusOr<uint64_t> RedisPubSub::Subscribe(SubscribeRequest request, MessageHandler handler) {
  if (absl::Status status = CheckSubscribe(label_, request, handler); !status.ok()) {
    return status;
  }
  // A consumerID in the subscription's own metadata (the runtime copies it into consumer_group)
  // beats the component's; the component's beats the runtime's default, the app id.
  std::string group = request.consumer_group;
  if (auto it = request.metadata.find("consumerID");
      it != request.metadata.end() && !it->second.empty()) {
    group = it->second;
  } else if (!settings_.consumer_id.empty()) {
    group = settings_.consumer_id;
  }
  if (group.empty()) {
    return absl::InvalidArgumentError(label_ + ": topic '" + request.topic +
                                      "' needs a consumer group (consumerID)");
  }
  if (shut_down_.load()) {
    return absl::FailedPreconditionError(label_ + ": shut down");
  }
  if (!initialized_.load()) {
    return absl::FailedPreconditionError(label_ + ": not initialised");
  }
  redis::ClientSettings reader_settings = settings_.client;
  reader_settings.pool_size = 1;
  // No health indicator: the command connection reports for the component.
  OTTAVA_ASSIGN_OR_RETURN(std::shared_ptr<redis::Client> reader,
                          redis::Client::Create(reader_settings, &dispatcher_, nullptr, label_));

  const uint64_t id = next_subscription_id_.fetch_add(1);
  auto sub = std::make_shared<Subscription>();
  sub->id = id;
  sub->topic = std::move(request.topic);
  sub->group = std::move(group);
  sub->max_in_flight = request.max_in_flight;
  sub->handler = std::make_shared<const MessageHandler>(std::move(handler));
  sub->reader = reader;
  sub->cancelled = std::make_shared<std::atomic<bool>>(false);
  auto cancelled = sub->cancelled;
  dispatcher_.Post(
      [core = core_, sub = std::move(sub)]() mutable { core->AddSubscription(std::move(sub)); });
  connector_->Dial(std::move(reader), std::move(cancelled),
                   [weak = std::weak_ptr<Core>(core_), dispatcher = &dispatcher_, id] {
                     dispatcher->Post([weak, id] {
                       if (auto core = weak.lock()) {
                         core->OnReaderStarted(id);
                       }
                     });
                   });
  return id;
}

void RedisPubSub::Unsubscribe(uint64_t subscription_id) {
  RunOnLoopAndWait([subscription_id](Core& core) { core.RemoveSubscription(subscription_id); });
}

absl::StatusOr<std::unique_ptr<PubSub>> RedisPubSubFactory::Create(
    const ComponentContext& context) const {
  return CreatePubSub<RedisPubSub, RedisPubSubSettings>(context, "redis pub/sub");
}

}  // namespace ottava::components::pubsub
