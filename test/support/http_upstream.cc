#include "test/support/http_upstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "mesh/codec/message.h"

namespace ottava::test {

// One accepted connection: its socket and the thread serving it. The fd is closed only by Finish,
// under mutex_, so Stop's shutdown() never reaches a reused descriptor.
struct HttpUpstream::Connection {
  int fd = -1;
  bool done = false;  // guarded by mutex_; the thread is about to return
  std::thread thread;
};

namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kPiece = 64 * 1024;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) {
    return "";
  }
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}
bool SendAll(int fd, const std::string& data) {
  return SendAll(fd, data.data(), data.size());
}

// Buffered reads from a blocking socket. Stop() shuts the socket down, which ends any read.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}

  // Reads until the buffer holds "\r\n\r\n"; returns the head (without it) or nothing on EOF,
  // error or a head over kMaxHead (`too_large` set).
  bool ReadHead(std::string* head, bool* too_large) {
    *too_large = false;
    size_t searched = 0;
    while (true) {
      const size_t end = buffer_.find("\r\n\r\n", searched);
      if (end != std::string::npos) {
        *head = buffer_.substr(0, end);
        buffer_.erase(0, end + 4);
        return true;
      }
      if (buffer_.size() > kMaxHead) {
        *too_large = true;
        return false;
      }
      searched = buffer_.size() < 3 ? 0 : buffer_.size() - 3;
      if (!Fill()) {
        return false;
      }
    }
  }

  // Reads a line ending in CRLF (chunk sizes and trailers).
  bool ReadLine(std::string* line) {
    while (true) {
      const size_t end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        *line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return true;
      }
      if (buffer_.size() > kMaxHead || !Fill()) {
        return false;
      }
    }
  }

  // Hands exactly `length` bytes to `sink` in pieces.
  template <typename Sink>
  bool ReadBody(uint64_t length, Sink&& sink) {
    while (length > 0) {
      if (buffer_.empty() && !Fill()) {
        return false;
      }
      const size_t take = static_cast<size_t>(std::min<uint64_t>(length, buffer_.size()));
      sink(buffer_.data(), take);
      buffer_.erase(0, take);
      length -= take;
    }
    return true;
  }

 private:
  bool Fill() {
    char chunk[kPiece];
    while (true) {
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return false;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
  }

  int fd_;
  std::string buffer_;
};

struct Head {
  std::string method;
  std::string path;
  std::string query;
  std::string version;
  std::vector<std::pair<std::string, std::string>> headers;
};

bool ParseHead(const std::string& text, Head* head) {
  const size_t line_end = text.find("\r\n");
  const std::string line = text.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) {
    return false;
  }
  head->method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  head->version = line.substr(sp2 + 1);
  if (head->version.rfind("HTTP/1.", 0) != 0 || target.empty()) {
    return false;
  }
  const size_t question = target.find('?');
  head->path = target.substr(0, question);
  head->query = question == std::string::npos ? "" : target.substr(question + 1);
  size_t pos = line_end == std::string::npos ? text.size() : line_end + 2;
  while (pos < text.size()) {
    size_t end = text.find("\r\n", pos);
    if (end == std::string::npos) {
      end = text.size();
    }
    const std::string header = text.substr(pos, end - pos);
    const size_t colon = header.find(':');
    if (colon == std::string::npos || colon == 0) {
      return false;
    }
    head->headers.emplace_back(Lower(Trim(header.substr(0, colon))),
                               Trim(header.substr(colon + 1)));
    pos = end + 2;
  }
  return true;
}

std::string HeaderOf(const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& name) {
  for (const auto& [key, value] : headers) {
    if (key == name) {
      return value;
    }
  }
  return "";
}

std::string Hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// The byte at offset i of a /bytes/N answer: a repeating alphabet, so truncation or reordering
// shows.
char PatternByte(uint64_t i) {
  return static_cast<char>('a' + i % 26);
}

}  // namespace

std::string RecordedRequest::Header(const std::string& name) const {
  return HeaderOf(headers, name);
}

uint64_t HttpUpstream::BodyChecksum(const std::string& bytes, uint64_t seed) {
  uint64_t hash = seed;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

HttpUpstream::HttpUpstream(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<HttpUpstream>> HttpUpstream::Start(Options options) {
  std::unique_ptr<HttpUpstream> upstream(new HttpUpstream(std::move(options)));
  std::lock_guard<std::mutex> control(upstream->control_mutex_);
  if (absl::Status listening = upstream->Listen(0); !listening.ok()) {
    return listening;
  }
  return upstream;
}

HttpUpstream::~HttpUpstream() {
  Stop();
}

std::string HttpUpstream::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

bool HttpUpstream::running() const {
  std::lock_guard<std::mutex> control(control_mutex_);
  return listen_fd_ >= 0;
}

absl::Status HttpUpstream::Listen(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(std::string("socket: ") + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 1024) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    return absl::UnavailableError("cannot listen on 127.0.0.1:" + std::to_string(port) + ": " +
                                  error);
  }
  socklen_t length = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) {
    ::close(fd);
    return absl::InternalError(std::string("pipe: ") + std::strerror(errno));
  }
  if (port == 0) {
    port_ = ntohs(addr.sin_port);  // Restart keeps it: address() reads it without a lock
  }
  listen_fd_ = fd;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
  }
  accept_thread_ = std::thread([this, fd, wake = wake_pipe_[0]] { AcceptLoop(fd, wake); });
  return absl::OkStatus();
}

absl::Status HttpUpstream::Restart() {
  std::lock_guard<std::mutex> control(control_mutex_);
  if (listen_fd_ >= 0) {
    return absl::FailedPreconditionError("the upstream " + options_.name + " is running");
  }
  return Listen(port_);
}

void HttpUpstream::Stop() {
  std::lock_guard<std::mutex> control(control_mutex_);
  if (listen_fd_ < 0) {
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  const char byte = 0;
  (void)!::write(wake_pipe_[1], &byte, 1);
  accept_thread_.join();
  ::close(listen_fd_);
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
  listen_fd_ = -1;
  wake_pipe_[0] = wake_pipe_[1] = -1;

  // No new connection can appear now; end the open ones and wait for their threads.
  std::list<std::unique_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& connection : connections_list_) {
      if (connection->fd >= 0) {
        ::shutdown(connection->fd, SHUT_RDWR);
      }
    }
    connections.swap(connections_list_);
  }
  for (const auto& connection : connections) {
    connection->thread.join();
  }
}

void HttpUpstream::SetStatus(int status) {
  status_.store(status);
}
void HttpUpstream::SetDelay(std::chrono::milliseconds delay) {
  delay_ms_.store(delay.count());
}
void HttpUpstream::SetMode(Mode mode) {
  mode_.store(mode);
}

std::vector<RecordedRequest> HttpUpstream::Recorded() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {recorded_.begin(), recorded_.end()};
}

void HttpUpstream::AcceptLoop(int listen_fd, int wake_fd) {
  while (true) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    connections_.fetch_add(1, std::memory_order_relaxed);
    ReapFinished();
    std::lock_guard<std::mutex> lock(mutex_);
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    Connection* raw = connection.get();
    connections_list_.push_back(std::move(connection));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void HttpUpstream::ReapFinished() {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = connections_list_.begin(); it != connections_list_.end();) {
      if ((*it)->done) {
        finished.push_back(std::move(*it));
        it = connections_list_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& connection : finished) {
    connection->thread.join();
  }
}

void HttpUpstream::Finish(Connection* connection, bool reset) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reset) {
    // SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
    const linger option{1, 0};
    ::setsockopt(connection->fd, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
  }
  ::close(connection->fd);
  connection->fd = -1;
  connection->done = true;
}

bool HttpUpstream::WaitDelay(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !stop_cv_.wait_for(lock, delay, [this] { return stopping_; });
}

void HttpUpstream::Serve(Connection* connection) {
  const int fd = connection->fd;
  Reader reader(fd);
  while (true) {
    std::string text;
    bool too_large = false;
    if (!reader.ReadHead(&text, &too_large)) {
      if (too_large) {
        SendAll(fd,
                "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n");
      }
      break;
    }
    Head head;
    const bool parsed = ParseHead(text, &head);
    requests_.fetch_add(1, std::memory_order_relaxed);
    const Mode mode = mode_.load();
    if (mode == Mode::kResetOnRequest) {
      Finish(connection, /*reset=*/true);
      return;
    }
    if (mode == Mode::kGarbage) {
      SendAll(fd, "\x01\x02garbage, not HTTP at all\r\n\xff\xfe\r\n\r\n");
      break;
    }
    if (!parsed) {
      SendAll(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      break;
    }

    // curl sends this before bodies over 1 MiB and waits a second for the interim answer.
    if (Lower(HeaderOf(head.headers, "expect")) == "100-continue" &&
        !SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) {
      break;
    }
    // The body: Content-Length or chunked, stored up to kMaxStoredBody, always counted.
    RecordedRequest record;
    record.body_checksum = kChecksumSeed;
    auto sink = [&record](const char* data, size_t size) {
      for (size_t i = 0; i < size; ++i) {
        record.body_checksum ^= static_cast<unsigned char>(data[i]);
        record.body_checksum *= 1099511628211ULL;
      }
      record.body_length += size;
      if (record.body_length <= kMaxStoredBody) {
        record.body.append(data, size);
      } else {
        record.body.clear();
        record.body.shrink_to_fit();
      }
    };
    bool body_ok = true;
    if (Lower(HeaderOf(head.headers, "transfer-encoding")).find("chunked") != std::string::npos) {
      while (body_ok) {
        std::string line;
        if (!reader.ReadLine(&line)) {
          body_ok = false;
          break;
        }
        const uint64_t size = std::strtoull(line.c_str(), nullptr, 16);
        if (size == 0) {
          // Trailers, up to the empty line.
          while ((body_ok = reader.ReadLine(&line)) && !line.empty()) {
          }
          break;
        }
        std::string crlf;
        body_ok = reader.ReadBody(size, sink) && reader.ReadLine(&crlf) && crlf.empty();
      }
    } else if (const std::string length = HeaderOf(head.headers, "content-length");
               !length.empty()) {
      body_ok = reader.ReadBody(std::strtoull(length.c_str(), nullptr, 10), sink);
    }
    if (!body_ok) {
      break;
    }
    record.method = head.method;
    record.path = head.path;
    record.query = head.query;
    record.headers = head.headers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      recorded_.push_back(record);
      while (recorded_.size() > options_.max_recorded) {
        recorded_.pop_front();
      }
    }

    const std::string connection_header = Lower(HeaderOf(head.headers, "connection"));
    const bool keep_alive = head.version == "HTTP/1.1"
                                ? connection_header.find("close") == std::string::npos
                                : connection_header.find("keep-alive") != std::string::npos;
    if (const auto delay = std::chrono::milliseconds(delay_ms_.load()); delay.count() > 0) {
      if (!WaitDelay(delay)) {
        break;  // stopping
      }
    }
    const int status = status_.load();
    std::string common = "x-upstream: " + options_.name + "\r\n";
    if (!keep_alive) {
      common += "Connection: close\r\n";
    } else if (head.version != "HTTP/1.1") {
      common += "Connection: keep-alive\r\n";
    }
    const std::string status_line = "HTTP/1.1 " + std::to_string(status) + " " +
                                    std::string(mesh::ReasonPhrase(status)) + "\r\n";

    bool sent = true;
    if (head.path.rfind("/bytes/", 0) == 0) {
      const uint64_t total = std::strtoull(head.path.c_str() + 7, nullptr, 10);
      const bool chunked = ("&" + head.query + "&").find("&chunked=1&") != std::string::npos;
      std::string out = status_line + common + "Content-Type: application/octet-stream\r\n" +
                        (chunked ? std::string("Transfer-Encoding: chunked\r\n")
                                 : "Content-Length: " + std::to_string(total) + "\r\n") +
                        "\r\n";
      sent = SendAll(fd, out);
      std::string piece;
      for (uint64_t offset = 0; sent && offset < total && head.method != "HEAD";) {
        const size_t size = static_cast<size_t>(std::min<uint64_t>(kPiece, total - offset));
        piece.resize(size);
        for (size_t i = 0; i < size; ++i) {
          piece[i] = PatternByte(offset + i);
        }
        offset += size;
        if (chunked) {
          char size_line[32];
          std::snprintf(size_line, sizeof(size_line), "%zx\r\n", size);
          sent = SendAll(fd, size_line) && SendAll(fd, piece) && SendAll(fd, "\r\n");
        } else {
          sent = SendAll(fd, piece);
        }
      }
      if (sent && chunked && head.method != "HEAD") {
        sent = SendAll(fd, "0\r\n\r\n");
      }
    } else {
      nlohmann::ordered_json echo;
      echo["upstream"] = options_.name;
      echo["method"] = record.method;
      echo["path"] = record.path;
      echo["query"] = record.query;
      nlohmann::ordered_json headers = nlohmann::ordered_json::object();
      for (const auto& [name, value] : record.headers) {
        if (headers.contains(name)) {
          headers[name] = headers[name].get<std::string>() + ", " + value;
        } else {
          headers[name] = value;
        }
      }
      echo["headers"] = headers;
      echo["body_length"] = record.body_length;
      echo["body_checksum"] = Hex(record.body_checksum);
      if (record.body_length <= kMaxStoredBody) {
        echo["body"] = record.body;
      }
      // Bodies are arbitrary bytes: invalid UTF-8 becomes U+FFFD rather than an exception.
      const std::string body = echo.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      sent = SendAll(fd, status_line + common + "Content-Type: application/json\r\n" +
                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                             (head.method == "HEAD" ? "" : body));
    }
    if (!sent || !keep_alive) {
      break;
    }
  }
  Finish(connection, /*reset=*/false);
}

}  // namespace ottava::test
