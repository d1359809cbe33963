#include "components/sequencer/in_memory/in_memory_sequencer.h"

#include <algorithm>
#include <limits>

#include "common/byte_codec.h"
#include "common/status.h"
#include "components/sequencer/floors.h"
#include "components/sequencer/segment_size.h"

namespace ottava::components::sequencer {
absl::StatusOr<InMemorySequencerSettings> InMemorySequencerSettings::Parse(
    const Metadata& metadata) {
  InMemorySequencerSettings settings;
  // The runtime's WEAK cache reads segmentSize; a bad value should fail startup here.
  if (absl::StatusOr<int64_t> segment_size = ParseSegmentSize(metadata); !segment_size.ok()) {
    return segment_size.status();
  }
  absl::StatusOr<Floors> floors = ParseFloors(metadata);
  if (!floors.ok()) {
    return floors.status();
  }
  settings.bigger_than = std::move(*floors);
  return settings;
}

InMemorySequencer::InMemorySequencer(const ComponentContext& context,
                                     InMemorySequencerSettings settings)
    : label_(context.Label()), health_(context.health), settings_(std::move(settings)) {}

absl::Status InMemorySequencer::Init() {
  if (health_ != nullptr) {
    health_->Set(HealthState::kUp);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> InMemorySequencer::Reserve(const std::string& key, int64_t size) {
  if (size <= 0) {
    return absl::InvalidArgumentError(label_ + ": segment size must be positive for key '" + key +
                                      "', got " + std::to_string(size));
  }
  absl::MutexLock lock(&mu_);
  if (frozen_) {
    return absl::UnavailableError(label_ +
                                  ": handed over to a new process (hot upgrade); retry the call");
  }
  auto [it, inserted] = last_issued_.try_emplace(key, 0);
  if (inserted) {
    it->second = FloorOf(settings_.bigger_than, key);
  }
  if (it->second > std::numeric_limits<int64_t>::max() - size) {
    return absl::OutOfRangeError(label_ + ": ids of key '" + key + "' are exhausted");
  }
  const int64_t first = it->second + 1;
  it->second += size;
  return first;
}

void InMemorySequencer::GetNextId(NextIdRequest request,
                                  std::function<void(absl::StatusOr<int64_t>)> done) {
  done(Reserve(request.key, 1));
}

void InMemorySequencer::GetSegment(std::string key,
                                   int64_t size,
                                   std::function<void(absl::StatusOr<Segment>)> done) {
  absl::StatusOr<int64_t> first = Reserve(key, size);
  if (!first.ok()) {
    done(first.status());
    return;
  }
  done(Segment{.first = *first, .last = *first + size - 1});
}

std::vector<std::string> InMemorySequencer::FreezeAndExport(size_t chunk_bytes) {
  ChunkWriter out(chunk_bytes);
  absl::MutexLock lock(&mu_);
  frozen_ = true;
  for (const auto& [key, last] : last_issued_) {
    out.record().U8('S');
    out.record().Bytes(key);
    out.record().I64(last);
    out.EndRecord();
  }
  return out.Finish();
}

absl::Status InMemorySequencer::ImportState(uint32_t format, std::string_view chunk) {
  OTTAVA_RETURN_IF_ERROR(CheckStateFormat(label_, format));
  ByteReader in(chunk);
  absl::MutexLock lock(&mu_);
  while (!in.done()) {
    uint8_t tag = 0;
    std::string key;
    int64_t last = 0;
    if (!in.U8(&tag) || tag != 'S') {
      return UnknownStateRecord(label_);
    }
    if (!in.Bytes(&key) || !in.I64(&last)) {
      return TruncatedStateRecord(label_);
    }
    // Never go back: a floor or an id issued here already wins if higher.
    auto [it, inserted] = last_issued_.try_emplace(key, last);
    if (!inserted) {
      it->second = std::max(it->second, last);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Sequencer>> InMemorySequencerFactory::Create(
    const ComponentContext& context) const {
  auto settings = InMemorySequencerSettings::Parse(context.metadata);
  if (!settings.ok()) {
    return absl::InvalidArgumentError(context.Label() + ": " +
                                      std::string(settings.status().message()));
  }
  return std::make_unique<InMemorySequencer>(context, std::move(*settings));
}

}  // namespace ottava::components::sequencer
