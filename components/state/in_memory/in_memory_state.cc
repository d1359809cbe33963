#include "components/state/in_memory/in_memory_state.h"

#include <charconv>

#include "common/byte_codec.h"
#include "common/logging.h"
#include "common/status.h"
#include "components/common/metadata.h"

namespace ottava::components::state {
namespace {

using std::chrono::steady_clock;
using std::chrono::system_clock;

// How many expired entries one sweep removes per mutex acquisition, so a mass expiry does not stall
// requests for long.
constexpr size_t kSweepBatch = 1024;

std::optional<uint64_t> ParseVersion(const std::string& etag) {
  uint64_t version = 0;
  const char* end = etag.data() + etag.size();
  auto [ptr, ec] = std::from_chars(etag.data(), end, version);
  if (etag.empty() || ec != std::errc() || ptr != end) {
    return std::nullopt;
  }
  return version;
}

}  // namespace

absl::StatusOr<InMemoryStateSettings> InMemoryStateSettings::Parse(const Metadata& metadata) {
  InMemoryStateSettings settings;
  MetadataReader reader(metadata);
  int64_t ms = settings.sweep_interval.count();
  OTTAVA_RETURN_IF_ERROR(reader.Int("sweepIntervalMs", 1, int64_t{1} << 40, &ms));
  settings.sweep_interval = std::chrono::milliseconds(ms);
  return settings;
}

InMemoryStateStore::InMemoryStateStore(const ComponentContext& context,
                                       InMemoryStateSettings settings)
    : label_(context.Label()),
      health_(context.health),
      dispatcher_(context.dispatcher),
      settings_(settings) {}

InMemoryStateStore::~InMemoryStateStore() {
  Shutdown();
}

absl::Status InMemoryStateStore::Init() {
  if (dispatcher_ != nullptr && sweeper_ == nullptr) {
    sweeper_ = std::make_unique<PeriodicTask>(*dispatcher_, settings_.sweep_interval,
                                              [this] { SweepExpired(); });
    sweeper_->Start();
  }
  if (health_ != nullptr) {
    health_->Set(HealthState::kUp);
  }
  return absl::OkStatus();
}

void InMemoryStateStore::Shutdown() {
  if (sweeper_ != nullptr) {
    sweeper_->Stop();
  }
}

const InMemoryStateStore::Entry* InMemoryStateStore::Lookup(const std::string& key,
                                                            const Overlay* overlay,
                                                            MonotonicTime now) {
  if (overlay != nullptr) {
    if (auto it = overlay->find(key); it != overlay->end()) {
      return it->second.has_value() ? &*it->second : nullptr;
    }
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    return nullptr;
  }
  if (it->second.deadline.has_value() && *it->second.deadline <= now) {
    Store(key, std::nullopt);
    return nullptr;
  }
  return &it->second;
}

absl::Status InMemoryStateStore::MalformedEtag(const std::string& key,
                                               const std::string& etag) const {
  return absl::InvalidArgumentError(label_ + ": malformed etag '" + etag + "' for key '" + key +
                                    "'");
}

absl::Status InMemoryStateStore::EtagMismatch(const std::string& key) const {
  return absl::AbortedError(label_ + ": etag mismatch for key '" + key + "'");
}

absl::Status InMemoryStateStore::Frozen() const {
  return absl::UnavailableError(label_ +
                                ": handed over to a new process (hot upgrade); retry the write");
}

absl::Status InMemoryStateStore::CheckEtag(const std::string& key,
                                           const std::string& etag,
                                           const Entry* current) const {
  std::optional<uint64_t> version = ParseVersion(etag);
  if (!version.has_value()) {
    return MalformedEtag(key, etag);
  }
  if (current == nullptr || current->version != *version) {
    return EtagMismatch(key);
  }
  return absl::OkStatus();
}

absl::Status InMemoryStateStore::CheckSet(const SetRequest& request, const Entry* current) const {
  const bool only_if_absent =
      (request.etag.has_value() && request.etag->empty()) ||
      (!request.etag.has_value() && request.concurrency == Concurrency::kFirstWrite);
  if (only_if_absent) {
    if (current != nullptr) {
      return absl::AbortedError(label_ + ": key '" + request.key +
                                "' already exists (first-write without etag)");
    }
    return absl::OkStatus();
  }
  if (!request.etag.has_value()) {
    return absl::OkStatus();  // last-write wins
  }
  return CheckEtag(request.key, *request.etag, current);
}

absl::Status InMemoryStateStore::CheckDelete(const DeleteRequest& request,
                                             const Entry* current) const {
  if (!request.etag.has_value()) {
    return absl::OkStatus();
  }
  if (request.etag->empty()) {
    // "Only if absent": deleting nothing succeeds, deleting a present item is a conflict.
    if (current != nullptr) {
      return EtagMismatch(request.key);
    }
    return absl::OkStatus();
  }
  return CheckEtag(request.key, *request.etag, current);
}

InMemoryStateStore::Entry InMemoryStateStore::MakeEntry(const SetRequest& request,
                                                        MonotonicTime now) {
  Entry entry;
  entry.value = request.value;
  entry.version = ++last_version_;
  if (request.ttl_seconds.has_value() && *request.ttl_seconds > 0) {
    auto ttl = std::chrono::seconds(*request.ttl_seconds);
    entry.deadline = now + ttl;
    entry.expire_time = system_clock::now() + ttl;
  }
  return entry;
}

void InMemoryStateStore::Store(const std::string& key, std::optional<Entry> entry) {
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (it->second.deadline.has_value()) {
      expiry_.erase({*it->second.deadline, key});
    }
    if (!entry.has_value()) {
      entries_.erase(it);
      return;
    }
    it->second = std::move(*entry);
  } else {
    if (!entry.has_value()) {
      return;
    }
    it = entries_.emplace(key, std::move(*entry)).first;
  }
  if (it->second.deadline.has_value()) {
    expiry_.emplace(*it->second.deadline, key);
  }
}

Item InMemoryStateStore::ToItem(const std::string& key, const Entry* entry) const {
  Item item;
  item.key = key;
  if (entry != nullptr) {
    item.found = true;
    item.value = entry->value;
    item.etag = std::to_string(entry->version);
    item.expire_time = entry->expire_time;
  }
  return item;
}

void InMemoryStateStore::Get(GetRequest request, GetCallback done) {
  Item item;
  {
    absl::MutexLock lock(&mu_);
    item = ToItem(request.key, Lookup(request.key, nullptr, steady_clock::now()));
  }
  done(std::move(item));
}

void InMemoryStateStore::BulkGet(std::vector<GetRequest> requests, BulkGetCallback done) {
  std::vector<Item> items;
  items.reserve(requests.size());
  {
    absl::MutexLock lock(&mu_);
    const MonotonicTime now = steady_clock::now();
    for (const GetRequest& request : requests) {
      items.push_back(ToItem(request.key, Lookup(request.key, nullptr, now)));
    }
  }
  done(std::move(items));
}

void InMemoryStateStore::Set(SetRequest request, DoneCallback done) {
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    const MonotonicTime now = steady_clock::now();
    status = frozen_ ? Frozen() : CheckSet(request, Lookup(request.key, nullptr, now));
    if (status.ok()) {
      Store(request.key, MakeEntry(request, now));
    }
  }
  done(std::move(status));
}

void InMemoryStateStore::Delete(DeleteRequest request, DoneCallback done) {
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    status = frozen_ ? Frozen()
                     : CheckDelete(request, Lookup(request.key, nullptr, steady_clock::now()));
    if (status.ok()) {
      Store(request.key, std::nullopt);
    }
  }
  done(std::move(status));
}

void InMemoryStateStore::Transact(std::vector<Operation> operations, DoneCallback done) {
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    const MonotonicTime now = steady_clock::now();
    // Every operation is checked against the state its predecessors would leave, collecting the
    // effects in an overlay; the overlay is committed only if all checks pass.
    Overlay overlay;
    if (frozen_) {
      status = Frozen();
    }
    for (size_t i = 0; i < operations.size() && status.ok(); ++i) {
      if (const auto* set = std::get_if<SetRequest>(&operations[i])) {
        status = CheckSet(*set, Lookup(set->key, &overlay, now));
        if (status.ok()) {
          overlay[set->key] = MakeEntry(*set, now);
        }
      } else {
        const auto& del = std::get<DeleteRequest>(operations[i]);
        status = CheckDelete(del, Lookup(del.key, &overlay, now));
        if (status.ok()) {
          overlay[del.key] = std::nullopt;
        }
      }
      if (!status.ok()) {
        status =
            absl::Status(status.code(), std::string(status.message()) + " (transaction operation " +
                                            std::to_string(i) + "; nothing applied)");
      }
    }
    if (status.ok()) {
      for (auto& [key, entry] : overlay) {
        Store(key, std::move(entry));
      }
    }
  }
  done(std::move(status));
}

void InMemoryStateStore::SweepExpired() {
  size_t removed = 0;
  for (;;) {
    absl::MutexLock lock(&mu_);
    const MonotonicTime now = steady_clock::now();
    size_t batch = 0;
    while (!expiry_.empty() && expiry_.begin()->first <= now && batch < kSweepBatch) {
      std::string key = expiry_.begin()->second;
      Store(key, std::nullopt);
      ++batch;
    }
    removed += batch;
    if (batch < kSweepBatch) {
      break;
    }
  }
  if (removed > 0) {
    OTTAVA_LOG(Components, debug, "{}: swept {} expired items", label_, removed);
  }
}

std::vector<std::string> InMemoryStateStore::FreezeAndExport(size_t chunk_bytes) {
  ChunkWriter out(chunk_bytes);
  absl::MutexLock lock(&mu_);
  frozen_ = true;
  out.record().U8('V');
  out.record().U64(last_version_);
  out.EndRecord();
  const MonotonicTime now = steady_clock::now();
  for (const auto& [key, entry] : entries_) {
    int64_t left_ms = 0;
    if (entry.deadline.has_value()) {
      left_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(*entry.deadline - now).count();
      if (left_ms <= 0) {
        continue;  // expired, not yet swept
      }
    }
    ByteWriter& record = out.record();
    record.U8('E');
    record.Bytes(key);
    record.Bytes(entry.value);
    record.U64(entry.version);
    record.U8(entry.deadline.has_value() ? 1 : 0);
    record.I64(left_ms);
    record.I64(entry.expire_time.has_value()
                   ? std::chrono::duration_cast<std::chrono::milliseconds>(
                         entry.expire_time->time_since_epoch())
                         .count()
                   : 0);
    out.EndRecord();
  }
  return out.Finish();
}

absl::Status InMemoryStateStore::ImportState(uint32_t format, std::string_view chunk) {
  OTTAVA_RETURN_IF_ERROR(CheckStateFormat(label_, format));
  ByteReader in(chunk);
  absl::MutexLock lock(&mu_);
  const MonotonicTime now = steady_clock::now();
  while (!in.done()) {
    uint8_t tag = 0;
    in.U8(&tag);
    if (tag == 'V') {
      uint64_t version = 0;
      if (in.U64(&version)) {
        last_version_ = std::max(last_version_, version);
      }
    } else if (tag == 'E') {
      std::string key;
      Entry entry;
      uint8_t has_ttl = 0;
      int64_t left_ms = 0;
      int64_t expire_ms = 0;
      if (!in.Bytes(&key) || !in.Bytes(&entry.value) || !in.U64(&entry.version) ||
          !in.U8(&has_ttl) || !in.I64(&left_ms) || !in.I64(&expire_ms)) {
        break;
      }
      if (has_ttl != 0) {
        entry.deadline = now + std::chrono::milliseconds(left_ms);
        entry.expire_time = SystemTime(std::chrono::milliseconds(expire_ms));
      }
      last_version_ = std::max(last_version_, entry.version);
      Store(key, std::move(entry));
    } else {
      return UnknownStateRecord(label_);
    }
    if (!in.ok()) {
      break;
    }
  }
  if (!in.ok()) {
    return TruncatedStateRecord(label_);
  }
  return absl::OkStatus();
}

size_t InMemoryStateStore::EntryCountForTest() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

absl::StatusOr<std::unique_ptr<StateStore>> InMemoryStateFactory::Create(
    const ComponentContext& context) const {
  auto settings = InMemoryStateSettings::Parse(context.metadata);
  if (!settings.ok()) {
    return absl::InvalidArgumentError(context.Label() + ": " +
                                      std::string(settings.status().message()));
  }
  return std::make_unique<InMemoryStateStore>(context, *settings);
}

}  // namespace ottava::components::state
