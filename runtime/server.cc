#include "runtime/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <iostream>

#include "common/dispatcher.h"
#include "common/logging.h"
#include "common/stats.h"
#include "mesh/engine.h"
#include "mesh/filter/flow_control/flow_control_filter.h"
#include "runtime/component_set.h"
#include "runtime/config/dapr_resources.h"
#include "runtime/upgrade/upgrade.h"

namespace ottava::runtime {
namespace {

absl::StatusOr<config::Bootstrap> Load(const std::string& path,
                                       const std::vector<std::string>& resources_paths) {
  absl::StatusOr<config::Bootstrap> bootstrap = config::LoadWithResources(path, resources_paths);
  if (!bootstrap.ok()) {
    std::cerr << "ottava: invalid config " << bootstrap.status().message() << "\n";
  }
  return bootstrap;
}

}  // namespace

int ValidateConfig(const std::string& config_path,
                   const std::vector<std::string>& resources_paths) {
  absl::StatusOr<config::Bootstrap> bootstrap = Load(config_path, resources_paths);
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
  if (options.takeover_status_fd >= 0) {
    fcntl(options.takeover_status_fd, F_SETFD, FD_CLOEXEC);  // not for our own children
  }
  // A new process that fails before it took over says why to whoever started it.
  auto fail = [&options](const absl::Status& status, int code) {
    std::cerr << "ottava: " << status.message() << "\n";
    upgrade::ReportStatus(options.takeover_status_fd, {{"ok", false},
                                                       {"pid", getpid()},
                                                       {"exit_code", code},
                                                       {"error", std::string(status.message())}});
    return code;
  };
  absl::StatusOr<std::unique_ptr<Sidecar>> sidecar = Sidecar::Create(options);
  if (!sidecar.ok()) {
    return fail(sidecar.status(), ExitCodeOf(sidecar.status()));
  }
  if (absl::Status status = (*sidecar)->Start(); !status.ok()) {
    // The sidecar's destructor stops what had started.
    return fail(status, kExitComponentFailed);
  }
  (*sidecar)->WaitForSignal();
  (*sidecar)->Drain();
  (*sidecar)->Stop();
  OTTAVA_LOG(Runtime, info, "stopped");
  return kExitOk;
}

int UpgradeCommand(const UpgradeOptions& options) {
  // Find the running sidecar's control socket the way it chose it.
  std::string socket_dir = options.socket_dir;
  if (socket_dir.empty()) {
    absl::StatusOr<config::Bootstrap> bootstrap = config::LoadBootstrap(options.config_path);
    if (bootstrap.ok()) {
      socket_dir = bootstrap->upgrade.socket_dir;
    }
  }
  if (socket_dir.empty()) {
    const std::string& base = options.ready_file.empty() ? options.config_path : options.ready_file;
    const size_t slash = base.rfind('/');
    socket_dir = slash == std::string::npos ? "." : base.substr(0, slash);
  }
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) {
    std::cerr << "ottava upgrade: cannot find this binary's path\n";
    return kExitComponentFailed;
  }
  std::vector<std::string> argv{std::string(path, static_cast<size_t>(n)), "--config",
                                options.config_path, "--takeover",
                                upgrade::ControlSocketPath(socket_dir)};
  if (!options.ready_file.empty()) {
    argv.insert(argv.end(), {"--ready-file", options.ready_file});
  }
  if (!options.log_level.empty()) {
    argv.insert(argv.end(), {"--log-level", options.log_level});
  }
  for (const std::string& dir : options.resources_paths) {
    argv.insert(argv.end(), {"--resources-path", dir});
  }
  auto result = upgrade::SpawnNewProcess(
      std::move(argv), std::chrono::seconds(options.timeout_seconds), /*detach=*/true,
      [](pid_t pid) { std::cerr << "ottava upgrade: started new process pid " << pid << "\n"; });
  if (!result.ok()) {
    std::cerr << "ottava upgrade: failed, the running sidecar keeps serving: "
              << result.status().message() << "\n";
    return result.status().code() == absl::StatusCode::kFailedPrecondition ? kExitBadConfig
                                                                           : kExitComponentFailed;
  }
  std::cout << result->report.dump() << "\n";
  return kExitOk;
}

}  // namespace ottava::runtime
