#pragma once

// An in-process stand-in for the sidecar's Layotto Runtime service, so the SDK and ottavactl can be
// tested without the real sidecar. It keeps simple in-memory semantics (state with version etags,
// locks, sequences, configuration with watchers, topic queues) and records the last request of each
// kind so tests can check what went over the wire.
//
// Known component names: state store "state", lock store "lock", sequencer "sequencer",
// configuration store "config", pub/sub "pubsub"; any other name fails with INVALID_ARGUMENT.
// Special inputs: GetState of key "hang" and a subscription to topic "silent" block until the
// client gives up (deadline or cancel), to test the SDK's deadlines.
//
// Threading: handlers run on gRPC's sync server threads; all state is guarded by one mutex.

#include <grpcpp/server.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"

namespace ottava::sdk::testing {

namespace rt = spec::proto::runtime::v1;

class FakeRuntime final : public rt::Runtime::Service {
 public:
  FakeRuntime() = default;
  ~FakeRuntime() override;

  /// Starts serving on 127.0.0.1 with a free port and returns "127.0.0.1:<port>".
  std::string Start();

  /// Ends every open stream (the client sees a clean end) and stops the server.
  void Stop();

  /// Makes every open and future stream end cleanly, as a sidecar shutting down would.
  void EndStreams();

  /// Queues an event for `topic` of pub/sub "pubsub" (delivered to the next subscriber).
  void AddEvent(const std::string& topic, const std::string& id, const std::string& data);

  /// The acknowledgements received so far: (event id, TopicEventResponse status).
  std::vector<std::pair<std::string, int>> acks();

  /// Waits until at least `count` acknowledgements arrived; false on timeout.
  bool WaitForAcks(size_t count, absl::Duration timeout);

  /// Waits until at least `count` configuration watchers are registered; false on timeout.
  bool WaitForConfigWatchers(size_t count, absl::Duration timeout);

  // The last request of each kind (default instances until one arrives).
  rt::SayHelloRequest last_hello();
  rt::GetStateRequest last_get_state();
  rt::GetBulkStateRequest last_get_bulk_state();
  rt::SaveStateRequest last_save_state();
  rt::DeleteStateRequest last_delete_state();
  rt::ExecuteStateTransactionRequest last_transaction();
  rt::TryLockRequest last_try_lock();
  rt::GetNextIdRequest last_get_next_id();
  rt::GetConfigurationRequest last_get_configuration();
  rt::SaveConfigurationRequest last_save_configuration();
  rt::PublishEventRequest last_publish();
  rt::SubscribeTopicEventsRequestInitial last_subscription();

  // rt::Runtime::Service
  grpc::Status SayHello(grpc::ServerContext* context,
                        const rt::SayHelloRequest* request,
                        rt::SayHelloResponse* response) override;
  grpc::Status GetState(grpc::ServerContext* context,
                        const rt::GetStateRequest* request,
                        rt::GetStateResponse* response) override;
  grpc::Status GetBulkState(grpc::ServerContext* context,
                            const rt::GetBulkStateRequest* request,
                            rt::GetBulkStateResponse* response) override;
  grpc::Status SaveState(grpc::ServerContext* context,
                         const rt::SaveStateRequest* request,
                         google::protobuf::Empty* response) override;
  grpc::Status DeleteState(grpc::ServerContext* context,
                           const rt::DeleteStateRequest* request,
                           google::protobuf::Empty* response) override;
  grpc::Status ExecuteStateTransaction(grpc::ServerContext* context,
                                       const rt::ExecuteStateTransactionRequest* request,
                                       google::protobuf::Empty* response) override;
  grpc::Status TryLock(grpc::ServerContext* context,
                       const rt::TryLockRequest* request,
                       rt::TryLockResponse* response) override;
  grpc::Status Unlock(grpc::ServerContext* context,
                      const rt::UnlockRequest* request,
                      rt::UnlockResponse* response) override;
  grpc::Status LockKeepAlive(grpc::ServerContext* context,
                             const rt::LockKeepAliveRequest* request,
                             rt::LockKeepAliveResponse* response) override;
  grpc::Status GetNextId(grpc::ServerContext* context,
                         const rt::GetNextIdRequest* request,
                         rt::GetNextIdResponse* response) override;
  grpc::Status GetConfiguration(grpc::ServerContext* context,
                                const rt::GetConfigurationRequest* request,
                                rt::GetConfigurationResponse* response) override;
  grpc::Status SaveConfiguration(grpc::ServerContext* context,
                                 const rt::SaveConfigurationRequest* request,
                                 google::protobuf::Empty* response) override;
  grpc::Status DeleteConfiguration(grpc::ServerContext* context,
                                   const rt::DeleteConfigurationRequest* request,
                                   google::protobuf::Empty* response) override;
  grpc::Status SubscribeConfiguration(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<rt::SubscribeConfigurationResponse,
                               rt::SubscribeConfigurationRequest>* stream) override;
  grpc::Status PublishEvent(grpc::ServerContext* context,
                            const rt::PublishEventRequest* request,
                            google::protobuf::Empty* response) override;
  grpc::Status SubscribeTopicEvents(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<rt::SubscribeTopicEventsResponse, rt::SubscribeTopicEventsRequest>*
          stream) override;

 private:
  struct StateValue {
    std::string data;
    int64_t version = 0;
    bool has_ttl = false;
  };
  struct Watcher {
    std::vector<std::string> keys;
    std::deque<rt::SubscribeConfigurationResponse> pending;
  };

  grpc::Status CheckEtag(const std::string& key,
                         const rt::Etag* etag,
                         rt::StateOptions::StateConcurrency concurrency)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplySave(const rt::StateItem& item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyWatchers(const rt::ConfigurationItem& item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<grpc::Server> server_;

  absl::Mutex mu_;
  bool streams_ended_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, StateValue> state_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> lock_owners_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> sequences_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, rt::ConfigurationItem> configuration_ ABSL_GUARDED_BY(mu_);
  std::map<int, Watcher> watchers_ ABSL_GUARDED_BY(mu_);
  int next_watcher_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::deque<rt::TopicEventRequest>> topics_ ABSL_GUARDED_BY(mu_);
  int64_t next_event_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<std::string, int>> acks_ ABSL_GUARDED_BY(mu_);

  rt::SayHelloRequest last_hello_ ABSL_GUARDED_BY(mu_);
  rt::GetStateRequest last_get_state_ ABSL_GUARDED_BY(mu_);
  rt::GetBulkStateRequest last_get_bulk_state_ ABSL_GUARDED_BY(mu_);
  rt::SaveStateRequest last_save_state_ ABSL_GUARDED_BY(mu_);
  rt::DeleteStateRequest last_delete_state_ ABSL_GUARDED_BY(mu_);
  rt::ExecuteStateTransactionRequest last_transaction_ ABSL_GUARDED_BY(mu_);
  rt::TryLockRequest last_try_lock_ ABSL_GUARDED_BY(mu_);
  rt::GetNextIdRequest last_get_next_id_ ABSL_GUARDED_BY(mu_);
  rt::GetConfigurationRequest last_get_configuration_ ABSL_GUARDED_BY(mu_);
  rt::SaveConfigurationRequest last_save_configuration_ ABSL_GUARDED_BY(mu_);
  rt::PublishEventRequest last_publish_ ABSL_GUARDED_BY(mu_);
  rt::SubscribeTopicEventsRequestInitial last_subscription_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ottava::sdk::testing
