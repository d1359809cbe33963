#include "test/bench/bolt_wire.h"

#include <cstring>

namespace ottava::bench::bolt {
namespace {

std::string FromHex(const char* hex) {
  std::string out;
  for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0'; i += 2) {
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

uint16_t Get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t Get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

void Put8(std::string* out, uint8_t v) {
  out->push_back(static_cast<char>(v));
}

void Put16(std::string* out, uint16_t v) {
  Put8(out, static_cast<uint8_t>(v >> 8));
  Put8(out, static_cast<uint8_t>(v));
}

void Put32(std::string* out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v));
}

void PutHead(std::string* out, uint8_t type, uint16_t cmdcode, uint32_t request_id) {
  Put8(out, kProtoV1);
  Put8(out, type);
  Put16(out, cmdcode);
  Put8(out, 1);  // ver2
  Put32(out, request_id);
  Put8(out, kCodecHessian2);
}

}  // namespace

const std::string& EchoRequestContent() {
  // Captured from sofa-rpc-node 2.10.0 (test/interop/bolt/encode_request.js encode --service
  // com.example.Echo:1.0 --method echo --args '["hi"]').
  static const std::string* content = new std::string(FromHex(
      "4fbc636f6d2e616c697061792e736f66612e7270632e636f72652e726571756573742e536f66615265717565"
      "7374950a6d6574686f644e616d650d6d6574686f64417267536967731774617267657453657276696365556e"
      "697175654e616d650d7461726765744170704e616d650c7265717565737450726f70736f90046563686f5674"
      "00115b6a6176612e6c616e672e537472696e676e01106a6176612e6c616e672e537472696e677a14636f6d2e"
      "6578616d706c652e4563686f3a312e304e4d077365727669636514636f6d2e6578616d706c652e4563686f3a"
      "312e307a026869"));
  return *content;
}

const std::string& EchoResponseContent() {
  // sofa-rpc-node's answer to echo("hi"), with appResponse "echo:hi" (isError false, no
  // errorMsg, no responseProps).
  static const std::string* content = new std::string(FromHex(
      "4fbe636f6d2e616c697061792e736f66612e7270632e636f72652e726573706f6e73652e536f666152657370"
      "6f6e7365940769734572726f72086572726f724d73670b617070526573706f6e73650d726573706f6e736550"
      "726f70736f90464e076563686f3a68694e"));
  return *content;
}

Parse ParseFrame(const uint8_t* data, size_t len, size_t max_frame, FrameHead* head) {
  if (len < 2) {
    return len > 0 && data[0] != kProtoV1 ? Parse::kBad : Parse::kNeedMore;
  }
  if (data[0] != kProtoV1) {
    return Parse::kBad;
  }
  const bool response = data[1] == kTypeResponse;
  const size_t fixed = response ? kResponseHeaderSize : kRequestHeaderSize;
  if (len < fixed) {
    return Parse::kNeedMore;
  }
  head->type = data[1];
  head->cmdcode = Get16(data + 2);
  head->request_id = Get32(data + 5);
  size_t class_len;
  size_t header_len;
  size_t content_len;
  if (response) {
    head->status = Get16(data + 10);
    head->timeout = 0;
    class_len = Get16(data + 12);
    header_len = Get16(data + 14);
    content_len = Get32(data + 16);
  } else {
    head->status = 0;
    head->timeout = static_cast<int32_t>(Get32(data + 10));
    class_len = Get16(data + 14);
    header_len = Get16(data + 16);
    content_len = Get32(data + 18);
  }
  head->size = fixed + class_len + header_len + content_len;
  if (head->size > max_frame) {
    return Parse::kBad;
  }
  return len >= head->size ? Parse::kFrame : Parse::kNeedMore;
}

void AppendRequest(std::string* out,
                   uint32_t request_id,
                   int32_t timeout_ms,
                   const std::string& service,
                   const std::string& content) {
  static constexpr char kKey[] = "service";
  const size_t class_len = sizeof(kRequestClass) - 1;
  const size_t header_len = 4 + (sizeof(kKey) - 1) + 4 + service.size();
  PutHead(out, kTypeRequest, kCmdRequest, request_id);
  Put32(out, static_cast<uint32_t>(timeout_ms));
  Put16(out, static_cast<uint16_t>(class_len));
  Put16(out, static_cast<uint16_t>(header_len));
  Put32(out, static_cast<uint32_t>(content.size()));
  out->append(kRequestClass, class_len);
  Put32(out, sizeof(kKey) - 1);
  out->append(kKey, sizeof(kKey) - 1);
  Put32(out, static_cast<uint32_t>(service.size()));
  out->append(service);
  out->append(content);
}

void AppendResponse(std::string* out,
                    uint32_t request_id,
                    uint16_t status,
                    const std::string& content) {
  const size_t class_len = sizeof(kResponseClass) - 1;
  PutHead(out, kTypeResponse, kCmdResponse, request_id);
  Put16(out, status);
  Put16(out, static_cast<uint16_t>(class_len));
  Put16(out, 0);
  Put32(out, static_cast<uint32_t>(content.size()));
  out->append(kResponseClass, class_len);
  out->append(content);
}

void AppendHeartbeat(std::string* out, uint32_t request_id) {
  PutHead(out, kTypeRequest, kCmdHeartbeat, request_id);
  Put32(out, 0xffffffffu);  // timeout -1, as MOSN sends it
  Put16(out, 0);
  Put16(out, 0);
  Put32(out, 0);
}

void AppendHeartbeatAck(std::string* out, uint32_t request_id) {
  PutHead(out, kTypeResponse, kCmdHeartbeat, request_id);
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, 0);
  Put32(out, 0);
}

}  // namespace ottava::bench::bolt
