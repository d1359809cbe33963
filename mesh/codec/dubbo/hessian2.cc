#include "mesh/codec/dubbo/hessian2.h"

#include <algorithm>
#include <cstdio>

namespace ottava::mesh::hessian2 {
namespace {

absl::Status Truncated() {
  return absl::InvalidArgumentError("hessian2: a value runs past the end of the body");
}

absl::Status BadTag(uint8_t tag, const char* where) {
  char text[96];
  std::snprintf(text, sizeof(text), "hessian2: unexpected tag 0x%02x %s", tag, where);
  return absl::InvalidArgumentError(text);
}

bool IsIntTag(uint8_t tag) {
  return (tag >= 0x80 && tag <= 0xd7) || tag == 'I';
}

bool IsLongTag(uint8_t tag) {
  return tag >= 0xd8 || (tag >= 0x38 && tag <= 0x3f) || tag == 'Y' || tag == 'L';
}

// Length of the UTF-8 sequence led by `lead` and the UTF-16 units it stands for; 0 when `lead`
// cannot start one.
size_t Utf8Length(uint8_t lead, size_t* units) {
  *units = 1;
  if (lead < 0x80) {
    return 1;
  }
  if ((lead & 0xe0) == 0xc0) {
    return 2;
  }
  if ((lead & 0xf0) == 0xe0) {
    return 3;
  }
  if ((lead & 0xf8) == 0xf0) {
    *units = 2;  // a supplementary character is a surrogate pair in Java's count
    return 4;
  }
  return 0;
}

}  // namespace

bool IsStringTag(uint8_t tag) {
  return tag <= 0x1f || (tag >= 0x30 && tag <= 0x33) || tag == 'S' || tag == 'R';
}

absl::Status Reader::Need(size_t n) const {
  if (bytes_.size() - at_ < n) {
    return Truncated();
  }
  return absl::OkStatus();
}

uint64_t Reader::BigEndian(size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v = (v << 8) | Byte();
  }
  return v;
}

absl::StatusOr<uint8_t> Reader::Peek() const {
  if (AtEnd()) {
    return Truncated();
  }
  return static_cast<uint8_t>(bytes_[at_]);
}

absl::Status Reader::SkipUtf8Units(size_t units) {
  while (units > 0) {
    if (AtEnd()) {
      return Truncated();
    }
    size_t used = 0;
    const size_t length = Utf8Length(static_cast<uint8_t>(bytes_[at_]), &used);
    if (length == 0) {
      return absl::InvalidArgumentError("hessian2: a string holds a byte that starts no UTF-8");
    }
    if (absl::Status s = Need(length); !s.ok()) {
      return s;
    }
    at_ += length;
    units -= std::min(units, used);
  }
  return absl::OkStatus();
}

absl::Status Reader::ReadUtf8Units(size_t units, std::string& out) {
  const size_t start = at_;
  if (absl::Status s = SkipUtf8Units(units); !s.ok()) {
    return s;
  }
  out.append(bytes_.substr(start, at_ - start));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Reader::ReadStringBody(uint8_t tag) {
  std::string out;
  while (true) {
    size_t units = 0;
    bool final_chunk = true;
    if (tag <= 0x1f) {
      units = tag;
    } else if (tag >= 0x30 && tag <= 0x33) {
      if (absl::Status s = Need(1); !s.ok()) {
        return s;
      }
      units = (static_cast<size_t>(tag - 0x30) << 8) | Byte();
    } else if (tag == 'S' || tag == 'R') {
      if (absl::Status s = Need(2); !s.ok()) {
        return s;
      }
      units = static_cast<size_t>(BigEndian(2));
      final_chunk = tag == 'S';
    } else {
      return BadTag(tag, "inside a chunked string");
    }
    if (absl::Status s = ReadUtf8Units(units, out); !s.ok()) {
      return s;
    }
    if (final_chunk) {
      return out;
    }
    if (AtEnd()) {
      return Truncated();
    }
    tag = Byte();
  }
}

absl::Status Reader::SkipStringBody(uint8_t tag) {
  // Strings are skipped the way they are read: the length counts characters, not bytes.
  absl::StatusOr<std::string> ignored = ReadStringBody(tag);
  return ignored.status();
}

absl::StatusOr<std::string> Reader::ReadString(bool* was_null) {
  if (was_null != nullptr) {
    *was_null = false;
  }
  if (AtEnd()) {
    return Truncated();
  }
  const uint8_t tag = Byte();
  if (tag == 'N') {
    if (was_null != nullptr) {
      *was_null = true;
    }
    return std::string();
  }
  if (!IsStringTag(tag)) {
    return BadTag(tag, "where a string was expected");
  }
  return ReadStringBody(tag);
}

absl::StatusOr<int64_t> Reader::ReadNumberBody(uint8_t tag) {
  // Each encoding: how many bytes follow the tag, and the bias of the tag's low bits.
  size_t follow = 0;
  int64_t high = 0;
  if (tag >= 0x80 && tag <= 0xbf) {
    return static_cast<int64_t>(tag) - 0x90;
  } else if (tag >= 0xd8 && tag <= 0xef) {
    return static_cast<int64_t>(tag) - 0xe0;
  } else if (tag >= 0xc0 && tag <= 0xcf) {
    follow = 1;
    high = static_cast<int64_t>(tag) - 0xc8;
  } else if (tag >= 0xf0) {
    follow = 1;
    high = static_cast<int64_t>(tag) - 0xf8;
  } else if (tag >= 0xd0 && tag <= 0xd7) {
    follow = 2;
    high = static_cast<int64_t>(tag) - 0xd4;
  } else if (tag >= 0x38 && tag <= 0x3f) {
    follow = 2;
    high = static_cast<int64_t>(tag) - 0x3c;
  } else if (tag == 'I' || tag == 'Y') {
    if (absl::Status s = Need(4); !s.ok()) {
      return s;
    }
    return static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(BigEndian(4))));
  } else if (tag == 'L') {
    if (absl::Status s = Need(8); !s.ok()) {
      return s;
    }
    return static_cast<int64_t>(BigEndian(8));
  } else {
    return BadTag(tag, "where a number was expected");
  }
  if (absl::Status s = Need(follow); !s.ok()) {
    return s;
  }
  return high * (int64_t{1} << (8 * follow)) + static_cast<int64_t>(BigEndian(follow));
}

absl::StatusOr<int64_t> Reader::ReadLong() {
  if (AtEnd()) {
    return Truncated();
  }
  return ReadNumberBody(Byte());
}

absl::Status Reader::SkipType() {
  // type ::= string | int (a reference to a type seen before)
  absl::StatusOr<uint8_t> tag = Peek();
  if (!tag.ok()) {
    return tag.status();
  }
  if (IsStringTag(*tag)) {
    return ReadString().status();
  }
  if (IsIntTag(*tag)) {
    return ReadLong().status();
  }
  return BadTag(*tag, "where a type was expected");
}

absl::Status Reader::Skip() {
  return SkipValue(0);
}

absl::Status Reader::SkipValue(int depth) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError("hessian2: values nested deeper than " +
                                      std::to_string(kMaxDepth));
  }
  if (AtEnd()) {
    return Truncated();
  }
  const uint8_t tag = Byte();
  auto skip_bytes = [this](size_t n) -> absl::Status {
    if (absl::Status s = Need(n); !s.ok()) {
      return s;
    }
    at_ += n;
    return absl::OkStatus();
  };
  auto skip_values = [this, depth](uint64_t n) -> absl::Status {
    for (uint64_t i = 0; i < n; ++i) {
      if (absl::Status s = SkipValue(depth + 1); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  };
  // Values up to 'Z'; with `pairs`, key and value each time.
  auto skip_until_end = [this, depth](bool pairs) -> absl::Status {
    while (true) {
      absl::StatusOr<uint8_t> next = Peek();
      if (!next.ok()) {
        return next.status();
      }
      if (*next == 'Z') {
        ++at_;
        return absl::OkStatus();
      }
      for (int i = 0; i < (pairs ? 2 : 1); ++i) {
        if (absl::Status s = SkipValue(depth + 1); !s.ok()) {
          return s;
        }
      }
    }
  };
  auto read_count = [this]() -> absl::StatusOr<uint64_t> {
    absl::StatusOr<int64_t> n = ReadLong();
    if (!n.ok()) {
      return n.status();
    }
    if (*n < 0 || static_cast<uint64_t>(*n) > bytes_.size()) {
      // Every element takes at least one byte: a larger count cannot fit the body.
      return absl::InvalidArgumentError("hessian2: a length of " + std::to_string(*n) +
                                        " does not fit the body");
    }
    return static_cast<uint64_t>(*n);
  };

  if (tag == 'N' || tag == 'T' || tag == 'F' || tag == 0x5b || tag == 0x5c) {
    return absl::OkStatus();
  }
  if (IsIntTag(tag) || IsLongTag(tag)) {
    return ReadNumberBody(tag).status();
  }
  if (IsStringTag(tag)) {
    return SkipStringBody(tag);
  }
  if (tag >= 0x20 && tag <= 0x2f) {
    return skip_bytes(tag - 0x20);
  }
  if (tag >= 0x34 && tag <= 0x37) {
    if (absl::Status s = Need(1); !s.ok()) {
      return s;
    }
    return skip_bytes((static_cast<size_t>(tag - 0x34) << 8) | Byte());
  }
  switch (tag) {
    case 'A':  // binary chunk, more follow
    case 'B': {
      uint8_t chunk = tag;
      while (true) {
        if (absl::Status s = Need(2); !s.ok()) {
          return s;
        }
        if (absl::Status s = skip_bytes(static_cast<size_t>(BigEndian(2))); !s.ok()) {
          return s;
        }
        if (chunk == 'B') {
          return absl::OkStatus();
        }
        if (AtEnd()) {
          return Truncated();
        }
        chunk = Byte();
        if (chunk >= 0x20 && chunk <= 0x2f) {
          return skip_bytes(chunk - 0x20);
        }
        if (chunk >= 0x34 && chunk <= 0x37) {
          if (absl::Status s = Need(1); !s.ok()) {
            return s;
          }
          return skip_bytes((static_cast<size_t>(chunk - 0x34) << 8) | Byte());
        }
        if (chunk != 'A' && chunk != 'B') {
          return BadTag(chunk, "inside a chunked binary");
        }
      }
    }
    case 'D':  // double
    case 'J':  // date in milliseconds
      return skip_bytes(8);
    case 'K':   // date in minutes
    case 0x5f:  // double as a 32-bit float
      return skip_bytes(4);
    case 0x5d:  // double from a byte
      return skip_bytes(1);
    case 0x5e:  // double from a short
      return skip_bytes(2);
    case 'Q':  // reference to an earlier value
      return ReadLong().status();
    case 'H':  // untyped map
      return skip_until_end(true);
    case 'M':  // typed map
      if (absl::Status s = SkipType(); !s.ok()) {
        return s;
      }
      return skip_until_end(true);
    case 'U':  // typed list, ended by 'Z'
      if (absl::Status s = SkipType(); !s.ok()) {
        return s;
      }
      return skip_until_end(false);
    case 'W':  // untyped list, ended by 'Z'
      return skip_until_end(false);
    case 'V': {  // typed list of a given length
      if (absl::Status s = SkipType(); !s.ok()) {
        return s;
      }
      absl::StatusOr<uint64_t> n = read_count();
      return n.ok() ? skip_values(*n) : n.status();
    }
    case 'X': {  // untyped list of a given length
      absl::StatusOr<uint64_t> n = read_count();
      return n.ok() ? skip_values(*n) : n.status();
    }
    case 'C': {  // class definition: name, field count, field names; then the value it prefixes
      if (absl::Status s = ReadString().status(); !s.ok()) {
        return s;
      }
      absl::StatusOr<uint64_t> fields = read_count();
      if (!fields.ok()) {
        return fields.status();
      }
      for (uint64_t i = 0; i < *fields; ++i) {
        if (absl::Status s = ReadString().status(); !s.ok()) {
          return s;
        }
      }
      class_field_counts_.push_back(static_cast<size_t>(*fields));
      return SkipValue(depth + 1);
    }
    case 'O': {  // object of a class defined earlier
      absl::StatusOr<int64_t> index = ReadLong();
      if (!index.ok()) {
        return index.status();
      }
      if (*index < 0 || static_cast<uint64_t>(*index) >= class_field_counts_.size()) {
        return absl::InvalidArgumentError("hessian2: an object refers to an undefined class");
      }
      return skip_values(class_field_counts_[static_cast<size_t>(*index)]);
    }
    default:
      break;
  }
  if (tag >= 0x60 && tag <= 0x6f) {  // object, class index in the tag
    const size_t index = tag - 0x60;
    if (index >= class_field_counts_.size()) {
      return absl::InvalidArgumentError("hessian2: an object refers to an undefined class");
    }
    return skip_values(class_field_counts_[index]);
  }
  if (tag >= 0x70 && tag <= 0x77) {  // typed list, length in the tag
    if (absl::Status s = SkipType(); !s.ok()) {
      return s;
    }
    return skip_values(tag - 0x70);
  }
  if (tag >= 0x78 && tag <= 0x7f) {  // untyped list, length in the tag
    return skip_values(tag - 0x78);
  }
  return BadTag(tag, "that starts no value");
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Reader::ReadStringMap() {
  if (AtEnd()) {
    return Truncated();
  }
  const uint8_t tag = Byte();
  if (tag == 'M') {
    if (absl::Status s = SkipType(); !s.ok()) {
      return s;
    }
  } else if (tag != 'H') {
    return BadTag(tag, "where a map was expected");
  }
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    absl::StatusOr<uint8_t> next = Peek();
    if (!next.ok()) {
      return next.status();
    }
    if (*next == 'Z') {
      ++at_;
      return out;
    }
    if (!IsStringTag(*next)) {
      if (absl::Status s = Skip(); !s.ok()) {
        return s;
      }
      if (absl::Status s = Skip(); !s.ok()) {
        return s;
      }
      continue;
    }
    absl::StatusOr<std::string> key = ReadString();
    if (!key.ok()) {
      return key.status();
    }
    absl::StatusOr<uint8_t> value_tag = Peek();
    if (!value_tag.ok()) {
      return value_tag.status();
    }
    std::string value;
    if (IsStringTag(*value_tag)) {
      absl::StatusOr<std::string> text = ReadString();
      if (!text.ok()) {
        return text.status();
      }
      value = std::move(*text);
    } else if (IsIntTag(*value_tag) || IsLongTag(*value_tag)) {
      absl::StatusOr<int64_t> number = ReadLong();
      if (!number.ok()) {
        return number.status();
      }
      value = std::to_string(*number);
    } else {
      if (absl::Status s = Skip(); !s.ok()) {
        return s;
      }
      continue;
    }
    bool replaced = false;
    for (auto& [k, v] : out) {
      if (k == *key) {
        v = value;
        replaced = true;
      }
    }
    if (!replaced) {
      out.emplace_back(std::move(*key), std::move(value));
    }
  }
}

void WriteString(std::string_view text, std::string& out) {
  // Keep valid 1-3 byte UTF-8 sequences, replace anything else by '?', and count characters:
  // each kept sequence is one UTF-16 unit.
  std::string clean;
  clean.reserve(text.size());
  std::vector<size_t> starts;  // byte offset of each character in `clean`
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<uint8_t>(text[i]);
    size_t units = 0;
    size_t length = Utf8Length(lead, &units);
    bool valid = length >= 1 && length <= 3 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<uint8_t>(text[i + k]) & 0xc0) == 0x80;
    }
    starts.push_back(clean.size());
    if (valid) {
      clean.append(text.substr(i, length));
      i += length;
    } else {
      clean.push_back('?');
      i += 1;
    }
  }
  starts.push_back(clean.size());
  size_t chars = starts.size() - 1;
  size_t first = 0;
  // Chunks of at most 0xffff characters: 'R' for all but the last.
  while (chars - first > 0xffff) {
    out.push_back('R');
    out.push_back(static_cast<char>(0xff));
    out.push_back(static_cast<char>(0xff));
    out.append(clean, starts[first], starts[first + 0xffff] - starts[first]);
    first += 0xffff;
  }
  const size_t n = chars - first;
  if (n <= 31) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 1023) {
    out.push_back(static_cast<char>(0x30 + (n >> 8)));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back('S');
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  }
  out.append(clean, starts[first], starts[chars] - starts[first]);
}

void WriteInt(int32_t value, std::string& out) {
  if (value >= -16 && value <= 47) {
    out.push_back(static_cast<char>(value + 0x90));
  } else if (value >= -2048 && value <= 2047) {
    out.push_back(static_cast<char>(0xc8 + (value >> 8)));
    out.push_back(static_cast<char>(value & 0xff));
  } else if (value >= -262144 && value <= 262143) {
    out.push_back(static_cast<char>(0xd4 + (value >> 16)));
    out.push_back(static_cast<char>((value >> 8) & 0xff));
    out.push_back(static_cast<char>(value & 0xff));
  } else {
    const auto v = static_cast<uint32_t>(value);
    out.push_back('I');
    out.push_back(static_cast<char>(v >> 24));
    out.push_back(static_cast<char>(v >> 16));
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v));
  }
}

absl::StatusOr<size_t> CountParameterTypes(std::string_view descriptor) {
  size_t count = 0;
  size_t i = 0;
  while (i < descriptor.size()) {
    while (i < descriptor.size() && descriptor[i] == '[') {
      ++i;
    }
    if (i == descriptor.size()) {
      return absl::InvalidArgumentError("dubbo: parameter types end inside an array type");
    }
    const char c = descriptor[i];
    if (c == 'L') {
      const size_t end = descriptor.find(';', i);
      if (end == std::string_view::npos) {
        return absl::InvalidArgumentError("dubbo: a class parameter type has no ';'");
      }
      i = end + 1;
    } else if (std::string_view("ZBCDFIJSV").find(c) != std::string_view::npos) {
      ++i;
    } else {
      return absl::InvalidArgumentError(std::string("dubbo: unknown parameter type '") + c + "'");
    }
    ++count;
  }
  return count;
}

}  // namespace ottava::mesh::hessian2
