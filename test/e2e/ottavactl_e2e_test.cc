// End-to-end: `ottavactl` against the running `ottava` binary, as the README tour uses it.

#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "test/support/process.h"

namespace ottava::test {
namespace {

class OttavactlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sidecar = Sidecar::Start(InMemoryConfig("ctl"));
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
  }
  void TearDown() override { EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr(); }

  RunResult Ctl(std::vector<std::string> args, bool json = false) {
    std::vector<std::string> argv = {BinDir() + "/ottavactl", "--address",
                                     sidecar_->grpc_address()};
    if (json) {
      argv.push_back("--json");
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, std::chrono::seconds(20));
  }

  nlohmann::json Json(std::vector<std::string> args) {
    RunResult result = Ctl(std::move(args), true);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    nlohmann::json parsed = nlohmann::json::parse(result.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << result.out;
    return parsed;
  }

  std::unique_ptr<Sidecar> sidecar_;
};

TEST_F(OttavactlTest, StateRoundTripWithEtags) {
  RunResult set = Ctl({"state", "set", "greeting", "hello"});
  EXPECT_EQ(set.exit_code, 0) << set.err;
  RunResult get = Ctl({"state", "get", "greeting"});
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out.rfind("hello\n", 0), 0u) << get.out;
  EXPECT_NE(get.out.find("etag: "), std::string::npos);

  nlohmann::json item = Json({"state", "get", "greeting"});
  const std::string etag = item.value("etag", "");
  ASSERT_FALSE(etag.empty()) << item.dump();
  EXPECT_EQ(Ctl({"state", "set", "greeting", "bye", "--etag", etag}).exit_code, 0);
  RunResult stale = Ctl({"state", "set", "greeting", "again", "--etag", etag});
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_NE(stale.err.find("ABORTED"), std::string::npos) << stale.err;

  EXPECT_EQ(Ctl({"state", "tx", "upsert:a=1", "upsert:b=2", "delete:greeting"}).exit_code, 0);
  RunResult bulk = Ctl({"state", "bulk", "a", "b", "greeting"}, true);
  EXPECT_EQ(bulk.exit_code, 0) << bulk.err;
  EXPECT_NE(bulk.out.find("\"a\""), std::string::npos) << bulk.out;
  EXPECT_EQ(Ctl({"state", "del", "a"}).exit_code, 0);

  RunResult bad = Ctl({"state", "get", "x", "--store", "nope"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("INVALID_ARGUMENT"), std::string::npos) << bad.err;
  EXPECT_EQ(Ctl({"state", "frobnicate"}).exit_code, 2);
}

TEST_F(OttavactlTest, LockSequencerAndConfig) {
  RunResult lock = Ctl({"lock", "try", "--resource", "r", "--owner", "me", "--expire", "10"});
  EXPECT_EQ(lock.exit_code, 0) << lock.err;
  EXPECT_NE(lock.out.find("acquired"), std::string::npos);
  RunResult other = Ctl({"lock", "try", "--resource", "r", "--owner", "you", "--expire", "10"});
  EXPECT_NE(other.out.find("not acquired"), std::string::npos) << other.out;
  EXPECT_EQ(Json({"lock", "renew", "--resource", "r", "--owner", "me", "--expire", "10"})
                .value("status", ""),
            "SUCCESS");
  EXPECT_EQ(Json({"lock", "unlock", "--resource", "r", "--owner", "you"}).value("status", ""),
            "LOCK_BELONG_TO_OTHERS");
  EXPECT_EQ(Json({"lock", "unlock", "--resource", "r", "--owner", "me"}).value("status", ""),
            "SUCCESS");
  EXPECT_EQ(Json({"lock", "unlock", "--resource", "r", "--owner", "me"}).value("status", ""),
            "LOCK_UNEXIST");

  RunResult first = Ctl({"seq", "next", "orders"});
  RunResult second = Ctl({"seq", "next", "orders", "--strong"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_LT(std::stoll(first.out), std::stoll(second.out));

  EXPECT_EQ(Ctl({"config", "set", "timeout", "30", "--tag", "owner=ops"}).exit_code, 0);
  RunResult config = Ctl({"config", "get", "timeout"}, true);
  EXPECT_NE(config.out.find("\"30\""), std::string::npos) << config.out;
  EXPECT_EQ(Ctl({"config", "del", "timeout"}).exit_code, 0);
}

TEST_F(OttavactlTest, PublishAndSubscribeStreamsEventsToStdout) {
  RunResult subscriber;
  std::thread watcher([&] {
    subscriber = Ctl({"subscribe", "news", "--max", "1", "--timeout", "15"}, true);
  });
  // Publish until the subscriber (which may still be connecting) has its event.
  bool done = false;
  for (int i = 0; i < 300 && !done; ++i) {
    Ctl({"publish", "news", "extra-extra"});
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    done = WaitFor([&] { return subscriber.exit_code != -1; }, std::chrono::milliseconds(1));
  }
  watcher.join();
  EXPECT_EQ(subscriber.exit_code, 0) << subscriber.err;
  EXPECT_NE(subscriber.out.find("extra-extra"), std::string::npos) << subscriber.out;
}

TEST_F(OttavactlTest, HealthReportsUp) {
  RunResult health = Ctl({"health", "--actuator", sidecar_->actuator_address()});
  EXPECT_EQ(health.exit_code, 0) << health.out << health.err;
  EXPECT_NE(health.out.find("UP"), std::string::npos) << health.out;
}

}  // namespace
}  // namespace ottava::test
