#include "runtime/api/sequencer_api.h"

#include "common/logging.h"
#include "components/sequencer/segment_size.h"

namespace ottava::runtime::api {

SequencerApi::SequencerApi(const ComponentSet& components, const std::string& app_id) {
  for (const auto& instance : components.sequencers()) {
    const components::Metadata& metadata = instance.config->metadata;
    absl::StatusOr<int64_t> segment_size = components::sequencer::ParseSegmentSize(metadata);
    if (!segment_size.ok()) {
      // Our factories reject a bad value at startup; a factory that does not gets the default.
      OTTAVA_LOG(Api, warn, "sequencer/{}: {}; using {}", instance.config->name,
                 segment_size.status().message(), components::sequencer::kDefaultSegmentSize);
      segment_size = components::sequencer::kDefaultSegmentSize;
    }
    stores_.push_back(
        Store{instance.config->name, instance.component.get(),
              KeyPrefix::Create(metadata, app_id, instance.config->name, "sequencer"),
              std::make_unique<SegmentCaches>(instance.component.get(), *segment_size)});
  }
}

void SequencerApi::GetNextId(std::string_view store_name,
                             std::string_view key,
                             bool strong,
                             std::function<void(absl::StatusOr<int64_t>)> done) {
  absl::StatusOr<const Store*> store =
      FindForKey(stores_, components::Kind::kSequencer, store_name, key, "key");
  if (!store.ok()) {
    done(store.status());
    return;
  }
  std::string stored_key = (*store)->prefix.Apply(key);
  SegmentCaches* weak_ids = (*store)->weak_ids.get();
  if (!strong) {
    weak_ids->NextId(stored_key, std::move(done));
    return;
  }
  (*store)->component->GetNextId(
      components::sequencer::NextIdRequest{stored_key, true},
      [weak_ids, stored_key, done = std::move(done)](absl::StatusOr<int64_t> id) {
        if (id.ok()) {
          // Later WEAK ids of this sidecar exceed the STRONG one just handed out.
          weak_ids->Observe(stored_key, *id);
        }
        done(std::move(id));
      });
}

}  // namespace ottava::runtime::api
