#pragma once

// The little Hessian 2.0 the Dubbo codec needs: reading strings, ints and string-keyed maps,
// skipping any value without building it, and writing strings. The proxy never decodes call
// arguments into objects: it reads the strings at the start of a request body (dubbo version,
// service path, service version, method, parameter types), walks over the arguments tag by tag
// only to reach the attachments map at the end (it carries `group` and `timeout`), and writes a
// Hessian string as the message of an error response it makes up.
//
// Facts from the Hessian 2.0 serialization grammar: one tag byte, big-endian lengths; string
// lengths count UTF-16 units of UTF-8 encoded text; objects refer to class definitions ('C') by
// index; lists and maps are typed (a type string or a type reference) or untyped, of fixed
// length or ended by 'Z'. Every read is bounded by the input: a length that points past it is
// an error, never a read past the end; nesting is bounded by kMaxDepth.
//
// Threading: plain values; a reader belongs to one call.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ottava::mesh::hessian2 {

/// Deepest nesting of lists, maps and objects a reader walks.
inline constexpr int kMaxDepth = 64;

/// Reads values from the front of a contiguous byte range.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  /// Reads a string; a null ('N') reads as "" with `*was_null` set when given.
  absl::StatusOr<std::string> ReadString(bool* was_null = nullptr);
  /// Reads an int or a long (any of their encodings) as int64.
  absl::StatusOr<int64_t> ReadLong();
  /// Skips one value of any type.
  absl::Status Skip();
  /// Reads a map ('H' or 'M') whose keys are strings; values that are strings or numbers are
  /// kept as text, others skipped. Duplicated keys keep the last value.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadStringMap();

  /// Tag of the next value without consuming it; an error at the end of the input.
  absl::StatusOr<uint8_t> Peek() const;
  size_t offset() const { return at_; }
  bool AtEnd() const { return at_ >= bytes_.size(); }

 private:
  absl::Status SkipValue(int depth);
  absl::Status SkipStringBody(uint8_t tag);
  absl::Status SkipUtf8Units(size_t units);
  absl::Status ReadUtf8Units(size_t units, std::string& out);
  absl::StatusOr<std::string> ReadStringBody(uint8_t tag);
  absl::StatusOr<int64_t> ReadNumberBody(uint8_t tag);
  absl::Status SkipType();
  absl::Status Need(size_t n) const;
  uint8_t Byte() { return static_cast<uint8_t>(bytes_[at_++]); }
  uint64_t BigEndian(size_t n);

  std::string_view bytes_;
  size_t at_ = 0;
  std::vector<size_t> class_field_counts_;  // class definitions seen ('C'), by index
};

/// Whether `tag` starts a string (including a chunked one).
bool IsStringTag(uint8_t tag);

/// Appends `text` as a Hessian string. Bytes that are not valid UTF-8 are written as '?', so
/// the result always decodes.
void WriteString(std::string_view text, std::string& out);

/// Appends an int (the shortest encoding).
void WriteInt(int32_t value, std::string& out);

/// Number of parameter types in a JVM method descriptor's parameter list such as
/// "Ljava/lang/String;I[J" (3); an error when it is malformed.
absl::StatusOr<size_t> CountParameterTypes(std::string_view descriptor);

}  // namespace ottava::mesh::hessian2
