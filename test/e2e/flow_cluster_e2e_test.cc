// Cluster flow control end to end (issue 9): three real `ottava` processes share one real
// redis-server and one limit of 300 requests per second on the resource "/shared", under uneven
// load (250, 150 and 100 requests per second offered to the three sidecars). Sync mode admits at
// most 300 in every window; async mode admits 300 per second ± 5 % over the run; Redis killed
// mid-run makes the rule fall back to its local limit while the sidecars keep serving, the health
// shows it, and everything recovers when Redis is back.
//
// Windows are wall-clock seconds (the sidecars share this host's clock). A request is counted in
// the window of its send time; the load skips 10 ms around each boundary, so no request's
// decision can fall into the neighbouring window (requests that still straddle one are reported).

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "test/support/http_upstream.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"

namespace ottava::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::system_clock;

constexpr int kLimit = 300;
constexpr int kOffered[3] = {250, 150, 100};

int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(Clock::now().time_since_epoch()).count();
}

json Config(const std::string& upstream, const std::string& redis, const json& rule) {
  json config = InMemoryConfig("cluster-e2e");
  config["mesh"] = FlowControlledMesh(upstream);
  config["flow_control"] = {
      {"cluster", {{"redis", {{"redisHost", redis}}}, {"key_prefix", "e2e:"}}}, {"rules", {rule}}};
  return config;
}

json ClusterRule(const std::string& mode) {
  return {{"id", "shared"}, {"resource", "/shared"}, {"kind", "cluster"},    {"threshold", kLimit},
          {"mode", mode},   {"fallback", "local"},   {"local_threshold", 40}};
}

// Per sidecar and wall-clock second: admitted, limited, failed; plus requests whose answer came
// in a later window than their send time.
struct Tally {
  std::mutex mu;
  std::map<int64_t, std::array<std::array<int, 3>, 3>> by_second;
  std::atomic<int> straddling{0};
  std::atomic<int> straddling_admitted{0};

  void Add(int sidecar, int64_t second, int status) {
    std::lock_guard<std::mutex> lock(mu);
    auto& cell = by_second[second][static_cast<size_t>(sidecar)];
    cell[status == 200 ? 0 : status == 429 ? 1 : 2]++;
  }
  int Admitted(int64_t second) {
    std::lock_guard<std::mutex> lock(mu);
    int sum = 0;
    for (const auto& cell : by_second[second]) {
      sum += cell[0];
    }
    return sum;
  }
  int Admitted(int64_t second, int sidecar) {
    std::lock_guard<std::mutex> lock(mu);
    return by_second[second][static_cast<size_t>(sidecar)][0];
  }
  int Failed() {
    std::lock_guard<std::mutex> lock(mu);
    int sum = 0;
    for (const auto& [second, cells] : by_second) {
      for (const auto& cell : cells) {
        sum += cell[2];
      }
    }
    return sum;
  }
};

class FlowClusterE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RedisServer::Options options;
    options.append_only = false;
    auto redis = RedisServer::Start(options);
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    auto upstream = HttpUpstream::Start(HttpUpstream::Options{});
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = std::move(*upstream);
  }

  void StartSidecars(const json& rule) {
    for (int i = 0; i < 3; ++i) {
      auto sidecar = Sidecar::Start(Config(upstream_->address(), redis_->address(), rule));
      ASSERT_TRUE(sidecar.ok()) << sidecar.status();
      std::ifstream in((*sidecar)->ready_file());
      const std::string address = json::parse(in)["listeners"]["http"].get<std::string>();
      ports_.push_back(std::stoi(address.substr(address.rfind(':') + 1)));
      sidecars_.push_back(std::move(*sidecar));
    }
  }

  void TearDown() override {
    for (auto& sidecar : sidecars_) {
      EXPECT_EQ(sidecar->Stop(SIGTERM), 0) << sidecar->Stderr();
    }
  }

  // Offers kOffered[i] requests per second to sidecar i from `first_second` (a wall-clock second)
  // for `seconds` seconds; `midway` runs once `midway_after` seconds have passed.
  void Load(int64_t first_second,
            int seconds,
            Tally& tally,
            const std::function<void()>& midway = nullptr,
            int midway_after = 0) {
    constexpr int kPerThread = 50;  // requests per second per client thread
    std::vector<std::thread> threads;
    for (int sidecar = 0; sidecar < 3; ++sidecar) {
      const int count = kOffered[sidecar] / kPerThread;
      for (int t = 0; t < count; ++t) {
        threads.emplace_back([&, sidecar, t, count] {
          httplib::Client client("127.0.0.1", ports_[static_cast<size_t>(sidecar)]);
          client.set_keep_alive(true);
          client.set_read_timeout(5, 0);
          // Evenly spread over [10 ms, 990 ms) of each second, the threads interleaved.
          const int64_t step_us = 980'000 / kPerThread;
          const int64_t offset_us = 10'000 + step_us * t / count;
          for (int64_t i = 0; i < int64_t{kPerThread} * seconds; ++i) {
            const int64_t second = first_second + i / kPerThread;
            const int64_t due_us = second * 1'000'000 + offset_us + (i % kPerThread) * step_us;
            std::this_thread::sleep_until(Clock::time_point(std::chrono::microseconds(due_us)));
            const int64_t sent = NowMs();
            if (sent % 1000 < 10 || sent % 1000 > 990) {
              continue;  // late: too near a boundary to say which window decided it
            }
            auto result = client.Get("/shared");
            const int status = result ? result->status : -1;
            if (NowMs() / 1000 != sent / 1000) {
              tally.straddling++;
              if (status == 200) {
                tally.straddling_admitted++;
              }
            }
            tally.Add(sidecar, sent / 1000, status);
          }
        });
      }
    }
    if (midway) {
      std::this_thread::sleep_until(
          Clock::time_point(std::chrono::seconds(first_second + midway_after)));
      midway();
    }
    for (auto& thread : threads) {
      thread.join();
    }
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<HttpUpstream> upstream_;
  std::vector<std::unique_ptr<Sidecar>> sidecars_;
  std::vector<int> ports_;
};

constexpr int kSeconds = 10;

TEST_F(FlowClusterE2eTest, SyncAdmitsAtMostTheSharedLimitInEveryWindow) {
  StartSidecars(ClusterRule("sync"));
  const int64_t first = NowMs() / 1000 + 1;
  Tally tally;
  Load(first, kSeconds, tally);
  EXPECT_EQ(tally.Failed(), 0);
  int total = 0;
  for (int64_t second = first; second < first + kSeconds; ++second) {
    const int admitted = tally.Admitted(second);
    total += admitted;
    std::cout << "sync second " << second - first << ": " << admitted << " admitted ("
              << tally.Admitted(second, 0) << "/" << tally.Admitted(second, 1) << "/"
              << tally.Admitted(second, 2) << ")\n";
    EXPECT_LE(admitted, kLimit + tally.straddling_admitted.load()) << "second " << second;
    EXPECT_GE(admitted, kLimit * 95 / 100) << "second " << second << ": the limit is used";
  }
  std::cout << "sync: " << total << " admitted in " << kSeconds << " s, " << tally.straddling.load()
            << " requests straddled a boundary\n";
  EXPECT_EQ(tally.straddling_admitted.load(), 0);
  // One EVALSHA per request: the Redis counter saw every request.
  const std::string stats = redis_->Cli({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_evalsha"), std::string::npos) << stats;
}

TEST_F(FlowClusterE2eTest, AsyncStaysWithinFivePercentOfTheSharedLimit) {
  StartSidecars(ClusterRule("async"));
  const int64_t first = NowMs() / 1000 + 1;
  Tally tally;
  Load(first, kSeconds, tally);
  EXPECT_EQ(tally.Failed(), 0);
  int total = 0;
  for (int64_t second = first; second < first + kSeconds; ++second) {
    const int admitted = tally.Admitted(second);
    total += admitted;
    std::cout << "async second " << second - first << ": " << admitted << " admitted ("
              << tally.Admitted(second, 0) << "/" << tally.Admitted(second, 1) << "/"
              << tally.Admitted(second, 2) << ")\n";
  }
  std::cout << "async: " << total << " admitted in " << kSeconds << " s (limit "
            << kLimit * kSeconds << ")\n";
  EXPECT_NEAR(total, kLimit * kSeconds, kLimit * kSeconds * 5 / 100);
  // Reservations, not a round trip per request: 300 / 15 shares per window and a few extra.
  const std::string stats = redis_->Cli({"INFO", "commandstats"});
  const size_t at = stats.find("cmdstat_evalsha:calls=");
  ASSERT_NE(at, std::string::npos) << stats;
  const long calls = std::stol(stats.substr(at + 22));
  std::cout << "async: " << calls << " EVALSHA for " << total << " admitted\n";
  EXPECT_LT(calls, (kLimit / 15 + 3 * 3) * (kSeconds + 2));
}

TEST_F(FlowClusterE2eTest, RedisKilledMidRunFallsBackToTheLocalLimitAndRecovers) {
  StartSidecars(ClusterRule("async"));
  httplib::Client admin(sidecars_[0]->actuator_address());
  auto counter_status = [&] {
    auto result = admin.Get("/actuator/health/readiness");
    if (!result) {
      return std::make_pair(-1, std::string());
    }
    json body = json::parse(result->body, nullptr, false);
    return std::make_pair(
        result->status,
        body["components"]["flow_control/cluster_counter"]["status"].get<std::string>());
  };
  EXPECT_EQ(counter_status(), std::make_pair(200, std::string("UP")));
  const int64_t first = NowMs() / 1000 + 1;
  Tally tally;
  constexpr int kRun = 5;
  Load(
      first, kRun, tally, [&] { redis_->Kill(); }, 2);
  EXPECT_EQ(tally.Failed(), 0) << "the sidecars kept serving";
  for (int64_t second = first; second < first + kRun; ++second) {
    std::cout << "kill second " << second - first << ": " << tally.Admitted(second) << " ("
              << tally.Admitted(second, 0) << "/" << tally.Admitted(second, 1) << "/"
              << tally.Admitted(second, 2) << ")\n";
  }
  EXPECT_GE(tally.Admitted(first), kLimit * 95 / 100) << "the cluster limit, Redis up";
  EXPECT_LE(tally.Admitted(first), kLimit);
  // Redis down from second 2 on: each sidecar admits its local 40 per second.
  for (int64_t second = first + 3; second < first + kRun; ++second) {
    for (int sidecar = 0; sidecar < 3; ++sidecar) {
      EXPECT_NEAR(tally.Admitted(second, sidecar), 40, 6)
          << "second " << second - first << " sidecar " << sidecar;
    }
  }
  auto [code, state] = counter_status();
  EXPECT_EQ(code, 200) << "readiness stays UP: the rule falls back, the sidecar serves";
  EXPECT_EQ(state, "DOWN");
  httplib::Client metrics(sidecars_[0]->actuator_address());
  auto scrape = metrics.Get("/metrics");
  ASSERT_TRUE(scrape);
  EXPECT_NE(scrape->body.find("ottava_flow_control_cluster_counter_up 0"), std::string::npos);
  EXPECT_NE(scrape->body.find("ottava_flow_control_cluster_fallbacks_total{resource=\"/shared\","
                              "rule=\"shared\"}"),
            std::string::npos);

  ASSERT_TRUE(redis_->Restart().ok());
  EXPECT_TRUE(WaitFor([&] { return counter_status().second == "UP"; }, std::chrono::seconds(5)));
  const int64_t again = NowMs() / 1000 + 1;
  Tally after;
  Load(again, 2, after);
  EXPECT_EQ(after.Failed(), 0);
  for (int64_t second = again; second < again + 2; ++second) {
    std::cout << "recovered second " << second - again << ": " << after.Admitted(second) << "\n";
    EXPECT_GE(after.Admitted(second), kLimit * 95 / 100);
    EXPECT_LE(after.Admitted(second), kLimit + after.straddling_admitted.load());
  }
}

}  // namespace
}  // namespace ottava::test
