#include "runtime/api/sequencer_api.h"

namespace ottava::runtime::api {

SequencerApi::SequencerApi(const ComponentSet& components, const std::string& app_id) {
  for (const auto& instance : components.sequencers()) {
    stores_.push_back(Store{
        instance.config->name, instance.component.get(),
        KeyPrefix::Create(instance.config->metadata, app_id, instance.config->name, "sequencer")});
  }
}

void SequencerApi::GetNextId(std::string_view store_name,
                             std::string_view key,
                             bool strong,
                             std::function<void(absl::StatusOr<int64_t>)> done) {
  absl::StatusOr<const Store*> store =
      FindByName(stores_, components::Kind::kSequencer, store_name);
  if (!store.ok()) {
    done(store.status());
    return;
  }
  if (absl::Status status = ValidateKey(key, "key"); !status.ok()) {
    done(status);
    return;
  }
  (*store)->component->GetNextId(
      components::sequencer::NextIdRequest{(*store)->prefix.Apply(key), strong}, std::move(done));
}

}  // namespace ottava::runtime::api
