#include "mesh/codec/http1/http1_codec.h"

#include <http_parser.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/assert.h"

namespace ottava::mesh {
namespace {

// ---------------------------------------------------------------------------------------------
// Small string helpers (ASCII only, as HTTP field names and framing tokens are).

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// `lower` must already be lower-case.
bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (Lower(s[i]) != lower[i]) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Calls fn(token) for every non-empty, trimmed element of a comma-separated list.
template <typename Fn>
void ForEachToken(std::string_view list, Fn fn) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view token = Trim(list.substr(0, comma));
    if (!token.empty()) {
      fn(token);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
  }
}

void AppendInt(std::string& out, uint64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, end);
}

void AppendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// Headers the codec owns when encoding: whatever the caller left of them is dropped, the codec
// writes its own framing.
bool IsHopByHop(std::string_view lower_name) {
  switch (lower_name.size()) {
    case 2:
      return lower_name == "te";
    case 7:
      return lower_name == "trailer" || lower_name == "upgrade";
    case 10:
      return lower_name == "connection" || lower_name == "keep-alive";
    case 16:
      return lower_name == "proxy-connection";
    case 17:
      return lower_name == "transfer-encoding";
    default:
      return false;
  }
}

// How a message body is delimited on the wire.
enum class Framing : uint8_t { kNone, kLength, kChunked, kClose };

// Where the strict chunked-framing check stands.
enum class Chunk : uint8_t {
  kOff,
  kHeadLf,
  kSize,
  kExt,
  kSizeLf,
  kData,
  kDataCr,
  kDataLf,
  kLineStart,
  kTrailer,
  kTrailerLf,
  kEndLf,
  kDone
};

// What the parser is paused for.
enum class Pause : uint8_t { kNone, kHeadersComplete, kMessageComplete };

// The framing-relevant headers of one message, gathered while its head is parsed.
struct HeadFacts {
  int content_length_count = 0;
  bool content_length_conflict = false;
  std::string content_length;
  bool has_transfer_encoding = false;
  std::string transfer_encoding;  // every Transfer-Encoding value, joined with ", "
  std::string connection;         // every Connection value, joined with ", "
  int host_count = 0;
  bool expect_continue = false;

  void Reset() {
    content_length_count = 0;
    content_length_conflict = false;
    content_length.clear();
    has_transfer_encoding = false;
    transfer_encoding.clear();
    connection.clear();
    host_count = 0;
    expect_continue = false;
  }
};

void JoinInto(std::string& list, std::string_view value) {
  if (!list.empty()) {
    list.append(", ");
  }
  list.append(value);
}

// ---------------------------------------------------------------------------------------------
// The part shared by both directions: feeding http-parser from a Buffer, gathering header
// fields (which the parser may hand over in pieces), moving body bytes out of the input without
// copying whole slices, and the checks http-parser does not make (obs-fold, head size).
//
// The parser pauses itself at the end of every head and every message, so that all calls into
// decoders happen outside parser callbacks: a decoder may then encode a response, or end the
// stream, without re-entering the parser.

class ParserBase {
 protected:
  ParserBase(http_parser_type type, CodecOutput& output, const CodecOptions& options)
      : output_(output), options_(options) {
    http_parser_init(&parser_, type);
    parser_.data = this;
  }
  virtual ~ParserBase() = default;

  // Runs the parser over the front slice of `data` and drains what it consumed.
  http_errno Execute(Buffer& data) {
    iovec iov;
    if (data.FrontSlices(&iov, 1) == 0) {
      return HPE_OK;
    }
    const char* base = static_cast<const char*>(iov.iov_base);
    if (!in_head_ && !ValidateChunked(base, iov.iov_len)) {
      return HPE_INVALID_CHUNK_SIZE;
    }
    input_ = &data;
    slice_base_ = base;
    slice_drained_ = 0;
    const size_t n = http_parser_execute(&parser_, &kSettings, base, iov.iov_len);
    input_ = nullptr;
    const http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (in_head_) {
      ScanHead(base, n);
      head_bytes_ += n;
    }
    if (n > slice_drained_) {
      data.Drain(n - slice_drained_);
    }
    return err;
  }

  // Tells the parser the peer closed; returns its verdict.
  http_errno ExecuteEof() {
    http_parser_execute(&parser_, &kSettings, nullptr, 0);
    return HTTP_PARSER_ERRNO(&parser_);
  }

  void Resume() {
    http_parser_pause(&parser_, 0);
    pause_ = Pause::kNone;
  }

  // Finishes a head: the header being gathered is stored, and the next bytes are body bytes.
  void EndHead() {
    if (last_was_value_) {
      CompleteHeader();
    }
    in_head_ = false;
  }

  // Prepares for the next message's head.
  void StartHead() {
    in_head_ = true;
    head_bytes_ = 0;
    prev_lf_ = false;
    prev_cr_ = false;
    head_problem_ = nullptr;
    chunk_state_ = Chunk::kOff;
    last_was_value_ = false;
    cur_field_.clear();
    cur_value_.clear();
    facts_.Reset();
    target_ = nullptr;
  }

  // Every Connection token other than close/keep-alive names a hop-by-hop header to drop.
  void RemoveConnectionListed(HeaderMap& headers, bool& close, bool& keep_alive) const {
    ForEachToken(facts_.connection, [&](std::string_view token) {
      if (EqualsLower(token, "close")) {
        close = true;
      } else if (EqualsLower(token, "keep-alive")) {
        keep_alive = true;
      } else {
        headers.Remove(token);
      }
    });
  }

  // Checks Transfer-Encoding and Content-Length together (RFC 9112 §6.1-6.3). Returns an HTTP
  // status (400 or 501) and sets `problem`, or 0 when the framing is unambiguous.
  int CheckFraming(std::string& problem) const {
    if (facts_.content_length_count > 1 || facts_.content_length_conflict) {
      problem = "conflicting content-length";
      return 400;
    }
    if (!facts_.has_transfer_encoding) {
      if (parser_.flags & F_CHUNKED) {
        problem = "inconsistent transfer-encoding";
        return 400;
      }
      return 0;
    }
    if (facts_.content_length_count > 0) {
      problem = "both content-length and transfer-encoding";
      return 400;
    }
    int tokens = 0;
    bool last_chunked = false;
    ForEachToken(facts_.transfer_encoding, [&](std::string_view token) {
      ++tokens;
      last_chunked = EqualsLower(token, "chunked");
    });
    if (!last_chunked || (parser_.flags & F_CHUNKED) == 0) {
      problem = "transfer-encoding must end with chunked";
      return 400;
    }
    if (tokens > 1) {
      problem = "unsupported transfer-encoding";
      return 501;
    }
    return 0;
  }

  // The head's last byte is left for the body phase to consume (the parser pauses on it); it
  // must be a LF: http-parser, built non-strict by Debian, would take any byte.
  static bool HeadEndsWithLf(const Buffer& data) {
    char c = 0;
    if (!data.Empty()) {
      data.CopyOut(0, 1, &c);
    }
    return c == '\n';
  }

  // Turns on the strict check of the chunked framing of the body that follows.
  void ValidateChunks() {
    chunk_state_ = Chunk::kHeadLf;
    chunk_size_ = 0;
    chunk_digits_ = 0;
  }
  // Whether a chunked body ended exactly where its framing says (or none is checked).
  bool ChunksComplete() const {
    return chunk_state_ == Chunk::kOff || chunk_state_ == Chunk::kDone;
  }

  bool HasContentLength() const { return (parser_.flags & F_CONTENTLENGTH) != 0; }
  bool IsChunked() const { return (parser_.flags & F_CHUNKED) != 0; }

  // Message callbacks of the two directions.
  virtual void OnMessageBegin() = 0;
  virtual int OnHeadersCompleteReturn() = 0;  // 0, or 1 to tell the parser there is no body
  virtual void OnHeaderFieldDone(std::string& name, std::string_view value) = 0;

  http_parser parser_;
  CodecOutput& output_;
  const CodecOptions options_;
  Pause pause_ = Pause::kNone;

  // The head being parsed.
  bool in_head_ = true;
  size_t head_bytes_ = 0;
  const char* head_problem_ = nullptr;  // set when the head is malformed in a way the parser
                                        // (non-strict) lets through
  std::string url_;
  std::string reason_;
  HeaderMap* target_ = nullptr;
  HeadFacts facts_;

  // Body bytes parsed but not yet handed to the decoder.
  Buffer body_;
  // Encoding scratch space, reused.
  std::string scratch_;
  Buffer out_;

 private:
  // Checks what non-strict http-parser does not: a line of the head starting with SP or HT is
  // obs-fold (RFC 9112 §5.2), which we reject since proxies that disagree on joining lines is how
  // smuggling starts; and every CR must be followed by LF. A byte loop is fine: heads are small.
  void ScanHead(const char* p, size_t n) {
    for (const char* end = p + n; p < end; ++p) {
      const char c = *p;
      if (prev_cr_ && c != '\n') {
        head_problem_ = "bare CR in header";
      }
      if (prev_lf_ && (c == ' ' || c == '\t')) {
        head_problem_ = "obsolete line folding in header";
      }
      prev_cr_ = c == '\r';
      prev_lf_ = c == '\n';
    }
  }

  // A strict shadow of the chunked framing (RFC 9112 §7.1): size lines, CRLF after each chunk's
  // data, trailers and the final empty line must all end in CRLF. Data bytes are skipped by count,
  // so only framing bytes are looked at. Runs over each slice before the parser sees it and stops
  // at the end of the message, leaving any pipelined bytes alone.
  bool ValidateChunked(const char* p, size_t n) {
    const char* end = p + n;
    while (p < end) {
      const char c = *p;
      switch (chunk_state_) {
        case Chunk::kOff:
        case Chunk::kDone:
          return true;
        case Chunk::kHeadLf:
        case Chunk::kDataLf:
          if (c != '\n') {
            return false;
          }
          chunk_state_ = Chunk::kSize;
          chunk_size_ = 0;
          chunk_digits_ = 0;
          break;
        case Chunk::kSize: {
          int digit = -1;
          if (c >= '0' && c <= '9') {
            digit = c - '0';
          } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
          } else if (c >= 'A' && c <= 'F') {
            digit = c - 'A' + 10;
          }
          if (digit >= 0) {
            if (chunk_size_ > (UINT64_MAX >> 4)) {
              return false;
            }
            chunk_size_ = chunk_size_ * 16 + static_cast<uint64_t>(digit);
            ++chunk_digits_;
          } else if (chunk_digits_ > 0 && (c == ';' || c == ' ' || c == '\t')) {
            chunk_state_ = Chunk::kExt;
          } else if (chunk_digits_ > 0 && c == '\r') {
            chunk_state_ = Chunk::kSizeLf;
          } else {
            return false;
          }
          break;
        }
        case Chunk::kExt:
          if (c == '\r') {
            chunk_state_ = Chunk::kSizeLf;
          } else if (c == '\n') {
            return false;
          }
          break;
        case Chunk::kSizeLf:
          if (c != '\n') {
            return false;
          }
          chunk_state_ = chunk_size_ == 0 ? Chunk::kLineStart : Chunk::kData;
          break;
        case Chunk::kData: {
          const uint64_t take = std::min<uint64_t>(chunk_size_, static_cast<uint64_t>(end - p));
          p += take;
          chunk_size_ -= take;
          if (chunk_size_ == 0) {
            chunk_state_ = Chunk::kDataCr;
          }
          continue;
        }
        case Chunk::kDataCr:
          if (c != '\r') {
            return false;
          }
          chunk_state_ = Chunk::kDataLf;
          break;
        case Chunk::kLineStart:
          if (c == '\n') {
            return false;
          }
          chunk_state_ = c == '\r' ? Chunk::kEndLf : Chunk::kTrailer;
          break;
        case Chunk::kTrailer:
          if (c == '\r') {
            chunk_state_ = Chunk::kTrailerLf;
          } else if (c == '\n') {
            return false;
          }
          break;
        case Chunk::kTrailerLf:
          if (c != '\n') {
            return false;
          }
          chunk_state_ = Chunk::kLineStart;
          break;
        case Chunk::kEndLf:
          if (c != '\n') {
            return false;
          }
          chunk_state_ = Chunk::kDone;
          return true;
      }
      ++p;
    }
    return true;
  }

  static bool IsTokenChar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  }

  void CompleteHeader() {
    if (cur_field_.empty()) {
      head_problem_ = "empty header name";
    }
    for (char& c : cur_field_) {
      if (!IsTokenChar(c)) {
        head_problem_ = "invalid character in header name";
      }
      c = Lower(c);
    }
    OnHeaderFieldDone(cur_field_, Trim(cur_value_));
    cur_field_.clear();
    cur_value_.clear();
    last_was_value_ = false;
  }

  static ParserBase& Self(http_parser* p) { return *static_cast<ParserBase*>(p->data); }

  static int OnMessageBeginCb(http_parser* p) {
    Self(p).OnMessageBegin();
    return 0;
  }
  static int OnUrlCb(http_parser* p, const char* at, size_t len) {
    Self(p).url_.append(at, len);
    return 0;
  }
  static int OnStatusCb(http_parser* p, const char* at, size_t len) {
    Self(p).reason_.append(at, len);
    return 0;
  }
  static int OnHeaderFieldCb(http_parser* p, const char* at, size_t len) {
    ParserBase& self = Self(p);
    if (!self.in_head_) {
      return 0;  // trailers: dropped
    }
    if (self.last_was_value_) {
      self.CompleteHeader();
    }
    self.cur_field_.append(at, len);
    return 0;
  }
  static int OnHeaderValueCb(http_parser* p, const char* at, size_t len) {
    ParserBase& self = Self(p);
    if (!self.in_head_) {
      return 0;
    }
    self.cur_value_.append(at, len);
    self.last_was_value_ = true;
    return 0;
  }
  static int OnHeadersCompleteCb(http_parser* p) {
    ParserBase& self = Self(p);
    if (self.last_was_value_) {
      self.CompleteHeader();  // so that its problems are seen before the head is accepted
    }
    self.pause_ = Pause::kHeadersComplete;
    http_parser_pause(p, 1);
    return self.OnHeadersCompleteReturn();
  }
  static int OnBodyCb(http_parser* p, const char* at, size_t len) {
    ParserBase& self = Self(p);
    if (self.input_ == nullptr) {
      self.body_.Add(at, len);
      return 0;
    }
    // The body bytes sit in the input's front slice: move them, which hands over the whole
    // slice when the body fills it (the common case for large bodies) instead of copying.
    const size_t offset = static_cast<size_t>(at - self.slice_base_);
    self.input_->Drain(offset - self.slice_drained_);
    self.body_.Move(*self.input_, len);
    self.slice_drained_ = offset + len;
    return 0;
  }
  static int OnMessageCompleteCb(http_parser* p) {
    ParserBase& self = Self(p);
    self.pause_ = Pause::kMessageComplete;
    http_parser_pause(p, 1);
    return 0;
  }

  static constexpr http_parser_settings kSettings = {
      .on_message_begin = OnMessageBeginCb,
      .on_url = OnUrlCb,
      .on_status = OnStatusCb,
      .on_header_field = OnHeaderFieldCb,
      .on_header_value = OnHeaderValueCb,
      .on_headers_complete = OnHeadersCompleteCb,
      .on_body = OnBodyCb,
      .on_message_complete = OnMessageCompleteCb,
      .on_chunk_header = nullptr,
      .on_chunk_complete = nullptr,
  };

  std::string cur_field_;
  std::string cur_value_;
  bool last_was_value_ = false;
  bool prev_lf_ = false;
  bool prev_cr_ = false;

  Chunk chunk_state_ = Chunk::kOff;
  uint64_t chunk_size_ = 0;
  int chunk_digits_ = 0;

  // The slice being parsed, for OnBodyCb.
  Buffer* input_ = nullptr;
  const char* slice_base_ = nullptr;
  size_t slice_drained_ = 0;
};

// Records a header of a message being decoded: framing headers go to `facts`, hop-by-hop ones
// are dropped, the rest go to `headers`. `name` is lower-case.
void RecordHeader(HeadFacts& facts,
                  HeaderMap* headers,
                  std::string_view name,
                  std::string_view value) {
  switch (name.size()) {
    case 2:
      if (name == "te") {
        return;
      }
      break;
    case 4:
      if (name == "host") {
        ++facts.host_count;
      }
      break;
    case 6:
      if (name == "expect") {
        facts.expect_continue = EqualsLower(value, "100-continue");
        return;
      }
      break;
    case 7:
      if (name == "trailer" || name == "upgrade") {
        return;
      }
      break;
    case 10:
      if (name == "connection") {
        JoinInto(facts.connection, value);
        return;
      }
      if (name == "keep-alive") {
        return;
      }
      break;
    case 14:
      if (name == "content-length") {
        if (facts.content_length_count > 0 && facts.content_length != value) {
          facts.content_length_conflict = true;
        }
        ++facts.content_length_count;
        facts.content_length.assign(value);
      }
      break;
    case 16:
      if (name == "proxy-connection") {
        return;
      }
      break;
    case 17:
      if (name == "transfer-encoding") {
        facts.has_transfer_encoding = true;
        JoinInto(facts.transfer_encoding, value);
        return;
      }
      break;
    default:
      break;
  }
  if (headers != nullptr) {
    headers->Add(name, value);
  }
}

// Appends the chunked-encoding frame of `data` (moved out) to `out`.
void AppendChunk(Buffer& out, Buffer& data, bool end_stream) {
  if (!data.Empty()) {
    char line[24];
    auto [end, ec] = std::to_chars(line, line + sizeof(line) - 2, data.Length(), 16);
    *end++ = '\r';
    *end++ = '\n';
    out.Add(line, static_cast<size_t>(end - line));
    out.Move(data);
    out.Add(end_stream ? std::string_view("\r\n0\r\n\r\n") : std::string_view("\r\n"));
  } else if (end_stream) {
    out.Add("0\r\n\r\n");
  }
}

// ---------------------------------------------------------------------------------------------
// Server side: requests in, responses out. One stream at a time; the next pipelined request is
// parsed only once the current response has been encoded whole.

class ServerCodecImpl final : public ServerCodec, public ResponseEncoder, private ParserBase {
 public:
  ServerCodecImpl(CodecOutput& output, ServerCodecCallbacks& callbacks, const CodecOptions& options)
      : ParserBase(HTTP_REQUEST, output, options), callbacks_(callbacks) {}

  // ServerCodec
  absl::Status Dispatch(Buffer& data) override {
    if (!error_.ok()) {
      return error_;
    }
    while (!data.Empty() && !waiting_ && !stopped_) {
      const http_errno err = Execute(data);
      if (err != HPE_OK && err != HPE_PAUSED) {
        if (err == HPE_HEADER_OVERFLOW) {
          return Fail(431, "request header too large");
        }
        if (err == HPE_CB_headers_complete) {
          return error_;  // already failed in the callback
        }
        return Fail(400, http_errno_description(err));
      }
      if (in_head_) {
        if (head_bytes_ > options_.max_header_bytes) {
          return Fail(431, "request header too large");
        }
        if (head_problem_ != nullptr) {
          return Fail(400, head_problem_);
        }
      }
      if (err == HPE_PAUSED) {
        const Pause pause = pause_;
        Resume();
        if (pause == Pause::kHeadersComplete) {
          if (!HeadEndsWithLf(data)) {
            return Fail(400, "bare CR in header");
          }
          OnHeadersDone();
          if (!error_.ok()) {
            return error_;
          }
        } else {
          if (!ChunksComplete()) {
            return Fail(400, "bad chunked framing");
          }
          OnMessageDone();
        }
        continue;
      }
      FlushBody(false);
    }
    return absl::OkStatus();
  }

  absl::Status DispatchEof() override {
    if (!error_.ok()) {
      return error_;
    }
    if (stream_active_ && !request_done_) {
      stopped_ = true;
      error_ = absl::CancelledError("http1: downstream closed mid-request");
      return error_;
    }
    return absl::OkStatus();
  }

  bool StreamActive() const override { return stream_active_; }
  bool WantsClose() const override { return wants_close_; }
  void StartDraining() override { wants_close_ = true; }

  // ResponseEncoder
  void EncodeHeaders(ResponseHeaders& headers, bool end_stream) override {
    if (!stream_active_ || response_started_) {
      return;
    }
    if (headers.status < 200) {
      if (headers.status == 100) {
        Encode100Continue();
      }
      return;  // other informational heads are not forwarded to HTTP/1 clients
    }
    response_started_ = true;
    const int status = headers.status;
    const bool no_body_status = status == 204 || status == 304;
    scratch_.clear();
    scratch_.append("HTTP/1.1 ");
    AppendInt(scratch_, static_cast<uint64_t>(status));
    scratch_.push_back(' ');
    scratch_.append(headers.reason.empty() ? ReasonPhrase(status)
                                           : std::string_view(headers.reason));
    scratch_.append("\r\n");
    bool has_length = false;
    for (const auto& [name, value] : headers.headers) {
      if (IsHopByHop(name)) {
        continue;
      }
      if (name == "content-length") {
        if (status == 204) {
          continue;
        }
        has_length = true;
      }
      AppendHeader(scratch_, name, value);
    }
    if (head_request_ || no_body_status) {
      framing_ = Framing::kNone;
    } else if (has_length) {
      framing_ = Framing::kLength;
    } else if (headers.content_length >= 0) {
      framing_ = Framing::kLength;
      scratch_.append("content-length: ");
      AppendInt(scratch_, static_cast<uint64_t>(headers.content_length));
      scratch_.append("\r\n");
    } else if (end_stream) {
      framing_ = Framing::kLength;
      scratch_.append("content-length: 0\r\n");
    } else if (peer_minor_ >= 1) {
      framing_ = Framing::kChunked;
      scratch_.append("transfer-encoding: chunked\r\n");
    } else {
      framing_ = Framing::kClose;  // HTTP/1.0 has no chunked: the close ends the body
      wants_close_ = true;
    }
    if (head_request_ && !has_length && headers.content_length >= 0) {
      scratch_.append("content-length: ");
      AppendInt(scratch_, static_cast<uint64_t>(headers.content_length));
      scratch_.append("\r\n");
    }
    if (wants_close_) {
      scratch_.append("connection: close\r\n");
    } else if (peer_minor_ == 0) {
      scratch_.append("connection: keep-alive\r\n");
    }
    scratch_.append("\r\n");
    out_.Add(scratch_);
    output_.Write(out_);
    if (end_stream) {
      OnResponseComplete();
    }
  }

  void EncodeData(Buffer& data, bool end_stream) override {
    if (!stream_active_ || !response_started_ || response_done_) {
      data.Drain(data.Length());
      return;
    }
    switch (framing_) {
      case Framing::kNone:
        data.Drain(data.Length());
        break;
      case Framing::kChunked:
        AppendChunk(out_, data, end_stream);
        break;
      case Framing::kLength:
      case Framing::kClose:
        out_.Move(data);
        break;
    }
    if (!out_.Empty()) {
      output_.Write(out_);
    }
    if (end_stream) {
      OnResponseComplete();
    }
  }

  void Encode100Continue() override {
    if (continue_sent_ || response_started_ || peer_minor_ < 1) {
      return;
    }
    continue_sent_ = true;
    out_.Add("HTTP/1.1 100 Continue\r\n\r\n");
    output_.Write(out_);
  }

 private:
  void OnMessageBegin() override {
    stream_active_ = true;
    request_done_ = false;
    request_ = std::make_unique<RequestHeaders>();
    target_ = &request_->headers;
    url_.clear();
  }

  int OnHeadersCompleteReturn() override { return 0; }

  void OnHeaderFieldDone(std::string& name, std::string_view value) override {
    if (name.size() == 4 && name == "host" && facts_.host_count == 0) {
      request_->host.assign(value);
    } else if (name.size() == 2 && name == "id" && request_->service.empty()) {
      request_->service.assign(value);
    }
    RecordHeader(facts_, target_, name, value);
  }

  void OnHeadersDone() {
    EndHead();
    const uint8_t major = static_cast<uint8_t>(parser_.http_major);
    const uint8_t minor = static_cast<uint8_t>(parser_.http_minor);
    if (parser_.http_major != 1 || parser_.http_minor > 1) {
      (void)Fail(505, "unsupported HTTP version");
      return;
    }
    peer_minor_ = minor;
    if (parser_.method == HTTP_CONNECT) {
      (void)Fail(501, "CONNECT is not supported");
      return;
    }
    std::string problem;
    if (minor == 0 && facts_.has_transfer_encoding) {
      (void)Fail(400, "transfer-encoding in an HTTP/1.0 request");
      return;
    }
    if (const int code = CheckFraming(problem); code != 0) {
      (void)Fail(code, problem);
      return;
    }
    if (facts_.host_count > 1) {
      (void)Fail(400, "multiple host headers");
      return;
    }
    if (facts_.host_count == 0 && minor == 1) {
      (void)Fail(400, "missing host header");
      return;
    }

    RequestHeaders& request = *request_;
    bool close = false;
    bool keep_alive_token = false;
    RemoveConnectionListed(request.headers, close, keep_alive_token);
    request.keep_alive = !close && (minor == 1 || keep_alive_token);
    if (!request.keep_alive) {
      wants_close_ = true;
    }
    request.method = http_method_str(static_cast<http_method>(parser_.method));
    request.path = std::move(url_);
    url_.clear();
    if (request.service.empty()) {
      request.service = request.host;
    }
    if (IsChunked()) {
      ValidateChunks();
      request.content_length = -1;
    } else if (HasContentLength()) {
      request.content_length = static_cast<int64_t>(parser_.content_length);
    } else {
      request.content_length = 0;
    }
    request.version_major = major;
    request.version_minor = minor;
    request.stream_id = next_stream_id_++;
    head_request_ = parser_.method == HTTP_HEAD;
    const bool end_stream = request.content_length == 0;
    headers_end_stream_ = end_stream;
    if (end_stream) {
      request_done_ = true;
    }
    if (facts_.expect_continue && !end_stream) {
      Encode100Continue();
    }
    decoder_ = &callbacks_.NewStream(*this, request.stream_id);
    decoder_->DecodeHeaders(std::move(request_), end_stream);
  }

  void FlushBody(bool end_stream) {
    if (decoder_ != nullptr && (!body_.Empty() || end_stream)) {
      decoder_->DecodeData(body_, end_stream);
    }
    body_.Drain(body_.Length());
  }

  void OnMessageDone() {
    if (!request_done_) {
      request_done_ = true;
      FlushBody(true);
    } else {
      body_.Drain(body_.Length());
    }
    StartHead();
    if (wants_close_) {
      stopped_ = true;  // whatever follows a closing request is never read
    }
    if (stream_active_) {
      waiting_ = true;  // until the response is complete
    }
  }

  void OnResponseComplete() {
    response_done_ = true;
    decoder_ = nullptr;
    if (!request_done_) {
      // Answered before the request was read whole: the rest of it is not worth reading.
      wants_close_ = true;
      stopped_ = true;
    }
    FinishStream();
  }

  void FinishStream() {
    stream_active_ = false;
    waiting_ = false;
    response_started_ = false;
    response_done_ = false;
    continue_sent_ = false;
    head_request_ = false;
    headers_end_stream_ = false;
    framing_ = Framing::kNone;
    if (wants_close_) {
      stopped_ = true;
    }
  }

  absl::Status Fail(int code, std::string_view problem) {
    std::string message = "http1: ";
    AppendInt(message, static_cast<uint64_t>(code));
    message.push_back(' ');
    message.append(problem);
    error_ = code == 501 || code == 505 ? absl::UnimplementedError(message)
                                        : absl::InvalidArgumentError(message);
    wants_close_ = true;
    stopped_ = true;
    decoder_ = nullptr;
    if (!response_started_) {
      response_started_ = true;
      scratch_.clear();
      scratch_.append("HTTP/1.1 ");
      AppendInt(scratch_, static_cast<uint64_t>(code));
      scratch_.push_back(' ');
      scratch_.append(ReasonPhrase(code));
      scratch_.append("\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ");
      AppendInt(scratch_, problem.size() + 1);
      scratch_.append("\r\n\r\n");
      scratch_.append(problem);
      scratch_.push_back('\n');
      out_.Add(scratch_);
      output_.Write(out_);
    }
    return error_;
  }

  ServerCodecCallbacks& callbacks_;
  RequestHeadersPtr request_;
  RequestDecoder* decoder_ = nullptr;
  uint64_t next_stream_id_ = 1;
  absl::Status error_;

  bool stream_active_ = false;
  bool request_done_ = false;
  bool headers_end_stream_ = false;
  bool response_started_ = false;
  bool response_done_ = false;
  bool continue_sent_ = false;
  bool head_request_ = false;
  bool waiting_ = false;  // a request is complete, its response is not
  bool stopped_ = false;  // no more requests are read on this connection
  bool wants_close_ = false;
  uint8_t peer_minor_ = 1;
  Framing framing_ = Framing::kNone;
};

// ---------------------------------------------------------------------------------------------
// Client side: one request at a time to an upstream, its response parsed back.

class ClientCodecImpl final : public ClientCodec, public RequestEncoder, private ParserBase {
 public:
  ClientCodecImpl(CodecOutput& output, const CodecOptions& options)
      : ParserBase(HTTP_RESPONSE, output, options) {}

  // ClientCodec
  RequestEncoder& NewStream(ResponseDecoder& decoder) override {
    OTTAVA_ASSERT(!stream_active_, "HTTP/1.1 has one request at a time");
    decoder_ = &decoder;
    stream_active_ = true;
    request_done_ = false;
    request_started_ = false;
    response_received_ = false;
    head_request_ = false;
    headers_end_stream_ = false;
    return *this;
  }

  absl::Status Dispatch(Buffer& data) override {
    if (!error_.ok()) {
      return error_;
    }
    while (!data.Empty()) {
      if (!stream_active_) {
        return Fail("unexpected bytes from upstream with no request outstanding");
      }
      const http_errno err = Execute(data);
      if (err != HPE_OK && err != HPE_PAUSED) {
        if (err == HPE_CB_headers_complete) {
          return error_;
        }
        return Fail(http_errno_description(err));
      }
      response_received_ = true;
      if (in_head_) {
        if (head_bytes_ > options_.max_header_bytes) {
          return Fail("upstream response header too large");
        }
        if (head_problem_ != nullptr) {
          return Fail(std::string("upstream response: ") + head_problem_);
        }
      }
      if (err == HPE_PAUSED) {
        const Pause pause = pause_;
        Resume();
        if (pause == Pause::kHeadersComplete) {
          if (!HeadEndsWithLf(data)) {
            return Fail("upstream response: bare CR in header");
          }
          OnHeadersDone();
          if (!error_.ok()) {
            return error_;
          }
        } else {
          if (!ChunksComplete()) {
            return Fail("upstream response: bad chunked framing");
          }
          OnMessageDone();
        }
        continue;
      }
      FlushBody(false);
    }
    return absl::OkStatus();
  }

  absl::Status DispatchEof() override {
    if (!error_.ok()) {
      return error_;
    }
    wants_close_ = true;
    if (!stream_active_) {
      return absl::OkStatus();
    }
    const http_errno err = ExecuteEof();
    if (err == HPE_PAUSED && pause_ == Pause::kMessageComplete) {
      Resume();
      OnMessageDone();
      return absl::OkStatus();
    }
    return Fail(response_received_ ? "upstream closed mid-response"
                                   : "upstream closed before responding");
  }

  bool StreamActive() const override { return stream_active_; }
  bool WantsClose() const override { return wants_close_; }

  // RequestEncoder
  void EncodeHeaders(RequestHeaders& headers, bool end_stream) override {
    if (!stream_active_ || request_started_) {
      return;
    }
    request_started_ = true;
    head_request_ = headers.method == "HEAD";
    scratch_.clear();
    scratch_.append(headers.method);
    scratch_.push_back(' ');
    scratch_.append(headers.path.empty() ? std::string_view("/") : std::string_view(headers.path));
    scratch_.append(" HTTP/1.1\r\n");
    bool has_host = false;
    bool has_length = false;
    for (const auto& [name, value] : headers.headers) {
      if (IsHopByHop(name) || name == "expect") {
        continue;
      }
      if (name == "host") {
        has_host = true;
      } else if (name == "content-length") {
        has_length = true;
      }
      AppendHeader(scratch_, name, value);
    }
    if (!has_host && !headers.host.empty()) {
      AppendHeader(scratch_, "host", headers.host);
    }
    if (has_length) {
      framing_ = Framing::kLength;
    } else if (headers.content_length > 0 || (headers.content_length == 0 && !end_stream)) {
      framing_ = Framing::kLength;
      scratch_.append("content-length: ");
      AppendInt(scratch_, static_cast<uint64_t>(headers.content_length));
      scratch_.append("\r\n");
    } else if (end_stream) {
      framing_ = Framing::kLength;
      // Methods that normally carry a body say explicitly that this one has none.
      if (headers.method == "POST" || headers.method == "PUT" || headers.method == "PATCH") {
        scratch_.append("content-length: 0\r\n");
      }
    } else {
      framing_ = Framing::kChunked;
      scratch_.append("transfer-encoding: chunked\r\n");
    }
    scratch_.append("\r\n");
    out_.Add(scratch_);
    output_.Write(out_);
    if (end_stream) {
      request_done_ = true;
    }
  }

  void EncodeData(Buffer& data, bool end_stream) override {
    if (!stream_active_ || !request_started_ || request_done_) {
      data.Drain(data.Length());
      return;
    }
    if (framing_ == Framing::kChunked) {
      AppendChunk(out_, data, end_stream);
    } else {
      out_.Move(data);
    }
    if (!out_.Empty()) {
      output_.Write(out_);
    }
    if (end_stream) {
      request_done_ = true;
    }
  }

 private:
  void OnMessageBegin() override {
    response_ = std::make_unique<ResponseHeaders>();
    target_ = &response_->headers;
    reason_.clear();
  }

  // Responses to HEAD, 1xx, 204 and 304 never have a body, whatever their framing headers say;
  // http-parser only knows this for HEAD when told, and reads a chunked body after a 204.
  int OnHeadersCompleteReturn() override {
    const unsigned status = parser_.status_code;
    const bool bodiless = head_request_ || status < 200 || status == 204 || status == 304;
    return bodiless ? 1 : 0;
  }

  void OnHeaderFieldDone(std::string& name, std::string_view value) override {
    RecordHeader(facts_, target_, name, value);
  }

  void OnHeadersDone() {
    EndHead();
    const int status = static_cast<int>(parser_.status_code);
    if (parser_.http_major != 1 || parser_.http_minor > 1) {
      (void)Fail("unsupported upstream HTTP version");
      return;
    }
    if (status == 101) {
      (void)Fail("upstream switched protocols");
      return;
    }
    ResponseHeaders& response = *response_;
    response.status = status;
    response.reason = std::move(reason_);
    reason_.clear();
    response.version_major = static_cast<uint8_t>(parser_.http_major);
    response.version_minor = static_cast<uint8_t>(parser_.http_minor);
    bool close = false;
    bool keep_alive_token = false;
    RemoveConnectionListed(response.headers, close, keep_alive_token);
    response.keep_alive = !close && (parser_.http_minor == 1 || keep_alive_token);
    if (status < 200) {
      in_1xx_ = true;
      if (decoder_ != nullptr) {
        decoder_->Decode1xxHeaders(std::move(response_));
      }
      return;
    }
    const bool bodiless = head_request_ || status == 204 || status == 304;
    if (!bodiless) {
      std::string problem;
      if (CheckFraming(problem) != 0) {
        (void)Fail("upstream response framing: " + problem);
        return;
      }
    }
    if (HasContentLength()) {
      response.content_length = static_cast<int64_t>(parser_.content_length);
    } else if (bodiless) {
      response.content_length = 0;
    }
    if (IsChunked() && !bodiless) {
      ValidateChunks();
    }
    if (IsChunked()) {
      response.content_length = -1;
    }
    const bool close_delimited = !bodiless && !IsChunked() && !HasContentLength();
    if (!response.keep_alive || close_delimited) {
      response.keep_alive = false;
      wants_close_ = true;
    }
    response.stream_id = ++stream_id_;
    const bool end_stream = bodiless || (HasContentLength() && parser_.content_length == 0);
    headers_end_stream_ = end_stream;
    if (decoder_ != nullptr) {
      decoder_->DecodeHeaders(std::move(response_), end_stream);
    }
  }

  void FlushBody(bool end_stream) {
    if (decoder_ != nullptr && (!body_.Empty() || end_stream)) {
      decoder_->DecodeData(body_, end_stream);
    }
    body_.Drain(body_.Length());
  }

  void OnMessageDone() {
    StartHead();
    if (in_1xx_) {
      in_1xx_ = false;
      return;  // the final response follows
    }
    if (headers_end_stream_) {
      body_.Drain(body_.Length());
    } else {
      FlushBody(true);
    }
    if (!request_done_) {
      wants_close_ = true;  // answered early: the request's remaining body will not be sent
    }
    decoder_ = nullptr;
    stream_active_ = false;
  }

  absl::Status Fail(std::string_view problem) {
    error_ = absl::InvalidArgumentError(std::string("http1: ").append(problem));
    wants_close_ = true;
    decoder_ = nullptr;
    return error_;
  }

  ResponseDecoder* decoder_ = nullptr;
  ResponseHeadersPtr response_;
  uint64_t stream_id_ = 0;
  absl::Status error_;
  bool stream_active_ = false;
  bool request_started_ = false;
  bool request_done_ = false;
  bool response_received_ = false;
  bool head_request_ = false;
  bool headers_end_stream_ = false;
  bool in_1xx_ = false;
  bool wants_close_ = false;
  Framing framing_ = Framing::kNone;
};

}  // namespace

ServerCodecPtr Http1CodecFactory::CreateServerCodec(CodecOutput& output,
                                                    ServerCodecCallbacks& callbacks,
                                                    const CodecOptions& options) const {
  return std::make_unique<ServerCodecImpl>(output, callbacks, options);
}

ClientCodecPtr Http1CodecFactory::CreateClientCodec(CodecOutput& output,
                                                    const CodecOptions& options) const {
  return std::make_unique<ClientCodecImpl>(output, options);
}

}  // namespace ottava::mesh
