#include "components/pubsub/in_memory/in_memory_pubsub.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/assert.h"
#include "common/byte_codec.h"
#include "common/dispatcher.h"
#include "common/logging.h"
#include "common/stats.h"
#include "common/status.h"
#include "components/pubsub/pubsub_util.h"

namespace ottava::components::pubsub {
namespace {

// How often a group that keeps overflowing logs again (the counter has every drop).
constexpr uint64_t kDropLogEvery = 1000;

struct Queued {
  uint64_t sequence = 0;
  Message message;
};

struct Group {
  std::deque<Queued> queue;
  std::vector<uint64_t> members;  // subscriber ids, in subscription order
  size_t next = 0;                // where the round-robin resumes
  uint64_t dropped = 0;
};

struct Subscriber {
  std::string topic;
  std::string group;
  uint32_t max_in_flight = 1;
  std::shared_ptr<const MessageHandler> handler;
  std::map<uint64_t, Message> in_flight;  // by sequence, so redelivery keeps publish order
};

}  // namespace

struct InMemoryPubSub::Core : std::enable_shared_from_this<Core> {
  Core(std::string label_in,
       Dispatcher* dispatcher_in,
       InMemoryPubSubSettings settings_in,
       stats::Counter* dropped_in)
      : label(std::move(label_in)),
        dispatcher(dispatcher_in),
        settings(settings_in),
        dropped_counter(dropped_in) {}

  const std::string label;
  Dispatcher* const dispatcher;
  const InMemoryPubSubSettings settings;
  stats::Counter* const dropped_counter;  // may be null

  // topic -> group name -> group. Groups are never erased, so references stay valid.
  std::map<std::string, std::map<std::string, Group>> topics;
  std::unordered_map<uint64_t, Subscriber> subscribers;
  uint64_t last_sequence = 0;
  bool stopped = false;
  bool frozen = false;  // handed over to a new process (upgrade): no publish, no delivery

  void Publish(PublishRequest request, DoneGuard& done) {
    if (stopped) {
      done.Run(absl::UnavailableError(label + ": shut down"));
      return;
    }
    if (frozen) {
      done.Run(absl::UnavailableError(label + ": handed over to the new process (upgrade)"));
      return;
    }
    const uint64_t sequence = ++last_sequence;
    Message message;
    message.id = request.topic + "-" + std::to_string(sequence);
    message.topic = request.topic;
    message.data = std::move(request.data);
    message.metadata = std::move(request.metadata);
    if (!request.content_type.empty()) {
      message.metadata.try_emplace("contentType", request.content_type);
    }
    auto topic = topics.find(request.topic);
    if (topic != topics.end()) {
      for (auto& [name, group] : topic->second) {
        group.queue.push_back(Queued{sequence, message});
        while (group.queue.size() > settings.max_queued_per_group) {
          group.queue.pop_front();
          ++group.dropped;
          if (dropped_counter != nullptr) {
            dropped_counter->Inc();
          }
          if (group.dropped % kDropLogEvery == 1) {
            OTTAVA_LOG(Pubsub, warn,
                       "{}: topic '{}' consumer group '{}' has {} queued messages; dropped the "
                       "oldest ({} dropped so far)",
                       label, request.topic, name, settings.max_queued_per_group, group.dropped);
          }
        }
      }
    }
    done.Run(absl::OkStatus());
    if (topic != topics.end()) {
      for (auto& [name, group] : topic->second) {
        if (stopped) {
          return;  // a handler shut the component down
        }
        Pump(group);
      }
    }
  }

  void AddSubscriber(uint64_t id, Subscriber subscriber) {
    if (stopped) {
      return;
    }
    Group& group = topics[subscriber.topic][subscriber.group];
    group.members.push_back(id);
    subscribers.emplace(id, std::move(subscriber));
    Pump(group);
  }

  void RemoveSubscriber(uint64_t id) {
    auto it = subscribers.find(id);
    if (it == subscribers.end()) {
      return;
    }
    Subscriber subscriber = std::move(it->second);
    subscribers.erase(it);
    Group& group = topics[subscriber.topic][subscriber.group];
    std::erase(group.members, id);
    for (auto in_flight = subscriber.in_flight.rbegin(); in_flight != subscriber.in_flight.rend();
         ++in_flight) {
      group.queue.push_front(Queued{in_flight->first, std::move(in_flight->second)});
    }
    if (!subscriber.in_flight.empty()) {
      // Posted, not inline: this may run inside a handler of the same group.
      dispatcher->Post(
          [core = shared_from_this(), topic = subscriber.topic, name = subscriber.group] {
            if (!core->stopped) {
              core->Pump(core->topics[topic][name]);
            }
          });
    }
  }

  void Ack(uint64_t subscriber_id, uint64_t sequence) {
    auto it = subscribers.find(subscriber_id);
    if (it == subscribers.end() || it->second.in_flight.erase(sequence) == 0) {
      return;  // unsubscribed meanwhile (the message went back to the group), or a repeated ack
    }
    Pump(topics[it->second.topic][it->second.group]);
  }

  // Drops every subscriber and queued message. Groups themselves stay: a handler may be shutting
  // the component down from inside Pump(), which still holds a reference to its group.
  void Stop() {
    stopped = true;
    subscribers.clear();
    for (auto& [topic, groups] : topics) {
      for (auto& [name, group] : groups) {
        group.queue.clear();
        group.members.clear();
      }
    }
  }

  std::function<void()> MakeAck(uint64_t subscriber_id, uint64_t sequence) {
    return [weak = weak_from_this(), dispatcher = dispatcher, subscriber_id, sequence] {
      dispatcher->Post([weak, subscriber_id, sequence] {
        if (auto core = weak.lock()) {
          core->Ack(subscriber_id, sequence);
        }
      });
    };
  }

  // Hands queued messages to subscribers with room. Handlers may unsubscribe (or shut down) from
  // inside, so nothing but the group itself is held across a handler call.
  void Pump(Group& group) {
    while (!stopped && !frozen && !group.queue.empty() && !group.members.empty()) {
      const size_t n = group.members.size();
      uint64_t chosen_id = 0;
      Subscriber* chosen = nullptr;
      for (size_t i = 0; i < n; ++i) {
        const size_t index = (group.next + i) % n;
        auto it = subscribers.find(group.members[index]);
        OTTAVA_ASSERT(it != subscribers.end(), "group member without subscriber");
        if (it->second.in_flight.size() < it->second.max_in_flight) {
          chosen_id = it->first;
          chosen = &it->second;
          group.next = (index + 1) % n;
          break;
        }
      }
      if (chosen == nullptr) {
        return;  // everyone is at max_in_flight; an ack pumps again
      }
      Queued queued = std::move(group.queue.front());
      group.queue.pop_front();
      chosen->in_flight.emplace(queued.sequence, queued.message);
      std::shared_ptr<const MessageHandler> handler = chosen->handler;
      (*handler)(queued.message, MakeAck(chosen_id, queued.sequence));
    }
  }
};

namespace {

void WriteMessage(ByteWriter& out,
                  const std::string& topic,
                  const std::string& group,
                  uint64_t sequence,
                  const Message& message) {
  out.U8('Q');
  out.Bytes(topic);
  out.Bytes(group);
  out.U64(sequence);
  out.Bytes(message.id);
  out.Bytes(message.data);
  out.U32(static_cast<uint32_t>(message.metadata.size()));
  for (const auto& [key, value] : message.metadata) {
    out.Bytes(key);
    out.Bytes(value);
  }
}

}  // namespace

std::vector<std::string> InMemoryPubSub::FreezeAndExport(size_t chunk_bytes) {
  ChunkWriter out(chunk_bytes);
  RunOnLoopAndWait([&out](Core& core) {
    core.frozen = true;
    out.record().U8('N');
    out.record().U64(core.last_sequence);
    out.EndRecord();
    for (const auto& [topic, groups] : core.topics) {
      for (const auto& [name, group] : groups) {
        out.record().U8('G');
        out.record().Bytes(topic);
        out.record().Bytes(name);
        out.EndRecord();
        // What the group still owes: its members' un-acked messages and its queue, by sequence.
        std::map<uint64_t, const Message*> owed;
        for (uint64_t member : group.members) {
          auto it = core.subscribers.find(member);
          if (it != core.subscribers.end()) {
            for (const auto& [sequence, message] : it->second.in_flight) {
              owed.emplace(sequence, &message);
            }
          }
        }
        for (const Queued& queued : group.queue) {
          owed.emplace(queued.sequence, &queued.message);
        }
        for (const auto& [sequence, message] : owed) {
          WriteMessage(out.record(), topic, name, sequence, *message);
          out.EndRecord();
        }
      }
    }
  });
  return out.Finish();
}

absl::Status InMemoryPubSub::ImportState(uint32_t format, std::string_view chunk) {
  OTTAVA_RETURN_IF_ERROR(CheckStateFormat(label_, format));
  absl::Status status = absl::OkStatus();
  RunOnLoopAndWait([&](Core& core) {
    ByteReader in(chunk);
    std::set<Group*> touched;  // pumped once each, after the chunk
    while (!in.done()) {
      uint8_t tag = 0;
      in.U8(&tag);
      if (tag == 'N') {
        uint64_t last = 0;
        if (!in.U64(&last)) {
          status = TruncatedStateRecord(label_);
          break;
        }
        core.last_sequence = std::max(core.last_sequence, last);
      } else if (tag == 'G') {
        std::string topic;
        std::string group;
        if (!in.Bytes(&topic) || !in.Bytes(&group)) {
          status = TruncatedStateRecord(label_);
          break;
        }
        touched.insert(&core.topics[topic][group]);
      } else if (tag == 'Q') {
        std::string topic;
        std::string group;
        Queued queued;
        uint32_t entries = 0;
        bool ok = in.Bytes(&topic) && in.Bytes(&group) && in.U64(&queued.sequence) &&
                  in.Bytes(&queued.message.id) && in.Bytes(&queued.message.data) &&
                  in.U32(&entries);
        for (uint32_t i = 0; ok && i < entries; ++i) {
          std::string key;
          std::string value;
          ok = in.Bytes(&key) && in.Bytes(&value);
          if (ok) {
            queued.message.metadata.insert_or_assign(std::move(key), std::move(value));
          }
        }
        if (!ok) {
          status = TruncatedStateRecord(label_);
          break;
        }
        queued.message.topic = topic;
        Group& target = core.topics[topic][group];
        target.queue.push_back(std::move(queued));
        touched.insert(&target);
      } else {
        status = UnknownStateRecord(label_);
        break;
      }
    }
    for (Group* group : touched) {
      core.Pump(*group);
    }
  });
  return status;
}

absl::StatusOr<InMemoryPubSubSettings> InMemoryPubSubSettings::Parse(const Metadata& metadata) {
  MetadataReader reader(metadata);
  return Read(reader);
}

absl::StatusOr<InMemoryPubSubSettings> InMemoryPubSubSettings::Read(MetadataReader& reader) {
  InMemoryPubSubSettings settings;
  OTTAVA_RETURN_IF_ERROR(
      reader.Uint("maxQueuedMessages", 1, int64_t{1} << 32, &settings.max_queued_per_group));
  return settings;
}

InMemoryPubSub::InMemoryPubSub(const ComponentContext& context, InMemoryPubSubSettings settings)
    : label_(context.Label()), health_(context.health), dispatcher_(*context.dispatcher) {
  stats::Counter* dropped = nullptr;
  if (context.stats != nullptr) {
    dropped = &context.stats->CounterFor(
        "ottava_pubsub_dropped_messages_total",
        "Messages dropped because an in-memory consumer group queue was full",
        {{"component", label_}});
  }
  core_ = std::make_shared<Core>(label_, context.dispatcher, settings, dropped);
}

InMemoryPubSub::~InMemoryPubSub() {
  Shutdown();
}

absl::Status InMemoryPubSub::Init() {
  if (health_ != nullptr) {
    health_->Set(HealthState::kUp);
  }
  return absl::OkStatus();
}

void InMemoryPubSub::Shutdown() {
  if (shut_down_.exchange(true)) {
    return;
  }
  RunOnLoopAndWait([](Core& core) { core.Stop(); });
}

void InMemoryPubSub::RunOnLoopAndWait(std::function<void(Core&)> fn) {
  pubsub::RunOnLoopAndWait(dispatcher_, core_, std::move(fn));
}

void InMemoryPubSub::Publish(PublishRequest request, DoneCallback done) {
  if (request.topic.empty()) {
    done(absl::InvalidArgumentError(label_ + ": publish needs a topic"));
    return;
  }
  if (shut_down_.load()) {
    done(absl::UnavailableError(label_ + ": shut down"));
    return;
  }
  auto guard = std::make_shared<DoneGuard>(std::move(done), label_);
  dispatcher_.Post(
      [core = core_, request = std::move(request), guard = std::move(guard)]() mutable {
        core->Publish(std::move(request), *guard);
      });
}

absl::StatusOr<uint64_t> InMemoryPubSub::Subscribe(SubscribeRequest request,
                                                   MessageHandler handler) {
  if (absl::Status status = CheckSubscribe(label_, request, handler); !status.ok()) {
    return status;
  }
  if (shut_down_.load()) {
    return absl::FailedPreconditionError(label_ + ": shut down");
  }
  const uint64_t id = next_subscription_id_.fetch_add(1);
  Subscriber subscriber;
  subscriber.topic = std::move(request.topic);
  subscriber.group = std::move(request.consumer_group);
  subscriber.max_in_flight = request.max_in_flight;
  subscriber.handler = std::make_shared<const MessageHandler>(std::move(handler));
  dispatcher_.Post([core = core_, id, subscriber = std::move(subscriber)]() mutable {
    core->AddSubscriber(id, std::move(subscriber));
  });
  return id;
}

void InMemoryPubSub::Unsubscribe(uint64_t subscription_id) {
  // Even after Shutdown this waits on the loop, so a handler call still running there finishes
  // before we return.
  RunOnLoopAndWait([subscription_id](Core& core) { core.RemoveSubscriber(subscription_id); });
}

absl::StatusOr<std::unique_ptr<PubSub>> InMemoryPubSubFactory::Create(
    const ComponentContext& context) const {
  return CreatePubSub<InMemoryPubSub, InMemoryPubSubSettings>(context, "in-memory pub/sub");
}

}  // namespace ottava::components::pubsub
