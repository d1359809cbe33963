#pragma once

// Per-thread free lists of fixed-size blocks, for objects a proxy worker makes and destroys once
// or more per request (request and response heads, streams, their list and map nodes). A block
// freed goes back to the list of the thread that frees it; the next allocation of that size on
// the thread takes it without a call into the allocator. Each list keeps at most kMaxFreeBlocks
// blocks (a burst does not pin memory for ever) and returns them to the allocator when its
// thread exits.
//
// Two ways in: a class declares OTTAVA_POOLED_NEW(Class) to route `new Class` and `delete` to
// these lists (other sizes, such as a derived class, go to the global operator new), and
// standard containers take PooledAllocator<T> for their nodes.
//
// Threading: each thread has its own lists; no locks. A block may be freed on another thread
// than the one that allocated it (it then joins that thread's list).

#include <cstddef>
#include <new>

namespace ottava {

inline constexpr size_t kMaxFreeBlocks = 4096;

/// The free list of blocks of `kSize` bytes for the calling thread.
template <size_t kSize>
class ThreadFreeList {
 public:
  static_assert(kSize >= sizeof(void*), "a free block holds the link to the next one");

  /// A block of kSize bytes aligned for any object of that size (operator new's alignment).
  static void* Allocate() {
#if defined(__SANITIZE_ADDRESS__)
    return ::operator new(kSize);  // ASan sees every object's own lifetime
#endif
    Lists& lists = Local();
    if (lists.head != nullptr) {
      Node* node = lists.head;
      lists.head = node->next;
      --lists.count;
      return node;
    }
    return ::operator new(kSize);
  }

  /// Takes back a block Allocate returned (on any thread).
  static void Free(void* block) {
#if defined(__SANITIZE_ADDRESS__)
    ::operator delete(block);
    return;
#endif
    Lists& lists = Local();
    if (lists.count >= kMaxFreeBlocks) {
      ::operator delete(block);
      return;
    }
    Node* node = static_cast<Node*>(block);
    node->next = lists.head;
    lists.head = node;
    ++lists.count;
  }

 private:
  struct Node {
    Node* next;
  };
  struct Lists {
    Node* head = nullptr;
    size_t count = 0;
    ~Lists() {
      while (head != nullptr) {
        Node* next = head->next;
        ::operator delete(head);
        head = next;
      }
    }
  };
  static Lists& Local() {
    thread_local Lists lists;
    return lists;
  }
};

/// A standard allocator whose single-object allocations (list and map nodes) come from the
/// thread's free list for their size; arrays (hash buckets) go to the global operator new.
template <typename T>
class PooledAllocator {
 public:
  using value_type = T;

  PooledAllocator() noexcept = default;
  template <typename U>
  PooledAllocator(const PooledAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  T* allocate(size_t n) {
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "over-aligned for the lists");
    if (n == 1) {
      return static_cast<T*>(ThreadFreeList<RoundedSize()>::Allocate());
    }
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n == 1) {
      ThreadFreeList<RoundedSize()>::Free(p);
      return;
    }
    ::operator delete(p);
  }

  template <typename U>
  bool operator==(const PooledAllocator<U>&) const noexcept {
    return true;
  }

 private:
  static constexpr size_t RoundedSize() {
    return sizeof(T) < sizeof(void*) ? sizeof(void*) : sizeof(T);
  }
};

}  // namespace ottava

/// Inside a class: `new Class` and `delete` of a Class take blocks from the thread's free list
/// (see ThreadFreeList). Objects of a derived, larger class use the global operator new.
#define OTTAVA_POOLED_NEW(Class)                                   \
  static void* operator new(size_t size) {                         \
    if (size == sizeof(Class)) {                                   \
      return ::ottava::ThreadFreeList<sizeof(Class)>::Allocate();  \
    }                                                              \
    return ::operator new(size);                                   \
  }                                                                \
  static void operator delete(void* block, size_t size) noexcept { \
    if (size == sizeof(Class)) {                                   \
      ::ottava::ThreadFreeList<sizeof(Class)>::Free(block);        \
      return;                                                      \
    }                                                              \
    ::operator delete(block);                                      \
  }
