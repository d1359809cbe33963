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
// PublishEvent answers at once. With --delay-us N it answers N µs later the way a broker-backed
// pub/sub does: a "broker" thread sleeps until the deadline, then posts the answer to a Dispatcher
// loop thread (as librdkafka's delivery report wakes the Kafka component's loop), which calls
// Finish. Its p50 minus N is what gRPC and those two hops cost around a wait of N µs with every
// thread idle, the floor of a Publish that waits for a broker.
//
//   bench_echo_server [--address 127.0.0.1:0] [--value-bytes 64] [--handoff 0|1]
//                     [--delay-us N] [--ready-file FILE]
//
// Once serving it prints the bound address and writes {"pid":N,"grpc":"host:port"} to the ready
// file (same shape as ottava's). SIGTERM or SIGINT shuts it down.

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/dispatcher.h"
#include "common/process_tuning.h"
#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/bench/bench_util.h"

namespace ottava::bench {
namespace {

namespace v1 = spec::proto::runtime::v1;

// A thread that runs each closure once its deadline has passed, in deadline order (deadlines are
// handed in ascending: every call waits the same time).
class DelayLine {
 public:
  DelayLine() : thread_([this] { Serve(); }) {}
  ~DelayLine() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }
  void Add(absl::Time deadline, std::function<void()> closure) {
    absl::MutexLock lock(&mu_);
    queue_.emplace_back(deadline, std::move(closure));
  }

 private:
  void Serve() {
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake at the deadline, not up to 50 µs after it
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      if (queue_.empty()) {
        mu_.Await(absl::Condition(
            +[](DelayLine* line) { return line->stopping_ || !line->queue_.empty(); }, this));
        continue;
      }
      const absl::Time deadline = queue_.front().first;
      if (absl::Now() < deadline) {
        mu_.AwaitWithDeadline(absl::Condition(&stopping_), deadline);
        continue;
      }
      std::function<void()> closure = std::move(queue_.front().second);
      queue_.pop_front();
      mu_.Unlock();
      closure();
      mu_.Lock();
    }
  }

  absl::Mutex mu_;
  std::deque<std::pair<absl::Time, std::function<void()>>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class EchoRuntime final : public v1::Runtime::CallbackService {
 public:
  // `handoff`: where InvokeService answers from (none: the gRPC thread). `publish_loop` and
  // `delay`: where and how late PublishEvent answers (a zero delay: at once, on the gRPC thread).
  EchoRuntime(std::string value,
              Dispatcher* handoff,
              Dispatcher* publish_loop,
              absl::Duration delay)
      : value_(std::move(value)), handoff_(handoff), publish_loop_(publish_loop), delay_(delay) {
    if (delay_ > absl::ZeroDuration()) {
      delay_line_ = std::make_unique<DelayLine>();
    }
  }

  grpc::ServerUnaryReactor* PublishEvent(grpc::CallbackServerContext* context,
                                         const v1::PublishEventRequest* /*request*/,
                                         google::protobuf::Empty* /*response*/) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (delay_line_ == nullptr) {
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    delay_line_->Add(absl::Now() + delay_, [this, reactor] {
      publish_loop_->Post([reactor] { reactor->Finish(grpc::Status::OK); });
    });
    return reactor;
  }

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
  Dispatcher* const publish_loop_;
  const absl::Duration delay_;
  std::unique_ptr<DelayLine> delay_line_;  // with --delay-us
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
  const auto delay_us = flags->Int("delay-us", 0, 0, 10'000'000);
  if (!delay_us.ok()) {
    std::fprintf(stderr, "bench_echo_server: %s\n", delay_us.status().ToString().c_str());
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
  if (*handoff == 1 || *delay_us > 0) {
    auto created = Dispatcher::Create("echo-handoff");
    if (!created.ok()) {
      std::fprintf(stderr, "bench_echo_server: %s\n", created.status().ToString().c_str());
      return 1;
    }
    loop = std::move(*created);
    loop->Start();
  }
  EchoRuntime service(std::string(static_cast<size_t>(*value_bytes), 'v'),
                      *handoff == 1 ? loop.get() : nullptr, loop.get(),
                      absl::Microseconds(*delay_us));
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
