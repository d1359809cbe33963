// Unit tests of the request path (router → cluster → load balancer → HTTP/1.1 pool) on one
// Dispatcher whose timers follow a SimulatedTimeSource: route and per-try timeouts, retry backoff,
// connect and idle timeouts fire only when a test advances time, so nothing here sleeps. The
// upstreams are real listening sockets on 127.0.0.1 served by the same dispatcher, each scripted
// to answer 200, answer 503, never answer, close, or send garbage.

#include "mesh/router/router.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/assert.h"
#include "common/stats.h"
#include "common/time_source.h"
#include "mesh/codec/http1/http1_codec.h"
#include "mesh/config/mesh_config.h"
#include "mesh/network/connection.h"
#include "mesh/network/listener.h"
#include "mesh/router/snapshot.h"

namespace ottava::mesh {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// Bound on real time for I/O on loopback to settle; a test that needs it has failed.
constexpr auto kRealTimeBound = std::chrono::seconds(5);

// What a fake upstream does with each complete request it reads.
enum class Reply { kOk, k503, kNever, kClose, kGarbage };

// An HTTP/1.1 upstream on a real socket, served on the test's dispatcher. Parses just enough
// HTTP (head, content-length body) to know when a request is complete.
class FakeUpstream {
 public:
  FakeUpstream(Dispatcher& dispatcher, std::string name, std::function<void()> on_event)
      : dispatcher_(dispatcher), name_(std::move(name)), on_event_(std::move(on_event)) {
    auto socket = ListenSocket::Bind(Address{"127.0.0.1", 0});
    OTTAVA_RELEASE_ASSERT(socket.ok(), "bind a fake upstream");
    socket_ = std::move(*socket);
    listener_ =
        std::make_unique<Listener>(dispatcher_, *socket_, [this](int fd, const Address& remote) {
          ++accepts;
          connections_.push_back(std::make_unique<ServerConnection>(
              *this, CreateServerConnection(dispatcher_, fd, remote)));
          on_event_();
        });
  }

  const Address& address() const { return socket_->address(); }
  std::string body() const { return "hello from " + name_; }

  Reply reply = Reply::kOk;
  int accepts = 0;
  int requests = 0;
  int closes = 0;  // connections that ended, by either side
  std::vector<std::string> request_heads;
  std::vector<std::string> request_bodies;

 private:
  class ServerConnection : public ReadHandler, public ConnectionCallbacks {
   public:
    ServerConnection(FakeUpstream& upstream, ConnectionPtr connection)
        : upstream_(upstream), connection_(std::move(connection)) {
      connection_->SetReadHandler(this);
      connection_->AddCallbacks(*this);
    }

    void OnData(Buffer& data, bool) override {
      input_ += data.ToString();
      data.Drain(data.Length());
      while (!closed_ && ParseOne()) {
      }
      upstream_.on_event_();
    }

    void OnEvent(ConnectionEvent event) override {
      if (event == ConnectionEvent::kRemoteClose || event == ConnectionEvent::kLocalClose) {
        closed_ = true;
        ++upstream_.closes;
        upstream_.on_event_();
      }
    }

   private:
    // Consumes one complete request from input_ and answers it; false when none is complete.
    bool ParseOne() {
      size_t head_end = input_.find("\r\n\r\n");
      if (head_end == std::string::npos) {
        return false;
      }
      std::string head = input_.substr(0, head_end);
      std::string lower = head;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      size_t length = 0;
      if (size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
        length = std::stoul(lower.substr(at + 17));
      }
      if (input_.size() < head_end + 4 + length) {
        return false;
      }
      upstream_.request_heads.push_back(head);
      upstream_.request_bodies.push_back(input_.substr(head_end + 4, length));
      input_.erase(0, head_end + 4 + length);
      ++upstream_.requests;
      Answer();
      return true;
    }

    void Answer() {
      Buffer out;
      switch (upstream_.reply) {
        case Reply::kOk: {
          std::string body = upstream_.body();
          out.Add("HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" +
                  body);
          connection_->Write(out);
          return;
        }
        case Reply::k503:
          out.Add("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy");
          connection_->Write(out);
          return;
        case Reply::kNever:
          return;
        case Reply::kClose:
          connection_->Close(CloseType::kNoFlush);
          return;
        case Reply::kGarbage:
          out.Add("THIS IS NOT HTTP\r\n\r\n");
          connection_->Write(out);
          return;
      }
    }

    FakeUpstream& upstream_;
    ConnectionPtr connection_;
    std::string input_;
    bool closed_ = false;
  };

  Dispatcher& dispatcher_;
  std::string name_;
  std::function<void()> on_event_;
  std::unique_ptr<ListenSocket> socket_;
  std::unique_ptr<Listener> listener_;
  std::vector<std::unique_ptr<ServerConnection>> connections_;
};

// A raw socket on 127.0.0.1. Bound but not listening, a connect to it is refused; listening with
// a backlog of 0 and one unaccepted connection already queued, the kernel drops further SYNs, so
// a connect to it stays pending (a host that "accepts no connection").
class RawHost {
 public:
  static std::unique_ptr<RawHost> Refusing() {
    auto host = std::unique_ptr<RawHost>(new RawHost());
    return host;
  }
  static std::unique_ptr<RawHost> Unresponsive() {
    auto host = std::unique_ptr<RawHost>(new RawHost());
    OTTAVA_RELEASE_ASSERT(::listen(host->fd_, 0) == 0, "listen");
    // Fill the accept queue: this connection completes and is never accepted.
    host->filler_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin = host->Sockaddr();
    OTTAVA_RELEASE_ASSERT(
        ::connect(host->filler_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0, "filler");
    return host;
  }
  ~RawHost() {
    if (filler_ >= 0) {
      ::close(filler_);
    }
    ::close(fd_);
  }

  Address address() const { return Address{"127.0.0.1", port_}; }

 private:
  RawHost() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    OTTAVA_RELEASE_ASSERT(fd_ >= 0, "socket");
    sockaddr_in sin = Sockaddr();
    OTTAVA_RELEASE_ASSERT(::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0, "bind");
    socklen_t length = sizeof(sin);
    OTTAVA_RELEASE_ASSERT(::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &length) == 0,
                          "getsockname");
    port_ = ntohs(sin.sin_port);
  }
  sockaddr_in Sockaddr() const {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port_);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
  }

  int fd_ = -1;
  int filler_ = -1;
  uint16_t port_ = 0;
};

// Records what the router sends downstream.
class TestDownstream : public DownstreamCallbacks {
 public:
  explicit TestDownstream(std::function<void()> on_event) : on_event_(std::move(on_event)) {}

  void EncodeHeaders(ResponseHeadersPtr headers, bool end_stream) override {
    headers_ = std::move(headers);
    complete = end_stream;
    on_event_();
  }
  void EncodeData(Buffer& data, bool end_stream) override {
    body += data.ToString();
    data.Drain(data.Length());
    complete = end_stream;
    on_event_();
  }
  void ResetDownstream(std::string_view why) override {
    reset = true;
    reason = std::string(why);
    on_event_();
  }
  void ReadDisableDownstream(bool) override {}
  std::string_view downstream_address() const override { return "10.0.0.7"; }

  bool started() const { return headers_ != nullptr || reset; }
  int status() const { return headers_ != nullptr ? headers_->status : 0; }

  ResponseHeadersPtr headers_;
  std::string body;
  bool complete = false;
  bool reset = false;
  std::string reason;

 private:
  std::function<void()> on_event_;
};

// A RouterContext on the test's dispatcher with a fixed "random" number, which makes the load
// balancer's seed and the retry backoff (Random() % (ceiling + 1)) predictable.
class TestRouterContext : public RouterContext {
 public:
  TestRouterContext(Dispatcher& dispatcher, std::function<void()> on_event)
      : dispatcher_(dispatcher), on_event_(std::move(on_event)) {}

  Dispatcher& dispatcher() override { return dispatcher_; }
  ThreadLocalCluster& GetCluster(const ClusterInfoConstSharedPtr& cluster) override {
    std::unique_ptr<ThreadLocalCluster>& local = clusters_[cluster.get()];
    if (local == nullptr) {
      local = std::make_unique<ThreadLocalCluster>(dispatcher_, cluster, 1);
    }
    return *local;
  }
  RouteCache& route_cache() override { return route_cache_; }
  uint64_t Random() override { return random; }
  void ReportOutcome(const ClusterInfo&, Host& host, int status, bool connect_failure) override {
    outcomes.push_back(Outcome{host.address(), status, connect_failure});
    on_event_();
  }
  void StartShadow(const ClusterInfoConstSharedPtr& cluster,
                   std::unique_ptr<RequestHeaders> headers,
                   std::string body,
                   std::chrono::milliseconds timeout) override {
    shadows.push_back(Shadow{cluster->config.name, headers->host, std::move(body), timeout});
  }

  struct Outcome {
    Address host;
    int status;
    bool connect_failure;
  };
  struct Shadow {
    std::string cluster;
    std::string host;
    std::string body;
    std::chrono::milliseconds timeout;
  };
  uint64_t random = 20;  // the first retry waits 20 ms (20 % 26)
  std::vector<Outcome> outcomes;
  std::vector<Shadow> shadows;

 private:
  Dispatcher& dispatcher_;
  std::function<void()> on_event_;
  RouteCache route_cache_;
  std::map<const ClusterInfo*, std::unique_ptr<ThreadLocalCluster>> clusters_;
};

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dispatcher = Dispatcher::Create("router-test", &time_);
    ASSERT_TRUE(dispatcher.ok()) << dispatcher.status();
    dispatcher_ = std::move(*dispatcher);
    context_ = std::make_unique<TestRouterContext>(*dispatcher_, [this] { Check(); });
  }

  void TearDown() override {
    // Routers first (they reset their streams), then the pools, then the upstreams.
    requests_.clear();
    context_.reset();
    upstreams_.clear();
    RunPending();
  }

  FakeUpstream& AddUpstream(const std::string& name) {
    upstreams_.push_back(std::make_unique<FakeUpstream>(*dispatcher_, name, [this] { Check(); }));
    return *upstreams_.back();
  }

  // A mesh config with the router "r" whose routes are `routes` and the given clusters.
  void Install(json routes, json clusters) {
    json mesh = {{"routers", json::array({{{"name", "r"}, {"routes", std::move(routes)}}})},
                 {"clusters", std::move(clusters)}};
    absl::StatusOr<MeshConfig> config = MeshConfig::Parse(mesh, "/mesh");
    ASSERT_TRUE(config.ok()) << config.status();
    auto snapshot = std::make_shared<MeshSnapshot>();
    snapshot->config = *config;
    for (const RouterConfig& router : config->routers) {
      auto table = RouteTable::Create(router);
      ASSERT_TRUE(table.ok()) << table.status();
      snapshot->routers.emplace(router.name, std::move(*table));
    }
    for (const ClusterConfig& cluster : config->clusters) {
      snapshot->clusters.emplace(cluster.name, BuildClusterInfo(cluster, nullptr, codec_, stats_));
    }
    snapshot_ = std::move(snapshot);
  }

  static json Cluster(const std::string& name, const std::vector<Address>& hosts, json extra = {}) {
    json cluster = {{"name", name}, {"hosts", json::array()}};
    for (const Address& host : hosts) {
      cluster["hosts"].push_back({{"address", host.ToString()}});
    }
    if (extra.is_object()) {
      cluster.update(extra);
    }
    return cluster;
  }

  const ClusterInfo& Info(const std::string& name) const { return **snapshot_->Cluster(name); }
  ConnectionPool& Pool(const std::string& cluster, size_t host) {
    const ClusterInfoConstSharedPtr& info = *snapshot_->Cluster(cluster);
    return context_->GetCluster(info).PoolFor(*info->hosts[host]);
  }

  struct Request {
    std::unique_ptr<TestDownstream> downstream;
    std::unique_ptr<Router> router;
  };

  // Starts a request for `service` on router "r" (a GET, or a POST when `body` is non-empty).
  Request& Send(const std::string& service, const std::string& body = "") {
    auto request = std::make_unique<Request>();
    request->downstream = std::make_unique<TestDownstream>([this] { Check(); });
    request->router = std::make_unique<Router>(*context_, snapshot_, snapshot_->Router("r"),
                                               *request->downstream);
    auto headers = std::make_unique<RequestHeaders>();
    headers->method = body.empty() ? "GET" : "POST";
    headers->path = "/hello";
    headers->host = service;
    headers->service = service;
    headers->headers.Add("host", service);
    headers->content_length = static_cast<int64_t>(body.size());
    Request& raw = *request;
    requests_.push_back(std::move(request));
    raw.router->DecodeRequestHeaders(std::move(headers), body.empty());
    if (!body.empty()) {
      Buffer data;
      data.Add(body);
      raw.router->DecodeRequestData(data, true);
    }
    return raw;
  }

  // Runs the loop on this thread until `done` holds (checked after every event the fakes see)
  // or kRealTimeBound of real time passed. Simulated time does not move meanwhile.
  bool RunUntil(const std::function<bool()>& done) {
    if (done()) {
      return true;
    }
    until_ = &done;
    std::mutex mu;
    std::condition_variable cv;
    bool returned = false;
    std::thread watchdog([&] {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_for(lock, kRealTimeBound, [&] { return returned; })) {
        dispatcher_->Exit();
      }
    });
    dispatcher_->Run();
    {
      std::lock_guard<std::mutex> lock(mu);
      returned = true;
    }
    cv.notify_one();
    watchdog.join();
    until_ = nullptr;
    return done();
  }

  // Runs what is posted to the loop now (timer checks of Advance included), then returns.
  void RunPending() {
    dispatcher_->Exit();
    dispatcher_->Run();
  }

  // Moves simulated time forward and fires every timer due by then.
  void Advance(milliseconds duration) {
    time_.Advance(duration);
    RunPending();
  }

  void Check() {
    if (until_ != nullptr && (*until_)()) {
      until_ = nullptr;
      dispatcher_->Exit();
    }
  }

  bool Complete(const Request& request) {
    return RunUntil([&] { return request.downstream->complete || request.downstream->reset; });
  }

  SimulatedTimeSource time_;
  stats::Store stats_;
  Http1CodecFactory codec_;
  DispatcherPtr dispatcher_;
  MeshSnapshotConstSharedPtr snapshot_;
  std::vector<std::unique_ptr<FakeUpstream>> upstreams_;
  std::unique_ptr<TestRouterContext> context_;
  std::vector<std::unique_ptr<Request>> requests_;
  const std::function<bool()>* until_ = nullptr;
};

// 1. The upstream's 200 and body reach the downstream, the request body reaches the upstream,
// and a second request reuses the kept-alive connection.
TEST_F(RouterTest, ForwardsResponseAndReusesKeepAliveConnection) {
  FakeUpstream& a = AddUpstream("a");
  Install(json::array({{{"match", {{"service", "svc"}}}, {"cluster", "c"}}}),
          json::array({Cluster("c", {a.address()})}));

  Request& first = Send("svc", "ping");
  ASSERT_TRUE(Complete(first));
  EXPECT_EQ(first.downstream->status(), 200);
  EXPECT_EQ(first.downstream->body, "hello from a");
  EXPECT_EQ(first.router->info().local_reply, LocalReplyReason::kNone);
  ASSERT_EQ(a.requests, 1);
  EXPECT_EQ(a.request_bodies[0], "ping");
  EXPECT_NE(a.request_heads[0].find("POST /hello HTTP/1.1"), std::string::npos);
  EXPECT_NE(a.request_heads[0].find("x-forwarded-for: 10.0.0.7"), std::string::npos);

  Request& second = Send("svc");
  ASSERT_TRUE(Complete(second));
  EXPECT_EQ(second.downstream->status(), 200);
  EXPECT_EQ(second.downstream->body, "hello from a");
  EXPECT_EQ(a.requests, 2);
  EXPECT_EQ(a.accepts, 1);
  EXPECT_EQ(a.closes, 0);
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 1u);
  EXPECT_EQ(Info("c").stats.requests->Value(), 2u);
  EXPECT_EQ(Info("c").stats.responses[2]->Value(), 2u);
}

// 2. The route timeout answers 504 exactly when simulated time reaches it.
TEST_F(RouterTest, RouteTimeoutSends504OnlyOnceItExpires) {
  FakeUpstream& a = AddUpstream("a");
  a.reply = Reply::kNever;
  Install(json::array({{{"cluster", "c"}, {"timeout_ms", 1000}}}),
          json::array({Cluster("c", {a.address()})}));

  Request& request = Send("svc");
  ASSERT_TRUE(RunUntil([&] { return a.requests == 1; }));
  Advance(milliseconds(999));
  EXPECT_FALSE(request.downstream->started());
  EXPECT_EQ(Info("c").stats.timeouts->Value(), 0u);

  Advance(milliseconds(1));
  ASSERT_TRUE(request.downstream->complete);
  EXPECT_EQ(request.downstream->status(), 504);
  EXPECT_EQ(request.router->info().local_reply, LocalReplyReason::kTimeout);
  EXPECT_EQ(request.downstream->body, "upstream request timeout\n");
  EXPECT_EQ(Info("c").stats.timeouts->Value(), 1u);
  // The abandoned HTTP/1.1 exchange cannot be reused: its connection is closed.
  ASSERT_TRUE(RunUntil([&] { return a.closes == 1; }));
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 0u);
}

// 3. A 503 is retried on the other host after the backoff, which needs simulated time.
TEST_F(RouterTest, RetriesA5xxOnTheOtherHostAfterBackoff) {
  FakeUpstream& a = AddUpstream("a");
  FakeUpstream& b = AddUpstream("b");
  a.reply = Reply::k503;
  Install(json::array({{{"cluster", "c"}, {"retry", {{"attempts", 1}, {"on", {"5xx"}}}}}}),
          json::array({Cluster("c", {a.address(), b.address()})}));

  Request& request = Send("svc");
  // Round robin starts with the first host, which answers 503.
  ASSERT_TRUE(RunUntil([&] { return context_->outcomes.size() == 1; }));
  EXPECT_EQ(context_->outcomes[0].host, a.address());
  EXPECT_EQ(context_->outcomes[0].status, 503);
  EXPECT_EQ(Info("c").stats.retries->Value(), 1u);

  // The backoff is Random() % 26 = 20 ms: nothing goes to b before it has passed.
  Advance(milliseconds(19));
  EXPECT_EQ(b.accepts, 0);
  EXPECT_FALSE(request.downstream->started());
  Advance(milliseconds(1));
  ASSERT_TRUE(Complete(request));
  EXPECT_EQ(request.downstream->status(), 200);
  EXPECT_EQ(request.downstream->body, "hello from b");
  EXPECT_EQ(a.requests, 1);
  EXPECT_EQ(b.requests, 1);
  EXPECT_EQ(request.router->info().attempts, 2u);
  EXPECT_EQ(Info("c").stats.retries->Value(), 1u);
  EXPECT_EQ(Info("c").stats.responses[5]->Value(), 1u);
  EXPECT_EQ(Info("c").stats.responses[2]->Value(), 1u);
}

// 4a. A refused connection is retried on the other host when the policy says connect-failure.
TEST_F(RouterTest, RetriesAConnectFailureOnTheOtherHost) {
  std::unique_ptr<RawHost> refusing = RawHost::Refusing();
  FakeUpstream& b = AddUpstream("b");
  Install(
      json::array({{{"cluster", "c"}, {"retry", {{"attempts", 1}, {"on", {"connect-failure"}}}}}}),
      json::array({Cluster("c", {refusing->address(), b.address()})}));

  Request& request = Send("svc");
  ASSERT_TRUE(RunUntil([&] { return context_->outcomes.size() == 1; }));
  EXPECT_EQ(context_->outcomes[0].host, refusing->address());
  EXPECT_TRUE(context_->outcomes[0].connect_failure);
  EXPECT_FALSE(request.downstream->started());
  Advance(milliseconds(20));
  ASSERT_TRUE(Complete(request));
  EXPECT_EQ(request.downstream->status(), 200);
  EXPECT_EQ(request.downstream->body, "hello from b");
  EXPECT_EQ(Info("c").stats.connect_failures->Value(), 1u);
  EXPECT_EQ(Info("c").stats.retries->Value(), 1u);
}

// 4b. Without that retry, a refused connection is a 503 connect failure.
TEST_F(RouterTest, ConnectFailureWithoutRetryIs503) {
  std::unique_ptr<RawHost> refusing = RawHost::Refusing();
  FakeUpstream& b = AddUpstream("b");
  Install(json::array({{{"cluster", "c"}, {"retry", {{"attempts", 1}, {"on", {"5xx"}}}}}}),
          json::array({Cluster("c", {refusing->address(), b.address()})}));

  Request& request = Send("svc");
  ASSERT_TRUE(Complete(request));
  EXPECT_EQ(request.downstream->status(), 503);
  EXPECT_EQ(request.router->info().local_reply, LocalReplyReason::kConnectFailure);
  EXPECT_NE(request.downstream->body.find("connect failure"), std::string::npos);
  EXPECT_EQ(b.accepts, 0);
  EXPECT_EQ(Info("c").stats.retries->Value(), 0u);
  EXPECT_EQ(Info("c").stats.connect_failures->Value(), 1u);
}

// 5. A try that outlives per_try_timeout_ms is abandoned and retried on the other host.
TEST_F(RouterTest, PerTryTimeoutRetriesOnTheOtherHost) {
  FakeUpstream& a = AddUpstream("a");
  FakeUpstream& b = AddUpstream("b");
  a.reply = Reply::kNever;
  Install(
      json::array({{{"cluster", "c"},
                    {"timeout_ms", 5000},
                    {"retry", {{"attempts", 1}, {"on", {"5xx"}}, {"per_try_timeout_ms", 200}}}}}),
      json::array({Cluster("c", {a.address(), b.address()})}));

  Request& request = Send("svc");
  ASSERT_TRUE(RunUntil([&] { return a.requests == 1; }));
  Advance(milliseconds(199));
  EXPECT_EQ(Info("c").stats.timeouts->Value(), 0u);
  Advance(milliseconds(1));
  EXPECT_EQ(Info("c").stats.timeouts->Value(), 1u);
  EXPECT_EQ(Info("c").stats.retries->Value(), 1u);
  EXPECT_FALSE(request.downstream->started());
  Advance(milliseconds(20));  // the backoff
  ASSERT_TRUE(Complete(request));
  EXPECT_EQ(request.downstream->status(), 200);
  EXPECT_EQ(request.downstream->body, "hello from b");
  EXPECT_EQ(b.requests, 1);
  ASSERT_TRUE(RunUntil([&] { return a.closes == 1; }));
}

// 6. With max_connections 1 and max_pending 0, a request while the only connection is busy is
// refused at once with a 503 overflow.
TEST_F(RouterTest, OverflowWhenTheOnlyConnectionIsBusy) {
  FakeUpstream& a = AddUpstream("a");
  Install(json::array({{{"cluster", "c"}}}),
          json::array({Cluster("c", {a.address()}, {{"max_connections", 1}, {"max_pending", 0}})}));

  // A cold pool: the first request opens the connection it waits for, which max_pending 0 must
  // not refuse (it is not queued behind a busy connection).
  Request& warm = Send("svc");
  ASSERT_TRUE(Complete(warm));
  ASSERT_EQ(warm.downstream->status(), 200);
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 1u);

  a.reply = Reply::kNever;
  Request& in_flight = Send("svc");
  ASSERT_TRUE(RunUntil([&] { return a.requests == 2; }));
  const uint64_t overflow_before = Info("c").stats.overflow->Value();
  Request& refused = Send("svc");
  ASSERT_TRUE(refused.downstream->complete);  // refused inline, without I/O
  EXPECT_EQ(refused.downstream->status(), 503);
  EXPECT_EQ(refused.router->info().local_reply, LocalReplyReason::kOverflow);
  EXPECT_NE(refused.downstream->body.find("over its max_connections"), std::string::npos);
  EXPECT_EQ(Info("c").stats.overflow->Value(), overflow_before + 1);
  EXPECT_FALSE(in_flight.downstream->started());
  EXPECT_EQ(a.accepts, 1);
}

// 7a. An upstream that closes without answering gives a 502.
TEST_F(RouterTest, UpstreamCloseWithoutAnswerIs502) {
  FakeUpstream& a = AddUpstream("a");
  a.reply = Reply::kClose;
  Install(json::array({{{"cluster", "c"}}}), json::array({Cluster("c", {a.address()})}));

  Request& request = Send("svc");
  ASSERT_TRUE(Complete(request));
  EXPECT_EQ(request.downstream->status(), 502);
  EXPECT_EQ(request.router->info().local_reply, LocalReplyReason::kUpstreamReset);
  EXPECT_EQ(Info("c").stats.resets->Value(), 1u);
}

// 7b. An upstream that answers garbage gives a 502.
TEST_F(RouterTest, UpstreamGarbageIs502) {
  FakeUpstream& a = AddUpstream("a");
  a.reply = Reply::kGarbage;
  Install(json::array({{{"cluster", "c"}}}), json::array({Cluster("c", {a.address()})}));

  Request& request = Send("svc");
  ASSERT_TRUE(Complete(request));
  EXPECT_EQ(request.downstream->status(), 502);
  EXPECT_EQ(request.router->info().local_reply, LocalReplyReason::kUpstreamReset);
  EXPECT_NE(request.downstream->body.find("protocol error"), std::string::npos);
  ASSERT_TRUE(RunUntil([&] { return a.closes == 1; }));
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 0u);
}

// 8a. No matching route: 404 naming the service.
TEST_F(RouterTest, NoRouteIs404NamingTheService) {
  FakeUpstream& a = AddUpstream("a");
  Install(json::array({{{"match", {{"service", "known"}}}, {"cluster", "c"}}}),
          json::array({Cluster("c", {a.address()})}));

  Request& request = Send("unknown.Service");
  ASSERT_TRUE(request.downstream->complete);
  EXPECT_EQ(request.downstream->status(), 404);
  EXPECT_EQ(request.router->info().local_reply, LocalReplyReason::kNoRoute);
  EXPECT_EQ(request.downstream->body, "no route for service 'unknown.Service'\n");
  EXPECT_EQ(a.accepts, 0);
}

// 8b. A direct_response route answers with its status and body.
TEST_F(RouterTest, DirectResponseAnswersItsStatusAndBody) {
  FakeUpstream& a = AddUpstream("a");
  Install(json::array({{{"match", {{"service", "tea"}}},
                        {"direct_response", {{"status", 418}, {"body", "short and stout"}}}},
                       {{"cluster", "c"}}}),
          json::array({Cluster("c", {a.address()})}));

  Request& request = Send("tea");
  ASSERT_TRUE(request.downstream->complete);
  EXPECT_EQ(request.downstream->status(), 418);
  EXPECT_EQ(request.router->info().local_reply, LocalReplyReason::kDirectResponse);
  EXPECT_EQ(request.downstream->body, "short and stout");
  ASSERT_NE(request.downstream->headers_->headers.Get("content-length"), nullptr);
  EXPECT_EQ(*request.downstream->headers_->headers.Get("content-length"), "15");
  EXPECT_EQ(a.accepts, 0);
}

// 9. An idle upstream connection is closed once idle_timeout_ms of simulated time has passed.
TEST_F(RouterTest, IdleConnectionClosedAfterIdleTimeout) {
  FakeUpstream& a = AddUpstream("a");
  Install(json::array({{{"cluster", "c"}}}),
          json::array({Cluster("c", {a.address()}, {{"idle_timeout_ms", 3000}})}));

  Request& request = Send("svc");
  ASSERT_TRUE(Complete(request));
  ASSERT_EQ(request.downstream->status(), 200);
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 1u);
  Advance(milliseconds(2999));
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 1u);
  Advance(milliseconds(1));
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 0u);
  EXPECT_EQ(Info("c").stats.connections_active->Value(), 0);
  ASSERT_TRUE(RunUntil([&] { return a.closes == 1; }));
}

// 10. A host that never completes the handshake fails the try after connect_timeout_ms.
TEST_F(RouterTest, ConnectTimeoutIs503ConnectFailure) {
  std::unique_ptr<RawHost> silent = RawHost::Unresponsive();
  Install(json::array({{{"cluster", "c"}, {"timeout_ms", 10000}}}),
          json::array({Cluster("c", {silent->address()}, {{"connect_timeout_ms", 500}})}));

  Request& request = Send("svc");
  // Give the loop a chance to see a (wrong) connect outcome before time moves.
  RunPending();
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 1u);
  Advance(milliseconds(499));
  EXPECT_FALSE(request.downstream->started());
  Advance(milliseconds(1));
  ASSERT_TRUE(request.downstream->complete);
  EXPECT_EQ(request.downstream->status(), 503);
  EXPECT_EQ(request.router->info().local_reply, LocalReplyReason::kConnectFailure);
  EXPECT_EQ(Info("c").stats.connect_failures->Value(), 1u);
  EXPECT_EQ(Pool("c", 0).ConnectionCount(), 0u);
}

// A mirrored route hands a copy of the request, body included, to RouterContext::StartShadow.
TEST_F(RouterTest, MirrorStartsAShadowWithTheBody) {
  FakeUpstream& a = AddUpstream("a");
  FakeUpstream& s = AddUpstream("s");
  Install(json::array({{{"cluster", "c"},
                        {"timeout_ms", 700},
                        {"mirror", {{"cluster", "shadow"}, {"percent", 100}}}}}),
          json::array({Cluster("c", {a.address()}), Cluster("shadow", {s.address()})}));

  Request& request = Send("svc", "payload");
  ASSERT_TRUE(Complete(request));
  EXPECT_EQ(request.downstream->status(), 200);
  ASSERT_EQ(context_->shadows.size(), 1u);
  EXPECT_EQ(context_->shadows[0].cluster, "shadow");
  EXPECT_EQ(context_->shadows[0].host, "svc-shadow");
  EXPECT_EQ(context_->shadows[0].body, "payload");
  EXPECT_EQ(context_->shadows[0].timeout, milliseconds(700));
}

}  // namespace
}  // namespace ottava::mesh
