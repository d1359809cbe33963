#include "components/common/redis/redis_client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <map>
#include <thread>

#include "common/assert.h"
#include "common/backoff.h"
#include "common/logging.h"
#include "common/status.h"
#include "components/common/redis/loop_wait.h"

namespace ottava::components::redis {

namespace {

Reply Convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(Convert(r->element[i]));
      }
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

}  // namespace

absl::StatusOr<ClientSettings> ClientSettings::Parse(const Metadata& metadata) {
  MetadataReader reader(metadata);
  return Read(reader);
}

absl::StatusOr<ClientSettings> ClientSettings::Read(MetadataReader& reader) {
  ClientSettings settings;
  if (const std::string* host = reader.Find("redisHost")) {
    size_t colon = host->rfind(':');
    if (colon == std::string::npos || colon == 0) {
      settings.host = *host;
    } else {
      settings.host = host->substr(0, colon);
      uint32_t port = 0;
      auto text = std::string_view(*host).substr(colon + 1);
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
      if (ec != std::errc() || end != text.data() + text.size() || port == 0 || port > 65535) {
        return absl::InvalidArgumentError("metadata redisHost: bad port in '" + *host + "'");
      }
      settings.port = static_cast<uint16_t>(port);
    }
  }
  OTTAVA_RETURN_IF_ERROR(reader.String("redisPassword", &settings.password));
  OTTAVA_RETURN_IF_ERROR(reader.Int("redisDB", 0, 1 << 20, &settings.db));
  OTTAVA_RETURN_IF_ERROR(reader.Int("poolSize", 1, 64, &settings.pool_size));
  int64_t spin = settings.reply_spin.count();
  OTTAVA_RETURN_IF_ERROR(reader.Int("replySpinMicros", 0, 1000, &spin));
  settings.reply_spin = std::chrono::microseconds(spin);
  OTTAVA_RETURN_IF_ERROR(reader.Duration("dialTimeout", &settings.dial_timeout, false));
  OTTAVA_RETURN_IF_ERROR(reader.Duration("timeout", &settings.timeout, false));
  return settings;
}

// ---------------------------------------------------------------------------------------------

struct PendingCommand {
  std::vector<std::string> args;
  ReplyCallback done;
  std::chrono::steady_clock::time_point deadline;
  const Script* script = nullptr;  // EVALSHA: reload on NOSCRIPT
  std::vector<std::string> script_keys;
  std::vector<std::string> script_args;
  bool retried = false;
  bool finished = false;
  // The client's own commands (handshake, script reload): their callbacks run at once, under the
  // client's lock, because they change its state. Callers' callbacks run after it is released.
  bool internal = false;
  // Sent from the dispatcher thread: the callback runs there too. Otherwise it runs on whichever
  // thread reads the reply (the sender, or the loop).
  bool loop_callback = false;
  // Waits longer than the timeout (a blocking read): never read by the sending thread.
  bool blocking = false;
  std::chrono::steady_clock::time_point sent_at;
};

// How long a sending thread may wait on the socket for its own reply before it leaves the reading
// to the loop. A healthy Redis answers in tens of microseconds.
constexpr std::chrono::microseconds kCallerReadBudget{1000};
// A sender reads its own reply only while replies typically come within this (the moving average
// of every command's round trip): a gRPC thread may wait for a nearby, idle Redis, never for a
// distant or busy one.
constexpr std::chrono::microseconds kCallerReadTypicalReply{250};
// Reading on a sender's thread pays only while requests come one at a time. Once other commands
// were sent while a caller read, the loop reads for this long: under concurrency a blocked gRPC
// thread costs more than the loop's wake-up saves.
constexpr std::chrono::milliseconds kCallerReadPause{100};

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  struct Connection;

  // hiredis' event hooks, on the client's dispatcher's file events. Unlike hiredis' stock adapters,
  // they never touch the loop's watches off the loop (that would wake it): a sending thread writes
  // the output buffer itself and hands only a partial or failed write to the loop, and a thread
  // reading replies (Reader::kCaller) leaves the read event alone. Read and write watches are
  // one-shot, as hiredis expects: each callback disarms its own watch and hiredis re-arms it
  // (addRead/addWrite) when it wants more. Deferred-deletable because hiredis may release the
  // context, and so these, from inside their own callbacks.
  struct LoopEvents : public DeferredDeletable {
    LoopEvents(Impl* i, Connection* c, redisAsyncContext* ctx)
        : impl(i), connection(c), context(ctx) {}
    Impl* impl;
    Connection* connection;
    redisAsyncContext* context;  // null once hiredis released it (see cleanup)
    FileEventPtr read_event;
    FileEventPtr write_event;
    FileEventPtr closed_event;  // the server closed the connection (EPOLLRDHUP), always armed
  };

  // Who reads a ready connection's replies. The loop reads while commands it sent, blocking
  // commands or more callers' commands than one caller waits for are in flight. When a caller
  // finds nothing in flight it reads its own reply on its own thread (and any reply that comes
  // with it), so a lone request costs no thread hand-off at all; then it leaves the connection
  // unwatched (kNone) or, if replies are still due, hands it to the loop.
  enum class Reader { kLoop, kCaller, kNone };

  struct Connection {
    Impl* owner = nullptr;
    redisAsyncContext* context = nullptr;
    uint64_t generation = 0;  // bumped on every dial, so late loop hand-offs can tell
    Reader reader = Reader::kLoop;
    uint64_t sent = 0;  // commands sent on this connection, ever
    enum class State { kIdle, kConnecting, kHandshaking, kReady } state = State::kIdle;
    uint32_t failures = 0;
    TimerPtr reconnect_timer;
    std::chrono::steady_clock::time_point dial_deadline;
    std::deque<std::shared_ptr<PendingCommand>> in_flight;
  };

  // What hiredis carries for each command: the owner and the command.
  struct Tag {
    std::weak_ptr<Impl> impl;
    Connection* connection;
    std::shared_ptr<PendingCommand> command;
  };

  // A caller's callback with its result, run once the lock is released.
  struct Completion {
    ReplyCallback done;
    absl::StatusOr<Reply> reply;
    bool loop_callback;
  };

  Impl(ClientSettings s, Dispatcher* d, HealthIndicator* h, std::string l)
      : settings(std::move(s)), dispatcher(d), health(h), label(std::move(l)) {}

  absl::Status Unavailable(std::string_view why) const {
    return absl::UnavailableError(label + ": redis " + settings.host + ":" +
                                  std::to_string(settings.port) + " " + std::string(why));
  }

  // Every entry into the client (a caller's command, a loop event, a timer) runs `fn` under the
  // lock, then runs the callers' callbacks it finished with the lock released, so a callback may
  // send the next command. A callback of a command sent from the loop is posted there when it was
  // finished on another thread.
  template <typename Fn>
  void Locked(Fn&& fn) {
    std::vector<Completion> finished;
    {
      absl::MutexLock lock(&mu);
      fn();
      finished.swap(completions);
    }
    if (!finished.empty()) {
      RunCompletions(std::move(finished));
    }
  }

  void RunCompletions(std::vector<Completion> finished) {
    const bool on_loop = dispatcher->IsLoopThread();
    std::vector<Completion> for_loop;
    for (Completion& completion : finished) {
      if (completion.loop_callback && !on_loop) {
        for_loop.push_back(std::move(completion));
      } else {
        completion.done(std::move(completion.reply));
      }
    }
    if (!for_loop.empty()) {
      dispatcher->Post([for_loop = std::move(for_loop)]() mutable {
        for (Completion& completion : for_loop) {
          completion.done(std::move(completion.reply));
        }
      });
    }
  }

  // ---- everything below runs under `mu`; connection management runs on the loop only ----

  void Start() {
    deadline_timer = dispatcher->CreateTimer([self = weak_from_this()] {
      if (auto impl = self.lock()) {
        impl->Locked([&impl] { impl->CheckDeadlines(); });
      }
    });
    deadline_timer->Enable(std::chrono::milliseconds(20));
    for (auto& connection : connections) {
      Dial(*connection);
    }
  }

  void Dial(Connection& connection) {
    if (shut_down || connection.context != nullptr) {
      return;
    }
    redisAsyncContext* context = redisAsyncConnect(settings.host.c_str(), settings.port);
    if (context == nullptr || context->err != 0) {
      last_error = context != nullptr ? context->errstr : "out of memory";
      if (context != nullptr) {
        redisAsyncFree(context);
      }
      ScheduleReconnect(connection);
      return;
    }
    context->data = &connection;
    connection.context = context;
    ++connection.generation;
    connection.reader = Reader::kLoop;
    connection.state = Connection::State::kConnecting;
    connection.dial_deadline = std::chrono::steady_clock::now() + settings.dial_timeout;
    Attach(connection, context);
    redisAsyncSetConnectCallback(context, &Impl::ConnectThunk);
    redisAsyncSetDisconnectCallback(context, &Impl::DisconnectThunk);
    // The handshake is pipelined behind the connect: AUTH, SELECT, SCRIPT LOAD, then PING.
    if (!settings.password.empty()) {
      Internal(connection, {"AUTH", settings.password}, "AUTH");
    }
    if (settings.db != 0) {
      Internal(connection, {"SELECT", std::to_string(settings.db)}, "SELECT");
    }
    for (const Script* script : scripts) {
      auto command = NewInternal({"SCRIPT", "LOAD", script->body()},
                                 [this, script, &connection](absl::StatusOr<Reply> reply) {
                                   if (reply.ok() && reply->type == Reply::Type::kString) {
                                     shas[script] = reply->str;
                                   } else {
                                     HandshakeFailed(connection, "SCRIPT LOAD", reply);
                                   }
                                 });
      Send(connection, std::move(command));
    }
    auto ping = NewInternal({"PING"}, [this, &connection](absl::StatusOr<Reply> reply) {
      if (!reply.ok() || reply->is_error()) {
        HandshakeFailed(connection, "PING", reply);
        return;
      }
      connection.state = Connection::State::kReady;
      connection.failures = 0;
      ready_count.fetch_add(1);
      if (ready_count.load() == 1 || was_down) {
        OTTAVA_LOG(Redis, info, "{}: connected to {}:{}", label, settings.host, settings.port);
      }
      was_down = false;
      UpdateHealth();
      ever_ready.store(true);  // after the health update, so Connect() returns with UP
    });
    Send(connection, std::move(ping));
  }

  void Attach(Connection& connection, redisAsyncContext* context) {
    auto* events = new LoopEvents(this, &connection, context);
    const int fd = context->c.fd;
    events->read_event = dispatcher->CreateFileEvent(
        fd, [events](uint32_t) { OnReadable(events); }, FileTriggerType::kLevel, 0);
    events->write_event = dispatcher->CreateFileEvent(
        fd, [events](uint32_t) { OnWritable(events); }, FileTriggerType::kLevel, 0);
    // Fires on the peer's close only, not on replies, so it may stay armed while nobody reads.
    events->closed_event = dispatcher->CreateFileEvent(
        fd, [events](uint32_t) { OnClosed(events); }, FileTriggerType::kLevel, 0);
    context->ev.data = events;
    context->ev.addRead = [](void* data) {
      auto* hooks = static_cast<LoopEvents*>(data);
      if (hooks->impl->dispatcher->IsLoopThread() && hooks->connection->reader == Reader::kLoop) {
        hooks->read_event->SetEnabled(FileReadyType::kRead);
      }
    };
    context->ev.delRead = [](void* data) {
      auto* hooks = static_cast<LoopEvents*>(data);
      if (hooks->impl->dispatcher->IsLoopThread()) {
        hooks->read_event->SetEnabled(0);
      }
    };
    context->ev.addWrite = [](void* data) {
      auto* hooks = static_cast<LoopEvents*>(data);
      if (hooks->impl->dispatcher->IsLoopThread()) {
        hooks->write_event->SetEnabled(FileReadyType::kWrite);
      }  // else the sender flushes (Send)
    };
    context->ev.delWrite = [](void* data) {
      auto* hooks = static_cast<LoopEvents*>(data);
      if (hooks->impl->dispatcher->IsLoopThread()) {
        hooks->write_event->SetEnabled(0);
      }
    };
    context->ev.cleanup = [](void* data) {
      auto* hooks = static_cast<LoopEvents*>(data);
      hooks->context = nullptr;
      Dispatcher* loop = hooks->impl->dispatcher;
      if (loop->IsLoopThread()) {
        FreeEvents(hooks);
        return;
      }
      // hiredis is releasing the context on a reading caller's thread (the server closed the
      // connection). The events belong to the loop: free them there; until then a firing one
      // sees the null context and does nothing.
      loop->Post([hooks] { FreeEvents(hooks); });
    };
    events->read_event->SetEnabled(FileReadyType::kRead);
    events->write_event->SetEnabled(FileReadyType::kWrite);
    events->closed_event->SetEnabled(FileReadyType::kClosed);
  }

  // Loop thread. Stops the watches at once (the fd is being closed) and destroys them after the
  // callback on the stack, which may be one of theirs, has returned.
  static void FreeEvents(LoopEvents* events) {
    events->read_event->SetEnabled(0);
    events->write_event->SetEnabled(0);
    events->closed_event->SetEnabled(0);
    events->impl->dispatcher->DeferredDelete(DeferredDeletablePtr(events));
  }

  // File event callbacks. hiredis may free the context (and so release `events`) inside; `events`
  // itself stays valid until the callback returns (FreeEvents defers its deletion).
  static void OnReadable(LoopEvents* events) {
    events->read_event->SetEnabled(0);  // one-shot: hiredis re-arms it after reading
    Impl* impl = events->impl;
    impl->Locked([impl, events] {
      redisAsyncContext* context = events->context;
      if (context == nullptr) {
        return;
      }
      Connection& connection = *events->connection;
      redisAsyncHandleRead(context);
      if (connection.context == context && connection.state == Connection::State::kReady &&
          connection.in_flight.empty() && connection.reader == Reader::kLoop &&
          std::chrono::steady_clock::now() >= impl->caller_reads_paused_until) {
        // Nothing is due: leave the socket unwatched so the next caller reads its own reply.
        // OnClosed (and CheckDeadlines) still notice a server that closes it meanwhile.
        events->read_event->SetEnabled(0);
        connection.reader = Reader::kNone;
      }
    });
  }
  // The server closed a connection nobody may be reading: let the loop read it, which sees the end
  // of the stream and handles the disconnect at once (a reading caller stops waiting).
  static void OnClosed(LoopEvents* events) {
    events->impl->Locked([events] {
      if (events->context != nullptr && events->connection->reader != Reader::kLoop) {
        events->impl->WatchOnLoop(*events->connection);
      }
    });
  }
  static void OnWritable(LoopEvents* events) {
    events->write_event->SetEnabled(0);  // one-shot: hiredis re-arms it while output is pending
    events->impl->Locked([events] {
      if (events->context != nullptr) {
        redisAsyncHandleWrite(events->context);
      }
    });
  }

  // Loop thread: the loop reads this connection's replies from now on.
  void WatchOnLoop(Connection& connection) {
    connection.reader = Reader::kLoop;
    static_cast<LoopEvents*>(connection.context->ev.data)
        ->read_event->SetEnabled(FileReadyType::kRead);
  }

  // Any thread but the loop: wakes the loop to finish a pending write and, unless a caller is
  // reading, to read the replies.
  void HandToLoop(Connection& connection, bool write_pending) {
    if (connection.reader == Reader::kNone) {
      connection.reader = Reader::kLoop;
    }
    dispatcher->Post(
        [self = weak_from_this(), &connection, generation = connection.generation, write_pending] {
          auto impl = self.lock();
          if (!impl) {
            return;
          }
          impl->Locked([&impl, &connection, generation, write_pending] {
            if (connection.context == nullptr || connection.generation != generation) {
              return;
            }
            auto* events = static_cast<LoopEvents*>(connection.context->ev.data);
            if (write_pending) {
              events->write_event->SetEnabled(FileReadyType::kWrite);
            }
            if (connection.reader == Reader::kLoop) {
              events->read_event->SetEnabled(FileReadyType::kRead);
            }
          });
        });
  }

  void Internal(Connection& connection, std::vector<std::string> args, const char* what) {
    Send(connection,
         NewInternal(std::move(args), [this, &connection, what](absl::StatusOr<Reply> r) {
           if (!r.ok() || r->is_error()) {
             HandshakeFailed(connection, what, r);
           }
         }));
  }

  void HandshakeFailed(Connection& connection, const char* what, const absl::StatusOr<Reply>& r) {
    if (!r.ok()) {
      return;  // the connection is already gone; its disconnect handles the rest
    }
    last_error = std::string(what) + " failed: " + r->str;
    OTTAVA_LOG(Redis, error, "{}: {}", label, last_error);
    Drop(connection, last_error);
  }

  std::shared_ptr<PendingCommand> NewInternal(std::vector<std::string> args, ReplyCallback done) {
    auto command = std::make_shared<PendingCommand>();
    command->args = std::move(args);
    command->done = std::move(done);
    command->deadline = std::chrono::steady_clock::now() + settings.timeout;
    command->internal = true;
    return command;
  }

  static void ConnectThunk(const redisAsyncContext* context, int status) {
    auto* connection = static_cast<Connection*>(context->data);
    if (connection == nullptr) {
      return;
    }
    Impl* impl = connection->owner;
    if (status != REDIS_OK) {
      // hiredis frees the context after this callback.
      impl->last_error = context->errstr;
      connection->context = nullptr;
      impl->Lost(*connection);
    }
  }

  static void DisconnectThunk(const redisAsyncContext* context, int /*status*/) {
    auto* connection = static_cast<Connection*>(context->data);
    if (connection == nullptr) {
      return;  // we dropped it ourselves
    }
    Impl* impl = connection->owner;
    if (context->errstr[0] != '\0') {
      impl->last_error = context->errstr;
    }
    connection->context = nullptr;
    impl->Lost(*connection);
  }

  // Takes the connection out of rotation; returns whether it was serving.
  bool MarkDown(Connection& connection) {
    const bool was_ready = connection.state == Connection::State::kReady;
    connection.state = Connection::State::kIdle;
    if (was_ready) {
      ready_count.fetch_sub(1);
    }
    return was_ready;
  }

  void Lost(Connection& connection) { Lost(connection, MarkDown(connection)); }

  void Lost(Connection& connection, bool was_ready) {
    FailAll(connection, last_error.empty() ? "connection lost" : last_error);
    if (was_ready && ready_count.load() == 0) {
      was_down = true;
      OTTAVA_LOG(Redis, warn, "{}: lost redis {}:{} ({}); reconnecting", label, settings.host,
                 settings.port, last_error);
    }
    UpdateHealth();
    ScheduleReconnect(connection);
  }

  void FailAll(Connection& connection, const std::string& why) {
    auto in_flight = std::move(connection.in_flight);
    connection.in_flight.clear();
    for (auto& command : in_flight) {
      Finish(*command, Unavailable(why));
    }
  }

  void Finish(PendingCommand& command, absl::StatusOr<Reply> reply) {
    if (command.finished) {
      return;
    }
    command.finished = true;
    if (command.internal) {
      ReplyCallback done = std::move(command.done);
      done(std::move(reply));
      return;
    }
    completions.push_back(
        Completion{std::move(command.done), std::move(reply), command.loop_callback});
  }

  void Drop(Connection& connection, const std::string& why) {
    // Out of rotation first: freeing runs callbacks that may send new commands.
    const bool was_ready = MarkDown(connection);
    redisAsyncContext* context = connection.context;
    if (context != nullptr) {
      context->data = nullptr;  // our callbacks ignore this context from now on
      connection.context = nullptr;
      last_error = why;
      // Fails hiredis' own pending callbacks with a null reply; ours are failed just below.
      redisAsyncFree(context);
    }
    Lost(connection, was_ready);
  }

  void ScheduleReconnect(Connection& connection) {
    if (shut_down) {
      return;
    }
    if (!dispatcher->IsLoopThread()) {
      // Lost on a reading caller's thread; timers belong to the loop.
      dispatcher->Post([self = weak_from_this(), &connection] {
        if (auto impl = self.lock()) {
          impl->Locked([&impl, &connection] { impl->ScheduleReconnect(connection); });
        }
      });
      return;
    }
    if (!connection.reconnect_timer) {
      connection.reconnect_timer = dispatcher->CreateTimer([self = weak_from_this(), &connection] {
        if (auto impl = self.lock()) {
          impl->Locked([&impl, &connection] { impl->Dial(connection); });
        }
      });
    }
    if (connection.reconnect_timer->Enabled()) {
      return;
    }
    ++connection.failures;
    connection.reconnect_timer->Enable(reconnect_backoff.Delay(connection.failures));
  }

  void UpdateHealth() {
    if (health == nullptr) {
      return;
    }
    if (ready_count.load() > 0) {
      health->Set(HealthState::kUp);
    } else {
      health->Set(HealthState::kDown, "redis " + settings.host + ":" +
                                          std::to_string(settings.port) +
                                          " unreachable: " + last_error);
    }
  }

  Connection* PickReady() {
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& candidate = *connections[(next + i) % connections.size()];
      if (candidate.state == Connection::State::kReady) {
        next = (next + i + 1) % connections.size();
        return &candidate;
      }
    }
    return nullptr;
  }

  // A caller's command, on any thread. `claim`: see Send.
  void Dispatch(std::shared_ptr<PendingCommand> command, Connection** claim = nullptr) {
    if (shut_down) {
      Finish(*command, Unavailable("client shut down"));
      return;
    }
    Connection* connection = PickReady();
    if (connection == nullptr) {
      Finish(*command, Unavailable("unreachable: " + last_error));
      return;
    }
    if (command->script != nullptr) {
      auto sha = shas.find(command->script);
      if (sha == shas.end()) {
        Finish(*command, Unavailable("script not loaded"));
        return;
      }
      command->args.clear();
      command->args.reserve(3 + command->script_keys.size() + command->script_args.size());
      command->args.push_back("EVALSHA");
      command->args.push_back(sha->second);
      command->args.push_back(std::to_string(command->script_keys.size()));
      command->args.insert(command->args.end(), command->script_keys.begin(),
                           command->script_keys.end());
      command->args.insert(command->args.end(), command->script_args.begin(),
                           command->script_args.end());
    }
    Send(*connection, std::move(command), claim);
  }

  // Appends the command to the connection and makes sure somebody writes it and reads its reply.
  // On the loop, hiredis arms the write event. On another thread the sender writes it at once;
  // if nobody watches the connection and `claim` is given, the sender becomes its reader
  // (*claim = the connection, see CallerRead); otherwise the loop reads.
  void Send(Connection& connection,
            std::shared_ptr<PendingCommand> command,
            Connection** claim = nullptr) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(command->args.size());
    lengths.reserve(command->args.size());
    for (const auto& arg : command->args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* tag = new Tag{weak_from_this(), &connection, command};
    int rc = redisAsyncCommandArgv(connection.context, &Impl::ReplyThunk, tag,
                                   static_cast<int>(argv.size()), argv.data(), lengths.data());
    if (rc != REDIS_OK) {
      delete tag;
      Finish(*command, Unavailable("cannot send command"));
      return;
    }
    const bool blocking = command->blocking;
    const auto now = std::chrono::steady_clock::now();
    command->sent_at = now;
    connection.in_flight.push_back(std::move(command));
    ++connection.sent;
    if (dispatcher->IsLoopThread()) {
      if (connection.reader == Reader::kNone) {
        WatchOnLoop(connection);
      }
      return;
    }
    int written = 0;
    const bool flushed =
        redisBufferWrite(&connection.context->c, &written) == REDIS_OK && written != 0;
    if (!flushed) {
      // The socket is full or broken: the loop's write event finishes the write or handles the
      // disconnect.
      HandToLoop(connection, /*write_pending=*/true);
      return;
    }
    if (connection.reader != Reader::kNone) {
      return;  // the loop or another caller reads it
    }
    if (claim != nullptr && *claim == nullptr && !blocking && now >= caller_reads_paused_until &&
        std::chrono::nanoseconds(reply_wait_ns.load(std::memory_order_relaxed)) <=
            kCallerReadTypicalReply) {
      connection.reader = Reader::kCaller;
      *claim = &connection;
      return;
    }
    HandToLoop(connection, /*write_pending=*/false);
  }

  static int WaitReadable(int fd,
                          std::chrono::steady_clock::time_point spin_until,
                          std::chrono::steady_clock::time_point deadline) {
    pollfd poll_fd{fd, POLLIN, 0};
    while (std::chrono::steady_clock::now() < spin_until) {
      int ready = poll(&poll_fd, 1, 0);
      if (ready != 0) {
        return ready;
      }
    }
    const auto left_ns = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  deadline - std::chrono::steady_clock::now())
                                                  .count());
    timespec timeout{static_cast<time_t>(left_ns / 1000000000),
                     static_cast<long>(left_ns % 1000000000)};
    return ppoll(&poll_fd, 1, &timeout, nullptr);
  }

  // How long a reading caller polls the socket before it sleeps in ppoll: the reply_spin setting
  // while replies have recently come within it, else nothing (a distant or slow server would only
  // burn the CPU), and never on a single CPU, where spinning would keep a local server from
  // answering.
  std::chrono::nanoseconds SpinWindow() const {
    static const bool multi_core = std::thread::hardware_concurrency() > 1;
    const std::chrono::nanoseconds limit = settings.reply_spin;
    if (!multi_core || limit.count() == 0 ||
        std::chrono::nanoseconds(reply_wait_ns.load(std::memory_order_relaxed)) > limit) {
      return std::chrono::nanoseconds(0);
    }
    return limit;
  }

  // Keeps a moving average (1/8 weight) of the commands' round trips, whoever read the replies.
  void RecordReplyWait(std::chrono::nanoseconds waited) {
    const int64_t before = reply_wait_ns.load(std::memory_order_relaxed);
    reply_wait_ns.store(before + (waited.count() - before) / 8, std::memory_order_relaxed);
  }

  // A sender that claimed `connection` waits on the socket, without the lock, and reads replies
  // on its own thread until its own command is finished; then it leaves the connection unwatched
  // if nothing else is due, or hands the remaining replies to the loop. It never waits longer
  // than kCallerReadBudget. Callbacks of the replies it reads run on its thread (the loop's are
  // posted there). A connection dropped meanwhile (by the loop) ends the wait.
  void CallerRead(Connection& connection, const PendingCommand& own) {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + kCallerReadBudget;
    const auto spin_until = start + SpinWindow();
    uint64_t sent_before = 0;
    {
      absl::MutexLock lock(&mu);
      sent_before = connection.sent;
    }
    bool reading = true;
    while (reading) {
      int fd = -1;
      {
        absl::MutexLock lock(&mu);
        if (connection.reader != Reader::kCaller || connection.context == nullptr) {
          return;
        }
        fd = connection.context->c.fd;
      }
      const int ready = WaitReadable(fd, spin_until, deadline);
      Locked([&] {
        redisAsyncContext* context = connection.context;
        if (connection.reader != Reader::kCaller || context == nullptr) {
          reading = false;  // dropped, or handed over meanwhile
          return;
        }
        if (ready > 0) {
          redisAsyncHandleRead(context);  // may release the context (the server closed it)
          if (connection.context != context) {
            reading = false;
            return;
          }
        }
        const auto now = std::chrono::steady_clock::now();
        if (connection.in_flight.empty()) {
          connection.reader = Reader::kNone;
          reading = false;
        } else if (own.finished || now >= deadline) {
          connection.reader = Reader::kLoop;
          HandToLoop(connection, /*write_pending=*/false);
          reading = false;
        }
        if (!reading && connection.sent != sent_before) {
          caller_reads_paused_until = now + kCallerReadPause;
        }
      });
    }
  }

  static void ReplyThunk(redisAsyncContext* /*context*/, void* raw_reply, void* privdata) {
    std::unique_ptr<Tag> tag(static_cast<Tag*>(privdata));
    auto impl = tag->impl.lock();
    PendingCommand& command = *tag->command;
    if (!impl) {
      return;
    }
    auto& in_flight = tag->connection->in_flight;
    auto it = std::find(in_flight.begin(), in_flight.end(), tag->command);
    if (it != in_flight.end()) {
      in_flight.erase(it);
    }
    if (command.finished) {
      return;
    }
    if (raw_reply == nullptr) {
      impl->Finish(command, impl->Unavailable("connection lost"));
      return;
    }
    if (!command.blocking) {
      impl->RecordReplyWait(std::chrono::steady_clock::now() - command.sent_at);
    }
    Reply reply = Convert(static_cast<redisReply*>(raw_reply));
    if (reply.is_error() && command.script != nullptr && !command.retried &&
        reply.str.rfind("NOSCRIPT", 0) == 0) {
      // The server lost its script cache (restart, SCRIPT FLUSH): load it again, then retry.
      command.retried = true;
      impl->Reload(tag->command);
      return;
    }
    impl->Finish(command, std::move(reply));
  }

  void Reload(std::shared_ptr<PendingCommand> command) {
    const Script* script = command->script;
    Connection* connection = PickReady();
    if (connection == nullptr) {
      Finish(*command, Unavailable("unreachable: " + last_error));
      return;
    }
    Send(*connection, NewInternal({"SCRIPT", "LOAD", script->body()},
                                  [this, script, command](absl::StatusOr<Reply> reply) {
                                    if (!reply.ok() || reply->type != Reply::Type::kString) {
                                      Finish(*command, std::move(reply));
                                      return;
                                    }
                                    shas[script] = reply->str;
                                    Dispatch(command);
                                  }));
  }

  void CheckDeadlines() {
    const auto now = std::chrono::steady_clock::now();
    for (auto& connection : connections) {
      if (connection->reader == Reader::kNone && connection->context != nullptr) {
        // Nobody reads an idle connection. A close is caught by OnClosed; this also catches
        // anything the server says unasked (an error before it closes), and lets the loop read it.
        pollfd idle{connection->context->c.fd, POLLIN, 0};
        if (poll(&idle, 1, 0) != 0) {
          WatchOnLoop(*connection);
        }
      }
      if (connection->state == Connection::State::kConnecting && now > connection->dial_deadline &&
          connection->context != nullptr) {
        Drop(*connection,
             "dial timeout after " + std::to_string(settings.dial_timeout.count()) + " ms");
        continue;
      }
      if (!connection->in_flight.empty() && connection->in_flight.front()->deadline < now) {
        // A reply is overdue: the server or the network hangs. Fail everything on this
        // connection and dial again, rather than wait past the callers' deadlines.
        Drop(*connection, "no reply within " + std::to_string(settings.timeout.count()) + " ms");
      }
    }
    if (!shut_down) {
      deadline_timer->Enable(std::chrono::milliseconds(20));
    }
  }

  void ShutdownOnLoop() {
    shut_down = true;
    deadline_timer.reset();
    for (auto& connection : connections) {
      connection->reconnect_timer.reset();
      if (connection->context != nullptr) {
        redisAsyncContext* context = connection->context;
        context->data = nullptr;
        connection->context = nullptr;
        redisAsyncFree(context);
      }
      connection->state = Connection::State::kIdle;
      FailAll(*connection, "client shut down");
    }
  }

  const ClientSettings settings;
  Dispatcher* const dispatcher;
  HealthIndicator* const health;
  const std::string label;
  std::vector<const Script*> scripts;  // set before Connect()
  std::vector<std::unique_ptr<Connection>> connections;

  // Guards the connections' hiredis contexts and everything below.
  absl::Mutex mu;
  std::vector<Completion> completions;
  std::map<const Script*, std::string> shas;
  std::chrono::steady_clock::time_point caller_reads_paused_until;
  size_t next = 0;
  TimerPtr deadline_timer;
  bool shut_down = false;
  bool was_down = false;
  std::string last_error = "not connected yet";
  std::atomic<int> ready_count{0};
  std::atomic<int64_t> reply_wait_ns{0};  // see RecordReplyWait
  std::atomic<bool> ever_ready{false};
  Backoff reconnect_backoff{std::chrono::milliseconds(50), std::chrono::milliseconds(1000)};
};

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientSettings settings,
                                                       Dispatcher* dispatcher,
                                                       HealthIndicator* health,
                                                       std::string label) {
  if (dispatcher == nullptr) {
    return absl::FailedPreconditionError(label + ": the redis client needs a dispatcher");
  }
  auto impl = std::make_shared<Impl>(std::move(settings), dispatcher, health, std::move(label));
  for (int64_t i = 0; i < impl->settings.pool_size; ++i) {
    auto connection = std::make_unique<Impl::Connection>();
    connection->owner = impl.get();
    impl->connections.push_back(std::move(connection));
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::~Client() {
  Shutdown();
}

const ClientSettings& Client::settings() const {
  return impl_->settings;
}
const std::string& Client::label() const {
  return impl_->label;
}
absl::Status Client::Unavailable(std::string_view why) const {
  return impl_->Unavailable(why);
}

void Client::AddScript(const Script* script) {
  impl_->scripts.push_back(script);
}

absl::Status Client::Connect() {
  auto impl = impl_;
  if (!impl->dispatcher->RunAndWait([impl] { impl->Locked([&impl] { impl->Start(); }); })) {
    return impl->Unavailable("not connected: the component loop has stopped");
  }
  if (!WaitForFlag(impl->ever_ready, impl->settings.dial_timeout)) {
    std::string why;
    impl->Locked([&impl, &why] { why = impl->last_error; });
    return impl->Unavailable("unreachable within " +
                             std::to_string(impl->settings.dial_timeout.count()) + " ms: " + why);
  }
  return absl::OkStatus();
}

void Client::Command(std::vector<std::string> args,
                     ReplyCallback done,
                     std::chrono::milliseconds extra_deadline) {
  auto command = std::make_shared<PendingCommand>();
  command->args = std::move(args);
  command->done = std::move(done);
  command->deadline = std::chrono::steady_clock::now() + impl_->settings.timeout + extra_deadline;
  command->blocking = extra_deadline.count() > 0;
  Submit(std::move(command));
}

void Client::EvalSha(const Script& script,
                     std::vector<std::string> keys,
                     std::vector<std::string> args,
                     ReplyCallback done) {
  auto command = std::make_shared<PendingCommand>();
  command->script = &script;
  command->script_keys = std::move(keys);
  command->script_args = std::move(args);
  command->done = std::move(done);
  command->deadline = std::chrono::steady_clock::now() + impl_->settings.timeout;
  Submit(std::move(command));
}

void Client::Submit(std::shared_ptr<PendingCommand> command) {
  command->loop_callback = impl_->dispatcher->IsLoopThread();
  Impl::Connection* claimed = nullptr;
  std::shared_ptr<PendingCommand> own = command;
  impl_->Locked([this, &command, &claimed] { impl_->Dispatch(std::move(command), &claimed); });
  if (claimed != nullptr) {
    auto impl = impl_;  // CallerRead outlives nothing it uses
    impl->CallerRead(*claimed, *own);
  }
}

void Client::Shutdown() {
  // Returns at once when the loop has stopped (nothing runs there any more).
  auto impl = impl_;
  impl->dispatcher->RunAndWait([impl] { impl->Locked([&impl] { impl->ShutdownOnLoop(); }); },
                               std::chrono::seconds(5));
}

}  // namespace ottava::components::redis
