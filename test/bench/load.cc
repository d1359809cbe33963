// bench_load: a closed-loop gRPC load generator for GetState / SaveState (and the other Layotto
// calls below), used by `make bench` to drive Ottava and bench_echo_server the same way.
//
//   bench_load --target HOST:PORT [--method get|save|lock|nextid|publish|invoke]
//              [--value-bytes 64] [--connections 1] [--streams 1] [--duration 5] [--warmup 1]
//              [--key bench-key] [--store state] [--deadline-ms 10000]
//              [--invoke-id bench-up] [--invoke-method echo] [--invoke-verb NONE|GET|POST|...]
//              [--api layotto|dapr]
//
// `--api dapr` sends get and save as dapr.proto.runtime.v1.Dapr/GetState and SaveState (same
// store, key and value) instead of Layotto's Runtime methods; the other methods are Layotto's only.
//
// `invoke` sends InvokeService{id: --invoke-id, message: {method: --invoke-method, data: Any whose
// value is --value-bytes bytes (absent when 0), content_type text/plain when there is data,
// http_extension.verb: --invoke-verb}}; any OK answer counts (the body is the upstream's).
//
// It opens --connections channels, each its own TCP connection, and keeps --streams requests
// outstanding on each with the callback client API: every completion records its latency and
// issues the next request from the completion callback. Only completions inside the measured
// window (after --warmup) count toward throughput and latency; non-OK statuses are counted in
// every phase. A GetState answer whose data is not --value-bytes long counts as a bad response.
//
// Output: one JSON object on stdout (requests, all_requests (OK answers in every phase, warmup
// included: what a server's CPU time over the whole run is divided by), errors, errors_by_code,
// bad_responses, throughput in
// requests per second, p50_us/p90_us/p99_us/mean_us/max_us). Exit 0 when the run completed (even
// with errors: the caller reads the counts), 2 on bad flags, 1 when the target cannot be reached or
// the key cannot be pre-saved.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "dapr/proto/runtime/v1/dapr.grpc.pb.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/bench/bench_util.h"

namespace ottava::bench {
namespace {

namespace v1 = spec::proto::runtime::v1;
namespace dv1 = dapr::proto::runtime::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string target;
  std::string method = "get";  // get | save | lock | nextid | publish | invoke
  bool save = false;
  int64_t value_bytes = 64;
  int64_t connections = 1;
  int64_t streams = 1;
  double duration_s = 5;
  double warmup_s = 1;
  std::string key = "bench-key";
  std::string store = "state";
  int64_t deadline_ms = 10000;
  std::string invoke_id = "bench-up";
  std::string invoke_method = "echo";
  v1::HTTPExtension::Verb invoke_verb = v1::HTTPExtension::NONE;
  bool dapr = false;  // --api dapr
};

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  auto flags = Flags::Parse(argc, argv);
  if (!flags.ok()) {
    return flags.status();
  }
  Options options;
  options.target = flags->String("target", "");
  if (options.target.empty()) {
    return absl::InvalidArgumentError("--target HOST:PORT is required");
  }
  const std::string method = flags->String("method", "get");
  if (method != "get" && method != "save" && method != "lock" && method != "nextid" &&
      method != "publish" && method != "invoke") {
    return absl::InvalidArgumentError(
        "--method must be get, save, lock, nextid, publish or invoke, not '" + method + "'");
  }
  options.method = method;
  options.save = method == "save";
  options.key = flags->String("key", options.key);
  options.store = flags->String("store", options.store);
  options.invoke_id = flags->String("invoke-id", options.invoke_id);
  options.invoke_method = flags->String("invoke-method", options.invoke_method);
  const std::string api = flags->String("api", "layotto");
  if (api != "layotto" && api != "dapr") {
    return absl::InvalidArgumentError("--api must be layotto or dapr, not '" + api + "'");
  }
  options.dapr = api == "dapr";
  if (options.dapr && method != "get" && method != "save") {
    return absl::InvalidArgumentError("--api dapr takes --method get or save");
  }
  const std::string verb = flags->String("invoke-verb", "NONE");
  if (!v1::HTTPExtension::Verb_Parse(verb, &options.invoke_verb)) {
    return absl::InvalidArgumentError(
        "--invoke-verb must be an HTTPExtension.Verb name (NONE, GET, "
        "POST, ...), not '" +
        verb + "'");
  }
  const auto value_bytes = flags->Int("value-bytes", 64, 0, 4 << 20);
  const auto connections = flags->Int("connections", 1, 1, 1024);
  const auto streams = flags->Int("streams", 1, 1, 100000);
  const auto duration = flags->Double("duration", 5, 0.1, 3600);
  const auto warmup = flags->Double("warmup", 1, 0, 3600);
  const auto deadline = flags->Int("deadline-ms", 10000, 1, 3600 * 1000);
  for (const absl::Status& status :
       {value_bytes.status(), connections.status(), streams.status(), duration.status(),
        warmup.status(), deadline.status(), flags->CheckAllRead()}) {
    if (!status.ok()) {
      return status;
    }
  }
  options.value_bytes = *value_bytes;
  options.connections = *connections;
  options.streams = *streams;
  options.duration_s = *duration;
  options.warmup_s = *warmup;
  options.deadline_ms = *deadline;
  return options;
}

enum class Phase { kWarmup, kMeasure, kStop };

// What every slot shares: the phase switch and the count of slots still running.
struct Shared {
  std::atomic<Phase> phase{Phase::kWarmup};
  std::mutex mutex;
  std::condition_variable all_stopped;
  int64_t running = 0;  // guarded by mutex
};

// One outstanding request, re-issued from its own completion callback until the run stops. A
// slot's calls are strictly sequential, so its statistics need no lock; the main thread reads them
// only after every slot has stopped (ordered by Shared::mutex).
class Slot {
 public:
  Slot(v1::Runtime::Stub& stub,
       dv1::Dapr::Stub& dapr_stub,
       const Options& options,
       const v1::GetStateRequest& get_request,
       const v1::SaveStateRequest& save_request,
       Shared& shared,
       int64_t index)
      : stub_(stub),
        dapr_stub_(dapr_stub),
        options_(options),
        get_request_(get_request),
        save_request_(save_request),
        shared_(shared) {
    // Each slot locks its own resource, so every TryLock succeeds and is followed by an Unlock.
    const std::string resource = options.key + "-" + std::to_string(index);
    try_lock_.set_store_name("lock");
    try_lock_.set_resource_id(resource);
    try_lock_.set_lock_owner("bench-" + std::to_string(index));
    try_lock_.set_expire(30);
    unlock_.set_store_name("lock");
    unlock_.set_resource_id(resource);
    unlock_.set_lock_owner(try_lock_.lock_owner());
    next_id_.set_store_name("sequencer");
    next_id_.set_key(options.key);
    publish_.set_pubsub_name("pubsub");
    publish_.set_topic(options.key);
    publish_.set_data(std::string(static_cast<size_t>(options.value_bytes), 'p'));
    invoke_.set_id(options.invoke_id);
    v1::CommonInvokeRequest* message = invoke_.mutable_message();
    message->set_method(options.invoke_method);
    if (options.value_bytes > 0) {
      message->mutable_data()->set_value(
          std::string(static_cast<size_t>(options.value_bytes), 'i'));
      message->set_content_type("text/plain");
    }
    message->mutable_http_extension()->set_verb(options.invoke_verb);
    dapr_get_.set_store_name(options.store);
    dapr_get_.set_key(options.key);
    dapr_save_.set_store_name(options.store);
    auto* item = dapr_save_.add_states();
    item->set_key(options.key);
    item->set_value(save_request.states(0).value());
  }

  void Issue() {
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(options_.deadline_ms));
    start_ = Clock::now();
    if (options_.method == "lock") {
      stub_.async()->TryLock(context_.get(), &try_lock_, &try_lock_response_,
                             [this](grpc::Status status) { OnLocked(status); });
    } else if (options_.method == "nextid") {
      stub_.async()->GetNextId(context_.get(), &next_id_, &next_id_response_,
                               [this](grpc::Status status) { OnDone(status); });
    } else if (options_.method == "invoke") {
      invoke_response_.Clear();
      stub_.async()->InvokeService(context_.get(), &invoke_, &invoke_response_,
                                   [this](grpc::Status status) { OnDone(status); });
    } else if (options_.method == "publish") {
      stub_.async()->PublishEvent(context_.get(), &publish_, &save_response_,
                                  [this](grpc::Status status) { OnDone(status); });
    } else if (options_.dapr && options_.save) {
      dapr_stub_.async()->SaveState(context_.get(), &dapr_save_, &save_response_,
                                    [this](grpc::Status status) { OnDone(status); });
    } else if (options_.dapr) {
      dapr_get_response_.Clear();
      dapr_stub_.async()->GetState(context_.get(), &dapr_get_, &dapr_get_response_,
                                   [this](grpc::Status status) { OnDone(status); });
    } else if (options_.save) {
      stub_.async()->SaveState(context_.get(), &save_request_, &save_response_,
                               [this](grpc::Status status) { OnDone(status); });
    } else {
      get_response_.Clear();
      stub_.async()->GetState(context_.get(), &get_request_, &get_response_,
                              [this](grpc::Status status) { OnDone(status); });
    }
  }

  const std::vector<int64_t>& latencies_ns() const { return latencies_ns_; }
  const std::map<grpc::StatusCode, int64_t>& errors() const { return errors_; }
  int64_t bad_responses() const { return bad_responses_; }
  int64_t all_ok() const { return all_ok_; }

 private:
  // A lock round is TryLock then Unlock; it counts once, when the Unlock answers.
  void OnLocked(const grpc::Status& status) {
    if (!status.ok() || !try_lock_response_.success()) {
      OnDone(status.ok() ? grpc::Status(grpc::StatusCode::ABORTED, "lock not acquired") : status);
      return;
    }
    unlock_context_ = std::make_unique<grpc::ClientContext>();
    unlock_context_->set_deadline(std::chrono::system_clock::now() +
                                  std::chrono::milliseconds(options_.deadline_ms));
    stub_.async()->Unlock(
        unlock_context_.get(), &unlock_, &unlock_response_, [this](grpc::Status unlocked) {
          if (unlocked.ok() && unlock_response_.status() != v1::UnlockResponse::SUCCESS) {
            unlocked = grpc::Status(grpc::StatusCode::ABORTED, "unlock refused");
          }
          OnDone(unlocked);
        });
  }

  void OnDone(const grpc::Status& status) {
    const Clock::time_point end = Clock::now();
    const Phase phase = shared_.phase.load(std::memory_order_acquire);
    if (!status.ok()) {
      ++errors_[status.error_code()];
    } else if (options_.method == "get" &&
               (options_.dapr ? dapr_get_response_.data() : get_response_.data()).size() !=
                   static_cast<size_t>(options_.value_bytes)) {
      ++bad_responses_;
    } else {
      ++all_ok_;
      if (phase == Phase::kMeasure) {
        latencies_ns_.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end - start_).count());
      }
    }
    if (phase != Phase::kStop) {
      Issue();
      return;
    }
    std::lock_guard<std::mutex> lock(shared_.mutex);
    if (--shared_.running == 0) {
      shared_.all_stopped.notify_all();
    }
  }

  v1::Runtime::Stub& stub_;
  dv1::Dapr::Stub& dapr_stub_;
  const Options& options_;
  const v1::GetStateRequest& get_request_;
  const v1::SaveStateRequest& save_request_;
  Shared& shared_;

  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientContext> unlock_context_;
  v1::TryLockRequest try_lock_;
  v1::TryLockResponse try_lock_response_;
  v1::UnlockRequest unlock_;
  v1::UnlockResponse unlock_response_;
  v1::GetNextIdRequest next_id_;
  v1::GetNextIdResponse next_id_response_;
  v1::PublishEventRequest publish_;
  v1::InvokeServiceRequest invoke_;
  v1::InvokeResponse invoke_response_;
  v1::GetStateResponse get_response_;
  google::protobuf::Empty save_response_;
  dv1::GetStateRequest dapr_get_;
  dv1::SaveStateRequest dapr_save_;
  dv1::GetStateResponse dapr_get_response_;
  Clock::time_point start_;
  std::vector<int64_t> latencies_ns_;
  std::map<grpc::StatusCode, int64_t> errors_;
  int64_t bad_responses_ = 0;
  int64_t all_ok_ = 0;
};

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "CODE_UNKNOWN";
  }
}

// The value at quantile q of sorted samples, in microseconds (nearest rank).
double PercentileUs(const std::vector<int64_t>& sorted_ns, double q) {
  if (sorted_ns.empty()) {
    return 0;
  }
  const auto rank = static_cast<size_t>(q * static_cast<double>(sorted_ns.size() - 1) + 0.5);
  return static_cast<double>(sorted_ns[std::min(rank, sorted_ns.size() - 1)]) / 1000.0;
}

int Run(int argc, char** argv) {
  const absl::StatusOr<Options> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "bench_load: %s\n", parsed.status().ToString().c_str());
    return 2;
  }
  const Options& options = *parsed;
  const std::string value(static_cast<size_t>(options.value_bytes), 'v');

  // Distinct channel args keep gRPC from sharing one subchannel (one TCP connection) between
  // channels to the same target.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Runtime::Stub>> stubs;
  std::vector<std::unique_ptr<dv1::Dapr::Stub>> dapr_stubs;
  for (int64_t i = 0; i < options.connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("ottava.bench.channel_index", static_cast<int>(i));
    channels.push_back(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(10))) {
      std::fprintf(stderr, "bench_load: cannot connect to %s\n", options.target.c_str());
      return 1;
    }
    stubs.push_back(v1::Runtime::NewStub(channels.back()));
    dapr_stubs.push_back(dv1::Dapr::NewStub(channels.back()));
  }

  v1::SaveStateRequest save_request;
  save_request.set_store_name(options.store);
  v1::StateItem* item = save_request.add_states();
  item->set_key(options.key);
  item->set_value(value);
  v1::GetStateRequest get_request;
  get_request.set_store_name(options.store);
  get_request.set_key(options.key);

  if (options.method == "get") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    google::protobuf::Empty empty;
    const grpc::Status saved = stubs.front()->SaveState(&context, save_request, &empty);
    if (!saved.ok()) {
      std::fprintf(stderr, "bench_load: pre-saving key '%s' failed: %s %s\n", options.key.c_str(),
                   CodeName(saved.error_code()), saved.error_message().c_str());
      return 1;
    }
  }

  Shared shared;
  std::vector<std::unique_ptr<Slot>> slots;
  for (int64_t c = 0; c < options.connections; ++c) {
    for (int64_t s = 0; s < options.streams; ++s) {
      slots.push_back(std::make_unique<Slot>(
          *stubs[static_cast<size_t>(c)], *dapr_stubs[static_cast<size_t>(c)], options, get_request,
          save_request, shared, c * options.streams + s));
    }
  }
  shared.running = static_cast<int64_t>(slots.size());
  for (auto& slot : slots) {
    slot->Issue();
  }

  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup_s));
  const Clock::time_point measure_start = Clock::now();
  shared.phase.store(Phase::kMeasure, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(options.duration_s));
  shared.phase.store(Phase::kStop, std::memory_order_release);
  const Clock::time_point measure_end = Clock::now();

  {
    std::unique_lock<std::mutex> lock(shared.mutex);
    const auto drain = std::chrono::milliseconds(options.deadline_ms) + std::chrono::seconds(5);
    if (!shared.all_stopped.wait_for(lock, drain, [&] { return shared.running == 0; })) {
      // Slots still own in-flight calls whose callbacks would touch freed memory: leave at once.
      std::fprintf(stderr, "bench_load: %lld requests never completed\n",
                   static_cast<long long>(shared.running));
      std::fflush(stderr);
      std::_Exit(1);
    }
  }

  std::vector<int64_t> latencies;
  std::map<grpc::StatusCode, int64_t> errors;
  int64_t error_count = 0;
  int64_t bad_responses = 0;
  int64_t all_requests = 0;
  for (const auto& slot : slots) {
    all_requests += slot->all_ok();
    latencies.insert(latencies.end(), slot->latencies_ns().begin(), slot->latencies_ns().end());
    for (const auto& [code, count] : slot->errors()) {
      errors[code] += count;
      error_count += count;
    }
    bad_responses += slot->bad_responses();
  }
  std::sort(latencies.begin(), latencies.end());
  const double seconds = std::chrono::duration<double>(measure_end - measure_start).count();
  double sum_ns = 0;
  for (const int64_t ns : latencies) {
    sum_ns += static_cast<double>(ns);
  }

  nlohmann::ordered_json by_code = nlohmann::ordered_json::object();
  for (const auto& [code, count] : errors) {
    by_code[CodeName(code)] = count;
  }
  nlohmann::ordered_json out;
  out["target"] = options.target;
  out["method"] = options.method;
  out["value_bytes"] = options.value_bytes;
  out["connections"] = options.connections;
  out["streams"] = options.streams;
  out["duration_s"] = seconds;
  out["api"] = options.dapr ? "dapr" : "layotto";
  out["requests"] = latencies.size();
  out["all_requests"] = all_requests;
  out["errors"] = error_count;
  out["errors_by_code"] = by_code;
  out["bad_responses"] = bad_responses;
  out["throughput"] = static_cast<double>(latencies.size()) / seconds;
  out["p50_us"] = PercentileUs(latencies, 0.50);
  out["p90_us"] = PercentileUs(latencies, 0.90);
  out["p99_us"] = PercentileUs(latencies, 0.99);
  out["mean_us"] = latencies.empty() ? 0.0 : sum_ns / static_cast<double>(latencies.size()) / 1000;
  out["max_us"] = PercentileUs(latencies, 1.0);
  std::printf("%s\n", out.dump().c_str());

  // Release the slots before the stubs and channels they reference.
  slots.clear();
  return 0;
}

}  // namespace
}  // namespace ottava::bench

int main(int argc, char** argv) {
  return ottava::bench::Run(argc, argv);
}
