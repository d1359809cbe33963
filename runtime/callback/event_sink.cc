#include "runtime/callback/event_sink.h"

#include <mutex>
#include <string_view>
#include <unordered_map>

namespace ottava::runtime::callback {

void DeliverEach(EventSink& sink, const std::shared_ptr<const EventBatch>& batch, BulkDone done) {
  if (batch->entries.empty()) {
    done({});
    return;
  }
  // Verdicts arrive on any thread, in any order; the last one in completes the batch.
  struct Gather {
    std::mutex mu;
    std::vector<Outcome> outcomes;
    size_t remaining;
    BulkDone done;
  };
  auto gather = std::make_shared<Gather>();
  gather->outcomes.assign(batch->entries.size(), Outcome::kRetry);
  gather->remaining = batch->entries.size();
  gather->done = std::move(done);
  for (size_t i = 0; i < batch->entries.size(); ++i) {
    sink.Deliver(batch->entries[i].event, [gather, i](Outcome outcome) {
      {
        std::lock_guard<std::mutex> lock(gather->mu);
        gather->outcomes[i] = outcome;
        if (--gather->remaining > 0) {
          return;
        }
      }
      gather->done(std::move(gather->outcomes));
    });
  }
}

std::vector<Outcome> OutcomesByEntry(const EventBatch& batch,
                                     const std::vector<std::pair<std::string, Outcome>>& answered) {
  std::unordered_map<std::string_view, size_t> index;
  index.reserve(batch.entries.size());
  for (size_t i = 0; i < batch.entries.size(); ++i) {
    index.emplace(batch.entries[i].entry_id, i);
  }
  std::vector<Outcome> outcomes(batch.entries.size(), Outcome::kRetry);
  for (const auto& [entry_id, outcome] : answered) {
    if (auto it = index.find(entry_id); it != index.end()) {
      outcomes[it->second] = outcome;
    }
  }
  return outcomes;
}

}  // namespace ottava::runtime::callback
