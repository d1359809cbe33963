#include "test/support/rpc_clients.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mesh/codec/dubbo/hessian2.h"

namespace ottava::test {
namespace {

constexpr size_t kMaxFrame = 64 << 20;

int MillisLeft(std::chrono::steady_clock::time_point deadline) {
  return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count());
}

// Decodes the next frame of `in`, reading more through `fill` until `timeout_ms` passes.
template <class Frame, class Decode, class Fill>
std::optional<Frame> ReadFrame(mesh::Buffer& in, int timeout_ms, Decode decode, Fill fill) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    Frame frame;
    auto decoded = decode(in, kMaxFrame, frame);
    if (!decoded.ok()) {
      ADD_FAILURE() << decoded.status();
      return std::nullopt;
    }
    if (*decoded) {
      return frame;
    }
    if (!fill(deadline)) {
      return std::nullopt;
    }
  }
}

}  // namespace

FramedClient::FramedClient(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

FramedClient::~FramedClient() {
  ::close(fd_);
}

void FramedClient::SendRaw(const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) {
      ADD_FAILURE() << "send: the connection refused " << bytes.size() - at << " bytes";
      return;
    }
    at += static_cast<size_t>(n);
  }
}

bool FramedClient::Fill(std::chrono::steady_clock::time_point deadline) {
  const int left = MillisLeft(deadline);
  if (left <= 0) {
    return false;
  }
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, left) <= 0) {
    return false;
  }
  char chunk[65536];
  ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  in_.Add(chunk, static_cast<size_t>(n));
  return true;
}

bool FramedClient::WaitClosed(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!closed_ && MillisLeft(deadline) > 0) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char chunk[4096];
      if (::recv(fd_, chunk, sizeof(chunk), 0) <= 0) {
        closed_ = true;
      }
    }
  }
  return closed_;
}

std::string BoltClient::RequestFrame(uint32_t id,
                                     const std::string& content,
                                     const std::string& service,
                                     int32_t timeout_ms,
                                     uint8_t type) {
  mesh::RpcHead head;
  head.type = type;
  head.cmd_code = mesh::bolt::kCmdRequest;
  head.timeout_ms = timeout_ms;
  head.set_class_name(std::string(mesh::bolt::kDefaultRequestClass));
  mesh::HeaderMap headers;
  if (!service.empty()) {
    headers.AddCased("service", service);
  }
  mesh::Buffer body;
  body.Add(content);
  mesh::Buffer out;
  mesh::bolt::EncodeFrame(head, id, headers, body, out);
  return out.ToString();
}

void BoltClient::SendHeartbeat(uint32_t id) {
  mesh::Buffer out;
  mesh::bolt::EncodeHeartbeat(mesh::RpcHead(), id, false, out);
  SendRaw(out.ToString());
}

std::optional<mesh::bolt::Frame> BoltClient::Read(int timeout_ms) {
  return ReadFrame<mesh::bolt::Frame>(
      in_, timeout_ms,
      [](mesh::Buffer& in, size_t max, mesh::bolt::Frame& frame) {
        return mesh::bolt::DecodeFrame(in, max, frame);
      },
      [this](std::chrono::steady_clock::time_point deadline) { return Fill(deadline); });
}

std::string DubboClient::Header(uint8_t flag, uint64_t id, uint32_t length) {
  std::string h = "\xda\xbb";
  h.push_back(static_cast<char>(flag));
  h.push_back('\0');
  for (int i = 7; i >= 0; --i) {
    h.push_back(static_cast<char>(id >> (8 * i)));
  }
  for (int i = 3; i >= 0; --i) {
    h.push_back(static_cast<char>(length >> (8 * i)));
  }
  return h;
}

std::string DubboClient::RequestBody(const std::string& service,
                                     const std::string& argument,
                                     const std::string& group) {
  namespace hessian2 = mesh::hessian2;
  std::string b;
  hessian2::WriteString("2.0.2", b);
  hessian2::WriteString(service, b);
  hessian2::WriteString("1.0.0", b);
  hessian2::WriteString("echo", b);
  hessian2::WriteString("Ljava/lang/String;", b);
  hessian2::WriteString(argument, b);
  b += "H";
  hessian2::WriteString("path", b);
  hessian2::WriteString(service, b);
  if (!group.empty()) {
    hessian2::WriteString("group", b);
    hessian2::WriteString(group, b);
  }
  b += "Z";
  return b;
}

std::string DubboClient::RequestFrame(uint64_t id,
                                      const std::string& argument,
                                      const std::string& service,
                                      const std::string& group,
                                      bool two_way) {
  const std::string body = RequestBody(service, argument, group);
  const uint8_t flag = 0x80 | (two_way ? 0x40 : 0) | 2;
  return Header(flag, id, static_cast<uint32_t>(body.size())) + body;
}

std::optional<mesh::dubbo::Frame> DubboClient::Read(int timeout_ms) {
  return ReadFrame<mesh::dubbo::Frame>(
      in_, timeout_ms,
      [](mesh::Buffer& in, size_t max, mesh::dubbo::Frame& frame) {
        return mesh::dubbo::DecodeFrame(in, max, frame);
      },
      [this](std::chrono::steady_clock::time_point deadline) { return Fill(deadline); });
}

std::string DubboClient::Value(const mesh::dubbo::Frame& frame) {
  const std::string body = frame.body.ToString();
  mesh::hessian2::Reader reader(body);
  auto flag = reader.ReadLong();
  if (!flag.ok() || *flag != 1) {
    return "<not a value>";
  }
  auto text = reader.ReadString();
  return text.ok() ? *text : "<bad string>";
}

}  // namespace ottava::test
