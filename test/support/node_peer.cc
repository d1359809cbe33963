#include "test/support/node_peer.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "test/support/process.h"

namespace ottava::test {

std::string InteropDir(const std::string& peer) {
  const char* source = std::getenv("OTTAVA_SOURCE_DIR");
  return std::string(source != nullptr ? source : ".") + "/test/interop/" + peer;
}

bool InteropInstalled(const std::string& peer, const std::string& package) {
  struct stat st {};
  return stat((InteropDir(peer) + "/node_modules/" + package + "/package.json").c_str(), &st) == 0;
}

std::unique_ptr<NodeServer> NodeServer::Start(const std::string& script, const std::string& name) {
  int fds[2];
  if (pipe(fds) != 0) {
    return nullptr;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl("/usr/bin/env", "env", "node", script.c_str(), "--port", "0", "--name", name.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  auto server = std::unique_ptr<NodeServer>(new NodeServer(pid, fds[0]));
  std::string line;
  if (!server->ReadLine(&line, std::chrono::seconds(20))) {
    ADD_FAILURE() << script << " " << name << " printed no ready line";
    return nullptr;
  }
  nlohmann::json ready = nlohmann::json::parse(line, nullptr, false);
  if (!ready.is_object() || !ready.value("ready", false)) {
    ADD_FAILURE() << script << " " << name << " ready line: " << line;
    return nullptr;
  }
  server->port_ = ready["port"].get<int>();
  return server;
}

NodeServer::~NodeServer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    WaitFor(
        [&] {
          int status = 0;
          return waitpid(pid_, &status, WNOHANG) != 0;
        },
        std::chrono::seconds(5));
    kill(pid_, SIGKILL);  // harmless if it already exited and was reaped: ESRCH
    waitpid(pid_, nullptr, WNOHANG);
  }
  close(out_);
}

bool NodeServer::ReadLine(std::string* line, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string buffer;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) {
      continue;
    }
    char c;
    ssize_t n = read(out_, &c, 1);
    if (n <= 0) {
      return false;
    }
    if (c == '\n') {
      *line = buffer;
      return true;
    }
    buffer.push_back(c);
  }
  return false;
}

}  // namespace ottava::test
