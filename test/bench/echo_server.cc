// bench_echo_server: the floor Ottava is measured against in `make bench`.
//
// A bare gRPC server, built from the same libgrpc++ with a default grpc::ServerBuilder and the
// callback API, serving spec.proto.runtime.v1.Runtime with GetState (a fixed value of
// --value-bytes bytes, etag "1"), SaveState (Empty) and InvokeService (answers the request's data
// and content type) and no other logic: no store, no key handling, no routing, no metrics.
// Whatever Ottava costs beyond this is Ottava's own.
//
// With --handoff 1, InvokeService answers from a Dispatcher loop thread (the class the mesh
// workers run on) instead of the gRPC thread: the call is posted there and Finish is called from
// there, the two thread crossings any in-process mesh with its own event loops makes. This is the
// floor of InvokeService through the mesh with no mesh work and no upstream.
//
//   bench_echo_server [--address 127.0.0.1:0] [--value-bytes 64] [--handoff 0|1]
//                     [--ready-file FILE]
//
// Once serving it prints the bound address and writes {"pid":N,"grpc":"host:port"} to the ready
// file (same shape as ottava's). SIGTERM or SIGINT shuts it down.

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "common/dispatcher.h"
#include "common/process_tuning.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/bench/bench_util.h"

namespace ottava::bench {
namespace {

namespace v1 = spec::proto::runtime::v1;

class EchoRuntime final : public v1::Runtime::CallbackService {
 public:
  EchoRuntime(std::string value, Dispatcher* handoff)
      : value_(std::move(value)), handoff_(handoff) {}

  grpc::ServerUnaryReactor* GetState(grpc::CallbackServerContext* context,
                                     const v1::GetStateRequest* /*request*/,
                                     v1::GetStateResponse* response) override {
    response->set_data(value_);
    response->set_etag("1");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* SaveState(grpc::CallbackServerContext* context,
                                      const v1::SaveStateRequest* /*request*/,
                                      google::protobuf::Empty* /*response*/) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // The floor for InvokeService through the mesh: the same RPC with no upstream behind it.
  grpc::ServerUnaryReactor* InvokeService(grpc::CallbackServerContext* context,
                                          const v1::InvokeServiceRequest* request,
                                          v1::InvokeResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto answer = [request, response, reactor] {
      if (request->message().has_data()) {
        *response->mutable_data() = request->message().data();
      }
      response->set_content_type(request->message().content_type());
      reactor->Finish(grpc::Status::OK);
    };
    if (handoff_ != nullptr) {
      handoff_->Post(std::move(answer));
    } else {
      answer();
    }
    return reactor;
  }

 private:
  const std::string value_;
  Dispatcher* const handoff_;
};

int Run(int argc, char** argv) {
  DisableMutexDeadlockDetection();
  auto flags = Flags::Parse(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_echo_server: %s\n", flags.status().ToString().c_str());
    return 2;
  }
  const std::string address = flags->String("address", "127.0.0.1:0");
  const std::string ready_file = flags->String("ready-file", "");
  const auto value_bytes = flags->Int("value-bytes", 64, 0, 64 << 20);
  if (!value_bytes.ok()) {
    std::fprintf(stderr, "bench_echo_server: %s\n", value_bytes.status().ToString().c_str());
    return 2;
  }
  const auto handoff = flags->Int("handoff", 0, 0, 1);
  if (!handoff.ok()) {
    std::fprintf(stderr, "bench_echo_server: %s\n", handoff.status().ToString().c_str());
    return 2;
  }
  if (absl::Status all_read = flags->CheckAllRead(); !all_read.ok()) {
    std::fprintf(stderr, "bench_echo_server: %s\n", all_read.ToString().c_str());
    return 2;
  }

  // Block the shutdown signals before gRPC starts its threads so they inherit the mask and only
  // sigwait() below sees the signal.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<Dispatcher> loop;
  if (*handoff == 1) {
    auto created = Dispatcher::Create("echo-handoff");
    if (!created.ok()) {
      std::fprintf(stderr, "bench_echo_server: %s\n", created.status().ToString().c_str());
      return 1;
    }
    loop = std::move(*created);
    loop->Start();
  }
  EchoRuntime service(std::string(static_cast<size_t>(*value_bytes), 'v'), loop.get());
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "bench_echo_server: cannot listen on %s\n", address.c_str());
    return 1;
  }

  const std::string host = address.substr(0, address.rfind(':'));
  const std::string bound = host + ":" + std::to_string(port);
  if (!ready_file.empty()) {
    const std::string ready = "{\"pid\":" + std::to_string(::getpid()) + ",\"grpc\":\"" + bound +
                              "\",\"listeners\":{}}\n";
    if (absl::Status written = WriteFileAtomically(ready_file, ready); !written.ok()) {
      std::fprintf(stderr, "bench_echo_server: %s\n", written.ToString().c_str());
      server->Shutdown();
      return 1;
    }
  }
  std::printf("bench_echo_server listening on %s\n", bound.c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  if (loop != nullptr) {
    loop->Stop();
  }
  return 0;
}

}  // namespace
}  // namespace ottava::bench

int main(int argc, char** argv) {
  return ottava::bench::Run(argc, argv);
}
