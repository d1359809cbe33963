#pragma once

// A small binary record codec for data that crosses a process boundary (the hot upgrade's state
// transfer, runtime/upgrade/handover.h): fixed-width big-endian integers and length-prefixed
// byte strings, so values are carried byte for byte (JSON could not hold arbitrary bytes).
//
// ByteReader never reads past its input: a short or corrupt input makes that read and every
// later one fail, and ok() turns false. ChunkWriter cuts a stream of records into chunks of
// about `chunk_bytes` each, never splitting a record, so a large store travels as many bounded
// messages instead of one.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ottava {

class ByteWriter {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      out_.push_back(static_cast<char>((v >> shift) & 0xff));
    }
  }
  void U64(uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      out_.push_back(static_cast<char>((v >> shift) & 0xff));
    }
  }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  /// A 4-byte length and the bytes.
  void Bytes(std::string_view v) {
    U32(static_cast<uint32_t>(v.size()));
    out_.append(v.data(), v.size());
  }

  size_t size() const { return out_.size(); }
  /// The bytes written so far; the writer is empty afterwards.
  std::string Take() { return std::exchange(out_, std::string()); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool U8(uint8_t* v) {
    if (!Need(1)) {
      return false;
    }
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t wide = 0;
    if (!Fixed(4, &wide)) {
      return false;
    }
    *v = static_cast<uint32_t>(wide);
    return true;
  }
  bool U64(uint64_t* v) { return Fixed(8, v); }
  bool I64(int64_t* v) {
    uint64_t raw = 0;
    if (!Fixed(8, &raw)) {
      return false;
    }
    *v = static_cast<int64_t>(raw);
    return true;
  }
  bool Bytes(std::string* v) {
    uint32_t length = 0;
    if (!U32(&length) || !Need(length)) {
      return false;
    }
    v->assign(in_.data(), length);
    in_.remove_prefix(length);
    return true;
  }

  /// Whether every byte was consumed.
  bool done() const { return in_.empty(); }
  /// False once a read ran past the end.
  bool ok() const { return ok_; }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  bool Fixed(size_t width, uint64_t* v) {
    if (!Need(width)) {
      return false;
    }
    uint64_t out = 0;
    for (size_t i = 0; i < width; ++i) {
      out = (out << 8) | static_cast<uint8_t>(in_[i]);
    }
    in_.remove_prefix(width);
    *v = out;
    return true;
  }

  std::string_view in_;
  bool ok_ = true;
};

/// Records written through `record()`, closed with EndRecord(), collected into chunks.
class ChunkWriter {
 public:
  explicit ChunkWriter(size_t chunk_bytes) : chunk_bytes_(chunk_bytes) {}

  ByteWriter& record() { return current_; }
  /// Ends a record; starts a new chunk when this one reached the size.
  void EndRecord() {
    if (current_.size() >= chunk_bytes_) {
      chunks_.push_back(current_.Take());
    }
  }
  /// Every chunk (none for no records).
  std::vector<std::string> Finish() {
    if (current_.size() > 0) {
      chunks_.push_back(current_.Take());
    }
    return std::move(chunks_);
  }

 private:
  const size_t chunk_bytes_;
  ByteWriter current_;
  std::vector<std::string> chunks_;
};

}  // namespace ottava
