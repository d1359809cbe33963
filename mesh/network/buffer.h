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
#include <deque>
#include <memory>
#include <string>
#include <string_view>

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
  void CopyOut(size_t offset, size_t size, void* out) const;
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
  struct Slice {
    std::unique_ptr<char[]> data;
    size_t capacity = 0;
    size_t start = 0;  // first readable byte
    size_t end = 0;    // one past the last readable byte
    size_t Size() const { return end - start; }
    size_t Free() const { return capacity - end; }
  };
  static Slice NewSlice(size_t capacity);

  std::deque<Slice> slices_;
  size_t length_ = 0;
};

}  // namespace ottava::mesh
