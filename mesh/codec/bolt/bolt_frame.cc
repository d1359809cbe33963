#include "mesh/codec/bolt/bolt_frame.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>

namespace ottava::mesh::bolt {
namespace {

constexpr uint32_t kNullLength = 0xFFFFFFFFu;

uint16_t Read16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t Read32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

uint8_t* Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
  return p + 2;
}

uint8_t* Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
  return p + 4;
}

bool HasCrc(const RpcHead& head) {
  return head.proto == kProtoV2 && head.ver1 > 1 && (head.switches & kSwitchCrc) != 0;
}

size_t FixedBytes(uint8_t proto, bool request) {
  if (proto == kProtoV1) {
    return request ? kV1RequestHeaderBytes : kV1ResponseHeaderBytes;
  }
  return request ? kV2RequestHeaderBytes : kV2ResponseHeaderBytes;
}

absl::Status ParseHeaderMap(std::string_view area, HeaderMap& out) {
  size_t at = 0;
  auto read_string = [&](std::string_view& value, bool& null) -> absl::Status {
    if (area.size() - at < 4) {
      return absl::InvalidArgumentError("bolt: header map ends inside a length");
    }
    uint32_t length = Read32(reinterpret_cast<const uint8_t*>(area.data() + at));
    at += 4;
    null = length == kNullLength;
    if (null) {
      value = {};
      return absl::OkStatus();
    }
    if (length > area.size() - at) {
      return absl::InvalidArgumentError("bolt: a header map length points past the header map");
    }
    value = area.substr(at, length);
    at += length;
    return absl::OkStatus();
  };
  while (at < area.size()) {
    std::string_view key;
    std::string_view value;
    bool key_null = false;
    bool value_null = false;
    if (absl::Status s = read_string(key, key_null); !s.ok()) {
      return s;
    }
    if (absl::Status s = read_string(value, value_null); !s.ok()) {
      return s;
    }
    if (!key_null) {  // Java's null key: skipped, as MOSN does
      out.AddCased(key, value);
    }
  }
  return absl::OkStatus();
}

size_t HeaderMapBytes(const HeaderMap& headers) {
  size_t n = 0;
  for (const auto& [key, value] : headers) {
    n += 8 + key.size() + value.size();
  }
  return n;
}

}  // namespace

absl::StatusOr<bool> DecodeFrame(Buffer& in, size_t max_frame_bytes, Frame& frame) {
  return DecodeFrame(in, max_frame_bytes, frame.head, frame.request_id, frame.headers,
                     frame.content);
}

absl::StatusOr<bool> DecodeFrame(Buffer& in,
                                 size_t max_frame_bytes,
                                 RpcHead& frame_head,
                                 uint32_t& frame_request_id,
                                 HeaderMap& headers,
                                 Buffer& content) {
  if (in.Length() < 2) {
    return false;
  }
  uint8_t first[3];
  in.CopyOut(0, std::min<size_t>(3, in.Length()), first);
  const uint8_t proto = first[0];
  if (proto != kProtoV1 && proto != kProtoV2) {
    char text[64];
    std::snprintf(text, sizeof(text), "bolt: unknown protocol byte 0x%02x", proto);
    return absl::InvalidArgumentError(text);
  }
  const size_t type_at = proto == kProtoV1 ? 1 : 2;
  if (in.Length() <= type_at) {
    return false;
  }
  const uint8_t type = first[type_at];
  if (type > kTypeOneway) {
    return absl::InvalidArgumentError("bolt: unknown frame type " + std::to_string(type));
  }
  const bool request = type != kTypeResponse;
  const size_t fixed = FixedBytes(proto, request);
  if (in.Length() < fixed) {
    return false;
  }
  uint8_t h[kV2RequestHeaderBytes];
  in.CopyOut(0, fixed, h);
  RpcHead head;
  head.proto = proto;
  size_t at = 1;
  if (proto == kProtoV2) {
    head.ver1 = h[at++];
  }
  head.type = h[at++];
  head.cmd_code = Read16(h + at);
  at += 2;
  if (head.cmd_code != kCmdHeartbeat && head.cmd_code != kCmdRequest &&
      head.cmd_code != kCmdResponse) {
    return absl::InvalidArgumentError("bolt: unknown command code " +
                                      std::to_string(head.cmd_code));
  }
  head.ver2 = h[at++];
  const uint32_t request_id = Read32(h + at);
  at += 4;
  head.codec = h[at++];
  if (proto == kProtoV2) {
    head.switches = h[at++];
  }
  if (request) {
    head.timeout_ms = static_cast<int32_t>(Read32(h + at));
    at += 4;
  } else {
    head.status = Read16(h + at);
    at += 2;
  }
  const size_t class_len = Read16(h + at);
  const size_t header_len = Read16(h + at + 2);
  const size_t content_len = Read32(h + at + 4);
  const size_t crc_len = HasCrc(head) ? kCrcBytes : 0;
  const uint64_t total =
      static_cast<uint64_t>(fixed) + class_len + header_len + content_len + crc_len;
  if (total > max_frame_bytes) {
    return absl::InvalidArgumentError("bolt: a frame of " + std::to_string(total) +
                                      " bytes is over the limit of " +
                                      std::to_string(max_frame_bytes));
  }
  if (in.Length() < total) {
    return false;
  }
  if (crc_len != 0) {
    const size_t covered = static_cast<size_t>(total) - kCrcBytes;
    const char* bytes = in.Linearize(static_cast<size_t>(total));
    const uint32_t expected = Read32(reinterpret_cast<const uint8_t*>(bytes) + covered);
    const uLong actual = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes),
                               static_cast<uInt>(covered));
    if (static_cast<uint32_t>(actual) != expected) {
      return absl::InvalidArgumentError("bolt: CRC32 mismatch");
    }
  }
  // The class and header map are small: copy them out (kept as the head's wire_meta, so an
  // unchanged frame goes out again without serialising its map); the content moves as slices.
  std::string meta(class_len + header_len, '\0');
  if (!meta.empty()) {
    in.CopyOut(fixed, meta.size(), meta.data());
  }
  headers.Clear();
  if (absl::Status parsed =
          ParseHeaderMap(std::string_view(meta).substr(class_len, header_len), headers);
      !parsed.ok()) {
    return parsed;
  }
  headers.MarkFromWire();
  head.SetWireMeta(std::move(meta), class_len);
  in.Drain(fixed + class_len + header_len);
  content.Drain(content.Length());  // no-op for a fresh buffer (a move costs more)
  if (content_len > 0) {
    content.Move(in, content_len);
  }
  if (crc_len != 0) {
    in.Drain(crc_len);
  }
  frame_head = std::move(head);
  frame_request_id = request_id;
  return true;
}

namespace {

// Whether `wire_meta` (a head's wire_meta(): its class_name(), then the header map as received;
// empty once the class was set anew) still holds the map `headers`.
bool WireMetaValid(const HeaderMap& headers, std::string_view wire_meta) {
  return headers.from_wire() && !wire_meta.empty();
}

// The fixed header of a frame into `h` (room for kV2RequestHeaderBytes); returns its size.
size_t WriteFixed(const RpcHead& head,
                  uint32_t request_id,
                  size_t class_len,
                  size_t header_len,
                  size_t content_len,
                  uint8_t* h) {
  // Lengths over the 16-bit fields cannot be framed; the codecs never build such heads (a
  // decoded one fits by construction and made-up ones are small).
  uint8_t* p = h;
  *p++ = head.proto;
  if (head.proto == kProtoV2) {
    *p++ = head.ver1;
  }
  *p++ = head.type;
  p = Put16(p, head.cmd_code);
  *p++ = head.ver2;
  p = Put32(p, request_id);
  *p++ = head.codec;
  if (head.proto == kProtoV2) {
    *p++ = head.switches;
  }
  if (head.type != kTypeResponse) {
    p = Put32(p, static_cast<uint32_t>(head.timeout_ms));
  } else {
    p = Put16(p, head.status);
  }
  p = Put16(p, static_cast<uint16_t>(class_len));
  p = Put16(p, static_cast<uint16_t>(header_len));
  p = Put32(p, static_cast<uint32_t>(content_len));
  return static_cast<size_t>(p - h);
}

// Appends bytes to a frame being encoded, keeping its CRC32 when the frame has a trailer.
class FrameWriter {
 public:
  FrameWriter(const RpcHead& head, Buffer& out) : out_(out), crc_on_(HasCrc(head)) {
    if (crc_on_) {
      crc_ = crc32(0L, Z_NULL, 0);
    }
  }
  void Add(const void* data, size_t size) {
    if (size == 0) {
      return;
    }
    out_.Add(data, size);
    if (crc_on_) {
      crc_ = crc32(crc_, static_cast<const Bytef*>(data), static_cast<uInt>(size));
    }
  }
  void Move(Buffer& data) {
    if (crc_on_ && !data.Empty()) {
      const char* bytes = data.Linearize(data.Length());
      crc_ = crc32(crc_, reinterpret_cast<const Bytef*>(bytes), static_cast<uInt>(data.Length()));
    }
    out_.Move(data);
  }
  void Finish() {
    if (crc_on_) {
      uint8_t trailer[kCrcBytes];
      Put32(trailer, static_cast<uint32_t>(crc_));
      out_.Add(trailer, sizeof(trailer));
    }
  }

 private:
  Buffer& out_;
  const bool crc_on_;
  uLong crc_ = 0;
};

// WriteHeaderMap's sink for a string.
struct StringSink {
  std::string& out;
  void Add(const void* data, size_t size) { out.append(static_cast<const char*>(data), size); }
};

// Writes the header map's entries (length-prefixed keys and values).
template <typename Sink>
void WriteHeaderMap(const HeaderMap& headers, Sink& sink) {
  for (const auto& [key, value] : headers) {
    uint8_t length[4];
    Put32(length, static_cast<uint32_t>(key.size()));
    sink.Add(length, sizeof(length));
    sink.Add(key.data(), key.size());
    Put32(length, static_cast<uint32_t>(value.size()));
    sink.Add(length, sizeof(length));
    sink.Add(value.data(), value.size());
  }
}

}  // namespace

size_t AppendMeta(std::string_view class_name,
                  const HeaderMap& headers,
                  std::string_view wire_meta,
                  std::string& out) {
  if (WireMetaValid(headers, wire_meta)) {
    out.append(wire_meta);
    return wire_meta.size() - class_name.size();
  }
  out.append(class_name);
  StringSink sink{out};
  WriteHeaderMap(headers, sink);
  return HeaderMapBytes(headers);
}

void EncodeFrame(const RpcHead& head,
                 uint32_t request_id,
                 size_t class_len,
                 size_t header_len,
                 std::string_view meta,
                 Buffer& content,
                 Buffer& out) {
  uint8_t h[kV2RequestHeaderBytes];
  const size_t fixed = WriteFixed(head, request_id, class_len, header_len, content.Length(), h);
  FrameWriter writer(head, out);
  writer.Add(h, fixed);
  writer.Add(meta.data(), meta.size());
  writer.Move(content);
  writer.Finish();
}

void EncodeFrame(const RpcHead& head,
                 uint32_t request_id,
                 const HeaderMap& headers,
                 Buffer& content,
                 Buffer& out) {
  const std::string_view class_name = head.class_name();
  const std::string_view wire_meta = head.wire_meta();
  const bool reuse = WireMetaValid(headers, wire_meta);
  const size_t header_len = reuse ? wire_meta.size() - class_name.size() : HeaderMapBytes(headers);
  uint8_t h[kV2RequestHeaderBytes];
  const size_t fixed =
      WriteFixed(head, request_id, class_name.size(), header_len, content.Length(), h);
  FrameWriter writer(head, out);
  writer.Add(h, fixed);
  if (reuse) {
    writer.Add(wire_meta.data(), wire_meta.size());
  } else {
    writer.Add(class_name.data(), class_name.size());
    WriteHeaderMap(headers, writer);
  }
  writer.Move(content);
  writer.Finish();
}

void EncodeHeartbeat(const RpcHead& like, uint32_t request_id, bool response, Buffer& out) {
  RpcHead head;
  head.proto = like.proto;
  head.ver1 = like.ver1;
  head.switches = like.switches;
  head.codec = like.codec;
  head.ver2 = like.ver2;
  head.type = response ? kTypeResponse : kTypeRequest;
  head.cmd_code = kCmdHeartbeat;
  head.timeout_ms = -1;
  head.status = kSuccess;
  Buffer empty;
  EncodeFrame(head, request_id, HeaderMap(), empty, out);
}

int HttpStatusFromBolt(uint16_t status) {
  switch (status) {
    case kSuccess:
      return 200;
    case kServerThreadpoolBusy:
      return 503;
    case kTimeout:
      return 504;
    case kConnectionClosed:
      return 502;
    case kNoProcessor:
      return 404;
    default:
      return 500;
  }
}

std::string StatusName(uint16_t status) {
  const char* name = "unknown status";
  switch (status) {
    case kSuccess:
      name = "success";
      break;
    case kError:
      name = "error";
      break;
    case kServerException:
      name = "server exception";
      break;
    case kUnknown:
      name = "unknown";
      break;
    case kServerThreadpoolBusy:
      name = "server thread pool busy";
      break;
    case kErrorComm:
      name = "communication error";
      break;
    case kNoProcessor:
      name = "no processor";
      break;
    case kTimeout:
      name = "timeout";
      break;
    case kClientSendError:
      name = "client send error";
      break;
    case kCodecException:
      name = "codec exception";
      break;
    case kConnectionClosed:
      name = "connection closed";
      break;
    case kServerSerialException:
      name = "server serialization error";
      break;
    case kServerDeserialException:
      name = "server deserialization error";
      break;
    default:
      break;
  }
  char text[64];
  std::snprintf(text, sizeof(text), "%s (0x%02x)", name, status);
  return text;
}

}  // namespace ottava::mesh::bolt
