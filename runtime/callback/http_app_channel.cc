#include "runtime/callback/http_app_channel.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/logging.h"

namespace ottava::runtime::callback {

using Json = nlohmann::json;

struct HttpAppChannel::Worker {
  explicit Worker(const Address& app) : client(app.host, app.port) {}
  httplib::Client client;
};

namespace {

std::string RoutePath(std::string path) {
  if (path.empty() || path[0] != '/') {
    path.insert(path.begin(), '/');
  }
  return path;
}

absl::Status ReadStringMap(const Json& object,
                           const std::string& where,
                           components::Metadata* out) {
  if (object.is_null()) {
    return absl::OkStatus();
  }
  if (!object.is_object()) {
    return absl::InvalidArgumentError(where + ": expected an object");
  }
  for (const auto& [key, value] : object.items()) {
    if (value.is_string()) {
      (*out)[key] = value.get<std::string>();
    } else {
      // The JS SDK JSON-stringifies metadata values; numbers and booleans are kept as text.
      (*out)[key] = value.dump();
    }
  }
  return absl::OkStatus();
}

std::string StringField(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "SUCCESS", "DROP" (any case); RETRY or a status daprd does not know either retries.
Outcome OutcomeOfStatusText(std::string verdict) {
  for (char& c : verdict) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (verdict == "SUCCESS") {
    return Outcome::kSuccess;
  }
  if (verdict == "DROP") {
    return Outcome::kDrop;
  }
  return Outcome::kRetry;
}

// A whole number in a JSON answer, when present.
absl::Status ReadWholeNumber(const Json& object,
                             const char* key,
                             const std::string& where,
                             int64_t* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return absl::OkStatus();
  }
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(where + "." + key + ": expected a whole number");
}

absl::Status ReadBulkSubscribe(const Json& bulk, const std::string& where, BulkSubscribe* out) {
  if (bulk.is_null()) {
    return absl::OkStatus();
  }
  if (!bulk.is_object()) {
    return absl::InvalidArgumentError(where + ": expected an object");
  }
  if (auto enabled = bulk.find("enabled"); enabled != bulk.end() && !enabled->is_null()) {
    if (!enabled->is_boolean()) {
      return absl::InvalidArgumentError(where + ".enabled: expected true or false");
    }
    out->enabled = enabled->get<bool>();
  }
  if (absl::Status status =
          ReadWholeNumber(bulk, "maxMessagesCount", where, &out->max_messages_count);
      !status.ok()) {
    return status;
  }
  return ReadWholeNumber(bulk, "maxAwaitDurationMs", where, &out->max_await_duration_ms);
}

}  // namespace

absl::StatusOr<std::vector<AppSubscription>> ParseDaprSubscribeAnswer(std::string_view body) {
  Json answer = Json::parse(body, nullptr, false);
  if (answer.is_discarded() || !answer.is_array()) {
    return absl::InvalidArgumentError("GET /dapr/subscribe: expected a JSON array");
  }
  std::vector<AppSubscription> out;
  for (size_t i = 0; i < answer.size(); ++i) {
    const Json& item = answer[i];
    const std::string where = "GET /dapr/subscribe [" + std::to_string(i) + "]";
    if (!item.is_object()) {
      return absl::InvalidArgumentError(where + ": expected an object");
    }
    AppSubscription subscription;
    subscription.pubsub_name = StringField(item, "pubsubname");
    subscription.topic = StringField(item, "topic");
    if (subscription.pubsub_name.empty() || subscription.topic.empty()) {
      return absl::InvalidArgumentError(where + ": pubsubname and topic are required");
    }
    subscription.dead_letter_topic = StringField(item, "deadLetterTopic");
    if (auto metadata = item.find("metadata"); metadata != item.end()) {
      if (absl::Status status =
              ReadStringMap(*metadata, where + ".metadata", &subscription.metadata);
          !status.ok()) {
        return status;
      }
    }
    if (auto routes = item.find("routes"); routes != item.end() && routes->is_object()) {
      subscription.default_route = StringField(*routes, "default");
      if (auto rules = routes->find("rules"); rules != routes->end()) {
        if (!rules->is_array()) {
          return absl::InvalidArgumentError(where + ".routes.rules: expected an array");
        }
        for (const Json& rule : *rules) {
          if (!rule.is_object()) {
            return absl::InvalidArgumentError(where + ".routes.rules: expected objects");
          }
          subscription.rules.push_back(
              RouteRule{StringField(rule, "match"), RoutePath(StringField(rule, "path"))});
        }
      }
    }
    if (auto bulk = item.find("bulkSubscribe"); bulk != item.end()) {
      if (absl::Status status =
              ReadBulkSubscribe(*bulk, where + ".bulkSubscribe", &subscription.bulk);
          !status.ok()) {
        return status;
      }
    }
    const std::string route = StringField(item, "route");
    if (subscription.default_route.empty() && !route.empty()) {
      subscription.default_route = route;
    }
    if (subscription.default_route.empty() && subscription.rules.empty()) {
      // daprd's fallback for a subscription that names no route: the topic.
      subscription.default_route = subscription.topic;
    }
    if (!subscription.default_route.empty()) {
      subscription.default_route = RoutePath(subscription.default_route);
    }
    out.push_back(std::move(subscription));
  }
  return out;
}

Outcome OutcomeOfHttp(int status, std::string_view body) {
  if (status == 404) {
    return Outcome::kDrop;
  }
  if (status < 200 || status > 299) {
    return Outcome::kRetry;
  }
  Json answer = Json::parse(body, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) {
    return Outcome::kSuccess;
  }
  auto it = answer.find("status");
  if (it == answer.end() || !it->is_string()) {
    return Outcome::kSuccess;
  }
  const std::string verdict = it->get<std::string>();
  return verdict.empty() ? Outcome::kSuccess : OutcomeOfStatusText(verdict);
}

std::string DaprBulkBody(const EventBatch& batch) {
  Json entries = Json::array();
  for (const BulkEntry& entry : batch.entries) {
    const api::CloudEvent& ce = entry.event->cloud_event;
    Json item = {{"entryId", entry.entry_id}, {"metadata", Json::object()}};
    for (const auto& [key, value] : entry.event->metadata) {
      item["metadata"][key] = value;
    }
    if (ce.raw) {
      item["event"] = Base64Encode(ce.data);
      item["contentType"] = "application/octet-stream";
    } else {
      item["event"] = Json::parse(api::RebuildEnvelope(ce), nullptr, false);
      item["contentType"] = "application/cloudevents+json";
    }
    entries.push_back(std::move(item));
  }
  Json body = {{"id", batch.id},
               {"entries", std::move(entries)},
               {"metadata", Json::object()},
               {"topic", batch.topic},
               {"pubsubname", batch.pubsub_name},
               {"type", "com.dapr.event.sent.bulk"}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::vector<Outcome> OutcomesOfHttpBulk(const EventBatch& batch,
                                        int status,
                                        std::string_view body) {
  const size_t n = batch.entries.size();
  if (status == 404) {
    return std::vector<Outcome>(n, Outcome::kDrop);
  }
  if (status < 200 || status > 299) {
    return std::vector<Outcome>(n, Outcome::kRetry);
  }
  Json answer = Json::parse(body, nullptr, false);
  const Json* statuses = nullptr;
  if (!answer.is_discarded() && answer.is_object()) {
    if (auto it = answer.find("statuses"); it != answer.end() && it->is_array()) {
      statuses = &*it;
    }
  }
  if (statuses == nullptr) {
    // daprd cannot read such an answer either, and retries every entry.
    return std::vector<Outcome>(n, Outcome::kRetry);
  }
  std::vector<std::pair<std::string, Outcome>> answered;
  for (const Json& item : *statuses) {
    if (!item.is_object()) {
      continue;
    }
    answered.emplace_back(StringField(item, "entryId"),
                          OutcomeOfStatusText(StringField(item, "status")));
  }
  return OutcomesByEntry(batch, answered);
}

std::shared_ptr<HttpAppChannel> HttpAppChannel::Create(Address app,
                                                       std::chrono::milliseconds call_timeout,
                                                       std::string app_token,
                                                       Dispatcher* dispatcher,
                                                       int threads) {
  auto channel = std::shared_ptr<HttpAppChannel>(
      new HttpAppChannel(std::move(app), call_timeout, std::move(app_token), dispatcher));
  channel->StartThreads(threads);
  return channel;
}

HttpAppChannel::HttpAppChannel(Address app,
                               std::chrono::milliseconds call_timeout,
                               std::string app_token,
                               Dispatcher* dispatcher)
    : app_(std::move(app)),
      call_timeout_(call_timeout),
      app_token_(std::move(app_token)),
      dispatcher_(dispatcher) {}

HttpAppChannel::~HttpAppChannel() {
  Stop();
}

void HttpAppChannel::StartThreads(int threads) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

void HttpAppChannel::Run() {
  Worker worker(app_);
  worker.client.set_keep_alive(true);
  worker.client.set_connection_timeout(std::chrono::seconds(2));
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(call_timeout_);
  worker.client.set_read_timeout(timeout.count() / 1000000, timeout.count() % 1000000);
  worker.client.set_write_timeout(timeout.count() / 1000000, timeout.count() % 1000000);
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) {
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job(&worker);
  }
}

void HttpAppChannel::Enqueue(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      jobs_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  job(nullptr);  // stopped: the job fails at once
}

void HttpAppChannel::Stop() {
  stopped_ = true;
  std::deque<Job> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
    dropped.swap(jobs_);
    cv_.notify_all();
  }
  for (auto& job : dropped) {
    job(nullptr);
  }
  for (auto& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
}

void HttpAppChannel::ListSubscriptions(
    std::function<void(std::vector<AppSubscription>)> on_answer) {
  TryList(1, std::move(on_answer));
}

void HttpAppChannel::TryList(uint32_t attempt,
                             std::function<void(std::vector<AppSubscription>)> on_answer) {
  if (stopped_) {
    return;
  }
  std::weak_ptr<HttpAppChannel> weak = weak_from_this();
  Enqueue([weak, attempt, on_answer = std::move(on_answer)](Worker* worker) mutable {
    auto self = weak.lock();
    if (!self || self->stopped_ || worker == nullptr) {
      return;
    }
    httplib::Headers headers;
    if (!self->app_token_.empty()) {
      headers.emplace("dapr-api-token", self->app_token_);
    }
    httplib::Result result = worker->client.Get("/dapr/subscribe", headers);
    std::string failure;
    if (!result) {
      failure = httplib::to_string(result.error());
    } else if (result->status == 404) {
      OTTAVA_LOG(Callback, info, "Dapr HTTP app has no /dapr/subscribe: no subscriptions");
      self->dispatcher_->Post([on_answer = std::move(on_answer)]() mutable { on_answer({}); });
      return;
    } else if (result->status < 200 || result->status > 299) {
      failure = "HTTP " + std::to_string(result->status);
    } else {
      absl::StatusOr<std::vector<AppSubscription>> subscriptions =
          ParseDaprSubscribeAnswer(result->body);
      if (!subscriptions.ok()) {
        // A wrong answer will not improve by asking again.
        OTTAVA_LOG(Callback, error, "{}", subscriptions.status().message());
        return;
      }
      OTTAVA_LOG(Callback, info, "Dapr HTTP app answered /dapr/subscribe: {} subscription(s)",
                 subscriptions->size());
      self->dispatcher_->Post(
          [on_answer = std::move(on_answer), subscriptions = std::move(*subscriptions)]() mutable {
            on_answer(std::move(subscriptions));
          });
      return;
    }
    if (attempt == 1) {
      OTTAVA_LOG(Callback, warn, "Dapr HTTP app not answering GET /dapr/subscribe ({}); retrying",
                 failure);
    }
    self->dispatcher_->PostDelayed(self->list_backoff_.Delay(attempt),
                                   [weak, attempt, on_answer = std::move(on_answer)]() mutable {
                                     if (auto again = weak.lock()) {
                                       again->TryList(attempt + 1, std::move(on_answer));
                                     }
                                   });
  });
}

void HttpAppChannel::Deliver(std::shared_ptr<const Event> event,
                             std::function<void(Outcome)> done) {
  std::weak_ptr<HttpAppChannel> weak = weak_from_this();
  auto shared_done = std::make_shared<std::function<void(Outcome)>>(std::move(done));
  Enqueue([weak, event, shared_done](Worker* worker) {
    auto self = weak.lock();
    if (!self || worker == nullptr) {
      (*shared_done)(Outcome::kRetry);
      return;
    }
    httplib::Headers headers;
    if (!self->app_token_.empty()) {
      headers.emplace("dapr-api-token", self->app_token_);
    }
    if (auto it = event->cloud_event.extensions.find("traceparent");
        it != event->cloud_event.extensions.end()) {
      headers.emplace("traceparent", it->second);
    }
    for (const auto& [key, value] : event->metadata) {
      headers.emplace(key, value);
    }
    const std::string path =
        RoutePath(event->path.empty() ? event->cloud_event.topic : event->path);
    httplib::Result result = worker->client.Post(
        path, headers, api::RebuildEnvelope(event->cloud_event), "application/cloudevents+json");
    if (!result) {
      OTTAVA_LOG(Callback, debug, "POST {} for event {} failed: {}", path, event->cloud_event.id,
                 httplib::to_string(result.error()));
      (*shared_done)(Outcome::kRetry);
      return;
    }
    if (result->status == 404) {
      OTTAVA_LOG(Callback, warn, "app answered 404 to POST {}: event {} dropped", path,
                 event->cloud_event.id);
    }
    (*shared_done)(OutcomeOfHttp(result->status, result->body));
  });
}

void HttpAppChannel::DeliverBulk(std::shared_ptr<const EventBatch> batch, BulkDone done) {
  std::weak_ptr<HttpAppChannel> weak = weak_from_this();
  auto shared_done = std::make_shared<BulkDone>(std::move(done));
  Enqueue([weak, batch, shared_done](Worker* worker) {
    auto self = weak.lock();
    if (!self || worker == nullptr) {
      (*shared_done)(std::vector<Outcome>(batch->entries.size(), Outcome::kRetry));
      return;
    }
    httplib::Headers headers;
    if (!self->app_token_.empty()) {
      headers.emplace("dapr-api-token", self->app_token_);
    }
    const std::string path = RoutePath(batch->path.empty() ? batch->topic : batch->path);
    httplib::Result result =
        worker->client.Post(path, headers, DaprBulkBody(*batch), "application/json");
    if (!result) {
      OTTAVA_LOG(Callback, debug, "bulk POST {} of {} event(s) failed: {}", path,
                 batch->entries.size(), httplib::to_string(result.error()));
      (*shared_done)(std::vector<Outcome>(batch->entries.size(), Outcome::kRetry));
      return;
    }
    if (result->status == 404) {
      OTTAVA_LOG(Callback, warn, "app answered 404 to bulk POST {}: {} event(s) dropped", path,
                 batch->entries.size());
    }
    (*shared_done)(OutcomesOfHttpBulk(*batch, result->status, result->body));
  });
}

void HttpAppChannel::Invoke(components::rpc::RpcRequest request,
                            components::rpc::RpcCallback done) {
  auto shared =
      std::make_shared<std::pair<components::rpc::RpcRequest, components::rpc::RpcCallback>>(
          std::move(request), std::move(done));
  std::weak_ptr<HttpAppChannel> weak = weak_from_this();
  Enqueue([weak, shared](Worker* worker) {
    auto& [req, callback] = *shared;
    auto self = weak.lock();
    if (!self || worker == nullptr) {
      callback(absl::UnavailableError("the app channel is shutting down"));
      return;
    }
    httplib::Request http;
    http.method = req.verb.empty() ? "POST" : req.verb;
    http.path = RoutePath(req.method);
    if (!req.query.empty()) {
      http.path += "?" + req.query;
    }
    for (const auto& [key, value] : req.metadata) {
      if (key == "content-type" || key == "content-length" || key == "host" ||
          key == "dapr-api-token" || key == "connection" || key == "transfer-encoding") {
        continue;
      }
      http.headers.emplace(key, value);
    }
    if (!self->app_token_.empty()) {
      http.headers.emplace("dapr-api-token", self->app_token_);
    }
    if (!req.caller_app_id.empty()) {
      http.headers.emplace("dapr-caller-app-id", req.caller_app_id);
    }
    if (!req.content_type.empty()) {
      http.headers.emplace("Content-Type", req.content_type);
    }
    http.body = std::move(req.data);
    if (req.timeout.count() > 0) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(req.timeout).count();
      worker->client.set_read_timeout(us / 1000000, us % 1000000);
    }
    httplib::Result result = worker->client.send(http);
    if (req.timeout.count() > 0) {
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(self->call_timeout_).count();
      worker->client.set_read_timeout(us / 1000000, us % 1000000);
    }
    if (!result) {
      const httplib::Error error = result.error();
      if (error == httplib::Error::Read) {
        callback(absl::DeadlineExceededError("app did not answer " + http.method + " " + http.path +
                                             " in time"));
      } else {
        callback(absl::UnavailableError("cannot reach the app for " + http.method + " " +
                                        http.path + ": " + httplib::to_string(error)));
      }
      return;
    }
    if (result->status < 200 || result->status > 299) {
      callback(components::rpc::StatusFromHttp(
          result->status,
          "app answered " + std::to_string(result->status) + ": " + result->body.substr(0, 256)));
      return;
    }
    components::rpc::RpcResponse response;
    response.http_status = result->status;
    response.content_type = result->get_header_value("Content-Type");
    response.data = std::move(result->body);
    for (const auto& [key, value] : result->headers) {
      response.headers.emplace_back(key, value);
    }
    callback(std::move(response));
  });
}

}  // namespace ottava::runtime::callback
