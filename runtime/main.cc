// ottava: the sidecar binary.
//   ottava --config FILE [--resources-path DIR]... [--ready-file FILE] [--log-level LEVEL]
//   ottava upgrade --config FILE [--resources-path DIR]... [--ready-file FILE] [--socket-dir DIR]
//   ottava validate --config FILE [--resources-path DIR]...
//   ottava version

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/process_tuning.h"
#include "runtime/server.h"
#include "runtime/version.h"

int main(int argc, char** argv) {
  ottava::DisableMutexDeadlockDetection();
  CLI::App app{"Ottava: a multi-runtime API sidecar (Layotto-compatible gRPC APIs)", "ottava"};
  app.require_subcommand(0, 1);
  ottava::runtime::RunOptions options;
  app.add_option("--config,-c", options.config_path, "JSON configuration file")
      ->check(CLI::ExistingFile);
  app.add_option("--resources-path", options.resources_paths,
                 "directory of Dapr resource files (Components, Subscriptions); repeatable")
      ->expected(1)
      ->take_all()
      ->check(CLI::ExistingDirectory);
  app.add_option("--ready-file", options.ready_file,
                 "write {pid, grpc, actuator, listeners} here once serving");
  app.add_option("--log-level", options.log_level_override,
                 "trace|debug|info|warn|error|critical|off (overrides log.level)");

  app.add_option("--takeover", options.takeover_socket,
                 "(internal) take over from the sidecar on this upgrade control socket")
      ->group("");
  app.add_option("--takeover-status-fd", options.takeover_status_fd,
                 "(internal) report the takeover's outcome on this fd")
      ->group("");

  ottava::runtime::UpgradeOptions upgrade_options;
  CLI::App* upgrade = app.add_subcommand(
      "upgrade", "start a new sidecar that takes over from the running one (hot upgrade)");
  upgrade->add_option("--config,-c", upgrade_options.config_path, "the new JSON configuration")
      ->required();
  upgrade->add_option("--ready-file", upgrade_options.ready_file,
                      "the running sidecar's ready file (its directory holds the control socket)");
  upgrade->add_option("--socket-dir", upgrade_options.socket_dir,
                      "directory of the control socket (default: upgrade.socket_dir, else the "
                      "ready file's directory, else the config file's)");
  upgrade->add_option("--log-level", upgrade_options.log_level, "log level of the new process");
  upgrade
      ->add_option("--resources-path", upgrade_options.resources_paths,
                   "Dapr resource directory of the new process; repeatable")
      ->expected(1)
      ->take_all();
  upgrade->add_option("--timeout", upgrade_options.timeout_seconds,
                      "seconds to wait for the new process to take over (then it is killed)");

  std::string validate_path;
  CLI::App* validate = app.add_subcommand("validate", "check a configuration file and exit");
  validate->add_option("--config,-c", validate_path, "JSON configuration file")->required();
  std::vector<std::string> validate_resources;
  validate->add_option("--resources-path", validate_resources,
                       "directory of Dapr resource files; repeatable");
  CLI::App* version = app.add_subcommand("version", "print the version and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : ottava::runtime::kExitBadConfig;
  }
  if (*version) {
    std::cout << "ottava " << ottava::runtime::kVersion << " (" << ottava::runtime::kGitCommit
              << ", " << ottava::runtime::kBuildType << ")\n";
    return 0;
  }
  if (*upgrade) {
    return ottava::runtime::UpgradeCommand(upgrade_options);
  }
  if (*validate) {
    return ottava::runtime::ValidateConfig(validate_path, validate_resources);
  }
  if (options.config_path.empty()) {
    std::cerr << "ottava: --config FILE is required (see --help)\n";
    return ottava::runtime::kExitBadConfig;
  }
  return ottava::runtime::RunSidecar(options);
}
