#include "test/support/redis_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "test/support/process.h"

namespace ottava::test {

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(Options options) {
  std::unique_ptr<RedisServer> server(new RedisServer());
  server->options_ = std::move(options);
  server->dir_ = MakeTempDir();
  // A port can be taken between FreePort() and bind: try a few.
  absl::Status status;
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = FreePort();
    status = server->Launch();
    if (status.ok()) {
      return server;
    }
  }
  return status;
}

absl::Status RedisServer::Launch() {
  std::vector<std::string> argv = {"/usr/bin/redis-server",
                                   "--bind",
                                   "127.0.0.1",
                                   "--port",
                                   std::to_string(port_),
                                   "--dir",
                                   dir_,
                                   "--save",
                                   "",
                                   "--daemonize",
                                   "no",
                                   "--protected-mode",
                                   "no",
                                   "--loglevel",
                                   "warning",
                                   "--logfile",
                                   dir_ + "/redis.log"};
  if (options_.append_only) {
    argv.insert(argv.end(), {"--appendonly", "yes", "--appendfsync", "always"});
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  pid_ = fork();
  if (pid_ == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  const bool up = WaitFor(
      [this] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;  // exited: stop waiting
        }
        return Cli({"PING"}) == "PONG";
      },
      std::chrono::seconds(10));
  if (!up || pid_ < 0) {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    return absl::UnavailableError("redis-server did not start on port " + std::to_string(port_));
  }
  return absl::OkStatus();
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  RunProcess({"/bin/rm", "-rf", dir_});
}

void RedisServer::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

void RedisServer::Pause() {
  kill(pid_, SIGSTOP);
}
void RedisServer::Resume() {
  kill(pid_, SIGCONT);
}

absl::Status RedisServer::Restart() {
  Kill();
  // The old socket may linger briefly; Launch retries through WaitFor.
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (Launch().ok()) {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::UnavailableError("redis-server did not restart on port " + std::to_string(port_));
}

std::string RedisServer::Cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "-h", "127.0.0.1", "-p",
                                   std::to_string(port_)};
  for (size_t i = 0; i + 1 < options_.extra_args.size(); ++i) {
    if (options_.extra_args[i] == "--requirepass") {
      argv.insert(argv.end(), {"-a", options_.extra_args[i + 1], "--no-auth-warning"});
    }
  }
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult result = RunProcess(argv, std::chrono::seconds(5));
  std::string out = result.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  return out;
}

}  // namespace ottava::test
