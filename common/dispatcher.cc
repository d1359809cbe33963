#include "common/dispatcher.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/thread.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <optional>

#include "absl/synchronization/notification.h"
#include "common/assert.h"
#include "common/loop_clock.h"

namespace ottava {
namespace {

timeval ToTimeval(std::chrono::milliseconds delay) {
  if (delay.count() < 0) {
    delay = std::chrono::milliseconds(0);
  }
  timeval tv;
  tv.tv_sec = static_cast<time_t>(delay.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((delay.count() % 1000) * 1000);
  return tv;
}

class LibeventTimer : public Timer {
 public:
  LibeventTimer(event_base* base, Dispatcher::Closure callback)
      : base_(base), callback_(std::move(callback)) {
    event_ = evtimer_new(base, &LibeventTimer::OnFire, this);
    OTTAVA_RELEASE_ASSERT(event_ != nullptr, "evtimer_new failed");
  }
  ~LibeventTimer() override { event_free(event_); }

  void Enable(std::chrono::milliseconds delay) override {
    deadline_ = std::chrono::steady_clock::now() + std::max(delay, std::chrono::milliseconds(0));
    // libevent counts from the time it cached when the loop woke; work done since then would make
    // the timer fire early. OnFire checks the deadline on the precise clock as well.
    event_base_update_cache_time(base_);
    timeval tv = ToTimeval(delay);
    evtimer_add(event_, &tv);
    armed_ = true;
  }
  // The armed flag mirrors evtimer_pending without asking libevent: with threads enabled every
  // libevent call takes the base's lock, and the request path disarms idle and heartbeat timers
  // that are mostly not armed (a Bolt request disarmed two per upstream stream).
  void Disable() override {
    if (armed_) {
      armed_ = false;
      evtimer_del(event_);
    }
  }
  bool Enabled() const override { return armed_; }

 private:
  static void OnFire(evutil_socket_t, short, void* arg) {
    LoopClock::Scope scope;
    auto* timer = static_cast<LibeventTimer*>(arg);
    // libevent's clock is CLOCK_MONOTONIC_COARSE (see Dispatcher::Create), up to a tick behind:
    // a timer it fires before its deadline on the precise clock waits for the rest.
    const auto left = timer->deadline_ - std::chrono::steady_clock::now();
    if (left.count() > 0) {
      const auto micros = std::chrono::ceil<std::chrono::microseconds>(left).count();
      timeval tv;
      tv.tv_sec = static_cast<time_t>(micros / 1000000);
      tv.tv_usec = static_cast<suseconds_t>(micros % 1000000);
      evtimer_add(timer->event_, &tv);
      return;
    }
    timer->armed_ = false;
    // The callback may destroy its own timer (a request ending on its timeout); run a copy so
    // the closure being executed outlives the timer.
    Dispatcher::Closure callback = timer->callback_;
    callback();
  }

  event_base* const base_;
  Dispatcher::Closure callback_;
  event* event_;
  std::chrono::steady_clock::time_point deadline_;
  bool armed_ = false;
};

class LibeventFileEvent : public FileEvent {
 public:
  LibeventFileEvent(event_base* base,
                    int fd,
                    std::function<void(uint32_t)> callback,
                    FileTriggerType trigger,
                    uint32_t events)
      : base_(base), fd_(fd), callback_(std::move(callback)), trigger_(trigger) {
    Assign(events);
  }
  ~LibeventFileEvent() override { event_del(&event_); }

  void SetEnabled(uint32_t events) override {
    if (events == enabled_) {
      return;
    }
    event_del(&event_);
    Assign(events);
  }

  void Activate(uint32_t events) override {
    short what = 0;
    what |= (events & FileReadyType::kRead) != 0 ? EV_READ : 0;
    what |= (events & FileReadyType::kWrite) != 0 ? EV_WRITE : 0;
    what |= (events & FileReadyType::kClosed) != 0 ? EV_CLOSED : 0;
    event_active(&event_, what, 0);
  }

 private:
  void Assign(uint32_t events) {
    enabled_ = events;
    short what = EV_PERSIST;
    what |= trigger_ == FileTriggerType::kEdge ? EV_ET : 0;
    what |= (events & FileReadyType::kRead) != 0 ? EV_READ : 0;
    what |= (events & FileReadyType::kWrite) != 0 ? EV_WRITE : 0;
    what |= (events & FileReadyType::kClosed) != 0 ? EV_CLOSED : 0;
    event_assign(&event_, base_, fd_, what, &LibeventFileEvent::OnReady, this);
    if (events != 0) {
      event_add(&event_, nullptr);
    }
  }

  static void OnReady(evutil_socket_t, short what, void* arg) {
    LoopClock::Scope scope;
    auto* self = static_cast<LibeventFileEvent*>(arg);
    uint32_t ready = 0;
    ready |= (what & EV_READ) != 0 ? FileReadyType::kRead : 0;
    ready |= (what & EV_WRITE) != 0 ? FileReadyType::kWrite : 0;
    ready |= (what & EV_CLOSED) != 0 ? FileReadyType::kClosed : 0;
    self->callback_(ready);
  }

  event_base* base_;
  int fd_;
  std::function<void(uint32_t)> callback_;
  FileTriggerType trigger_;
  uint32_t enabled_ = 0;
  event event_{};
};

// Lets libevent lock its internals so event_active may be called from other threads.
void UseThreads() {
  static const bool initialised = [] {
    evthread_use_pthreads();
    return true;
  }();
  (void)initialised;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Create(std::string name,
                                                               TimeSource* time_source,
                                                               bool loop_thread_only) {
  UseThreads();
  // No EVENT_BASE_FLAG_PRECISE_TIMER: with epoll it makes libevent call timerfd_settime on every
  // loop iteration (a syscall per pass, a fifth of a busy proxy worker's syscalls). libevent
  // then reads CLOCK_MONOTONIC_COARSE, a few milliseconds behind, so a timer could fire before
  // its delay had passed (a 300 ms fault delay taking 299 ms); LibeventTimer::OnFire re-arms for
  // what is left on the precise clock instead.
  event_config* config = event_config_new();
  if (config == nullptr) {
    return absl::InternalError("event_config_new failed for dispatcher " + name);
  }
  if (loop_thread_only) {
    event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
  }
  event_base* base = event_base_new_with_config(config);
  event_config_free(config);
  if (base == nullptr) {
    return absl::InternalError("event_base_new failed for dispatcher " + name);
  }
  return std::unique_ptr<Dispatcher>(new Dispatcher(std::move(name), base, time_source));
}

// A timer on simulated time: an entry in the dispatcher's deadline set instead of a libevent timer.
class Dispatcher::SimulatedTimer : public Timer {
 public:
  SimulatedTimer(Dispatcher& dispatcher, Closure callback)
      : dispatcher_(dispatcher), callback_(std::move(callback)) {}
  ~SimulatedTimer() override { Disable(); }

  void Enable(std::chrono::milliseconds delay) override {
    Disable();
    if (delay.count() < 0) {
      delay = std::chrono::milliseconds(0);
    }
    entry_ = SimulatedEntry(dispatcher_.time_source_->MonotonicTime() + delay,
                            dispatcher_.next_sequence_++, this);
    dispatcher_.simulated_timers_.insert(*entry_);
    if (delay.count() == 0) {
      // Already due: fire on a later loop iteration without waiting for Advance(), as a real
      // zero-delay timer does.
      dispatcher_.Post([dispatcher = &dispatcher_] { dispatcher->RunSimulatedTimers(); });
    }
  }

  void Disable() override {
    if (entry_.has_value()) {
      dispatcher_.simulated_timers_.erase(*entry_);
      entry_.reset();
    }
  }

  bool Enabled() const override { return entry_.has_value(); }

  // Called by RunSimulatedTimers after it removed the entry. The callback may destroy the timer.
  void Fire() {
    entry_.reset();
    callback_();
  }

 private:
  Dispatcher& dispatcher_;
  Closure callback_;
  std::optional<SimulatedEntry> entry_;
};

Dispatcher::Dispatcher(std::string name, event_base* base, TimeSource* time_source)
    : name_(std::move(name)), base_(base) {
  if (time_source == nullptr) {
    real_time_ = std::make_unique<RealTimeSource>();
    time_source = real_time_.get();
  }
  time_source_ = time_source;
  // Simulated time needs the source to wake the loop when it moves; any other source is assumed to
  // follow real time, which libevent's timers keep.
  simulated_ = dynamic_cast<SimulatedTimeSource*>(time_source);
  real_clock_ = dynamic_cast<RealTimeSource*>(time_source) != nullptr;
  if (simulated_ != nullptr) {
    simulated_listener_ =
        simulated_->AddListener([this] { Post([this] { RunSimulatedTimers(); }); });
  }
  wakeup_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  OTTAVA_RELEASE_ASSERT(wakeup_fd_ >= 0, "eventfd failed");
  wakeup_ = event_new(
      base_, wakeup_fd_, EV_READ | EV_PERSIST,
      [](evutil_socket_t fd, short, void* arg) {
        LoopClock::Scope scope;
        // Cleared before the queue is taken: a Post after the swap writes again.
        uint64_t count;
        (void)!::read(fd, &count, sizeof(count));
        static_cast<Dispatcher*>(arg)->RunPosted();
      },
      this);
  OTTAVA_RELEASE_ASSERT(wakeup_ != nullptr, "event_new failed");
  event_add(wakeup_, nullptr);
  deferred_event_ = event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void* arg) {
        LoopClock::Scope scope;
        static_cast<Dispatcher*>(arg)->ClearDeferred();
      },
      this);
  OTTAVA_RELEASE_ASSERT(deferred_event_ != nullptr, "event_new failed");
}

// A PostDelayed closure and its one-shot timer. Deferred-deletable so that the timer is destroyed
// after its own callback has returned.
struct Dispatcher::Delayed : public DeferredDeletable {
  TimerPtr timer;
  Closure closure;
};

Dispatcher::~Dispatcher() {
  if (simulated_ != nullptr) {
    simulated_->RemoveListener(simulated_listener_);
  }
  Stop();
  delayed_.clear();
  ClearDeferred();
  event_free(deferred_event_);
  event_free(wakeup_);
  ::close(wakeup_fd_);
  event_base_free(base_);
}

void Dispatcher::Start() {
  OTTAVA_RELEASE_ASSERT(!thread_.joinable(), "dispatcher started twice");
  // The loop thread records its own id before it runs anything, and Start() returns only after
  // that: assigning thread_.get_id() after the constructor would let closures posted before
  // Start() run while IsLoopThread() still answered false.
  std::promise<void> recorded;
  thread_ = std::thread([this, &recorded] {
    loop_thread_id_.store(std::this_thread::get_id());
    recorded.set_value();
    pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
  });
  recorded.get_future().wait();
}

void Dispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      return;
    }
  }
  if (thread_.joinable()) {
    // Run what was posted before the stop, then leave the loop.
    Post([this] { event_base_loopbreak(base_); });
    thread_.join();
  }
  std::vector<Closure> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    dropped.swap(posted_);
  }
}

void Dispatcher::Run() {
  OTTAVA_RELEASE_ASSERT(!thread_.joinable(), "Run() on a dispatcher that owns a thread");
  {
    absl::MutexLock lock(&mu_);
    OTTAVA_RELEASE_ASSERT(!stopped_, "Run() on a stopped dispatcher");
  }
  OTTAVA_RELEASE_ASSERT(loop_thread_id_.load() == std::thread::id(), "Run() while running");
  loop_thread_id_.store(std::this_thread::get_id());
  event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
  loop_thread_id_.store(std::thread::id());
}

void Dispatcher::Exit() {
  // Posted rather than breaking at once: what was posted before runs first, and an Exit() that
  // comes before Run() is not lost (libevent clears a pending break when a loop starts).
  Post([this] { event_base_loopbreak(base_); });
}

void Dispatcher::Post(Closure closure) {
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      return;
    }
    // A non-empty queue has a wake-up on its way: RunPosted takes the whole queue after it.
    wake = posted_.empty();
    posted_.push_back(std::move(closure));
  }
  if (!wake) {
    return;
  }
  if (IsLoopThread()) {
    event_active(wakeup_, EV_READ, 0);
    return;
  }
  const uint64_t one = 1;
  (void)!::write(wakeup_fd_, &one, sizeof(one));
}

void Dispatcher::PostDelayed(std::chrono::milliseconds delay, Closure closure) {
  Post([this, delay, closure = std::move(closure)]() mutable {
    auto delayed = std::make_unique<Delayed>();
    Delayed* key = delayed.get();
    delayed->closure = std::move(closure);
    delayed->timer = CreateTimer([this, key] { FireDelayed(key); });
    delayed->timer->Enable(delay);
    delayed_.emplace(key, std::move(delayed));
  });
}

void Dispatcher::FireDelayed(Delayed* fired) {
  auto it = delayed_.find(fired);
  OTTAVA_RELEASE_ASSERT(it != delayed_.end(), "unknown delayed closure");
  std::unique_ptr<Delayed> owned = std::move(it->second);
  delayed_.erase(it);
  Closure closure = std::move(owned->closure);
  // This runs inside owned->timer's callback: the timer goes after the callback has returned.
  DeferredDelete(std::move(owned));
  closure();
}

void Dispatcher::RunSimulatedTimers() {
  const MonotonicTime now = time_source_->MonotonicTime();
  // Timers armed while this pass runs (a callback re-arming with no delay) wait for the next pass,
  // as a real zero-delay timer waits for the next loop iteration.
  const uint64_t limit = next_sequence_;
  while (!simulated_timers_.empty()) {
    auto [deadline, sequence, timer] = *simulated_timers_.begin();
    if (deadline > now || sequence >= limit) {
      break;
    }
    simulated_timers_.erase(simulated_timers_.begin());
    timer->Fire();
  }
}

bool Dispatcher::RunAndWait(Closure closure, std::chrono::milliseconds timeout) {
  if (IsLoopThread()) {
    closure();
    return true;
  }
  // Shared with the posted closure, which may outlive a wait that timed out.
  struct Waiter {
    absl::Notification finished;
    std::atomic<bool> ran{false};
  };
  // Notifies when the posted closure is destroyed: after it ran, or at once when a stopped
  // dispatcher drops it.
  class NotifyOnDestroy {
   public:
    explicit NotifyOnDestroy(std::shared_ptr<Waiter> waiter) : waiter_(std::move(waiter)) {}
    ~NotifyOnDestroy() { waiter_->finished.Notify(); }
    NotifyOnDestroy(const NotifyOnDestroy&) = delete;
    NotifyOnDestroy& operator=(const NotifyOnDestroy&) = delete;

   private:
    std::shared_ptr<Waiter> waiter_;
  };
  auto waiter = std::make_shared<Waiter>();
  auto notify = std::make_shared<NotifyOnDestroy>(waiter);
  Post([closure = std::move(closure), notify, waiter]() mutable {
    closure();
    waiter->ran.store(true);
    notify.reset();
  });
  notify.reset();
  if (timeout == std::chrono::milliseconds::max()) {
    waiter->finished.WaitForNotification();
  } else {
    waiter->finished.WaitForNotificationWithTimeout(absl::Milliseconds(timeout.count()));
  }
  return waiter->ran.load();
}

TimerPtr Dispatcher::CreateTimer(Closure callback) {
  if (simulated_ != nullptr) {
    return std::make_unique<SimulatedTimer>(*this, std::move(callback));
  }
  return std::make_unique<LibeventTimer>(base_, std::move(callback));
}

FileEventPtr Dispatcher::CreateFileEvent(int fd,
                                         std::function<void(uint32_t events)> callback,
                                         FileTriggerType trigger,
                                         uint32_t events) {
  return std::make_unique<LibeventFileEvent>(base_, fd, std::move(callback), trigger, events);
}

void Dispatcher::DeferredDelete(DeferredDeletablePtr object) {
  if (deferred_.empty()) {
    event_active(deferred_event_, EV_TIMEOUT, 0);
  }
  deferred_.push_back(std::move(object));
}

void Dispatcher::ClearDeferred() {
  // Destructors may defer more deletions; keep going until none is left.
  // Two vectors swapped back and forth keep their capacity: deferring costs no allocation.
  while (!deferred_.empty()) {
    deferred_batch_.swap(deferred_);
    deferred_batch_.clear();
  }
}

MonotonicTime Dispatcher::ApproximateTime() const {
  return real_clock_ ? LoopClock::Now() : time_source_->MonotonicTime();
}

bool Dispatcher::IsLoopThread() const {
  return std::this_thread::get_id() == loop_thread_id_.load();
}

void Dispatcher::RunPosted() {
  std::vector<Closure> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(posted_);
  }
  for (auto& closure : batch) {
    closure();
  }
}

}  // namespace ottava
