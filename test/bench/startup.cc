// bench_startup: time from exec to ready file, and idle RSS, of a server that writes a ready file.
//
//   bench_startup [--runs 5] [--settle-ms 1000] [--timeout-ms 10000] [--log-dir DIR]
//                 -- PROGRAM ARG...
//
// Each run starts PROGRAM with its arguments, where the literal "{ready}" is replaced by a fresh
// ready-file path, and times from just before fork() until the ready file appears (inotify on its
// directory, with a short poll as a fallback). It then lets the process settle for --settle-ms,
// reads VmRSS from /proc/PID/status, sends SIGTERM (SIGKILL after 10 s) and reaps it. The child's
// output goes to DIR/run-N.log (default: a temporary directory, removed after a successful run) and
// is printed on failure.
//
// Output: one JSON object on stdout with per-run values and medians. Exit 0 when every run became
// ready, 1 otherwise, 2 on bad flags.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test/bench/bench_util.h"

namespace ottava::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct RunResult {
  double startup_ms = 0;
  int64_t rss_kib = 0;
  int exit_code = 0;  // -N when killed by signal N
};

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return WIFSIGNALED(status) ? -WTERMSIG(status) : -1000;
}

// Sends SIGTERM, waits up to `grace`, then SIGKILL; returns the decoded wait status.
int Stop(pid_t pid, std::chrono::milliseconds grace) {
  ::kill(pid, SIGTERM);
  const Clock::time_point deadline = Clock::now() + grace;
  int status = 0;
  while (Clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return DecodeWaitStatus(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return DecodeWaitStatus(status);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

absl::StatusOr<RunResult> RunOnce(const std::vector<std::string>& command,
                                  const std::string& dir,
                                  int run,
                                  std::chrono::milliseconds settle,
                                  std::chrono::milliseconds timeout) {
  const std::string ready = dir + "/ready-" + std::to_string(run) + ".json";
  const std::string log = dir + "/run-" + std::to_string(run) + ".log";
  std::vector<std::string> args;
  for (const std::string& arg : command) {
    std::string replaced = arg;
    for (size_t at = replaced.find("{ready}"); at != std::string::npos;
         at = replaced.find("{ready}", at + ready.size())) {
      replaced.replace(at, 7, ready);
    }
    args.push_back(std::move(replaced));
  }
  std::vector<char*> argv;
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);

  const int inotify = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify < 0 ||
      ::inotify_add_watch(inotify, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    return absl::InternalError("inotify on " + dir + " failed");
  }
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    ::close(inotify);
    return absl::InternalError("cannot create " + log);
  }

  const Clock::time_point start = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child dies with us, so an interrupted benchmark leaves nothing behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    std::perror("execv");
    std::_Exit(127);
  }
  ::close(log_fd);
  if (pid < 0) {
    ::close(inotify);
    return absl::InternalError("fork failed");
  }

  const Clock::time_point deadline = start + timeout;
  bool is_ready = false;
  Clock::time_point ready_at;
  while (Clock::now() < deadline) {
    pollfd event{inotify, POLLIN, 0};
    if (::poll(&event, 1, 5) > 0) {
      char buffer[4096];
      while (::read(inotify, buffer, sizeof(buffer)) > 0) {
      }
    }
    if (::access(ready.c_str(), F_OK) == 0) {
      ready_at = Clock::now();
      is_ready = true;
      break;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ::close(inotify);
      return absl::InternalError(args[0] + " exited with " +
                                 std::to_string(DecodeWaitStatus(status)) +
                                 " before writing its ready file; output:\n" + ReadFile(log));
    }
  }
  ::close(inotify);
  if (!is_ready) {
    Stop(pid, std::chrono::seconds(10));
    return absl::DeadlineExceededError(args[0] + " wrote no ready file within " +
                                       std::to_string(timeout.count()) + " ms; output:\n" +
                                       ReadFile(log));
  }

  RunResult result;
  result.startup_ms = std::chrono::duration<double, std::milli>(ready_at - start).count();
  std::this_thread::sleep_for(settle);
  const absl::StatusOr<int64_t> rss = ReadVmRssKib(pid);
  result.exit_code = Stop(pid, std::chrono::seconds(10));
  if (!rss.ok()) {
    return absl::InternalError(args[0] + " died while idle (exit " +
                               std::to_string(result.exit_code) + "); output:\n" + ReadFile(log));
  }
  result.rss_kib = *rss;
  return result;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int Run(int argc, char** argv) {
  auto flags = Flags::Parse(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_startup: %s\n", flags.status().ToString().c_str());
    return 2;
  }
  const auto runs = flags->Int("runs", 5, 1, 1000);
  const auto settle_ms = flags->Int("settle-ms", 1000, 0, 600000);
  const auto timeout_ms = flags->Int("timeout-ms", 10000, 1, 600000);
  const std::string log_dir = flags->String("log-dir", "");
  for (const absl::Status& status :
       {runs.status(), settle_ms.status(), timeout_ms.status(), flags->CheckAllRead()}) {
    if (!status.ok()) {
      std::fprintf(stderr, "bench_startup: %s\n", status.ToString().c_str());
      return 2;
    }
  }
  if (flags->positional().empty()) {
    std::fprintf(stderr, "bench_startup: give the command after --\n");
    return 2;
  }

  std::string dir = log_dir;
  if (dir.empty()) {
    dir = "/tmp/ottava-bench-startup-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) {
      std::perror("bench_startup: mkdtemp");
      return 1;
    }
  } else {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) {
      std::fprintf(stderr, "bench_startup: cannot create %s: %s\n", dir.c_str(),
                   error.message().c_str());
      return 1;
    }
  }

  std::vector<double> startup_ms;
  std::vector<double> rss_kib;
  nlohmann::ordered_json exit_codes = nlohmann::ordered_json::array();
  for (int64_t run = 0; run < *runs; ++run) {
    const absl::StatusOr<RunResult> result =
        RunOnce(flags->positional(), dir, static_cast<int>(run),
                std::chrono::milliseconds(*settle_ms), std::chrono::milliseconds(*timeout_ms));
    if (!result.ok()) {
      std::fprintf(stderr, "bench_startup: run %lld: %s\n(logs in %s)\n",
                   static_cast<long long>(run), result.status().ToString().c_str(), dir.c_str());
      return 1;
    }
    startup_ms.push_back(result->startup_ms);
    rss_kib.push_back(static_cast<double>(result->rss_kib));
    exit_codes.push_back(result->exit_code);
  }

  nlohmann::ordered_json out;
  out["command"] = flags->positional().front();
  out["runs"] = *runs;
  out["startup_ms"] = startup_ms;
  out["startup_ms_median"] = Median(startup_ms);
  out["idle_rss_kib"] = rss_kib;
  out["idle_rss_kib_median"] = Median(rss_kib);
  out["exit_codes"] = exit_codes;
  std::printf("%s\n", out.dump().c_str());
  if (log_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  return 0;
}

}  // namespace
}  // namespace ottava::bench

int main(int argc, char** argv) {
  return ottava::bench::Run(argc, argv);
}
