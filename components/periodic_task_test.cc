#include "components/periodic_task.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace ottava::components {
namespace {

constexpr auto kTimeout = std::chrono::seconds(5);

template <class Pred>
bool WaitUntil(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class PeriodicTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dispatcher = Dispatcher::Create("periodic-test");
    ASSERT_TRUE(dispatcher.ok());
    dispatcher_ = std::move(*dispatcher);
    dispatcher_->Start();
  }
  void TearDown() override { dispatcher_->Stop(); }
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(PeriodicTaskTest, RunsRepeatedlyOnTheLoopUntilStopped) {
  std::atomic<int> runs{0};
  std::atomic<bool> off_loop{false};
  PeriodicTask task(*dispatcher_, std::chrono::milliseconds(10), [&] {
    if (!dispatcher_->IsLoopThread()) {
      off_loop = true;
    }
    runs++;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(runs.load(), 0) << "ran before Start()";
  task.Start();
  EXPECT_TRUE(WaitUntil([&] { return runs.load() >= 3; }));
  task.Stop();
  const int after_stop = runs.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(runs.load(), after_stop);
  EXPECT_FALSE(off_loop.load());
  task.Stop();  // idempotent
}

TEST_F(PeriodicTaskTest, StopWaitsForARunningTask) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> runs{0};
  std::atomic<bool> running{false};
  PeriodicTask task(*dispatcher_, std::chrono::milliseconds(1), [&] {
    running = true;
    if (runs.fetch_add(1) == 0) {
      entered.set_value();
      released.wait_for(kTimeout);
    }
    running = false;
  });
  task.Start();
  ASSERT_EQ(entered.get_future().wait_for(kTimeout), std::future_status::ready);
  std::atomic<bool> returned{false};
  std::atomic<bool> running_at_return{true};
  std::atomic<int> runs_at_return{0};
  std::thread stopper([&] {
    task.Stop();
    running_at_return = running.load();
    runs_at_return = runs.load();
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(returned.load());
  release.set_value();
  stopper.join();
  EXPECT_FALSE(running_at_return.load());
  // The task may run again between the release and Stop taking over, but never after Stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(runs.load(), runs_at_return.load());
}

TEST_F(PeriodicTaskTest, StopDoesNotHangOnAStoppedLoop) {
  std::atomic<int> runs{0};
  auto task =
      std::make_unique<PeriodicTask>(*dispatcher_, std::chrono::milliseconds(5), [&] { runs++; });
  task->Start();
  ASSERT_TRUE(WaitUntil([&] { return runs.load() >= 1; }));
  dispatcher_->Stop();
  task.reset();  // the destructor stops it
  SUCCEED();
}

}  // namespace
}  // namespace ottava::components
