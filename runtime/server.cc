#include "runtime/server.h"

#include <iostream>

#include "common/dispatcher.h"
#include "common/logging.h"
#include "common/stats.h"
#include "mesh/engine.h"
#include "mesh/filter/flow_control/flow_control_filter.h"
#include "runtime/component_set.h"

namespace ottava::runtime {
namespace {

absl::StatusOr<config::Bootstrap> Load(const std::string& path) {
  absl::StatusOr<config::Bootstrap> bootstrap = config::LoadBootstrap(path);
  if (!bootstrap.ok()) {
    std::cerr << "ottava: invalid config " << bootstrap.status().message() << "\n";
  }
  return bootstrap;
}

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
  if (bootstrap->mesh) {
    // Builds the route tables and clusters (regexes, supported protocols) without binding.
    RealTimeSource time;
    auto flow = mesh::flow::Controller::Create(mesh::flow::RuleSet{}, time, stats);
    std::vector<mesh::FilterFactoryPtr> filters;
    filters.push_back(mesh::flow::CreateFlowControlFilterFactory(*flow));
    auto engine = mesh::Engine::Create(*bootstrap->mesh, stats, std::move(filters));
    if (!engine.ok()) {
      std::cerr << "ottava: invalid config " << config_path << ": " << engine.status().message()
                << "\n";
      return kExitBadConfig;
    }
  }
  std::cout << config_path << ": OK (" << bootstrap->components.size() << " components, "
            << bootstrap->subscriptions.size() << " subscriptions)\n";
  return kExitOk;
}

int RunSidecar(const RunOptions& options) {
  absl::StatusOr<std::unique_ptr<Sidecar>> sidecar = Sidecar::Create(options);
  if (!sidecar.ok()) {
    std::cerr << "ottava: " << sidecar.status().message() << "\n";
    return ExitCodeOf(sidecar.status());
  }
  if (absl::Status status = (*sidecar)->Start(); !status.ok()) {
    std::cerr << "ottava: " << status.message() << "\n";
    return kExitComponentFailed;  // the sidecar's destructor stops what had started
  }
  (*sidecar)->WaitForSignal();
  (*sidecar)->Drain();
  (*sidecar)->Stop();
  OTTAVA_LOG(Runtime, info, "stopped");
  return kExitOk;
}

}  // namespace ottava::runtime
