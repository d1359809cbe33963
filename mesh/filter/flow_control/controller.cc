#include "mesh/filter/flow_control/controller.h"

#include <algorithm>
#include <cmath>
#include <list>
#include <unordered_map>

#include "common/logging.h"
#include "common/status.h"
#include "mesh/filter/flow_control/window.h"

namespace ottava::mesh::flow {
namespace {

constexpr int kPass = 0;
constexpr int kBlock = 1;
// Breaker windows: total calls, errors and slow calls.
constexpr int kTotal = 0;
constexpr int kErrors = 1;
constexpr int kSlow = 2;

enum BreakerState : int { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

std::string_view BreakerStateName(int state) {
  switch (state) {
    case kOpen:
      return "open";
    case kHalfOpen:
      return "half_open";
    default:
      return "closed";
  }
}

int64_t Nanos(MonotonicTime time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

// The value of `name` in a raw query string ("a=1&b=2"), without decoding; nullopt when absent.
std::optional<std::string_view> QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

// Per-value token buckets in a bounded LRU, sharded so concurrent values rarely share a lock.
class HotParamTable {
 public:
  static constexpr size_t kShards = 16;

  explicit HotParamTable(const HotParamSpec& spec)
      : spec_(spec),
        per_shard_(
            std::max<size_t>(1, (static_cast<size_t>(spec.capacity) + kShards - 1) / kShards)) {}

  bool Acquire(std::string_view value, int64_t now_ns) {
    auto override_it = spec_.overrides.find(value);
    const double threshold =
        override_it != spec_.overrides.end() ? override_it->second : spec_.threshold;
    if (threshold <= 0) {
      return false;
    }
    const double capacity = threshold + spec_.burst;
    const double per_ns = threshold / (static_cast<double>(spec_.duration_ms) * 1e6);
    Shard& shard = shards_[std::hash<std::string_view>{}(value) % kShards];
    absl::MutexLock lock(&shard.mu);
    auto it = shard.index.find(value);
    if (it == shard.index.end()) {
      if (shard.lru.size() >= per_shard_) {
        shard.index.erase(shard.lru.back().value);
        shard.lru.pop_back();
      }
      shard.lru.push_front(Bucket{std::string(value), capacity - 1, now_ns});
      shard.index.emplace(shard.lru.front().value, shard.lru.begin());
      return true;
    }
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
    Bucket& bucket = *it->second;
    bucket.tokens =
        std::min(capacity, bucket.tokens + static_cast<double>(now_ns - bucket.last_ns) * per_ns);
    bucket.last_ns = now_ns;
    if (bucket.tokens < 1) {
      return false;
    }
    bucket.tokens -= 1;
    return true;
  }

  size_t Size() const {
    size_t size = 0;
    for (const Shard& shard : shards_) {
      absl::MutexLock lock(&shard.mu);
      size += shard.lru.size();
    }
    return size;
  }

 private:
  struct Bucket {
    std::string value;
    double tokens;
    int64_t last_ns;
  };
  struct Shard {
    mutable absl::Mutex mu;
    std::list<Bucket> lru ABSL_GUARDED_BY(mu);
    std::unordered_map<std::string_view, std::list<Bucket>::iterator> index ABSL_GUARDED_BY(mu);
  };
  const HotParamSpec& spec_;
  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace

namespace {

int64_t WindowNanos(const Rule& rule) {
  switch (rule.kind) {
    case RuleKind::kBreaker:
      return rule.breaker.window_ms * 1'000'000;
    case RuleKind::kCluster:
      return rule.cluster.window_ms * 1'000'000;
    default:
      return rule.qps.window_ms * 1'000'000;
  }
}

int64_t WindowBuckets(const Rule& rule) {
  switch (rule.kind) {
    case RuleKind::kBreaker:
      return rule.breaker.buckets;
    case RuleKind::kCluster:
      return rule.cluster.window_ms % 10 == 0 ? 10 : 1;
    default:
      return rule.qps.buckets;
  }
}

}  // namespace

// The live state of one rule. Shared by rule-set versions while the rule's JSON is unchanged.
struct RuleState : std::enable_shared_from_this<RuleState> {
  explicit RuleState(Rule r) : rule(std::move(r)), window(WindowNanos(rule), WindowBuckets(rule)) {
    if (rule.kind == RuleKind::kHotParam) {
      hot = std::make_unique<HotParamTable>(rule.hot);
    }
    if (rule.kind == RuleKind::kQps && rule.qps.behavior == QpsBehavior::kWarmUp) {
      // Guava's SmoothWarmingUp as Sentinel applies it, in requests per second.
      const double count = Qps();
      const double cold = rule.qps.cold_factor;
      const double period = static_cast<double>(rule.qps.warm_up_seconds);
      warning_token = period * count / (cold - 1);
      max_token = warning_token + 2 * period * count / (1 + cold);
      slope = count > 0 ? (cold - 1) / count / (max_token - warning_token) : 0;
    }
  }

  // The threshold as requests per second.
  double Qps() const {
    return rule.qps.threshold * 1000.0 / static_cast<double>(rule.qps.window_ms);
  }

  Rule rule;
  SlidingWindow window;  // qps: passes/blocks; breaker: totals/errors/slow
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> passes{0};
  std::atomic<uint64_t> blocks{0};
  // Throttling: when the last admitted request is due.
  std::atomic<int64_t> latest_passed_ns{std::numeric_limits<int64_t>::min()};
  // Warm-up.
  double warning_token = 0;
  double max_token = 0;
  double slope = 0;
  std::atomic<double> stored_tokens{0};
  std::atomic<int64_t> last_filled_s{0};
  // Breaker.
  std::atomic<int> state{kClosed};
  std::atomic<int64_t> open_until_ns{0};
  std::atomic<int64_t> probes_issued{0};
  std::atomic<int64_t> probes_good{0};
  std::unique_ptr<HotParamTable> hot;
  // Cluster. The fixed window (wall-clock milliseconds ÷ window_ms) this state counts in; async:
  // local tokens (negative: borrowed ahead of a reservation in flight), whether the window's
  // total is spent, whether a reservation failed in it (fallback until the next window), and the
  // window of the reservation in flight (-1: none).
  std::atomic<int64_t> cluster_window{-1};
  std::atomic<int64_t> tokens{0};
  std::atomic<bool> exhausted{false};
  std::atomic<bool> degraded{false};
  std::atomic<int64_t> reserving{-1};
  std::atomic<uint64_t> remote_calls{0};
  std::atomic<uint64_t> fallbacks{0};
  // Events: the second of the last block reported; where events go (the controller's).
  std::atomic<int64_t> last_block_event_s{-1};
  const std::atomic<EventListener*>* events = nullptr;
  // Metrics.
  stats::Counter* pass_counter = nullptr;
  stats::Counter* block_counter = nullptr;
  stats::Gauge* state_gauge = nullptr;
  std::array<stats::Counter*, 3> transition_counters{};
  stats::Counter* fallback_counter = nullptr;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

struct CompiledRules {
  RuleSet set;
  std::vector<std::shared_ptr<RuleState>> states;  // in rule order
  std::unordered_map<std::string, std::vector<RuleState*>, StringHash, std::equal_to<>> exact;
  std::vector<RuleState*> prefixed;
};

namespace {

bool ConditionHolds(const Condition& condition,
                    const Traffic& traffic,
                    std::string_view caller_app) {
  std::optional<std::string_view> value;
  switch (condition.subject) {
    case Condition::Subject::kCallerApp:
      value = caller_app;
      break;
    case Condition::Subject::kSourceIp:
      value = traffic.source_ip;
      break;
    case Condition::Subject::kHeader:
      if (traffic.headers != nullptr) {
        if (const std::string* header = traffic.headers->Get(condition.name)) {
          value = *header;
        }
      }
      break;
    case Condition::Subject::kQuery:
      value = QueryValue(traffic.query, condition.name);
      break;
  }
  if (!value.has_value()) {
    return false;
  }
  if (condition.present_only) {
    return true;
  }
  return condition.prefix ? value->starts_with(condition.value) : *value == condition.value;
}

bool Applies(const RuleState& state, const Traffic& traffic, const RuleSet& set) {
  const ConditionSet& when = state.rule.when;
  if (when.empty()) {
    return true;
  }
  std::string_view caller_app;
  if (traffic.headers != nullptr) {
    for (const std::string& name : set.caller_app_headers) {
      if (const std::string* value = traffic.headers->Get(name)) {
        caller_app = *value;
        break;
      }
    }
  }
  for (const Condition& condition : when.conditions) {
    const bool holds = ConditionHolds(condition, traffic, caller_app);
    if (when.any && holds) {
      return true;
    }
    if (!when.any && !holds) {
      return false;
    }
  }
  return !when.any;
}

// Sentinel's warm-up token sync: once per second, refill stored tokens while traffic is cold.
void SyncWarmUpTokens(RuleState& state, int64_t now_ns) {
  const int64_t second = now_ns / 1'000'000'000;
  int64_t last = state.last_filled_s.load();
  if (second <= last || !state.last_filled_s.compare_exchange_strong(last, second)) {
    return;
  }
  // Passes of the previous second (as far as the window still holds them).
  const double previous_qps =
      static_cast<double>(state.window.Sum(second * 1'000'000'000 - 1, kPass)) * 1000.0 /
      static_cast<double>(state.rule.qps.window_ms);
  const double count = state.Qps();
  const double old_value = state.stored_tokens.load();
  double new_value = old_value;
  const double refill = static_cast<double>(last == 0 ? 1'000'000 : second - last) * count;
  if (old_value < state.warning_token) {
    new_value = old_value + refill;
  } else if (old_value > state.warning_token && previous_qps < count / state.rule.qps.cold_factor) {
    new_value = old_value + refill;
  }
  new_value = std::min(new_value, state.max_token);
  state.stored_tokens.store(std::max(0.0, new_value - previous_qps));
}

bool QpsAdmits(RuleState& state,
               int64_t now_ns,
               bool allow_queueing,
               std::chrono::nanoseconds* wait) {
  const QpsSpec& qps = state.rule.qps;
  switch (qps.behavior) {
    case QpsBehavior::kReject: {
      const int64_t sum = state.window.AddAndSum(now_ns, kPass, 1);
      if (static_cast<double>(sum) > qps.threshold) {
        state.window.Subtract(now_ns, kPass, 1);
        state.window.Add(now_ns, kBlock, 1);
        return false;
      }
      return true;
    }
    case QpsBehavior::kWarmUp: {
      SyncWarmUpTokens(state, now_ns);
      double allowed = qps.threshold;
      const double rest = state.stored_tokens.load();
      if (rest >= state.warning_token && state.Qps() > 0) {
        const double above = rest - state.warning_token;
        const double warning_qps = 1.0 / (above * state.slope + 1.0 / state.Qps());
        allowed = warning_qps * static_cast<double>(qps.window_ms) / 1000.0;
      }
      const int64_t sum = state.window.AddAndSum(now_ns, kPass, 1);
      if (static_cast<double>(sum) > allowed) {
        state.window.Subtract(now_ns, kPass, 1);
        state.window.Add(now_ns, kBlock, 1);
        return false;
      }
      return true;
    }
    case QpsBehavior::kThrottling: {
      // Leaky bucket: admitted requests are spaced `interval` apart; one that would have to wait
      // longer than max_queueing_ms is refused.
      const auto interval =
          static_cast<int64_t>(static_cast<double>(qps.window_ms) * 1e6 / qps.threshold);
      const int64_t max_wait = allow_queueing ? qps.max_queueing_ms * 1'000'000 : 0;
      int64_t latest = state.latest_passed_ns.load();
      for (;;) {
        const int64_t due =
            latest == std::numeric_limits<int64_t>::min() ? now_ns : latest + interval;
        const int64_t slot = std::max(due, now_ns);
        if (slot - now_ns > max_wait) {
          state.window.Add(now_ns, kBlock, 1);
          return false;
        }
        if (state.latest_passed_ns.compare_exchange_weak(latest, slot)) {
          *wait = std::chrono::nanoseconds(slot - now_ns);
          state.window.Add(now_ns, kPass, 1);
          return true;
        }
      }
    }
  }
  return true;
}

}  // namespace

std::string_view FlowEventKindName(FlowEvent::Kind kind) {
  switch (kind) {
    case FlowEvent::Kind::kBlock:
      return "block";
    case FlowEvent::Kind::kBreakerState:
      return "breaker_state";
    case FlowEvent::Kind::kAdaptiveTrigger:
      return "adaptive_trigger";
  }
  return "unknown";
}

const std::string& Entry::blocking_rule() const {
  static const std::string kNone;
  return blocking_ != nullptr ? blocking_->rule.id : kNone;
}

std::unique_ptr<Controller> Controller::Create(RuleSet rules,
                                               const TimeSource& time,
                                               stats::Store& stats) {
  std::unique_ptr<Controller> controller(new Controller(time, stats));
  controller->adaptive_stress_blocks_ =
      &stats.CounterFor("ottava_flow_control_adaptive_blocks_total",
                        "Requests shed by adaptive limiting", {{"reason", "stress"}});
  controller->adaptive_baseline_blocks_ =
      &stats.CounterFor("ottava_flow_control_adaptive_blocks_total",
                        "Requests shed by adaptive limiting", {{"reason", "baseline"}});
  controller->Update(std::move(rules));
  return controller;
}

Controller::~Controller() = default;

std::shared_ptr<const CompiledRules> Controller::Current() const {
  return rules_.load(std::memory_order_acquire);
}

std::shared_ptr<const CompiledRules> Controller::Compile(RuleSet rules,
                                                         const CompiledRules* previous) const {
  auto compiled = std::make_shared<CompiledRules>();
  std::unordered_map<std::string, std::shared_ptr<RuleState>> reusable;
  if (previous != nullptr) {
    for (const auto& state : previous->states) {
      reusable.emplace(state->rule.canonical, state);
    }
  }
  for (Rule& rule : rules.rules) {
    std::shared_ptr<RuleState> state;
    auto it = reusable.find(rule.canonical);
    if (it != reusable.end()) {
      state = it->second;
      reusable.erase(it);
    } else {
      state = std::make_shared<RuleState>(rule);
      stats::Labels labels{{"resource", rule.resource},
                           {"rule", rule.id},
                           {"kind", std::string(RuleKindName(rule.kind))}};
      state->pass_counter = &stats_.CounterFor("ottava_flow_control_passes_total",
                                               "Requests a flow-control rule let through", labels);
      state->block_counter = &stats_.CounterFor("ottava_flow_control_blocks_total",
                                                "Requests a flow-control rule blocked", labels);
      state->events = &events_;
      if (rule.kind == RuleKind::kCluster) {
        state->fallback_counter = &stats_.CounterFor(
            "ottava_flow_control_cluster_fallbacks_total",
            "Requests a cluster rule decided by its fallback (central counter unreachable)",
            {{"resource", rule.resource}, {"rule", rule.id}});
      }
      if (rule.kind == RuleKind::kBreaker) {
        stats::Labels breaker_labels{{"resource", rule.resource}, {"rule", rule.id}};
        state->state_gauge = &stats_.GaugeFor(
            "ottava_flow_control_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open", breaker_labels);
        state->state_gauge->Set(kClosed);
        for (int to : {kClosed, kOpen, kHalfOpen}) {
          stats::Labels with_to = breaker_labels;
          with_to.emplace_back("to", std::string(BreakerStateName(to)));
          state->transition_counters[to] =
              &stats_.CounterFor("ottava_flow_control_breaker_transitions_total",
                                 "Circuit breaker state changes", with_to);
        }
      }
    }
    compiled->states.push_back(state);
  }
  for (const auto& state : compiled->states) {
    if (state->rule.prefix) {
      compiled->prefixed.push_back(state.get());
    } else {
      compiled->exact[state->rule.resource].push_back(state.get());
    }
  }
  compiled->set = std::move(rules);
  return compiled;
}

void Controller::Update(RuleSet rules) {
  absl::MutexLock lock(&update_mu_);
  std::shared_ptr<const CompiledRules> previous = Current();
  rules_.store(Compile(std::move(rules), previous.get()), std::memory_order_release);
  version_.fetch_add(1);
}

absl::Status Controller::UpdateFromText(std::string_view text) {
  absl::StatusOr<RuleSet> rules = RuleSet::ParseText(text);
  if (!rules.ok()) {
    return rules.status();
  }
  {
    absl::MutexLock lock(&update_mu_);
    if (cluster_exists_) {
      OTTAVA_RETURN_IF_ERROR(rules->CheckFallbackClusters(cluster_exists_, ""));
    }
  }
  if (cluster_.load() == nullptr) {
    for (size_t i = 0; i < rules->rules.size(); ++i) {
      if (rules->rules[i].kind == RuleKind::kCluster) {
        return absl::InvalidArgumentError(
            "/rules/" + std::to_string(i) +
            ": a cluster rule needs flow_control.cluster (the Redis counter) in the config file");
      }
    }
  }
  Update(std::move(*rules));
  return absl::OkStatus();
}

namespace {

// Moves a breaker from `from` to `to` unless another thread changed it first; logs and counts.
bool Transition(RuleState& state, int from, int to, int64_t now_ns) {
  if (to == kOpen) {
    // Set before the state so a request that sees Open also sees its end.
    state.open_until_ns.store(now_ns + state.rule.breaker.open_ms * 1'000'000);
  }
  int expected = from;
  if (!state.state.compare_exchange_strong(expected, to)) {
    return false;
  }
  if (to == kOpen) {
    state.probes_issued.store(state.rule.breaker.probes);  // no probe until half-open again
  }
  if (to == kHalfOpen) {
    state.probes_good.store(0);
  }
  if (to == kClosed) {
    state.window.Reset();
  }
  if (state.state_gauge != nullptr) {
    state.state_gauge->Set(to);
  }
  if (state.transition_counters[to] != nullptr) {
    state.transition_counters[to]->Inc();
  }
  if (state.events != nullptr) {
    if (EventListener* listener = state.events->load(std::memory_order_acquire)) {
      listener->OnEvent(FlowEvent{FlowEvent::Kind::kBreakerState, state.rule.resource,
                                  state.rule.id, BreakerStateName(to)});
    }
  }
  OTTAVA_LOG(Mesh, info, "flow control: breaker '{}' on '{}' {} -> {}", state.rule.id,
             state.rule.resource, BreakerStateName(from), BreakerStateName(to));
  return true;
}

// Whether the breaker lets a request through; `probe` is set for a half-open probe.
bool BreakerAdmits(RuleState& state, int64_t now_ns, bool* probe) {
  int current = state.state.load();
  if (current == kClosed) {
    return true;
  }
  if (current == kOpen) {
    if (now_ns < state.open_until_ns.load()) {
      return false;
    }
    // The first request after open_ms turns the breaker half-open and is its first probe.
    if (Transition(state, kOpen, kHalfOpen, now_ns)) {
      state.probes_issued.store(1);
      *probe = true;
      return true;
    }
    current = state.state.load();
  }
  if (current != kHalfOpen) {
    return current == kClosed;
  }
  if (state.probes_issued.fetch_add(1) < state.rule.breaker.probes) {
    *probe = true;
    return true;
  }
  return false;
}

void BreakerRecord(RuleState& state, bool probe, bool error, int64_t rt_ns, int64_t now_ns) {
  const BreakerSpec& spec = state.rule.breaker;
  const bool slow = rt_ns > spec.slow_ms * 1'000'000;
  const bool bad = spec.strategy == BreakerStrategy::kSlowRatio ? slow : error;
  const int current = state.state.load();
  if (current == kHalfOpen) {
    if (!probe) {
      return;
    }
    if (bad) {
      Transition(state, kHalfOpen, kOpen, now_ns);
    } else if (state.probes_good.fetch_add(1) + 1 >= spec.probes) {
      Transition(state, kHalfOpen, kClosed, now_ns);
    }
    return;
  }
  if (current != kClosed) {
    return;
  }
  const int64_t total = state.window.AddAndSum(now_ns, kTotal, 1);
  int64_t bad_count = 0;
  if (error) {
    state.window.Add(now_ns, kErrors, 1);
  }
  if (slow) {
    state.window.Add(now_ns, kSlow, 1);
  }
  if (!bad) {
    return;  // only a bad call can trip the breaker (as Sentinel)
  }
  bad_count =
      state.window.Sum(now_ns, spec.strategy == BreakerStrategy::kSlowRatio ? kSlow : kErrors);
  if (total < spec.min_requests) {
    return;
  }
  const double value = spec.strategy == BreakerStrategy::kErrorCount
                           ? static_cast<double>(bad_count)
                           : static_cast<double>(bad_count) / static_cast<double>(total);
  if (value >= spec.threshold) {
    Transition(state, kClosed, kOpen, now_ns);
  }
}

}  // namespace

Entry Controller::Check(const Traffic& traffic, bool allow_queueing, bool allow_remote) {
  Entry entry;
  std::shared_ptr<const CompiledRules> rules = Current();
  if (AdaptiveLimiter* adaptive = adaptive_.load(std::memory_order_acquire)) {
    const std::string& marker = adaptive->config().stress_header;
    const bool stress = traffic.headers != nullptr && traffic.headers->Get(marker) != nullptr;
    const AdaptiveLimiter::Verdict verdict = adaptive->Admit(traffic.resource, stress);
    if (verdict != AdaptiveLimiter::Verdict::kAdmit) {
      (verdict == AdaptiveLimiter::Verdict::kShedStress ? adaptive_stress_blocks_
                                                        : adaptive_baseline_blocks_)
          ->Inc();
      entry.blocked_ = true;
      entry.exited_ = true;
      entry.reply_ = rules != nullptr ? &rules->set.default_reply : nullptr;
      entry.rules_ = std::move(rules);
      if (entry.reply_ == nullptr) {
        static const ReplySpec kDefault;
        entry.reply_ = &kDefault;
      }
      return entry;
    }
    entry.adaptive_ = adaptive;
    entry.adaptive_resource_ = std::string(traffic.resource);
  }
  if (rules == nullptr || rules->states.empty()) {
    return entry;
  }
  // Matching rules, in rule order: exact ones, then prefixes.
  RuleState* matched[64];
  size_t count = 0;
  if (auto it = rules->exact.find(traffic.resource); it != rules->exact.end()) {
    for (RuleState* state : it->second) {
      if (count < std::size(matched)) {
        matched[count++] = state;
      }
    }
  }
  for (RuleState* state : rules->prefixed) {
    if (count < std::size(matched) && traffic.resource.starts_with(state->rule.resource)) {
      matched[count++] = state;
    }
  }
  if (count == 0) {
    return entry;
  }
  const MonotonicTime now = time_.MonotonicTime();
  const int64_t now_ns = Nanos(now);
  entry.start_ = now;
  // Limits first, breakers last (Sentinel's slot order), so a blocked request is never a probe.
  for (int phase = 0; phase < 2 && !entry.blocked_; ++phase) {
    for (size_t i = 0; i < count && !entry.blocked_; ++i) {
      RuleState& state = *matched[i];
      if ((state.rule.kind == RuleKind::kBreaker) != (phase == 1) ||
          !Applies(state, traffic, rules->set)) {
        continue;
      }
      bool admitted = true;
      bool probe = false;
      switch (state.rule.kind) {
        case RuleKind::kQps: {
          std::chrono::nanoseconds wait{0};
          admitted = QpsAdmits(state, now_ns, allow_queueing, &wait);
          entry.wait_ = std::max(entry.wait_, wait);
          break;
        }
        case RuleKind::kConcurrency:
          if (state.in_flight.fetch_add(1) + 1 > state.rule.concurrency.threshold) {
            state.in_flight.fetch_sub(1);
            admitted = false;
          } else {
            entry.held_.push_back({&state, false});
          }
          break;
        case RuleKind::kHotParam: {
          const HotParamSpec& hot = state.rule.hot;
          std::optional<std::string_view> value;
          if (hot.source == Condition::Subject::kQuery) {
            value = QueryValue(traffic.query, hot.name);
          } else if (traffic.headers != nullptr) {
            if (const std::string* header = traffic.headers->Get(hot.name)) {
              value = *header;
            }
          }
          // A request without the parameter is not limited by it.
          admitted = !value.has_value() || state.hot->Acquire(*value, now_ns);
          break;
        }
        case RuleKind::kBreaker:
          admitted = BreakerAdmits(state, now_ns, &probe);
          if (admitted) {
            entry.held_.push_back({&state, probe});
          }
          break;
        case RuleKind::kCluster: {
          ClusterCounter* counter = cluster_.load(std::memory_order_acquire);
          if (allow_remote && state.rule.cluster.mode == ClusterMode::kSync && counter != nullptr &&
              counter->Healthy()) {
            entry.pending_.push_back(&state);  // counted once the central counter answered
            continue;
          }
          admitted = ClusterAdmits(state, now_ns);
          break;
        }
      }
      if (!admitted) {
        Block(entry, state, *rules, now_ns);
      } else {
        state.passes.fetch_add(1, std::memory_order_relaxed);
        state.pass_counter->Inc();
      }
    }
  }
  entry.rules_ = std::move(rules);
  Conclude(entry);
  return entry;
}

void Controller::Block(Entry& entry, RuleState& state, const CompiledRules& rules, int64_t now_ns) {
  state.blocks.fetch_add(1, std::memory_order_relaxed);
  state.block_counter->Inc();
  entry.blocked_ = true;
  entry.blocking_ = &state;
  entry.reply_ = state.rule.reply ? &*state.rule.reply : &rules.set.default_reply;
  // Release what earlier rules handed out.
  for (const Entry::Held& held : entry.held_) {
    if (held.state->rule.kind == RuleKind::kConcurrency) {
      held.state->in_flight.fetch_sub(1);
    } else if (held.probe) {
      Transition(*held.state, kHalfOpen, kOpen, now_ns);
    }
  }
  entry.held_.clear();
  entry.pending_.clear();
  // One event per rule per second at most: a flood of blocks costs one CAS per second here.
  if (EventListener* listener = events_.load(std::memory_order_acquire)) {
    const int64_t second = now_ns / 1'000'000'000;
    int64_t last = state.last_block_event_s.load(std::memory_order_relaxed);
    if (last != second && state.last_block_event_s.compare_exchange_strong(last, second)) {
      listener->OnEvent(FlowEvent{FlowEvent::Kind::kBlock, state.rule.resource, state.rule.id,
                                  RuleKindName(state.rule.kind)});
    }
  }
}

void Controller::Conclude(Entry& entry) {
  if (!entry.blocked_) {
    return;
  }
  entry.wait_ = std::chrono::nanoseconds(0);
  entry.exited_ = true;
  if (entry.adaptive_ != nullptr) {
    entry.adaptive_->Release(entry.adaptive_resource_);
    entry.adaptive_ = nullptr;
  }
}

int64_t Controller::WallMillis() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             time_.SystemTime().time_since_epoch())
      .count();
}

namespace {

// The central counter's key of a cluster rule in one window: every sidecar with the same rule
// (resource and id) counts on the same key. The counter adds its own prefix.
std::string ClusterKey(const RuleState& state, int64_t window) {
  return state.rule.resource + "|" + state.rule.id + "|" + std::to_string(window);
}

// Keys outlive their window a little, for sidecars whose clocks lag.
std::chrono::milliseconds ClusterTtl(const RuleState& state) {
  return std::chrono::milliseconds(state.rule.cluster.window_ms * 2 + 1000);
}

// Moves an async cluster rule into `window` when time reached it: fresh tokens, not exhausted, a
// new chance for the counter.
void RollClusterWindow(RuleState& state, int64_t window) {
  int64_t current = state.cluster_window.load(std::memory_order_acquire);
  while (current < window) {
    if (state.cluster_window.compare_exchange_weak(current, window)) {
      state.tokens.store(0);
      state.exhausted.store(false);
      state.degraded.store(false);
      return;
    }
  }
}

}  // namespace

bool Controller::FallbackAdmits(RuleState& state, int64_t now_ns) {
  state.fallbacks.fetch_add(1, std::memory_order_relaxed);
  if (state.fallback_counter != nullptr) {
    state.fallback_counter->Inc();
  }
  switch (state.rule.cluster.fallback) {
    case ClusterFallback::kAllow:
      return true;
    case ClusterFallback::kDeny:
      return false;
    case ClusterFallback::kLocal: {
      const int64_t sum = state.window.AddAndSum(now_ns, kPass, 1);
      if (static_cast<double>(sum) > state.rule.cluster.local_threshold) {
        state.window.Subtract(now_ns, kPass, 1);
        state.window.Add(now_ns, kBlock, 1);
        return false;
      }
      return true;
    }
  }
  return false;
}

// The async path (also sync rules for callers that cannot wait): local atomics only; a reservation
// is sent when the local share runs low, and its answer arrives later on another thread.
bool Controller::ClusterAdmits(RuleState& state, int64_t now_ns) {
  ClusterCounter* counter = cluster_.load(std::memory_order_acquire);
  if (counter == nullptr || !counter->Healthy()) {
    return FallbackAdmits(state, now_ns);
  }
  const ClusterSpec& spec = state.rule.cluster;
  const int64_t window = WallMillis() / spec.window_ms;
  RollClusterWindow(state, window);
  if (state.degraded.load(std::memory_order_acquire)) {
    return FallbackAdmits(state, now_ns);
  }
  const int64_t share = spec.Share();
  int64_t tokens = state.tokens.load(std::memory_order_acquire);
  for (;;) {
    const bool exhausted = state.exhausted.load(std::memory_order_acquire);
    // Without tokens, a request may borrow up to one share ahead of the reservation in flight
    // (so a quiet sidecar is not refused while its first share of a window is on its way).
    if (tokens <= 0 && (exhausted || tokens <= -share)) {
      if (!exhausted) {
        Reserve(state, window);
      }
      return false;
    }
    if (state.tokens.compare_exchange_weak(tokens, tokens - 1)) {
      break;
    }
  }
  if (!state.exhausted.load(std::memory_order_acquire) && (tokens - 1) * 2 < share) {
    Reserve(state, window);
  }
  return true;
}

void Controller::Reserve(RuleState& state, int64_t window) {
  int64_t reserving = state.reserving.load(std::memory_order_acquire);
  if (reserving == window || !state.reserving.compare_exchange_strong(reserving, window)) {
    return;  // one reservation in flight per window
  }
  ClusterCounter* counter = cluster_.load(std::memory_order_acquire);
  if (counter == nullptr) {
    state.reserving.store(-1);
    return;
  }
  state.remote_calls.fetch_add(1, std::memory_order_relaxed);
  const int64_t share = state.rule.cluster.Share();
  const auto limit = static_cast<int64_t>(state.rule.cluster.threshold);
  counter->Add(
      ClusterKey(state, window), share, ClusterTtl(state),
      [this, keep = state.shared_from_this(), window, share, limit](absl::StatusOr<int64_t> total) {
        RuleState& st = *keep;
        int64_t expected = window;
        const bool current = st.cluster_window.load(std::memory_order_acquire) == window;
        if (current) {
          if (!total.ok()) {
            st.degraded.store(true);  // fallback until the next window
          } else {
            // Only what is left under the limit is granted: the sidecars together never get more
            // than the threshold in a window.
            const int64_t granted = std::clamp<int64_t>(limit - (*total - share), 0, share);
            if (*total >= limit) {
              st.exhausted.store(true);
            }
            st.tokens.fetch_add(granted);
          }
        }
        st.reserving.compare_exchange_strong(expected, -1);
        if (current && total.ok() && !st.exhausted.load() && st.tokens.load() * 2 < share) {
          Reserve(st, window);  // borrowed more than half a share meanwhile
        }
      });
}

void Controller::CheckCluster(const Entry& entry, std::function<void(int verdict)> done) {
  ClusterCounter* counter = cluster_.load(std::memory_order_acquire);
  struct Join {
    std::atomic<size_t> left;
    std::atomic<int> verdict{-1};
    std::function<void(int)> done;
  };
  auto join = std::make_shared<Join>();
  join->left.store(entry.pending_.size());
  join->done = std::move(done);
  const int64_t now_ms = WallMillis();
  for (size_t i = 0; i < entry.pending_.size(); ++i) {
    RuleState& state = *entry.pending_[i];
    auto finish = [join, i](bool admitted) {
      if (!admitted) {
        int none = -1;
        join->verdict.compare_exchange_strong(none, static_cast<int>(i));
      }
      if (join->left.fetch_sub(1) == 1) {
        join->done(join->verdict.load());
      }
    };
    if (counter == nullptr) {
      finish(FallbackAdmits(state, Nanos(time_.MonotonicTime())));
      continue;
    }
    state.remote_calls.fetch_add(1, std::memory_order_relaxed);
    const int64_t window = now_ms / state.rule.cluster.window_ms;
    counter->Add(ClusterKey(state, window), 1, ClusterTtl(state),
                 [this, keep = state.shared_from_this(), finish](absl::StatusOr<int64_t> total) {
                   if (!total.ok()) {
                     finish(FallbackAdmits(*keep, Nanos(time_.MonotonicTime())));
                     return;
                   }
                   finish(static_cast<double>(*total) <= keep->rule.cluster.threshold);
                 });
  }
}

void Controller::FinishCluster(Entry& entry, int verdict) {
  if (entry.pending_.empty() || entry.blocked_) {
    return;
  }
  if (verdict >= 0 && static_cast<size_t>(verdict) < entry.pending_.size()) {
    Block(entry, *entry.pending_[static_cast<size_t>(verdict)], *entry.rules_,
          Nanos(time_.MonotonicTime()));
    Conclude(entry);
    return;
  }
  for (RuleState* state : entry.pending_) {
    state->passes.fetch_add(1, std::memory_order_relaxed);
    state->pass_counter->Inc();
  }
  entry.pending_.clear();
}

void Controller::Exit(Entry& entry, const Outcome& outcome) {
  if (entry.exited_) {
    return;
  }
  entry.exited_ = true;
  if (entry.adaptive_ != nullptr) {
    entry.adaptive_->Release(entry.adaptive_resource_);
    entry.adaptive_ = nullptr;
  }
  if (entry.held_.empty()) {
    return;
  }
  const MonotonicTime now = time_.MonotonicTime();
  const int64_t now_ns = Nanos(now);
  // Time spent queued by throttling is not the upstream's latency.
  const int64_t rt_ns = Nanos(now) - Nanos(entry.start_) - entry.wait_.count();
  for (const Entry::Held& held : entry.held_) {
    if (held.state->rule.kind == RuleKind::kConcurrency) {
      held.state->in_flight.fetch_sub(1);
    } else if (held.state->rule.kind == RuleKind::kBreaker) {
      BreakerRecord(*held.state, held.probe, outcome.error, rt_ns, now_ns);
    }
  }
  entry.held_.clear();
}

nlohmann::json Controller::Describe() const {
  std::shared_ptr<const CompiledRules> rules = Current();
  nlohmann::json out = nlohmann::json::object();
  out["version"] = version_.load();
  out["rules"] = nlohmann::json::array();
  if (rules == nullptr) {
    return out;
  }
  const int64_t now_ns = Nanos(time_.MonotonicTime());
  for (const auto& state : rules->states) {
    nlohmann::json rule = nlohmann::json::parse(state->rule.canonical, nullptr, false);
    nlohmann::json live = {{"passes", state->passes.load()}, {"blocks", state->blocks.load()}};
    switch (state->rule.kind) {
      case RuleKind::kQps:
        live["window_passes"] = state->window.Sum(now_ns, kPass);
        live["window_blocks"] = state->window.Sum(now_ns, kBlock);
        if (state->rule.qps.behavior == QpsBehavior::kWarmUp) {
          live["stored_tokens"] = state->stored_tokens.load();
        }
        break;
      case RuleKind::kConcurrency:
        live["in_flight"] = state->in_flight.load();
        break;
      case RuleKind::kHotParam:
        live["tracked_values"] = state->hot->Size();
        break;
      case RuleKind::kBreaker:
        live["state"] = BreakerStateName(state->state.load());
        live["window_calls"] = state->window.Sum(now_ns, kTotal);
        live["window_errors"] = state->window.Sum(now_ns, kErrors);
        live["window_slow"] = state->window.Sum(now_ns, kSlow);
        break;
      case RuleKind::kCluster:
        live["window"] = state->cluster_window.load();
        live["tokens"] = state->tokens.load();
        live["exhausted"] = state->exhausted.load();
        live["degraded"] = state->degraded.load();
        live["remote_calls"] = state->remote_calls.load();
        live["fallbacks"] = state->fallbacks.load();
        break;
    }
    out["rules"].push_back({{"rule", std::move(rule)}, {"live", std::move(live)}});
  }
  return out;
}

}  // namespace ottava::mesh::flow
