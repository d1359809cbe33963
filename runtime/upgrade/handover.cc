#include "runtime/upgrade/handover.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ottava::runtime::upgrade {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(what + ": " + std::strerror(errno));
}

absl::Status WaitReadable(int socket, Deadline deadline) {
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return absl::DeadlineExceededError("no answer in time");
    }
    pollfd p{socket, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (rc > 0) {
      return absl::OkStatus();
    }
    if (rc < 0 && errno != EINTR) {
      return Errno("poll");
    }
  }
}

absl::Status ReadExactly(
    int socket, char* out, size_t size, Deadline deadline, std::vector<int>* fds) {
  size_t done = 0;
  while (done < size) {
    if (absl::Status status = WaitReadable(socket, deadline); !status.ok()) {
      return status;
    }
    iovec iov{out + done, size - done};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return Errno("recvmsg");
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int* received = reinterpret_cast<const int*>(CMSG_DATA(c));
        for (size_t i = 0; i < count; ++i) {
          fds->push_back(received[i]);
        }
      }
    }
    if (n == 0) {
      return absl::UnavailableError("peer closed the control connection");
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

Message::~Message() {
  for (int fd : fds) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
}

std::string Message::type() const {
  if (body.is_object() && body.contains("type") && body["type"].is_string()) {
    return body["type"].get<std::string>();
  }
  return "";
}

std::string ControlSocketPath(const std::string& socket_dir) {
  return (socket_dir.empty() ? std::string(".") : socket_dir) + "/ottava-upgrade.sock";
}

absl::Status SendMessage(int socket,
                         const nlohmann::json& body,
                         const std::vector<int>& fds,
                         const std::string& payload) {
  if (fds.size() > kMaxFds) {
    return absl::ResourceExhaustedError("too many sockets to hand over");
  }
  if (payload.size() > kMaxPayloadBytes) {
    return absl::ResourceExhaustedError("handover payload over " +
                                        std::to_string(kMaxPayloadBytes) + " bytes");
  }
  std::string text;
  if (payload.empty()) {
    text = body.dump();
  } else {
    nlohmann::json with_length = body;
    with_length["payload_bytes"] = payload.size();
    text = with_length.dump();
  }
  if (text.size() > kMaxMessageBytes) {
    return absl::ResourceExhaustedError("handover message over " +
                                        std::to_string(kMaxMessageBytes) + " bytes");
  }
  const uint32_t length = static_cast<uint32_t>(text.size());
  const unsigned char header[4] = {
      static_cast<unsigned char>(length >> 24), static_cast<unsigned char>(length >> 16),
      static_cast<unsigned char>(length >> 8), static_cast<unsigned char>(length)};
  iovec iov[3] = {{const_cast<unsigned char*>(header), sizeof(header)},
                  {const_cast<char*>(text.data()), text.size()},
                  {const_cast<char*>(payload.data()), payload.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 2 : 3;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  size_t total = sizeof(header) + text.size() + payload.size();
  size_t sent = 0;
  while (sent < total) {
    ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Errno("sendmsg");
    }
    sent += static_cast<size_t>(n);
    // The fds went with the first bytes; send the rest as plain data.
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
    size_t skip = static_cast<size_t>(n);
    while (msg.msg_iovlen > 0 && skip >= msg.msg_iov[0].iov_len) {
      skip -= msg.msg_iov[0].iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + skip;
      msg.msg_iov[0].iov_len -= skip;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Message> ReceiveMessage(int socket, Deadline deadline) {
  Message message;
  unsigned char header[4];
  if (absl::Status status = ReadExactly(socket, reinterpret_cast<char*>(header), sizeof(header),
                                        deadline, &message.fds);
      !status.ok()) {
    return status;
  }
  const uint32_t length = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
                          (uint32_t{header[2]} << 8) | uint32_t{header[3]};
  if (length > kMaxMessageBytes) {
    return absl::InvalidArgumentError("handover message of " + std::to_string(length) +
                                      " bytes: not an Ottava upgrade peer?");
  }
  std::string text(length, '\0');
  if (absl::Status status = ReadExactly(socket, text.data(), length, deadline, &message.fds);
      !status.ok()) {
    return status;
  }
  message.body = nlohmann::json::parse(text, nullptr, false);
  if (message.body.is_discarded() || !message.body.is_object()) {
    return absl::InvalidArgumentError("handover message is not a JSON object");
  }
  if (auto found = message.body.find("payload_bytes"); found != message.body.end()) {
    if (!found->is_number_unsigned() || found->get<uint64_t>() > kMaxPayloadBytes) {
      return absl::InvalidArgumentError("handover payload of a bad size: " + found->dump());
    }
    message.payload.resize(found->get<uint64_t>());
    if (absl::Status status = ReadExactly(socket, message.payload.data(), message.payload.size(),
                                          deadline, &message.fds);
        !status.ok()) {
      return status;
    }
  }
  return message;
}

absl::StatusOr<Message> Expect(int socket, const std::string& type, Deadline deadline) {
  absl::StatusOr<Message> message = ReceiveMessage(socket, deadline);
  if (!message.ok()) {
    return absl::Status(message.status().code(),
                        "waiting for '" + type + "': " + std::string(message.status().message()));
  }
  if (message->type() == "refused") {
    return absl::FailedPreconditionError(message->body.value("error", std::string("refused")));
  }
  if (message->type() != type) {
    return absl::InvalidArgumentError("expected '" + type + "', got '" + message->type() + "'");
  }
  return message;
}

absl::StatusOr<int> ConnectControlSocket(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError("control socket path too long: " + path);
  }
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Errno("socket");
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    absl::Status status = absl::UnavailableError("no running Ottava answers on " + path + ": " +
                                                 std::strerror(errno));
    ::close(fd);
    return status;
  }
  return fd;
}

absl::StatusOr<int> ListenControlSocket(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError("control socket path too long: " + path);
  }
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (absl::StatusOr<int> live = ConnectControlSocket(path); live.ok()) {
    ::close(*live);
    return absl::AlreadyExistsError("another Ottava already listens on " + path);
  }
  ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return Errno("socket");
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, 16) != 0) {
    absl::Status status = Errno("cannot listen on " + path);
    ::close(fd);
    return status;
  }
  return fd;
}

}  // namespace ottava::runtime::upgrade
