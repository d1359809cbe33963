#pragma once

// The C++ client SDK for the Ottava sidecar's Layotto API (spec.proto.runtime.v1.Runtime).
//
// Every method blocks the calling thread until the sidecar answers or the per-call deadline
// (ClientOptions::timeout) passes. Results are small plain structs; callers that need a field this
// API does not carry use stub() with raw protos. Errors are the gRPC status the sidecar returned,
// converted to absl::Status with the same code and message (DESIGN.md §5).
//
// Threading: a Client is immutable after Connect() and may be shared by any number of threads.
// A stream object (ConfigurationWatch, TopicSubscription) is used by one reading thread; Cancel()
// and TopicSubscription::Ack() may be called from other threads. Streams may outlive the Client.

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"

namespace ottava::sdk {

// Every member of the plain structs below has an initializer, so callers can fill them with
// designated initializers ({.key = "k", .value = "v"}) without -Wmissing-field-initializers.

/// String metadata, as carried by every Layotto request (e.g. {"ttlInSeconds", "60"}).
using Metadata = std::map<std::string, std::string>;

/// How a Client talks to the sidecar.
/// What InvokeService answered.
struct InvokeResult {
  std::string data;
  std::string content_type;
};

struct ClientOptions {
  /// Deadline of every unary call, and of the wait for a topic subscription to be confirmed.
  std::chrono::milliseconds timeout{5000};
  /// When true, calls wait (up to their deadline) for the sidecar to accept the connection instead
  /// of failing fast with UNAVAILABLE; handy while a sidecar is starting.
  bool wait_for_ready = false;
};

/// Options of a long-lived stream (configuration watch, topic subscription).
struct StreamOptions {
  /// When positive, the stream ends with DEADLINE_EXCEEDED after this long. Zero: no deadline.
  std::chrono::milliseconds max_duration{0};
};

/// StateOptions.StateConcurrency: first-write = the etag must match (or the key must be absent when
/// no etag is given); last-write = an absent etag overwrites unconditionally.
enum class Concurrency { kUnspecified, kFirstWrite, kLastWrite };

/// StateOptions.StateConsistency.
enum class Consistency { kUnspecified, kEventual, kStrong };

/// A stored state value.
struct StateEntry {
  std::string key{};
  /// The bytes stored (any content, not necessarily text).
  std::string value{};
  /// Opaque version; pass it back to SaveState/DeleteState for optimistic concurrency.
  std::string etag{};
  /// E.g. "ttlExpireTime" (RFC 3339) when the value was saved with a TTL.
  Metadata metadata{};
};

/// One key of a GetBulkState answer.
struct BulkStateEntry {
  std::string key{};
  /// False when the key is absent or `error` is set.
  bool found = false;
  std::string value{};
  std::string etag{};
  /// A per-key error reported by the store; empty on success.
  std::string error{};
  Metadata metadata{};
};

/// A value to save (also the item of a transaction upsert).
struct StateWrite {
  std::string key{};
  std::string value{};
  /// When set, the write succeeds only if the stored etag matches (ABORTED otherwise).
  std::optional<std::string> etag{};
  Concurrency concurrency = Concurrency::kUnspecified;
  Consistency consistency = Consistency::kUnspecified;
  /// When set, adds metadata "ttlInSeconds" (the value expires after this many seconds).
  std::optional<int32_t> ttl_seconds{};
  Metadata metadata{};
};

/// A key to delete.
struct StateDelete {
  std::string key{};
  /// When set, the delete succeeds only if the stored etag matches (ABORTED otherwise).
  std::optional<std::string> etag{};
  Concurrency concurrency = Concurrency::kUnspecified;
  Consistency consistency = Consistency::kUnspecified;
  Metadata metadata{};
};

/// One operation of ExecuteStateTransaction. A delete uses only item.key, item.etag, the options
/// and item.metadata.
struct StateOperation {
  enum class Type { kUpsert, kDelete };
  Type type = Type::kUpsert;
  StateWrite item{};

  static StateOperation Upsert(StateWrite item) { return {Type::kUpsert, std::move(item)}; }
  static StateOperation Delete(std::string key, std::optional<std::string> etag = std::nullopt) {
    StateWrite item;
    item.key = std::move(key);
    item.etag = std::move(etag);
    return {Type::kDelete, std::move(item)};
  }
};

/// The outcome of Unlock and LockKeepAlive (UnlockResponse.Status / LockKeepAliveResponse.Status).
enum class LockStatus { kSuccess, kLockDoesNotExist, kLockBelongsToOthers, kInternalError };

/// The Layotto wire name of a LockStatus: "SUCCESS", "LOCK_UNEXIST", "LOCK_BELONG_TO_OTHERS",
/// "INTERNAL_ERROR".
std::string_view LockStatusName(LockStatus status);

/// SequencerOptions.AutoIncrement: weak = best-effort increasing, strong = strictly increasing.
enum class IdIncrement { kWeak, kStrong };

/// A configuration item (Layotto ConfigurationItem). Empty content in an update means "deleted".
struct ConfigurationItem {
  std::string key{};
  std::string content{};
  std::string group{};
  std::string label{};
  Metadata tags{};
  Metadata metadata{};
};

/// Selects configuration items for Get, Delete and Subscribe.
struct ConfigurationQuery {
  /// The keys; an empty list means every key, where the store supports that.
  std::vector<std::string> keys{};
  std::string group{};
  std::string label{};
  Metadata metadata{};
};

/// One message of a configuration subscription: the items that changed.
struct ConfigurationUpdate {
  std::string store_name{};
  std::vector<ConfigurationItem> items{};
};

/// An event delivered by a topic subscription (a CloudEvents-shaped TopicEventRequest).
struct TopicEvent {
  std::string id{};
  std::string source{};
  std::string type{};
  std::string spec_version{};
  std::string data_content_type{};
  std::string topic{};
  std::string pubsub_name{};
  /// The payload bytes.
  std::string data{};
  Metadata metadata{};
};

/// How the application processed an event (TopicEventResponse status).
enum class EventStatus { kSuccess, kRetry, kDrop };

/// What to subscribe to.
struct TopicSubscriptionRequest {
  std::string pubsub_name{};
  std::string topic{};
  /// Where events go after the sidecar gives up retrying them.
  std::optional<std::string> dead_letter_topic{};
  Metadata metadata{};
};

/// A running SubscribeConfiguration stream. Destroying it cancels the stream.
class ConfigurationWatch {
 public:
  ~ConfigurationWatch();
  ConfigurationWatch(const ConfigurationWatch&) = delete;
  ConfigurationWatch& operator=(const ConfigurationWatch&) = delete;

  /// Blocks until the next update. std::nullopt when the stream ended cleanly (the sidecar finished
  /// it, or Cancel() was called); an error status when it failed (DEADLINE_EXCEEDED once
  /// StreamOptions::max_duration passed). After the end every call returns the same result.
  /// Called by one thread at a time.
  absl::StatusOr<std::optional<ConfigurationUpdate>> Read();

  /// Ends the stream; a Read blocked in another thread returns std::nullopt. Any thread.
  void Cancel();

 private:
  friend class Client;
  using Stream = grpc::ClientReaderWriter<spec::proto::runtime::v1::SubscribeConfigurationRequest,
                                          spec::proto::runtime::v1::SubscribeConfigurationResponse>;
  ConfigurationWatch(std::shared_ptr<grpc::Channel> channel,
                     std::unique_ptr<grpc::ClientContext> context);
  absl::Status Finish();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<Stream> stream_;
  std::atomic<bool> cancelled_{false};
  std::optional<absl::Status> final_status_;
};

/// A running SubscribeTopicEvents stream. Destroying it cancels the stream (see Close()).
class TopicSubscription {
 public:
  ~TopicSubscription();
  TopicSubscription(const TopicSubscription&) = delete;
  TopicSubscription& operator=(const TopicSubscription&) = delete;

  /// Blocks until the next event. std::nullopt when the stream ended cleanly (the sidecar finished
  /// it, or Cancel()/Close() was called); an error status when it failed (DEADLINE_EXCEEDED once
  /// StreamOptions::max_duration passed). Every event must be acknowledged with Ack(), or the
  /// sidecar redelivers it later. Called by one thread at a time.
  absl::StatusOr<std::optional<TopicEvent>> Read();

  /// Reports how event `id` was processed. Any thread; calls are serialised.
  absl::Status Ack(const std::string& id, EventStatus status);

  /// Graceful end: half-closes the stream so every Ack already written reaches the sidecar, then
  /// waits (up to ClientOptions::timeout) for the sidecar to finish it, discarding events that were
  /// still in flight (they are not acknowledged, so they are redelivered later). Returns the final
  /// status (OK for a clean end). Called by the reading thread, not concurrently with Read().
  absl::Status Close();

  /// Abrupt end: cancels the stream at once; Acks not yet delivered may be lost. A Read blocked in
  /// another thread returns std::nullopt. Any thread.
  void Cancel();

 private:
  friend class Client;
  using Stream = grpc::ClientReaderWriter<spec::proto::runtime::v1::SubscribeTopicEventsRequest,
                                          spec::proto::runtime::v1::SubscribeTopicEventsResponse>;
  TopicSubscription(std::shared_ptr<grpc::Channel> channel,
                    std::unique_ptr<grpc::ClientContext> context,
                    std::chrono::milliseconds close_timeout);
  absl::Status Finish();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<Stream> stream_;
  std::chrono::milliseconds close_timeout_;
  std::atomic<bool> cancelled_{false};
  /// An event read while waiting for the subscription to be confirmed, returned by the first Read.
  std::optional<TopicEvent> pending_;
  std::optional<absl::Status> final_status_;
  absl::Mutex write_mu_;
  bool writes_done_ ABSL_GUARDED_BY(write_mu_) = false;
};

using ConfigurationWatchPtr = std::unique_ptr<ConfigurationWatch>;
using TopicSubscriptionPtr = std::unique_ptr<TopicSubscription>;

/// A connection to one sidecar. Create with Connect().
class Client {
 public:
  /// Creates a client for `address` ("host:port", or any gRPC target such as "unix:/path").
  /// Connecting is lazy: an unreachable sidecar shows up as UNAVAILABLE on the first call.
  /// INVALID_ARGUMENT when the address is empty or the timeout is not positive.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(std::string address,
                                                         ClientOptions options = {});

  // --- RPC -----------------------------------------------------------------------------------

  /// InvokeService: calls `method` of app `id` through the sidecar's mesh. `verb` is an HTTP verb
  /// (GET, POST, ...; empty: POST); `headers` travel as gRPC metadata, which the mesh forwards as
  /// HTTP headers. Returns the response data and content type.
  absl::StatusOr<InvokeResult> InvokeService(
      const std::string& id,
      const std::string& method,
      const std::string& data,
      const std::string& verb = "",
      const std::string& content_type = "",
      const std::string& query = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {});

  // --- Hello ---------------------------------------------------------------------------------

  /// SayHello: returns the greeting of the hello service `service_name` for `name`.
  absl::StatusOr<std::string> SayHello(const std::string& service_name, const std::string& name);

  // --- State ---------------------------------------------------------------------------------

  /// GetState. std::nullopt when the key is absent (the sidecar answers with no data and no etag).
  absl::StatusOr<std::optional<StateEntry>> GetState(
      const std::string& store,
      const std::string& key,
      Consistency consistency = Consistency::kUnspecified,
      const Metadata& metadata = {});

  /// GetBulkState: one entry per key the sidecar answered for, in its order.
  absl::StatusOr<std::vector<BulkStateEntry>> GetBulkState(const std::string& store,
                                                           const std::vector<std::string>& keys,
                                                           int32_t parallelism = 0,
                                                           const Metadata& metadata = {});

  /// SaveState of one item. ABORTED on an etag mismatch or a first-write conflict.
  absl::Status SaveState(const std::string& store, const StateWrite& item);

  /// SaveState of several items in one request (not atomic; see ExecuteStateTransaction).
  absl::Status SaveStates(const std::string& store, const std::vector<StateWrite>& items);

  /// DeleteState. Deleting an absent key succeeds. ABORTED on an etag mismatch.
  absl::Status DeleteState(const std::string& store, const StateDelete& item);

  /// ExecuteStateTransaction: applies every operation or none.
  absl::Status ExecuteStateTransaction(const std::string& store,
                                       const std::vector<StateOperation>& operations,
                                       const Metadata& metadata = {});

  // --- Lock ----------------------------------------------------------------------------------

  /// TryLock: true when `owner` now holds `resource` for `expire_seconds`; false when another
  /// owner holds it (the lock is not re-entrant).
  absl::StatusOr<bool> TryLock(const std::string& store,
                               const std::string& resource,
                               const std::string& owner,
                               int32_t expire_seconds);

  /// Unlock: releases `resource` if `owner` holds it.
  absl::StatusOr<LockStatus> Unlock(const std::string& store,
                                    const std::string& resource,
                                    const std::string& owner);

  /// LockKeepAlive: extends a lock `owner` holds to `expire_seconds` from now.
  absl::StatusOr<LockStatus> LockKeepAlive(const std::string& store,
                                           const std::string& resource,
                                           const std::string& owner,
                                           int32_t expire_seconds);

  // --- Sequencer -----------------------------------------------------------------------------

  /// GetNextId: the next id of the sequence `key`.
  absl::StatusOr<int64_t> GetNextId(const std::string& store,
                                    const std::string& key,
                                    IdIncrement increment = IdIncrement::kWeak,
                                    const Metadata& metadata = {});

  // --- Configuration -------------------------------------------------------------------------

  /// GetConfiguration: the items found (absent keys are simply missing from the result).
  absl::StatusOr<std::vector<ConfigurationItem>> GetConfiguration(const std::string& store,
                                                                  const ConfigurationQuery& query);

  /// SaveConfiguration of `items` (each item's own group and label apply).
  absl::Status SaveConfiguration(const std::string& store,
                                 const std::vector<ConfigurationItem>& items,
                                 const Metadata& metadata = {});

  /// DeleteConfiguration of the items `query` selects.
  absl::Status DeleteConfiguration(const std::string& store, const ConfigurationQuery& query);

  /// SubscribeConfiguration: sends one request and returns the stream of later changes. The
  /// sidecar does not confirm a configuration subscription, so a change made right after this
  /// returns may race with its registration.
  absl::StatusOr<ConfigurationWatchPtr> SubscribeConfiguration(const std::string& store,
                                                               const ConfigurationQuery& query,
                                                               StreamOptions stream_options = {});

  // --- Pub/Sub -------------------------------------------------------------------------------

  /// PublishEvent: returns once the broker has acknowledged the event. An empty `content_type`
  /// leaves the choice to the sidecar. Metadata "rawPayload"="true" skips the CloudEvents envelope.
  absl::Status PublishEvent(const std::string& pubsub,
                            const std::string& topic,
                            const std::string& data,
                            const std::string& content_type = "",
                            const Metadata& metadata = {});

  /// SubscribeTopicEvents: opens the stream, sends the initial request and returns once the
  /// sidecar has confirmed the subscription (DEADLINE_EXCEEDED if it does not within
  /// ClientOptions::timeout). Events published after this returns are delivered to it.
  absl::StatusOr<TopicSubscriptionPtr> SubscribeTopicEvents(const TopicSubscriptionRequest& request,
                                                            StreamOptions stream_options = {});

  // --- Raw access ----------------------------------------------------------------------------

  /// The generated stub, for calls or fields this API does not cover. Thread-safe.
  spec::proto::runtime::v1::Runtime::Stub& stub() { return *stub_; }

  /// The channel, e.g. to build stubs of other services served on the same port.
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  /// Sets the deadline and wait-for-ready flag of ClientOptions on a context for a raw stub call.
  void ApplyCallOptions(grpc::ClientContext& context) const;

  const ClientOptions& options() const { return options_; }

 private:
  Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options);
  std::unique_ptr<grpc::ClientContext> NewStreamContext(StreamOptions stream_options) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<spec::proto::runtime::v1::Runtime::Stub> stub_;
  ClientOptions options_;
};

using ClientPtr = std::unique_ptr<Client>;

}  // namespace ottava::sdk
