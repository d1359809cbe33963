#pragma once

// Components whose data lives only in this process (the in-memory ones) implement Transferable
// too, so a hot upgrade carries their data to the new process (runtime/upgrade/, issue 10).
//
// The order that makes an acknowledged write survive: the old process stops accepting, waits
// (bounded) for the API calls in flight, then calls FreezeAndExport. From then on every write
// fails UNAVAILABLE, so a write either is in the snapshot or was never acknowledged. The new
// process calls ImportState for each chunk before its API serves.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace ottava::components {

class Transferable {
 public:
  virtual ~Transferable() = default;
  /// The version of the record format FreezeAndExport writes. ImportState refuses any other, so
  /// the two processes must agree (a new format gets a new number).
  virtual uint32_t StateFormat() const = 0;
  /// Freezes the component (every later write fails UNAVAILABLE; reads keep answering from the
  /// frozen data) and returns its data as chunks of encoded records of about `chunk_bytes`
  /// each. Called once, on the upgrade thread, while API calls may still arrive.
  virtual std::vector<std::string> FreezeAndExport(size_t chunk_bytes) = 0;
  /// Adds the records of one chunk of format `format` (an entry already present is replaced).
  /// Called on the main thread after Init() and before the API serves. A corrupt chunk is
  /// INVALID_ARGUMENT; the records before the damage stay imported.
  virtual absl::Status ImportState(uint32_t format, std::string_view chunk) = 0;

 protected:
  /// What ImportState checks first: INVALID_ARGUMENT naming `label` unless `format` is ours.
  absl::Status CheckStateFormat(std::string_view label, uint32_t format) const {
    if (format == StateFormat()) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(std::string(label) + ": state format " +
                                      std::to_string(format) + " is not " +
                                      std::to_string(StateFormat()));
  }
  /// A record ImportState cannot read: an unknown tag, or one cut short.
  static absl::Status UnknownStateRecord(std::string_view label) {
    return absl::InvalidArgumentError(std::string(label) +
                                      ": unknown record in the transferred state");
  }
  static absl::Status TruncatedStateRecord(std::string_view label) {
    return absl::InvalidArgumentError(std::string(label) +
                                      ": truncated record in the transferred state");
  }
};

}  // namespace ottava::components
