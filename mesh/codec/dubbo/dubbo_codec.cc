#include "mesh/codec/dubbo/dubbo_codec.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mesh/codec/dubbo/dubbo_frame.h"

namespace ottava::mesh {
namespace {

using dubbo::Frame;

// Longest error message put in a made-up response.
constexpr size_t kMaxErrorMessageBytes = 4096;

// The Dubbo status of a response the mesh made itself, or of a non-Dubbo response.
uint8_t DubboStatusFor(const ResponseHeaders& headers) {
  switch (headers.local_reply) {
    case LocalReplyReason::kNoRoute:
    case LocalReplyReason::kNoHealthyHost:
    case LocalReplyReason::kConnectFailure:
      return dubbo::kServiceNotFound;
    case LocalReplyReason::kOverflow:
      return dubbo::kServerThreadpoolExhausted;
    case LocalReplyReason::kTimeout:
      return dubbo::kServerTimeout;
    case LocalReplyReason::kUpstreamReset:
      return dubbo::kServerError;
    default:
      break;
  }
  const int status = headers.status;
  if (status >= 200 && status < 300) {
    return dubbo::kOk;
  }
  switch (status) {
    case 400:
      return dubbo::kBadRequest;
    case 404:
      return dubbo::kServiceNotFound;
    case 429:
    case 503:
      return dubbo::kServerThreadpoolExhausted;
    case 504:
      return dubbo::kServerTimeout;
    default:
      return dubbo::kServerError;
  }
}

// Moves a finished stream out of `streams` into `retired`, to be destroyed later: it may be
// finishing up in its own member function.
template <typename Map, typename Id>
void RetireStream(Map& streams, std::vector<typename Map::mapped_type>& retired, Id id) {
  auto it = streams.find(id);
  if (it != streams.end()) {
    retired.push_back(std::move(it->second));
    streams.erase(it);
  }
}

// ---------------------------------------------------------------------------------------------
// Server codec.

class DubboServerCodec : public ServerCodec {
 public:
  DubboServerCodec(CodecOutput& output,
                   ServerCodecCallbacks& callbacks,
                   const CodecOptions& options)
      : output_(output), callbacks_(callbacks), options_(options) {}

  absl::Status Dispatch(Buffer& data) override {
    retired_.clear();
    while (true) {
      Frame frame;
      absl::StatusOr<bool> decoded = dubbo::DecodeFrame(data, options_.max_frame_bytes, frame);
      if (!decoded.ok()) {
        return decoded.status();
      }
      if (!*decoded) {
        return absl::OkStatus();
      }
      if (!frame.is_request()) {
        if (frame.is_event()) {
          continue;  // an answer to nothing we sent: harmless
        }
        return absl::InvalidArgumentError("dubbo: a response frame arrived from a client");
      }
      if (frame.is_event()) {
        if (frame.two_way()) {
          Buffer out;
          dubbo::EncodeHeartbeat(frame.request_id, /*response=*/true, out);
          output_.Write(out);
        }
        callbacks_.OnHeartbeat();
        continue;
      }
      StartStream(std::move(frame));
    }
  }

  absl::Status DispatchEof() override { return absl::OkStatus(); }
  bool StreamActive() const override { return !streams_.empty(); }
  bool WantsClose() const override { return false; }
  void StartDraining() override {}

 private:
  class Stream : public ResponseEncoder {
   public:
    Stream(DubboServerCodec& codec, uint64_t id, const Frame& request)
        : codec_(codec),
          id_(id),
          request_id_(request.request_id),
          serialization_(request.serialization()),
          two_way_(request.two_way()) {}

    void EncodeHeaders(ResponseHeaders& headers, bool end_stream) override {
      if (headers.rpc.has_value() && headers.rpc->proto == dubbo::kRpcProto &&
          headers.local_reply == LocalReplyReason::kNone) {
        status_ = static_cast<uint8_t>(headers.rpc->status);
        serialization_ = headers.rpc->codec;
        pass_body_ = true;
      } else {
        // Made up by the mesh (or from a non-Dubbo upstream): a status and, when it is not OK,
        // the message as a hessian2 string, which is what a Dubbo client decodes there.
        status_ = DubboStatusFor(headers);
        pass_body_ = status_ == dubbo::kOk;
      }
      if (end_stream) {
        Finish();
      }
    }

    void EncodeData(Buffer& data, bool end_stream) override {
      if (pass_body_) {
        body_.Move(data);
      } else {
        const size_t room =
            kMaxErrorMessageBytes - std::min(kMaxErrorMessageBytes, message_.size());
        const size_t take = std::min(room, data.Length());
        if (take > 0) {
          const size_t at = message_.size();
          message_.resize(at + take);
          data.CopyOut(0, take, message_.data() + at);
        }
        data.Drain(data.Length());
      }
      if (end_stream) {
        Finish();
      }
    }

   private:
    void Finish() {
      if (two_way_) {
        Buffer out;
        if (pass_body_) {
          dubbo::EncodeFrame(serialization_ & dubbo::kSerializationMask, status_, request_id_,
                             body_, out);
        } else {
          while (!message_.empty() && (message_.back() == '\n' || message_.back() == '\r')) {
            message_.pop_back();
          }
          if (message_.empty()) {
            message_ = "ottava: " + dubbo::StatusName(status_);
          }
          dubbo::EncodeErrorResponse(request_id_, serialization_, status_, message_, out);
        }
        codec_.output_.Write(out);
      }
      codec_.Retire(id_);  // destroys nothing yet: kept until the next Dispatch
    }

    DubboServerCodec& codec_;
    const uint64_t id_;
    const uint64_t request_id_;
    uint8_t serialization_;
    const bool two_way_;
    uint8_t status_ = dubbo::kOk;
    bool pass_body_ = true;
    Buffer body_;
    std::string message_;
  };

  void Refuse(const Frame& frame, std::string_view message) {
    if (!frame.two_way()) {
      return;
    }
    Buffer out;
    dubbo::EncodeErrorResponse(frame.request_id, frame.serialization(), dubbo::kBadRequest, message,
                               out);
    output_.Write(out);
  }

  void StartStream(Frame frame) {
    if (frame.serialization() != dubbo::kSerializationHessian2) {
      Refuse(frame, "ottava: only hessian2 serialization (id 2) is supported, got id " +
                        std::to_string(frame.serialization()));
      return;
    }
    const size_t body_length = frame.body.Length();
    std::string_view body(frame.body.Linearize(body_length), body_length);
    absl::StatusOr<dubbo::RequestInfo> info = dubbo::ParseRequestBody(body);
    if (!info.ok()) {
      Refuse(frame, "ottava: " + std::string(info.status().message()));
      return;
    }
    const uint64_t id = ++next_stream_id_;
    auto stream = std::make_unique<Stream>(*this, id, frame);
    Stream& encoder = *stream;
    streams_.emplace(id, std::move(stream));
    auto headers = std::make_unique<RequestHeaders>();
    headers->method = info->method;
    headers->path = "/" + info->service + "/" + info->method;
    headers->service = info->service;
    headers->headers.Add("dubbo", info->dubbo_version);
    headers->headers.Add("service", info->service);
    headers->headers.Add("version", info->version);
    headers->headers.Add("method", info->method);
    if (!info->group.empty()) {
      headers->headers.Add("group", info->group);
    }
    headers->stream_id = id;
    headers->content_length = static_cast<int64_t>(body_length);
    headers->timeout_ms = info->timeout_ms;
    RpcHead head;
    head.proto = dubbo::kRpcProto;
    head.type = frame.two_way() ? 1 : 2;
    head.cmd_code = 1;
    head.codec = frame.serialization();
    head.timeout_ms = static_cast<int32_t>(std::min<int64_t>(info->timeout_ms, INT32_MAX));
    headers->rpc = std::move(head);
    const bool has_body = body_length > 0;
    RequestDecoder& decoder = callbacks_.NewStream(encoder, id);
    decoder.DecodeHeaders(std::move(headers), !has_body);
    if (has_body && streams_.contains(id)) {
      decoder.DecodeData(frame.body, true);
    }
  }

  void Retire(uint64_t id) { RetireStream(streams_, retired_, id); }

  CodecOutput& output_;
  ServerCodecCallbacks& callbacks_;
  const CodecOptions options_;
  uint64_t next_stream_id_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<Stream>> streams_;
  // Finished streams, destroyed at the next Dispatch (one may be finishing up in its caller).
  std::vector<std::unique_ptr<Stream>> retired_;
};

// ---------------------------------------------------------------------------------------------
// Client codec.

class DubboClientCodec : public MultiplexClientCodec {
 public:
  DubboClientCodec(CodecOutput& output, const CodecOptions& options)
      : output_(output), options_(options) {}

  RequestEncoder& NewStream(ResponseDecoder& decoder) override {
    retired_.clear();
    const uint64_t id = NextId();
    auto stream = std::make_unique<Stream>(*this, id, decoder);
    Stream& encoder = *stream;
    streams_.emplace(id, std::move(stream));
    last_id_ = id;
    return encoder;
  }

  uint64_t LastStreamId() const override { return last_id_; }

  void CancelStream(uint64_t id) override { Retire(id); }

  size_t ActiveStreams() const override { return streams_.size(); }

  void SendHeartbeat(std::function<void()> on_ack) override {
    const uint64_t id = NextId();
    heartbeats_.emplace(id, std::move(on_ack));
    Buffer out;
    dubbo::EncodeHeartbeat(id, /*response=*/false, out);
    output_.Write(out);
  }

  uint64_t late_responses() const override { return late_responses_; }

  absl::Status Dispatch(Buffer& data) override {
    retired_.clear();
    while (true) {
      Frame frame;
      absl::StatusOr<bool> decoded = dubbo::DecodeFrame(data, options_.max_frame_bytes, frame);
      if (!decoded.ok()) {
        return decoded.status();
      }
      if (!*decoded) {
        return absl::OkStatus();
      }
      if (frame.is_request()) {
        if (!frame.is_event()) {
          return absl::InvalidArgumentError("dubbo: an upstream sent a request frame");
        }
        if (frame.two_way()) {
          Buffer out;
          dubbo::EncodeHeartbeat(frame.request_id, /*response=*/true, out);
          output_.Write(out);
        }
        continue;
      }
      if (frame.is_event()) {
        auto hb = heartbeats_.find(frame.request_id);
        if (hb != heartbeats_.end()) {
          std::function<void()> on_ack = std::move(hb->second);
          heartbeats_.erase(hb);
          on_ack();
        }
        continue;
      }
      auto it = streams_.find(frame.request_id);
      if (it == streams_.end()) {
        ++late_responses_;  // its stream was abandoned (timed out, downstream gone)
        continue;
      }
      ResponseDecoder& decoder = it->second->decoder();
      Retire(frame.request_id);
      auto headers = std::make_unique<ResponseHeaders>();
      headers->status = dubbo::HttpStatusFromDubbo(frame.status);
      headers->content_length = static_cast<int64_t>(frame.body.Length());
      RpcHead head;
      head.proto = dubbo::kRpcProto;
      head.type = 0;
      head.cmd_code = 2;
      head.codec = frame.serialization();
      head.status = frame.status;
      headers->rpc = std::move(head);
      const bool has_body = !frame.body.Empty();
      decoder.DecodeHeaders(std::move(headers), !has_body);
      if (has_body) {
        decoder.DecodeData(frame.body, true);
      }
    }
  }

  absl::Status DispatchEof() override {
    if (!streams_.empty()) {
      return absl::UnavailableError("dubbo: the upstream closed with " +
                                    std::to_string(streams_.size()) + " requests in flight");
    }
    return absl::OkStatus();
  }

  bool StreamActive() const override { return !streams_.empty(); }
  bool WantsClose() const override { return false; }

 private:
  class Stream : public RequestEncoder {
   public:
    Stream(DubboClientCodec& codec, uint64_t id, ResponseDecoder& decoder)
        : codec_(codec), id_(id), decoder_(decoder) {}

    ResponseDecoder& decoder() { return decoder_; }

    void EncodeHeaders(RequestHeaders& headers, bool end_stream) override {
      uint8_t serialization = dubbo::kSerializationHessian2;
      two_way_ = true;
      if (headers.rpc.has_value() && headers.rpc->proto == dubbo::kRpcProto) {
        serialization = headers.rpc->codec & dubbo::kSerializationMask;
        two_way_ = !headers.rpc->oneway();
      } else if (const std::string* type = headers.headers.Get("rpc_request_type");
                 type != nullptr && *type == "oneway") {
        two_way_ = false;
      }
      flag_ = static_cast<uint8_t>(dubbo::kFlagRequest | (two_way_ ? dubbo::kFlagTwoWay : 0) |
                                   serialization);
      if (end_stream) {
        Send();
      }
    }

    void EncodeData(Buffer& data, bool end_stream) override {
      body_.Move(data);
      if (end_stream) {
        Send();
      }
    }

   private:
    void Send() {
      Buffer out;
      dubbo::EncodeFrame(flag_, 0, id_, body_, out);
      codec_.output_.Write(out);
      if (!two_way_) {
        // No response will come: the stream ends now with a success made up here.
        ResponseDecoder& decoder = decoder_;
        RpcHead answer;
        answer.proto = dubbo::kRpcProto;
        answer.type = 0;
        answer.cmd_code = 2;
        answer.codec = flag_ & dubbo::kSerializationMask;
        answer.status = dubbo::kOk;
        codec_.Retire(id_);
        auto headers = std::make_unique<ResponseHeaders>();
        headers->status = 200;
        headers->content_length = 0;
        headers->rpc = std::move(answer);
        decoder.DecodeHeaders(std::move(headers), true);
      }
    }

    DubboClientCodec& codec_;
    const uint64_t id_;
    ResponseDecoder& decoder_;
    uint8_t flag_ = 0;
    bool two_way_ = true;
    Buffer body_;
  };

  uint64_t NextId() {
    do {
      ++next_id_;  // 64 bits: wrapping is theoretical, skipped ids keep it safe anyway
    } while (next_id_ == 0 || streams_.contains(next_id_) || heartbeats_.contains(next_id_));
    return next_id_;
  }

  void Retire(uint64_t id) { RetireStream(streams_, retired_, id); }

  CodecOutput& output_;
  const CodecOptions options_;
  uint64_t next_id_ = 0;
  uint64_t last_id_ = 0;
  uint64_t late_responses_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<Stream>> streams_;
  std::unordered_map<uint64_t, std::function<void()>> heartbeats_;
  std::vector<std::unique_ptr<Stream>> retired_;
};

}  // namespace

ServerCodecPtr DubboCodecFactory::CreateServerCodec(CodecOutput& output,
                                                    ServerCodecCallbacks& callbacks,
                                                    const CodecOptions& options) const {
  return std::make_unique<DubboServerCodec>(output, callbacks, options);
}

ClientCodecPtr DubboCodecFactory::CreateClientCodec(CodecOutput& output,
                                                    const CodecOptions& options) const {
  return std::make_unique<DubboClientCodec>(output, options);
}

}  // namespace ottava::mesh
