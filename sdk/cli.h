#pragma once

// ottavactl, the command-line client of the Ottava sidecar, as a function so that tests can run it
// in-process with their own streams. sdk/ottavactl.cc is only main().

#include <istream>
#include <ostream>

namespace ottava::sdk::cli {

/// Parses `argv` (argv[0] is the program name), runs the command and returns the exit code:
/// kExitOk, kExitError (a gRPC/HTTP error, printed as "error: <CODE>: <message>" on `err`) or
/// kExitUsage (bad command line). Results go to `out`; notes, errors and help requests' errors go
/// to `err`; "-" as a value argument reads `in` to its end. Blocks until the command finishes
/// (for streams: --max results, --timeout, or the sidecar ending the stream).
int RunCli(
    int argc, const char* const* argv, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace ottava::sdk::cli
