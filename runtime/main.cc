// ottava: the sidecar binary.
//   ottava --config FILE [--ready-file FILE] [--log-level LEVEL]
//   ottava validate --config FILE
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
  app.add_option("--ready-file", options.ready_file,
                 "write {pid, grpc, actuator, listeners} here once serving");
  app.add_option("--log-level", options.log_level_override,
                 "trace|debug|info|warn|error|critical|off (overrides log.level)");

  std::string validate_path;
  CLI::App* validate = app.add_subcommand("validate", "check a configuration file and exit");
  validate->add_option("--config,-c", validate_path, "JSON configuration file")->required();
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
  if (*validate) {
    return ottava::runtime::ValidateConfig(validate_path);
  }
  if (options.config_path.empty()) {
    std::cerr << "ottava: --config FILE is required (see --help)\n";
    return ottava::runtime::kExitBadConfig;
  }
  return ottava::runtime::RunSidecar(options);
}
