#include "test/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace ottava::test {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

pid_t Spawn(const std::vector<std::string>& argv,
            const std::string& out_path,
            const std::string& err_path) {
  pid_t pid = fork();
  if (pid != 0) {
    return pid;
  }
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int null = open("/dev/null", O_RDONLY);
  dup2(null, 0);
  dup2(out, 1);
  dup2(err, 2);
  // Children must not inherit a blocked-signal mask from the test runner.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  execvp(args[0], args.data());  // a bare name ("curl") is looked up on PATH
  _exit(127);
}

// Waits for `pid` up to `timeout`; returns the exit code, -N for signal N, or -1000 on timeout.
int WaitPid(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
      }
      if (WIFSIGNALED(status)) {
        return -WTERMSIG(status);
      }
    }
    if (r < 0) {
      return -1001;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return -1000;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

std::string BinDir() {
  const char* dir = std::getenv("OTTAVA_BIN_DIR");
  return dir != nullptr ? dir : "build/bin";
}

std::string MakeTempDir() {
  std::string pattern = (std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp");
  pattern += "/ottava-test-XXXXXX";
  char* dir = mkdtemp(pattern.data());
  return dir != nullptr ? dir : "/tmp";
}

RunResult RunProcess(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  const std::string dir = MakeTempDir();
  const std::string out = dir + "/out";
  const std::string err = dir + "/err";
  pid_t pid = Spawn(argv, out, err);
  RunResult result;
  result.exit_code = WaitPid(pid, timeout);
  if (result.exit_code == -1000) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  rmdir(dir.c_str());
  return result;
}

bool WaitFor(const std::function<bool()>& ready, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

nlohmann::json FlowControlledMesh(const std::string& upstream) {
  using nlohmann::json;
  return json{
      {"workers", 2},
      {"listeners",
       {{{"name", "http"}, {"address", "127.0.0.1:0"}, {"protocol", "http1"}, {"router", "r"}}}},
      {"routers",
       {{{"name", "r"},
         {"filters", {{{"name", "flow_control"}}}},
         {"routes", {{{"match", json::object()}, {"cluster", "c"}, {"timeout_ms", 5000}}}}}}},
      {"clusters",
       {{{"name", "c"},
         {"protocol", "http1"},
         {"max_requests", 10000},
         {"max_pending", 10000},
         {"hosts", {{{"address", upstream}}}}}}}};
}

nlohmann::json InMemoryConfig(const std::string& app_id) {
  return nlohmann::json{{"app", {{"id", app_id}}},
                        {"grpc", {{"address", "127.0.0.1:0"}}},
                        {"actuator", {{"address", "127.0.0.1:0"}}},
                        {"dapr", {{"http_address", "127.0.0.1:0"}}},
                        {"shutdown", {{"drain_seconds", 2}}},
                        {"components",
                         {{"state", {{"state", {{"type", "in-memory"}}}}},
                          {"lock", {{"lock", {{"type", "in-memory"}}}}},
                          {"sequencer", {{"sequencer", {{"type", "in-memory"}}}}},
                          {"config_store", {{"config", {{"type", "in-memory"}}}}},
                          {"pub_subs", {{"pubsub", {{"type", "in-memory"}}}}}}}};
}

absl::StatusOr<std::unique_ptr<Sidecar>> Sidecar::Start(
    const nlohmann::json& config,
    std::chrono::milliseconds timeout,
    const std::vector<std::string>& extra_args) {
  std::unique_ptr<Sidecar> sidecar(new Sidecar());
  sidecar->dir_ = MakeTempDir();
  const std::string config_file = sidecar->dir_ + "/config.json";
  std::ofstream(config_file) << config.dump(2);
  sidecar->ready_file_ = sidecar->dir_ + "/ready.json";
  sidecar->stderr_file_ = sidecar->dir_ + "/stderr";
  std::vector<std::string> argv{BinDir() + "/ottava", "--config", config_file, "--ready-file",
                                sidecar->ready_file_};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  sidecar->pid_ = Spawn(argv, sidecar->dir_ + "/stdout", sidecar->stderr_file_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string ready = ReadFile(sidecar->ready_file_);
    if (!ready.empty()) {
      nlohmann::json parsed = nlohmann::json::parse(ready, nullptr, false);
      if (!parsed.is_discarded()) {
        sidecar->grpc_ = parsed.value("grpc", "");
        sidecar->actuator_ = parsed.value("actuator", "");
        sidecar->dapr_http_ = parsed.value("dapr_http", "");
        return sidecar;
      }
    }
    int status = 0;
    if (waitpid(sidecar->pid_, &status, WNOHANG) == sidecar->pid_) {
      sidecar->pid_ = -1;
      return absl::InternalError("ottava exited before it was ready (status " +
                                 std::to_string(status) + "): " + sidecar->Stderr());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return absl::DeadlineExceededError("ottava did not become ready: " + sidecar->Stderr());
}

Sidecar::~Sidecar() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

int Sidecar::Stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    return -1001;
  }
  kill(pid_, signal);
  int code = WaitPid(pid_, timeout);
  if (code == -1000) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
  return code;
}

std::string Sidecar::Stderr() const {
  return ReadFile(stderr_file_);
}

std::optional<double> MetricSample(const std::string& page, const std::string& series) {
  const std::string prefix = series + " ";
  for (size_t at = 0; (at = page.find(prefix, at)) != std::string::npos; at += prefix.size()) {
    if (at == 0 || page[at - 1] == '\n') {
      return std::stod(page.substr(at + prefix.size()));
    }
  }
  return std::nullopt;
}

}  // namespace ottava::test
