#include "common/timeout_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/time_source.h"

namespace ottava {
namespace {

using std::chrono::milliseconds;

void OnLoop(Dispatcher& dispatcher, Dispatcher::Closure closure) {
  ASSERT_TRUE(dispatcher.RunAndWait(std::move(closure), milliseconds(5000)));
}

// Entries expire in arming order once their own timeout has passed; a cancelled one never fires,
// even when it was the head the queue's timer was armed for.
TEST(TimeoutQueueTest, ExpiresInOrderAfterTheTimeoutAndSkipsCancelledEntries) {
  SimulatedTimeSource time;
  auto created = Dispatcher::Create("tq-loop", &time);
  ASSERT_TRUE(created.ok());
  DispatcherPtr dispatcher = std::move(*created);
  dispatcher->Start();
  std::string fired;
  std::unique_ptr<TimeoutQueue> queue;
  std::unique_ptr<TimeoutEntry> a, b, c;
  OnLoop(*dispatcher, [&] {
    queue = std::make_unique<TimeoutQueue>(*dispatcher, milliseconds(100));
    a = std::make_unique<TimeoutEntry>([&] { fired += "a"; });
    b = std::make_unique<TimeoutEntry>([&] { fired += "b"; });
    c = std::make_unique<TimeoutEntry>([&] { fired += "c"; });
    queue->Arm(*a);
  });
  time.Advance(milliseconds(40));
  OnLoop(*dispatcher, [&] {
    queue->Arm(*b);
    queue->Arm(*c);
    a->Cancel();
    EXPECT_FALSE(a->armed());
  });
  time.Advance(milliseconds(60));  // a's deadline: nothing due (a was cancelled)
  OnLoop(*dispatcher, [] {});
  OnLoop(*dispatcher, [&] { EXPECT_EQ(fired, ""); });
  time.Advance(milliseconds(39));
  OnLoop(*dispatcher, [] {});
  OnLoop(*dispatcher, [&] { EXPECT_EQ(fired, ""); });
  time.Advance(milliseconds(1));  // b's and c's deadline
  OnLoop(*dispatcher, [] {});
  OnLoop(*dispatcher, [&] {
    EXPECT_EQ(fired, "bc");
    EXPECT_FALSE(b->armed());
    // Re-armed after expiring, and destroyed while armed: it leaves the queue.
    queue->Arm(*b);
    b.reset();
  });
  time.Advance(milliseconds(200));
  OnLoop(*dispatcher, [] {});
  OnLoop(*dispatcher, [&] {
    EXPECT_EQ(fired, "bc");
    a.reset();
    c.reset();
    queue.reset();
  });
}

}  // namespace
}  // namespace ottava
