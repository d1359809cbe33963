#include "runtime/server.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "actuator/actuator.h"
#include "common/dispatcher.h"
#include "common/logging.h"
#include "common/stats.h"
#include "components/rpc/mesh/mesh_rpc.h"
#include "mesh/engine.h"
#include "runtime/api/config_api.h"
#include "runtime/api/lock_api.h"
#include "runtime/api/pubsub_api.h"
#include "runtime/api/sequencer_api.h"
#include "runtime/api/state_api.h"
#include "runtime/callback/subscriptions.h"
#include "runtime/component_set.h"
#include "runtime/grpc/layotto_service.h"
#include "runtime/version.h"

namespace ottava::runtime {
namespace {

using components::HealthState;

absl::StatusOr<config::Bootstrap> Load(const std::string& path) {
  absl::StatusOr<config::Bootstrap> bootstrap = config::LoadBootstrap(path);
  if (!bootstrap.ok()) {
    std::cerr << "ottava: invalid config " << bootstrap.status().message() << "\n";
  }
  return bootstrap;
}

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

}  // namespace

int ValidateConfig(const std::string& config_path) {
  absl::StatusOr<config::Bootstrap> bootstrap = Load(config_path);
  if (!bootstrap.ok()) {
    return kExitBadConfig;
  }
  components::Registry registry;
  components::RegisterBuiltins(registry);
  stats::Store stats;
  // Factories may require the dispatcher; components are built but never initialised.
  auto dispatcher = Dispatcher::Create("ottava-validate");
  if (!dispatcher.ok()) {
    std::cerr << "ottava: " << dispatcher.status().message() << "\n";
    return kExitComponentFailed;
  }
  (*dispatcher)->Start();
  auto set = ComponentSet::Create(*bootstrap, registry, dispatcher->get(), &stats);
  if (!set.ok()) {
    std::cerr << "ottava: invalid config " << config_path << ": " << set.status().message() << "\n";
    return kExitBadConfig;
  }
  std::cout << config_path << ": OK (" << bootstrap->components.size() << " components, "
            << bootstrap->subscriptions.size() << " subscriptions)\n";
  return kExitOk;
}

int RunSidecar(const RunOptions& options) {
  // Signals are taken synchronously by this thread; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<config::Bootstrap> loaded = Load(options.config_path);
  if (!loaded.ok()) {
    return kExitBadConfig;
  }
  const config::Bootstrap bootstrap = std::move(*loaded);
  const std::string level =
      options.log_level_override.empty() ? bootstrap.log_level : options.log_level_override;
  if (absl::Status status = logging::SetAllLevels(level); !status.ok()) {
    std::cerr << "ottava: --log-level: " << status.message() << "\n";
    return kExitBadConfig;
  }

  components::Registry registry;
  components::RegisterBuiltins(registry);
  stats::Store stats;
  auto dispatcher_or = Dispatcher::Create("ottava-comp");
  if (!dispatcher_or.ok()) {
    std::cerr << "ottava: " << dispatcher_or.status().message() << "\n";
    return kExitComponentFailed;
  }
  DispatcherPtr dispatcher = std::move(*dispatcher_or);
  dispatcher->Start();

  auto set_or = ComponentSet::Create(bootstrap, registry, dispatcher.get(), &stats);
  if (!set_or.ok()) {
    std::cerr << "ottava: invalid config " << options.config_path << ": "
              << set_or.status().message() << "\n";
    return kExitBadConfig;
  }
  std::unique_ptr<ComponentSet> set = std::move(*set_or);

  // Runtime-level indicators next to the per-instance ones.
  components::HealthIndicator startup;  // INIT until serving, DOWN on shutdown
  LoopHeartbeat heartbeat(*dispatcher);
  std::unique_ptr<callback::SubscriptionManager> subscriptions;
  std::atomic<callback::SubscriptionManager*> subscriptions_view{nullptr};

  for (const auto& summary : set->Summaries()) {
    const config::ComponentConfig* config = summary.config;
    const components::HealthIndicator* health = summary.health;
    stats.CallbackGauge("ottava_component_health",
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

  actuator::Sources sources;
  sources.stats = &stats;
  sources.liveness = [&startup, &heartbeat] {
    std::vector<actuator::Indicator> out;
    out.push_back({"runtime",
                   startup.state() == HealthState::kDown ? HealthState::kDown : HealthState::kUp,
                   startup.state() == HealthState::kDown ? startup.reason() : ""});
    out.push_back({"component_event_loop",
                   heartbeat.Alive() ? HealthState::kUp : HealthState::kDown,
                   heartbeat.Alive() ? "" : "the component event loop stopped responding"});
    return out;
  };
  const ComponentSet* set_view = set.get();
  sources.readiness = [&startup, set_view] {
    std::vector<actuator::Indicator> out;
    out.push_back({"runtime_startup", startup.state(), startup.reason()});
    for (const auto& summary : set_view->Summaries()) {
      out.push_back(
          {std::string(components::KindName(summary.config->kind)) + "/" + summary.config->name,
           summary.health->state(), summary.health->reason(), summary.config->required});
    }
    return out;
  };
  sources.info = [&bootstrap, set_view, &subscriptions_view, &registry] {
    nlohmann::json info;
    info["app"] = {
        {"name", "Ottava"},
        {"version", kVersion},
        {"build", {{"commit", kGitCommit}, {"type", kBuildType}, {"compiled", kBuildDate}}},
        {"id", bootstrap.app.id}};
    nlohmann::json list = nlohmann::json::array();
    for (const auto& summary : set_view->Summaries()) {
      list.push_back({{"kind", components::KindName(summary.config->kind)},
                      {"name", summary.config->name},
                      {"type", summary.config->type},
                      {"required", summary.config->required},
                      {"status", components::HealthStateName(summary.health->state())}});
    }
    info["components"] = std::move(list);
    nlohmann::json available = nlohmann::json::object();
    for (auto kind :
         {components::Kind::kState, components::Kind::kLock, components::Kind::kSequencer,
          components::Kind::kConfigStore, components::Kind::kPubSub}) {
      available[std::string(components::KindName(kind))] = registry.Types(kind);
    }
    info["available_types"] = std::move(available);
    auto* manager = subscriptions_view.load();
    info["subscriptions"] = manager != nullptr ? manager->Describe() : nlohmann::json::array();
    return info;
  };
  auto actuator_or = actuator::Actuator::Create(
      bootstrap.actuator_address.host, bootstrap.actuator_address.port, std::move(sources));
  if (!actuator_or.ok()) {
    std::cerr << "ottava: " << actuator_or.status().message() << "\n";
    return kExitComponentFailed;
  }
  std::unique_ptr<actuator::Actuator> actuator = std::move(*actuator_or);

  // The mesh engine: validated and built now, started once the components are up.
  std::unique_ptr<mesh::Engine> engine;
  std::unique_ptr<components::rpc::MeshRpc> rpc;
  if (bootstrap.mesh) {
    auto engine_or = mesh::Engine::Create(*bootstrap.mesh, stats);
    if (!engine_or.ok()) {
      std::cerr << "ottava: invalid config " << options.config_path << ": "
                << engine_or.status().message() << "\n";
      return kExitBadConfig;
    }
    engine = std::move(*engine_or);
    rpc = std::make_unique<components::rpc::MeshRpc>(*engine);
    mesh::Engine* engine_view = engine.get();
    actuator->AddHandler("GET", "/actuator/mesh", "mesh listeners, routers, clusters and hosts",
                         [engine_view](const actuator::HttpRequest&) {
                           return actuator::HttpResponse{200, "application/json",
                                                         engine_view->Describe().dump()};
                         });
    actuator->AddHandler(
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
          return actuator::HttpResponse{200, "application/json",
                                        engine_view->Describe().dump()};
        },
        /*loopback_only=*/true);
  }
  actuator->Start();

  // Startup failed after the actuator and the loop started: undo in reverse order.
  auto stop_early = [&] {
    if (engine != nullptr) {
      engine->Stop();
    }
    actuator->Stop();
    set->ShutdownAll();
    heartbeat.StopOnLoop();
    dispatcher->Stop();
  };
  if (absl::Status status = set->InitAll(); !status.ok()) {
    std::cerr << "ottava: component " << status.message() << "\n";
    stop_early();
    return kExitComponentFailed;
  }

  if (engine != nullptr) {
    if (absl::Status status = engine->Start(); !status.ok()) {
      std::cerr << "ottava: mesh: " << status.message() << "\n";
      stop_early();
      return kExitComponentFailed;
    }
  }

  api::StateApi state_api(*set, bootstrap.app.id);
  api::LockApi lock_api(*set, bootstrap.app.id);
  api::SequencerApi sequencer_api(*set, bootstrap.app.id);
  api::ConfigApi config_api(*set, bootstrap.app.id);
  api::PubSubApi pubsub_api(*set, bootstrap.app.id);
  grpc_api::StreamRegistry streams;
  grpc_api::LayottoService layotto(
      grpc_api::Apis{&state_api, &lock_api, &sequencer_api, &config_api, &pubsub_api,
                     dispatcher.get(), &stats, bootstrap.app.id, rpc.get()},
      streams);

  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(bootstrap.grpc_address.ToString(), grpc::InsecureServerCredentials(),
                           &grpc_port);
  // Without this gRPC sets SO_REUSEPORT and a second sidecar would silently share the port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(bootstrap.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(bootstrap.max_message_bytes));
  builder.RegisterService(&layotto);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || grpc_port == 0) {
    std::cerr << "ottava: cannot listen on " << bootstrap.grpc_address.ToString()
              << " (/grpc/address): address in use or not local\n";
    stop_early();
    return kExitComponentFailed;
  }
  const std::string grpc_address = bootstrap.grpc_address.host + ":" + std::to_string(grpc_port);

  std::shared_ptr<callback::AppCallbackClient> app;
  if (bootstrap.app.callback) {
    app = callback::AppCallbackClient::Create(
        bootstrap.app.callback->address.ToString(),
        std::chrono::milliseconds(bootstrap.app.callback->timeout_ms), dispatcher.get());
  }
  subscriptions = std::make_unique<callback::SubscriptionManager>(pubsub_api, app, dispatcher.get(),
                                                                  &stats, bootstrap.app.id);
  subscriptions_view = subscriptions.get();
  for (const auto& subscription : bootstrap.subscriptions) {
    if (absl::Status status = subscriptions->AddFromConfig(subscription); !status.ok()) {
      OTTAVA_LOG(Runtime, error, "subscription {}/{}: {}", subscription.pubsub_name,
                 subscription.topic, status.message());
    }
  }
  subscriptions->DiscoverFromApp();

  startup.Set(HealthState::kUp);
  OTTAVA_LOG(Runtime, info, "Ottava {} serving: gRPC {} actuator {} app {}", kVersion, grpc_address,
             actuator->address(), bootstrap.app.id);
  if (!options.ready_file.empty()) {
    nlohmann::json ready{{"pid", getpid()},
                         {"grpc", grpc_address},
                         {"actuator", actuator->address()},
                         {"listeners", nlohmann::json::object()}};
    if (engine != nullptr) {
      for (const auto& [name, address] : engine->ListenerAddresses()) {
        ready["listeners"][name] = address;
      }
    }
    if (!WriteReadyFile(options.ready_file, ready)) {
      OTTAVA_LOG(Runtime, error, "cannot write ready file {}", options.ready_file);
    }
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  OTTAVA_LOG(Runtime, info, "signal {} received: draining for up to {} s", signal_number,
             bootstrap.drain_seconds);

  startup.Set(HealthState::kDown, "shutdown");
  if (engine != nullptr) {
    engine->Drain();
  }
  subscriptions->StopAll();
  streams.ShutdownAll();
  // gRPC's Shutdown(deadline) holds until the deadline even when nothing is in flight (it cancels
  // and sends GOAWAY only then), so drain on our own in-flight gauge and then shut down at once.
  const auto drain_start = std::chrono::steady_clock::now();
  const auto drain_deadline = drain_start + std::chrono::seconds(bootstrap.drain_seconds);
  stats::Gauge& in_flight = stats.GaugeFor("ottava_grpc_requests_in_flight",
                                           "API requests and streams currently being served");
  while (in_flight.Value() > 0 && std::chrono::steady_clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (in_flight.Value() > 0) {
    OTTAVA_LOG(Runtime, warn, "{} request(s) still in flight after {} s: cancelling them",
               in_flight.Value(), bootstrap.drain_seconds);
  }
  while (engine != nullptr && engine->ActiveRequests() > 0 &&
         std::chrono::steady_clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  server->Wait();
  if (engine != nullptr) {
    engine->Stop();
  }
  OTTAVA_LOG(Runtime, info, "gRPC drained in {} ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - drain_start)
                 .count());
  set->ShutdownAll();
  heartbeat.StopOnLoop();
  dispatcher->Stop();
  subscriptions_view = nullptr;
  actuator->Stop();
  if (!options.ready_file.empty()) {
    std::remove(options.ready_file.c_str());
  }
  OTTAVA_LOG(Runtime, info, "stopped");
  return kExitOk;
}

}  // namespace ottava::runtime
