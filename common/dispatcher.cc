#include "common/dispatcher.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/thread.h>
#include <pthread.h>

#include <atomic>
#include <future>

#include "absl/synchronization/notification.h"
#include "common/assert.h"

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
  LibeventTimer(event_base* base, Dispatcher::Closure callback) : callback_(std::move(callback)) {
    event_ = evtimer_new(base, &LibeventTimer::OnFire, this);
    OTTAVA_RELEASE_ASSERT(event_ != nullptr, "evtimer_new failed");
  }
  ~LibeventTimer() override { event_free(event_); }

  void Enable(std::chrono::milliseconds delay) override {
    timeval tv = ToTimeval(delay);
    evtimer_add(event_, &tv);
  }
  void Disable() override { evtimer_del(event_); }
  bool Enabled() const override { return evtimer_pending(event_, nullptr) != 0; }

 private:
  static void OnFire(evutil_socket_t, short, void* arg) {
    // The callback may destroy its own timer (a request ending on its timeout); run a copy so
    // the closure being executed outlives the timer.
    Dispatcher::Closure callback = static_cast<LibeventTimer*>(arg)->callback_;
    callback();
  }

  Dispatcher::Closure callback_;
  event* event_;
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

absl::StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Create(std::string name) {
  UseThreads();
  event_base* base = event_base_new();
  if (base == nullptr) {
    return absl::InternalError("event_base_new failed for dispatcher " + name);
  }
  return std::unique_ptr<Dispatcher>(new Dispatcher(std::move(name), base));
}

Dispatcher::Dispatcher(std::string name, event_base* base) : name_(std::move(name)), base_(base) {
  wakeup_ = event_new(
      base_, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* arg) { static_cast<Dispatcher*>(arg)->RunPosted(); }, this);
  OTTAVA_RELEASE_ASSERT(wakeup_ != nullptr, "event_new failed");
  // A persistent event with no fd and no timeout would not keep the loop alive; an add with a huge
  // timeout does, so the loop runs until Stop().
  timeval forever{.tv_sec = 86400 * 365, .tv_usec = 0};
  event_add(wakeup_, &forever);
  deferred_event_ = event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void* arg) { static_cast<Dispatcher*>(arg)->ClearDeferred(); },
      this);
  OTTAVA_RELEASE_ASSERT(deferred_event_ != nullptr, "event_new failed");
}

// A PostDelayed closure and its one-shot timer.
struct Dispatcher::Delayed {
  Dispatcher* dispatcher;
  event* timer = nullptr;
  Closure closure;
};

Dispatcher::~Dispatcher() {
  Stop();
  for (auto& [key, delayed] : delayed_) {
    event_free(delayed->timer);
  }
  delayed_.clear();
  ClearDeferred();
  event_free(deferred_event_);
  event_free(wakeup_);
  event_base_free(base_);
}

void Dispatcher::Start() {
  OTTAVA_RELEASE_ASSERT(!thread_.joinable(), "dispatcher started twice");
  // The loop thread records its own id before it runs anything, and Start() returns only after
  // that: assigning thread_.get_id() after the constructor would let closures posted before
  // Start() run while IsLoopThread() still answered false.
  std::promise<void> recorded;
  thread_ = std::thread([this, &recorded] {
    loop_thread_id_ = std::this_thread::get_id();
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

void Dispatcher::Post(Closure closure) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      return;
    }
    posted_.push_back(std::move(closure));
  }
  event_active(wakeup_, EV_TIMEOUT, 0);
}

void Dispatcher::PostDelayed(std::chrono::milliseconds delay, Closure closure) {
  Post([this, delay, closure = std::move(closure)]() mutable {
    auto delayed = std::make_unique<Delayed>();
    delayed->dispatcher = this;
    delayed->closure = std::move(closure);
    delayed->timer = evtimer_new(base_, &Dispatcher::FireDelayed, delayed.get());
    OTTAVA_RELEASE_ASSERT(delayed->timer != nullptr, "evtimer_new failed");
    timeval tv = ToTimeval(delay);
    evtimer_add(delayed->timer, &tv);
    Delayed* key = delayed.get();
    delayed_.emplace(key, std::move(delayed));
  });
}

void Dispatcher::FireDelayed(int /*fd*/, short /*what*/, void* arg) {
  auto* fired = static_cast<Delayed*>(arg);
  auto& delayed = fired->dispatcher->delayed_;
  auto it = delayed.find(fired);
  OTTAVA_RELEASE_ASSERT(it != delayed.end(), "unknown delayed closure");
  std::unique_ptr<Delayed> owned = std::move(it->second);
  delayed.erase(it);
  event_free(owned->timer);
  owned->closure();
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
  while (!deferred_.empty()) {
    std::vector<DeferredDeletablePtr> batch;
    batch.swap(deferred_);
    batch.clear();
  }
}

bool Dispatcher::IsLoopThread() const {
  return std::this_thread::get_id() == loop_thread_id_;
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
