#pragma once

// One monotonic clock reading shared by everything an event-loop callback does. A proxy worker
// handles a batch of requests per readable event and stamps each several times (route timeout,
// try start, upstream time); on a VM each clock_gettime is a paravirtual clock read. Inside a
// callback the dispatcher marks (file events, timers, posted closures, deferred deletion) the
// first Now() reads the clock and later ones return that reading; the mark ends with the
// callback, so a reading never outlives the callback that took it. Outside a marked callback
// Now() reads the clock every time.
//
// Threading: the state is per thread; a loop thread marks its own callbacks.

#include <chrono>

#include "common/time.h"

namespace ottava {

class LoopClock {
 public:
  /// steady_clock's time, at most as old as the start of the current loop callback's first read.
  static MonotonicTime Now() {
    State& state = Local();
    if (state.depth == 0) {
      return std::chrono::steady_clock::now();
    }
    if (!state.valid) {
      state.now = std::chrono::steady_clock::now();
      state.valid = true;
    }
    return state.now;
  }

  /// Marks a loop callback on the calling thread for its lifetime (nests).
  class Scope {
   public:
    Scope() {
      State& state = Local();
      ++state.depth;
      state.valid = false;
    }
    ~Scope() {
      State& state = Local();
      --state.depth;
      state.valid = false;
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };

 private:
  struct State {
    MonotonicTime now{};
    int depth = 0;
    bool valid = false;
  };
  static State& Local() {
    thread_local State state;
    return state;
  }
};

}  // namespace ottava
