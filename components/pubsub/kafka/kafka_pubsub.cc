#include "components/pubsub/kafka/kafka_pubsub.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/dispatcher.h"
#include "common/logging.h"
#include "common/stats.h"
#include "common/status.h"
#include "components/pubsub/kafka/offset_tracker.h"
#include "components/pubsub/pubsub_util.h"

namespace ottava::components::pubsub {
namespace {

using kafka::OffsetTracker;

// A librdkafka configuration being built; owns the handle until rd_kafka_new takes it.
class Conf {
 public:
  Conf() : conf_(rd_kafka_conf_new()) {}
  ~Conf() {
    if (conf_ != nullptr) {
      rd_kafka_conf_destroy(conf_);
    }
  }
  Conf(const Conf&) = delete;
  Conf& operator=(const Conf&) = delete;

  absl::Status Set(const std::string& name, const std::string& value) {
    char error[512];
    if (rd_kafka_conf_set(conf_, name.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError("librdkafka property " + name + "='" + value +
                                        "': " + error);
    }
    return absl::OkStatus();
  }
  rd_kafka_conf_t* get() { return conf_; }
  rd_kafka_conf_t* Release() { return std::exchange(conf_, nullptr); }

 private:
  rd_kafka_conf_t* conf_;
};

// librdkafka's own log lines (from its threads) go to our `kafka` logger.
void LogCallback(const rd_kafka_t* /*rk*/, int level, const char* facility, const char* message) {
  if (level <= 3) {
    OTTAVA_LOG(Kafka, error, "librdkafka {}: {}", facility, message);
  } else if (level == 4) {
    OTTAVA_LOG(Kafka, warn, "librdkafka {}: {}", facility, message);
  } else {
    OTTAVA_LOG(Kafka, debug, "librdkafka {}: {}", facility, message);
  }
}

absl::Status ApplyCommon(const KafkaPubSubSettings& settings, Conf& conf) {
  OTTAVA_RETURN_IF_ERROR(conf.Set("bootstrap.servers", settings.brokers));
  OTTAVA_RETURN_IF_ERROR(conf.Set("client.id", settings.client_id));
  // Come back quickly after a broker outage (the default backs off to 10 s).
  OTTAVA_RETURN_IF_ERROR(conf.Set("reconnect.backoff.max.ms", "1000"));
  if (settings.auth_type == "password") {
    OTTAVA_RETURN_IF_ERROR(
        conf.Set("security.protocol", settings.disable_tls ? "sasl_plaintext" : "sasl_ssl"));
    std::string mechanism = settings.sasl_mechanism;
    if (mechanism == "SHA-256" || mechanism == "SHA-512") {
      mechanism = "SCRAM-" + mechanism;
    }
    OTTAVA_RETURN_IF_ERROR(conf.Set("sasl.mechanisms", mechanism));
    OTTAVA_RETURN_IF_ERROR(conf.Set("sasl.username", settings.sasl_username));
    OTTAVA_RETURN_IF_ERROR(conf.Set("sasl.password", settings.sasl_password));
  } else if (settings.auth_type == "mtls") {
    OTTAVA_RETURN_IF_ERROR(conf.Set("security.protocol", "ssl"));
    OTTAVA_RETURN_IF_ERROR(conf.Set("ssl.certificate.pem", settings.client_cert));
    OTTAVA_RETURN_IF_ERROR(conf.Set("ssl.key.pem", settings.client_key));
  }
  if (!settings.ca_cert.empty()) {
    OTTAVA_RETURN_IF_ERROR(conf.Set("ssl.ca.pem", settings.ca_cert));
  }
  rd_kafka_conf_set_log_cb(conf.get(), LogCallback);
  return absl::OkStatus();
}

absl::Status ApplyPassthrough(const KafkaPubSubSettings& settings, Conf& conf) {
  for (const auto& [name, value] : settings.passthrough) {
    OTTAVA_RETURN_IF_ERROR(conf.Set(name, value));
  }
  return absl::OkStatus();
}

bool IsTimeout(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
         err == RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE || err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
}

// The Publish error for a librdkafka error (enqueue or delivery report).
absl::Status PublishError(const std::string& label,
                          const std::string& topic,
                          rd_kafka_resp_err_t err,
                          const KafkaPubSubSettings& settings) {
  const std::string prefix = label + ": publish to '" + topic + "': ";
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return absl::OkStatus();
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return absl::NotFoundError(prefix + "the cluster has no such topic");
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return absl::ResourceExhaustedError(prefix + "message too large for the broker (" +
                                          rd_kafka_err2str(err) + ")");
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return absl::PermissionDeniedError(prefix + rd_kafka_err2str(err));
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return absl::ResourceExhaustedError(prefix + "the producer queue is full");
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
      return absl::UnavailableError(prefix + "the component shut down before the broker acked");
    case RD_KAFKA_RESP_ERR__FATAL:
      return absl::UnavailableError(prefix +
                                    "the producer failed fatally and is being replaced; retry");
    default:
      break;
  }
  if (IsTimeout(err)) {
    return absl::UnavailableError(
        prefix + "not acknowledged by the cluster within publishTimeout (" +
        std::to_string(settings.publish_timeout.count()) + " ms); are the brokers reachable?");
  }
  return absl::UnavailableError(prefix + rd_kafka_err2str(err));
}

// A pipe librdkafka writes to when a queue becomes non-empty, watched by a file event.
struct WakeupPipe {
  int read_fd = -1;
  int write_fd = -1;

  absl::Status Open() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      return absl::InternalError("pipe2 failed");
    }
    read_fd = fds[0];
    write_fd = fds[1];
    return absl::OkStatus();
  }
  void Drain() const {
    char buffer[256];
    while (read(read_fd, buffer, sizeof(buffer)) > 0) {
    }
  }
  void Close() {
    for (int* fd : {&read_fd, &write_fd}) {
      if (*fd >= 0) {
        close(*fd);
        *fd = -1;
      }
    }
  }
};

// How many queue events one file-event callback serves before yielding the loop.
constexpr int kServeBatch = 500;

}  // namespace

struct KafkaPubSub::Core : std::enable_shared_from_this<KafkaPubSub::Core> {
  // One librdkafka producer and the pipe its main queue wakes the loop through. An idempotent
  // producer that hits a fatal error (librdkafka's `_FATAL`: it refuses every later message) is
  // replaced by a new one; publishers hold the one they enqueue on, so it outlives the swap.
  struct Producer {
    Core* core = nullptr;
    rd_kafka_t* rk = nullptr;
    rd_kafka_queue_t* queue = nullptr;
    WakeupPipe pipe;
    FileEventPtr event;                // loop thread; reset there before the last reference goes
    std::string fatal_reason;          // written on the loop thread before `retired`
    std::atomic<bool> retired{false};  // replaced after a fatal error

    Producer() = default;
    Producer(const Producer&) = delete;
    Producer& operator=(const Producer&) = delete;
    // Fails what is still queued or in flight (their delivery reports run here), then destroys.
    ~Producer() {
      if (rk != nullptr) {
        rd_kafka_queue_io_event_enable(queue, -1, nullptr, 0);
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk, 0);  // fails what was purged
        for (int i = 0; i < 100 && rd_kafka_outq_len(rk) > 0; ++i) {
          rd_kafka_poll(rk, 10);
        }
        rd_kafka_queue_destroy(queue);
        rd_kafka_destroy(rk);
      }
      pipe.Close();
    }
  };
  using ProducerPtr = std::shared_ptr<Producer>;

  // One publish waiting for its delivery report (the message's opaque).
  // It owns the message's value: librdkafka references it (no RD_KAFKA_MSG_F_COPY) until the
  // delivery report, which saves a copy of every envelope.
  struct Pending {
    DoneCallback done;
    std::string topic;
    std::string value;
  };

  struct Queued {
    Message message;
    int64_t offset = 0;
  };

  struct Partition {
    uint64_t epoch = 0;
    OffsetTracker tracker;
    std::deque<Queued> queued;
    int64_t queued_bytes = 0;  // of the queued messages' data
    size_t in_flight = 0;
    bool paused = false;
    int64_t stored = -1;
  };

  struct Subscription {
    uint64_t id = 0;
    std::string topic;
    std::string group;
    uint32_t max_in_flight = 1;
    std::shared_ptr<const MessageHandler> handler;
    Core* core = nullptr;
    rd_kafka_t* rk = nullptr;
    rd_kafka_queue_t* queue = nullptr;
    WakeupPipe pipe;
    FileEventPtr event;
    std::map<int32_t, Partition> partitions;
    size_t in_flight = 0;
    int32_t next_partition = 0;  // round-robin start for hand-out
    bool closing = false;
    bool committing = false;           // closing: the final commit of acked offsets is not done yet
    bool commit_after_rejoin = false;  // closing: the group was rebalancing; commit once assigned
    bool left = false;                 // closing: rd_kafka_consumer_close_queue was called
    bool closed = false;
    std::chrono::steady_clock::time_point commit_deadline;
    bool cooperative = true;
    bool ever_assigned = false;  // a rebalance assigned partitions (even none) at least once
  };
  using SubscriptionPtr = std::shared_ptr<Subscription>;

  Core(std::string label_in,
       KafkaPubSubSettings settings_in,
       Dispatcher* dispatcher_in,
       HealthIndicator* health_in,
       stats::Store* stats)
      : label(std::move(label_in)),
        settings(std::move(settings_in)),
        dispatcher(dispatcher_in),
        health(health_in) {
    if (stats != nullptr) {
      replaced_counter =
          &stats->CounterFor("ottava_pubsub_kafka_producers_replaced_total",
                             "Kafka producers replaced after a fatal error (librdkafka's _FATAL)",
                             {{"component", label}});
    }
  }

  const std::string label;
  const KafkaPubSubSettings settings;
  Dispatcher* const dispatcher;
  HealthIndicator* const health;

  mutable absl::Mutex producer_mutex;
  ProducerPtr producer ABSL_GUARDED_BY(producer_mutex);  // the one publishers use now

  ProducerPtr CurrentProducer() const {
    absl::MutexLock lock(&producer_mutex);
    return producer;
  }
  ProducerPtr SwapProducer(ProducerPtr next) {
    absl::MutexLock lock(&producer_mutex);
    std::swap(producer, next);
    return next;
  }

  std::atomic<uint64_t> producers_replaced{0};
  stats::Counter* replaced_counter = nullptr;
  std::unordered_map<uint64_t, SubscriptionPtr> subscriptions;  // loop thread
  uint64_t next_epoch = 1;
  std::atomic<bool> cluster_up{false};

  // --- health ------------------------------------------------------------------------------

  void SetHealth(bool up, const std::string& reason) {
    const bool was = cluster_up.exchange(up);
    if (health != nullptr && (was != up || health->state() == HealthState::kInit)) {
      health->Set(up ? HealthState::kUp : HealthState::kDown, reason);
    }
    if (was != up) {
      OTTAVA_LOG(Kafka, info, "{}: cluster {}{}", label, up ? "reachable" : "unreachable",
                 reason.empty() ? "" : " (" + reason + ")");
    }
  }

  // librdkafka statistics (producer, which keeps a connection to every broker): reachable while
  // any broker connection is UP.
  void OnStats(const char* json, size_t size) {
    nlohmann::json stats = nlohmann::json::parse(json, json + size, nullptr, false);
    if (stats.is_discarded() || !stats.contains("brokers")) {
      return;
    }
    bool up = false;
    for (const auto& [name, broker] : stats["brokers"].items()) {
      if (broker.value("state", "") == "UP") {
        up = true;
        break;
      }
    }
    SetHealth(up, up ? "" : "no broker connection is up");
  }

  // --- producer ----------------------------------------------------------------------------

  // A producer with its wake-up pipe (any thread); Watch() attaches it to the loop.
  absl::StatusOr<ProducerPtr> NewProducer() {
    auto result = std::make_shared<Producer>();
    result->core = this;
    Conf conf;
    OTTAVA_RETURN_IF_ERROR(ApplyCommon(settings, conf));
    OTTAVA_RETURN_IF_ERROR(conf.Set("enable.idempotence", "true"));
    OTTAVA_RETURN_IF_ERROR(conf.Set("acks", "all"));
    OTTAVA_RETURN_IF_ERROR(
        conf.Set("message.timeout.ms", std::to_string(settings.publish_timeout.count())));
    // An unknown topic fails well before the publish times out.
    OTTAVA_RETURN_IF_ERROR(conf.Set("topic.metadata.propagation.max.ms",
                                    std::to_string(settings.publish_timeout.count() / 2)));
    OTTAVA_RETURN_IF_ERROR(
        conf.Set("message.max.bytes", std::to_string(settings.max_message_bytes + 4096)));
    OTTAVA_RETURN_IF_ERROR(conf.Set("statistics.interval.ms", "1000"));
    // Connections to every broker, kept up: the health indicator reads their states.
    OTTAVA_RETURN_IF_ERROR(conf.Set("enable.sparse.connections", "false"));
    OTTAVA_RETURN_IF_ERROR(ApplyPassthrough(settings, conf));
    rd_kafka_conf_set_opaque(conf.get(), result.get());
    rd_kafka_conf_set_dr_msg_cb(conf.get(),
                                [](rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
                                  auto* owner = static_cast<Producer*>(opaque);
                                  owner->core->OnDeliveryReport(*owner, message);
                                });
    rd_kafka_conf_set_error_cb(
        conf.get(), [](rd_kafka_t*, int err, const char* reason, void* opaque) {
          auto* owner = static_cast<Producer*>(opaque);
          owner->core->OnError(*owner, static_cast<rd_kafka_resp_err_t>(err), reason);
        });
    rd_kafka_conf_set_stats_cb(conf.get(),
                               [](rd_kafka_t*, char* json, size_t size, void* opaque) -> int {
                                 auto* owner = static_cast<Producer*>(opaque);
                                 if (!owner->retired.load()) {
                                   owner->core->OnStats(json, size);
                                 }
                                 return 0;
                               });
    char error[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof(error));
    if (rk == nullptr) {
      return absl::InvalidArgumentError(label + ": creating the producer: " + error);
    }
    conf.Release();
    result->rk = rk;
    result->queue = rd_kafka_queue_get_main(rk);
    OTTAVA_RETURN_IF_ERROR(result->pipe.Open());
    rd_kafka_queue_io_event_enable(result->queue, result->pipe.write_fd, "1", 1);
    return result;
  }

  // Serves `owner`'s queue from the loop. Loop thread.
  void Watch(Producer& owner) {
    Producer* raw = &owner;
    owner.event = dispatcher->CreateFileEvent(
        owner.pipe.read_fd, [this, raw](uint32_t) { ServeProducer(*raw); }, FileTriggerType::kLevel,
        FileReadyType::kRead);
    owner.event->Activate(FileReadyType::kRead);
  }

  void OnDeliveryReport(const Producer& owner, const rd_kafka_message_t* message) {
    std::unique_ptr<Pending> pending(static_cast<Pending*>(message->_private));
    if (pending == nullptr) {
      return;
    }
    absl::Status status = PublishError(label, pending->topic, message->err, settings);
    if (!status.ok() && owner.retired.load()) {
      status = absl::UnavailableError(label + ": publish to '" + pending->topic +
                                      "': the producer failed fatally (" + owner.fatal_reason +
                                      ") and was replaced before the cluster acknowledged; retry");
    }
    pending->done(std::move(status));
  }

  void OnError(Producer& owner, rd_kafka_resp_err_t err, const char* reason) {
    if (owner.retired.load()) {
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char detail[512] = "";
      const rd_kafka_resp_err_t cause = rd_kafka_fatal_error(owner.rk, detail, sizeof(detail));
      std::string why = std::string(rd_kafka_err2name(cause)) + ": " + detail;
      OTTAVA_LOG(Kafka, error, "{}: the producer failed fatally ({}); replacing it", label, why);
      std::weak_ptr<Core> weak = weak_from_this();
      dispatcher->Post([weak, failed = owner.rk, why = std::move(why)] {
        if (auto core = weak.lock()) {
          core->ReplaceProducer(failed, why);
        }
      });
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      SetHealth(false, reason);
      return;
    }
    OTTAVA_LOG(Kafka, warn, "{}: {} ({})", label, reason, rd_kafka_err2name(err));
  }

  // Serves a producer's queue (delivery reports, errors, statistics). Loop thread.
  void ServeProducer(Producer& owner) {
    owner.pipe.Drain();
    int served = 0;
    while (served < kServeBatch && rd_kafka_poll(owner.rk, 0) > 0) {
      ++served;
    }
    if (served == kServeBatch && owner.event != nullptr) {
      owner.event->Activate(FileReadyType::kRead);
    }
  }

  // Puts a new producer in the place of `failed` after its fatal error. What `failed` still held
  // fails with UNAVAILABLE (at-least-once: the app retries; a message the cluster did store may
  // then arrive twice). Loop thread; retried every second while a new producer cannot be made.
  void ReplaceProducer(rd_kafka_t* failed, const std::string& why) {
    ProducerPtr current = CurrentProducer();
    if (current == nullptr || current->rk != failed) {
      return;  // shut down, or replaced already
    }
    absl::StatusOr<ProducerPtr> fresh = NewProducer();
    if (!fresh.ok()) {
      OTTAVA_LOG(Kafka, error, "{}: replacing the failed producer: {}; retrying in 1 s", label,
                 fresh.status().ToString());
      std::weak_ptr<Core> weak = weak_from_this();
      dispatcher->PostDelayed(std::chrono::seconds(1), [weak, failed, why] {
        if (auto core = weak.lock()) {
          core->ReplaceProducer(failed, why);
        }
      });
      return;
    }
    Watch(**fresh);
    ProducerPtr old = SwapProducer(*fresh);
    old->fatal_reason = why;
    old->retired.store(true);
    old->event.reset();
    ++producers_replaced;
    if (replaced_counter != nullptr) {
      replaced_counter->Inc();
    }
    OTTAVA_LOG(Kafka, warn, "{}: producer replaced after a fatal error ({})", label, why);
    // `old` goes with its last holder: now, or when a publisher enqueuing on it returns.
  }

  // --- consumers ---------------------------------------------------------------------------

  absl::StatusOr<rd_kafka_t*> NewConsumer(Subscription& subscription) {
    Conf conf;
    OTTAVA_RETURN_IF_ERROR(ApplyCommon(settings, conf));
    OTTAVA_RETURN_IF_ERROR(conf.Set("group.id", subscription.group));
    OTTAVA_RETURN_IF_ERROR(conf.Set("partition.assignment.strategy", "cooperative-sticky"));
    OTTAVA_RETURN_IF_ERROR(conf.Set("enable.auto.commit", "true"));
    OTTAVA_RETURN_IF_ERROR(conf.Set("enable.auto.offset.store", "false"));
    OTTAVA_RETURN_IF_ERROR(
        conf.Set("auto.offset.reset", settings.initial_offset == "newest" ? "latest" : "earliest"));
    OTTAVA_RETURN_IF_ERROR(
        conf.Set("session.timeout.ms", std::to_string(settings.session_timeout.count())));
    OTTAVA_RETURN_IF_ERROR(
        conf.Set("heartbeat.interval.ms", std::to_string(settings.heartbeat_interval.count())));
    OTTAVA_RETURN_IF_ERROR(conf.Set("allow.auto.create.topics", "true"));
    // A paused partition resumes only with the broker's next fetch response; librdkafka's 500 ms
    // long poll made every resume of a busy partition wait that long (see queueDepth).
    OTTAVA_RETURN_IF_ERROR(conf.Set("fetch.wait.max.ms", "100"));
    OTTAVA_RETURN_IF_ERROR(ApplyPassthrough(settings, conf));
    rd_kafka_conf_set_opaque(conf.get(), &subscription);
    rd_kafka_conf_set_rebalance_cb(conf.get(),
                                   [](rd_kafka_t*, rd_kafka_resp_err_t err,
                                      rd_kafka_topic_partition_list_t* partitions, void* opaque) {
                                     auto* sub = static_cast<Subscription*>(opaque);
                                     sub->core->OnRebalance(*sub, err, partitions);
                                   });
    rd_kafka_conf_set_error_cb(
        conf.get(), [](rd_kafka_t*, int err, const char* reason, void* opaque) {
          auto* sub = static_cast<Subscription*>(opaque);
          OTTAVA_LOG(Kafka, debug, "{}: consumer of '{}': {} ({})", sub->core->label, sub->topic,
                     reason, rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
        });
    rd_kafka_conf_set_offset_commit_cb(
        conf.get(), [](rd_kafka_t*, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* /*offsets*/, void* opaque) {
          if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            auto* sub = static_cast<Subscription*>(opaque);
            OTTAVA_LOG(Kafka, warn, "{}: committing offsets of '{}' failed: {} (retried)",
                       sub->core->label, sub->topic, rd_kafka_err2str(err));
          }
        });
    char error[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), error, sizeof(error));
    if (rk == nullptr) {
      return absl::InvalidArgumentError(label + ": creating the consumer: " + error);
    }
    conf.Release();
    return rk;
  }

  void OnRebalance(Subscription& sub,
                   rd_kafka_resp_err_t err,
                   rd_kafka_topic_partition_list_t* partitions) {
    sub.cooperative = std::string_view(rd_kafka_rebalance_protocol(sub.rk)) == "COOPERATIVE";
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      sub.ever_assigned = true;
      // A rebalance has completed (librdkafka serves every one, with no partitions too): a closing
      // member's commit now carries the new generation.
      const bool commit_now = sub.committing && sub.commit_after_rejoin;
      for (int i = 0; i < partitions->cnt; ++i) {
        Partition& partition = sub.partitions[partitions->elems[i].partition];
        partition = Partition{};
        partition.epoch = next_epoch++;
      }
      rd_kafka_error_t* error = nullptr;
      if (sub.cooperative) {
        error = rd_kafka_incremental_assign(sub.rk, partitions);
      } else {
        rd_kafka_assign(sub.rk, partitions);
      }
      if (error != nullptr) {
        OTTAVA_LOG(Kafka, error, "{}: assigning partitions of '{}': {}", label, sub.topic,
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
      }
      OTTAVA_LOG(Kafka, debug, "{}: '{}' assigned {} partition(s)", label, sub.topic,
                 partitions->cnt);
      if (commit_now) {
        sub.commit_after_rejoin = false;
        CommitBeforeLeaving(sub);
      }
      return;
    }
    // Revoked or lost: the acked watermark of each partition is already stored, and librdkafka
    // commits it on unassign (unless the partitions were lost). What is queued or in flight is
    // forgotten; the next owner reads it again.
    const bool lost = rd_kafka_assignment_lost(sub.rk) != 0;
    for (int i = 0; i < partitions->cnt; ++i) {
      auto it = sub.partitions.find(partitions->elems[i].partition);
      if (it == sub.partitions.end()) {
        continue;
      }
      sub.in_flight -= it->second.in_flight;
      sub.partitions.erase(it);
    }
    OTTAVA_LOG(Kafka, debug, "{}: '{}' {} {} partition(s)", label, sub.topic,
               lost ? "lost" : "revoked", partitions->cnt);
    if (sub.cooperative) {
      if (rd_kafka_error_t* error = rd_kafka_incremental_unassign(sub.rk, partitions)) {
        rd_kafka_error_destroy(error);
      }
    } else {
      rd_kafka_assign(sub.rk, nullptr);
    }
    Pump(sub);
  }

  // Serves one consumer's queue (messages, rebalances, errors). Loop thread.
  void ServeConsumer(const SubscriptionPtr& sub) {
    sub->pipe.Drain();
    int served = 0;
    while (served < kServeBatch && !sub->closed) {
      rd_kafka_message_t* message = rd_kafka_consumer_poll(sub->rk, 0);
      if (message == nullptr) {
        break;
      }
      ++served;
      OnMessage(*sub, message);
      rd_kafka_message_destroy(message);
    }
    if (sub->closing) {
      CheckClosed(sub);
      return;
    }
    if (served == kServeBatch && sub->event != nullptr) {
      sub->event->Activate(FileReadyType::kRead);
    }
    Pump(*sub);
  }

  void OnMessage(Subscription& sub, const rd_kafka_message_t* message) {
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        OTTAVA_LOG(Kafka, debug, "{}: consumer of '{}': {}", label, sub.topic,
                   rd_kafka_message_errstr(message));
      }
      return;
    }
    if (sub.closing) {
      return;
    }
    auto it = sub.partitions.find(message->partition);
    if (it == sub.partitions.end()) {
      return;  // not (or no longer) ours
    }
    Partition& partition = it->second;
    if (!partition.tracker.Take(message->offset)) {
      return;  // already taken (a re-fetch after a pause)
    }
    Queued queued;
    queued.offset = message->offset;
    const char* topic = rd_kafka_topic_name(message->rkt);
    queued.message.topic = topic;
    queued.message.id = queued.message.topic + "/" + std::to_string(message->partition) + "/" +
                        std::to_string(message->offset);
    if (message->payload != nullptr) {
      queued.message.data.assign(static_cast<const char*>(message->payload), message->len);
    }
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0;
           rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        queued.message.metadata[name] =
            value == nullptr ? std::string() : std::string(static_cast<const char*>(value), size);
      }
    }
    if (message->key != nullptr && !queued.message.metadata.contains("partitionKey")) {
      queued.message.metadata["partitionKey"] =
          std::string(static_cast<const char*>(message->key), message->key_len);
    }
    partition.queued_bytes += queued.message.data.size();
    partition.queued.push_back(std::move(queued));
    if (!partition.paused && (partition.queued.size() >= settings.queue_depth ||
                              partition.queued_bytes >= settings.queue_bytes)) {
      SetPaused(sub, message->partition, partition, true);
    }
  }

  void SetPaused(Subscription& sub, int32_t number, Partition& partition, bool paused) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, sub.topic.c_str(), number);
    rd_kafka_resp_err_t err =
        paused ? rd_kafka_pause_partitions(sub.rk, list) : rd_kafka_resume_partitions(sub.rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      partition.paused = paused;
    }
  }

  // Hands queued messages out while the subscription is under max_in_flight, round-robin over
  // partitions. A handler may unsubscribe (inline, on this thread): checked after each call.
  void Pump(Subscription& sub) {
    SubscriptionPtr keep = FindSubscription(sub.id);
    if (keep == nullptr) {
      return;
    }
    while (!sub.closing && sub.in_flight < sub.max_in_flight) {
      Partition* chosen = nullptr;
      int32_t chosen_number = 0;
      auto start = sub.partitions.lower_bound(sub.next_partition);
      for (size_t step = 0; step < sub.partitions.size() && chosen == nullptr; ++step) {
        if (start == sub.partitions.end()) {
          start = sub.partitions.begin();
        }
        if (!start->second.queued.empty()) {
          chosen = &start->second;
          chosen_number = start->first;
        }
        ++start;
      }
      if (chosen == nullptr) {
        return;
      }
      sub.next_partition = chosen_number + 1;
      Queued queued = std::move(chosen->queued.front());
      chosen->queued.pop_front();
      chosen->queued_bytes -= queued.message.data.size();
      ++chosen->in_flight;
      ++sub.in_flight;
      if (chosen->paused && chosen->queued.size() <= settings.queue_depth / 2 &&
          chosen->queued_bytes <= settings.queue_bytes / 2) {
        SetPaused(sub, chosen_number, *chosen, false);
      }
      std::shared_ptr<const MessageHandler> handler = sub.handler;
      (*handler)(queued.message, MakeAck(sub.id, chosen_number, chosen->epoch, queued.offset));
    }
  }

  std::function<void()> MakeAck(uint64_t id, int32_t partition, uint64_t epoch, int64_t offset) {
    std::weak_ptr<Core> weak = weak_from_this();
    Dispatcher* loop = dispatcher;
    return [weak, loop, id, partition, epoch, offset] {
      loop->Post([weak, id, partition, epoch, offset] {
        if (auto core = weak.lock()) {
          core->OnAck(id, partition, epoch, offset);
        }
      });
    };
  }

  void OnAck(uint64_t id, int32_t number, uint64_t epoch, int64_t offset) {
    SubscriptionPtr sub = FindSubscription(id);
    if (sub == nullptr) {
      return;
    }
    auto it = sub->partitions.find(number);
    if (it == sub->partitions.end() || it->second.epoch != epoch) {
      return;  // revoked since: the new owner re-reads it
    }
    Partition& partition = it->second;
    if (!partition.tracker.Ack(offset)) {
      return;
    }
    --partition.in_flight;
    --sub->in_flight;
    std::optional<int64_t> committable = partition.tracker.Committable();
    if (committable && *committable > partition.stored) {
      rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(list, sub->topic.c_str(), number)->offset = *committable;
      rd_kafka_resp_err_t err = rd_kafka_offsets_store(sub->rk, list);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        partition.stored = *committable;
      }
      rd_kafka_topic_partition_list_destroy(list);
    }
    if (!sub->closing) {
      Pump(*sub);
    }
  }

  SubscriptionPtr FindSubscription(uint64_t id) const {
    auto it = subscriptions.find(id);
    return it == subscriptions.end() ? nullptr : it->second;
  }

  // Starts watching a new subscription's queue. Loop thread.
  void AddSubscription(SubscriptionPtr sub) {
    std::weak_ptr<Subscription> weak = sub;
    sub->event = dispatcher->CreateFileEvent(
        sub->pipe.read_fd,
        [self = this, weak](uint32_t) {
          if (auto s = weak.lock()) {
            self->ServeConsumer(s);
          }
        },
        FileTriggerType::kLevel, FileReadyType::kRead);
    // Anything queued before the pipe was attached.
    sub->event->Activate(FileReadyType::kRead);
    subscriptions.emplace(sub->id, std::move(sub));
  }

  // Stops deliveries and starts closing the consumer: first its acked offsets are committed, then
  // it leaves the group (librdkafka revokes through OnRebalance and leaves), all served on this
  // loop. Loop thread.
  //
  // Why the commit comes first: the subscriptions of one app share a consumer group, and once one
  // member has left, the group rebalances and refuses the commits of the others
  // (REBALANCE_IN_PROGRESS) until they have rejoined. The commit librdkafka makes while a member
  // closes is not retried, so its acked offsets were lost and replayed after a restart. A closing
  // member therefore commits while it is still a member, retrying across a rebalance (it rejoins
  // meanwhile), and the closing members of one group leave only once all of them have committed.
  void BeginClose(const SubscriptionPtr& sub) {
    if (sub->closing) {
      return;
    }
    sub->closing = true;
    sub->committing = true;
    sub->commit_deadline = std::chrono::steady_clock::now() +
                           std::min(settings.session_timeout, std::chrono::milliseconds(8000));
    CommitBeforeLeaving(*sub);
    // Closing completes on a later event, or silently: check periodically too.
    ScheduleCloseCheck(sub->id);
  }

  // Commits the stored (acked) offsets; the result is served with the consumer's queue.
  void CommitBeforeLeaving(Subscription& sub) {
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(
        sub.rk, nullptr, sub.queue,
        [](rd_kafka_t*, rd_kafka_resp_err_t result, rd_kafka_topic_partition_list_t* offsets,
           void* opaque) {
          auto* self = static_cast<Subscription*>(opaque);
          self->core->OnCommitBeforeLeaving(*self, CommitError(result, offsets));
        },
        &sub);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      OnCommitBeforeLeaving(sub, err);
    }
  }

  // The request's error, else the first partition's.
  static rd_kafka_resp_err_t CommitError(rd_kafka_resp_err_t err,
                                         const rd_kafka_topic_partition_list_t* offsets) {
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && offsets != nullptr && i < offsets->cnt;
         ++i) {
      err = offsets->elems[i].err;
    }
    return err;
  }

  // A commit refused because the group is rebalancing is sent again once this member has rejoined
  // (its next assignment): sent earlier, it would queue behind the JoinGroup on the coordinator
  // connection, come back with the old generation, and librdkafka 2.0.2 then treats the whole
  // assignment as lost. Bounded by commit_deadline.
  void OnCommitBeforeLeaving(Subscription& sub, rd_kafka_resp_err_t err) {
    const bool done = err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET;
    if (!sub.committing || sub.left) {
      return;
    }
    if (!done && std::chrono::steady_clock::now() < sub.commit_deadline) {
      OTTAVA_LOG(Kafka, debug,
                 "{}: committing acked offsets of '{}' before leaving: {}; again after the "
                 "rebalance",
                 label, sub.topic, rd_kafka_err2str(err));
      sub.commit_after_rejoin = true;
      std::weak_ptr<Core> weak = weak_from_this();
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          sub.commit_deadline - std::chrono::steady_clock::now());
      dispatcher->PostDelayed(left, [weak, id = sub.id] {
        if (auto core = weak.lock()) {
          if (SubscriptionPtr again = core->FindSubscription(id); again && again->committing) {
            core->OnCommitBeforeLeaving(*again, RD_KAFKA_RESP_ERR__TIMED_OUT);
          }
        }
      });
      return;
    }
    if (!done) {
      OTTAVA_LOG(Kafka, warn,
                 "{}: committing acked offsets of '{}' before leaving failed: {}; they will be "
                 "redelivered",
                 label, sub.topic, rd_kafka_err2str(err));
    }
    sub.committing = false;
    sub.commit_after_rejoin = false;
    LeaveWhenCommitted(sub.group);
  }

  // Closes the closing members of `group` once none of them still has a commit to make.
  void LeaveWhenCommitted(const std::string& group) {
    std::vector<SubscriptionPtr> leaving;
    for (const auto& [id, sub] : subscriptions) {
      if (sub->group != group || !sub->closing) {
        continue;
      }
      if (sub->committing) {
        return;
      }
      if (!sub->left) {
        leaving.push_back(sub);
      }
    }
    for (const SubscriptionPtr& sub : leaving) {
      sub->left = true;
      if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(sub->rk, sub->queue)) {
        OTTAVA_LOG(Kafka, warn, "{}: closing the consumer of '{}': {}", label, sub->topic,
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
      }
    }
  }

  void ScheduleCloseCheck(uint64_t id) {
    std::weak_ptr<Core> weak = weak_from_this();
    dispatcher->PostDelayed(std::chrono::milliseconds(20), [weak, id] {
      if (auto core = weak.lock()) {
        if (SubscriptionPtr sub = core->FindSubscription(id)) {
          core->ServeConsumer(sub);
          if (!sub->closed) {
            core->ScheduleCloseCheck(id);
          }
        }
      }
    });
  }

  void CheckClosed(const SubscriptionPtr& sub) {
    if (sub->closed || !sub->left || !rd_kafka_consumer_closed(sub->rk)) {
      return;
    }
    sub->closed = true;
    OTTAVA_LOG(Kafka, debug, "{}: consumer of '{}' closed", label, sub->topic);
    // Destroy outside the poll loop that called us.
    std::weak_ptr<Core> weak = weak_from_this();
    dispatcher->Post([weak, sub] {
      if (auto core = weak.lock()) {
        core->Destroy(*sub);
        core->subscriptions.erase(sub->id);
      }
    });
  }

  // Releases a closed (or abandoned) consumer. Loop thread, or main after the loop stopped.
  static void Destroy(Subscription& sub) {
    sub.event.reset();
    if (sub.queue != nullptr) {
      rd_kafka_queue_io_event_enable(sub.queue, -1, nullptr, 0);
      rd_kafka_queue_destroy(sub.queue);
      sub.queue = nullptr;
    }
    if (sub.rk != nullptr) {
      // librdkafka before 2.3.0 asserts (aborting the process) when a cooperative-sticky consumer
      // is destroyed before its first assignment (confluentinc/librdkafka#4312, Debian 12 ships
      // 2.0.2). Such a consumer owns no partitions and has committed nothing: its handle is left
      // behind instead, which costs its threads until the process exits.
      const bool assignor_bug = rd_kafka_version() < 0x020300ff && !sub.ever_assigned;
      if (assignor_bug) {
        OTTAVA_LOG(Kafka, info,
                   "consumer of '{}' closed before its first assignment; its handle is kept "
                   "(librdkafka < 2.3.0 would abort destroying it)",
                   sub.topic);
      } else {
        rd_kafka_destroy_flags(sub.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
      }
      sub.rk = nullptr;
    }
    sub.pipe.Close();
  }
};

// ---------------------------------------------------------------------------------------------

absl::StatusOr<KafkaPubSubSettings> KafkaPubSubSettings::Parse(const Metadata& metadata) {
  MetadataReader reader(metadata);
  return Read(reader);
}

absl::StatusOr<KafkaPubSubSettings> KafkaPubSubSettings::Read(MetadataReader& reader) {
  KafkaPubSubSettings settings;
  OTTAVA_RETURN_IF_ERROR(reader.String("brokers", &settings.brokers));
  if (settings.brokers.empty()) {
    return absl::InvalidArgumentError("metadata brokers: required (\"host:port,host:port\")");
  }
  OTTAVA_RETURN_IF_ERROR(reader.String("consumerGroup", &settings.consumer_group));
  OTTAVA_RETURN_IF_ERROR(reader.String("clientID", &settings.client_id));
  OTTAVA_RETURN_IF_ERROR(
      reader.OneOf("initialOffset", {"oldest", "newest"}, &settings.initial_offset));
  OTTAVA_RETURN_IF_ERROR(reader.Int("maxMessageBytes", 1, 1000000000, &settings.max_message_bytes));
  OTTAVA_RETURN_IF_ERROR(
      reader.OneOf("authType", {"none", "password", "mtls"}, &settings.auth_type));
  OTTAVA_RETURN_IF_ERROR(reader.String("saslUsername", &settings.sasl_username));
  OTTAVA_RETURN_IF_ERROR(reader.String("saslPassword", &settings.sasl_password));
  OTTAVA_RETURN_IF_ERROR(reader.OneOf(
      "saslMechanism", {"PLAIN", "SHA-256", "SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-512"},
      &settings.sasl_mechanism));
  OTTAVA_RETURN_IF_ERROR(reader.Bool("disableTls", &settings.disable_tls));
  OTTAVA_RETURN_IF_ERROR(reader.String("caCert", &settings.ca_cert));
  OTTAVA_RETURN_IF_ERROR(reader.String("clientCert", &settings.client_cert));
  OTTAVA_RETURN_IF_ERROR(reader.String("clientKey", &settings.client_key));
  if (settings.auth_type == "password" && settings.sasl_username.empty()) {
    return absl::InvalidArgumentError("metadata saslUsername: required with authType password");
  }
  if (settings.auth_type == "mtls" &&
      (settings.client_cert.empty() || settings.client_key.empty())) {
    return absl::InvalidArgumentError(
        "metadata clientCert, clientKey: both required with authType mtls");
  }
  OTTAVA_RETURN_IF_ERROR(reader.Duration("sessionTimeout", &settings.session_timeout, false));
  OTTAVA_RETURN_IF_ERROR(reader.Duration("heartbeatInterval", &settings.heartbeat_interval, false));
  OTTAVA_RETURN_IF_ERROR(reader.Duration("publishTimeout", &settings.publish_timeout, false));
  OTTAVA_RETURN_IF_ERROR(reader.Duration("initTimeout", &settings.init_timeout, false));
  OTTAVA_RETURN_IF_ERROR(reader.Uint("queueDepth", 1, 100000, &settings.queue_depth));
  OTTAVA_RETURN_IF_ERROR(
      reader.Int("queueBytes", 1 << 16, int64_t{1} << 32, &settings.queue_bytes));
  settings.passthrough = reader.Prefixed("kafka.");
  // Read by the runtime (the subscription's max_in_flight).
  reader.Accept({"concurrency"});
  return settings;
}

KafkaPubSub::KafkaPubSub(const ComponentContext& context, KafkaPubSubSettings settings)
    : label_(context.Label()),
      app_id_(context.app_id),
      settings_(std::move(settings)),
      health_(context.health),
      dispatcher_(*context.dispatcher) {
  core_ = std::make_shared<Core>(label_, settings_, context.dispatcher, health_, context.stats);
}

KafkaPubSub::~KafkaPubSub() {
  Shutdown();
}

absl::Status KafkaPubSub::Init() {
  absl::StatusOr<Core::ProducerPtr> producer = core_->NewProducer();
  if (!producer.ok()) {
    return producer.status();
  }
  dispatcher_.RunAndWait([core = core_, first = *producer] {
    core->Watch(*first);
    core->SwapProducer(first);
  });
  initialized_ = true;
  // The cluster's metadata proves a broker answers (main thread: Init may block).
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata((*producer)->rk, 0, nullptr, &metadata,
                                              static_cast<int>(settings_.init_timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const std::string reason = "no broker of '" + settings_.brokers + "' answered within " +
                               std::to_string(settings_.init_timeout.count()) + " ms (" +
                               rd_kafka_err2str(err) + ")";
    core_->SetHealth(false, reason);
    return absl::UnavailableError(label_ + ": " + reason);
  }
  rd_kafka_metadata_destroy(metadata);
  core_->SetHealth(true, "");
  return absl::OkStatus();
}

void KafkaPubSub::Shutdown() {
  if (shut_down_.exchange(true)) {
    return;
  }
  // Close every consumer on the loop, and wait (bounded) until they have committed and left their
  // groups.
  dispatcher_.RunAndWait([core = core_] {
    for (auto& [id, sub] : core->subscriptions) {
      core->BeginClose(sub);
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool remaining = true;
  while (remaining && std::chrono::steady_clock::now() < deadline) {
    if (!dispatcher_.RunAndWait(
            [core = core_, &remaining] { remaining = !core->subscriptions.empty(); })) {
      break;  // the loop has stopped
    }
    if (remaining) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // Outstanding publishes get until publishTimeout to be acknowledged (served on the loop).
  if (Core::ProducerPtr producer = core_->CurrentProducer(); producer != nullptr) {
    const auto publish_deadline =
        std::chrono::steady_clock::now() +
        std::min(settings_.publish_timeout, std::chrono::milliseconds(10000));
    while (rd_kafka_outq_len(producer->rk) > 0 &&
           std::chrono::steady_clock::now() < publish_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // Detach from the loop, then release everything here.
  Core::ProducerPtr producer;
  dispatcher_.RunAndWait([core = core_, &producer] {
    producer = core->SwapProducer(nullptr);
    if (producer != nullptr) {
      producer->event.reset();
    }
    for (auto& [id, sub] : core->subscriptions) {
      sub->event.reset();
    }
  });
  for (auto& [id, sub] : core_->subscriptions) {
    Core::Destroy(*sub);
  }
  core_->subscriptions.clear();
  producer.reset();  // fails what is still queued or in flight, then destroys the producer
}

void KafkaPubSub::Publish(PublishRequest request, DoneCallback done) {
  if (request.topic.empty()) {
    done(absl::InvalidArgumentError(label_ + ": publish needs a topic"));
    return;
  }
  if (shut_down_.load() || !initialized_.load()) {
    done(absl::UnavailableError(label_ + ": not running"));
    return;
  }
  if (static_cast<int64_t>(request.data.size()) > settings_.max_message_bytes) {
    done(absl::ResourceExhaustedError(label_ + ": publish to '" + request.topic + "': message of " +
                                      std::to_string(request.data.size()) +
                                      " bytes exceeds maxMessageBytes (" +
                                      std::to_string(settings_.max_message_bytes) + ")"));
    return;
  }
  const std::string* key = nullptr;
  rd_kafka_headers_t* headers = rd_kafka_headers_new(request.metadata.size() + 1);
  for (const auto& [name, value] : request.metadata) {
    rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
    if (name == "partitionKey" || (name == "key" && key == nullptr)) {
      key = &value;
    }
  }
  if (!request.content_type.empty() && !request.metadata.contains("contentType")) {
    rd_kafka_header_add(headers, "contentType", -1, request.content_type.data(),
                        static_cast<ssize_t>(request.content_type.size()));
  }
  const void* key_data = key == nullptr ? nullptr : key->data();
  const size_t key_size = key == nullptr ? 0 : key->size();
  const Core::ProducerPtr producer = core_->CurrentProducer();
  if (producer == nullptr) {
    rd_kafka_headers_destroy(headers);
    done(absl::UnavailableError(label_ + ": not running"));
    return;
  }
  auto* pending = new Core::Pending{std::move(done), request.topic, std::move(request.data)};
  // No RD_KAFKA_MSG_F_COPY: the value lives in `pending` until the delivery report.
  rd_kafka_resp_err_t err =
      rd_kafka_producev(producer->rk, RD_KAFKA_V_TOPIC(request.topic.c_str()),
                        RD_KAFKA_V_VALUE(pending->value.data(), pending->value.size()),
                        RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_HEADERS(headers),
                        RD_KAFKA_V_OPAQUE(pending), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);
    std::unique_ptr<Core::Pending> failed(pending);
    failed->done(PublishError(label_, request.topic, err, settings_));
  }
}

absl::Status KafkaPubSub::InjectFatalProducerErrorForTest(const std::string& reason) {
  const Core::ProducerPtr producer = core_->CurrentProducer();
  if (producer == nullptr) {
    return absl::FailedPreconditionError(label_ + ": not running");
  }
  const rd_kafka_resp_err_t err = rd_kafka_test_fatal_error(
      producer->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason.c_str());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(label_ + ": " + rd_kafka_err2str(err));
  }
  return absl::OkStatus();
}

uint64_t KafkaPubSub::producers_replaced() const {
  return core_->producers_replaced.load();
}

absl::StatusOr<uint64_t> KafkaPubSub::Subscribe(SubscribeRequest request, MessageHandler handler) {
  OTTAVA_RETURN_IF_ERROR(CheckSubscribe(label_, request, handler));
  if (shut_down_.load()) {
    return absl::FailedPreconditionError(label_ + ": shut down");
  }
  auto sub = std::make_shared<Core::Subscription>();
  sub->id = next_subscription_id_.fetch_add(1);
  sub->topic = request.topic;
  sub->group = !settings_.consumer_group.empty() ? settings_.consumer_group
               : !request.consumer_group.empty() ? request.consumer_group
                                                 : app_id_;
  if (sub->group.empty()) {
    return absl::InvalidArgumentError(label_ + ": subscribe needs a consumer group");
  }
  sub->max_in_flight = request.max_in_flight;
  sub->handler = std::make_shared<const MessageHandler>(std::move(handler));
  sub->core = core_.get();
  absl::StatusOr<rd_kafka_t*> rk = core_->NewConsumer(*sub);
  if (!rk.ok()) {
    return rk.status();
  }
  sub->rk = *rk;
  rd_kafka_poll_set_consumer(sub->rk);
  sub->queue = rd_kafka_queue_get_consumer(sub->rk);
  if (absl::Status status = sub->pipe.Open(); !status.ok()) {
    Core::Destroy(*sub);
    return status;
  }
  rd_kafka_queue_io_event_enable(sub->queue, sub->pipe.write_fd, "1", 1);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, sub->topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(sub->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Core::Destroy(*sub);
    return absl::InvalidArgumentError(label_ + ": subscribing to '" + request.topic +
                                      "': " + rd_kafka_err2str(err));
  }
  const uint64_t id = sub->id;
  const bool posted = dispatcher_.RunAndWait([core = core_, sub] { core->AddSubscription(sub); });
  if (!posted) {
    Core::Destroy(*sub);
    return absl::UnavailableError(label_ + ": the component event loop has stopped");
  }
  OTTAVA_LOG(Kafka, info, "{}: subscribed to '{}' as group '{}'", label_, request.topic,
             sub->group);
  return id;
}

void KafkaPubSub::Unsubscribe(uint64_t subscription_id) {
  dispatcher_.RunAndWait([core = core_, subscription_id] {
    if (Core::SubscriptionPtr sub = core->FindSubscription(subscription_id)) {
      core->BeginClose(sub);
    }
  });
}

absl::StatusOr<std::unique_ptr<PubSub>> KafkaPubSubFactory::Create(
    const ComponentContext& context) const {
  return CreatePubSub<KafkaPubSub, KafkaPubSubSettings>(context, "kafka pub/sub");
}

}  // namespace ottava::components::pubsub
