#include "mesh/codec/dubbo/dubbo_frame.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "mesh/codec/dubbo/hessian2.h"

namespace ottava::mesh::dubbo {
namespace {

uint64_t ReadBe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

void PutBe(uint8_t* p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    p[n - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  }
}

}  // namespace

absl::StatusOr<bool> DecodeFrame(Buffer& in, size_t max_frame_bytes, Frame& frame) {
  const size_t have = in.Length();
  if (have == 0) {
    return false;
  }
  // Check the magic as soon as its bytes are there, so garbage is refused without waiting for a
  // whole header.
  uint8_t h[kHeaderBytes];
  in.CopyOut(0, std::min(have, kHeaderBytes), h);
  if (h[0] != (kMagic >> 8) || (have >= 2 && h[1] != (kMagic & 0xff))) {
    char text[64];
    std::snprintf(text, sizeof(text), "dubbo: bad magic 0x%02x%02x (expected 0xdabb)", h[0],
                  have >= 2 ? h[1] : 0);
    return absl::InvalidArgumentError(text);
  }
  if (have < kHeaderBytes) {
    return false;
  }
  const auto body_len = static_cast<int32_t>(static_cast<uint32_t>(ReadBe(h + 12, 4)));
  if (body_len < 0) {
    return absl::InvalidArgumentError("dubbo: negative body length " + std::to_string(body_len));
  }
  const uint64_t total = kHeaderBytes + static_cast<uint64_t>(body_len);
  if (total > max_frame_bytes) {
    return absl::InvalidArgumentError("dubbo: a frame of " + std::to_string(total) +
                                      " bytes is over the limit of " +
                                      std::to_string(max_frame_bytes));
  }
  if (have < total) {
    return false;
  }
  frame.flag = h[2];
  frame.status = h[3];
  frame.request_id = ReadBe(h + 4, 8);
  in.Drain(kHeaderBytes);
  frame.body = Buffer();
  if (body_len > 0) {
    frame.body.Move(in, static_cast<size_t>(body_len));
  }
  return true;
}

void EncodeFrame(uint8_t flag, uint8_t status, uint64_t request_id, Buffer& body, Buffer& out) {
  uint8_t h[kHeaderBytes];
  PutBe(h, kMagic, 2);
  h[2] = flag;
  h[3] = status;
  PutBe(h + 4, request_id, 8);
  PutBe(h + 12, body.Length(), 4);
  out.Add(h, sizeof(h));
  out.Move(body);
}

void EncodeHeartbeat(uint64_t request_id, bool response, Buffer& out) {
  Buffer body;
  body.Add(&kNullBody, 1);
  const uint8_t flag = response
                           ? (kFlagEvent | kSerializationHessian2)
                           : (kFlagRequest | kFlagTwoWay | kFlagEvent | kSerializationHessian2);
  EncodeFrame(flag, response ? kOk : 0, request_id, body, out);
}

void EncodeErrorResponse(uint64_t request_id,
                         uint8_t serialization,
                         uint8_t status,
                         std::string_view message,
                         Buffer& out) {
  std::string text;
  hessian2::WriteString(message, text);
  Buffer body;
  body.Add(text);
  EncodeFrame(serialization & kSerializationMask, status, request_id, body, out);
}

absl::StatusOr<RequestInfo> ParseRequestBody(std::string_view body) {
  hessian2::Reader reader(body);
  RequestInfo info;
  std::string* fields[] = {&info.dubbo_version, &info.service, &info.version, &info.method};
  for (std::string* field : fields) {
    absl::StatusOr<std::string> value = reader.ReadString();
    if (!value.ok()) {
      return absl::InvalidArgumentError("dubbo: request body: " +
                                        std::string(value.status().message()));
    }
    *field = std::move(*value);
  }
  if (info.service.empty()) {
    return absl::InvalidArgumentError("dubbo: request body has no service path");
  }
  // Dubbox clients put an int before the parameter types.
  if (absl::StatusOr<uint8_t> tag = reader.Peek(); tag.ok() && !hessian2::IsStringTag(*tag)) {
    if (!reader.ReadLong().ok()) {
      return absl::InvalidArgumentError("dubbo: request body has no parameter types");
    }
  }
  absl::StatusOr<std::string> types = reader.ReadString();
  if (!types.ok()) {
    return absl::InvalidArgumentError("dubbo: request body: parameter types: " +
                                      std::string(types.status().message()));
  }
  info.parameter_types = std::move(*types);
  // From here on a failure only means the attachments are unknown: the frame still routes by
  // service, and its bytes go upstream unchanged for the provider to judge.
  absl::StatusOr<size_t> arguments = hessian2::CountParameterTypes(info.parameter_types);
  if (!arguments.ok()) {
    return info;
  }
  for (size_t i = 0; i < *arguments; ++i) {
    if (!reader.Skip().ok()) {
      return info;
    }
  }
  if (reader.AtEnd()) {
    info.attachments_read = true;  // no attachments map at all
    return info;
  }
  auto attachments = reader.ReadStringMap();
  if (!attachments.ok()) {
    return info;
  }
  info.attachments_read = true;
  for (const auto& [key, value] : *attachments) {
    if (key == "group") {
      info.group = value;
    } else if (key == "timeout") {
      char* end = nullptr;
      const long long ms = std::strtoll(value.c_str(), &end, 10);
      if (end != value.c_str() && *end == '\0' && ms > 0) {
        info.timeout_ms = ms;
      }
    }
  }
  return info;
}

int HttpStatusFromDubbo(uint8_t status) {
  switch (status) {
    case kOk:
      return 200;
    case kClientTimeout:
    case kServerTimeout:
      return 504;
    case kBadRequest:
      return 400;
    case kBadResponse:
      return 502;
    case kServiceNotFound:
      return 404;
    case kServerThreadpoolExhausted:
      return 503;
    default:
      return 500;
  }
}

std::string StatusName(uint8_t status) {
  const char* name = "UNKNOWN";
  switch (status) {
    case kOk:
      name = "OK";
      break;
    case kClientTimeout:
      name = "CLIENT_TIMEOUT";
      break;
    case kServerTimeout:
      name = "SERVER_TIMEOUT";
      break;
    case kBadRequest:
      name = "BAD_REQUEST";
      break;
    case kBadResponse:
      name = "BAD_RESPONSE";
      break;
    case kServiceNotFound:
      name = "SERVICE_NOT_FOUND";
      break;
    case kServiceError:
      name = "SERVICE_ERROR";
      break;
    case kServerError:
      name = "SERVER_ERROR";
      break;
    case kClientError:
      name = "CLIENT_ERROR";
      break;
    case kServerThreadpoolExhausted:
      name = "SERVER_THREADPOOL_EXHAUSTED";
      break;
    default:
      break;
  }
  return std::string(name) + " (" + std::to_string(status) + ")";
}

}  // namespace ottava::mesh::dubbo
