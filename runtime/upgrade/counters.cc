#include "runtime/upgrade/counters.h"

#include <charconv>
#include <set>

#include "common/byte_codec.h"

namespace ottava::runtime::upgrade {

std::vector<CounterValue> CountersFromPrometheus(std::string_view text) {
  std::vector<CounterValue> out;
  std::string help_name;
  std::string help;
  std::string counter_family;  // the family whose samples follow, if it is a counter
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.rfind("# HELP ", 0) == 0) {
      line.remove_prefix(7);
      const size_t space = line.find(' ');
      help_name = std::string(line.substr(0, space));
      help = space == std::string_view::npos ? "" : std::string(line.substr(space + 1));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      line.remove_prefix(7);
      const size_t space = line.find(' ');
      const std::string_view name = line.substr(0, space);
      const bool counter = space != std::string_view::npos && line.substr(space + 1) == "counter";
      counter_family = counter ? std::string(name) : "";
      continue;
    }
    if (counter_family.empty() || line.empty() || line[0] == '#' ||
        line.rfind(counter_family, 0) != 0) {
      continue;
    }
    std::string_view rest = line.substr(counter_family.size());
    std::string labels;
    if (!rest.empty() && rest[0] == '{') {
      // Label values may contain '}' or spaces (escaped quotes only): find the closing brace
      // outside quotes.
      bool quoted = false;
      size_t close = std::string_view::npos;
      for (size_t i = 1; i < rest.size(); ++i) {
        if (quoted && rest[i] == '\\') {
          ++i;
        } else if (rest[i] == '"') {
          quoted = !quoted;
        } else if (!quoted && rest[i] == '}') {
          close = i;
          break;
        }
      }
      if (close == std::string_view::npos) {
        continue;
      }
      labels = std::string(rest.substr(0, close + 1));
      rest.remove_prefix(close + 1);
    }
    if (rest.empty() || rest[0] != ' ') {
      continue;  // another family sharing the prefix
    }
    rest.remove_prefix(1);
    uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc() || value == 0) {
      continue;
    }
    out.push_back(
        {counter_family, help_name == counter_family ? help : "", std::move(labels), value});
  }
  return out;
}

std::vector<std::string> EncodeCounters(const std::vector<CounterValue>& counters,
                                        size_t chunk_bytes) {
  ChunkWriter out(chunk_bytes);
  for (const CounterValue& counter : counters) {
    ByteWriter& record = out.record();
    record.U8('K');
    record.Bytes(counter.name);
    record.Bytes(counter.help);
    record.Bytes(counter.labels);
    record.U64(counter.value);
    out.EndRecord();
  }
  return out.Finish();
}

absl::StatusOr<std::vector<CounterValue>> DecodeCounters(std::string_view payload) {
  std::vector<CounterValue> out;
  ByteReader in(payload);
  while (!in.done()) {
    uint8_t tag = 0;
    CounterValue counter;
    if (!in.U8(&tag) || tag != 'K') {
      return absl::InvalidArgumentError("metrics: unknown record in the transferred counters");
    }
    if (!in.Bytes(&counter.name) || !in.Bytes(&counter.help) || !in.Bytes(&counter.labels) ||
        !in.U64(&counter.value)) {
      return absl::InvalidArgumentError("metrics: truncated record in the transferred counters");
    }
    out.push_back(std::move(counter));
  }
  return out;
}

bool ParseLabels(std::string_view formatted, stats::Labels* labels) {
  labels->clear();
  if (formatted.empty()) {
    return true;
  }
  if (formatted.size() < 2 || formatted.front() != '{' || formatted.back() != '}') {
    return false;
  }
  std::string_view rest = formatted.substr(1, formatted.size() - 2);
  while (!rest.empty()) {
    const size_t equals = rest.find("=\"");
    if (equals == std::string_view::npos || equals == 0) {
      return false;
    }
    std::string name(rest.substr(0, equals));
    rest.remove_prefix(equals + 2);
    std::string value;
    bool closed = false;
    size_t i = 0;
    for (; i < rest.size(); ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size()) {
        ++i;
        value += rest[i] == 'n' ? '\n' : rest[i];
      } else if (rest[i] == '"') {
        closed = true;
        break;
      } else {
        value += rest[i];
      }
    }
    if (!closed) {
      return false;
    }
    rest.remove_prefix(i + 1);
    labels->emplace_back(std::move(name), std::move(value));
    if (!rest.empty()) {
      if (rest[0] != ',') {
        return false;
      }
      rest.remove_prefix(1);
    }
  }
  return true;
}

size_t SeedCounters(stats::Store& store, const std::vector<CounterValue>& counters) {
  // A name this process already uses for a gauge or histogram is skipped: the store insists
  // that a family keeps its type.
  std::set<std::string, std::less<>> other_types;
  const std::string text = store.RenderPrometheus();
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (line.rfind("# TYPE ", 0) == 0) {
      line.remove_prefix(7);
      const size_t space = line.find(' ');
      if (space != std::string_view::npos && line.substr(space + 1) != "counter") {
        other_types.emplace(line.substr(0, space));
      }
    }
  }
  size_t seeded = 0;
  for (const CounterValue& counter : counters) {
    stats::Labels labels;
    if (counter.name.empty() || other_types.count(counter.name) > 0 ||
        !ParseLabels(counter.labels, &labels)) {
      continue;
    }
    store.CounterFor(counter.name, counter.help, labels).Inc(counter.value);
    ++seeded;
  }
  return seeded;
}

}  // namespace ottava::runtime::upgrade
