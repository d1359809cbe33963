#include "components/config_store/redis/redis_config_store.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <deque>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/backoff.h"
#include "common/dispatcher.h"
#include "common/logging.h"
#include "components/common/redis/redis_subscriber.h"

namespace ottava::components::config_store {
namespace {

// KEYS: per scope, its hash then its revision key. ARGV: per scope, its channel, the number of
// items n, then n field/value pairs.
constexpr const char* kSaveScript = R"lua(
local function ns(s) return string.len(s) .. ':' .. s end
local a = 1
for i = 1, #KEYS / 2 do
  local data, revision = KEYS[2 * i - 1], KEYS[2 * i]
  local channel, n = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local parts = {ns(string.format('%d', redis.call('INCR', revision)))}
  for j = 1, n do
    local field, value = ARGV[a], ARGV[a + 1]
    a = a + 2
    redis.call('HSET', data, field, value)
    parts[#parts + 1] = ns(field) .. ns('s') .. ns(value)
  end
  redis.call('PUBLISH', channel, table.concat(parts))
end
return 1
)lua";

// KEYS[1] = hash, KEYS[2] = revision key. ARGV[1] = channel, ARGV[2] = '*' (every field) or '='
// (the fields in ARGV[3..]). Only fields that existed count as changes.
constexpr const char* kDeleteScript = R"lua(
local function ns(s) return string.len(s) .. ':' .. s end
local fields
if ARGV[2] == '*' then
  fields = redis.call('HKEYS', KEYS[1])
else
  fields = {}
  for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
end
local parts = {}
for _, field in ipairs(fields) do
  if redis.call('HDEL', KEYS[1], field) == 1 then
    parts[#parts + 1] = ns(field) .. ns('d') .. ns('')
  end
end
if #parts == 0 then return 0 end
local revision = string.format('%d', redis.call('INCR', KEYS[2]))
redis.call('PUBLISH', ARGV[1], ns(revision) .. table.concat(parts))
return #parts
)lua";

// KEYS[1] = hash, KEYS[2] = revision key. ARGV = fields, or none for every field. Returns the
// revision and the values (HGETALL pairs, or one value or nil per field) read at that revision.
constexpr const char* kReadScript = R"lua(
local revision = redis.call('GET', KEYS[2]) or '0'
if #ARGV == 0 then
  return {revision, redis.call('HGETALL', KEYS[1])}
end
local values = {}
for i, field in ipairs(ARGV) do
  values[i] = redis.call('HGET', KEYS[1], field)
end
return {revision, values}
)lua";

// ---- netstrings: <decimal length>:<bytes> ----

void AppendNetstring(std::string& out, std::string_view value) {
  out.append(std::to_string(value.size())).append(":").append(value);
}

class NetstringReader {
 public:
  explicit NetstringReader(std::string_view in) : in_(in) {}
  bool Next(std::string_view* out) {
    const size_t colon = in_.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 10) {
      return false;
    }
    size_t length = 0;
    auto [end, ec] = std::from_chars(in_.data(), in_.data() + colon, length);
    if (ec != std::errc() || end != in_.data() + colon || in_.size() - colon - 1 < length) {
      return false;
    }
    *out = in_.substr(colon + 1, length);
    in_.remove_prefix(colon + 1 + length);
    return true;
  }
  bool NextInt(int64_t* out) {
    std::string_view text;
    if (!Next(&text)) {
      return false;
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && end == text.data() + text.size();
  }
  bool AtEnd() const { return in_.empty(); }

 private:
  std::string_view in_;
};

std::string EncodeItem(const Item& item) {
  std::string out;
  AppendNetstring(out, item.content);
  for (const auto* map : {&item.tags, &item.metadata}) {
    AppendNetstring(out, std::to_string(map->size()));
    for (const auto& [key, value] : *map) {
      AppendNetstring(out, key);
      AppendNetstring(out, value);
    }
  }
  return out;
}

// Fills content, tags and metadata from a stored value; anything else reads as plain content.
void DecodeItem(std::string_view raw, Item& item) {
  NetstringReader reader(raw);
  std::string_view content;
  bool ok = reader.Next(&content);
  std::map<std::string, std::string> maps[2];
  for (auto& map : maps) {
    int64_t count = 0;
    ok = ok && reader.NextInt(&count) && count >= 0;
    for (int64_t i = 0; ok && i < count; ++i) {
      std::string_view key;
      std::string_view value;
      ok = reader.Next(&key) && reader.Next(&value);
      if (ok) {
        map.emplace(key, value);
      }
    }
  }
  if (!ok || !reader.AtEnd()) {
    item.content.assign(raw);
    return;
  }
  item.content.assign(content);
  item.tags = std::move(maps[0]);
  item.metadata = std::move(maps[1]);
}

// The part of a scope name that must stay unambiguous when joined with "||".
absl::Status CheckScopePart(const std::string& label,
                            std::string_view what,
                            const std::string& value) {
  if (value.find("||") != std::string::npos || (!value.empty() && value.front() == '|') ||
      (!value.empty() && value.back() == '|')) {
    return absl::InvalidArgumentError(label + ": " + std::string(what) + " '" + value +
                                      "' must not contain '||' nor start or end with '|'");
  }
  return absl::OkStatus();
}

// One change of one key, as carried by a change message or found by a read.
struct Entry {
  std::string key;
  std::optional<std::string> value;  // the encoded item; nullopt = deleted
};

// The subscription whose handler this thread is running, if any; lets a handler unsubscribe itself
// without waiting for itself.
thread_local const void* delivering = nullptr;

}  // namespace

absl::StatusOr<RedisConfigStoreSettings> RedisConfigStoreSettings::Parse(const Metadata& metadata) {
  RedisConfigStoreSettings settings;
  absl::StatusOr<redis::ClientSettings> client = redis::ClientSettings::Parse(metadata);
  if (!client.ok()) {
    return client.status();
  }
  settings.client = std::move(*client);
  return settings;
}

// ---------------------------------------------------------------------------------------------

struct RedisConfigStore::Core : std::enable_shared_from_this<RedisConfigStore::Core> {
  struct Subscription {
    uint64_t id = 0;
    Selector selector;
    std::string scope;  // "<app>||<group>||<label>"
    ChangeHandler handler;

    std::atomic<bool> active{true};
    // Held for the whole of each handler call; Unsubscribe takes it to wait for a running call.
    absl::Mutex handler_mu;

    // ---- loop thread only ----
    struct Known {
      std::optional<std::string> value;  // encoded item; nullopt = absent
      int64_t revision = 0;              // the scope revision `value` belongs to
    };
    std::map<std::string, Known> known;
    bool has_baseline = false;
    // A read is in flight: changes queue behind it.
    bool syncing = true;
    uint64_t generation = 0;  // of the read whose answer counts
    uint32_t read_failures = 0;
    std::deque<std::pair<int64_t, std::vector<Entry>>> queued;

    bool Selects(const std::string& key) const {
      return selector.keys.empty() ||
             std::find(selector.keys.begin(), selector.keys.end(), key) != selector.keys.end();
    }
  };
  using SubscriptionPtr = std::shared_ptr<Subscription>;

  Core(const ComponentContext& context, RedisConfigStoreSettings s)
      : label(context.Label()),
        dispatcher(context.dispatcher),
        health(context.health),
        settings(std::move(s)),
        channel_prefix(settings.client.db == 0
                           ? std::string("config-changed||")
                           : "config-changed@" + std::to_string(settings.client.db) + "||"),
        save_script(kSaveScript),
        delete_script(kDeleteScript),
        read_script(kReadScript) {}

  static std::string Scope(const std::string& app,
                           const std::string& group,
                           const std::string& item_label) {
    return app + "||" + group + "||" + item_label;
  }
  static std::string DataKey(const std::string& scope) { return "config||" + scope; }
  static std::string RevisionKey(const std::string& scope) { return "config-rev||" + scope; }
  std::string Channel(const std::string& scope) const { return channel_prefix + scope; }

  absl::Status CheckScope(const std::string& app,
                          const std::string& group,
                          const std::string& item_label) const {
    if (absl::Status s = CheckScopePart(label, "app id", app); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckScopePart(label, "group", group); !s.ok()) {
      return s;
    }
    return CheckScopePart(label, "label", item_label);
  }

  // A Redis error reply as a status; transport failures already are statuses.
  absl::Status ReplyStatus(const absl::StatusOr<redis::Reply>& reply) const {
    if (!reply.ok()) {
      return reply.status();
    }
    if (reply->is_error()) {
      return absl::InternalError(label + ": redis: " + reply->str);
    }
    return absl::OkStatus();
  }

  static Item MakeItem(const Selector& selector,
                       const std::string& key,
                       const std::optional<std::string>& value) {
    Item item;
    item.key = key;
    item.group = selector.group;
    item.label = selector.label;
    if (value) {
      DecodeItem(*value, item);
    }
    return item;
  }

  // ---- subscriptions: loop thread from here on ----

  std::vector<SubscriptionPtr> Snapshot() {
    absl::MutexLock lock(&mu);
    std::vector<SubscriptionPtr> out;
    out.reserve(subscriptions.size());
    for (auto& [id, sub] : subscriptions) {
      out.push_back(sub);
    }
    return out;
  }

  void OnMessage(const std::string& channel, const std::string& message) {
    if (channel.compare(0, channel_prefix.size(), channel_prefix) != 0) {
      return;
    }
    const std::string scope = channel.substr(channel_prefix.size());
    NetstringReader reader(message);
    int64_t revision = 0;
    std::vector<Entry> entries;
    bool ok = reader.NextInt(&revision);
    while (ok && !reader.AtEnd()) {
      std::string_view key;
      std::string_view op;
      std::string_view value;
      ok = reader.Next(&key) && reader.Next(&op) && reader.Next(&value) && (op == "s" || op == "d");
      if (ok) {
        entries.push_back(
            Entry{std::string(key), op == "s" ? std::optional<std::string>(value) : std::nullopt});
      }
    }
    if (!ok) {
      OTTAVA_LOG(Redis, warn, "{}: ignoring a malformed change message on {}", label, channel);
      return;
    }
    for (const SubscriptionPtr& sub : Snapshot()) {
      if (sub->scope != scope || !sub->active.load()) {
        continue;
      }
      std::vector<Entry> selected;
      for (const Entry& entry : entries) {
        if (sub->Selects(entry.key)) {
          selected.push_back(entry);
        }
      }
      if (selected.empty()) {
        continue;
      }
      if (sub->syncing) {
        sub->queued.emplace_back(revision, std::move(selected));
      } else {
        Apply(*sub, revision, selected, /*skip_known=*/false);
      }
    }
  }

  // Delivers `entries` of one change (or the changes a read found). With `skip_known`, keys
  // already known at `revision` or later are left out.
  void Apply(Subscription& sub,
             int64_t revision,
             const std::vector<Entry>& entries,
             bool skip_known) {
    std::vector<Item> items;
    for (const Entry& entry : entries) {
      Subscription::Known& known = sub.known[entry.key];
      if (skip_known && revision <= known.revision) {
        continue;
      }
      known.value = entry.value;
      known.revision = revision;
      items.push_back(MakeItem(sub.selector, entry.key, entry.value));
    }
    Deliver(sub, std::move(items));
  }

  static void Deliver(Subscription& sub, std::vector<Item> items) {
    if (items.empty()) {
      return;
    }
    absl::MutexLock lock(&sub.handler_mu);
    if (!sub.active.load()) {
      return;
    }
    const void* previous = delivering;
    delivering = &sub;
    sub.handler(std::move(items));
    delivering = previous;
  }

  // Reads the subscription's keys; changes queue until the answer is applied.
  void StartSync(const SubscriptionPtr& sub) {
    if (shut_down.load() || !sub->active.load()) {
      return;
    }
    const uint64_t generation = ++sub->generation;
    sub->syncing = true;
    client->EvalSha(read_script, {DataKey(sub->scope), RevisionKey(sub->scope)}, sub->selector.keys,
                    [weak = weak_from_this(), sub, generation](absl::StatusOr<redis::Reply> reply) {
                      if (auto core = weak.lock()) {
                        core->OnRead(sub, generation, std::move(reply));
                      }
                    });
  }

  void OnRead(const SubscriptionPtr& sub, uint64_t generation, absl::StatusOr<redis::Reply> reply) {
    if (generation != sub->generation || !sub->active.load() || shut_down.load()) {
      return;
    }
    int64_t revision = 0;
    std::map<std::string, std::optional<std::string>> read;
    absl::Status status = ReplyStatus(reply);
    if (status.ok() && !ParseRead(*sub, *reply, &revision, &read)) {
      status = absl::InternalError("unexpected reply to the read script");
    }
    if (!status.ok()) {
      // Retry with backoff; a reconnection starts a fresh read anyway.
      const auto delay = read_backoff.Delay(++sub->read_failures);
      OTTAVA_LOG(Redis, debug, "{}: reading scope {} failed ({}); retrying in {} ms", label,
                 sub->scope, status.message(), delay.count());
      dispatcher->PostDelayed(delay, [weak = weak_from_this(), sub, generation] {
        if (auto core = weak.lock(); core && sub->generation == generation) {
          core->StartSync(sub);
        }
      });
      return;
    }
    sub->read_failures = 0;
    const bool initial = !sub->has_baseline;
    if (initial) {
      // The baseline: what the subscription starts from, delivered to nobody.
      for (auto& [key, value] : read) {
        sub->known[key] = Subscription::Known{std::move(value), revision};
      }
      sub->has_baseline = true;
    } else {
      int64_t highest = 0;
      for (const auto& [key, known] : sub->known) {
        highest = std::max(highest, known.revision);
      }
      if (revision < highest) {
        // The revision went backwards: Redis lost data. Trust contents, not revisions.
        OTTAVA_LOG(Redis, warn, "{}: revision of scope {} went back from {} to {}", label,
                   sub->scope, highest, revision);
        for (auto& [key, known] : sub->known) {
          known.revision = 0;
        }
      }
      // Keys the subscription knew but the read did not return (all-keys subscriptions) are gone.
      for (const auto& [key, known] : sub->known) {
        read.try_emplace(key, std::nullopt);
      }
      std::vector<Item> items;
      for (auto& [key, value] : read) {
        Subscription::Known& known = sub->known[key];
        if (revision <= known.revision) {
          continue;  // a change at least this new was already delivered
        }
        if (value != known.value) {
          items.push_back(MakeItem(sub->selector, key, value));
        }
        known.value = std::move(value);
        known.revision = revision;
      }
      Deliver(*sub, std::move(items));
    }
    sub->syncing = false;
    auto queued = std::move(sub->queued);
    sub->queued.clear();
    for (auto& [change_revision, entries] : queued) {
      // After the first read every queued change is news; after a reconnection, only those newer
      // than what the read already delivered.
      Apply(*sub, change_revision, entries, /*skip_known=*/!initial);
    }
  }

  static bool ParseRead(const Subscription& sub,
                        const redis::Reply& reply,
                        int64_t* revision,
                        std::map<std::string, std::optional<std::string>>* read) {
    if (reply.type != redis::Reply::Type::kArray || reply.elements.size() != 2 ||
        reply.elements[1].type != redis::Reply::Type::kArray) {
      return false;
    }
    const std::string& text = reply.elements[0].str;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *revision);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return false;
    }
    const auto& values = reply.elements[1].elements;
    if (sub.selector.keys.empty()) {
      for (size_t i = 0; i + 1 < values.size(); i += 2) {
        (*read)[values[i].str] = values[i + 1].str;
      }
      return true;
    }
    if (values.size() != sub.selector.keys.size()) {
      return false;
    }
    for (size_t i = 0; i < values.size(); ++i) {
      (*read)[sub.selector.keys[i]] =
          values[i].is_nil() ? std::nullopt : std::optional<std::string>(values[i].str);
    }
    return true;
  }

  void OnSubscribed() {
    // Messages published while the subscriber was away are lost: re-read every subscription.
    for (const SubscriptionPtr& sub : Snapshot()) {
      StartSync(sub);
    }
  }

  // Any thread: the handler is not running and never runs again when this returns.
  static void Deactivate(Subscription& sub) {
    sub.active.store(false);
    if (delivering == &sub) {
      return;
    }
    absl::MutexLock wait_for_running_call(&sub.handler_mu);
  }

  const std::string label;
  Dispatcher* const dispatcher;
  HealthIndicator* const health;
  const RedisConfigStoreSettings settings;
  const std::string channel_prefix;
  // Declared before the client that refers to them.
  const redis::Script save_script;
  const redis::Script delete_script;
  const redis::Script read_script;
  std::unique_ptr<redis::Client> client;
  std::unique_ptr<redis::Subscriber> subscriber;
  std::atomic<bool> shut_down{false};
  Backoff read_backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(2000)};

  absl::Mutex mu;
  std::map<uint64_t, SubscriptionPtr> subscriptions ABSL_GUARDED_BY(mu);
  uint64_t next_subscription_id ABSL_GUARDED_BY(mu) = 1;
};

// ---------------------------------------------------------------------------------------------

RedisConfigStore::RedisConfigStore(const ComponentContext& context,
                                   RedisConfigStoreSettings settings)
    : core_(std::make_shared<Core>(context, std::move(settings))) {}

RedisConfigStore::~RedisConfigStore() {
  Shutdown();
}

absl::Status RedisConfigStore::Init() {
  Core& core = *core_;
  auto client =
      redis::Client::Create(core.settings.client, core.dispatcher, core.health, core.label);
  if (!client.ok()) {
    return client.status();
  }
  core.client = std::move(*client);
  core.client->AddScript(&core.save_script);
  core.client->AddScript(&core.delete_script);
  core.client->AddScript(&core.read_script);

  redis::Subscriber::Callbacks callbacks;
  std::weak_ptr<Core> weak = core_;
  callbacks.on_message = [weak](const std::string& channel, const std::string& message) {
    if (auto locked = weak.lock()) {
      locked->OnMessage(channel, message);
    }
  };
  callbacks.on_subscribed = [weak] {
    if (auto locked = weak.lock()) {
      locked->OnSubscribed();
    }
  };
  auto subscriber = redis::Subscriber::Create(core.settings.client, core.dispatcher, core.label, {},
                                              {core.channel_prefix + "*"}, std::move(callbacks));
  if (!subscriber.ok()) {
    return subscriber.status();
  }
  core.subscriber = std::move(*subscriber);

  absl::Status connected = core.client->Connect();
  absl::Status subscribed = core.subscriber->Connect();
  return connected.ok() ? subscribed : connected;
}

void RedisConfigStore::Shutdown() {
  Core& core = *core_;
  if (core.shut_down.exchange(true)) {
    return;
  }
  if (core.subscriber) {
    core.subscriber->Shutdown();
  }
  if (core.client) {
    core.client->Shutdown();
  }
  std::map<uint64_t, Core::SubscriptionPtr> subscriptions;
  {
    absl::MutexLock lock(&core.mu);
    subscriptions.swap(core.subscriptions);
  }
  for (auto& [id, sub] : subscriptions) {
    Core::Deactivate(*sub);
  }
}

absl::Status RedisConfigStore::PrepareSelector(Selector& selector) const {
  const Core& core = *core_;
  if (selector.group.empty()) {
    selector.group = DefaultGroup();
  }
  if (selector.label.empty()) {
    selector.label = DefaultLabel();
  }
  if (absl::Status s = core.CheckScope(selector.app_id, selector.group, selector.label); !s.ok()) {
    return s;
  }
  if (!core.client) {
    return absl::FailedPreconditionError(core.label + ": not initialised");
  }
  return absl::OkStatus();
}

void RedisConfigStore::Get(Selector selector, ItemsCallback done) {
  Core& core = *core_;
  if (absl::Status s = PrepareSelector(selector); !s.ok()) {
    done(s);
    return;
  }
  const std::string data =
      Core::DataKey(Core::Scope(selector.app_id, selector.group, selector.label));
  std::vector<std::string> args;
  if (selector.keys.empty()) {
    args = {"HGETALL", data};
  } else {
    args = {"HMGET", data};
    args.insert(args.end(), selector.keys.begin(), selector.keys.end());
  }
  core.client->Command(
      std::move(args), [core = core_, selector = std::move(selector),
                        done = std::move(done)](absl::StatusOr<redis::Reply> reply) {
        if (absl::Status s = core->ReplyStatus(reply); !s.ok()) {
          done(s);
          return;
        }
        std::vector<Item> items;
        const auto& values = reply->elements;
        if (selector.keys.empty()) {
          for (size_t i = 0; i + 1 < values.size(); i += 2) {
            items.push_back(Core::MakeItem(selector, values[i].str, values[i + 1].str));
          }
          std::sort(items.begin(), items.end(),
                    [](const Item& a, const Item& b) { return a.key < b.key; });
        } else {
          for (size_t i = 0; i < values.size() && i < selector.keys.size(); ++i) {
            if (!values[i].is_nil()) {
              items.push_back(Core::MakeItem(selector, selector.keys[i], values[i].str));
            }
          }
        }
        done(std::move(items));
      });
}

void RedisConfigStore::Save(SaveRequest request, DoneCallback done) {
  Core& core = *core_;
  // Items grouped by scope, scopes in order of first appearance.
  std::vector<std::pair<std::string, std::vector<const Item*>>> scopes;
  for (Item& item : request.items) {
    if (item.key.empty()) {
      done(absl::InvalidArgumentError(core.label + ": an item has an empty key"));
      return;
    }
    if (item.group.empty()) {
      item.group = DefaultGroup();
    }
    if (item.label.empty()) {
      item.label = DefaultLabel();
    }
    if (absl::Status s = core.CheckScope(request.app_id, item.group, item.label); !s.ok()) {
      done(s);
      return;
    }
    std::string scope = Core::Scope(request.app_id, item.group, item.label);
    auto it = std::find_if(scopes.begin(), scopes.end(),
                           [&scope](const auto& entry) { return entry.first == scope; });
    if (it == scopes.end()) {
      scopes.emplace_back(std::move(scope), std::vector<const Item*>{});
      it = scopes.end() - 1;
    }
    it->second.push_back(&item);
  }
  if (scopes.empty()) {
    done(absl::OkStatus());
    return;
  }
  if (!core.client) {
    done(absl::FailedPreconditionError(core.label + ": not initialised"));
    return;
  }
  std::vector<std::string> keys;
  std::vector<std::string> args;
  for (const auto& [scope, items] : scopes) {
    keys.push_back(Core::DataKey(scope));
    keys.push_back(Core::RevisionKey(scope));
    args.push_back(core.Channel(scope));
    args.push_back(std::to_string(items.size()));
    for (const Item* item : items) {
      args.push_back(item->key);
      args.push_back(EncodeItem(*item));
    }
  }
  core.client->EvalSha(
      core.save_script, std::move(keys), std::move(args),
      [core = core_, done = std::move(done)](const absl::StatusOr<redis::Reply>& reply) {
        done(core->ReplyStatus(reply));
      });
}

void RedisConfigStore::Delete(Selector selector, DoneCallback done) {
  Core& core = *core_;
  if (absl::Status s = PrepareSelector(selector); !s.ok()) {
    done(s);
    return;
  }
  const std::string scope = Core::Scope(selector.app_id, selector.group, selector.label);
  std::vector<std::string> args = {core.Channel(scope), selector.keys.empty() ? "*" : "="};
  args.insert(args.end(), selector.keys.begin(), selector.keys.end());
  core.client->EvalSha(
      core.delete_script, {Core::DataKey(scope), Core::RevisionKey(scope)}, std::move(args),
      [core = core_, done = std::move(done)](const absl::StatusOr<redis::Reply>& reply) {
        done(core->ReplyStatus(reply));
      });
}

absl::StatusOr<uint64_t> RedisConfigStore::Subscribe(Selector selector, ChangeHandler handler) {
  Core& core = *core_;
  if (!handler) {
    return absl::InvalidArgumentError(core.label + ": subscribe needs a handler");
  }
  if (absl::Status s = PrepareSelector(selector); !s.ok()) {
    return s;
  }
  auto sub = std::make_shared<Core::Subscription>();
  sub->scope = Core::Scope(selector.app_id, selector.group, selector.label);
  sub->selector = std::move(selector);
  sub->handler = std::move(handler);
  uint64_t id = 0;
  {
    absl::MutexLock lock(&core.mu);
    if (core.shut_down.load()) {
      return absl::FailedPreconditionError(core.label + ": the store is shut down");
    }
    id = core.next_subscription_id++;
    sub->id = id;
    core.subscriptions.emplace(id, sub);
  }
  // Registered before returning, so every change published from now on reaches it (queued until
  // its first read lands).
  core.dispatcher->Post([weak = std::weak_ptr<Core>(core_), sub] {
    if (auto locked = weak.lock()) {
      locked->StartSync(sub);
    }
  });
  return id;
}

void RedisConfigStore::Unsubscribe(uint64_t subscription_id) {
  Core& core = *core_;
  Core::SubscriptionPtr sub;
  {
    absl::MutexLock lock(&core.mu);
    auto it = core.subscriptions.find(subscription_id);
    if (it == core.subscriptions.end()) {
      return;
    }
    sub = std::move(it->second);
    core.subscriptions.erase(it);
  }
  Core::Deactivate(*sub);
}

absl::StatusOr<std::unique_ptr<ConfigStore>> RedisConfigStoreFactory::Create(
    const ComponentContext& context) const {
  auto settings = RedisConfigStoreSettings::Parse(context.metadata);
  if (!settings.ok()) {
    return absl::InvalidArgumentError(context.Label() + ": " +
                                      std::string(settings.status().message()));
  }
  if (context.dispatcher == nullptr) {
    return absl::FailedPreconditionError(context.Label() + ": needs the component dispatcher");
  }
  return std::make_unique<RedisConfigStore>(context, std::move(*settings));
}

}  // namespace ottava::components::config_store
