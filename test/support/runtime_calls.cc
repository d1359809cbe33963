#include "test/support/runtime_calls.h"

#include <atomic>
#include <thread>

namespace ottava::test {

namespace v1 = spec::proto::runtime::v1;

std::unique_ptr<grpc::ClientContext> CallContext(std::chrono::milliseconds deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  return ctx;
}

std::unique_ptr<v1::Runtime::Stub> NewRuntimeStub(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::Runtime::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
}

grpc::Status SaveState(v1::Runtime::Stub& stub,
                       const std::string& key,
                       const std::string& value,
                       const std::string& etag,
                       v1::StateOptions::StateConcurrency concurrency,
                       const std::map<std::string, std::string>& metadata,
                       std::chrono::milliseconds deadline) {
  v1::SaveStateRequest request;
  request.set_store_name("state");
  v1::StateItem* item = request.add_states();
  item->set_key(key);
  item->set_value(value);
  if (!etag.empty()) {
    item->mutable_etag()->set_value(etag);
  }
  item->mutable_options()->set_concurrency(concurrency);
  item->mutable_metadata()->insert(metadata.begin(), metadata.end());
  google::protobuf::Empty empty;
  return stub.SaveState(CallContext(deadline).get(), request, &empty);
}

grpc::Status GetState(v1::Runtime::Stub& stub,
                      const std::string& key,
                      v1::GetStateResponse* response) {
  v1::GetStateRequest request;
  request.set_store_name("state");
  request.set_key(key);
  return stub.GetState(CallContext().get(), request, response);
}

bool SaveConfigUntilSeen(v1::Runtime::Stub& writer,
                         const std::string& key,
                         const std::string& content,
                         grpc::ClientReaderWriter<v1::SubscribeConfigurationRequest,
                                                  v1::SubscribeConfigurationResponse>& stream,
                         v1::SubscribeConfigurationResponse* update) {
  std::atomic<bool> seen{false};
  std::thread saver([&] {
    v1::SaveConfigurationRequest save;
    save.set_store_name("config");
    v1::ConfigurationItem* item = save.add_items();
    item->set_key(key);
    item->set_content(content);
    for (int i = 0; i < 250 && !seen; ++i) {
      google::protobuf::Empty empty;
      writer.SaveConfiguration(CallContext().get(), save, &empty);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const bool read = stream.Read(update);
  seen = true;
  saver.join();
  return read;
}

}  // namespace ottava::test
