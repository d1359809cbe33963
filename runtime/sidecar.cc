#include "runtime/sidecar.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "actuator/actuator.h"
#include "common/dispatcher.h"
#include "common/logging.h"
#include "common/stats.h"
#include "common/status.h"
#include "components/rpc/mesh/mesh_rpc.h"
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
#include "runtime/flow_control.h"
#include "runtime/grpc/dapr_service.h"
#include "runtime/grpc/layotto_service.h"
#include "runtime/grpc/unknown_methods.h"
#include "runtime/http/dapr_http.h"
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
                                &stats, app, rpc, metadata, nullptr, flow, api_token},
                 streams_),
        apis_{&state_, &lock_,   &sequencer_,         &config_, &pubsub_, &dispatcher, &stats, app,
              rpc,     metadata, std::move(shutdown), flow,     api_token},
        dapr_(apis_, streams_) {}
  ~ApiServer() { Shutdown(); }

  // Binds and serves; returns the bound "host:port".
  absl::StatusOr<std::string> Start(const config::Bootstrap& bootstrap) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(bootstrap.grpc_address.ToString(), grpc::InsecureServerCredentials(),
                             &port);
    // Without this gRPC sets SO_REUSEPORT and a second sidecar would silently share the port.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.SetMaxReceiveMessageSize(static_cast<int>(bootstrap.max_message_bytes));
    builder.SetMaxSendMessageSize(static_cast<int>(bootstrap.max_message_bytes));
    builder.RegisterService(&layotto_);
    builder.RegisterService(&dapr_);
    builder.RegisterCallbackGenericService(&unknown_methods_);
    server_ = builder.BuildAndStart();
    if (!server_ || port == 0) {
      server_.reset();
      return absl::UnavailableError("cannot listen on " + bootstrap.grpc_address.ToString() +
                                    " (/grpc/address): address in use or not local");
    }
    return bootstrap.grpc_address.host + ":" + std::to_string(port);
  }

  // Binds and serves Dapr's HTTP API; returns the bound "host:port".
  absl::StatusOr<std::string> StartHttp(const config::Bootstrap& bootstrap,
                                        std::function<bool()> ready,
                                        std::function<bool()> outbound_ready) {
    http_api::Options options;
    options.address = bootstrap.dapr_http_address;
    options.max_body_bytes = bootstrap.max_message_bytes;
    options.ready = std::move(ready);
    options.outbound_ready = std::move(outbound_ready);
    auto http = http_api::DaprHttpServer::Create(apis_, std::move(options));
    if (!http.ok()) {
      return http.status();
    }
    http_ = std::move(*http);
    http_->Start();
    return http_->address();
  }

  // Ends the streams; unary calls in flight go on until Shutdown().
  void ShutdownStreams() { streams_.ShutdownAll(); }

  // Cancels what is still in flight and waits for the servers. Idempotent.
  void Shutdown() {
    if (http_) {
      http_->Stop();  // waits for the HTTP requests in progress
    }
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
  grpc_api::StreamRegistry streams_;
  grpc_api::LayottoService layotto_;
  grpc_api::Apis apis_;  // Dapr's, shared by its gRPC and HTTP front ends
  grpc_api::DaprService dapr_;
  grpc_api::UnknownMethods unknown_methods_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<http_api::DaprHttpServer> http_;
};

// The mesh engine in the sidecar's mesh slot.
class MeshSubsystem : public Subsystem {
 public:
  explicit MeshSubsystem(std::unique_ptr<mesh::Engine> engine) : engine_(std::move(engine)) {}
  ~MeshSubsystem() override { Stop(); }

  absl::Status Start() override {
    absl::Status status = engine_->Start();
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
};

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
  pthread_sigmask(SIG_BLOCK, &state->signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<config::Bootstrap> loaded = config::LoadBootstrap(options.config_path);
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
  auto readiness = [startup, set_view] {
    std::vector<actuator::Indicator> out;
    out.push_back({"runtime_startup", startup->state(), startup->reason()});
    for (const auto& summary : set_view->Summaries()) {
      out.push_back(
          {std::string(components::KindName(summary.config->kind)) + "/" + summary.config->name,
           summary.health->state(), summary.health->reason(), summary.config->required});
    }
    return out;
  };
  s.metadata = std::make_unique<api::MetadataApi>(set, s.registry, bootstrap.app.id);
  const api::MetadataApi* metadata = s.metadata.get();
  auto describe = [metadata] { return api::ToInfoJson(metadata->Describe()); };
  auto actuator =
      actuator::Actuator::Create(bootstrap.actuator_address.host, bootstrap.actuator_address.port);
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
  s.actuator->Start();

  if (absl::Status status = s.components->InitAll(); !status.ok()) {
    return absl::Status(status.code(), "component " + std::string(status.message()));
  }

  if (s.mesh) {
    OTTAVA_RETURN_IF_ERROR(s.mesh->Start());
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
  absl::StatusOr<std::string> grpc_address = s.api->Start(bootstrap);
  if (!grpc_address.ok()) {
    return grpc_address.status();
  }
  s.grpc_address = std::move(*grpc_address);
  components::HealthIndicator* startup_view = &s.startup;
  absl::StatusOr<std::string> http_address = s.api->StartHttp(
      bootstrap, [startup_view] { return startup_view->state() == HealthState::kUp; },
      [startup_view] { return startup_view->state() != HealthState::kDown; });
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
  return absl::OkStatus();
}

int Sidecar::WaitForSignal() {
  int signal_number = 0;
  sigwait(&state_->signals, &signal_number);
  OTTAVA_LOG(Runtime, info, "signal {} received: draining for up to {} s", signal_number,
             state_->bootstrap.drain_seconds);
  return signal_number;
}

void Sidecar::Drain() {
  State& s = *state_;
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

void Sidecar::Stop() {
  State& s = *state_;
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
