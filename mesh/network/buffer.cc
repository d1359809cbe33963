#include "mesh/network/buffer.h"

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/assert.h"

namespace ottava::mesh {
namespace {

// Slices smaller than this are copied into the destination's tail instead of moved, so that a
// stream of tiny writes (chunk headers, CRLFs) does not turn into a long chain of tiny slices.
constexpr size_t kCoalesceBelow = 512;

}  // namespace

namespace {

// Blocks of kSliceSize kept for reuse by the thread that freed them; bounded so that a burst
// does not pin memory for ever.
constexpr size_t kMaxPooledBlocks = 256;

struct BlockPool {
  std::vector<char*> free;
  ~BlockPool() {
    for (char* block : free) {
      delete[] block;
    }
  }
};

BlockPool& Pool() {
  thread_local BlockPool pool;
  return pool;
}

}  // namespace

void Buffer::BlockDeleter::operator()(char* block) const {
  if (capacity == kSliceSize) {
    BlockPool& pool = Pool();
    if (pool.free.size() < kMaxPooledBlocks) {
      pool.free.push_back(block);
      return;
    }
  }
  delete[] block;
}

Buffer::Slice Buffer::NewSlice(size_t capacity) {
  Slice slice;
  char* block = nullptr;
  if (capacity == kSliceSize) {
    BlockPool& pool = Pool();
    if (!pool.free.empty()) {
      block = pool.free.back();
      pool.free.pop_back();
    }
  }
  if (block == nullptr) {
    block = new char[capacity];
  }
  slice.data = std::unique_ptr<char[], BlockDeleter>(block, BlockDeleter{capacity});
  slice.capacity = capacity;
  return slice;
}

void Buffer::Add(std::string_view data) {
  if (data.empty()) {
    return;
  }
  length_ += data.size();
  if (!slices_.empty()) {
    Slice& tail = slices_.back();
    const size_t n = std::min(tail.Free(), data.size());
    if (n > 0) {
      std::memcpy(tail.data.get() + tail.end, data.data(), n);
      tail.end += n;
      data.remove_prefix(n);
    }
  }
  if (!data.empty()) {
    // One allocation for the rest, however large: a big append stays one slice.
    Slice slice = NewSlice(std::max(kSliceSize, data.size()));
    std::memcpy(slice.data.get(), data.data(), data.size());
    slice.end = data.size();
    slices_.push_back(std::move(slice));
  }
}

void Buffer::Prepend(std::string_view data) {
  if (data.empty()) {
    return;
  }
  length_ += data.size();
  if (!slices_.empty() && slices_.front().start >= data.size()) {
    Slice& front = slices_.front();
    front.start -= data.size();
    std::memcpy(front.data.get() + front.start, data.data(), data.size());
    return;
  }
  Slice slice = NewSlice(data.size());
  std::memcpy(slice.data.get(), data.data(), data.size());
  slice.end = data.size();
  slices_.push_front(std::move(slice));
}

void Buffer::Move(Buffer& other) {
  if (&other == this || other.slices_.empty()) {
    return;
  }
  if (slices_.empty()) {
    slices_ = std::move(other.slices_);
    other.slices_.clear();
    length_ = other.length_;
    other.length_ = 0;
    return;
  }
  Move(other, other.length_);
}

void Buffer::Move(Buffer& other, size_t size) {
  if (&other == this) {
    return;
  }
  size = std::min(size, other.length_);
  // The slice checks guard against a moved-from buffer: buffer.h defaults the move members, which
  // leave the source's length_ behind while its slices are gone.
  while (size > 0 && !other.slices_.empty()) {
    Slice& front = other.slices_.front();
    const size_t front_size = front.Size();
    if (front_size <= size) {
      if (front_size < kCoalesceBelow && !slices_.empty() && slices_.back().Free() >= front_size) {
        Slice& tail = slices_.back();
        std::memcpy(tail.data.get() + tail.end, front.data.get() + front.start, front_size);
        tail.end += front_size;
        other.slices_.pop_front();
      } else {
        slices_.push_back(std::move(front));
        other.slices_.pop_front();
      }
      length_ += front_size;
      other.length_ -= front_size;
      size -= front_size;
    } else {
      // Part of a slice: copy the part, the slice stays with `other`.
      Add(std::string_view(front.data.get() + front.start, size));
      front.start += size;
      other.length_ -= size;
      size = 0;
    }
  }
}

void Buffer::Drain(size_t size) {
  size = std::min(size, length_);
  length_ -= size;
  while (size > 0 && !slices_.empty()) {
    Slice& front = slices_.front();
    const size_t front_size = front.Size();
    if (front_size <= size) {
      size -= front_size;
      slices_.pop_front();
    } else {
      front.start += size;
      size = 0;
    }
  }
}

std::string Buffer::ToString() const {
  std::string out;
  out.reserve(length_);
  for (const Slice& slice : slices_) {
    out.append(slice.data.get() + slice.start, slice.Size());
  }
  return out;
}

void Buffer::CopyOutSlow(size_t offset, size_t size, void* out) const {
  OTTAVA_RELEASE_ASSERT(offset + size <= length_, "Buffer::CopyOut out of range");
  char* dst = static_cast<char*>(out);
  for (const Slice& slice : slices_) {
    if (size == 0) {
      break;
    }
    const size_t slice_size = slice.Size();
    if (offset >= slice_size) {
      offset -= slice_size;
      continue;
    }
    const size_t n = std::min(slice_size - offset, size);
    std::memcpy(dst, slice.data.get() + slice.start + offset, n);
    dst += n;
    size -= n;
    offset = 0;
  }
}

const char* Buffer::Linearize(size_t size) {
  size = std::min(size, length_);
  if (slices_.empty()) {
    return nullptr;
  }
  if (slices_.front().Size() >= size) {
    return slices_.front().data.get() + slices_.front().start;
  }
  Slice joined = NewSlice(std::max(size, kSliceSize));
  size_t remaining = size;
  while (remaining > 0 && !slices_.empty()) {
    Slice& front = slices_.front();
    const size_t n = std::min(front.Size(), remaining);
    std::memcpy(joined.data.get() + joined.end, front.data.get() + front.start, n);
    joined.end += n;
    remaining -= n;
    if (n == front.Size()) {
      slices_.pop_front();
    } else {
      front.start += n;
    }
  }
  slices_.push_front(std::move(joined));
  return slices_.front().data.get();
}

ssize_t Buffer::Search(std::string_view needle, size_t from) const {
  if (needle.empty()) {
    return from <= length_ ? static_cast<ssize_t>(from) : -1;
  }
  if (from >= length_ || needle.size() > length_ - from) {
    return -1;
  }
  // Find candidates for the first byte with memchr slice by slice, then compare the rest, which
  // may run across slice boundaries.
  size_t base = 0;  // offset of the current slice's first byte
  for (size_t i = 0; i < slices_.size(); ++i) {
    const Slice& slice = slices_[i];
    const size_t slice_size = slice.Size();
    if (from >= base + slice_size) {
      base += slice_size;
      continue;
    }
    const char* begin = slice.data.get() + slice.start;
    size_t pos = from > base ? from - base : 0;
    while (pos < slice_size) {
      const void* hit = std::memchr(begin + pos, needle[0], slice_size - pos);
      if (hit == nullptr) {
        break;
      }
      pos = static_cast<const char*>(hit) - begin;
      const size_t offset = base + pos;
      if (needle.size() > length_ - offset) {
        return -1;
      }
      // Compare the remainder, walking forward through slices.
      size_t matched = 1;
      size_t si = i;
      size_t sp = pos + 1;
      while (matched < needle.size()) {
        if (sp == slices_[si].Size()) {
          ++si;
          sp = 0;
          continue;
        }
        const Slice& s = slices_[si];
        const size_t n = std::min(s.Size() - sp, needle.size() - matched);
        if (std::memcmp(s.data.get() + s.start + sp, needle.data() + matched, n) != 0) {
          break;
        }
        matched += n;
        sp += n;
      }
      if (matched == needle.size()) {
        return static_cast<ssize_t>(offset);
      }
      ++pos;
    }
    base += slice_size;
  }
  return -1;
}

size_t Buffer::FrontSlices(iovec* iov, size_t max) const {
  size_t n = 0;
  for (const Slice& slice : slices_) {
    if (n == max) {
      break;
    }
    if (slice.Size() == 0) {
      continue;
    }
    iov[n].iov_base = slice.data.get() + slice.start;
    iov[n].iov_len = slice.Size();
    ++n;
  }
  return n;
}

ssize_t Buffer::ReadFrom(int fd, size_t max_bytes) {
  size_t total = 0;
  while (total < max_bytes) {
    iovec iov[2];
    int count = 0;
    size_t tail_free = 0;
    if (!slices_.empty() && slices_.back().Free() > 0) {
      Slice& tail = slices_.back();
      tail_free = std::min(tail.Free(), max_bytes - total);
      iov[count].iov_base = tail.data.get() + tail.end;
      iov[count].iov_len = tail_free;
      ++count;
    }
    Slice fresh;
    const size_t want_fresh = std::min(kSliceSize, max_bytes - total - tail_free);
    if (want_fresh > 0) {
      fresh = NewSlice(kSliceSize);
      iov[count].iov_base = fresh.data.get();
      iov[count].iov_len = want_fresh;
      ++count;
    }
    const ssize_t n = ::readv(fd, iov, count);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (total > 0) {
        return static_cast<ssize_t>(total);
      }
      return -1;
    }
    if (n == 0) {
      return static_cast<ssize_t>(total);
    }
    size_t got = static_cast<size_t>(n);
    const size_t into_tail = std::min(got, tail_free);
    if (into_tail > 0) {
      slices_.back().end += into_tail;
    }
    if (got > into_tail) {
      fresh.end = got - into_tail;
      slices_.push_back(std::move(fresh));
    }
    length_ += got;
    total += got;
    // A short read means the socket has nothing more right now: skip the read that would only
    // return EAGAIN.
    if (got < tail_free + want_fresh) {
      break;
    }
  }
  return static_cast<ssize_t>(total);
}

ssize_t Buffer::WriteTo(int fd) {
  if (length_ == 0) {
    return 0;
  }
  iovec iov[IOV_MAX];
  const size_t count = FrontSlices(iov, IOV_MAX);
  ssize_t n;
  do {
    n = ::writev(fd, iov, static_cast<int>(count));
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    Drain(static_cast<size_t>(n));
  }
  return n;
}

}  // namespace ottava::mesh
