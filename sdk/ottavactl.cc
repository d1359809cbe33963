// ottavactl: the command-line client of the Ottava sidecar. See `ottavactl --help`.

#include <iostream>

#include "sdk/cli.h"

int main(int argc, char** argv) {
  return ottava::sdk::cli::RunCli(argc, argv, std::cin, std::cout, std::cerr);
}
