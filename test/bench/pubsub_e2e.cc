// bench_pubsub_e2e: delivered events per second and end-to-end latency, Publish to app.
//
// One process plays both ends of a pub/sub round trip through a sidecar, so one clock times it:
//   - the app: an AppCallback server (callback API) on --app-port that answers every
//     OnTopicEvent SUCCESS and records when each event arrived (the sidecar's config holds the
//     subscription, with the concurrency under test; ListTopicSubscriptions answers none);
//   - the publishers: --streams threads, each publishing in a closed loop to the sidecar whose
//     ready file is --sidecar-ready. Each event's data carries its sequence number and send time.
//
// Phases: wait for the sidecar's ready file; publish a probe every 200 ms until one reaches the app
// (the subscription is live, e.g. the consumer group has its partitions); --warmup seconds of
// load; --duration seconds measured; then stop publishing and wait (≤ --drain seconds) until
// every event published in the measured window has arrived.
//
//   bench_pubsub_e2e --app-port P --sidecar-ready FILE [--pubsub pubsub] [--topic T]
//                    [--streams 16] [--value-bytes 64] [--duration 2] [--warmup 0.5]
//                    [--drain 30] [--probe-timeout 60]
//
// Output: one JSON object: published (OK Publish answers in the window), delivered_per_s (events
// that arrived in the window ÷ its length), e2e_p50_us / e2e_p99_us (arrival − send, events sent
// in the window), publish_p50_us, errors (failed Publish calls, whole run), missing (events
// acknowledged in the window that never arrived), duplicates (arrivals beyond the first).
// Exit 1 when the probe never arrives or a setup step fails.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "spec/proto/runtime/v1/appcallback.grpc.pb.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/bench/bench_util.h"

namespace ottava::bench {
namespace {

namespace v1 = spec::proto::runtime::v1;
using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Data of one event: "<seq> <send ns> " padded with 'x' to the payload size. Probes use seq -1.
std::string EventData(int64_t seq, int64_t sent_ns, size_t bytes) {
  std::string data = std::to_string(seq) + " " + std::to_string(sent_ns) + " ";
  if (data.size() < bytes) {
    data.append(bytes - data.size(), 'x');
  }
  return data;
}

bool ParseEvent(const std::string& data, int64_t* seq, int64_t* sent_ns) {
  std::istringstream in(data);
  return static_cast<bool>(in >> *seq >> *sent_ns);
}

// What the app saw.
class App final : public v1::AppCallback::CallbackService {
 public:
  grpc::ServerUnaryReactor* ListTopicSubscriptions(
      grpc::CallbackServerContext* context,
      const google::protobuf::Empty* /*request*/,
      v1::ListTopicSubscriptionsResponse* /*response*/) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* OnTopicEvent(grpc::CallbackServerContext* context,
                                         const v1::TopicEventRequest* request,
                                         v1::TopicEventResponse* response) override {
    const int64_t now = NowNs();
    int64_t seq = 0;
    int64_t sent = 0;
    if (ParseEvent(request->data(), &seq, &sent)) {
      absl::MutexLock lock(&mu_);
      if (seq < 0) {
        probe_arrived_ = true;
      } else {
        arrivals_.push_back({seq, sent, now});
      }
    }
    response->set_status(v1::TopicEventResponse::SUCCESS);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  struct Arrival {
    int64_t seq;
    int64_t sent_ns;
    int64_t arrived_ns;
  };
  bool probe_arrived() {
    absl::MutexLock lock(&mu_);
    return probe_arrived_;
  }
  std::vector<Arrival> arrivals() {
    absl::MutexLock lock(&mu_);
    return arrivals_;
  }

 private:
  absl::Mutex mu_;
  bool probe_arrived_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Arrival> arrivals_ ABSL_GUARDED_BY(mu_);
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return values[index];
}

// The "grpc" address in a ready file, once the file exists (bounded wait).
std::string SidecarAddress(const std::string& ready_file, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    std::ifstream in(ready_file);
    std::stringstream content;
    content << in.rdbuf();
    const std::string text = content.str();
    const std::string key = "\"grpc\":\"";
    const size_t at = text.find(key);
    if (at != std::string::npos) {
      const size_t end = text.find('"', at + key.size());
      if (end != std::string::npos) {
        return text.substr(at + key.size(), end - at - key.size());
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return "";
}

int Run(int argc, char** argv) {
  auto flags = Flags::Parse(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_pubsub_e2e: %s\n", flags.status().ToString().c_str());
    return 2;
  }
  const auto app_port = flags->Int("app-port", 0, 1, 65535);
  const std::string ready_file = flags->String("sidecar-ready", "");
  const std::string pubsub = flags->String("pubsub", "pubsub");
  const std::string topic = flags->String("topic", "bench-e2e");
  const auto streams = flags->Int("streams", 16, 1, 1024);
  const auto value_bytes = flags->Int("value-bytes", 64, 0, 1 << 20);
  const auto duration = flags->Double("duration", 2, 0.1, 3600);
  const auto warmup = flags->Double("warmup", 0.5, 0, 3600);
  const auto drain = flags->Double("drain", 30, 0, 3600);
  const auto probe_timeout = flags->Int("probe-timeout", 60, 1, 3600);
  for (const absl::Status& status :
       {app_port.status(), streams.status(), value_bytes.status(), duration.status(),
        warmup.status(), drain.status(), probe_timeout.status(), flags->CheckAllRead()}) {
    if (!status.ok()) {
      std::fprintf(stderr, "bench_pubsub_e2e: %s\n", status.ToString().c_str());
      return 2;
    }
  }
  if (ready_file.empty()) {
    std::fprintf(stderr, "bench_pubsub_e2e: --sidecar-ready is required\n");
    return 2;
  }

  App app;
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(*app_port),
                           grpc::InsecureServerCredentials(), &bound);
  builder.RegisterService(&app);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound == 0) {
    std::fprintf(stderr, "bench_pubsub_e2e: cannot listen on port %ld\n",
                 static_cast<long>(*app_port));
    return 1;
  }

  const std::string address = SidecarAddress(ready_file, std::chrono::seconds(*probe_timeout));
  if (address.empty()) {
    std::fprintf(stderr, "bench_pubsub_e2e: no sidecar address in %s\n", ready_file.c_str());
    return 1;
  }
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto publish = [&](v1::Runtime::Stub& stub, const std::string& data) {
    v1::PublishEventRequest request;
    request.set_pubsub_name(pubsub);
    request.set_topic(topic);
    request.set_data(data);
    request.set_data_content_type("text/plain");
    google::protobuf::Empty empty;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub.PublishEvent(&context, request, &empty);
  };

  // The subscription is live once a probe reaches the app.
  {
    auto stub = v1::Runtime::NewStub(channel);
    const auto deadline = Clock::now() + std::chrono::seconds(*probe_timeout);
    while (!app.probe_arrived()) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "bench_pubsub_e2e: no probe reached the app within %lds\n",
                     static_cast<long>(*probe_timeout));
        server->Shutdown();
        return 1;
      }
      publish(*stub, EventData(-1, NowNs(), 16));
      for (int i = 0; i < 20 && !app.probe_arrived(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }

  const auto to_ns = [](double seconds) { return static_cast<int64_t>(seconds * 1e9); };
  const int64_t start_ns = NowNs();
  const int64_t window_begin = start_ns + to_ns(*warmup);
  const int64_t window_end = window_begin + to_ns(*duration);
  std::atomic<int64_t> next_seq{0};
  std::atomic<int64_t> errors{0};
  struct Sent {
    int64_t seq;
    int64_t sent_ns;
    double publish_us;
  };
  std::vector<std::vector<Sent>> sent(static_cast<size_t>(*streams));
  std::vector<std::thread> publishers;
  for (int64_t s = 0; s < *streams; ++s) {
    publishers.emplace_back([&, s] {
      auto stub = v1::Runtime::NewStub(channel);
      while (true) {
        const int64_t now = NowNs();
        if (now >= window_end) {
          return;
        }
        const int64_t seq = next_seq.fetch_add(1);
        grpc::Status status =
            publish(*stub, EventData(seq, now, static_cast<size_t>(*value_bytes)));
        const int64_t done = NowNs();
        if (!status.ok()) {
          ++errors;
          continue;
        }
        if (now >= window_begin) {
          sent[static_cast<size_t>(s)].push_back({seq, now, (done - now) / 1e3});
        }
      }
    });
  }
  for (auto& thread : publishers) {
    thread.join();
  }

  std::vector<Sent> window;
  for (auto& list : sent) {
    window.insert(window.end(), list.begin(), list.end());
  }
  std::vector<bool> wanted(static_cast<size_t>(next_seq.load()), false);
  for (const Sent& s : window) {
    wanted[static_cast<size_t>(s.seq)] = true;
  }
  // Wait until every acknowledged event of the window arrived (bounded).
  const auto drain_deadline = Clock::now() + std::chrono::milliseconds(to_ns(*drain) / 1000000);
  int64_t missing = 0;
  int64_t duplicates = 0;
  std::vector<App::Arrival> arrivals;
  while (true) {
    arrivals = app.arrivals();
    std::vector<int> seen(wanted.size(), 0);
    for (const App::Arrival& a : arrivals) {
      if (a.seq >= 0 && static_cast<size_t>(a.seq) < seen.size()) {
        ++seen[static_cast<size_t>(a.seq)];
      }
    }
    missing = 0;
    duplicates = 0;
    for (size_t i = 0; i < wanted.size(); ++i) {
      missing += wanted[i] && seen[i] == 0 ? 1 : 0;
      duplicates += seen[i] > 1 ? seen[i] - 1 : 0;
    }
    if (missing == 0 || Clock::now() > drain_deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  int64_t delivered_in_window = 0;
  std::vector<double> e2e;
  for (const App::Arrival& a : arrivals) {
    if (a.arrived_ns >= window_begin && a.arrived_ns < window_end) {
      ++delivered_in_window;
    }
    if (a.sent_ns >= window_begin && a.sent_ns < window_end) {
      e2e.push_back((a.arrived_ns - a.sent_ns) / 1e3);
    }
  }
  std::vector<double> publish_us;
  publish_us.reserve(window.size());
  for (const Sent& s : window) {
    publish_us.push_back(s.publish_us);
  }
  std::printf(
      "{\"pubsub\":\"%s\",\"topic\":\"%s\",\"streams\":%ld,\"duration_s\":%.3f,"
      "\"published\":%zu,\"delivered_per_s\":%.1f,\"e2e_p50_us\":%.1f,\"e2e_p99_us\":%.1f,"
      "\"publish_p50_us\":%.1f,\"errors\":%ld,\"missing\":%ld,\"duplicates\":%ld}\n",
      pubsub.c_str(), topic.c_str(), static_cast<long>(*streams), *duration, window.size(),
      delivered_in_window / *duration, Percentile(e2e, 0.5), Percentile(e2e, 0.99),
      Percentile(publish_us, 0.5), static_cast<long>(errors.load()), static_cast<long>(missing),
      static_cast<long>(duplicates));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}

}  // namespace
}  // namespace ottava::bench

int main(int argc, char** argv) {
  return ottava::bench::Run(argc, argv);
}
