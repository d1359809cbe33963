#include "test/support/kafka_cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "test/support/process.h"

namespace ottava::test {

absl::StatusOr<std::unique_ptr<KafkaCluster>> KafkaCluster::Start(
    int brokers, const std::vector<std::pair<std::string, int>>& topics) {
  const std::string dir = MakeTempDir();
  const std::string bootstrap_file = dir + "/bootstrap";
  std::vector<std::string> argv = {BinDir() + "/kafka_mock", "--brokers", std::to_string(brokers),
                                   "--bootstrap-file", bootstrap_file};
  for (const auto& [name, partitions] : topics) {
    argv.push_back("--topic");
    argv.push_back(name + ":" + std::to_string(partitions));
  }
  int in[2];
  int out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe2 failed");
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> args;
    for (auto& arg : argv) {
      args.push_back(arg.data());
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  auto cluster = std::unique_ptr<KafkaCluster>(new KafkaCluster());
  cluster->pid_ = pid;
  cluster->stdin_fd_ = in[1];
  cluster->stdout_fd_ = out[0];
  const bool ready = WaitFor(
      [&] {
        std::ifstream file(bootstrap_file);
        std::getline(file, cluster->bootstrap_);
        return !cluster->bootstrap_.empty() || waitpid(pid, nullptr, WNOHANG) == pid;
      },
      std::chrono::seconds(10));
  if (!ready || cluster->bootstrap_.empty()) {
    return absl::UnavailableError("kafka_mock did not write its bootstrap address (" + argv[0] +
                                  ")");
  }
  return cluster;
}

KafkaCluster::~KafkaCluster() {
  if (stdin_fd_ >= 0) {
    close(stdin_fd_);
  }
  if (stdout_fd_ >= 0) {
    close(stdout_fd_);
  }
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

absl::Status KafkaCluster::Command(const std::string& line) {
  const std::string text = line + "\n";
  if (write(stdin_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return absl::UnavailableError("kafka_mock is gone");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (buffered_.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return absl::DeadlineExceededError("kafka_mock did not answer '" + line + "'");
    }
    pollfd fd = {stdout_fd_, POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    char buffer[512];
    ssize_t n = read(stdout_fd_, buffer, sizeof(buffer));
    if (n <= 0) {
      return absl::UnavailableError("kafka_mock closed its output");
    }
    buffered_.append(buffer, static_cast<size_t>(n));
  }
  const size_t end = buffered_.find('\n');
  const std::string answer = buffered_.substr(0, end);
  buffered_.erase(0, end + 1);
  if (answer != "ok") {
    return absl::InvalidArgumentError("kafka_mock '" + line + "': " + answer);
  }
  return absl::OkStatus();
}

}  // namespace ottava::test
