#include "components/common/redis/redis_subscriber.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "common/backoff.h"
#include "common/logging.h"
#include "components/common/redis/loop_wait.h"

namespace ottava::components::redis {
namespace {

// hiredis' event hooks over one level-triggered file event on the dispatcher, in place of hiredis'
// libevent adapter. Everything here runs on the loop thread (the subscriber never leaves it).
// Deferred-deletable because hiredis may release the context, and so this, from inside the file
// event's own callback.
class LoopAdapter : public DeferredDeletable {
 public:
  static void Attach(redisAsyncContext* context, Dispatcher& dispatcher) {
    auto* adapter = new LoopAdapter(context, dispatcher);
    adapter->event_ = dispatcher.CreateFileEvent(
        context->c.fd, [adapter](uint32_t ready) { adapter->OnReady(ready); },
        FileTriggerType::kLevel, 0);
    context->ev.data = adapter;
    context->ev.addRead = [](void* data) { static_cast<LoopAdapter*>(data)->Watch(true, true); };
    context->ev.delRead = [](void* data) { static_cast<LoopAdapter*>(data)->Watch(true, false); };
    context->ev.addWrite = [](void* data) { static_cast<LoopAdapter*>(data)->Watch(false, true); };
    context->ev.delWrite = [](void* data) { static_cast<LoopAdapter*>(data)->Watch(false, false); };
    context->ev.cleanup = [](void* data) {
      auto* self = static_cast<LoopAdapter*>(data);
      self->context_ = nullptr;
      self->event_->SetEnabled(0);  // hiredis closes the fd next
      self->dispatcher_.DeferredDelete(DeferredDeletablePtr(self));
    };
  }

 private:
  LoopAdapter(redisAsyncContext* context, Dispatcher& dispatcher)
      : context_(context), dispatcher_(dispatcher) {}

  void Watch(bool read, bool on) {
    const uint32_t bit = read ? FileReadyType::kRead : FileReadyType::kWrite;
    watched_ = on ? (watched_ | bit) : (watched_ & ~bit);
    event_->SetEnabled(watched_);
  }

  void OnReady(uint32_t ready) {
    // Either call may release the context (and schedule this object's deletion).
    if ((ready & FileReadyType::kWrite) != 0 && context_ != nullptr) {
      redisAsyncHandleWrite(context_);
    }
    if ((ready & FileReadyType::kRead) != 0 && context_ != nullptr) {
      redisAsyncHandleRead(context_);
    }
  }

  redisAsyncContext* context_;
  Dispatcher& dispatcher_;
  FileEventPtr event_;
  uint32_t watched_ = 0;
};

}  // namespace

struct Subscriber::Impl : std::enable_shared_from_this<Subscriber::Impl> {
  Impl(ClientSettings s,
       Dispatcher* d,
       std::string l,
       std::vector<std::string> c,
       std::vector<std::string> p,
       Callbacks cb)
      : settings(std::move(s)),
        dispatcher(d),
        label(std::move(l)),
        channels(std::move(c)),
        patterns(std::move(p)),
        callbacks(std::move(cb)) {}

  // ---- loop thread from here on ----

  void Start() {
    reconnect_timer = dispatcher->CreateTimer([self = weak_from_this()] {
      if (auto impl = self.lock()) {
        impl->Dial();
      }
    });
    dial_timer = dispatcher->CreateTimer([self = weak_from_this()] {
      if (auto impl = self.lock(); impl && !impl->is_subscribed.load()) {
        impl->Drop("not subscribed within " + std::to_string(impl->settings.dial_timeout.count()) +
                   " ms");
      }
    });
    Dial();
  }

  void Dial() {
    if (shut_down || context != nullptr) {
      return;
    }
    redisAsyncContext* dialled = redisAsyncConnect(settings.host.c_str(), settings.port);
    if (dialled == nullptr || dialled->err != 0) {
      last_error = dialled != nullptr ? dialled->errstr : "out of memory";
      if (dialled != nullptr) {
        redisAsyncFree(dialled);
      }
      ScheduleReconnect();
      return;
    }
    dialled->data = this;
    context = dialled;
    confirmed = 0;
    LoopAdapter::Attach(context, *dispatcher);
    redisAsyncSetConnectCallback(context, &Impl::ConnectThunk);
    redisAsyncSetDisconnectCallback(context, &Impl::DisconnectThunk);
    dial_timer->Enable(settings.dial_timeout);
    // Pipelined behind the connect: AUTH, then the subscriptions.
    if (!settings.password.empty()) {
      Send({"AUTH", settings.password}, &Impl::AuthThunk);
    }
    for (const auto& channel : channels) {
      Send({"SUBSCRIBE", channel}, &Impl::MessageThunk);
    }
    for (const auto& pattern : patterns) {
      Send({"PSUBSCRIBE", pattern}, &Impl::MessageThunk);
    }
  }

  void Send(const std::vector<std::string>& args, redisCallbackFn* callback) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    // privdata is unused: the context's `data` names the owner, and is cleared when we drop it.
    redisAsyncCommandArgv(context, callback, nullptr, static_cast<int>(argv.size()), argv.data(),
                          lengths.data());
  }

  static Impl* OwnerOf(const redisAsyncContext* c) { return static_cast<Impl*>(c->data); }

  static void ConnectThunk(const redisAsyncContext* c, int status) {
    Impl* impl = OwnerOf(c);
    if (impl == nullptr) {
      return;
    }
    if (status != REDIS_OK) {
      // hiredis frees the context after this callback.
      impl->last_error = c->errstr;
      impl->context = nullptr;
      impl->Lost();
      return;
    }
    impl->EnableKeepAlive(c->c.fd);
  }

  static void DisconnectThunk(const redisAsyncContext* c, int /*status*/) {
    Impl* impl = OwnerOf(c);
    if (impl == nullptr) {
      return;  // we dropped it ourselves
    }
    if (c->errstr[0] != '\0') {
      impl->last_error = c->errstr;
    } else {
      impl->last_error = "connection closed";
    }
    impl->context = nullptr;
    impl->Lost();
  }

  static void AuthThunk(redisAsyncContext* c, void* raw, void* /*privdata*/) {
    Impl* impl = OwnerOf(c);
    auto* reply = static_cast<redisReply*>(raw);
    if (impl == nullptr || reply == nullptr) {
      return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      impl->Drop(std::string("AUTH failed: ") + std::string(reply->str, reply->len));
    }
  }

  static void MessageThunk(redisAsyncContext* c, void* raw, void* /*privdata*/) {
    Impl* impl = OwnerOf(c);
    auto* reply = static_cast<redisReply*>(raw);
    // A null reply is hiredis failing the subscription as the context goes away; the disconnect
    // callback (or our own Drop) handles that.
    if (impl == nullptr || reply == nullptr) {
      return;
    }
    impl->OnReply(*reply);
  }

  static std::string Str(const redisReply* r) {
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS
               ? std::string(r->str, r->len)
               : std::string();
  }

  void OnReply(const redisReply& reply) {
    if (reply.type == REDIS_REPLY_ERROR) {
      Drop("subscribe failed: " + std::string(reply.str, reply.len));
      return;
    }
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 3) {
      return;
    }
    const std::string kind = Str(reply.element[0]);
    if (kind == "message") {
      Deliver(Str(reply.element[1]), Str(reply.element[2]));
    } else if (kind == "pmessage" && reply.elements >= 4) {
      Deliver(Str(reply.element[2]), Str(reply.element[3]));
    } else if (kind == "subscribe" || kind == "psubscribe") {
      if (++confirmed == channels.size() + patterns.size()) {
        failures = 0;
        dial_timer->Disable();
        if (was_lost) {
          OTTAVA_LOG(Redis, info, "{}: subscriber reconnected to {}:{}", label, settings.host,
                     settings.port);
        }
        was_lost = false;
        if (callbacks.on_subscribed) {
          callbacks.on_subscribed();
        }
        // Last, so Connect() returns only after on_subscribed ran.
        is_subscribed.store(true);
      }
    }
  }

  void Deliver(const std::string& channel, const std::string& message) {
    if (callbacks.on_message) {
      callbacks.on_message(channel, message);
    }
  }

  void EnableKeepAlive(int fd) {
    int on = 1;
    int idle = 5;
    int interval = 2;
    int count = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  }

  // Closes the current connection ourselves (bad handshake, no confirmation in time).
  void Drop(const std::string& why) {
    if (context != nullptr) {
      redisAsyncContext* dropped = context;
      dropped->data = nullptr;  // our callbacks ignore this context from now on
      context = nullptr;
      last_error = why;
      redisAsyncFree(dropped);
    }
    Lost();
  }

  void Lost() {
    const bool had_subscription = is_subscribed.exchange(false);
    dial_timer->Disable();
    if (had_subscription) {
      was_lost = true;
      OTTAVA_LOG(Redis, warn, "{}: subscriber lost redis {}:{} ({}); reconnecting", label,
                 settings.host, settings.port, last_error);
      if (callbacks.on_lost) {
        callbacks.on_lost();
      }
    }
    ScheduleReconnect();
  }

  void ScheduleReconnect() {
    if (shut_down || reconnect_timer->Enabled()) {
      return;
    }
    ++failures;
    reconnect_timer->Enable(backoff.Delay(failures));
  }

  void ShutdownOnLoop() {
    shut_down = true;
    reconnect_timer.reset();
    dial_timer.reset();
    if (context != nullptr) {
      redisAsyncContext* closing = context;
      closing->data = nullptr;
      context = nullptr;
      redisAsyncFree(closing);
    }
    is_subscribed.store(false);
  }

  const ClientSettings settings;
  Dispatcher* const dispatcher;
  const std::string label;
  const std::vector<std::string> channels;
  const std::vector<std::string> patterns;
  const Callbacks callbacks;

  redisAsyncContext* context = nullptr;
  TimerPtr reconnect_timer;
  TimerPtr dial_timer;
  size_t confirmed = 0;
  uint32_t failures = 0;
  bool shut_down = false;
  bool was_lost = false;
  std::string last_error = "not connected yet";
  std::atomic<bool> is_subscribed{false};
  Backoff backoff{std::chrono::milliseconds(50), std::chrono::milliseconds(1000)};
  bool started = false;  // owner thread: Connect() called
};

absl::StatusOr<std::unique_ptr<Subscriber>> Subscriber::Create(ClientSettings settings,
                                                               Dispatcher* dispatcher,
                                                               std::string label,
                                                               std::vector<std::string> channels,
                                                               std::vector<std::string> patterns,
                                                               Callbacks callbacks) {
  if (dispatcher == nullptr) {
    return absl::FailedPreconditionError(label + ": the redis subscriber needs a dispatcher");
  }
  if (channels.empty() && patterns.empty()) {
    return absl::InvalidArgumentError(label + ": the redis subscriber needs a channel or pattern");
  }
  return std::unique_ptr<Subscriber>(new Subscriber(
      std::make_shared<Impl>(std::move(settings), dispatcher, std::move(label), std::move(channels),
                             std::move(patterns), std::move(callbacks))));
}

Subscriber::~Subscriber() {
  Shutdown();
}

bool Subscriber::subscribed() const {
  return impl_->is_subscribed.load();
}

absl::Status Subscriber::Connect() {
  auto impl = impl_;
  if (!impl->started) {
    impl->started = true;
    if (!impl->dispatcher->RunAndWait([impl] { impl->Start(); })) {
      return absl::UnavailableError(impl->label +
                                    ": redis subscriber not connected: the component loop has "
                                    "stopped");
    }
  }
  if (WaitForFlag(impl->is_subscribed, impl->settings.dial_timeout)) {
    return absl::OkStatus();
  }
  std::string why = "the component loop has stopped";
  impl->dispatcher->RunAndWait([impl, &why] { why = impl->last_error; });
  return absl::UnavailableError(
      impl->label + ": redis " + impl->settings.host + ":" + std::to_string(impl->settings.port) +
      " subscriber not ready within " + std::to_string(impl->settings.dial_timeout.count()) +
      " ms: " + why);
}

void Subscriber::Shutdown() {
  // Returns at once when the loop has stopped (nothing runs there any more).
  auto impl = impl_;
  impl->dispatcher->RunAndWait([impl] { impl->ShutdownOnLoop(); }, std::chrono::seconds(5));
}

}  // namespace ottava::components::redis
