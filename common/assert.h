#pragma once

// Invariant checks. A failed invariant is a bug: the process logs and aborts.

#include <cstdio>
#include <cstdlib>

#define OTTAVA_RELEASE_ASSERT(cond, msg)                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "ottava: assertion failed at %s:%d: %s: %s\n", __FILE__, __LINE__, \
                   #cond, msg);                                                               \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

#ifdef NDEBUG
#define OTTAVA_ASSERT(cond, msg) \
  do {                           \
    (void)sizeof(cond);          \
  } while (false)
#else
#define OTTAVA_ASSERT(cond, msg) OTTAVA_RELEASE_ASSERT(cond, msg)
#endif
