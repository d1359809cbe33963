// bench_kafka_producer: a direct librdkafka producer, the baseline `make bench` compares Ottava's
// Kafka Publish with (test/bench/kafka.sh). Same settings as pub_subs.kafka's producer
// (enable.idempotence, acks=all, the given linger.ms) and a closed loop of --inflight messages:
// each delivery report produces the next message, as --inflight gRPC streams would.
//
//   bench_kafka_producer --brokers B --topic T [--inflight 16] [--value-bytes 256]
//                        [--linger-ms 1] [--duration 1] [--warmup 0.5]
//
// Output: one JSON line: requests, errors, throughput (messages/s), p50_us, p90_us, p99_us (from
// produce call to delivery report). Exit 0 when the run completed, 1 on setup failure, 2 on bad
// flags.

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/bench/bench_util.h"

namespace {

using Clock = std::chrono::steady_clock;

struct State {
  rd_kafka_t* rk = nullptr;
  std::string topic;
  std::string value;
  Clock::time_point measure_from;
  Clock::time_point measure_until;
  std::vector<int64_t> latencies_us;
  int64_t errors = 0;
  bool stopping = false;
};

bool Produce(State& state) {
  auto* sent = new Clock::time_point(Clock::now());
  rd_kafka_resp_err_t err = rd_kafka_producev(
      state.rk, RD_KAFKA_V_TOPIC(state.topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_VALUE(state.value.data(), state.value.size()), RD_KAFKA_V_OPAQUE(sent),
      RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    delete sent;
    ++state.errors;
    return false;
  }
  return true;
}

void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message, void* opaque) {
  auto& state = *static_cast<State*>(opaque);
  auto* sent = static_cast<Clock::time_point*>(message->_private);
  const auto now = Clock::now();
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++state.errors;
  } else if (*sent >= state.measure_from && now <= state.measure_until) {
    state.latencies_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(now - *sent).count());
  }
  delete sent;
  if (!state.stopping) {
    Produce(state);
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = ottava::bench::Flags::Parse(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_kafka_producer: %s\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  const std::string brokers = flags->String("brokers", "");
  const std::string topic = flags->String("topic", "bench");
  auto inflight = flags->Int("inflight", 16, 1, 10000);
  auto value_bytes = flags->Int("value-bytes", 256, 0, 1 << 20);
  auto linger_ms = flags->Int("linger-ms", 1, 0, 1000);
  auto duration = flags->Double("duration", 1, 0.1, 600);
  auto warmup = flags->Double("warmup", 0.5, 0, 600);
  if (brokers.empty() || !inflight.ok() || !value_bytes.ok() || !linger_ms.ok() || !duration.ok() ||
      !warmup.ok() || !flags->CheckAllRead().ok()) {
    std::fprintf(stderr,
                 "usage: bench_kafka_producer --brokers B [--topic T] [--inflight N] "
                 "[--value-bytes N] [--linger-ms N] [--duration S] [--warmup S]\n");
    return 2;
  }

  State state;
  state.topic = topic;
  state.value.assign(static_cast<size_t>(*value_bytes), 'p');
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"bootstrap.servers", brokers},
           {"enable.idempotence", "true"},
           {"acks", "all"},
           {"linger.ms", std::to_string(*linger_ms)}}) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "bench_kafka_producer: %s\n", error);
      return 1;
    }
  }
  rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
  rd_kafka_conf_set_opaque(conf, &state);
  state.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (state.rk == nullptr) {
    std::fprintf(stderr, "bench_kafka_producer: %s\n", error);
    return 1;
  }
  const auto start = Clock::now();
  state.measure_from = start + std::chrono::microseconds(static_cast<int64_t>(*warmup * 1e6));
  state.measure_until =
      state.measure_from + std::chrono::microseconds(static_cast<int64_t>(*duration * 1e6));
  for (int64_t i = 0; i < *inflight; ++i) {
    Produce(state);
  }
  while (Clock::now() < state.measure_until) {
    rd_kafka_poll(state.rk, 10);
  }
  state.stopping = true;
  rd_kafka_flush(state.rk, 10000);
  rd_kafka_destroy(state.rk);

  std::vector<int64_t>& l = state.latencies_us;
  std::sort(l.begin(), l.end());
  auto pct = [&l](double p) -> int64_t {
    return l.empty() ? 0 : l[std::min(l.size() - 1, static_cast<size_t>(p * l.size()))];
  };
  nlohmann::json out = {{"requests", l.size()},
                        {"errors", state.errors},
                        {"throughput", static_cast<double>(l.size()) / *duration},
                        {"p50_us", pct(0.5)},
                        {"p90_us", pct(0.9)},
                        {"p99_us", pct(0.99)}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
