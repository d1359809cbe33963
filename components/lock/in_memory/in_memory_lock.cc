#include "components/lock/in_memory/in_memory_lock.h"

#include "common/byte_codec.h"
#include "common/status.h"

namespace ottava::components::lock {
namespace {

using std::chrono::steady_clock;

constexpr size_t kSweepBatch = 1024;

}  // namespace

InMemoryLockStore::InMemoryLockStore(const ComponentContext& context,
                                     std::chrono::milliseconds sweep_interval)
    : label_(context.Label()),
      health_(context.health),
      dispatcher_(context.dispatcher),
      sweep_interval_(sweep_interval) {}

InMemoryLockStore::~InMemoryLockStore() {
  Shutdown();
}

absl::Status InMemoryLockStore::Init() {
  if (dispatcher_ != nullptr && sweeper_ == nullptr) {
    sweeper_ =
        std::make_unique<PeriodicTask>(*dispatcher_, sweep_interval_, [this] { SweepExpired(); });
    sweeper_->Start();
  }
  if (health_ != nullptr) {
    health_->Set(HealthState::kUp);
  }
  return absl::OkStatus();
}

void InMemoryLockStore::Shutdown() {
  if (sweeper_ != nullptr) {
    sweeper_->Stop();
  }
}

InMemoryLockStore::Entry* InMemoryLockStore::Find(const std::string& resource, MonotonicTime now) {
  auto it = locks_.find(resource);
  if (it == locks_.end()) {
    return nullptr;
  }
  if (it->second.deadline <= now) {
    Erase(resource);
    return nullptr;
  }
  return &it->second;
}

void InMemoryLockStore::Erase(const std::string& resource) {
  auto it = locks_.find(resource);
  if (it != locks_.end()) {
    expiry_.erase({it->second.deadline, resource});
    locks_.erase(it);
  }
}

void InMemoryLockStore::SetDeadline(const std::string& resource,
                                    Entry& entry,
                                    MonotonicTime deadline) {
  expiry_.erase({entry.deadline, resource});
  entry.deadline = deadline;
  expiry_.emplace(deadline, resource);
}

absl::Status InMemoryLockStore::CheckExpiry(const std::string& resource,
                                            int32_t expire_seconds) const {
  if (expire_seconds <= 0) {
    return absl::InvalidArgumentError(label_ + ": expire must be positive for lock '" + resource +
                                      "', got " + std::to_string(expire_seconds));
  }
  return absl::OkStatus();
}

void InMemoryLockStore::TryLock(TryLockRequest request,
                                std::function<void(absl::StatusOr<bool>)> done) {
  if (absl::Status status = CheckExpiry(request.resource_id, request.expire_seconds);
      !status.ok()) {
    done(std::move(status));
    return;
  }
  absl::StatusOr<bool> granted = false;
  {
    absl::MutexLock lock(&mu_);
    const MonotonicTime now = steady_clock::now();
    if (frozen_) {
      granted = Frozen();
    } else if (Find(request.resource_id, now) == nullptr) {
      Entry& entry = locks_[request.resource_id];
      entry.owner = std::move(request.owner);
      entry.deadline = now + std::chrono::seconds(request.expire_seconds);
      expiry_.emplace(entry.deadline, request.resource_id);
      granted = true;
    }
  }
  done(std::move(granted));
}

void InMemoryLockStore::Unlock(UnlockRequest request,
                               std::function<void(absl::StatusOr<LockStatus>)> done) {
  absl::StatusOr<LockStatus> result = LockStatus::kSuccess;
  {
    absl::MutexLock lock(&mu_);
    Entry* entry = frozen_ ? nullptr : Find(request.resource_id, steady_clock::now());
    if (frozen_) {
      result = Frozen();
    } else if (entry == nullptr) {
      result = LockStatus::kLockDoesNotExist;
    } else if (entry->owner != request.owner) {
      result = LockStatus::kLockBelongsToOthers;
    } else {
      Erase(request.resource_id);
    }
  }
  done(std::move(result));
}

void InMemoryLockStore::KeepAlive(KeepAliveRequest request,
                                  std::function<void(absl::StatusOr<LockStatus>)> done) {
  if (absl::Status status = CheckExpiry(request.resource_id, request.expire_seconds);
      !status.ok()) {
    done(std::move(status));
    return;
  }
  absl::StatusOr<LockStatus> result = LockStatus::kSuccess;
  {
    absl::MutexLock lock(&mu_);
    const MonotonicTime now = steady_clock::now();
    Entry* entry = frozen_ ? nullptr : Find(request.resource_id, now);
    if (frozen_) {
      result = Frozen();
    } else if (entry == nullptr) {
      result = LockStatus::kLockDoesNotExist;
    } else if (entry->owner != request.owner) {
      result = LockStatus::kLockBelongsToOthers;
    } else {
      SetDeadline(request.resource_id, *entry, now + std::chrono::seconds(request.expire_seconds));
    }
  }
  done(std::move(result));
}

absl::Status InMemoryLockStore::Frozen() const {
  return absl::UnavailableError(label_ +
                                ": handed over to a new process (hot upgrade); retry the call");
}

std::vector<std::string> InMemoryLockStore::FreezeAndExport(size_t chunk_bytes) {
  ChunkWriter out(chunk_bytes);
  absl::MutexLock lock(&mu_);
  frozen_ = true;
  const MonotonicTime now = steady_clock::now();
  for (const auto& [resource, entry] : locks_) {
    const int64_t left_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(entry.deadline - now).count();
    if (left_ms <= 0) {
      continue;
    }
    ByteWriter& record = out.record();
    record.U8('L');
    record.Bytes(resource);
    record.Bytes(entry.owner);
    record.I64(left_ms);
    out.EndRecord();
  }
  return out.Finish();
}

absl::Status InMemoryLockStore::ImportState(uint32_t format, std::string_view chunk) {
  OTTAVA_RETURN_IF_ERROR(CheckStateFormat(label_, format));
  ByteReader in(chunk);
  absl::MutexLock lock(&mu_);
  const MonotonicTime now = steady_clock::now();
  while (!in.done()) {
    uint8_t tag = 0;
    std::string resource;
    Entry entry;
    int64_t left_ms = 0;
    if (!in.U8(&tag) || tag != 'L') {
      return UnknownStateRecord(label_);
    }
    if (!in.Bytes(&resource) || !in.Bytes(&entry.owner) || !in.I64(&left_ms)) {
      return TruncatedStateRecord(label_);
    }
    Erase(resource);
    entry.deadline = now + std::chrono::milliseconds(left_ms);
    expiry_.emplace(entry.deadline, resource);
    locks_.emplace(std::move(resource), std::move(entry));
  }
  return absl::OkStatus();
}

void InMemoryLockStore::SweepExpired() {
  for (;;) {
    absl::MutexLock lock(&mu_);
    const MonotonicTime now = steady_clock::now();
    size_t batch = 0;
    while (!expiry_.empty() && expiry_.begin()->first <= now && batch < kSweepBatch) {
      std::string resource = expiry_.begin()->second;
      Erase(resource);
      ++batch;
    }
    if (batch < kSweepBatch) {
      return;
    }
  }
}

size_t InMemoryLockStore::EntryCountForTest() const {
  absl::MutexLock lock(&mu_);
  return locks_.size();
}

absl::StatusOr<std::unique_ptr<LockStore>> InMemoryLockFactory::Create(
    const ComponentContext& context) const {
  return std::make_unique<InMemoryLockStore>(context);
}

}  // namespace ottava::components::lock
