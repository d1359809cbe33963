// End-to-end test of adaptive limiting (issue 9) with the real `ottava` binary and a real CPU hog:
// busy threads in this process push the host's water level (read by the sidecar from /proc) over
// the threshold. Stress-test traffic must be shed first, then the resource whose load grew
// abnormally is capped, a steady resource keeps passing, and everything recovers once the hog
// stops. The test runs alone (RUN_SERIAL): another test's CPU would move the water level.

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "test/support/http_upstream.h"
#include "test/support/process.h"

namespace ottava::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// What one kind of traffic saw: answers by status, and when each status first and last came.
class Tally {
 public:
  void Add(int status, Clock::time_point at) {
    std::lock_guard lock(mu_);
    Entry& entry = by_status_[status];
    if (entry.count++ == 0) {
      entry.first = at;
    }
    entry.last = at;
  }
  int Count(int status) {
    std::lock_guard lock(mu_);
    auto it = by_status_.find(status);
    return it == by_status_.end() ? 0 : it->second.count;
  }
  std::optional<Clock::time_point> First(int status) {
    std::lock_guard lock(mu_);
    auto it = by_status_.find(status);
    return it == by_status_.end() ? std::nullopt : std::optional(it->second.first);
  }
  std::string Describe() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& [status, entry] : by_status_) {
      out += std::to_string(status) + ": " + std::to_string(entry.count) + " ";
    }
    return out;
  }
  void Reset() {
    std::lock_guard lock(mu_);
    by_status_.clear();
  }

 private:
  struct Entry {
    int count = 0;
    Clock::time_point first;
    Clock::time_point last;
  };
  std::mutex mu_;
  std::map<int, Entry> by_status_;
};

// Sends GET `path` in a loop on one keep-alive connection, `gap` apart, until `stop`.
std::thread Traffic(int port,
                    std::string path,
                    bool stress,
                    milliseconds gap,
                    const std::atomic<bool>& stop,
                    Tally& tally) {
  return std::thread([port, path = std::move(path), stress, gap, &stop, &tally] {
    httplib::Client client("127.0.0.1", port);
    client.set_keep_alive(true);
    client.set_read_timeout(10, 0);
    httplib::Headers headers;
    if (stress) {
      headers.emplace("x-stress-test", "1");
    }
    while (!stop.load()) {
      auto result = client.Get(path, headers);
      tally.Add(result ? result->status : -1, Clock::now());
      std::this_thread::sleep_for(gap);
    }
  });
}

// One busy thread per core, at the lowest priority: the host is 100% busy (nice time counts as
// busy in /proc/stat) while the sidecar and the clients still get the CPU they ask for.
class CpuHog {
 public:
  CpuHog() {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < cores; ++i) {
      threads_.emplace_back([this] {
        setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
        volatile uint64_t sink = 0;
        while (!stop_.load(std::memory_order_relaxed)) {
          sink = sink + 1;
        }
      });
    }
  }
  ~CpuHog() { Stop(); }
  void Stop() {
    stop_.store(true);
    for (auto& thread : threads_) {
      thread.join();
    }
    threads_.clear();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

json AdaptiveJson(httplib::Client& admin) {
  auto result = admin.Get("/actuator/flow-control");
  if (!result) {
    return json();
  }
  json view = json::parse(result->body, nullptr, false);
  return view.is_object() && view.contains("adaptive") ? view["adaptive"] : json();
}

// Polls the actuator until the adaptive phase is `phase` or `limit` passes.
bool WaitForPhase(httplib::Client& admin, const std::string& phase, milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (AdaptiveJson(admin).value("phase", "") == phase) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

TEST(FlowAdaptiveE2eTest, ACpuHogShedsStressThenTheAbnormalResourceAndItRecovers) {
  auto upstream = HttpUpstream::Start(HttpUpstream::Options{});
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  (*upstream)->SetDelay(milliseconds(40));
  json config = InMemoryConfig("flow-adaptive");
  config["mesh"] = FlowControlledMesh((*upstream)->address());
  config["flow_control"] = {{"rules", json::array()},
                            {"adaptive",
                             {{"threshold", 0.85},
                              {"trigger_seconds", 2},
                              {"stress_header", "x-stress-test"},
                              {"growth_factor", 2},
                              {"step", 0.25}}}};
  auto sidecar = Sidecar::Start(config);
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  std::ifstream in((*sidecar)->ready_file());
  const json ready = json::parse(in);
  const std::string address = ready["listeners"]["http"].get<std::string>();
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  httplib::Client admin((*sidecar)->actuator_address());

  // Calm: each resource at about 20 requests per second, so the limiter learns their averages.
  std::atomic<bool> stop{false};
  std::atomic<bool> stop_burst{false};
  Tally normal, stress, hot;
  std::vector<std::thread> threads;
  threads.push_back(Traffic(port, "/normal", false, milliseconds(10), stop, normal));
  threads.push_back(Traffic(port, "/stress", true, milliseconds(10), stop, stress));
  threads.push_back(Traffic(port, "/hot", false, milliseconds(10), stop, hot));
  std::this_thread::sleep_for(milliseconds(4000));
  const json calm = AdaptiveJson(admin);
  EXPECT_EQ(calm.value("phase", ""), "normal") << calm.dump();
  EXPECT_EQ(stress.Count(429) + hot.Count(429) + normal.Count(429), 0)
      << "the calm phase shed requests: " << calm.dump();

  // The hog, and /hot's load grows eightfold at the same time.
  const auto hog_start = Clock::now();
  auto hog = std::make_unique<CpuHog>();
  std::vector<std::thread> burst;
  for (int i = 0; i < 7; ++i) {
    burst.push_back(Traffic(port, "/hot", false, milliseconds(1), stop_burst, hot));
  }
  const bool shed = WaitForPhase(admin, "shed_stress", milliseconds(8000));
  const bool capped = WaitForPhase(admin, "baseline", milliseconds(4000));
  // Let the caps shrink for a few high seconds.
  std::this_thread::sleep_for(milliseconds(3000));
  const json during = AdaptiveJson(admin);
  std::cout << "during the hog: " << during.dump() << "\n";
  hog->Stop();
  const auto hog_end = Clock::now();
  stop_burst.store(true);
  for (auto& thread : burst) {
    thread.join();
  }
  EXPECT_TRUE(shed) << "the water level never triggered: " << AdaptiveJson(admin).dump();
  EXPECT_TRUE(capped) << AdaptiveJson(admin).dump();
  EXPECT_TRUE(during["caps"].contains("/hot")) << during.dump();
  EXPECT_FALSE(during["caps"].contains("/normal")) << during.dump();

  // Stress traffic was shed first, then /hot; /normal always passed.
  ASSERT_TRUE(stress.First(429).has_value()) << stress.Describe();
  ASSERT_TRUE(hot.First(429).has_value()) << hot.Describe();
  EXPECT_LT(*stress.First(429), *hot.First(429));
  EXPECT_GT(*stress.First(429), hog_start);
  EXPECT_EQ(normal.Count(429), 0) << normal.Describe();
  EXPECT_EQ(normal.Count(-1) + stress.Count(-1) + hot.Count(-1), 0);
  std::cout << "normal " << normal.Describe() << "| stress " << stress.Describe() << "| hot "
            << hot.Describe() << "| hog "
            << std::chrono::duration<double>(hog_end - hog_start).count() << " s\n";

  // Recovery: the caps grow back and lift; then every kind of traffic passes again.
  EXPECT_TRUE(WaitForPhase(admin, "normal", milliseconds(15000))) << AdaptiveJson(admin).dump();
  normal.Reset();
  stress.Reset();
  hot.Reset();
  std::this_thread::sleep_for(milliseconds(1500));
  stop.store(true);
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_GT(stress.Count(200), 0);
  EXPECT_EQ(stress.Count(429) + hot.Count(429) + normal.Count(429), 0)
      << "after recovery: normal " << normal.Describe() << "| stress " << stress.Describe()
      << "| hot " << hot.Describe();

  httplib::Client metrics_client((*sidecar)->actuator_address());
  auto metrics = metrics_client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_GT(
      MetricSample(metrics->body, "ottava_flow_control_adaptive_blocks_total{reason=\"stress\"}")
          .value_or(0),
      0);
  EXPECT_GT(
      MetricSample(metrics->body, "ottava_flow_control_adaptive_blocks_total{reason=\"baseline\"}")
          .value_or(0),
      0);
  EXPECT_EQ((*sidecar)->Stop(SIGTERM), 0) << (*sidecar)->Stderr();
}

}  // namespace
}  // namespace ottava::test
