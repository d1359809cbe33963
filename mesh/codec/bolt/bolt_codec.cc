#include "mesh/codec/bolt/bolt_codec.h"

#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/free_list.h"
#include "mesh/codec/bolt/bolt_frame.h"

namespace ottava::mesh {
namespace {

// Headers of an HTTP-shaped head (InvokeService) that are framing or mesh plumbing, not Bolt
// header map entries.
bool SkippedForBolt(std::string_view name) {
  static constexpr std::string_view kSkipped[] = {
      "content-length", "transfer-encoding", "connection", "host", "class", "rpc_request_type"};
  for (std::string_view skipped : kSkipped) {
    if (name.size() == skipped.size() &&
        std::equal(name.begin(), name.end(), skipped.begin(),
                   [](char a, char b) { return (a | 0x20) == b || a == b; })) {
      return true;
    }
  }
  return false;
}

// The Bolt status of a response the mesh made itself, or of a non-Bolt response.
uint16_t BoltStatusFor(const ResponseHeaders& headers) {
  switch (headers.local_reply) {
    case LocalReplyReason::kNoRoute:
    case LocalReplyReason::kNoHealthyHost:
    case LocalReplyReason::kConnectFailure:
      return bolt::kNoProcessor;
    case LocalReplyReason::kOverflow:
      return bolt::kServerThreadpoolBusy;
    case LocalReplyReason::kTimeout:
      return bolt::kTimeout;
    case LocalReplyReason::kUpstreamReset:
      return bolt::kConnectionClosed;
    default:
      break;
  }
  const int status = headers.status;
  if (status >= 200 && status < 300) {
    return bolt::kSuccess;
  }
  switch (status) {
    case 404:
      return bolt::kNoProcessor;
    case 429:
    case 503:
      return bolt::kServerThreadpoolBusy;
    case 504:
      return bolt::kTimeout;
    case 502:
      return bolt::kConnectionClosed;
    default:
      return bolt::kError;
  }
}

// Answers a heartbeat request with the same id, in its protocol version.
void AnswerHeartbeat(CodecOutput& output, const RpcHead& heartbeat, uint32_t request_id) {
  output.WriteFrame([&](Buffer& out) { bolt::EncodeHeartbeat(heartbeat, request_id, true, out); });
}

// Decodes the next frame from `data` straight into `*next` (made when null), the head a codec
// hands on: its `rpc` and header map take the frame's; `request_id` and `content` the rest.
// Results as bolt::DecodeFrame's.
template <typename Head>
absl::StatusOr<bool> DecodeInto(Buffer& data,
                                const CodecOptions& options,
                                std::unique_ptr<Head>& next,
                                uint32_t& request_id,
                                Buffer& content) {
  if (next == nullptr) {
    next = std::make_unique<Head>();
  }
  RpcHead& head = next->rpc.has_value() ? *next->rpc : next->rpc.emplace();
  return bolt::DecodeFrame(data, options.max_frame_bytes, head, request_id, next->headers, content);
}

bool IsRequest(const RpcHead& head) {
  return head.type != bolt::kTypeResponse;
}
bool IsHeartbeat(const RpcHead& head) {
  return head.cmd_code == bolt::kCmdHeartbeat;
}

// Streams by id, in map nodes from the thread's free list (one per request).
template <typename Id, typename Stream>
using StreamMap = std::unordered_map<Id,
                                     Stream,
                                     std::hash<Id>,
                                     std::equal_to<Id>,
                                     PooledAllocator<std::pair<const Id, Stream>>>;

// Moves a finished stream's node out of `streams` into `retired`, to be destroyed later: it may
// be finishing up in its own member function. Streams live in their map nodes (one allocation
// per stream) and `retired` keeps its capacity.
template <typename Map, typename Id>
void RetireStream(Map& streams, std::vector<typename Map::node_type>& retired, Id id) {
  auto it = streams.find(id);
  if (it != streams.end()) {
    retired.push_back(streams.extract(it));
  }
}

// ---------------------------------------------------------------------------------------------
// Server codec.

class BoltServerCodec : public ServerCodec {
 public:
  BoltServerCodec(CodecOutput& output, ServerCodecCallbacks& callbacks, const CodecOptions& options)
      : output_(output), callbacks_(callbacks), options_(options) {}

  absl::Status Dispatch(Buffer& data) override {
    retired_.clear();
    while (true) {
      // next_ is kept for the next frame when this one is not a request.
      uint32_t request_id = 0;
      Buffer content;
      absl::StatusOr<bool> decoded = DecodeInto(data, options_, next_, request_id, content);
      if (!decoded.ok()) {
        return decoded.status();
      }
      if (!*decoded) {
        return absl::OkStatus();
      }
      const RpcHead& head = *next_->rpc;
      if (!IsRequest(head)) {
        if (IsHeartbeat(head)) {
          continue;  // an answer to nothing we sent: harmless
        }
        return absl::InvalidArgumentError("bolt: a response frame arrived from a client");
      }
      if (IsHeartbeat(head)) {
        AnswerHeartbeat(output_, head, request_id);
        callbacks_.OnHeartbeat();
        continue;
      }
      if (head.cmd_code != bolt::kCmdRequest) {
        return absl::InvalidArgumentError("bolt: a request frame with command code " +
                                          std::to_string(head.cmd_code));
      }
      StartStream(std::move(next_), request_id, content);
    }
  }

  absl::Status DispatchEof() override { return absl::OkStatus(); }
  bool StreamActive() const override { return !streams_.empty(); }
  bool WantsClose() const override { return false; }
  void StartDraining() override {}

 private:
  class Stream : public ResponseEncoder {
   public:
    Stream(BoltServerCodec& codec, uint64_t id, uint32_t request_id, const RpcHead& request)
        : codec_(codec), id_(id), request_id_(request_id), request_head_(request.Fields()) {}

    void EncodeHeaders(ResponseHeaders& headers, bool end_stream) override {
      head_.proto = request_head_.proto;
      head_.ver1 = request_head_.ver1;
      head_.switches = request_head_.switches;
      head_.type = bolt::kTypeResponse;
      head_.cmd_code = bolt::kCmdResponse;
      if (headers.rpc.has_value() && headers.local_reply == LocalReplyReason::kNone) {
        head_.ver2 = headers.rpc->ver2;
        head_.codec = headers.rpc->codec;
        head_.status = headers.rpc->status;
        head_.MoveMetaFrom(*headers.rpc);
        headers_ = std::move(headers.headers);
        keep_content_ = true;
      } else {
        // Made up by the mesh (or from a non-Bolt upstream): a status and no content, which a
        // client's decoder accepts; anything else but valid Hessian would make it drop the
        // connection and every call on it.
        head_.ver2 = request_head_.ver2;
        head_.codec = request_head_.codec;
        head_.status = BoltStatusFor(headers);
        keep_content_ = head_.status == bolt::kSuccess;
      }
      if (end_stream) {
        Finish();
      }
    }

    void EncodeData(Buffer& data, bool end_stream) override {
      if (!keep_content_) {
        data.Drain(data.Length());
      } else if (end_stream && content_.Empty()) {
        Finish(data);  // the whole content at once (the usual case): no stop in content_
        return;
      } else {
        content_.Move(data);
      }
      if (end_stream) {
        Finish();
      }
    }

   private:
    void Finish() { Finish(content_); }
    void Finish(Buffer& content) {
      if (!request_head_.oneway()) {
        codec_.output_.WriteFrame(
            [&](Buffer& out) { bolt::EncodeFrame(head_, request_id_, headers_, content, out); });
      } else {
        content.Drain(content.Length());
      }
      codec_.Retire(id_);  // destroys nothing yet: kept until the next Dispatch
    }

    BoltServerCodec& codec_;
    const uint64_t id_;
    const uint32_t request_id_;
    RpcHead request_head_;
    RpcHead head_;
    HeaderMap headers_;
    Buffer content_;
    bool keep_content_ = true;
  };

  // `headers` holds the decoded head and header map.
  void StartStream(std::unique_ptr<RequestHeaders> headers, uint32_t request_id, Buffer& content) {
    const uint64_t id = ++next_stream_id_;
    const RpcHead& head = *headers->rpc;
    Stream& encoder = streams_
                          .emplace(std::piecewise_construct, std::forward_as_tuple(id),
                                   std::forward_as_tuple(*this, id, request_id, head))
                          .first->second;
    headers->method = head.oneway() ? "ONEWAY" : "REQUEST";
    headers->path = "/";
    if (const std::string* service = headers->headers.Get("service")) {
      headers->service = *service;
    }
    headers->stream_id = id;
    headers->content_length = static_cast<int64_t>(content.Length());
    headers->timeout_ms = head.timeout_ms > 0 ? head.timeout_ms : 0;
    const bool has_content = !content.Empty();
    RequestDecoder& decoder = callbacks_.NewStream(encoder, id);
    decoder.DecodeHeaders(std::move(headers), !has_content);
    if (has_content && streams_.contains(id)) {
      decoder.DecodeData(content, true);
    }
  }

  void Retire(uint64_t id) { RetireStream(streams_, retired_, id); }

  CodecOutput& output_;
  ServerCodecCallbacks& callbacks_;
  const CodecOptions options_;
  uint64_t next_stream_id_ = 0;
  std::unique_ptr<RequestHeaders> next_;  // the head the next frame decodes into
  StreamMap<uint64_t, Stream> streams_;
  // Finished streams, destroyed at the next Dispatch (one may be finishing up in its caller).
  std::vector<StreamMap<uint64_t, Stream>::node_type> retired_;
};

// ---------------------------------------------------------------------------------------------
// Client codec.

class BoltClientCodec : public MultiplexClientCodec {
 public:
  BoltClientCodec(CodecOutput& output, const CodecOptions& options)
      : output_(output),
        options_(options),
        next_id_(static_cast<uint32_t>(options.initial_stream_id)) {}

  RequestEncoder& NewStream(ResponseDecoder& decoder) override {
    retired_.clear();
    const uint32_t id = NextId();
    Stream& encoder = streams_
                          .emplace(std::piecewise_construct, std::forward_as_tuple(id),
                                   std::forward_as_tuple(*this, id, decoder))
                          .first->second;
    last_id_ = id;
    return encoder;
  }

  uint64_t LastStreamId() const override { return last_id_; }

  void CancelStream(uint64_t id) override { Retire(static_cast<uint32_t>(id)); }

  size_t ActiveStreams() const override { return streams_.size(); }

  void SendHeartbeat(std::function<void()> on_ack) override {
    const uint32_t id = NextId();
    heartbeats_.emplace(id, std::move(on_ack));
    output_.WriteFrame([&](Buffer& out) {
      RpcHead like;
      bolt::EncodeHeartbeat(like, id, false, out);
    });
  }

  uint64_t late_responses() const override { return late_responses_; }

  absl::Status Dispatch(Buffer& data) override {
    retired_.clear();
    while (true) {
      // next_ is kept for the next frame when this one is a heartbeat or a late response.
      uint32_t request_id = 0;
      Buffer content;
      absl::StatusOr<bool> decoded = DecodeInto(data, options_, next_, request_id, content);
      if (!decoded.ok()) {
        return decoded.status();
      }
      if (!*decoded) {
        return absl::OkStatus();
      }
      const RpcHead& head = *next_->rpc;
      if (IsRequest(head)) {
        if (!IsHeartbeat(head)) {
          return absl::InvalidArgumentError("bolt: an upstream sent a request frame");
        }
        AnswerHeartbeat(output_, head, request_id);
        continue;
      }
      if (IsHeartbeat(head)) {
        auto hb = heartbeats_.find(request_id);
        if (hb != heartbeats_.end()) {
          std::function<void()> on_ack = std::move(hb->second);
          heartbeats_.erase(hb);
          on_ack();
        }
        continue;
      }
      auto it = streams_.find(request_id);
      if (it == streams_.end()) {
        ++late_responses_;  // its stream was abandoned (timed out, downstream gone)
        continue;
      }
      ResponseDecoder& decoder = it->second.decoder();
      Retire(request_id);
      std::unique_ptr<ResponseHeaders> headers = std::move(next_);
      headers->status = bolt::HttpStatusFromBolt(head.status);
      headers->content_length = static_cast<int64_t>(content.Length());
      const bool has_content = !content.Empty();
      decoder.DecodeHeaders(std::move(headers), !has_content);
      if (has_content) {
        decoder.DecodeData(content, true);
      }
    }
  }

  absl::Status DispatchEof() override {
    if (!streams_.empty()) {
      return absl::UnavailableError("bolt: the upstream closed with " +
                                    std::to_string(streams_.size()) + " requests in flight");
    }
    return absl::OkStatus();
  }

  bool StreamActive() const override { return !streams_.empty(); }
  bool WantsClose() const override { return false; }

 private:
  class Stream : public RequestEncoder {
   public:
    Stream(BoltClientCodec& codec, uint32_t id, ResponseDecoder& decoder)
        : codec_(codec), id_(id), decoder_(decoder) {}

    ResponseDecoder& decoder() { return decoder_; }

    // The class and header map go to meta_ at once (the received bytes when unchanged), so the
    // stream copies neither the head's strings nor its map while it waits for the content.
    void EncodeHeaders(RequestHeaders& headers, bool end_stream) override {
      if (headers.rpc.has_value()) {
        head_ = headers.rpc->Fields();
        class_len_ = headers.rpc->class_name().size();
        header_len_ = bolt::AppendMeta(headers.rpc->class_name(), headers.headers,
                                       headers.rpc->wire_meta(), meta_);
      } else {
        head_.proto = bolt::kProtoV1;
        head_.cmd_code = bolt::kCmdRequest;
        head_.type = bolt::kTypeRequest;
        if (const std::string* type = headers.headers.Get("rpc_request_type");
            type != nullptr && *type == "oneway") {
          head_.type = bolt::kTypeOneway;
        }
        const std::string* klass = headers.headers.Get("class");
        const std::string_view class_name =
            klass != nullptr ? std::string_view(*klass) : bolt::kDefaultRequestClass;
        head_.timeout_ms = static_cast<int32_t>(headers.timeout_ms);
        HeaderMap bolt_headers;
        if (headers.headers.Get("service") == nullptr && !headers.service.empty()) {
          bolt_headers.AddCased("service", headers.service);
        }
        for (const auto& [name, value] : headers.headers) {
          if (!SkippedForBolt(name)) {
            bolt_headers.AddCased(name, value);
          }
        }
        class_len_ = class_name.size();
        header_len_ = bolt::AppendMeta(class_name, bolt_headers, {}, meta_);
      }
      if (end_stream) {
        Send();
      }
    }

    void EncodeData(Buffer& data, bool end_stream) override {
      if (end_stream && content_.Empty()) {
        Send(data);  // the whole content at once (the usual case): no stop in content_
        return;
      }
      content_.Move(data);
      if (end_stream) {
        Send();
      }
    }

   private:
    void Send() { Send(content_); }
    void Send(Buffer& content) {
      codec_.output_.WriteFrame([&](Buffer& out) {
        bolt::EncodeFrame(head_, id_, class_len_, header_len_, meta_, content, out);
      });
      if (head_.oneway()) {
        // No response will come: the stream ends now with a success made up here.
        ResponseDecoder& decoder = decoder_;
        RpcHead answer;
        answer.proto = head_.proto;
        answer.ver1 = head_.ver1;
        answer.type = bolt::kTypeResponse;
        answer.cmd_code = bolt::kCmdResponse;
        codec_.Retire(id_);
        auto headers = std::make_unique<ResponseHeaders>();
        headers->status = 200;
        headers->content_length = 0;
        headers->rpc = std::move(answer);
        decoder.DecodeHeaders(std::move(headers), true);
      }
    }

    BoltClientCodec& codec_;
    const uint32_t id_;
    ResponseDecoder& decoder_;
    RpcHead head_;  // fixed fields only
    size_t class_len_ = 0;
    size_t header_len_ = 0;
    std::string meta_;  // class and header map, encoded
    Buffer content_;
  };

  uint32_t NextId() {
    if (!wrapped_) {
      // Until the counter first wraps, every id is new: no lookups.
      if (++next_id_ != 0) {
        return next_id_;
      }
      wrapped_ = true;
    }
    do {
      ++next_id_;  // wraps at 2^32
    } while (next_id_ == 0 || streams_.contains(next_id_) || heartbeats_.contains(next_id_));
    return next_id_;
  }

  void Retire(uint32_t id) { RetireStream(streams_, retired_, id); }

  CodecOutput& output_;
  const CodecOptions options_;
  uint32_t next_id_;
  bool wrapped_ = false;  // next_id_ went past 2^32 - 1 once: ids may be in use again
  uint64_t last_id_ = 0;
  uint64_t late_responses_ = 0;
  std::unique_ptr<ResponseHeaders> next_;  // the head the next frame decodes into
  StreamMap<uint32_t, Stream> streams_;
  std::unordered_map<uint32_t, std::function<void()>> heartbeats_;
  std::vector<StreamMap<uint32_t, Stream>::node_type> retired_;
};

}  // namespace

ServerCodecPtr BoltCodecFactory::CreateServerCodec(CodecOutput& output,
                                                   ServerCodecCallbacks& callbacks,
                                                   const CodecOptions& options) const {
  return std::make_unique<BoltServerCodec>(output, callbacks, options);
}

ClientCodecPtr BoltCodecFactory::CreateClientCodec(CodecOutput& output,
                                                   const CodecOptions& options) const {
  return std::make_unique<BoltClientCodec>(output, options);
}

}  // namespace ottava::mesh
