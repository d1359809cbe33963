#include "runtime/upgrade/upgrade.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/logging.h"
#include "common/status.h"

extern char** environ;

namespace ottava::runtime::upgrade {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kHelloTimeout = std::chrono::seconds(5);

std::string Describe(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return std::string("killed by signal ") + std::to_string(WTERMSIG(wait_status)) + " (" +
           strsignal(WTERMSIG(wait_status)) + ")";
  }
  return "ended";
}

}  // namespace

MigrationQueue::~MigrationQueue() {
  absl::MutexLock lock(&mu_);
  for (MigratingConnection& connection : queue_) {
    ::close(connection.fd);
  }
}

bool MigrationQueue::Push(MigratingConnection connection) {
  absl::MutexLock lock(&mu_);
  if (closed_) {
    ::close(connection.fd);
    return false;
  }
  queue_.push_back(std::move(connection));
  return true;
}

std::optional<MigratingConnection> MigrationQueue::Pop() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](MigrationQueue* queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue->mu_) {
        return queue->closed_ || !queue->queue_.empty();
      },
      this));
  if (queue_.empty()) {
    return std::nullopt;
  }
  MigratingConnection next = std::move(queue_.front());
  queue_.pop_front();
  return next;
}

void MigrationQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

UpgradeServer::UpgradeServer(int control_fd,
                             ServerSettings settings,
                             HandoverSource& source,
                             stats::Store& stats)
    : control_fd_(control_fd),
      settings_(std::move(settings)),
      source_(source),
      completed_(stats.CounterFor("ottava_upgrade_handovers_total",
                                  "Upgrade handovers this process answered, by outcome",
                                  {{"outcome", "completed"}})),
      aborted_(stats.CounterFor("ottava_upgrade_handovers_total",
                                "Upgrade handovers this process answered, by outcome",
                                {{"outcome", "aborted"}})),
      refused_(stats.CounterFor("ottava_upgrade_handovers_total",
                                "Upgrade handovers this process answered, by outcome",
                                {{"outcome", "refused"}})),
      migrated_(stats.CounterFor("ottava_upgrade_migrated_connections_total",
                                 "Bolt and Dubbo downstream connections moved between processes "
                                 "on upgrade: sent to the next one, received from the previous",
                                 {{"direction", "sent"}})),
      migration_errors_(stats.CounterFor(
          "ottava_upgrade_migration_errors_total",
          "Connections that were to migrate and were closed instead (could not be sent or "
          "adopted)")) {}

UpgradeServer::~UpgradeServer() {
  Stop();
  ::close(control_fd_);
}

absl::Status UpgradeServer::Start() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    return absl::InternalError(std::string("eventfd: ") + std::strerror(errno));
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void UpgradeServer::Stop() {
  if (!thread_.joinable()) {
    return;
  }
  stopping_.store(true);
  // After a handover the thread sends the connections still queued, then "end", and returns.
  migrations_->Close();
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  if (int connection = connection_.load(); connection >= 0 && !handed_over_.load()) {
    ::shutdown(connection, SHUT_RDWR);  // wakes a handover in progress
  }
  thread_.join();
  ::close(wake_fd_);
  wake_fd_ = -1;
}

void UpgradeServer::Run() {
  pthread_setname_np(pthread_self(), "ottava-upgrade");
  pollfd fds[2] = {{control_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stopping_.load() && !handed_over_.load()) {
    int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      OTTAVA_LOG(Runtime, error, "upgrade: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    int connection = ::accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) {
      continue;
    }
    connection_.store(connection);
    Handle(connection);
    connection_.store(-1);
    ::close(connection);
  }
}

void UpgradeServer::Handle(int connection) {
  const auto start = Clock::now();
  absl::StatusOr<Message> hello = ReceiveMessage(connection, start + kHelloTimeout);
  if (!hello.ok() || hello->type() != "hello") {
    aborted_.Inc();
    OTTAVA_LOG(Runtime, warn, "upgrade: a peer on {} did not say hello: {}", settings_.socket_path,
               hello.ok() ? "got '" + hello->type() + "'" : std::string(hello.status().message()));
    return;
  }
  const int version = hello->body.value("version", 0);
  const pid_t pid = hello->body.value("pid", 0);
  if (version != kHandoverVersion) {
    refused_.Inc();
    std::string error = "handover protocol version mismatch: the running Ottava (pid " +
                        std::to_string(getpid()) + ") speaks version " +
                        std::to_string(kHandoverVersion) + ", the new process (pid " +
                        std::to_string(pid) + ") speaks version " + std::to_string(version) +
                        "; upgrade refused (stop the old process and start the new one instead)";
    OTTAVA_LOG(Runtime, warn, "upgrade: {}", error);
    [[maybe_unused]] absl::Status sent = SendMessage(
        connection,
        {{"type", "refused"}, {"version", kHandoverVersion}, {"error", std::move(error)}});
    return;
  }
  OTTAVA_LOG(Runtime, info, "upgrade: new process pid {} connected", pid);
  auto abort = [&](const absl::Status& status) {
    aborted_.Inc();
    OTTAVA_LOG(Runtime, warn,
               "upgrade: handover to pid {} aborted ({}); this process keeps serving", pid,
               status.message());
  };
  if (absl::Status status = SendMessage(connection, {{"type", "welcome"},
                                                     {"version", kHandoverVersion},
                                                     {"pid", getpid()},
                                                     {"generation", settings_.generation},
                                                     {"ready_file", settings_.ready_file}});
      !status.ok()) {
    abort(status);
    return;
  }
  // The new process initialises its components before it asks for the sockets.
  absl::StatusOr<Message> take = Expect(connection, "take_sockets", start + settings_.timeout);
  if (!take.ok()) {
    abort(take.status());
    return;
  }
  std::vector<std::pair<std::string, int>> sockets = source_.ListeningSockets();
  sockets.emplace_back("control", control_fd_);
  nlohmann::json names = nlohmann::json::array();
  std::vector<int> fds;
  for (const auto& [name, fd] : sockets) {
    names.push_back(name);
    fds.push_back(fd);
  }
  if (absl::Status status =
          SendMessage(connection, {{"type", "sockets"}, {"names", std::move(names)}}, fds);
      !status.ok()) {
    abort(status);
    return;
  }
  absl::StatusOr<Message> ready = Expect(connection, "ready", start + settings_.timeout);
  if (!ready.ok()) {
    abort(ready.status());
    return;
  }
  std::map<std::string, std::string> adopt;
  if (auto found = ready->body.find("adopt"); found != ready->body.end() && found->is_object()) {
    for (const auto& [listener, protocol] : found->items()) {
      if (protocol.is_string()) {
        adopt[listener] = protocol.get<std::string>();
      }
    }
  }
  // From here on the new process serves: this one stops, whatever happens to the connection.
  const auto stop_start = Clock::now();
  source_.StopAccepting();
  const auto stopped_at = Clock::now();
  completed_.Inc();  // before the export, so the new process's count includes this handover
  std::vector<StateChunk> chunks = source_.ExportState();
  const auto exported_at = Clock::now();
  const auto stop_us =
      std::chrono::duration_cast<std::chrono::microseconds>(stopped_at - stop_start).count();
  const auto freeze_us =
      std::chrono::duration_cast<std::chrono::microseconds>(exported_at - stopped_at).count();
  handed_over_.store(true);
  absl::Status sent = absl::OkStatus();
  uint64_t state_bytes = 0;
  for (size_t i = 0; i < chunks.size() && sent.ok(); ++i) {
    state_bytes += chunks[i].payload.size();
    sent = SendMessage(connection,
                       {{"type", "state"},
                        {"component", chunks[i].component},
                        {"component_type", chunks[i].component_type},
                        {"format", chunks[i].format},
                        {"seq", i}},
                       {}, chunks[i].payload);
    chunks[i].payload = std::string();  // sent: release the memory as we go
  }
  if (sent.ok()) {
    sent = SendMessage(connection, {{"type", "stopped"},
                                    {"stop_us", stop_us},
                                    {"freeze_us", freeze_us},
                                    {"chunks", chunks.size()},
                                    {"state_bytes", state_bytes}});
  }
  if (!sent.ok()) {
    OTTAVA_LOG(Runtime, warn, "upgrade: cannot send the state to pid {}: {}", pid, sent.message());
  }
  OTTAVA_LOG(Runtime, info,
             "upgrade: pid {} took over in {} ms (stop accepting {} us, quiesce + freeze + export "
             "{} us, {} state chunks, {} bytes); draining and exiting",
             pid,
             std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count(),
             stop_us, freeze_us, chunks.size(), state_bytes);
  source_.HandedOver(pid, adopt, migrations_);
  if (sent.ok()) {
    SendMigrations(connection, pid);
  }
}

void UpgradeServer::SendMigrations(int connection, pid_t pid) {
  // A new process that stops reading must not hold this one forever: each send is bounded, and
  // after a failed one the stream may be cut mid-message, so nothing more is sent.
  timeval limit{static_cast<time_t>(kMigrationSendTimeout.count()), 0};
  ::setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  int64_t sent = 0;
  absl::Status broken = absl::OkStatus();
  while (std::optional<MigratingConnection> next = migrations_->Pop()) {
    if (broken.ok()) {
      broken = SendMessage(connection, {{"type", "connection"}, {"listener", next->listener}},
                           {next->fd}, next->unread);
      if (!broken.ok()) {
        OTTAVA_LOG(Runtime, warn,
                   "upgrade: cannot send a connection to pid {} ({}): closing the rest", pid,
                   broken.message());
      }
    }
    ::close(next->fd);
    if (broken.ok()) {
      migrated_.Inc();
      ++sent;
    } else {
      migration_errors_.Inc();
    }
  }
  if (broken.ok()) {
    [[maybe_unused]] absl::Status status =
        SendMessage(connection, {{"type", "end"}, {"connections", sent}});
  }
  OTTAVA_LOG(Runtime, info, "upgrade: {} connection(s) migrated to pid {}", sent, pid);
}

absl::StatusOr<std::unique_ptr<TakeoverClient>> TakeoverClient::Connect(
    const std::string& socket_path) {
  absl::StatusOr<int> fd = ConnectControlSocket(socket_path);
  if (!fd.ok()) {
    return fd.status();
  }
  std::unique_ptr<TakeoverClient> client(new TakeoverClient(*fd));
  const int version_override = [] {
    // Lets the end-to-end tests speak another protocol version with the same binary.
    const char* text = std::getenv("OTTAVA_TEST_HANDOVER_VERSION");
    return text != nullptr ? std::atoi(text) : kHandoverVersion;
  }();
  OTTAVA_RETURN_IF_ERROR(
      SendMessage(*fd, {{"type", "hello"}, {"version", version_override}, {"pid", getpid()}}));
  absl::StatusOr<Message> welcome = Expect(*fd, "welcome", Clock::now() + kHelloTimeout);
  if (!welcome.ok()) {
    return welcome.status();
  }
  client->generation_ = welcome->body.value("generation", int64_t{0});
  client->old_pid_ = welcome->body.value("pid", 0);
  client->ready_file_ = welcome->body.value("ready_file", std::string());
  return client;
}

TakeoverClient::~TakeoverClient() {
  ::close(fd_);
}

absl::StatusOr<std::map<std::string, int>> TakeoverClient::TakeSockets(
    std::chrono::seconds timeout) {
  OTTAVA_RETURN_IF_ERROR(SendMessage(fd_, {{"type", "take_sockets"}}));
  absl::StatusOr<Message> sockets = Expect(fd_, "sockets", Clock::now() + timeout);
  if (!sockets.ok()) {
    return sockets.status();
  }
  const nlohmann::json& names = sockets->body["names"];
  if (!names.is_array() || names.size() != sockets->fds.size()) {
    return absl::InvalidArgumentError("the old process sent " +
                                      std::to_string(sockets->fds.size()) + " fds for " +
                                      std::to_string(names.size()) + " socket names");
  }
  std::map<std::string, int> out;
  for (size_t i = 0; i < names.size(); ++i) {
    out[names[i].get<std::string>()] = sockets->fds[i];
    sockets->fds[i] = -1;
  }
  return out;
}

absl::StatusOr<nlohmann::json> TakeoverClient::Ready(
    std::chrono::seconds timeout,
    const std::function<void(StateChunk&&)>& on_chunk,
    const std::map<std::string, std::string>& adopt) {
  nlohmann::json adopt_json = nlohmann::json::object();
  for (const auto& [listener, protocol] : adopt) {
    adopt_json[listener] = protocol;
  }
  OTTAVA_RETURN_IF_ERROR(
      SendMessage(fd_, {{"type", "ready"}, {"pid", getpid()}, {"adopt", std::move(adopt_json)}}));
  const auto deadline = Clock::now() + timeout;
  size_t received = 0;
  while (true) {
    absl::StatusOr<Message> message = ReceiveMessage(fd_, deadline);
    if (!message.ok()) {
      return absl::Status(message.status().code(),
                          "waiting for 'stopped': " + std::string(message.status().message()));
    }
    if (message->type() == "state") {
      StateChunk chunk;
      chunk.component = message->body.value("component", std::string());
      chunk.component_type = message->body.value("component_type", std::string());
      chunk.format = message->body.value("format", uint32_t{0});
      chunk.payload = std::move(message->payload);
      ++received;
      if (on_chunk) {
        on_chunk(std::move(chunk));
      }
      continue;
    }
    if (message->type() != "stopped") {
      return absl::InvalidArgumentError("expected 'state' or 'stopped', got '" + message->type() +
                                        "'");
    }
    nlohmann::json out = message->body;
    if (out.value("chunks", size_t{0}) != received) {
      return absl::DataLossError("the old process sent " + std::to_string(received) +
                                 " state chunks of " +
                                 out.value("chunks", nlohmann::json()).dump());
    }
    return out;
  }
}

absl::StatusOr<int64_t> TakeoverClient::ReceiveConnections(
    const std::function<void(MigratingConnection&&)>& on_connection) {
  // The old process sends until it has drained (upgrade.drain_seconds); Cancel() ends the wait.
  const Deadline far = Clock::now() + std::chrono::hours(24);
  int64_t received = 0;
  while (true) {
    absl::StatusOr<Message> message = ReceiveMessage(fd_, far);
    if (!message.ok()) {
      return absl::Status(message.status().code(), "waiting for migrated connections: " +
                                                       std::string(message.status().message()));
    }
    if (message->type() == "end") {
      return received;
    }
    if (message->type() != "connection" || message->fds.size() != 1) {
      return absl::InvalidArgumentError("expected 'connection' with one fd or 'end', got '" +
                                        message->type() + "' with " +
                                        std::to_string(message->fds.size()) + " fds");
    }
    MigratingConnection connection;
    connection.listener = message->body.value("listener", std::string());
    connection.fd = message->fds[0];
    message->fds[0] = -1;
    connection.unread = std::move(message->payload);
    ++received;
    on_connection(std::move(connection));
  }
}

void TakeoverClient::Cancel() {
  ::shutdown(fd_, SHUT_RDWR);
}

void ReportStatus(int fd, const nlohmann::json& report) {
  if (fd < 0) {
    return;
  }
  const std::string line = report.dump() + "\n";
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

absl::StatusOr<SpawnResult> SpawnNewProcess(std::vector<std::string> argv,
                                            std::chrono::seconds timeout,
                                            bool detach,
                                            const std::function<void(pid_t)>& on_started) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(std::string("pipe: ") + std::strerror(errno));
  }
  argv.push_back("--takeover-status-fd");
  argv.push_back(std::to_string(kStatusFd));
  std::vector<char*> args;
  for (std::string& arg : argv) {
    args.push_back(arg.data());
  }
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 to another number clears close-on-exec; the pipe's write end must not already be 3.
  int write_end = pipe_fds[1];
  if (write_end == kStatusFd) {
    write_end = fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, kStatusFd + 1);
  }
  posix_spawn_file_actions_adddup2(&actions, write_end, kStatusFd);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attributes, &empty);
  short flags = POSIX_SPAWN_SETSIGMASK;
  if (detach) {
    flags |= POSIX_SPAWN_SETSID;
  }
  posix_spawnattr_setflags(&attributes, flags);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (write_end != pipe_fds[1]) {
    ::close(write_end);
  }
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    return absl::UnavailableError("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  if (on_started) {
    on_started(pid);
  }

  // Read the report: one JSON line, or EOF when the process ended without one.
  const auto deadline = Clock::now() + timeout;
  std::string text;
  bool timed_out = false;
  while (text.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno != EINTR) {
      break;
    }
    if (ready <= 0) {
      continue;
    }
    char buffer[4096];
    ssize_t n = ::read(pipe_fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);

  nlohmann::json report = nlohmann::json::parse(text.substr(0, text.find('\n')), nullptr, false);
  if (!timed_out && report.is_object() && report.value("ok", false)) {
    return SpawnResult{pid, std::move(report)};
  }
  if (timed_out) {
    ::kill(pid, SIGKILL);
  }
  // Failed: collect the process (it exits right after reporting) for its exit status.
  int wait_status = 0;
  pid_t waited = 0;
  const auto reap_deadline = Clock::now() + std::chrono::seconds(timed_out ? 5 : 10);
  while ((waited = ::waitpid(pid, &wait_status, WNOHANG)) == 0 && Clock::now() < reap_deadline) {
    ::poll(nullptr, 0, 5);
  }
  std::string error;
  if (report.is_object() && report.contains("error")) {
    error = report["error"].get<std::string>();
  } else if (timed_out) {
    error = "no answer within " + std::to_string(timeout.count()) + " s: killed";
  } else {
    error = "ended before it took over";
  }
  if (waited == pid) {
    error += " (new process pid " + std::to_string(pid) + " " + Describe(wait_status) + ")";
  }
  if (report.is_object() && report.value("exit_code", 0) == 2) {
    return absl::FailedPreconditionError(error);
  }
  return absl::UnavailableError(error);
}

}  // namespace ottava::runtime::upgrade
