// One sidecar, two ecosystems, one set of data: what a Dapr app writes (gRPC or HTTP) a Layotto
// app reads, and the other way round, etags and locks included. Run on the in-memory components
// and on Redis (a real redis-server on a free port), where the data must also sit in Dapr's own
// layout (a hash with `data` and `version` under "<app id>||<key>").

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "dapr/proto/runtime/v1/dapr.grpc.pb.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/process.h"
#include "test/support/redis_server.h"
#include "test/support/runtime_calls.h"

namespace ottava::test {
namespace {

namespace dv1 = dapr::proto::runtime::v1;
namespace lv1 = spec::proto::runtime::v1;
using nlohmann::json;

enum class Backend { kInMemory, kRedis };

class CrossApiTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    json config = InMemoryConfig("cross");
    if (GetParam() == Backend::kRedis) {
      auto redis = RedisServer::Start();
      ASSERT_TRUE(redis.ok()) << redis.status();
      redis_ = std::move(*redis);
      const json metadata = {{"redisHost", redis_->address()}};
      config["components"]["state"]["state"] = {{"type", "redis"}, {"metadata", metadata}};
      config["components"]["lock"]["lock"] = {{"type", "redis"}, {"metadata", metadata}};
    }
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    auto channel =
        grpc::CreateChannel(sidecar_->grpc_address(), grpc::InsecureChannelCredentials());
    dapr_ = dv1::Dapr::NewStub(channel);
    layotto_ = lv1::Runtime::NewStub(channel);
    http_ = std::make_unique<httplib::Client>("http://" + sidecar_->dapr_http_address());
    http_->set_read_timeout(5);
  }
  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  grpc::Status DaprSave(const std::string& key,
                        const std::string& value,
                        const std::string& etag = "") {
    dv1::SaveStateRequest request;
    request.set_store_name("state");
    auto* item = request.add_states();
    item->set_key(key);
    item->set_value(value);
    if (!etag.empty()) {
      item->mutable_etag()->set_value(etag);
    }
    google::protobuf::Empty empty;
    return dapr_->SaveState(CallContext().get(), request, &empty);
  }
  dv1::GetStateResponse DaprGet(const std::string& key) {
    dv1::GetStateRequest request;
    request.set_store_name("state");
    request.set_key(key);
    dv1::GetStateResponse response;
    grpc::Status status = dapr_->GetState(CallContext().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  lv1::GetStateResponse LayottoGet(const std::string& key) {
    lv1::GetStateResponse response;
    grpc::Status status = GetState(*layotto_, key, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<dv1::Dapr::Stub> dapr_;
  std::unique_ptr<lv1::Runtime::Stub> layotto_;
  std::unique_ptr<httplib::Client> http_;
};

TEST_P(CrossApiTest, StateWrittenThroughOneApiIsReadThroughTheOther) {
  // Dapr gRPC -> Layotto, with the same etag.
  ASSERT_TRUE(DaprSave("k1", "from-dapr-grpc").ok());
  lv1::GetStateResponse layotto_got = LayottoGet("k1");
  EXPECT_EQ(layotto_got.data(), "from-dapr-grpc");
  EXPECT_EQ(layotto_got.etag(), DaprGet("k1").etag());
  // Layotto -> Dapr gRPC and HTTP; Layotto's etag is good for a Dapr write.
  ASSERT_TRUE(SaveState(*layotto_, "k1", "from-layotto", layotto_got.etag()).ok());
  EXPECT_EQ(DaprGet("k1").data(), "from-layotto");
  auto http_got = http_->Get("/v1.0/state/state/k1");
  ASSERT_TRUE(http_got);
  EXPECT_EQ(http_got->status, 200);
  EXPECT_EQ(http_got->body, "from-layotto");
  // The old etag is stale for both.
  EXPECT_EQ(DaprSave("k1", "late", layotto_got.etag()).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(SaveState(*layotto_, "k1", "late", layotto_got.etag()).error_code(),
            grpc::StatusCode::ABORTED);

  // Dapr HTTP -> Layotto: a JSON value is stored as its JSON text.
  auto saved =
      http_->Post("/v1.0/state/state", R"([{"key":"k2","value":{"x":1}}])", "application/json");
  ASSERT_TRUE(saved);
  ASSERT_EQ(saved->status, 204) << saved->body;
  lv1::GetStateResponse k2 = LayottoGet("k2");
  EXPECT_EQ(k2.data(), R"({"x":1})");
  // Layotto's etag as Dapr HTTP's If-Match.
  httplib::Headers if_match{{"If-Match", k2.etag()}};
  auto deleted = http_->Delete("/v1.0/state/state/k2", if_match);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->status, 204) << deleted->body;
  EXPECT_TRUE(LayottoGet("k2").data().empty());

  // A Dapr transaction, seen by Layotto; a Layotto delete, seen by Dapr.
  ASSERT_TRUE(SaveState(*layotto_, "k3", "three").ok());
  dv1::ExecuteStateTransactionRequest tx;
  tx.set_storename("state");
  auto* upsert = tx.add_operations();
  upsert->set_operationtype("upsert");
  upsert->mutable_request()->set_key("k4");
  upsert->mutable_request()->set_value("four");
  auto* remove = tx.add_operations();
  remove->set_operationtype("delete");
  remove->mutable_request()->set_key("k3");
  google::protobuf::Empty empty;
  ASSERT_TRUE(dapr_->ExecuteStateTransaction(CallContext().get(), tx, &empty).ok());
  EXPECT_EQ(LayottoGet("k4").data(), "four");
  EXPECT_TRUE(LayottoGet("k3").data().empty());
  lv1::DeleteStateRequest layotto_delete;
  layotto_delete.set_store_name("state");
  layotto_delete.set_key("k4");
  ASSERT_TRUE(layotto_->DeleteState(CallContext().get(), layotto_delete, &empty).ok());
  EXPECT_TRUE(DaprGet("k4").data().empty());
  EXPECT_EQ(http_->Get("/v1.0/state/state/k4")->status, 204);

  if (redis_) {
    // Dapr's layout in Redis: what daprd itself would read.
    EXPECT_EQ(redis_->Cli({"HGET", "cross||k1", "data"}), "from-layotto");
    EXPECT_EQ(redis_->Cli({"HGET", "cross||k1", "version"}), DaprGet("k1").etag());
    EXPECT_EQ(redis_->Cli({"EXISTS", "cross||k4"}), "0");
  }
}

TEST_P(CrossApiTest, LocksAreSharedAcrossApis) {
  dv1::TryLockRequest dapr_lock;
  dapr_lock.set_store_name("lock");
  dapr_lock.set_resource_id("printer");
  dapr_lock.set_lock_owner("dapr-app");
  dapr_lock.set_expiry_in_seconds(30);
  dv1::TryLockResponse dapr_locked;
  ASSERT_TRUE(dapr_->TryLockAlpha1(CallContext().get(), dapr_lock, &dapr_locked).ok());
  EXPECT_TRUE(dapr_locked.success());

  // Layotto's app cannot take it, nor release it.
  lv1::TryLockRequest layotto_lock;
  layotto_lock.set_store_name("lock");
  layotto_lock.set_resource_id("printer");
  layotto_lock.set_lock_owner("layotto-app");
  layotto_lock.set_expire(30);
  lv1::TryLockResponse layotto_locked;
  ASSERT_TRUE(layotto_->TryLock(CallContext().get(), layotto_lock, &layotto_locked).ok());
  EXPECT_FALSE(layotto_locked.success());
  lv1::UnlockRequest layotto_unlock;
  layotto_unlock.set_store_name("lock");
  layotto_unlock.set_resource_id("printer");
  layotto_unlock.set_lock_owner("layotto-app");
  lv1::UnlockResponse layotto_unlocked;
  ASSERT_TRUE(layotto_->Unlock(CallContext().get(), layotto_unlock, &layotto_unlocked).ok());
  EXPECT_EQ(layotto_unlocked.status(), lv1::UnlockResponse::LOCK_BELONG_TO_OTHERS);

  // The owner releases it through Layotto's API (same owner id), then Layotto's app gets it and
  // Dapr's HTTP API sees it taken.
  layotto_unlock.set_lock_owner("dapr-app");
  ASSERT_TRUE(layotto_->Unlock(CallContext().get(), layotto_unlock, &layotto_unlocked).ok());
  EXPECT_EQ(layotto_unlocked.status(), lv1::UnlockResponse::SUCCESS);
  ASSERT_TRUE(layotto_->TryLock(CallContext().get(), layotto_lock, &layotto_locked).ok());
  EXPECT_TRUE(layotto_locked.success());
  auto http_locked = http_->Post("/v1.0-alpha1/lock/lock",
                                 R"({"resourceId":"printer","lockOwner":"http-app",
                                     "expiryInSeconds":30})",
                                 "application/json");
  ASSERT_TRUE(http_locked);
  EXPECT_EQ(json::parse(http_locked->body), json({{"success", false}}));
}

INSTANTIATE_TEST_SUITE_P(Backends,
                         CrossApiTest,
                         ::testing::Values(Backend::kInMemory, Backend::kRedis),
                         [](const ::testing::TestParamInfo<Backend>& param_info) {
                           return param_info.param == Backend::kRedis ? "Redis" : "InMemory";
                         });

}  // namespace
}  // namespace ottava::test
