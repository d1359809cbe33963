// kafka_mock: librdkafka's built-in mock cluster (rdkafka_mock.h) as a process, so tests,
// benchmarks and users can run Ottava's Kafka pub/sub without a broker.
//
//   kafka_mock [--brokers N] [--bootstrap-file FILE] [--topic NAME:PARTITIONS]...
//
// Starts N brokers (default 3) on 127.0.0.1 (random ports), creates the topics, writes the
// bootstrap address ("127.0.0.1:p1,127.0.0.1:p2,...") to FILE atomically (or prints it when no file
// is given), then reads commands from stdin, one per line, answering "ok" or "error: ..." on
// stdout:
//
//   down <broker|-1>                      refuse connections (-1: every broker)
//   up <broker|-1>                        accept connections again
//   error <api> <error> [count]           the next `count` (1) requests of type <api> fail
//   clear <api>                           drop errors pushed for <api>
//   topic-error <topic> <error>           Metadata answers this error for the topic
//   create <topic> <partitions>           create a topic (replication min(3, N))
//   leader <topic> <partition> <broker>   move a partition's leader (-1: leaderless)
//   coordinator <group> <broker>          move a consumer group's coordinator
//   rtt <broker|-1> <ms>                  delay every response
//   quit                                  exit
//
// At the end of input (stdin closed, or started with `< /dev/null &`) it keeps serving until
// SIGINT or SIGTERM.
//
// <api> is a request name (Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,
// FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, InitProducerId) or its number;
// <error> a librdkafka error name without the RD_KAFKA_RESP_ERR_ prefix (NOT_LEADER_FOR_PARTITION,
// REQUEST_TIMED_OUT, _TRANSPORT: disconnect the client) or its number.

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must follow rdkafka.h.
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::optional<int64_t> ParseInt(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || *end != '\0') {
    return std::nullopt;
  }
  return value;
}

std::optional<int16_t> ApiKey(const std::string& name) {
  static const std::map<std::string, int16_t> kApis = {
      {"Produce", 0},         {"Fetch", 1},       {"ListOffsets", 2},      {"Metadata", 3},
      {"OffsetCommit", 8},    {"OffsetFetch", 9}, {"FindCoordinator", 10}, {"JoinGroup", 11},
      {"Heartbeat", 12},      {"LeaveGroup", 13}, {"SyncGroup", 14},       {"ApiVersion", 18},
      {"InitProducerId", 22},
  };
  if (auto it = kApis.find(name); it != kApis.end()) {
    return it->second;
  }
  if (auto number = ParseInt(name); number && *number >= 0 && *number < 100) {
    return static_cast<int16_t>(*number);
  }
  return std::nullopt;
}

std::optional<rd_kafka_resp_err_t> ErrorCode(const std::string& name) {
  if (auto number = ParseInt(name)) {
    return static_cast<rd_kafka_resp_err_t>(*number);
  }
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name != nullptr && name == descs[i].name) {
      return descs[i].code;
    }
  }
  return std::nullopt;
}

// Runs one command; returns "" on success or the error text.
std::string Run(rd_kafka_mock_cluster_t* cluster, const std::vector<std::string>& words) {
  const std::string& verb = words[0];
  auto arg_int = [&words](size_t i) -> std::optional<int64_t> {
    return i < words.size() ? ParseInt(words[i]) : std::nullopt;
  };
  auto check = [](rd_kafka_resp_err_t err) -> std::string {
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : rd_kafka_err2str(err);
  };
  if ((verb == "down" || verb == "up") && words.size() == 2) {
    auto broker = arg_int(1);
    if (!broker) {
      return "bad broker id";
    }
    return check(verb == "down"
                     ? rd_kafka_mock_broker_set_down(cluster, static_cast<int32_t>(*broker))
                     : rd_kafka_mock_broker_set_up(cluster, static_cast<int32_t>(*broker)));
  }
  if (verb == "error" && (words.size() == 3 || words.size() == 4)) {
    auto api = ApiKey(words[1]);
    auto err = ErrorCode(words[2]);
    auto count = words.size() == 4 ? arg_int(3) : std::optional<int64_t>(1);
    if (!api || !err || !count || *count < 1 || *count > 100000) {
      return "usage: error <api> <error> [count]";
    }
    std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(*count), *err);
    rd_kafka_mock_push_request_errors_array(cluster, *api, errors.size(), errors.data());
    return "";
  }
  if (verb == "clear" && words.size() == 2) {
    auto api = ApiKey(words[1]);
    if (!api) {
      return "unknown api";
    }
    rd_kafka_mock_clear_request_errors(cluster, *api);
    return "";
  }
  if (verb == "topic-error" && words.size() == 3) {
    auto err = ErrorCode(words[2]);
    if (!err) {
      return "unknown error";
    }
    rd_kafka_mock_topic_set_error(cluster, words[1].c_str(), *err);
    return "";
  }
  if (verb == "create" && words.size() == 3) {
    auto partitions = arg_int(2);
    if (!partitions || *partitions < 1) {
      return "bad partition count";
    }
    return check(
        rd_kafka_mock_topic_create(cluster, words[1].c_str(), static_cast<int>(*partitions), 1));
  }
  if (verb == "leader" && words.size() == 4) {
    auto partition = arg_int(2);
    auto broker = arg_int(3);
    if (!partition || !broker) {
      return "usage: leader <topic> <partition> <broker>";
    }
    return check(rd_kafka_mock_partition_set_leader(cluster, words[1].c_str(),
                                                    static_cast<int32_t>(*partition),
                                                    static_cast<int32_t>(*broker)));
  }
  if (verb == "coordinator" && words.size() == 3) {
    auto broker = arg_int(2);
    if (!broker) {
      return "bad broker id";
    }
    return check(rd_kafka_mock_coordinator_set(cluster, "group", words[1].c_str(),
                                               static_cast<int32_t>(*broker)));
  }
  if (verb == "rtt" && words.size() == 3) {
    auto broker = arg_int(1);
    auto ms = arg_int(2);
    if (!broker || !ms) {
      return "usage: rtt <broker> <ms>";
    }
    return check(rd_kafka_mock_broker_set_rtt(cluster, static_cast<int32_t>(*broker),
                                              static_cast<int>(*ms)));
  }
  return "unknown command (down, up, error, clear, topic-error, create, leader, coordinator, "
         "rtt, quit)";
}

int Usage() {
  std::cerr << "usage: kafka_mock [--brokers N] [--bootstrap-file FILE] "
               "[--topic NAME:PARTITIONS]...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  std::string bootstrap_file;
  std::vector<std::pair<std::string, int>> topics;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      return Usage();
    }
    const std::string value = argv[++i];
    if (flag == "--brokers") {
      auto n = ParseInt(value);
      if (!n || *n < 1 || *n > 100) {
        return Usage();
      }
      brokers = static_cast<int>(*n);
    } else if (flag == "--bootstrap-file") {
      bootstrap_file = value;
    } else if (flag == "--topic") {
      size_t colon = value.rfind(':');
      auto partitions =
          colon == std::string::npos ? std::nullopt : ParseInt(value.substr(colon + 1));
      if (!partitions || *partitions < 1) {
        return Usage();
      }
      topics.emplace_back(value.substr(0, colon), static_cast<int>(*partitions));
    } else {
      return Usage();
    }
  }

  // The cluster lives in a client handle's background threads; this handle does nothing else.
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof(error));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (rk == nullptr) {
    std::cerr << "kafka_mock: " << error << "\n";
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster == nullptr) {
    std::cerr << "kafka_mock: could not create the mock cluster\n";
    return 1;
  }
  for (const auto& [name, partitions] : topics) {
    rd_kafka_mock_topic_create(cluster, name.c_str(), partitions, 1);
  }
  const std::string bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
  if (bootstrap_file.empty()) {
    std::cout << bootstraps << std::endl;
  } else {
    const std::string temp = bootstrap_file + ".tmp";
    {
      std::ofstream out(temp);
      out << bootstraps << "\n";
    }
    if (std::rename(temp.c_str(), bootstrap_file.c_str()) != 0) {
      std::cerr << "kafka_mock: cannot write " << bootstrap_file << "\n";
      return 1;
    }
  }
  std::string line;
  bool quit = false;
  while (!quit && std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string word; in >> word;) {
      words.push_back(word);
    }
    if (words.empty()) {
      continue;
    }
    if (words[0] == "quit") {
      quit = true;
      break;
    }
    const std::string failure = Run(cluster, words);
    std::cout << (failure.empty() ? "ok" : "error: " + failure) << std::endl;
  }
  while (!quit) {
    pause();  // SIGINT/SIGTERM end the process
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
