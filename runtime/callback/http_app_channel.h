#pragma once

// The channel to a Dapr HTTP app (`app.callback.protocol` = "http"):
// - subscriptions: `GET /dapr/subscribe` (retried until the app answers; 404 = none), both the v1
//   shape (`route`) and the v2 shape (`routes: {rules, default}`), `deadLetterTopic`, `metadata`;
// - events: the CloudEvent POSTed to the matched route as `application/cloudevents+json`. Dapr's
//   status rules: 2xx with an empty or non-JSON body, or `{"status":"SUCCESS"}`, acks;
//   `{"status":"RETRY"}` (or an unknown status) retries; `{"status":"DROP"}` drops; 404 drops;
//   any other status or a transport error retries;
// - bulk: a bulk subscription's batch POSTed to the route as one JSON object (Dapr's bulk
//   envelope: `id`, `entries` [{entryId, event, contentType, metadata}], `metadata`, `topic`,
//   `pubsubname`, `type` com.dapr.event.sent.bulk); the answer `{"statuses": [{entryId,
//   status}]}` gives each entry its verdict (an entry left out retries); 404 drops the batch, any
//   other non-2xx answer, an answer that is not that JSON, or a transport error retries it;
// - invocation: `<VERB> /<method>?<query>` with the caller's content type and metadata as
//   headers; a non-2xx answer is an error carrying the status.
// Every request carries `dapr-api-token` when the app token (APP_API_TOKEN) is set.
//
// Threading: cpp-httplib's client blocks, so requests run on the channel's own small pool of
// threads (each with its own keep-alive connection); callers only queue work. Subscription answers
// are posted to the component dispatcher.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/address.h"
#include "common/backoff.h"
#include "common/dispatcher.h"
#include "runtime/callback/app_channel.h"

namespace ottava::runtime::callback {

class HttpAppChannel : public AppChannel, public std::enable_shared_from_this<HttpAppChannel> {
 public:
  /// `threads` requests may be in flight to the app at once.
  static std::shared_ptr<HttpAppChannel> Create(Address app,
                                                std::chrono::milliseconds call_timeout,
                                                std::string app_token,
                                                Dispatcher* dispatcher,
                                                int threads = 4);
  ~HttpAppChannel() override;

  void ListSubscriptions(std::function<void(std::vector<AppSubscription>)> on_answer) override;
  void Deliver(std::shared_ptr<const Event> event, std::function<void(Outcome)> done) override;
  void DeliverBulk(std::shared_ptr<const EventBatch> batch, BulkDone done) override;
  bool CanInvoke() const override { return true; }
  void Invoke(components::rpc::RpcRequest request, components::rpc::RpcCallback done) override;
  bool DaprSemantics() const override { return true; }
  /// Ends the retries, fails queued work and joins the threads.
  void Stop() override;

 private:
  struct Worker;
  // Runs on a channel thread with its worker, or with nullptr when the channel stops first.
  using Job = std::function<void(Worker*)>;

  HttpAppChannel(Address app,
                 std::chrono::milliseconds call_timeout,
                 std::string app_token,
                 Dispatcher* dispatcher);
  void StartThreads(int threads);
  void Run();
  void Enqueue(Job job);
  void TryList(uint32_t attempt, std::function<void(std::vector<AppSubscription>)> on_answer);

  const Address app_;
  const std::chrono::milliseconds call_timeout_;
  const std::string app_token_;
  Dispatcher* dispatcher_;
  Backoff list_backoff_{std::chrono::milliseconds(100), std::chrono::milliseconds(5000)};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::atomic<bool> stopped_{false};
  std::vector<std::thread> threads_;
};

/// Reads the answer to `GET /dapr/subscribe` (a JSON array); INVALID_ARGUMENT says what is wrong.
absl::StatusOr<std::vector<AppSubscription>> ParseDaprSubscribeAnswer(std::string_view body);

/// The verdict of an event POST (Dapr's status rules above).
Outcome OutcomeOfHttp(int status, std::string_view body);

/// The body of a bulk POST (Dapr's bulk envelope above): a CloudEvent entry carries the envelope
/// as a JSON object with content type application/cloudevents+json, a raw payload its bytes in
/// base64 with application/octet-stream.
std::string DaprBulkBody(const EventBatch& batch);

/// The verdicts of a bulk POST's answer (the rules above).
std::vector<Outcome> OutcomesOfHttpBulk(const EventBatch& batch, int status, std::string_view body);

}  // namespace ottava::runtime::callback
