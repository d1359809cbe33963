// The hot-upgrade protocol (runtime/upgrade/) without processes: framing over a socketpair, a
// whole handover between an UpgradeServer and a TakeoverClient in one process, the version
// refusal, and the in-memory components' and counters' state round trips.

#include "runtime/upgrade/upgrade.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "common/byte_codec.h"
#include "components/config_store/in_memory/in_memory_config_store.h"
#include "components/lock/in_memory/in_memory_lock.h"
#include "components/sequencer/in_memory/in_memory_sequencer.h"
#include "components/state/in_memory/in_memory_state.h"
#include "runtime/upgrade/counters.h"
#include "runtime/upgrade/handover.h"

namespace ottava::runtime::upgrade {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

Deadline Soon() {
  return Clock::now() + std::chrono::seconds(5);
}

class SocketPair {
 public:
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0); }
  ~SocketPair() {
    close(fds_[0]);
    close(fds_[1]);
  }
  int a() const { return fds_[0]; }
  int b() const { return fds_[1]; }

 private:
  int fds_[2];
};

TEST(HandoverFraming, JsonPayloadAndFdsArriveTogether) {
  SocketPair pair;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  std::string payload("\0binary\xff\n", 9);
  payload += std::string(3 << 20, 'x');  // larger than a socket buffer: sent in pieces
  std::thread sender([&] {
    EXPECT_TRUE(
        SendMessage(pair.a(), {{"type", "state"}, {"seq", 7}}, {pipe_fds[1]}, payload).ok());
    EXPECT_TRUE(SendMessage(pair.a(), {{"type", "stopped"}}).ok());
  });
  absl::StatusOr<Message> first = ReceiveMessage(pair.b(), Soon());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->type(), "state");
  EXPECT_EQ(first->body["seq"], 7);
  EXPECT_EQ(first->body["payload_bytes"], payload.size());
  EXPECT_EQ(first->payload, payload);
  ASSERT_EQ(first->fds.size(), 1u);
  // The received fd is the pipe's write end.
  ASSERT_EQ(write(first->fds[0], "!", 1), 1);
  char c = 0;
  ASSERT_EQ(read(pipe_fds[0], &c, 1), 1);
  EXPECT_EQ(c, '!');
  absl::StatusOr<Message> second = ReceiveMessage(pair.b(), Soon());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->type(), "stopped");
  EXPECT_TRUE(second->payload.empty());
  sender.join();
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(HandoverFraming, RejectsGarbageOversizeAndEof) {
  {
    SocketPair pair;
    const unsigned char huge[4] = {0x7f, 0xff, 0xff, 0xff};
    ASSERT_EQ(write(pair.a(), huge, 4), 4);
    absl::StatusOr<Message> message = ReceiveMessage(pair.b(), Soon());
    EXPECT_EQ(message.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(message.status().message(), HasSubstr("not an Ottava upgrade peer"));
  }
  {
    SocketPair pair;
    const std::string text = "nope";
    const unsigned char header[4] = {0, 0, 0, 4};
    ASSERT_EQ(write(pair.a(), header, 4), 4);
    ASSERT_EQ(write(pair.a(), text.data(), 4), 4);
    EXPECT_EQ(ReceiveMessage(pair.b(), Soon()).status().code(), absl::StatusCode::kInvalidArgument);
  }
  {
    SocketPair pair;
    const std::string text = R"({"type":"state","payload_bytes":100})";
    const unsigned char header[4] = {0, 0, 0, static_cast<unsigned char>(text.size())};
    ASSERT_EQ(write(pair.a(), header, 4), 4);
    ASSERT_EQ(write(pair.a(), text.data(), text.size()), ssize_t(text.size()));
    ASSERT_EQ(write(pair.a(), "short", 5), 5);
    shutdown(pair.a(), SHUT_WR);
    absl::StatusOr<Message> message = ReceiveMessage(pair.b(), Soon());
    EXPECT_EQ(message.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(message.status().message(), HasSubstr("peer closed"));
  }
  {
    SocketPair pair;
    absl::StatusOr<Message> message =
        ReceiveMessage(pair.b(), Clock::now() + std::chrono::milliseconds(50));
    EXPECT_EQ(message.status().code(), absl::StatusCode::kDeadlineExceeded);
  }
}

TEST(HandoverFraming, ExpectNamesTheRefusal) {
  SocketPair pair;
  ASSERT_TRUE(SendMessage(pair.a(), {{"type", "refused"}, {"error", "too old"}}).ok());
  absl::StatusOr<Message> message = Expect(pair.b(), "welcome", Soon());
  EXPECT_EQ(message.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(message.status().message(), "too old");
}

TEST(ByteCodec, RoundTripAndTruncation) {
  ByteWriter out;
  out.U8(7);
  out.U32(0xdeadbeef);
  out.I64(-5);
  out.Bytes(std::string("a\0b", 3));
  const std::string bytes = out.Take();
  ByteReader in(bytes);
  uint8_t u8 = 0;
  uint32_t u32 = 0;
  int64_t i64 = 0;
  std::string text;
  ASSERT_TRUE(in.U8(&u8) && in.U32(&u32) && in.I64(&i64) && in.Bytes(&text));
  EXPECT_EQ(u8, 7);
  EXPECT_EQ(u32, 0xdeadbeef);
  EXPECT_EQ(i64, -5);
  EXPECT_EQ(text, std::string("a\0b", 3));
  EXPECT_TRUE(in.done());
  ByteReader cut(std::string_view(bytes).substr(0, bytes.size() - 1));
  ASSERT_TRUE(cut.U8(&u8) && cut.U32(&u32) && cut.I64(&i64));
  EXPECT_FALSE(cut.Bytes(&text));
  EXPECT_FALSE(cut.ok());
}

TEST(ByteCodec, ChunksNeverSplitARecord) {
  ChunkWriter out(100);
  for (int i = 0; i < 50; ++i) {
    out.record().Bytes(std::string(30, 'a' + i % 26));
    out.EndRecord();
  }
  std::vector<std::string> chunks = out.Finish();
  EXPECT_GT(chunks.size(), 10u);
  int records = 0;
  for (const std::string& chunk : chunks) {
    EXPECT_LE(chunk.size(), 100u + 34u);
    ByteReader in(chunk);
    std::string value;
    while (!in.done()) {
      ASSERT_TRUE(in.Bytes(&value));
      EXPECT_EQ(value, std::string(30, 'a' + records % 26));
      ++records;
    }
  }
  EXPECT_EQ(records, 50);
}

components::ComponentContext Context(components::Kind kind, const std::string& name) {
  components::ComponentContext context;
  context.kind = kind;
  context.name = name;
  context.type = "in-memory";
  return context;
}

// Moves every chunk of `from` into `to`.
void Transfer(components::Transferable& from, components::Transferable& to, size_t chunk_bytes) {
  for (const std::string& chunk : from.FreezeAndExport(chunk_bytes)) {
    ASSERT_TRUE(to.ImportState(from.StateFormat(), chunk).ok());
  }
}

TEST(StateTransfer, StateStoreKeepsValuesEtagsAndTtls) {
  using namespace components::state;
  InMemoryStateStore old_store(Context(components::Kind::kState, "cache"), {});
  auto set = [](StateStore& store, SetRequest request) {
    std::optional<absl::Status> result;
    store.Set(std::move(request), [&](absl::Status s) { result = s; });
    return *result;
  };
  auto get = [](StateStore& store, const std::string& key) {
    std::optional<absl::StatusOr<Item>> result;
    store.Get({.key = key}, [&](absl::StatusOr<Item> item) { result = std::move(item); });
    return **result;
  };
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(set(old_store, {.key = "k" + std::to_string(i),
                                .value = std::string("v\0", 2) + std::to_string(i)})
                    .ok());
  }
  ASSERT_TRUE(set(old_store, {.key = "ttl", .value = "soon", .ttl_seconds = 100}).ok());
  const Item before = get(old_store, "k7");
  const Item ttl_before = get(old_store, "ttl");

  InMemoryStateStore new_store(Context(components::Kind::kState, "cache"), {});
  Transfer(old_store, new_store, 4096);

  // The old store is frozen: a write fails unacknowledged, a read still answers.
  absl::Status frozen = set(old_store, {.key = "late", .value = "x"});
  EXPECT_EQ(frozen.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(frozen.message(), HasSubstr("handed over"));
  EXPECT_TRUE(get(old_store, "k1").found);

  EXPECT_EQ(new_store.EntryCountForTest(), 1001u);
  const Item after = get(new_store, "k7");
  EXPECT_EQ(after.value, before.value);
  EXPECT_EQ(after.etag, before.etag);
  const Item ttl_after = get(new_store, "ttl");
  ASSERT_TRUE(ttl_after.expire_time.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*ttl_after.expire_time -
                                                                  *ttl_before.expire_time)
                .count(),
            0);
  // The old etag still works, and a new write gets an etag never issued before.
  ASSERT_TRUE(set(new_store, {.key = "k7", .value = "next", .etag = before.etag}).ok());
  EXPECT_GT(std::stoull(get(new_store, "k7").etag), std::stoull(get(new_store, "k999").etag));
}

TEST(StateTransfer, LockKeepsOwnerAndRemainingLease) {
  using namespace components::lock;
  InMemoryLockStore old_store(Context(components::Kind::kLock, "lock"));
  std::optional<absl::StatusOr<bool>> granted;
  old_store.TryLock({.resource_id = "r", .owner = "alice", .expire_seconds = 1},
                    [&](absl::StatusOr<bool> g) { granted = g; });
  ASSERT_TRUE(granted->ok() && **granted);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  InMemoryLockStore new_store(Context(components::Kind::kLock, "lock"));
  Transfer(old_store, new_store, 1024);
  std::optional<absl::StatusOr<bool>> stolen;
  old_store.TryLock({.resource_id = "other", .owner = "bob", .expire_seconds = 5},
                    [&](absl::StatusOr<bool> g) { stolen = g; });
  EXPECT_EQ(stolen->status().code(), absl::StatusCode::kUnavailable);

  auto unlock = [&](const std::string& owner) {
    std::optional<absl::StatusOr<LockStatus>> result;
    new_store.Unlock({.resource_id = "r", .owner = owner},
                     [&](absl::StatusOr<LockStatus> s) { result = s; });
    return **result;
  };
  new_store.TryLock({.resource_id = "r", .owner = "bob", .expire_seconds = 5},
                    [&](absl::StatusOr<bool> g) { stolen = g; });
  EXPECT_FALSE(**stolen) << "alice still holds it";
  EXPECT_EQ(unlock("bob"), LockStatus::kLockBelongsToOthers);
  // About 700 ms of the lease were left: gone after 900 ms more, not after a fresh second.
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  EXPECT_EQ(unlock("alice"), LockStatus::kLockDoesNotExist);
}

TEST(StateTransfer, SequencerContinuesAbove) {
  using namespace components::sequencer;
  InMemorySequencer old_seq(Context(components::Kind::kSequencer, "ids"), {});
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    old_seq.GetNextId({.key = "orders"}, [&](absl::StatusOr<int64_t> id) { last = *id; });
  }
  old_seq.GetSegment("batch", 100, [](absl::StatusOr<Segment>) {});
  InMemorySequencer new_seq(Context(components::Kind::kSequencer, "ids"), {});
  Transfer(old_seq, new_seq, 1024);
  absl::StatusOr<int64_t> next = 0;
  new_seq.GetNextId({.key = "orders"}, [&](absl::StatusOr<int64_t> id) { next = id; });
  EXPECT_EQ(*next, last + 1);
  new_seq.GetNextId({.key = "batch"}, [&](absl::StatusOr<int64_t> id) { next = id; });
  EXPECT_EQ(*next, 101);
  old_seq.GetNextId({.key = "orders"}, [&](absl::StatusOr<int64_t> id) { next = id; });
  EXPECT_EQ(next.status().code(), absl::StatusCode::kUnavailable);
}

TEST(StateTransfer, ConfigItemsArriveAndNotifySubscribers) {
  using namespace components::config_store;
  InMemoryConfigStore old_store(Context(components::Kind::kConfigStore, "conf"));
  Item item{.key = "color",
            .content = "blue",
            .group = "g",
            .label = "l",
            .tags = {{"t", "1"}},
            .metadata = {{"m", "2"}}};
  old_store.Save({.app_id = "app", .items = {item}}, [](absl::Status s) { ASSERT_TRUE(s.ok()); });
  InMemoryConfigStore new_store(Context(components::Kind::kConfigStore, "conf"));
  std::vector<Item> seen;
  ASSERT_TRUE(new_store
                  .Subscribe({.app_id = "app", .group = "g", .label = "l"},
                             [&](std::vector<Item> changed) { seen = std::move(changed); })
                  .ok());
  Transfer(old_store, new_store, 1024);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].content, "blue");
  std::vector<Item> got;
  new_store.Get({.app_id = "app", .group = "g", .label = "l", .keys = {"color"}},
                [&](absl::StatusOr<std::vector<Item>> items) { got = *items; });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].content, "blue");
  EXPECT_EQ(got[0].tags.at("t"), "1");
  EXPECT_EQ(got[0].metadata.at("m"), "2");
  absl::Status late;
  old_store.Save({.app_id = "app", .items = {item}}, [&](absl::Status s) { late = s; });
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable);
}

TEST(StateTransfer, ImportRefusesAnotherFormatAndTruncation) {
  components::state::InMemoryStateStore store(Context(components::Kind::kState, "s"), {});
  EXPECT_EQ(store.ImportState(2, "").code(), absl::StatusCode::kInvalidArgument);
  ByteWriter record;
  record.U8('E');
  record.Bytes("key");
  EXPECT_EQ(store.ImportState(1, record.Take()).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CounterTransfer, PrometheusTextToSeededCounters) {
  stats::Store old_stats;
  old_stats.CounterFor("ottava_x_total", "Xs", {{"method", "Get\"State\""}, {"code", "OK"}})
      .Inc(41);
  old_stats.CounterFor("ottava_x_total", "Xs", {{"method", "Save}, x"}, {"code", "OK"}}).Inc(2);
  old_stats.CounterFor("ottava_plain_total", "Plain").Inc(5);
  old_stats.GaugeFor("ottava_not_a_counter", "G").Set(9);
  std::vector<CounterValue> counters = CountersFromPrometheus(old_stats.RenderPrometheus());
  ASSERT_EQ(counters.size(), 3u);

  std::vector<std::string> chunks = EncodeCounters(counters, 64);
  std::vector<CounterValue> decoded;
  for (const std::string& chunk : chunks) {
    auto part = DecodeCounters(chunk);
    ASSERT_TRUE(part.ok()) << part.status();
    decoded.insert(decoded.end(), part->begin(), part->end());
  }
  stats::Store new_stats;
  new_stats.CounterFor("ottava_plain_total", "Plain").Inc(1);  // counted here before the seed
  new_stats.GaugeFor("ottava_x_total_clash", "G");
  EXPECT_EQ(SeedCounters(new_stats, decoded), 3u);
  EXPECT_EQ(new_stats.CounterFor("ottava_plain_total", "Plain").Value(), 6u);
  EXPECT_EQ(
      new_stats.CounterFor("ottava_x_total", "Xs", {{"method", "Get\"State\""}, {"code", "OK"}})
          .Value(),
      41u);
  EXPECT_EQ(new_stats.CounterFor("ottava_x_total", "Xs", {{"method", "Save}, x"}, {"code", "OK"}})
                .Value(),
            2u);
  // A name the new process uses for another type is skipped rather than crashing the store.
  new_stats.GaugeFor("ottava_gauge_here", "G");
  EXPECT_EQ(SeedCounters(new_stats, {{"ottava_gauge_here", "G", "", 3}}), 0u);
}

// A whole handover in one process: the server side answers from a fake source.
class FakeSource : public HandoverSource {
 public:
  std::vector<std::pair<std::string, int>> ListeningSockets() override { return {{"grpc", fd_}}; }
  void StopAccepting() override { stopped = true; }
  std::vector<StateChunk> ExportState() override {
    return {{"state/cache", "in-memory", 1, "abc"},
            {"state/cache", "in-memory", 1, "def"},
            {"metrics", "counters", 1, "xyz"}};
  }
  void HandedOver(pid_t pid,
                  const std::map<std::string, std::string>& adopt_from_new,
                  std::shared_ptr<MigrationQueue> queue) override {
    adopt = adopt_from_new;
    for (MigratingConnection& connection : to_migrate) {
      queue->Push(std::move(connection));
    }
    to_migrate.clear();
    handed_over_to = pid;
  }

  int fd_ = -1;
  std::vector<MigratingConnection> to_migrate;  // pushed at HandedOver
  std::map<std::string, std::string> adopt;
  std::atomic<bool> stopped{false};
  std::atomic<pid_t> handed_over_to{0};
};

class HandoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ottava-upgrade-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    path_ = ControlSocketPath(dir_.string());
    auto listening = ListenControlSocket(path_);
    ASSERT_TRUE(listening.ok()) << listening.status();
    source_.fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ServerSettings settings;
    settings.socket_path = path_;
    settings.timeout = std::chrono::seconds(5);
    settings.generation = 4;
    settings.ready_file = "/tmp/ready.json";
    server_ = std::make_unique<UpgradeServer>(*listening, settings, source_, stats_);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    server_.reset();
    ::close(source_.fd_);
    std::filesystem::remove_all(dir_);
    unsetenv("OTTAVA_TEST_HANDOVER_VERSION");
  }

  std::filesystem::path dir_;
  std::string path_;
  stats::Store stats_;
  FakeSource source_;
  std::unique_ptr<UpgradeServer> server_;
};

TEST_F(HandoverTest, SocketsThenStateChunksInOrderThenStopped) {
  auto client = TakeoverClient::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->old_generation(), 4);
  EXPECT_EQ((*client)->old_pid(), getpid());
  EXPECT_EQ((*client)->old_ready_file(), "/tmp/ready.json");
  auto sockets = (*client)->TakeSockets(std::chrono::seconds(5));
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  ASSERT_EQ(sockets->size(), 2u);  // grpc and the control socket
  EXPECT_TRUE(sockets->count("grpc") && sockets->count("control"));
  struct stat a, b;
  fstat(sockets->at("grpc"), &a);
  fstat(source_.fd_, &b);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_FALSE(source_.stopped.load()) << "nothing changes for the old process before ready";

  std::vector<StateChunk> chunks;
  auto stopped = (*client)->Ready(std::chrono::seconds(5),
                                  [&](StateChunk&& chunk) { chunks.push_back(std::move(chunk)); });
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(source_.stopped.load());
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].component, "state/cache");
  EXPECT_EQ(chunks[0].component_type, "in-memory");
  EXPECT_EQ(chunks[0].format, 1u);
  EXPECT_EQ(chunks[0].payload, "abc");
  EXPECT_EQ(chunks[1].payload, "def");
  EXPECT_EQ(chunks[2].component, "metrics");
  EXPECT_EQ((*stopped)["chunks"], 3);
  EXPECT_EQ((*stopped)["state_bytes"], 9);
  EXPECT_TRUE((*stopped)["stop_us"].is_number());
  for (const auto& [name, fd] : *sockets) {
    ::close(fd);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (source_.handed_over_to.load() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(source_.handed_over_to.load(), getpid());
  EXPECT_TRUE(server_->handed_over());
}

// Protocol v3: "ready" names the listeners the new process adopts; after "stopped" the old
// process's migrating connections arrive with their fd and unread bytes, then "end" once the old
// process stops.
TEST_F(HandoverTest, MigratedConnectionsFollowStoppedWithTheirUnreadBytes) {
  int client_side[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, client_side), 0);
  const std::string partial("\x01\x01\x00\x01partial frame", 17);
  source_.to_migrate.push_back({"bolt_in", client_side[1], partial});
  auto client = TakeoverClient::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status();
  auto sockets = (*client)->TakeSockets(std::chrono::seconds(5));
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  for (const auto& [name, fd] : *sockets) {
    ::close(fd);
  }
  auto stopped = (*client)->Ready(std::chrono::seconds(5), [](StateChunk&&) {},
                                  {{"bolt_in", "bolt"}, {"dubbo_in", "dubbo"}});
  ASSERT_TRUE(stopped.ok()) << stopped.status();

  std::vector<MigratingConnection> received;
  std::mutex received_mu;
  absl::StatusOr<int64_t> count;
  std::thread receiver([&] {
    count = (*client)->ReceiveConnections([&](MigratingConnection&& connection) {
      std::lock_guard<std::mutex> lock(received_mu);
      received.push_back(std::move(connection));
    });
  });
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    std::lock_guard<std::mutex> lock(received_mu);
    if (!received.empty()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The old process stops: what is queued is sent, then "end".
  server_->Stop();
  receiver.join();
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 1);
  EXPECT_EQ(source_.adopt,
            (std::map<std::string, std::string>{{"bolt_in", "bolt"}, {"dubbo_in", "dubbo"}}));
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].listener, "bolt_in");
  EXPECT_EQ(received[0].unread, partial);
  // The fd is the client's connection: bytes written on it reach the client, and the old
  // process's copy is closed (only the received one keeps it open).
  ASSERT_EQ(write(received[0].fd, "pong", 4), 4);
  char buffer[8] = {};
  ASSERT_EQ(read(client_side[0], buffer, sizeof(buffer)), 4);
  EXPECT_EQ(std::string(buffer, 4), "pong");
  ::close(received[0].fd);
  EXPECT_EQ(read(client_side[0], buffer, sizeof(buffer)), 0) << "a copy of the fd leaked";
  ::close(client_side[0]);
  EXPECT_EQ(
      stats_.CounterFor("ottava_upgrade_migrated_connections_total", "", {{"direction", "sent"}})
          .Value(),
      1u);
}

TEST(MigrationQueue, ClosedQueueClosesWhatIsPushedAndDrainsTheRest) {
  int a[2];
  int b[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
  MigrationQueue queue;
  EXPECT_TRUE(queue.Push({"x", a[1], "u"}));
  queue.Close();
  EXPECT_FALSE(queue.Push({"y", b[1], ""}));
  char c;
  EXPECT_EQ(read(b[0], &c, 1), 0) << "a refused connection's fd is closed";
  std::optional<MigratingConnection> first = queue.Pop();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->listener, "x");
  EXPECT_EQ(first->unread, "u");
  EXPECT_FALSE(queue.Pop().has_value());
  ::close(first->fd);
  for (int fd : {a[0], b[0]}) {
    ::close(fd);
  }
}

TEST_F(HandoverTest, AnotherVersionIsRefusedWithBothNamed) {
  setenv("OTTAVA_TEST_HANDOVER_VERSION", "1", 1);
  auto client = TakeoverClient::Connect(path_);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(client.status().message(), HasSubstr("handover protocol version mismatch"));
  EXPECT_THAT(client.status().message(),
              HasSubstr("speaks version " + std::to_string(kHandoverVersion)));
  EXPECT_THAT(client.status().message(), HasSubstr("speaks version 1;"));
  EXPECT_FALSE(source_.stopped.load());
  // The server still answers a well-behaved peer afterwards.
  unsetenv("OTTAVA_TEST_HANDOVER_VERSION");
  auto good = TakeoverClient::Connect(path_);
  EXPECT_TRUE(good.ok()) << good.status();
}

TEST_F(HandoverTest, APeerThatLeavesBeforeReadyChangesNothing) {
  {
    auto client = TakeoverClient::Connect(path_);
    ASSERT_TRUE(client.ok());
    auto sockets = (*client)->TakeSockets(std::chrono::seconds(5));
    ASSERT_TRUE(sockets.ok());
    for (const auto& [name, fd] : *sockets) {
      ::close(fd);
    }
  }  // disconnects: the new process died mid-handover
  auto again = TakeoverClient::Connect(path_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(source_.stopped.load());
  EXPECT_FALSE(server_->handed_over());
}

}  // namespace
}  // namespace ottava::runtime::upgrade
