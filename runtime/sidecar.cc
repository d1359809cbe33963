#include "runtime/sidecar.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "actuator/actuator.h"
#include "common/accept_loop.h"
#include "common/dispatcher.h"
#include "common/logging.h"
#include "common/stats.h"
#include "common/status.h"
#include "components/rpc/mesh/mesh_rpc.h"
#include "components/transferable.h"
#include "mesh/engine.h"
#include "mesh/filter/flow_control/flow_control_filter.h"
#include "runtime/api/config_api.h"
#include "runtime/api/lock_api.h"
#include "runtime/api/metadata_api.h"
#include "runtime/api/pubsub_api.h"
#include "runtime/api/sequencer_api.h"
#include "runtime/api/state_api.h"
#include "runtime/callback/app_callback.h"
#include "runtime/callback/app_rpc.h"
#include "runtime/callback/dapr_grpc_channel.h"
#include "runtime/callback/http_app_channel.h"
#include "runtime/callback/subscriptions.h"
#include "runtime/component_set.h"
#include "runtime/config/dapr_resources.h"
#include "runtime/flow_control.h"
#include "runtime/grpc/dapr_service.h"
#include "runtime/grpc/layotto_service.h"
#include "runtime/grpc/unknown_methods.h"
#include "runtime/http/dapr_http.h"
#include "runtime/upgrade/counters.h"
#include "runtime/upgrade/upgrade.h"
#include "runtime/version.h"

namespace ottava::runtime {
namespace {

using components::HealthState;

bool WriteReadyFile(const std::string& path, const nlohmann::json& body) {
  const std::string temp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    if (!out) {
      return false;
    }
    out << body.dump() << "\n";
    if (!out.good()) {
      return false;
    }
  }
  return std::rename(temp.c_str(), path.c_str()) == 0;
}

// Liveness of the component event loop: a timer on the loop stamps the time every second.
class LoopHeartbeat {
 public:
  explicit LoopHeartbeat(Dispatcher& dispatcher) : dispatcher_(dispatcher) {
    dispatcher_.Post([this] {
      timer_ = dispatcher_.CreateTimer([this] { Beat(); });
      Beat();
    });
  }
  ~LoopHeartbeat() = default;  // the timer is freed with the stopped dispatcher's closures

  bool Alive() const {
    const int64_t last = last_.load(std::memory_order_relaxed);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    return last != 0 && now - last < 10000;
  }

  void StopOnLoop() {
    dispatcher_.Post([this] { timer_.reset(); });
  }

 private:
  void Beat() {
    last_.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count(),
                std::memory_order_relaxed);
    timer_->Enable(std::chrono::milliseconds(1000));
  }

  Dispatcher& dispatcher_;
  TimerPtr timer_;
  std::atomic<int64_t> last_{0};
};

// The component loop, the components on it and the loop's heartbeat. Stop() (or destruction)
// shuts the components down, then the loop.
class ComponentHost {
 public:
  ComponentHost(DispatcherPtr dispatcher, std::unique_ptr<ComponentSet> set)
      : dispatcher_(std::move(dispatcher)), set_(std::move(set)), heartbeat_(*dispatcher_) {}
  ~ComponentHost() { Stop(); }

  absl::Status InitAll() {
    initialised_ = true;
    return set_->InitAll();
  }

  void Stop() {
    if (stopped_) {
      return;
    }
    stopped_ = true;
    if (initialised_) {
      set_->ShutdownAll();
    }
    heartbeat_.StopOnLoop();
    dispatcher_->Stop();
  }

  Dispatcher& dispatcher() { return *dispatcher_; }
  ComponentSet& set() { return *set_; }
  const LoopHeartbeat& heartbeat() const { return heartbeat_; }

 private:
  DispatcherPtr dispatcher_;
  std::unique_ptr<ComponentSet> set_;
  LoopHeartbeat heartbeat_;
  bool initialised_ = false;
  bool stopped_ = false;
};

// The gRPC front ends: the API cores over the components, the Layotto and Dapr services (one
// server, one port) and the answer for every other method.
class ApiServer {
 public:
  ApiServer(ComponentSet& set,
            Dispatcher& dispatcher,
            stats::Store& stats,
            const std::string& app,
            components::rpc::Rpc* rpc,
            api::MetadataApi* metadata,
            std::function<void()> shutdown,
            mesh::flow::Controller* flow,
            const std::string& api_token)
      : state_(set, app),
        lock_(set, app),
        sequencer_(set, app),
        config_(set, app),
        pubsub_(set, app),
        layotto_(grpc_api::Apis{&state_, &lock_, &sequencer_, &config_, &pubsub_, &dispatcher,
                                &stats, app, rpc, metadata, nullptr, flow, api_token, &forward_},
                 streams_),
        apis_{&state_, &lock_,   &sequencer_,         &config_, &pubsub_,  &dispatcher, &stats, app,
              rpc,     metadata, std::move(shutdown), flow,     api_token, &forward_},
        dapr_(apis_, streams_),
        unknown_methods_(api_token) {}
  ~ApiServer() {
    Shutdown();
    if (listen_fd_ >= 0) {
      ::close(listen_fd_);
    }
  }

  // Starts the server on a listening socket of ours: `inherited_fd` (upgrade; owned from now on)
  // or one bound to grpc.address. gRPC cannot adopt a listening socket, so connections are
  // accepted here and handed to it through its external connection acceptor; nothing is
  // accepted until StartAccepting(). Returns the bound "host:port".
  absl::StatusOr<std::string> Start(const config::Bootstrap& bootstrap, int inherited_fd) {
    if (inherited_fd >= 0) {
      listen_fd_ = inherited_fd;
    } else {
      absl::StatusOr<int> fd = BindListenSocket(bootstrap.grpc_address);
      if (!fd.ok()) {
        return absl::UnavailableError("cannot listen on " + bootstrap.grpc_address.ToString() +
                                      " (/grpc/address): address in use or not local");
      }
      listen_fd_ = *fd;
    }
    absl::StatusOr<Address> bound = SocketAddress(listen_fd_);
    if (!bound.ok()) {
      return bound.status();
    }
    grpc::ServerBuilder builder;
    acceptor_ = builder.experimental().AddExternalConnectionAcceptor(
        grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
        grpc::InsecureServerCredentials());
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    max_connection_age_ = std::chrono::milliseconds(bootstrap.grpc_max_connection_age_ms);
    if (max_connection_age_.count() > 0) {
      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                                 static_cast<int>(max_connection_age_.count()));
    }
    builder.SetMaxReceiveMessageSize(static_cast<int>(bootstrap.max_message_bytes));
    builder.SetMaxSendMessageSize(static_cast<int>(bootstrap.max_message_bytes));
    builder.RegisterService(&layotto_);
    builder.RegisterService(&dapr_);
    builder.RegisterCallbackGenericService(&unknown_methods_);
    server_ = builder.BuildAndStart();
    if (!server_) {
      return absl::UnavailableError("cannot start the gRPC server on " +
                                    bootstrap.grpc_address.ToString() + " (/grpc/address)");
    }
    // Where an upgrade's old process forwards its calls: this socket, which only the new
    // process accepts from by then.
    forward_target_ = Address{bootstrap.grpc_address.host, bound->port}.Reachable().ToString();
    return bootstrap.grpc_address.host + ":" + std::to_string(bound->port);
  }

  // Starts accepting on the gRPC and Dapr HTTP sockets: the APIs that reach the components. On
  // upgrade this waits until the previous process's in-memory state was imported.
  absl::Status StartAccepting() {
    if (http_ && !http_started_) {
      http_started_ = true;
      http_->Start();
    }
    accept_ = std::make_unique<AcceptLoop>(listen_fd_, "grpc-accept", [this](int fd) {
      grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters params;
      params.listener_fd = listen_fd_;
      params.fd = fd;
      last_accept_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                            std::memory_order_relaxed);
      acceptor_->HandleNewConnection(&params);
    });
    return accept_->Start();
  }

  // Upgrade: stops accepting (the next process accepts from the same sockets) and ends the
  // streams so clients re-subscribe on the new process; unary calls in flight finish. With
  // connection ageing (grpc.max_connection_age_ms) the server stays up and forwards every later
  // call to the new process until the connections have aged out (see CallForwarder); without,
  // every client gets GOAWAY at once (a shutdown with `deadline`, on a thread of its own).
  void StopAcceptingForUpgrade(std::chrono::system_clock::time_point deadline) {
    if (accept_ != nullptr) {
      accept_->Stop();
    }
    if (server_ && max_connection_age_.count() > 0) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(-1);
      args.SetMaxSendMessageSize(-1);
      forward_.Arm(
          grpc::CreateCustomChannel(forward_target_, grpc::InsecureChannelCredentials(), args));
      if (http_) {
        http_->StopAccepting();  // its requests are forwarded too (to its own address)
      }
      streams_.ShutdownStreams();  // their re-subscriptions are forwarded
      return;
    }
    if (http_) {
      http_->StopAccepting();
    }
    streams_.ShutdownStreams();
    if (server_ && !shutdown_thread_.joinable()) {
      shutdown_thread_ = std::thread([this, deadline] {
        shutdown_started_.store(true);
        server_->Shutdown(deadline);
      });
    }
  }

  // Upgrade: waits (bounded) until the gRPC server stopped admitting calls, so that the calls in
  // flight can be counted to zero. Shutdown() runs on its own thread (it blocks until its
  // deadline); it closes admission at its start, so a short grace after the thread entered it
  // is enough.
  void WaitUntilNoNewCalls(std::chrono::steady_clock::time_point deadline) {
    while (!shutdown_started_.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    std::this_thread::sleep_for(kShutdownGrace);
  }

  // Upgrade: whether calls go on to the new process (StopAcceptingForUpgrade with ageing).
  bool forwarding() const { return forward_.active(); }
  // Upgrade: waits (bounded) until no call is served here any more: the ones that were when
  // forwarding began have finished. Returns how many are left.
  int64_t WaitForLocalCalls(std::chrono::steady_clock::time_point deadline) const {
    while (forward_.local_in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return forward_.local_in_flight();
  }
  // Upgrade: when every client connection accepted here has had its graceful GOAWAY (each ages
  // out at grpc.max_connection_age_ms + up to 10 % jitter; the margin covers the PING that
  // completes the GOAWAY). From then on no client sends a call here.
  std::chrono::steady_clock::time_point AgedOutAt() const {
    const int64_t last = last_accept_ns_.load(std::memory_order_relaxed);
    if (last == 0) {
      return std::chrono::steady_clock::now();
    }
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last)) +
           max_connection_age_ * 11 / 10 + kGoawayMargin;
  }
  // Upgrade: ends the streams proxied to the new process (UNAVAILABLE: clients re-subscribe on
  // their new connection).
  void EndForwardedStreams() { forward_.EndStreams(); }
  // Upgrade: how many calls (unary and streams) went on to the new process.
  uint64_t forwarded_calls() const { return forward_.forwarded_total(); }

  int listen_fd() const { return listen_fd_; }
  int http_listen_fd() const { return http_ ? http_->listen_fd() : -1; }

  // Binds Dapr's HTTP API and serves it, or with `defer` (upgrade: the state is not imported
  // yet) from StartAccepting() on; returns the bound "host:port".
  absl::StatusOr<std::string> StartHttp(const config::Bootstrap& bootstrap,
                                        std::function<bool()> ready,
                                        std::function<bool()> outbound_ready,
                                        int inherited_fd,
                                        bool defer) {
    http_api::Options options;
    options.address = bootstrap.dapr_http_address;
    options.max_body_bytes = bootstrap.max_message_bytes;
    options.ready = std::move(ready);
    options.outbound_ready = std::move(outbound_ready);
    options.inherited_fd = inherited_fd;
    auto http = http_api::DaprHttpServer::Create(apis_, std::move(options));
    if (!http.ok()) {
      return http.status();
    }
    http_ = std::move(*http);
    if (!defer) {
      http_started_ = true;
      http_->Start();
    }
    return http_->address();
  }

  // Ends the streams; unary calls in flight go on until Shutdown().
  void ShutdownStreams() { streams_.ShutdownAll(); }

  // Cancels what is still in flight and waits for the servers. Idempotent.
  void Shutdown() {
    if (accept_ != nullptr) {
      accept_->Stop();
    }
    if (http_) {
      http_->Stop();  // waits for the HTTP requests in progress
    }
    if (shutdown_thread_.joinable()) {
      shutdown_thread_.join();
    }
    forward_.CancelAll(std::chrono::steady_clock::now() + std::chrono::seconds(1));
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
      server_->Wait();
      server_.reset();
    }
  }

  api::PubSubApi& pubsub() { return pubsub_; }

 private:
  api::StateApi state_;
  api::LockApi lock_;
  api::SequencerApi sequencer_;
  api::ConfigApi config_;
  api::PubSubApi pubsub_;
  grpc_api::CallForwarder forward_;  // before the services, which point at it
  grpc_api::StreamRegistry streams_;
  grpc_api::LayottoService layotto_;
  grpc_api::Apis apis_;  // Dapr's, shared by its gRPC and HTTP front ends
  grpc_api::DaprService dapr_;
  grpc_api::UnknownMethods unknown_methods_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  int listen_fd_ = -1;
  std::chrono::milliseconds max_connection_age_{0};
  std::string forward_target_;
  std::atomic<int64_t> last_accept_ns_{0};  // steady clock, 0: none yet
  static constexpr auto kGoawayMargin = std::chrono::milliseconds(250);
  std::unique_ptr<AcceptLoop> accept_;
  std::thread shutdown_thread_;  // the upgrade's GOAWAY shutdown
  std::atomic<bool> shutdown_started_{false};
  // Calls gRPC had read before Shutdown() closed admission may still reach their handlers after
  // it; the grace lets them start (and be counted in flight) before the freeze. 3 ms was too
  // short under `make test`'s load: a SaveState reached a frozen store 1 run in 4. It adds to
  // the API pause of an upgrade (28–39 ms measured with 3 ms).
  static constexpr auto kShutdownGrace = std::chrono::milliseconds(25);
  std::unique_ptr<http_api::DaprHttpServer> http_;
  bool http_started_ = false;
};

// The mesh engine in the sidecar's mesh slot.
class MeshSubsystem : public Subsystem {
 public:
  explicit MeshSubsystem(std::unique_ptr<mesh::Engine> engine) : engine_(std::move(engine)) {}
  ~MeshSubsystem() override { Stop(); }

  absl::Status Start() override { return Start(nullptr); }

  // `inherited`: listener name -> socket taken over on upgrade (see Engine::Start).
  absl::Status Start(std::map<std::string, int>* inherited) {
    absl::Status status = engine_->Start(inherited);
    if (!status.ok()) {
      return absl::Status(status.code(), "mesh: " + std::string(status.message()));
    }
    return absl::OkStatus();
  }

  // Stops accepting, then waits for the requests in flight (bounded by the drain deadline).
  void Drain(std::chrono::steady_clock::time_point deadline) override {
    engine_->Drain();
    while (engine_->ActiveRequests() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  void Stop() override {
    if (!stopped_) {
      stopped_ = true;
      engine_->Stop();
    }
  }

  std::map<std::string, std::string> Listeners() const override {
    return engine_->ListenerAddresses();
  }

  mesh::Engine& engine() { return *engine_; }

 private:
  std::unique_ptr<mesh::Engine> engine_;
  bool stopped_ = false;
};

// The mesh's actuator endpoints: a dump, and the dynamic update of routers and clusters.
void AddMeshHandlers(actuator::Actuator& actuator, mesh::Engine& engine) {
  mesh::Engine* engine_view = &engine;
  actuator.AddHandler(
      "GET", "/actuator/mesh", "mesh listeners, routers, clusters and hosts",
      [engine_view](const actuator::HttpRequest&) {
        return actuator::HttpResponse{200, "application/json", engine_view->Describe().dump()};
      });
  actuator.AddHandler(
      "PUT", "/actuator/mesh/config",
      "replace mesh routers and clusters: {\"routers\": [...], \"clusters\": [...]}",
      [engine_view](const actuator::HttpRequest& request) {
        nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
        if (body.is_discarded() || !body.is_object()) {
          return actuator::HttpResponse{
              400, "application/json",
              nlohmann::json{{"error", "body must be a JSON object"}}.dump()};
        }
        absl::Status status = engine_view->Update(body);
        if (!status.ok()) {
          return actuator::HttpResponse{
              400, "application/json",
              nlohmann::json{{"error", std::string(status.message())}}.dump()};
        }
        return actuator::HttpResponse{200, "application/json", engine_view->Describe().dump()};
      },
      /*loopback_only=*/true);
}

}  // namespace

// Members are destroyed in reverse order, so a failed Start() unwinds the subsystems it started:
// subscriptions, gRPC, [mesh], actuator, then the components and their loop.
struct Sidecar::State {
  RunOptions options;
  sigset_t signals;
  config::Bootstrap bootstrap;
  components::Registry registry;
  stats::Store stats;
  components::HealthIndicator startup;  // INIT until serving, DOWN on shutdown
  std::unique_ptr<ComponentHost> components;
  std::unique_ptr<api::MetadataApi> metadata;  // /actuator/info and Dapr's metadata
  // Flow control (issue 9): outlives the engine and the gRPC server, whose requests use it.
  std::unique_ptr<FlowControl> flow;
  std::unique_ptr<actuator::Actuator> actuator;
  // The mesh engine (MeshSubsystem): started after the components and before gRPC, drained with
  // the gRPC drain, stopped before the components. Its Listeners() fill the ready file's
  // "listeners" object. Null when the config has no mesh section.
  std::unique_ptr<MeshSubsystem> mesh;
  std::unique_ptr<components::rpc::MeshRpc> rpc;  // InvokeService over the mesh
  std::unique_ptr<ApiServer> api;
  std::string grpc_address;
  std::string dapr_http_address;
  std::shared_ptr<callback::AppChannel> app;
  // InvokeService as the front ends see it: the own app id to the app, the rest to the mesh.
  std::unique_ptr<callback::AppAwareRpc> app_rpc;
  std::unique_ptr<callback::SubscriptionManager> subscriptions;
  bool ready_file_written = false;

  // Hot upgrade (runtime/upgrade/). The binary path is read at startup: SIGHUP runs whatever
  // is at that path then.
  std::string binary_path;
  std::string socket_path;  // the control socket
  // New process: until taken over, then on `migration_receiver`, which adopts the Bolt and
  // Dubbo connections the old process migrates until it says "end" (or Stop() cancels it).
  std::unique_ptr<upgrade::TakeoverClient> takeover;
  std::thread migration_receiver;
  std::map<std::string, int> inherited;               // new process: sockets not yet used
  std::unique_ptr<upgrade::HandoverSource> handover;  // old process: what is handed over
  // Old process, from HandedOver (upgrade thread) to DrainAfterHandover (main thread): which mesh
  // listeners' connections migrate, and where they go.
  std::mutex migration_mu;
  std::map<std::string, std::string> migration_adopt;
  std::shared_ptr<upgrade::MigrationQueue> migration_queue;
  std::unique_ptr<upgrade::UpgradeServer> upgrade_server;
  int64_t generation = 1;
  std::string took_over_at;  // RFC 3339, empty for generation 1
  pid_t previous_pid = 0;
  std::atomic<bool> handed_over{false};
  std::atomic<bool> upgrading{false};  // one trigger at a time
};

namespace {

std::string NowRfc3339() {
  char text[64];
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc;
  gmtime_r(&seconds, &utc);
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// The running sidecar's side of a handover: its sockets, how it stops accepting.
class SidecarHandover : public upgrade::HandoverSource {
 public:
  explicit SidecarHandover(Sidecar::State& s) : s_(s) {}

  std::vector<std::pair<std::string, int>> ListeningSockets() override;
  void StopAccepting() override;
  std::vector<upgrade::StateChunk> ExportState() override;
  void HandedOver(pid_t pid,
                  const std::map<std::string, std::string>& adopt,
                  std::shared_ptr<upgrade::MigrationQueue> queue) override {
    OTTAVA_LOG(Runtime, info, "upgrade: pid {} serves now", pid);
    {
      std::lock_guard<std::mutex> lock(s_.migration_mu);
      s_.migration_adopt = adopt;
      s_.migration_queue = std::move(queue);
    }
    kill(getpid(), SIGUSR2);  // WaitForSignal() returns and the process drains
  }

 private:
  Sidecar::State& s_;
};

std::vector<std::pair<std::string, int>> SidecarHandover::ListeningSockets() {
  std::vector<std::pair<std::string, int>> out;
  if (s_.api != nullptr) {
    out.emplace_back("grpc", s_.api->listen_fd());
    if (s_.api->http_listen_fd() >= 0) {
      out.emplace_back("dapr_http", s_.api->http_listen_fd());
    }
  }
  if (s_.actuator != nullptr) {
    out.emplace_back("actuator", s_.actuator->listen_fd());
  }
  if (s_.mesh != nullptr) {
    for (const auto& [name, fd] : s_.mesh->engine().ListenerFds()) {
      out.emplace_back("mesh/" + name, fd);
    }
  }
  return out;
}

void SidecarHandover::StopAccepting() {
  if (s_.mesh != nullptr) {
    s_.mesh->engine().StopAccepting();
  }
  if (s_.actuator != nullptr) {
    s_.actuator->StopAccepting();
  }
  if (s_.api != nullptr) {
    s_.api->StopAcceptingForUpgrade(std::chrono::system_clock::now() +
                                    std::chrono::seconds(s_.bootstrap.upgrade.drain_seconds));
  }
}

// How long the old process waits for the API calls in flight before it freezes its in-memory
// components. Freezing is safe at any moment (a later write fails, unacknowledged); the wait only
// turns such failures into the rare case. It lengthens the switch only while calls are running.
constexpr auto kQuiesceLimit = std::chrono::milliseconds(1000);

std::string LabelOf(const config::ComponentConfig& config) {
  return std::string(components::KindName(config.kind)) + "/" + config.name;
}

template <class T>
void ExportInstances(const std::vector<Instance<T>>& instances,
                     std::vector<upgrade::StateChunk>& out) {
  for (const auto& instance : instances) {
    auto* transferable = dynamic_cast<components::Transferable*>(instance.component.get());
    if (transferable == nullptr) {
      continue;
    }
    for (std::string& payload : transferable->FreezeAndExport(upgrade::kStateChunkBytes)) {
      out.push_back({LabelOf(*instance.config), instance.config->type, transferable->StateFormat(),
                     std::move(payload)});
    }
  }
}

std::vector<upgrade::StateChunk> SidecarHandover::ExportState() {
  stats::Gauge& in_flight = s_.stats.GaugeFor("ottava_grpc_requests_in_flight",
                                              "API requests and streams currently being served");
  const auto deadline = std::chrono::steady_clock::now() + kQuiesceLimit;
  if (s_.api != nullptr && s_.api->forwarding()) {
    // New calls go on to the new process; wait for the ones served here.
    if (const int64_t left = s_.api->WaitForLocalCalls(deadline); left > 0) {
      OTTAVA_LOG(Runtime, info, "upgrade: {} API call(s) still in flight at the freeze", left);
    }
  } else {
    if (s_.api != nullptr) {
      s_.api->WaitUntilNoNewCalls(deadline);
    }
    while (in_flight.Value() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (in_flight.Value() > 0) {
      OTTAVA_LOG(Runtime, info, "upgrade: {} API call(s) still in flight at the freeze",
                 in_flight.Value());
    }
  }
  std::vector<upgrade::StateChunk> out;
  ComponentSet& set = s_.components->set();
  ExportInstances(set.states(), out);
  ExportInstances(set.locks(), out);
  ExportInstances(set.sequencers(), out);
  ExportInstances(set.config_stores(), out);
  ExportInstances(set.pubsubs(), out);
  for (std::string& payload :
       upgrade::EncodeCounters(upgrade::CountersFromPrometheus(s_.stats.RenderPrometheus()),
                               upgrade::kStateChunkBytes)) {
    out.push_back({"metrics", "counters", upgrade::kCountersFormat, std::move(payload)});
  }
  return out;
}

// New process: imports one chunk of the previous process's state into the component of the same
// kind, name and type. Returns an error for a chunk nobody here can take.
absl::Status ImportChunk(ComponentSet& set, stats::Store& stats, upgrade::StateChunk&& chunk) {
  if (chunk.component == "metrics") {
    if (chunk.format != upgrade::kCountersFormat) {
      return absl::InvalidArgumentError("metrics: counters format " + std::to_string(chunk.format) +
                                        " unknown");
    }
    absl::StatusOr<std::vector<upgrade::CounterValue>> counters =
        upgrade::DecodeCounters(chunk.payload);
    if (!counters.ok()) {
      return counters.status();
    }
    upgrade::SeedCounters(stats, *counters);
    return absl::OkStatus();
  }
  components::Transferable* target = nullptr;
  auto find = [&](const auto& instances) {
    for (const auto& instance : instances) {
      if (LabelOf(*instance.config) == chunk.component &&
          instance.config->type == chunk.component_type) {
        target = dynamic_cast<components::Transferable*>(instance.component.get());
      }
    }
  };
  find(set.states());
  find(set.locks());
  find(set.sequencers());
  find(set.config_stores());
  find(set.pubsubs());
  if (target == nullptr) {
    return absl::NotFoundError(chunk.component + " (" + chunk.component_type +
                               "): no such in-memory component in the new config; its data is "
                               "dropped");
  }
  return target->ImportState(chunk.format, chunk.payload);
}

// An inherited socket for `name` if one listens on `address`; else -1 (bind a new one).
int TakeInherited(std::map<std::string, int>& inherited,
                  const std::string& name,
                  const Address& address) {
  auto found = inherited.find(name);
  if (found == inherited.end() || !ListenSocketMatches(found->second, address)) {
    return -1;
  }
  int fd = found->second;
  inherited.erase(found);
  return fd;
}

}  // namespace

int ExitCodeOf(const absl::Status& create_error) {
  return create_error.code() == absl::StatusCode::kInvalidArgument ? kExitBadConfig
                                                                   : kExitComponentFailed;
}

absl::StatusOr<std::unique_ptr<Sidecar>> Sidecar::Create(const RunOptions& options) {
  auto state = std::make_unique<State>();
  state->options = options;
  // Signals are taken synchronously by WaitForSignal(); every thread started later inherits the
  // mask.
  sigemptyset(&state->signals);
  sigaddset(&state->signals, SIGTERM);
  sigaddset(&state->signals, SIGINT);
  sigaddset(&state->signals, SIGHUP);   // upgrade
  sigaddset(&state->signals, SIGUSR2);  // a new process took over
  pthread_sigmask(SIG_BLOCK, &state->signals, nullptr);
  {
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    state->binary_path = n > 0 ? std::string(path, static_cast<size_t>(n)) : "";
  }
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<config::Bootstrap> loaded =
      config::LoadWithResources(options.config_path, options.resources_paths);
  if (!loaded.ok()) {
    return absl::InvalidArgumentError("invalid config " + std::string(loaded.status().message()));
  }
  state->bootstrap = std::move(*loaded);
  // Dapr's environment variables win over the file.
  if (const char* token = std::getenv("DAPR_API_TOKEN"); token != nullptr && *token != 0) {
    state->bootstrap.api_token = token;
  }
  if (const char* token = std::getenv("APP_API_TOKEN");
      token != nullptr && *token != 0 && state->bootstrap.app.callback) {
    state->bootstrap.app.callback->api_token = token;
  }
  const config::Bootstrap& bootstrap = state->bootstrap;
  const std::string level =
      options.log_level_override.empty() ? bootstrap.log_level : options.log_level_override;
  if (absl::Status status = logging::SetAllLevels(level); !status.ok()) {
    return absl::InvalidArgumentError("--log-level: " + std::string(status.message()));
  }

  components::RegisterBuiltins(state->registry);
  auto dispatcher = Dispatcher::Create("ottava-comp");
  if (!dispatcher.ok()) {
    return absl::InternalError(dispatcher.status().message());
  }
  (*dispatcher)->Start();
  auto set = ComponentSet::Create(bootstrap, state->registry, dispatcher->get(), &state->stats);
  if (!set.ok()) {
    return absl::InvalidArgumentError("invalid config " + options.config_path + ": " +
                                      std::string(set.status().message()));
  }
  state->components = std::make_unique<ComponentHost>(std::move(*dispatcher), std::move(*set));
  state->flow = std::make_unique<FlowControl>(bootstrap.flow_control, state->stats);
  // Live rule sets may name only the mesh's clusters as fallbacks (as the config file's may).
  std::set<std::string, std::less<>> cluster_names;
  for (const mesh::ClusterConfig& cluster :
       bootstrap.mesh ? bootstrap.mesh->clusters : std::vector<mesh::ClusterConfig>{}) {
    cluster_names.insert(cluster.name);
  }
  state->flow->controller().SetClusterNames(
      [names = std::move(cluster_names)](std::string_view name) { return names.contains(name); });
  if (bootstrap.mesh) {
    // Validated and built now, started once the components are up.
    std::vector<mesh::FilterFactoryPtr> filters;
    filters.push_back(mesh::flow::CreateFlowControlFilterFactory(state->flow->controller()));
    auto engine = mesh::Engine::Create(*bootstrap.mesh, state->stats, std::move(filters));
    if (!engine.ok()) {
      return absl::InvalidArgumentError("invalid config " + options.config_path + ": " +
                                        std::string(engine.status().message()));
    }
    state->mesh = std::make_unique<MeshSubsystem>(std::move(*engine));
    state->rpc = std::make_unique<components::rpc::MeshRpc>(state->mesh->engine());
    if (!bootstrap.mesh->rpc_headers.empty()) {
      std::vector<std::pair<std::string, std::string>> headers(bootstrap.mesh->rpc_headers.begin(),
                                                               bootstrap.mesh->rpc_headers.end());
      state->rpc->AddFilter(components::rpc::CreateAddHeadersFilter(std::move(headers)));
    }
  }
  return std::unique_ptr<Sidecar>(new Sidecar(std::move(state)));
}

Sidecar::Sidecar(std::unique_ptr<State> state) : state_(std::move(state)) {}

namespace {

// POST /actuator/upgrade [{"config": FILE}]: the same upgrade as SIGHUP, answered when the new
// process took over (200, its report) or failed (500, its error; 409 when one is running).
void AddUpgradeHandler(actuator::Actuator& actuator, Sidecar& sidecar) {
  Sidecar* view = &sidecar;
  actuator.AddHandler(
      "POST", "/actuator/upgrade",
      "start a new process that takes over from this one: {\"config\": FILE} (optional)",
      [view](const actuator::HttpRequest& request) {
        std::string config;
        if (!request.body.empty()) {
          nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
          if (body.is_discarded() || !body.is_object() ||
              (body.contains("config") && !body["config"].is_string())) {
            return actuator::HttpResponse{
                400, "application/json",
                nlohmann::json{{"error", "body must be {\"config\": \"FILE\"} or empty"}}.dump()};
          }
          config = body.value("config", std::string());
        }
        absl::StatusOr<nlohmann::json> report = view->Upgrade(config);
        if (!report.ok()) {
          const int status = report.status().code() == absl::StatusCode::kAlreadyExists ? 409 : 500;
          return actuator::HttpResponse{
              status, "application/json",
              nlohmann::json{{"error", std::string(report.status().message())}}.dump()};
        }
        return actuator::HttpResponse{200, "application/json", report->dump()};
      },
      /*loopback_only=*/true);
}

}  // namespace

Sidecar::~Sidecar() {
  Stop();
}

absl::Status Sidecar::Start() {
  State& s = *state_;
  const config::Bootstrap& bootstrap = s.bootstrap;
  ComponentSet& set = s.components->set();
  for (const auto& summary : set.Summaries()) {
    const config::ComponentConfig* config = summary.config;
    const components::HealthIndicator* health = summary.health;
    s.stats.CallbackGauge("ottava_component_health",
                          "Component instance health: 1 UP, 0 INIT, -1 DOWN",
                          {{"kind", std::string(components::KindName(config->kind))},
                           {"name", config->name},
                           {"type", config->type}},
                          [health] {
                            switch (health->state()) {
                              case HealthState::kUp:
                                return 1.0;
                              case HealthState::kInit:
                                return 0.0;
                              case HealthState::kDown:
                                return -1.0;
                            }
                            return 0.0;
                          });
  }

  const LoopHeartbeat* heartbeat = &s.components->heartbeat();
  const components::HealthIndicator* startup = &s.startup;
  auto liveness = [startup, heartbeat] {
    std::vector<actuator::Indicator> out;
    out.push_back({"runtime",
                   startup->state() == HealthState::kDown ? HealthState::kDown : HealthState::kUp,
                   startup->state() == HealthState::kDown ? startup->reason() : ""});
    out.push_back({"component_event_loop",
                   heartbeat->Alive() ? HealthState::kUp : HealthState::kDown,
                   heartbeat->Alive() ? "" : "the component event loop stopped responding"});
    return out;
  };
  const ComponentSet* set_view = &set;
  const FlowControl* flow_view = s.flow.get();
  auto readiness = [startup, set_view, flow_view] {
    std::vector<actuator::Indicator> out;
    out.push_back({"runtime_startup", startup->state(), startup->reason()});
    // Listed, not counted: with Redis down the cluster rules fall back and the sidecar still
    // serves, so readiness stays UP while this shows the degradation.
    if (const components::HealthIndicator* cluster = flow_view->cluster_health()) {
      out.push_back({"flow_control/cluster_counter", cluster->state(), cluster->reason(), false});
    }
    for (const auto& summary : set_view->Summaries()) {
      out.push_back(
          {std::string(components::KindName(summary.config->kind)) + "/" + summary.config->name,
           summary.health->state(), summary.health->reason(), summary.config->required});
    }
    return out;
  };
  s.metadata = std::make_unique<api::MetadataApi>(set, s.registry, bootstrap.app.id);
  const api::MetadataApi* metadata = s.metadata.get();
  const State* info_state = &s;
  auto describe = [metadata, info_state] {
    nlohmann::json info = api::ToInfoJson(metadata->Describe());
    info["upgrade"] = {{"generation", info_state->generation},
                       {"took_over_at", info_state->took_over_at.empty()
                                            ? nlohmann::json(nullptr)
                                            : nlohmann::json(info_state->took_over_at)},
                       {"previous_pid", info_state->previous_pid},
                       {"pid", getpid()}};
    return info;
  };
  if (!s.options.takeover_socket.empty()) {
    // Upgrade: say hello first (a version mismatch is refused before any work), initialise the
    // components, then take the sockets: the actuator serves on the old process's.
    auto client = upgrade::TakeoverClient::Connect(s.options.takeover_socket);
    if (!client.ok()) {
      return absl::Status(client.status().code(),
                          "upgrade: " + std::string(client.status().message()));
    }
    s.takeover = std::move(*client);
    s.generation = s.takeover->old_generation() + 1;
    s.previous_pid = s.takeover->old_pid();
    if (s.options.ready_file.empty()) {
      s.options.ready_file = s.takeover->old_ready_file();
    }
    if (absl::Status status = s.components->InitAll(); !status.ok()) {
      return absl::Status(status.code(), "component " + std::string(status.message()));
    }
    auto sockets = s.takeover->TakeSockets(std::chrono::seconds(bootstrap.upgrade.timeout_seconds));
    if (!sockets.ok()) {
      return absl::Status(sockets.status().code(),
                          "upgrade: " + std::string(sockets.status().message()));
    }
    s.inherited = std::move(*sockets);
    OTTAVA_LOG(Runtime, info, "upgrade: took {} sockets from pid {} (generation {})",
               s.inherited.size(), s.previous_pid, s.takeover->old_generation());
  }
  s.stats.GaugeFor("ottava_upgrade_generation", "Process generation: 1, then +1 per upgrade")
      .Set(s.generation);
  s.stats
      .GaugeFor("ottava_upgrade_inherited_sockets",
                "Listening sockets this process took over from the previous one")
      .Set(static_cast<int64_t>(s.inherited.size()));
  auto actuator = actuator::Actuator::Create(
      bootstrap.actuator_address.host, bootstrap.actuator_address.port,
      TakeInherited(s.inherited, "actuator", bootstrap.actuator_address));
  if (!actuator.ok()) {
    return actuator.status();
  }
  s.actuator = std::move(*actuator);
  actuator::AddHealthHandlers(*s.actuator, std::move(liveness), std::move(readiness));
  actuator::AddInfoHandler(*s.actuator, std::move(describe));
  actuator::AddMetricsHandler(*s.actuator, s.stats);
  actuator::AddLoggerHandler(*s.actuator);
  // Other subsystems' endpoints are added here: handlers are registered before Start().
  if (s.mesh) {
    AddMeshHandlers(*s.actuator, s.mesh->engine());
  }
  s.flow->AddActuatorHandlers(*s.actuator);
  AddUpgradeHandler(*s.actuator, *this);
  // Cluster rules find their counter (or fall back while Redis is down) before the actuator's
  // readiness can look at it and before any traffic.
  OTTAVA_RETURN_IF_ERROR(s.flow->StartCluster(&s.components->dispatcher()));
  s.actuator->Start();

  if (!s.takeover) {
    if (absl::Status status = s.components->InitAll(); !status.ok()) {
      return absl::Status(status.code(), "component " + std::string(status.message()));
    }
  }
  // Before traffic: events have somewhere to go.
  OTTAVA_RETURN_IF_ERROR(s.flow->StartEvents(set, bootstrap.app.id));

  if (s.mesh) {
    std::map<std::string, int> mesh_sockets;
    for (auto it = s.inherited.begin(); it != s.inherited.end();) {
      if (it->first.rfind("mesh/", 0) == 0) {
        mesh_sockets[it->first.substr(5)] = it->second;
        it = s.inherited.erase(it);
      } else {
        ++it;
      }
    }
    absl::Status status = s.mesh->Start(&mesh_sockets);
    for (const auto& [name, fd] : mesh_sockets) {
      ::close(fd);  // the new config no longer has that listener (or moved it)
    }
    OTTAVA_RETURN_IF_ERROR(status);
  }
  OTTAVA_RETURN_IF_ERROR(s.flow->Subscribe(set, bootstrap.app.id));
  OTTAVA_RETURN_IF_ERROR(s.flow->StartAdaptive());

  Dispatcher& dispatcher = s.components->dispatcher();
  if (bootstrap.app.callback) {
    const config::CallbackConfig& callback = *bootstrap.app.callback;
    const std::chrono::milliseconds timeout(callback.timeout_ms);
    if (callback.protocol == "dapr-grpc") {
      s.app = callback::DaprGrpcChannel::Create(callback.address.ToString(), timeout,
                                                callback.api_token, &dispatcher);
    } else if (callback.protocol == "http") {
      s.app = callback::HttpAppChannel::Create(callback.address, timeout, callback.api_token,
                                               &dispatcher);
    } else {
      s.app =
          callback::AppCallbackClient::Create(callback.address.ToString(), timeout, &dispatcher);
    }
  }
  components::rpc::Rpc* rpc = s.rpc.get();
  if (s.rpc || (s.app && s.app->CanInvoke())) {
    s.app_rpc = std::make_unique<callback::AppAwareRpc>(s.rpc.get(), s.app, bootstrap.app.id);
    rpc = s.app_rpc.get();
  }
  // Dapr's Shutdown ends the process the way SIGTERM does: WaitForSignal() takes it.
  s.api = std::make_unique<ApiServer>(
      set, dispatcher, s.stats, bootstrap.app.id, rpc, s.metadata.get(),
      [] { kill(getpid(), SIGTERM); }, &s.flow->controller(), bootstrap.api_token);
  absl::StatusOr<std::string> grpc_address =
      s.api->Start(bootstrap, TakeInherited(s.inherited, "grpc", bootstrap.grpc_address));
  if (!grpc_address.ok()) {
    return grpc_address.status();
  }
  s.grpc_address = std::move(*grpc_address);
  components::HealthIndicator* startup_view = &s.startup;
  absl::StatusOr<std::string> http_address = s.api->StartHttp(
      bootstrap, [startup_view] { return startup_view->state() == HealthState::kUp; },
      [startup_view] { return startup_view->state() != HealthState::kDown; },
      TakeInherited(s.inherited, "dapr_http", bootstrap.dapr_http_address),
      /*defer=*/s.takeover != nullptr);
  if (!http_address.ok()) {
    return http_address.status();
  }
  s.dapr_http_address = std::move(*http_address);

  s.subscriptions = std::make_unique<callback::SubscriptionManager>(
      s.api->pubsub(), s.app, &dispatcher, &s.stats, bootstrap.app.id);
  callback::SubscriptionManager* manager = s.subscriptions.get();
  s.metadata->SetSubscriptionSource([manager] { return manager->Describe(); });
  for (const auto& subscription : bootstrap.subscriptions) {
    if (absl::Status status = s.subscriptions->AddFromConfig(subscription); !status.ok()) {
      OTTAVA_LOG(Runtime, error, "subscription {}/{}: {}", subscription.pubsub_name,
                 subscription.topic, status.message());
    }
  }
  s.subscriptions->DiscoverFromApp();

  s.startup.Set(HealthState::kUp);
  OTTAVA_LOG(Runtime, info, "Ottava {} serving: gRPC {} Dapr HTTP {} actuator {} app {}", kVersion,
             s.grpc_address, s.dapr_http_address, s.actuator->address(), bootstrap.app.id);
  if (!s.options.ready_file.empty()) {
    nlohmann::json listeners = nlohmann::json::object();
    if (s.mesh) {
      for (const auto& [name, address] : s.mesh->Listeners()) {
        listeners[name] = address;
      }
    }
    nlohmann::json ready{{"pid", getpid()},
                         {"grpc", s.grpc_address},
                         {"actuator", s.actuator->address()},
                         {"dapr_http", s.dapr_http_address},
                         {"listeners", std::move(listeners)}};
    s.ready_file_written = true;  // removed at Stop() even if this write fails, as before
    if (!WriteReadyFile(s.options.ready_file, ready)) {
      OTTAVA_LOG(Runtime, error, "cannot write ready file {}", s.options.ready_file);
    }
  }
  return StartUpgradeControl();
}

absl::Status Sidecar::StartUpgradeControl() {
  State& s = *state_;
  const config::Bootstrap& bootstrap = s.bootstrap;
  int control_fd = -1;
  nlohmann::json takeover_report = nlohmann::json::object();
  std::chrono::steady_clock::time_point ready_sent;
  if (s.takeover) {
    // Every socket but the state APIs' serves here now: the old process may stop accepting,
    // freeze and send its in-memory state, which is imported before gRPC and Dapr HTTP accept.
    ComponentSet& set = s.components->set();
    stats::Counter& imported =
        s.stats.CounterFor("ottava_upgrade_state_chunks_total",
                           "In-memory state chunks received from the previous process, by outcome",
                           {{"outcome", "imported"}});
    stats::Counter& dropped =
        s.stats.CounterFor("ottava_upgrade_state_chunks_total",
                           "In-memory state chunks received from the previous process, by outcome",
                           {{"outcome", "dropped"}});
    std::set<std::string> warned;
    ready_sent = std::chrono::steady_clock::now();
    const int64_t ready_at_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    std::map<std::string, std::string> adopt;
    if (s.mesh) {
      adopt = s.mesh->engine().AdoptableListeners();
    }
    auto stopped = s.takeover->Ready(
        std::chrono::seconds(bootstrap.upgrade.drain_seconds + 5),
        [&](upgrade::StateChunk&& chunk) {
          const std::string component = chunk.component;
          if (absl::Status status = ImportChunk(set, s.stats, std::move(chunk)); !status.ok()) {
            dropped.Inc();
            if (warned.insert(component).second) {
              OTTAVA_LOG(Runtime, warn, "upgrade: state of {} not carried over: {}", component,
                         status.message());
            }
            return;
          }
          imported.Inc();
        },
        adopt);
    if (!stopped.ok()) {
      OTTAVA_LOG(Runtime, warn, "upgrade: the old process did not confirm it stopped: {}",
                 stopped.status().message());
    } else {
      takeover_report = {{"ready_at_us", ready_at_us},
                         {"stop_us", stopped->value("stop_us", int64_t{0})},
                         {"freeze_us", stopped->value("freeze_us", int64_t{0})},
                         {"state_chunks", stopped->value("chunks", int64_t{0})},
                         {"state_bytes", stopped->value("state_bytes", int64_t{0})}};
    }
    s.took_over_at = NowRfc3339();
    if (stopped.ok() && !adopt.empty()) {
      StartMigrationReceiver();
    } else {
      s.takeover.reset();
    }
    if (auto found = s.inherited.find("control"); found != s.inherited.end()) {
      control_fd = found->second;
      s.inherited.erase(found);
    }
    for (const auto& [name, fd] : s.inherited) {
      OTTAVA_LOG(Runtime, info, "upgrade: socket '{}' is not in the new config: closed", name);
      ::close(fd);
    }
    s.inherited.clear();
    if (stopped.ok()) {
      s.stats
          .GaugeFor("ottava_upgrade_switch_microseconds",
                    "How long the previous process took to stop accepting at the last upgrade")
          .Set(stopped->value("stop_us", int64_t{0}));
    }
  }
  OTTAVA_RETURN_IF_ERROR(s.api->StartAccepting());
  if (!takeover_report.empty()) {
    // The API pause: from "ready" (the old process stops accepting) until the gRPC and Dapr HTTP
    // sockets are accepted from here; connections that arrive meanwhile wait in the backlog.
    const int64_t pause_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::steady_clock::now() - ready_sent)
                                 .count();
    takeover_report["api_pause_us"] = pause_us;
    s.stats
        .GaugeFor("ottava_upgrade_api_pause_microseconds",
                  "At the last upgrade: from telling the previous process to stop until this one "
                  "accepted API connections (its freeze and state transfer included)")
        .Set(pause_us);
    OTTAVA_LOG(Runtime, info, "upgrade: API paused {} us (old stop {} us, freeze {} us, {} bytes)",
               pause_us, takeover_report.value("stop_us", int64_t{0}),
               takeover_report.value("freeze_us", int64_t{0}),
               takeover_report.value("state_bytes", int64_t{0}));
  }
  std::string socket_dir = bootstrap.upgrade.socket_dir;
  if (socket_dir.empty()) {
    socket_dir = DirOf(s.options.ready_file.empty() ? s.options.config_path : s.options.ready_file);
  }
  s.socket_path = upgrade::ControlSocketPath(socket_dir);
  if (control_fd < 0) {
    absl::StatusOr<int> listening = upgrade::ListenControlSocket(s.socket_path);
    if (!listening.ok()) {
      OTTAVA_LOG(Runtime, warn, "upgrade disabled: {}", listening.status().message());
      s.socket_path.clear();
      return absl::OkStatus();
    }
    control_fd = *listening;
  }
  s.handover = std::make_unique<SidecarHandover>(s);
  upgrade::ServerSettings settings;
  settings.socket_path = s.socket_path;
  settings.timeout = std::chrono::seconds(bootstrap.upgrade.timeout_seconds);
  settings.generation = s.generation;
  settings.ready_file = s.options.ready_file;
  s.upgrade_server = std::make_unique<upgrade::UpgradeServer>(control_fd, std::move(settings),
                                                              *s.handover, s.stats);
  OTTAVA_RETURN_IF_ERROR(s.upgrade_server->Start());
  if (s.options.takeover_status_fd >= 0) {
    nlohmann::json report = {{"ok", true},
                             {"pid", getpid()},
                             {"generation", s.generation},
                             {"previous_pid", s.previous_pid},
                             {"grpc", s.grpc_address},
                             {"actuator", s.actuator->address()}};
    report.update(takeover_report);
    upgrade::ReportStatus(s.options.takeover_status_fd, report);
    s.options.takeover_status_fd = -1;
  }
  return absl::OkStatus();
}

void Sidecar::StartMigrationReceiver() {
  State& s = *state_;
  stats::Counter& received = s.stats.CounterFor(
      "ottava_upgrade_migrated_connections_total",
      "Bolt and Dubbo downstream connections moved between processes on upgrade: sent to the "
      "next one, received from the previous",
      {{"direction", "received"}});
  stats::Counter& errors = s.stats.CounterFor(
      "ottava_upgrade_migration_errors_total",
      "Connections that were to migrate and were closed instead (could not be sent or adopted)");
  s.migration_receiver = std::thread([&s, &received, &errors] {
    pthread_setname_np(pthread_self(), "ottava-migrate");
    absl::StatusOr<int64_t> count =
        s.takeover->ReceiveConnections([&](upgrade::MigratingConnection&& connection) {
          absl::Status status = s.mesh->engine().AdoptConnection(connection.listener, connection.fd,
                                                                 std::move(connection.unread));
          if (status.ok()) {
            received.Inc();
            return;
          }
          errors.Inc();
          OTTAVA_LOG(Runtime, warn, "upgrade: a migrated connection of '{}' was closed: {}",
                     connection.listener, status.message());
        });
    if (count.ok()) {
      OTTAVA_LOG(Runtime, info, "upgrade: {} connection(s) migrated from pid {}", *count,
                 s.previous_pid);
    } else {
      OTTAVA_LOG(Runtime, info, "upgrade: connection migration ended: {}",
                 count.status().message());
    }
  });
}

absl::StatusOr<nlohmann::json> Sidecar::Upgrade(const std::string& config_path) {
  State& s = *state_;
  if (s.socket_path.empty() || s.upgrade_server == nullptr) {
    return absl::FailedPreconditionError("upgrade is disabled (no control socket)");
  }
  if (s.upgrading.exchange(true)) {
    return absl::AlreadyExistsError("an upgrade is already in progress");
  }
  std::vector<std::string> argv{s.binary_path, "--config",
                                config_path.empty() ? s.options.config_path : config_path,
                                "--takeover", s.socket_path};
  if (!s.options.ready_file.empty()) {
    argv.insert(argv.end(), {"--ready-file", s.options.ready_file});
  }
  if (!s.options.log_level_override.empty()) {
    argv.insert(argv.end(), {"--log-level", s.options.log_level_override});
  }
  for (const std::string& dir : s.options.resources_paths) {
    argv.insert(argv.end(), {"--resources-path", dir});
  }
  OTTAVA_LOG(Runtime, info, "upgrade: starting {} with {}", s.binary_path, argv[2]);
  auto result = upgrade::SpawnNewProcess(
      std::move(argv), std::chrono::seconds(s.bootstrap.upgrade.timeout_seconds + 5),
      /*detach=*/false);
  s.upgrading.store(false);
  if (!result.ok()) {
    OTTAVA_LOG(Runtime, warn, "upgrade failed, this process keeps serving: {}",
               result.status().message());
    return result.status();
  }
  return result->report;
}

int Sidecar::WaitForSignal() {
  int signal_number = 0;
  std::vector<std::thread> upgrades;
  while (true) {
    sigwait(&state_->signals, &signal_number);
    if (signal_number == SIGHUP) {
      // Re-executes this binary's path with the same config, off the main thread.
      OTTAVA_LOG(Runtime, info, "SIGHUP: upgrading");
      upgrades.emplace_back([this] { [[maybe_unused]] auto result = Upgrade(""); });
      continue;
    }
    if (signal_number == SIGUSR2 && !state_->handed_over.load() &&
        !(state_->upgrade_server && state_->upgrade_server->handed_over())) {
      continue;
    }
    break;
  }
  for (std::thread& thread : upgrades) {
    thread.detach();  // a trigger waiting for its new process ends with the process
  }
  if (signal_number == SIGUSR2) {
    state_->handed_over.store(true);
    OTTAVA_LOG(Runtime, info, "handed over: draining for up to {} s",
               state_->bootstrap.upgrade.drain_seconds);
  } else {
    OTTAVA_LOG(Runtime, info, "signal {} received: draining for up to {} s", signal_number,
               state_->bootstrap.drain_seconds);
  }
  return signal_number;
}

void Sidecar::Drain() {
  State& s = *state_;
  if (s.handed_over.load()) {
    DrainAfterHandover();
    return;
  }
  s.startup.Set(HealthState::kDown, "shutdown");
  if (s.subscriptions) {
    s.subscriptions->StopAll();
  }
  if (!s.api) {
    return;
  }
  s.api->ShutdownStreams();
  // gRPC's Shutdown(deadline) holds until the deadline even when nothing is in flight (it cancels
  // and sends GOAWAY only then), so drain on our own in-flight gauge and then shut down at once.
  const auto drain_start = std::chrono::steady_clock::now();
  const auto drain_deadline = drain_start + std::chrono::seconds(s.bootstrap.drain_seconds);
  if (s.mesh) {
    s.mesh->Drain(drain_deadline);
  }
  stats::Gauge& in_flight = s.stats.GaugeFor("ottava_grpc_requests_in_flight",
                                             "API requests and streams currently being served");
  while (in_flight.Value() > 0 && std::chrono::steady_clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (in_flight.Value() > 0) {
    OTTAVA_LOG(Runtime, warn, "{} request(s) still in flight after {} s: cancelling them",
               in_flight.Value(), s.bootstrap.drain_seconds);
  }
  s.api->Shutdown();
  OTTAVA_LOG(Runtime, info, "gRPC drained in {} ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - drain_start)
                 .count());
}

void Sidecar::DrainAfterHandover() {
  State& s = *state_;
  // Nothing is accepted here any more (SidecarHandover::StopAccepting); gRPC clients had GOAWAY.
  // Health stays UP: this process still answers what it has, correctly.
  if (s.subscriptions) {
    s.subscriptions->StopAll();
  }
  const auto drain_start = std::chrono::steady_clock::now();
  const auto deadline = drain_start + std::chrono::seconds(s.bootstrap.upgrade.drain_seconds);
  if (s.mesh) {
    std::map<std::string, std::string> adopt;
    std::shared_ptr<upgrade::MigrationQueue> queue;
    {
      std::lock_guard<std::mutex> lock(s.migration_mu);
      adopt = s.migration_adopt;
      queue = s.migration_queue;
    }
    if (queue != nullptr) {
      // Bolt and Dubbo connections of the listeners the new process has go to it between two
      // frames; the others (HTTP/1.1) drain with Connection: close.
      s.mesh->engine().DrainForUpgrade(
          adopt, [queue](const std::string& listener, int fd, std::string unread) {
            return queue->Push({listener, fd, std::move(unread)});
          });
    } else {
      s.mesh->engine().Drain(/*close_idle=*/false);
    }
  }
  if (s.api && s.api->forwarding()) {
    // Calls still sent here go on to the new process until every client connection has had its
    // graceful GOAWAY; a Shutdown() before that would cancel the calls crossing it.
    const auto aged_out = s.api->AgedOutAt();
    if (aged_out > deadline) {
      OTTAVA_LOG(Runtime, warn,
                 "upgrade: upgrade.drain_seconds ends before grpc.max_connection_age_ms lets "
                 "every gRPC connection go; calls crossing the shutdown may be cancelled");
    }
    while (std::chrono::steady_clock::now() < std::min(aged_out, deadline)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    s.api->EndForwardedStreams();
    OTTAVA_LOG(Runtime, info, "upgrade: gRPC connections aged out; {} call(s) were forwarded",
               s.api->forwarded_calls());
  }
  stats::Gauge& in_flight = s.stats.GaugeFor("ottava_grpc_requests_in_flight",
                                             "API requests and streams currently being served");
  while ((in_flight.Value() > 0 || (s.mesh && s.mesh->engine().ActiveRequests() > 0)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (s.api) {
    s.api->Shutdown();
  }
  OTTAVA_LOG(Runtime, info, "drained after handover in {} ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - drain_start)
                 .count());
}

void Sidecar::Stop() {
  State& s = *state_;
  const bool handed_over =
      s.handed_over.load() || (s.upgrade_server && s.upgrade_server->handed_over());
  if (s.upgrade_server) {
    s.upgrade_server->Stop();
    if (!handed_over && !s.socket_path.empty()) {
      ::unlink(s.socket_path.c_str());  // ours; after a handover the new process uses it
    }
    s.upgrade_server.reset();
  }
  if (handed_over) {
    s.ready_file_written = false;  // rewritten by the new process
  }
  if (s.migration_receiver.joinable()) {
    s.takeover->Cancel();  // the engine it adopts into stops below
    s.migration_receiver.join();
  }
  s.takeover.reset();
  if (s.api) {
    s.api->Shutdown();  // a no-op after Drain()
  }
  if (s.mesh) {
    s.mesh->Stop();
  }
  if (s.flow) {
    s.flow->Unsubscribe();
  }
  s.components->Stop();
  if (s.metadata) {
    s.metadata->SetSubscriptionSource(nullptr);
  }
  if (s.actuator) {
    s.actuator->Stop();
  }
  if (s.ready_file_written) {
    std::remove(s.options.ready_file.c_str());
    s.ready_file_written = false;
  }
}

}  // namespace ottava::runtime
