#include "common/dispatcher.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ottava {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr auto kTimeout = std::chrono::seconds(5);

DispatcherPtr Started(const std::string& name = "test-loop") {
  auto dispatcher = Dispatcher::Create(name);
  EXPECT_TRUE(dispatcher.ok());
  (*dispatcher)->Start();
  return std::move(*dispatcher);
}

// Waits until everything posted before has run.
void Drain(Dispatcher& dispatcher) {
  std::promise<void> done;
  dispatcher.Post([&] { done.set_value(); });
  ASSERT_EQ(done.get_future().wait_for(kTimeout), std::future_status::ready);
}

TEST(DispatcherTest, RunsPostedClosuresInOrderOnTheLoopThread) {
  auto dispatcher = Started();
  EXPECT_FALSE(dispatcher->IsLoopThread());
  std::vector<int> order;
  std::atomic<bool> all_on_loop{true};
  for (int i = 0; i < 100; ++i) {
    dispatcher->Post([&, i] {
      all_on_loop = all_on_loop && dispatcher->IsLoopThread();
      order.push_back(i);
    });
  }
  Drain(*dispatcher);
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(order[i], i);
  }
  EXPECT_TRUE(all_on_loop.load());
}

TEST(DispatcherTest, NamesItsThreadAndKeepsFifteenCharacters) {
  auto dispatcher = Started("a-very-long-dispatcher-name");
  EXPECT_EQ(dispatcher->name(), "a-very-long-dispatcher-name");
  std::promise<std::string> name;
  dispatcher->Post([&] {
    char buf[32] = {};
    pthread_getname_np(pthread_self(), buf, sizeof(buf));
    name.set_value(buf);
  });
  EXPECT_EQ(name.get_future().get(), "a-very-long-dis");
}

TEST(DispatcherTest, PostsFromManyThreadsKeepEachThreadsOrder) {
  constexpr int kThreads = 4;
  constexpr int kPosts = 1000;
  auto dispatcher = Started();
  std::vector<std::vector<int>> seen(kThreads);  // touched on the loop thread only
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        dispatcher->Post([&seen, t, i] { seen[t].push_back(i); });
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  Drain(*dispatcher);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kPosts));
    for (int i = 0; i < kPosts; ++i) {
      ASSERT_EQ(seen[t][i], i);
    }
  }
}

TEST(DispatcherTest, ClosuresPostedBeforeStartRunAfterIt) {
  auto created = Dispatcher::Create("late-start");
  ASSERT_TRUE(created.ok());
  DispatcherPtr dispatcher = std::move(*created);
  std::promise<bool> ran;
  dispatcher->Post([&] { ran.set_value(dispatcher->IsLoopThread()); });
  dispatcher->Start();
  auto future = ran.get_future();
  ASSERT_EQ(future.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(future.get());
}

// A loop_thread_only dispatcher (libevent without locks) is woken through its eventfd: closures
// posted from other threads, from the loop itself and before Start all run, in order, and a
// timer armed by a posted closure fires.
TEST(DispatcherTest, LoopThreadOnlyDispatcherRunsPostsFromEveryThread) {
  auto created = Dispatcher::Create("lock-free", nullptr, /*loop_thread_only=*/true);
  ASSERT_TRUE(created.ok());
  DispatcherPtr dispatcher = std::move(*created);
  std::vector<int> seen;  // loop thread only
  dispatcher->Post([&] { seen.push_back(-1); });
  dispatcher->Start();
  constexpr int kThreads = 3;
  constexpr int kPosts = 2000;
  std::vector<std::vector<int>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        dispatcher->Post([&per_thread, t, i] { per_thread[t].push_back(i); });
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  std::promise<void> fired;
  TimerPtr timer;
  dispatcher->Post([&] {
    // Posted on the loop thread: activates the wake-up event without the eventfd.
    dispatcher->Post([&] {
      seen.push_back(1);
      timer = dispatcher->CreateTimer([&] { fired.set_value(); });
      timer->Enable(milliseconds(2));
    });
  });
  ASSERT_EQ(fired.get_future().wait_for(kTimeout), std::future_status::ready);
  Drain(*dispatcher);
  EXPECT_EQ(seen, (std::vector<int>{-1, 1}));
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(per_thread[t].size(), static_cast<size_t>(kPosts));
    for (int i = 0; i < kPosts; ++i) {
      ASSERT_EQ(per_thread[t][i], i);
    }
  }
  dispatcher->Post([&] { timer.reset(); });
  Drain(*dispatcher);
}

TEST(DispatcherTest, PostDelayedWaitsAndOrdersByDeadline) {
  auto dispatcher = Started();
  std::mutex mu;
  std::vector<std::string> order;
  std::promise<void> both;
  const auto start = steady_clock::now();
  std::atomic<int64_t> long_elapsed_ms{0};
  dispatcher->PostDelayed(milliseconds(80), [&] {
    long_elapsed_ms = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count();
    std::lock_guard<std::mutex> lock(mu);
    order.push_back("80ms");
    both.set_value();
  });
  dispatcher->PostDelayed(milliseconds(20), [&] {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back("20ms");
  });
  ASSERT_EQ(both.get_future().wait_for(kTimeout), std::future_status::ready);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(order, (std::vector<std::string>{"20ms", "80ms"}));
  EXPECT_GE(long_elapsed_ms.load(), 75);  // libevent rounds to the millisecond
}

TEST(DispatcherTest, TimerFiresOnceAndCanBeReArmedAndDisabled) {
  auto dispatcher = Started();
  std::atomic<int> fired{0};
  std::atomic<int> disabled_fired{0};
  std::promise<void> witness;
  TimerPtr timer;
  TimerPtr disabled;
  TimerPtr witness_timer;
  std::promise<bool> armed;
  dispatcher->Post([&] {
    timer = dispatcher->CreateTimer([&] { fired++; });
    disabled = dispatcher->CreateTimer([&] { disabled_fired++; });
    witness_timer = dispatcher->CreateTimer([&] { witness.set_value(); });
    timer->Enable(std::chrono::seconds(60));
    timer->Enable(milliseconds(10));  // re-arming replaces the deadline
    disabled->Enable(milliseconds(20));
    disabled->Disable();
    witness_timer->Enable(milliseconds(100));
    armed.set_value(timer->Enabled() && !disabled->Enabled());
  });
  EXPECT_TRUE(armed.get_future().get());
  ASSERT_EQ(witness.get_future().wait_for(kTimeout), std::future_status::ready);
  std::promise<bool> enabled_after;
  dispatcher->Post([&] { enabled_after.set_value(timer->Enabled()); });
  EXPECT_FALSE(enabled_after.get_future().get());
  EXPECT_EQ(fired.load(), 1);
  EXPECT_EQ(disabled_fired.load(), 0);
  // Timers are destroyed on the loop thread.
  dispatcher->Post([&] {
    timer.reset();
    disabled.reset();
    witness_timer.reset();
  });
  Drain(*dispatcher);
}

// libevent's own clock is the coarse one (a tick behind); the timer still waits its whole delay
// on the precise clock, armed right after the loop woke or after work that aged its cached time.
TEST(DispatcherTest, TimersNeverFireBeforeTheirDelay) {
  auto dispatcher = Started();
  constexpr int kTimers = 20;
  std::vector<TimerPtr> timers(kTimers);
  std::vector<steady_clock::time_point> armed_at(kTimers);
  std::vector<steady_clock::time_point> fired_at(kTimers);
  std::atomic<int> fired{0};
  std::promise<void> all_fired;
  dispatcher->Post([&] {
    for (int i = 0; i < kTimers; ++i) {
      timers[i] = dispatcher->CreateTimer([&, i] {
        fired_at[i] = steady_clock::now();
        if (++fired == kTimers) {
          all_fired.set_value();
        }
      });
      armed_at[i] = steady_clock::now();
      timers[i]->Enable(milliseconds(1 + i % 7));
      // Busy work between arming: the loop's cached time falls behind.
      const auto until = steady_clock::now() + std::chrono::microseconds(300);
      while (steady_clock::now() < until) {
      }
    }
  });
  ASSERT_EQ(all_fired.get_future().wait_for(kTimeout), std::future_status::ready);
  for (int i = 0; i < kTimers; ++i) {
    EXPECT_GE(fired_at[i] - armed_at[i], milliseconds(1 + i % 7)) << "timer " << i;
  }
  dispatcher->Post([&] { timers.clear(); });
  Drain(*dispatcher);
}

TEST(DispatcherTest, StopRunsWhatWasPostedAndDropsLaterPosts) {
  auto dispatcher = Started();
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) {
    dispatcher->Post([&] { ran++; });
  }
  dispatcher->Stop();
  EXPECT_EQ(ran.load(), 100);

  auto token = std::make_shared<int>(0);
  dispatcher->Post([&ran, token] { ran++; });
  EXPECT_EQ(token.use_count(), 1) << "a dropped closure must be destroyed, not kept";
  EXPECT_EQ(ran.load(), 100);
  dispatcher->Stop();  // idempotent
}

TEST(DispatcherTest, DelayedClosuresPendingAtStopAreDestroyedWithTheDispatcher) {
  auto token = std::make_shared<int>(0);
  std::atomic<int> ran{0};
  {
    auto dispatcher = Started();
    dispatcher->PostDelayed(milliseconds(0), [&ran, token] { ran++; });
    dispatcher->PostDelayed(std::chrono::hours(1), [&ran, token] { ran++; });
    const auto deadline = steady_clock::now() + kTimeout;
    while (ran.load() == 0 && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    EXPECT_EQ(ran.load(), 1);
    dispatcher->Stop();
    EXPECT_EQ(token.use_count(), 2) << "the pending closure lives until the dispatcher goes";
  }
  EXPECT_EQ(token.use_count(), 1) << "a pending delayed closure must not leak";
  EXPECT_EQ(ran.load(), 1);
}

TEST(DispatcherTest, RunAndWaitRunsOnTheLoopOrReportsAStoppedOne) {
  auto dispatcher = Started();
  bool on_loop = false;
  EXPECT_TRUE(dispatcher->RunAndWait([&] { on_loop = dispatcher->IsLoopThread(); }));
  EXPECT_TRUE(on_loop);
  // Inline on the loop thread itself (waiting there would deadlock).
  std::promise<bool> nested;
  dispatcher->Post([&] { nested.set_value(dispatcher->RunAndWait([] {})); });
  EXPECT_TRUE(nested.get_future().get());
  dispatcher->Stop();
  const auto start = steady_clock::now();
  bool ran = false;
  EXPECT_FALSE(dispatcher->RunAndWait([&] { ran = true; }));
  EXPECT_FALSE(ran);
  EXPECT_LT(steady_clock::now() - start, milliseconds(100));
}

TEST(DispatcherTest, RunAndWaitGivesUpOnAStuckLoopSafely) {
  auto dispatcher = Started();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  dispatcher->Post([released] { released.wait(); });  // the loop is stuck
  std::atomic<bool> late_run{false};
  const auto start = steady_clock::now();
  EXPECT_FALSE(dispatcher->RunAndWait([&late_run] { late_run = true; }, milliseconds(50)));
  EXPECT_LT(steady_clock::now() - start, milliseconds(1000));
  release.set_value();  // the closure runs after its waiter gave up, touching nothing of it
  Drain(*dispatcher);
  EXPECT_TRUE(late_run.load());
}

TEST(DispatcherTest, DestructorStopsTheLoop) {
  std::atomic<int> ran{0};
  {
    auto dispatcher = Started();
    dispatcher->Post([&] { ran++; });
  }
  EXPECT_EQ(ran.load(), 1);
  // Never started: destroying it is fine too.
  auto idle = Dispatcher::Create("idle");
  ASSERT_TRUE(idle.ok());
}

}  // namespace
}  // namespace ottava

namespace ottava {
namespace {

class FileEventTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_), 0); }
  void TearDown() override {
    close(fds_[0]);
    close(fds_[1]);
  }
  int fds_[2] = {-1, -1};
};

TEST_F(FileEventTest, ReportsReadableAndWritableAndStopsWhenDisabled) {
  auto dispatcher = Started();
  std::promise<uint32_t> first_read;
  std::atomic<int> reads{0};
  FileEventPtr event;
  dispatcher->RunAndWait([&] {
    event = dispatcher->CreateFileEvent(
        fds_[0],
        [&](uint32_t ready) {
          if ((ready & FileReadyType::kRead) != 0 && reads.fetch_add(1) == 0) {
            char buf[16];
            ASSERT_EQ(read(fds_[0], buf, sizeof(buf)), 1);
            first_read.set_value(ready);
          }
        },
        FileTriggerType::kEdge, FileReadyType::kRead);
  });
  ASSERT_EQ(write(fds_[1], "x", 1), 1);
  auto future = first_read.get_future();
  ASSERT_EQ(future.wait_for(kTimeout), std::future_status::ready);
  EXPECT_NE(future.get() & FileReadyType::kRead, 0u);

  // Write interest on an empty socket is ready at once.
  std::promise<void> writable;
  bool once = false;
  dispatcher->RunAndWait([&] {
    event = dispatcher->CreateFileEvent(
        fds_[0],
        [&](uint32_t ready) {
          if ((ready & FileReadyType::kWrite) != 0 && !once) {
            once = true;
            writable.set_value();
          }
        },
        FileTriggerType::kLevel, FileReadyType::kWrite);
  });
  ASSERT_EQ(writable.get_future().wait_for(kTimeout), std::future_status::ready);

  // Disabled: data arriving does not call back.
  reads = 0;
  dispatcher->RunAndWait([&] {
    event = dispatcher->CreateFileEvent(
        fds_[0], [&](uint32_t) { reads.fetch_add(1); }, FileTriggerType::kLevel, 0);
  });
  ASSERT_EQ(write(fds_[1], "y", 1), 1);
  Drain(*dispatcher);
  Drain(*dispatcher);
  EXPECT_EQ(reads.load(), 0);
  // Activate runs the callback even though nothing is enabled.
  dispatcher->RunAndWait([&] { event->Activate(FileReadyType::kRead); });
  Drain(*dispatcher);
  EXPECT_EQ(reads.load(), 1);
  dispatcher->RunAndWait([&] { event.reset(); });
}

TEST_F(FileEventTest, ReportsThePeersClose) {
  auto dispatcher = Started();
  std::promise<uint32_t> closed;
  FileEventPtr event;
  bool once = false;
  dispatcher->RunAndWait([&] {
    event = dispatcher->CreateFileEvent(
        fds_[0],
        [&](uint32_t ready) {
          if (!once) {
            once = true;
            closed.set_value(ready);
          }
        },
        FileTriggerType::kEdge, FileReadyType::kClosed);
  });
  shutdown(fds_[1], SHUT_WR);
  auto future = closed.get_future();
  ASSERT_EQ(future.wait_for(kTimeout), std::future_status::ready);
  EXPECT_NE(future.get() & FileReadyType::kClosed, 0u);
  dispatcher->RunAndWait([&] { event.reset(); });
}

class Tracked : public DeferredDeletable {
 public:
  explicit Tracked(std::atomic<int>* destroyed) : destroyed_(destroyed) {}
  ~Tracked() override { destroyed_->fetch_add(1); }

 private:
  std::atomic<int>* destroyed_;
};

TEST(DeferredDeleteTest, DestroysAfterTheCurrentCallbackReturns) {
  auto dispatcher = Started();
  std::atomic<int> destroyed{0};
  int seen_inside = -1;
  dispatcher->RunAndWait([&] {
    dispatcher->DeferredDelete(std::make_unique<Tracked>(&destroyed));
    dispatcher->DeferredDelete(std::make_unique<Tracked>(&destroyed));
    seen_inside = destroyed.load();
  });
  EXPECT_EQ(seen_inside, 0);
  Drain(*dispatcher);
  EXPECT_EQ(destroyed.load(), 2);
}

TEST(DeferredDeleteTest, PendingObjectsAreDestroyedWithTheDispatcher) {
  std::atomic<int> destroyed{0};
  {
    auto dispatcher = Dispatcher::Create("never-started");
    ASSERT_TRUE(dispatcher.ok());
    (*dispatcher)->DeferredDelete(std::make_unique<Tracked>(&destroyed));
    EXPECT_EQ(destroyed.load(), 0);
  }
  EXPECT_EQ(destroyed.load(), 1);
}

// Runs `closure` on the loop and waits for it; after Advance(), a barrier by which every timer due
// has fired.
void OnLoop(Dispatcher& dispatcher, Dispatcher::Closure closure) {
  ASSERT_TRUE(dispatcher.RunAndWait(std::move(closure), milliseconds(5000)));
}

DispatcherPtr StartedOn(SimulatedTimeSource& time) {
  auto dispatcher = Dispatcher::Create("sim-loop", &time);
  EXPECT_TRUE(dispatcher.ok());
  (*dispatcher)->Start();
  return std::move(*dispatcher);
}

TEST(SimulatedTimeTest, TimerFiresRightAfterAdvancePassesItsDeadline) {
  SimulatedTimeSource time;
  auto dispatcher = StartedOn(time);
  EXPECT_EQ(&dispatcher->time_source(), &time);
  std::promise<bool> fired;
  TimerPtr timer;
  OnLoop(*dispatcher, [&] {
    timer = dispatcher->CreateTimer([&] { fired.set_value(dispatcher->IsLoopThread()); });
    timer->Enable(std::chrono::seconds(10));
  });
  auto future = fired.get_future();
  const auto wall_start = steady_clock::now();
  time.Advance(std::chrono::seconds(10) - milliseconds(1));
  OnLoop(*dispatcher, [] {});
  EXPECT_EQ(future.wait_for(milliseconds(0)), std::future_status::timeout);
  time.Advance(milliseconds(1));
  ASSERT_EQ(future.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(future.get());
  // Ten simulated seconds, no real waiting.
  EXPECT_LT(steady_clock::now() - wall_start, std::chrono::seconds(2));
  OnLoop(*dispatcher, [&] {
    EXPECT_FALSE(timer->Enabled());
    timer.reset();
  });
}

TEST(SimulatedTimeTest, NothingFiresWhileOnlyRealTimePasses) {
  SimulatedTimeSource time;
  auto dispatcher = StartedOn(time);
  std::atomic<bool> fired{false};
  dispatcher->PostDelayed(milliseconds(1), [&] { fired = true; });
  std::this_thread::sleep_for(milliseconds(50));
  OnLoop(*dispatcher, [] {});
  EXPECT_FALSE(fired.load());
  time.Advance(milliseconds(1));
  OnLoop(*dispatcher, [] {});
  EXPECT_TRUE(fired.load());
}

TEST(SimulatedTimeTest, TimersAndDelayedClosuresFireInDeadlineOrder) {
  SimulatedTimeSource time;
  auto dispatcher = StartedOn(time);
  std::vector<std::string> order;  // loop thread
  TimerPtr timer;
  dispatcher->PostDelayed(milliseconds(300), [&] { order.push_back("delayed-300"); });
  dispatcher->PostDelayed(milliseconds(100), [&] { order.push_back("delayed-100"); });
  // Equal deadlines fire in arming order.
  dispatcher->PostDelayed(milliseconds(100), [&] { order.push_back("delayed-100b"); });
  OnLoop(*dispatcher, [&] {
    timer = dispatcher->CreateTimer([&] { order.push_back("timer-200"); });
    timer->Enable(milliseconds(200));
  });
  time.Advance(milliseconds(150));
  OnLoop(*dispatcher, [&] {
    EXPECT_EQ(order, (std::vector<std::string>{"delayed-100", "delayed-100b"}));
  });
  // One large step still fires the rest in deadline order, not all at once in arming order.
  time.Advance(std::chrono::seconds(1));
  OnLoop(*dispatcher, [&] {
    EXPECT_EQ(order, (std::vector<std::string>{"delayed-100", "delayed-100b", "timer-200",
                                               "delayed-300"}));
    timer.reset();
  });
}

TEST(SimulatedTimeTest, ReArmingMovesTheDeadlineAndACallbackMayReArm) {
  SimulatedTimeSource time;
  auto dispatcher = StartedOn(time);
  int fired = 0;  // loop thread
  TimerPtr timer;
  OnLoop(*dispatcher, [&] {
    timer = dispatcher->CreateTimer([&] {
      ++fired;
      if (fired < 3) {
        timer->Enable(std::chrono::seconds(1));  // a periodic task
      }
    });
    timer->Enable(std::chrono::seconds(5));
    timer->Enable(std::chrono::seconds(20));  // replaces the 5 s deadline
  });
  time.Advance(std::chrono::seconds(10));
  OnLoop(*dispatcher, [&] { EXPECT_EQ(fired, 0); });
  time.Advance(std::chrono::seconds(10));
  OnLoop(*dispatcher, [&] {
    EXPECT_EQ(fired, 1);
    EXPECT_TRUE(timer->Enabled());
  });
  time.Advance(std::chrono::seconds(1));
  OnLoop(*dispatcher, [&] { EXPECT_EQ(fired, 2); });
  time.Advance(std::chrono::seconds(1));
  OnLoop(*dispatcher, [&] {
    EXPECT_EQ(fired, 3);
    EXPECT_FALSE(timer->Enabled());
    timer.reset();
  });
}

TEST(SimulatedTimeTest, DisabledOrDestroyedTimersDoNotFire) {
  SimulatedTimeSource time;
  auto dispatcher = StartedOn(time);
  int fired = 0;  // loop thread
  TimerPtr disabled;
  TimerPtr destroyed;
  OnLoop(*dispatcher, [&] {
    disabled = dispatcher->CreateTimer([&] { ++fired; });
    destroyed = dispatcher->CreateTimer([&] { ++fired; });
    disabled->Enable(std::chrono::seconds(1));
    destroyed->Enable(std::chrono::seconds(1));
    EXPECT_TRUE(disabled->Enabled());
    disabled->Disable();
    EXPECT_FALSE(disabled->Enabled());
    destroyed.reset();
  });
  time.Advance(std::chrono::seconds(2));
  OnLoop(*dispatcher, [&] {
    EXPECT_EQ(fired, 0);
    disabled.reset();
  });
}

TEST(SimulatedTimeTest, ZeroDelayFiresWithoutAdvancing) {
  SimulatedTimeSource time;
  auto dispatcher = StartedOn(time);
  std::promise<void> fired;
  dispatcher->PostDelayed(milliseconds(0), [&] { fired.set_value(); });
  EXPECT_EQ(fired.get_future().wait_for(kTimeout), std::future_status::ready);
}

TEST(SimulatedTimeTest, AdvanceMovesBothClocks) {
  SimulatedTimeSource time;
  const auto monotonic = time.MonotonicTime();
  const auto system = time.SystemTime();
  time.Advance(std::chrono::minutes(3));
  EXPECT_EQ(time.MonotonicTime() - monotonic, std::chrono::minutes(3));
  EXPECT_EQ(time.SystemTime() - system, std::chrono::minutes(3));
  time.Advance(-std::chrono::minutes(1));
  EXPECT_EQ(time.MonotonicTime() - monotonic, std::chrono::minutes(3));
}

TEST(DispatcherRunTest, RunsOnTheCallersThreadUntilExit) {
  auto created = Dispatcher::Create("caller-loop");
  ASSERT_TRUE(created.ok());
  Dispatcher& dispatcher = **created;
  std::promise<std::thread::id> loop_id;
  std::atomic<bool> inside{false};
  std::thread runner([&] {
    dispatcher.Post([&] { loop_id.set_value(std::this_thread::get_id()); });
    dispatcher.Run();
  });
  auto id = loop_id.get_future();
  ASSERT_EQ(id.wait_for(kTimeout), std::future_status::ready);
  EXPECT_EQ(id.get(), runner.get_id());
  EXPECT_FALSE(dispatcher.IsLoopThread());
  EXPECT_TRUE(dispatcher.RunAndWait([&] { inside = dispatcher.IsLoopThread(); }, kTimeout));
  EXPECT_TRUE(inside.load());
  // Real-time timers run on a Run() loop too.
  std::promise<void> timer_fired;
  dispatcher.PostDelayed(milliseconds(5), [&] { timer_fired.set_value(); });
  EXPECT_EQ(timer_fired.get_future().wait_for(kTimeout), std::future_status::ready);
  dispatcher.Exit();
  runner.join();
  EXPECT_FALSE(dispatcher.IsLoopThread());
  dispatcher.Stop();
  EXPECT_FALSE(dispatcher.RunAndWait([] {}));
}

TEST(DispatcherRunTest, ExitBeforeRunReturnsAfterWhatWasPosted) {
  auto created = Dispatcher::Create("main-loop");
  ASSERT_TRUE(created.ok());
  Dispatcher& dispatcher = **created;
  std::vector<int> ran;
  dispatcher.Post([&] {
    EXPECT_TRUE(dispatcher.IsLoopThread());
    ran.push_back(1);
  });
  dispatcher.Exit();
  dispatcher.Run();  // on the test's own thread
  EXPECT_EQ(ran, std::vector<int>{1});
  EXPECT_FALSE(dispatcher.IsLoopThread());
  // Run again, exiting from inside a callback.
  dispatcher.Post([&] {
    ran.push_back(2);
    dispatcher.Exit();
  });
  dispatcher.Run();
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
}

TEST(DispatcherRunTest, RunsOnSimulatedTime) {
  SimulatedTimeSource time;
  auto created = Dispatcher::Create("sim-caller", &time);
  ASSERT_TRUE(created.ok());
  Dispatcher& dispatcher = **created;
  bool fired = false;
  dispatcher.PostDelayed(std::chrono::hours(1), [&] {
    fired = true;
    dispatcher.Exit();
  });
  // Advance from the loop itself once the delayed closure is armed.
  dispatcher.Post([&] { time.Advance(std::chrono::hours(1)); });
  dispatcher.Run();
  EXPECT_TRUE(fired);
}

}  // namespace
}  // namespace ottava
