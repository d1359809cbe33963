// Connection migration on upgrade (issue 10, takeover step 5) between two mesh engines in one
// process, the "old" and the "new": each forwards to its own upstream, so every answer tells
// which process forwarded its request. A raw client controls where the hand-off falls: a request
// still in flight at the old process, a frame split by the hand-off, frames sent while the old
// process waits for its last answer.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "mesh/config/mesh_config.h"
#include "mesh/engine.h"
#include "test/support/bolt_upstream.h"
#include "test/support/dubbo_upstream.h"
#include "test/support/process.h"
#include "test/support/rpc_clients.h"

namespace ottava::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kBoltService[] = "com.example.Echo:1.0";
constexpr char kDubboService[] = "com.example.Echo";

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// One process's mesh: a Bolt listener "bolt_in", a Dubbo listener "dubbo_in" and a second Bolt
// listener "other" (which the new process is told it cannot adopt), all to its own upstreams.
struct Process {
  stats::Store stats;
  std::unique_ptr<BoltUpstream> bolt_upstream;
  std::unique_ptr<DubboUpstream> dubbo_upstream;
  std::unique_ptr<mesh::Engine> engine;

  static std::unique_ptr<Process> Start(const std::string& name) {
    auto process = std::make_unique<Process>();
    auto bolt = BoltUpstream::Start(name);
    auto dubbo = DubboUpstream::Start(name);
    if (!bolt.ok() || !dubbo.ok()) {
      ADD_FAILURE() << "upstreams did not start";
      return nullptr;
    }
    process->bolt_upstream = std::move(*bolt);
    process->dubbo_upstream = std::move(*dubbo);
    json mesh = {
        {"workers", 2},
        {"listeners",
         {{{"name", "bolt_in"}, {"address", "127.0.0.1:0"}, {"protocol", "bolt"}, {"router", "rb"}},
          {{"name", "other"}, {"address", "127.0.0.1:0"}, {"protocol", "bolt"}, {"router", "rb"}},
          {{"name", "dubbo_in"},
           {"address", "127.0.0.1:0"},
           {"protocol", "dubbo"},
           {"router", "rd"}}}},
        {"routers",
         {{{"name", "rb"},
           {"routes", {{{"match", {{"service", kBoltService}}}, {"cluster", "bolt"}}}}},
          {{"name", "rd"},
           {"routes", {{{"match", {{"service", kDubboService}}}, {"cluster", "dubbo"}}}}}}},
        {"clusters",
         {{{"name", "bolt"},
           {"protocol", "bolt"},
           {"hosts", {{{"address", process->bolt_upstream->address()}}}}},
          {{"name", "dubbo"},
           {"protocol", "dubbo"},
           {"hosts", {{{"address", process->dubbo_upstream->address()}}}}}}}};
    auto config = mesh::MeshConfig::Parse(mesh, "/mesh");
    if (!config.ok()) {
      ADD_FAILURE() << config.status();
      return nullptr;
    }
    auto engine = mesh::Engine::Create(std::move(*config), process->stats);
    if (!engine.ok()) {
      ADD_FAILURE() << engine.status();
      return nullptr;
    }
    process->engine = std::move(*engine);
    if (absl::Status status = process->engine->Start(); !status.ok()) {
      ADD_FAILURE() << status;
      return nullptr;
    }
    return process;
  }

  int Port(const std::string& listener) const {
    const std::string address = engine->ListenerAddresses().at(listener);
    return std::stoi(address.substr(address.rfind(':') + 1));
  }

  double Metric(const std::string& series) const {
    return MetricSample(stats.RenderPrometheus(), series).value_or(-1);
  }
};

class MigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_ = Process::Start("old");
    new_ = Process::Start("new");
    ASSERT_TRUE(old_ != nullptr && new_ != nullptr);
  }

  // What the upgrade wires: the old engine's sink adopts straight into the new engine.
  void Upgrade(const std::map<std::string, std::string>& adopt) {
    old_->engine->DrainForUpgrade(
        adopt, [this](const std::string& listener, int fd, std::string unread) {
          migrated_.fetch_add(1);
          EXPECT_TRUE(new_->engine->AdoptConnection(listener, fd, std::move(unread)).ok());
          return true;
        });
  }

  std::unique_ptr<Process> old_;
  std::unique_ptr<Process> new_;
  std::atomic<int> migrated_{0};
};

std::string Upstream(const mesh::bolt::Frame& frame) {
  const std::string* name = frame.headers.Get("upstream");
  return name != nullptr ? *name : "";
}

TEST_F(MigrationTest, BoltConnectionMovesBetweenFramesWithItsUnreadBytes) {
  BoltClient client(old_->Port("bolt_in"), kBoltService);
  ASSERT_TRUE(client.connected());
  client.Send(1, "before");
  auto first = client.Read();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->content.ToString(), "old:before");

  // In flight at the old process when the upgrade starts, and the first half of a frame that the
  // old process reads but cannot decode.
  client.Send(2, "sleep:300:slow");
  const std::string third = BoltClient::RequestFrame(3, "split", kBoltService);
  client.SendRaw(third.substr(0, third.size() / 2));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // read by the old process
  Upgrade(new_->engine->AdoptableListeners());
  // While the old process waits for request 2: the rest of frame 3, then frame 4. The old
  // process no longer reads; the new one decodes both.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  client.SendRaw(third.substr(third.size() / 2));
  client.Send(4, "after");

  std::map<uint32_t, std::pair<std::string, std::string>> answers;  // id -> (content, upstream)
  std::vector<uint32_t> order;
  for (int i = 0; i < 3; ++i) {
    auto frame = client.Read(5000);
    ASSERT_TRUE(frame.has_value()) << "answer " << i << " missing; closed=" << client.closed();
    answers[frame->request_id] = {frame->content.ToString(), Upstream(*frame)};
    order.push_back(frame->request_id);
  }
  EXPECT_EQ(answers[2], std::make_pair(std::string("echo:slow"), std::string("old")));
  EXPECT_EQ(answers[3].first, "new:split");
  EXPECT_EQ(answers[4].first, "new:after");
  EXPECT_EQ(order.front(), 2u) << "the old process answers before it hands the socket over";
  EXPECT_EQ(migrated_.load(), 1);
  EXPECT_EQ(old_->bolt_upstream->requests(), 2u);

  // Same connection, now served by the new process only.
  client.Send(5, "later");
  auto later = client.Read();
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->content.ToString(), "new:later");
  EXPECT_FALSE(client.closed());
  EXPECT_TRUE(
      WaitUntil([&] { return old_->engine->ActiveRequests() == 0; }, std::chrono::seconds(2)));
  // Not counted as an accepted connection of the new process's listener; open there.
  EXPECT_EQ(
      new_->Metric(R"(ottava_mesh_listener_connections_total{listener="bolt_in",protocol="bolt"})"),
      0);
  EXPECT_EQ(new_->Metric(
                R"(ottava_mesh_listener_connections_active{listener="bolt_in",protocol="bolt"})"),
            1);
}

TEST_F(MigrationTest, DubboConnectionMovesToo) {
  DubboClient client(old_->Port("dubbo_in"), kDubboService);
  ASSERT_TRUE(client.connected());
  client.Send(1, "before");
  auto first = client.Read();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(DubboClient::Value(*first), "old:before");
  client.Send(2, "sleep:200:slow");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  Upgrade(new_->engine->AdoptableListeners());
  const std::string third = DubboClient::RequestFrame(3, "split", kDubboService);
  client.SendRaw(third.substr(0, 10));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  client.SendRaw(third.substr(10));
  std::map<uint64_t, std::string> answers;
  for (int i = 0; i < 2; ++i) {
    auto frame = client.Read(5000);
    ASSERT_TRUE(frame.has_value()) << "answer " << i << " missing; closed=" << client.closed();
    answers[frame->request_id] = DubboClient::Value(*frame);
  }
  EXPECT_EQ(answers[2], "echo:slow");
  EXPECT_EQ(answers[3], "new:split");
  EXPECT_EQ(migrated_.load(), 1);
  EXPECT_EQ(old_->dubbo_upstream->requests(), 2u);
  EXPECT_EQ(new_->dubbo_upstream->requests(), 1u);
}

// A listener the new process does not have, or has with another protocol, drains as before: the
// request in flight is answered, then the old process closes the connection (the client
// reconnects); nothing migrates.
TEST_F(MigrationTest, ListenerTheNewProcessCannotAdoptDrainsInstead) {
  BoltClient other(old_->Port("other"), kBoltService);
  BoltClient mismatched(old_->Port("bolt_in"), kBoltService);
  ASSERT_TRUE(other.connected() && mismatched.connected());
  other.Send(1, "sleep:150:x");
  mismatched.Send(1, "sleep:150:y");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  Upgrade({{"bolt_in", "dubbo"}, {"dubbo_in", "dubbo"}});  // "other" absent, "bolt_in" mismatched
  for (BoltClient* client : {&other, &mismatched}) {
    auto answer = client->Read();
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(Upstream(*answer), "old");
    EXPECT_TRUE(client->WaitClosed(3000));
  }
  EXPECT_EQ(migrated_.load(), 0);
}

// The new engine refuses what it cannot serve, and closes the fd.
TEST_F(MigrationTest, AdoptRefusesUnknownAndNonMultiplexedListeners) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  absl::Status status = new_->engine->AdoptConnection("nope", fds[1], "");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  char c;
  EXPECT_EQ(read(fds[0], &c, 1), 0) << "the refused fd was not closed";
  close(fds[0]);
  EXPECT_EQ(new_->engine->AdoptableListeners(),
            (std::map<std::string, std::string>{
                {"bolt_in", "bolt"}, {"dubbo_in", "dubbo"}, {"other", "bolt"}}));
}

}  // namespace
}  // namespace ottava::test
