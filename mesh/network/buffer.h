#pragma once

// A byte buffer made of a chain of slices (as Envoy's Buffer::Instance and brpc's IOBuf). Moving
// bytes between buffers moves slices, not bytes; reading from a socket fills the tail slice and
// then fresh ones; writing to a socket hands every slice to one writev.
//
// Threading: a buffer belongs to one thread (a worker) at a time; it takes no locks.

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace ottava::mesh {

class Buffer {
 public:
  /// Size of the slices that reads and small appends allocate.
  static constexpr size_t kSliceSize = 16 * 1024;

  Buffer() = default;
  /// A moved-from buffer is empty.
  Buffer(Buffer&& other) noexcept : slices_(std::move(other.slices_)), length_(other.length_) {
    other.slices_.clear();
    other.length_ = 0;
  }
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      slices_ = std::move(other.slices_);
      length_ = other.length_;
      other.slices_.clear();
      other.length_ = 0;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  /// Appends a copy of `data`.
  void Add(std::string_view data);
  void Add(const void* data, size_t size) {
    Add(std::string_view(static_cast<const char*>(data), size));
  }
  /// Prepends a copy of `data` (used to put back bytes a parser did not consume).
  void Prepend(std::string_view data);
  /// Moves every byte of `other` to the end of this buffer; `other` ends empty.
  void Move(Buffer& other);
  /// Moves the first `size` bytes of `other` (at most its length) to the end of this buffer.
  void Move(Buffer& other, size_t size);
  /// Removes the first `size` bytes (at most the length).
  void Drain(size_t size);
  /// Number of bytes held.
  size_t Length() const { return length_; }
  bool Empty() const { return length_ == 0; }
  /// A copy of every byte (tests, small messages).
  std::string ToString() const;
  /// Copies `size` bytes starting at `offset` into `out` (the range must be within the buffer).
  void CopyOut(size_t offset, size_t size, void* out) const {
    // Most reads (a frame's fixed header) lie in the first slice.
    if (!slices_.empty()) {
      const Slice& front = slices_.front();
      if (offset + size <= front.Size()) {
        std::memcpy(out, front.data.get() + front.start + offset, size);
        return;
      }
    }
    CopyOutSlow(offset, size, out);
  }
  /// Makes the first `size` bytes (at most the length) contiguous and returns them.
  const char* Linearize(size_t size);
  /// Offset of the first occurrence of `needle` at or after `from`, or -1.
  ssize_t Search(std::string_view needle, size_t from = 0) const;

  /// Fills `iov` with up to `max` slices from the front; returns how many it filled.
  size_t FrontSlices(iovec* iov, size_t max) const;
  /// Number of slices held.
  size_t SliceCount() const { return slices_.size(); }

  /// Reads from `fd` (non-blocking) until it would block, EOF, or `max_bytes` were read, into
  /// the buffer's tail. Returns bytes read (0 at EOF) or -1 with errno set (EAGAIN when nothing
  /// was available).
  ssize_t ReadFrom(int fd, size_t max_bytes);
  /// Writes as much as the socket takes with one writev of up to IOV_MAX slices and drains what
  /// was written. Returns bytes written or -1 with errno set.
  ssize_t WriteTo(int fd);

 private:
  /// Returns standard-size blocks to a per-thread free list instead of the allocator: a proxy
  /// allocates and frees a few blocks per request, and glibc's trimming of a churning heap costs
  /// page faults and cross-CPU TLB shootdowns.
  struct BlockDeleter {
    BlockDeleter() noexcept : capacity(0) {}
    explicit BlockDeleter(size_t size) noexcept : capacity(size) {}
    void operator()(char* block) const;
    size_t capacity;
  };
  struct Slice {
    std::unique_ptr<char[], BlockDeleter> data;
    size_t capacity = 0;
    size_t start = 0;  // first readable byte
    size_t end = 0;    // one past the last readable byte
    size_t Size() const { return end - start; }
    size_t Free() const { return capacity - end; }
  };
  static Slice NewSlice(size_t capacity);
  void CopyOutSlow(size_t offset, size_t size, void* out) const;

  /// The slices, front first: a vector with a moving head and room for two slices inline. Unlike
  /// libstdc++'s std::deque, an empty queue owns no memory and a move allocates nothing, and a
  /// buffer of one or two slices (most frames) allocates nothing for its list (a proxy makes and
  /// moves several short-lived buffers per request); popping the front releases that slice at once.
  class SliceQueue {
   public:
    SliceQueue() = default;
    SliceQueue(SliceQueue&& other) noexcept
        : items_(std::move(other.items_)), head_(std::exchange(other.head_, 0)) {
      other.items_.clear();
    }
    SliceQueue& operator=(SliceQueue&& other) noexcept {
      if (this != &other) {
        items_ = std::move(other.items_);
        head_ = std::exchange(other.head_, 0);
        other.items_.clear();
      }
      return *this;
    }

    bool empty() const { return head_ == items_.size(); }
    size_t size() const { return items_.size() - head_; }
    Slice& front() { return items_[head_]; }
    const Slice& front() const { return items_[head_]; }
    Slice& back() { return items_.back(); }
    const Slice& back() const { return items_.back(); }
    Slice& operator[](size_t i) { return items_[head_ + i]; }
    const Slice& operator[](size_t i) const { return items_[head_ + i]; }
    auto begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    auto end() const { return items_.end(); }

    void push_back(Slice&& slice) {
      if (empty()) {
        items_.clear();
        head_ = 0;
      }
      items_.push_back(std::move(slice));
    }
    void push_front(Slice&& slice) {
      if (head_ > 0) {
        items_[--head_] = std::move(slice);
      } else {
        items_.insert(items_.begin(), std::move(slice));
      }
    }
    void pop_front() {
      items_[head_] = Slice();  // frees its block now
      if (++head_ == items_.size()) {
        items_.clear();
        head_ = 0;
      } else if (head_ >= 16 && head_ * 2 >= items_.size()) {
        items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
      }
    }
    void clear() {
      items_.clear();
      head_ = 0;
    }

   private:
    absl::InlinedVector<Slice, 2> items_;
    size_t head_ = 0;
  };

  SliceQueue slices_;
  size_t length_ = 0;
};

}  // namespace ottava::mesh
