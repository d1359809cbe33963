#include "runtime/http/dapr_http.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "actuator/socket_http_server.h"
#include "common/accept_loop.h"
#include "common/logging.h"
#include "runtime/api/api_token.h"
#include "runtime/api/common.h"
#include "runtime/api/http_status.h"

namespace ottava::runtime::http_api {
namespace {

using nlohmann::json;
namespace state = components::state;

// Runs an asynchronous core call and waits for its one completion.
template <class T>
T Await(const std::function<void(std::function<void(T)>)>& start) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  start([promise](T value) { promise->set_value(std::move(value)); });
  return future.get();
}

void SendError(httplib::Response& res,
               int status,
               std::string_view code,
               std::string_view message) {
  res.status = status;
  res.set_content(json{{"errorCode", code}, {"message", message}}.dump(), "application/json");
}

// Dapr names a missing component in error codes of its own; `code` (the route's) tells the block.
std::string_view LookupCode(std::string_view code, api::LookupFailure failure) {
  struct Entry {
    std::string_view prefix;
    std::string_view not_found;
    std::string_view not_configured;
  };
  static constexpr Entry kEntries[] = {
      {"ERR_STATE_", "ERR_STATE_STORE_NOT_FOUND", "ERR_STATE_STORES_NOT_CONFIGURED"},
      {"ERR_PUBSUB_", "ERR_PUBSUB_NOT_FOUND", "ERR_PUBSUB_NOT_CONFIGURED"},
      {"ERR_TRY_LOCK", "ERR_LOCK_STORE_NOT_FOUND", "ERR_LOCK_STORE_NOT_CONFIGURED"},
      {"ERR_UNLOCK", "ERR_LOCK_STORE_NOT_FOUND", "ERR_LOCK_STORE_NOT_CONFIGURED"},
      {"ERR_CONFIGURATION_", "ERR_CONFIGURATION_STORE_NOT_FOUND",
       "ERR_CONFIGURATION_STORE_NOT_CONFIGURED"},
  };
  if (failure == api::LookupFailure::kNone) {
    return code;
  }
  for (const Entry& entry : kEntries) {
    if (code.substr(0, entry.prefix.size()) == entry.prefix) {
      return failure == api::LookupFailure::kNotFound ? entry.not_found : entry.not_configured;
    }
  }
  return code;
}

void SendStatus(httplib::Response& res, const absl::Status& status, std::string_view code) {
  SendError(res, api::HttpStatusOf(status.code()), LookupCode(code, api::LookupFailureOf(status)),
            std::string(status.message()));
}

void SendJson(httplib::Response& res, const json& body) {
  res.status = 200;
  res.set_content(body.dump(), "application/json");
}

void NoContent(httplib::Response& res) {
  res.status = 204;
}

// 204 when `status` is OK, else the error under `code`.
void NoContentOr(httplib::Response& res, const absl::Status& status, std::string_view code) {
  if (status.ok()) {
    NoContent(res);
  } else {
    SendStatus(res, status, code);
  }
}

// The body as JSON; on failure answers 400 ERR_MALFORMED_REQUEST and returns discarded.
json ParseBody(const httplib::Request& req, httplib::Response& res) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    SendError(res, 400, "ERR_MALFORMED_REQUEST", "the request body is not valid JSON");
  }
  return body;
}

// `?metadata.<k>=<v>` query parameters.
components::Metadata QueryMetadata(const httplib::Request& req) {
  components::Metadata metadata;
  for (const auto& [key, value] : req.params) {
    if (key.rfind("metadata.", 0) == 0 && key.size() > 9) {
      metadata[key.substr(9)] = value;
    }
  }
  return metadata;
}

// A JSON object of strings (null or absent: empty). False when it is anything else.
bool ReadStringMap(const json& object, components::Metadata* out) {
  if (object.is_null()) {
    return true;
  }
  if (!object.is_object()) {
    return false;
  }
  for (const auto& [key, value] : object.items()) {
    if (!value.is_string()) {
      return false;
    }
    (*out)[key] = value.get<std::string>();
  }
  return true;
}

std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// daprd reads request bodies with Go's encoding/json, which matches keys case-insensitively: the
// JS SDK's HTTP publishBulk sends `entryID` for `entryId`. The exact key wins, then any casing.
const json* FoldedField(const json& object, std::string_view key) {
  if (auto it = object.find(key); it != object.end()) {
    return &*it;
  }
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& name = it.key();
    if (name.size() == key.size() &&
        std::equal(name.begin(), name.end(), key.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return &*it;
    }
  }
  return nullptr;
}

std::string FoldedString(const json& object, std::string_view key) {
  const json* value = FoldedField(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

state::Concurrency ParseConcurrency(std::string_view text) {
  if (text == "first-write") {
    return state::Concurrency::kFirstWrite;
  }
  if (text == "last-write") {
    return state::Concurrency::kLastWrite;
  }
  return state::Concurrency::kUnspecified;
}

state::Consistency ParseConsistency(std::string_view text) {
  if (text == "eventual") {
    return state::Consistency::kEventual;
  }
  if (text == "strong") {
    return state::Consistency::kStrong;
  }
  return state::Consistency::kUnspecified;
}

// One state item of a save or transaction body: {key, value?, etag?, metadata?, options?}. A value
// is stored as its JSON text (a JSON string keeps its quotes), as daprd stores it.
absl::StatusOr<api::StateApi::WriteItem> ParseStateItem(const json& in) {
  if (!in.is_object()) {
    return absl::InvalidArgumentError("each state item must be a JSON object");
  }
  api::StateApi::WriteItem item;
  auto key = in.find("key");
  if (key == in.end() || !key->is_string()) {
    return absl::InvalidArgumentError("a state item has no string \"key\"");
  }
  item.key = key->get<std::string>();
  if (auto value = in.find("value"); value != in.end() && !value->is_null()) {
    item.value = value->dump();
  }
  if (auto etag = in.find("etag"); etag != in.end() && !etag->is_null()) {
    if (!etag->is_string()) {
      return absl::InvalidArgumentError("etag of key '" + item.key + "' must be a string");
    }
    if (!etag->get<std::string>().empty()) {
      item.etag = etag->get<std::string>();
    }
  }
  if (auto metadata = in.find("metadata"); metadata != in.end()) {
    if (!ReadStringMap(*metadata, &item.metadata)) {
      return absl::InvalidArgumentError("metadata of key '" + item.key +
                                        "' must be an object of strings");
    }
  }
  if (auto options = in.find("options"); options != in.end() && options->is_object()) {
    item.concurrency = ParseConcurrency(StringField(*options, "concurrency"));
    item.consistency = ParseConsistency(StringField(*options, "consistency"));
  }
  return item;
}

// Stored bytes back as JSON: the JSON they hold, else a string.
json StoredValue(const std::string& bytes) {
  json value = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  return value.is_discarded() ? json(bytes) : value;
}

bool IsJsonContentType(std::string_view type) {
  type = type.substr(0, type.find(';'));
  return type == "application/json" || (type.size() > 5 && type.substr(type.size() - 5) == "+json");
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string QueryString(const httplib::Request& req) {
  std::string query;
  for (const auto& [key, value] : req.params) {
    if (!query.empty()) {
      query.push_back('&');
    }
    query += PercentEncode(key) + "=" + PercentEncode(value);
  }
  return query;
}

const std::set<std::string, std::less<>>& SkippedHeaders() {
  static const auto* kSkipped = new std::set<std::string, std::less<>>{
      "host",        "content-length", "content-type", "connection",      "transfer-encoding",
      "upgrade",     "keep-alive",     "te",           "accept-encoding", "dapr-app-id",
      "remote_addr", "remote_port",    "local_addr",   "local_port"};
  return *kSkipped;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DaprHttpServer>> DaprHttpServer::Create(grpc_api::Apis apis,
                                                                       Options options) {
  std::unique_ptr<DaprHttpServer> server(new DaprHttpServer(std::move(apis), std::move(options)));
  const Address& address = server->options_.address;
  if (server->options_.inherited_fd >= 0) {
    server->listen_fd_ = server->options_.inherited_fd;
  } else {
    absl::StatusOr<int> fd = BindListenSocket(address);
    if (!fd.ok()) {
      return absl::UnavailableError("cannot listen on " + address.ToString() +
                                    " (/dapr/http_address): address in use or not local");
    }
    server->listen_fd_ = *fd;
  }
  absl::StatusOr<Address> bound = SocketAddress(server->listen_fd_);
  if (!bound.ok()) {
    return bound.status();
  }
  server->address_ = address.host + ":" + std::to_string(bound->port);
  server->bound_port_ = bound->port;
  return server;
}

namespace {
// Whether the request on this thread is served here (counted by CallForwarder::EnterLocal), or
// to be forwarded by its route's handler.
thread_local bool served_here = false;
thread_local bool forward_now = false;
}  // namespace

DaprHttpServer::DaprHttpServer(grpc_api::Apis apis, Options options)
    : apis_(std::move(apis)),
      options_(std::move(options)),
      server_(std::make_unique<actuator::SocketHttpServer>()) {
  // Handlers wait for the cores; a few threads keep one slow backend from stalling the rest.
  server_->new_task_queue = [] { return new httplib::ThreadPool(4); };
  server_->set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  httplib::Server::HandlerWithResponse on_error =
      [](const httplib::Request&, httplib::Response& res) -> httplib::Server::HandlerResponse {
    if (!res.body.empty()) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    switch (res.status) {
      case 413:
        SendError(res, 413, "ERR_BODY_TOO_LARGE", "the request body is over the size limit");
        break;
      case 404:
        SendError(res, 404, "ERR_NOT_FOUND", "no such route in Dapr's HTTP API");
        break;
      default:
        SendError(res, res.status, "ERR_MALFORMED_REQUEST", "the request could not be handled");
        break;
    }
    return httplib::Server::HandlerResponse::Handled;
  };
  server_->set_error_handler(std::move(on_error));
  // After an upgrade's handover every request goes on to the new process (see
  // grpc_api::CallForwarder); the ones served here are counted so the freeze can wait for them.
  // Then, when set, every route but the health probes needs the API token.
  server_->set_pre_routing_handler(
      [this](const httplib::Request& req,
             httplib::Response& res) -> httplib::Server::HandlerResponse {
        if (apis_.forward != nullptr) {
          if (!apis_.forward->EnterLocal()) {
            // The route's handler forwards it: httplib reads the body after this handler.
            forward_now = true;
            return httplib::Server::HandlerResponse::Unhandled;
          }
          served_here = true;
        }
        if (apis_.api_token.empty() || req.path == "/v1.0/healthz" ||
            req.path == "/v1.0/healthz/outbound") {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        const std::string header(api::kApiTokenHeader);
        absl::Status status;
        if (req.has_header(header.c_str())) {
          const std::string value = req.get_header_value(header.c_str());
          const std::string_view presented(value);
          status = api::CheckApiToken(apis_.api_token, &presented);
        } else {
          status = api::CheckApiToken(apis_.api_token, nullptr);
        }
        if (status.ok()) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        SendError(res, 401, "ERR_UNAUTHORIZED", std::string(status.message()));
        return httplib::Server::HandlerResponse::Handled;
      });
  server_->set_after_request([this] {
    forward_now = false;
    if (served_here) {
      served_here = false;
      apis_.forward->ExitLocal();
    }
  });
  Routes();
}

DaprHttpServer::~DaprHttpServer() {
  Stop();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
  }
}

void DaprHttpServer::Start() {
  if (absl::Status status = server_->Serve(listen_fd_); !status.ok()) {
    OTTAVA_LOG(Runtime, error, "Dapr HTTP: {}", status.message());
  }
}

void DaprHttpServer::StopAccepting() {
  server_->StopAccepting();
  // Forwarding: an idle keep-alive connection stays until its next request (forwarded, answered
  // `Connection: close`), so no client is cut while sending on it.
  server_->Drain(/*close_idle=*/apis_.forward == nullptr || !apis_.forward->active());
}

void DaprHttpServer::Forward(const httplib::Request& req, httplib::Response& res) {
  const Address to = Address{options_.address.host, bound_port_}.Reachable();
  httplib::Client client(to.host, to.port);
  client.set_url_encode(false);  // the target is passed on as it came
  client.set_connection_timeout(5);
  client.set_read_timeout(120);
  client.set_write_timeout(120);
  httplib::Request out;
  out.method = req.method;
  out.path = req.target;
  out.body = req.body;
  for (const auto& [name, value] : req.headers) {
    // httplib adds the peer's and our address as headers; hop-by-hop ones are the client's own.
    if (name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
        name == "LOCAL_PORT" || absl::EqualsIgnoreCase(name, "Host") ||
        absl::EqualsIgnoreCase(name, "Content-Length") ||
        absl::EqualsIgnoreCase(name, "Connection") || absl::EqualsIgnoreCase(name, "Keep-Alive") ||
        absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      continue;
    }
    out.headers.emplace(name, value);
  }
  httplib::Result result = client.send(out);
  if (!result) {
    SendError(res, 503, "ERR_UPGRADE_FORWARD",
              "the sidecar was upgraded and the new process did not answer: " +
                  httplib::to_string(result.error()));
    return;
  }
  res.status = result->status;
  for (const auto& [name, value] : result->headers) {
    if (absl::EqualsIgnoreCase(name, "Content-Length") ||
        absl::EqualsIgnoreCase(name, "Connection") || absl::EqualsIgnoreCase(name, "Keep-Alive") ||
        absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      continue;
    }
    res.headers.emplace(name, value);
  }
  res.body = std::move(result->body);
}

void DaprHttpServer::Stop() {
  server_->Stop();
  std::map<std::string, std::unique_ptr<api::ConfigApi::Subscription>> subscriptions;
  {
    absl::MutexLock lock(&config_mu_);
    subscriptions.swap(config_subscriptions_);
  }
  subscriptions.clear();  // unsubscribes, outside the lock
}

void DaprHttpServer::SubscribeConfiguration(const std::string& store,
                                            std::vector<std::string> keys,
                                            components::Metadata metadata,
                                            httplib::Response& res) {
  if (apis_.rpc == nullptr) {
    SendError(res, 500, "ERR_CONFIGURATION_SUBSCRIBE",
              "configuration updates go to the app: configure app.callback");
    return;
  }
  std::string id;
  {
    absl::MutexLock lock(&config_mu_);
    id = std::to_string(++next_config_id_);
  }
  api::ConfigApi::Selector selector;
  selector.keys = std::move(keys);
  selector.metadata = std::move(metadata);
  components::rpc::Rpc* rpc = apis_.rpc;
  const std::string app_id = apis_.app_id;
  // Runs on the store's thread: one POST per changed key, as daprd sends them.
  auto handler = [rpc, app_id, store, id](std::vector<components::config_store::Item> changed) {
    for (const auto& item : changed) {
      auto version = item.metadata.find("version");
      json body{{"id", id},
                {"items",
                 {{item.key,
                   {{"value", item.content},
                    {"version", version == item.metadata.end() ? "" : version->second},
                    {"metadata", item.metadata}}}}}};
      components::rpc::RpcRequest request;
      request.app_id = app_id;
      request.method = "configuration/" + store + "/" + item.key;
      request.verb = "POST";
      request.content_type = "application/json";
      request.data = body.dump();
      request.caller_app_id = app_id;
      rpc->Invoke(std::move(request),
                  [key = item.key](absl::StatusOr<components::rpc::RpcResponse> result) {
                    if (!result.ok()) {
                      OTTAVA_LOG(Runtime, debug, "configuration update of {} to the app: {}", key,
                                 result.status().message());
                    }
                  });
    }
  };
  absl::StatusOr<std::unique_ptr<api::ConfigApi::Subscription>> subscription =
      apis_.config->Subscribe(store, std::move(selector), std::move(handler));
  if (!subscription.ok()) {
    SendStatus(res, subscription.status(), "ERR_CONFIGURATION_SUBSCRIBE");
    return;
  }
  {
    absl::MutexLock lock(&config_mu_);
    config_subscriptions_[id] = std::move(*subscription);
  }
  SendJson(res, json{{"id", id}});
}

std::function<void(const httplib::Request&, httplib::Response&)> DaprHttpServer::Forwarding(
    std::function<void(const httplib::Request&, httplib::Response&)> handler) {
  return [this, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    if (forward_now) {
      Forward(req, res);
    } else {
      handler(req, res);
    }
  };
}

void DaprHttpServer::Routes() {
  // Every route forwards instead while an upgrade's old process drains (forward_now).
  struct ForwardingRoutes {
    DaprHttpServer& owner;
    httplib::Server& server;
    void Get(const std::string& pattern, httplib::Server::Handler handler) {
      server.Get(pattern, owner.Forwarding(std::move(handler)));
    }
    void Post(const std::string& pattern, httplib::Server::Handler handler) {
      server.Post(pattern, owner.Forwarding(std::move(handler)));
    }
    void Put(const std::string& pattern, httplib::Server::Handler handler) {
      server.Put(pattern, owner.Forwarding(std::move(handler)));
    }
    void Delete(const std::string& pattern, httplib::Server::Handler handler) {
      server.Delete(pattern, owner.Forwarding(std::move(handler)));
    }
    void Patch(const std::string& pattern, httplib::Server::Handler handler) {
      server.Patch(pattern, owner.Forwarding(std::move(handler)));
    }
    void Options(const std::string& pattern, httplib::Server::Handler handler) {
      server.Options(pattern, owner.Forwarding(std::move(handler)));
    }
  } s{*this, *server_};
  grpc_api::Apis* apis = &apis_;

  // ------------------------------------------------------------------------------- state
  auto save = [apis](const httplib::Request& req, httplib::Response& res) {
    json body = ParseBody(req, res);
    if (body.is_discarded()) {
      return;
    }
    if (!body.is_array()) {
      SendError(res, 400, "ERR_MALFORMED_REQUEST", "the body must be a JSON array of state items");
      return;
    }
    const components::Metadata query = QueryMetadata(req);
    std::vector<api::StateApi::WriteItem> items;
    for (const auto& in : body) {
      absl::StatusOr<api::StateApi::WriteItem> item = ParseStateItem(in);
      if (!item.ok()) {
        SendError(res, 400, "ERR_MALFORMED_REQUEST", std::string(item.status().message()));
        return;
      }
      item->metadata.insert(query.begin(), query.end());
      items.push_back(std::move(*item));
    }
    const std::string store = req.matches[1];
    absl::Status status = Await<absl::Status>([&](std::function<void(absl::Status)> done) {
      apis->state->Save(store, std::move(items), std::move(done));
    });
    NoContentOr(res, status, "ERR_STATE_SAVE");
  };
  s.Post(R"(/v1\.0/state/([^/]+))", save);
  s.Put(R"(/v1\.0/state/([^/]+))", save);

  auto bulk_get = [apis](const httplib::Request& req, httplib::Response& res) {
    json body = ParseBody(req, res);
    if (body.is_discarded()) {
      return;
    }
    auto keys_it = body.is_object() ? body.find("keys") : body.end();
    if (keys_it == body.end() || !keys_it->is_array()) {
      SendError(res, 400, "ERR_MALFORMED_REQUEST", "the body must be {\"keys\": [...]}");
      return;
    }
    std::vector<std::string> keys;
    for (const auto& key : *keys_it) {
      if (!key.is_string()) {
        SendError(res, 400, "ERR_MALFORMED_REQUEST", "keys must be strings");
        return;
      }
      keys.push_back(key.get<std::string>());
    }
    using Results = absl::StatusOr<std::vector<api::StateApi::GetResult>>;
    const std::string store = req.matches[1];
    Results results = Await<Results>([&](std::function<void(Results)> done) {
      apis->state->BulkGet(store, keys, std::move(done));
    });
    if (!results.ok()) {
      SendStatus(res, results.status(), "ERR_STATE_BULK_GET");
      return;
    }
    json out = json::array();
    for (const auto& result : *results) {
      json item{{"key", result.key}};
      if (result.found) {
        item["data"] = StoredValue(result.value);
        item["etag"] = result.etag;
      }
      if (!result.error.empty()) {
        item["error"] = result.error;
      }
      if (!result.metadata.empty()) {
        item["metadata"] = result.metadata;
      }
      out.push_back(std::move(item));
    }
    SendJson(res, out);
  };
  s.Post(R"(/v1\.0/state/([^/]+)/bulk)", bulk_get);
  s.Put(R"(/v1\.0/state/([^/]+)/bulk)", bulk_get);

  auto transaction = [apis](const httplib::Request& req, httplib::Response& res) {
    json body = ParseBody(req, res);
    if (body.is_discarded()) {
      return;
    }
    auto ops = body.is_object() ? body.find("operations") : body.end();
    if (ops == body.end() || !ops->is_array()) {
      SendError(res, 400, "ERR_MALFORMED_REQUEST", "the body must be {\"operations\": [...]}");
      return;
    }
    components::Metadata common;
    if (auto metadata = body.find("metadata");
        metadata != body.end() && !ReadStringMap(*metadata, &common)) {
      SendError(res, 400, "ERR_MALFORMED_REQUEST", "metadata must be an object of strings");
      return;
    }
    std::vector<api::StateApi::Operation> operations;
    for (const auto& op : *ops) {
      if (!op.is_object()) {
        SendError(res, 400, "ERR_MALFORMED_REQUEST", "each operation must be a JSON object");
        return;
      }
      auto request = op.find("request");
      absl::StatusOr<api::StateApi::WriteItem> item =
          request == op.end() ? absl::InvalidArgumentError("an operation has no \"request\"")
                              : ParseStateItem(*request);
      if (!item.ok()) {
        SendError(res, 400, "ERR_MALFORMED_REQUEST", std::string(item.status().message()));
        return;
      }
      item->metadata.insert(common.begin(), common.end());
      operations.push_back(
          api::StateApi::Operation{StringField(op, "operation"), std::move(*item)});
    }
    const std::string store = req.matches[1];
    absl::Status status = Await<absl::Status>([&](std::function<void(absl::Status)> done) {
      apis->state->Transact(store, std::move(operations), std::move(done));
    });
    NoContentOr(res, status, "ERR_STATE_TRANSACTION");
  };
  s.Post(R"(/v1\.0/state/([^/]+)/transaction)", transaction);
  s.Put(R"(/v1\.0/state/([^/]+)/transaction)", transaction);

  s.Get(R"(/v1\.0/state/([^/]+)/([^/]+))", [apis](const httplib::Request& req,
                                                  httplib::Response& res) {
    using Result = absl::StatusOr<api::StateApi::GetResult>;
    const std::string store = req.matches[1];
    const std::string key = req.matches[2];
    const state::Consistency consistency = ParseConsistency(req.get_param_value("consistency"));
    Result result = Await<Result>([&](std::function<void(Result)> done) {
      apis->state->Get(store, key, consistency, std::move(done));
    });
    if (!result.ok()) {
      SendStatus(res, result.status(), "ERR_STATE_GET");
      return;
    }
    if (!result->found) {
      NoContent(res);  // the SDKs read 204 as "no value"; 404 would throw
      return;
    }
    res.status = 200;
    res.set_header("ETag", result->etag);
    for (const auto& [name, value] : result->metadata) {
      res.set_header("metadata." + name, value);
    }
    const bool is_json = !json::parse(result->value, nullptr, false).is_discarded();
    res.set_content(result->value, is_json ? "application/json" : "application/octet-stream");
  });

  s.Delete(R"(/v1\.0/state/([^/]+)/([^/]+))",
           [apis](const httplib::Request& req, httplib::Response& res) {
             api::StateApi::WriteItem item;
             item.key = req.matches[2];
             if (std::string etag = req.get_header_value("If-Match"); !etag.empty()) {
               item.etag = etag;
             }
             item.concurrency = ParseConcurrency(req.get_param_value("concurrency"));
             item.consistency = ParseConsistency(req.get_param_value("consistency"));
             item.metadata = QueryMetadata(req);
             std::vector<api::StateApi::WriteItem> items;
             items.push_back(std::move(item));
             const std::string store = req.matches[1];
             absl::Status status = Await<absl::Status>([&](std::function<void(absl::Status)> done) {
               apis->state->Delete(store, std::move(items), std::move(done));
             });
             if (!status.ok()) {
               SendStatus(res, status, "ERR_STATE_DELETE");
               return;
             }
             NoContent(res);
           });

  // ------------------------------------------------------------------------------ pubsub
  // Bulk first: its paths also match the single publish pattern.
  auto bulk_publish = [apis](const httplib::Request& req, httplib::Response& res) {
    json body = ParseBody(req, res);
    if (body.is_discarded()) {
      return;
    }
    if (!body.is_array()) {
      SendError(res, 400, "ERR_MALFORMED_REQUEST", "the body must be a JSON array of entries");
      return;
    }
    const std::string pubsub = req.matches[1];
    const std::string topic = req.matches[2];
    if (absl::StatusOr<components::pubsub::PubSub*> found = apis->pubsub->Find(pubsub);
        !found.ok()) {
      SendStatus(res, found.status(), "ERR_PUBSUB_NOT_FOUND");
      return;
    }
    const components::Metadata query = QueryMetadata(req);
    std::vector<std::pair<std::string, api::PubSubApi::PublishRequest>> entries;
    std::set<std::string> ids;
    for (const auto& in : body) {
      const std::string id = in.is_object() ? FoldedString(in, "entryId") : "";
      if (id.empty() || !ids.insert(id).second) {
        SendError(res, 400, "ERR_PUBSUB_EVENTS_SER",
                  "entryId is duplicated or not present for entry '" + id + "'");
        return;
      }
      api::PubSubApi::PublishRequest publish;
      publish.pubsub_name = pubsub;
      publish.topic = topic;
      publish.content_type = FoldedString(in, "contentType");
      const json* found_event = FoldedField(in, "event");
      const json& event = found_event != nullptr ? *found_event : json();
      publish.data = event.is_string() && !IsJsonContentType(publish.content_type)
                         ? event.get<std::string>()
                         : event.dump();
      if (const json* metadata = FoldedField(in, "metadata");
          metadata != nullptr && !ReadStringMap(*metadata, &publish.metadata)) {
        SendError(res, 400, "ERR_PUBSUB_EVENTS_SER", "metadata must be an object of strings");
        return;
      }
      publish.metadata.insert(query.begin(), query.end());
      entries.emplace_back(id, std::move(publish));
    }
    json failed = json::array();
    for (auto& [id, publish] : entries) {
      absl::Status status = Await<absl::Status>([&](std::function<void(absl::Status)> done) {
        apis->pubsub->Publish(std::move(publish), std::move(done));
      });
      if (!status.ok()) {
        if (status.code() == absl::StatusCode::kInvalidArgument) {
          SendStatus(res, status, "ERR_PUBSUB_PUBLISH_MESSAGE");
          return;
        }
        failed.push_back({{"entryId", id}, {"error", std::string(status.message())}});
      }
    }
    if (!failed.empty()) {
      res.status = 500;
      res.set_content(
          json{{"failedEntries", failed}, {"errorCode", "ERR_PUBSUB_PUBLISH_MESSAGE"}}.dump(),
          "application/json");
      return;
    }
    NoContent(res);
  };
  for (const char* pattern :
       {R"(/v1\.0/publish/bulk/([^/]+)/(.+))", R"(/v1\.0-alpha1/publish/bulk/([^/]+)/(.+))"}) {
    s.Post(pattern, bulk_publish);
    s.Put(pattern, bulk_publish);
  }

  auto publish_one = [apis](const httplib::Request& req, httplib::Response& res) {
    api::PubSubApi::PublishRequest publish;
    publish.pubsub_name = req.matches[1];
    publish.topic = req.matches[2];
    publish.data = req.body;
    publish.content_type = req.get_header_value("Content-Type");
    publish.metadata = QueryMetadata(req);
    absl::Status status = Await<absl::Status>([&](std::function<void(absl::Status)> done) {
      apis->pubsub->Publish(std::move(publish), std::move(done));
    });
    NoContentOr(res, status, "ERR_PUBSUB_PUBLISH_MESSAGE");
  };
  s.Post(R"(/v1\.0/publish/([^/]+)/(.+))", publish_one);
  s.Put(R"(/v1\.0/publish/([^/]+)/(.+))", publish_one);

  // ----------------------------------------------------------------------- configuration
  auto get_config = [apis](const httplib::Request& req, httplib::Response& res) {
    api::ConfigApi::Selector selector;
    auto [begin, end] = req.params.equal_range("key");
    for (auto it = begin; it != end; ++it) {
      selector.keys.push_back(it->second);
    }
    selector.metadata = QueryMetadata(req);
    using Items = absl::StatusOr<std::vector<components::config_store::Item>>;
    const std::string store = req.matches[1];
    Items items = Await<Items>([&](std::function<void(Items)> done) {
      apis->config->Get(store, std::move(selector), std::move(done));
    });
    if (!items.ok()) {
      SendStatus(res, items.status(), "ERR_CONFIGURATION_GET");
      return;
    }
    json out = json::object();
    for (const auto& item : *items) {
      auto version = item.metadata.find("version");
      out[item.key] = {{"value", item.content},
                       {"version", version == item.metadata.end() ? "" : version->second},
                       {"metadata", item.metadata}};
    }
    SendJson(res, out);
  };
  s.Get(R"(/v1\.0(?:-alpha1)?/configuration/([^/]+))", get_config);
  // Updates of a subscription are POSTed to the app (its own app id through the RPC block).
  s.Get(R"(/v1\.0(?:-alpha1)?/configuration/([^/]+)/subscribe)",
        [this](const httplib::Request& req, httplib::Response& res) {
          std::vector<std::string> keys;
          auto [begin, end] = req.params.equal_range("key");
          for (auto it = begin; it != end; ++it) {
            keys.push_back(it->second);
          }
          SubscribeConfiguration(req.matches[1], std::move(keys), QueryMetadata(req), res);
        });
  s.Get(R"(/v1\.0(?:-alpha1)?/configuration/([^/]+)/([^/]+)/unsubscribe)",
        [this](const httplib::Request& req, httplib::Response& res) {
          std::unique_ptr<api::ConfigApi::Subscription> subscription;
          {
            absl::MutexLock lock(&config_mu_);
            auto it = config_subscriptions_.find(req.matches[2]);
            if (it != config_subscriptions_.end()) {
              subscription = std::move(it->second);
              config_subscriptions_.erase(it);
            }
          }
          if (subscription == nullptr) {
            SendJson(res, json{{"ok", false},
                               {"message", "no configuration subscription with id " +
                                               std::string(req.matches[2])}});
            return;
          }
          subscription.reset();  // unsubscribes, outside the lock
          SendJson(res, json{{"ok", true}});
        });

  // -------------------------------------------------------------------------------- lock
  s.Post(R"(/v1\.0-alpha1/lock/([^/]+))",
         [apis](const httplib::Request& req, httplib::Response& res) {
           json body = ParseBody(req, res);
           if (body.is_discarded()) {
             return;
           }
           if (!body.is_object()) {
             SendError(res, 400, "ERR_MALFORMED_REQUEST", "the body must be a JSON object");
             return;
           }
           const auto expiry = body.find("expiryInSeconds");
           const int32_t seconds =
               expiry != body.end() && expiry->is_number_integer() ? expiry->get<int32_t>() : 0;
           using Result = absl::StatusOr<bool>;
           const std::string store = req.matches[1];
           Result result = Await<Result>([&](std::function<void(Result)> done) {
             apis->lock->TryLock(store, StringField(body, "resourceId"),
                                 StringField(body, "lockOwner"), seconds, std::move(done));
           });
           if (!result.ok()) {
             SendStatus(res, result.status(), "ERR_TRY_LOCK");
             return;
           }
           SendJson(res, json{{"success", *result}});
         });
  s.Post(R"(/v1\.0-alpha1/unlock/([^/]+))",
         [apis](const httplib::Request& req, httplib::Response& res) {
           json body = ParseBody(req, res);
           if (body.is_discarded()) {
             return;
           }
           if (!body.is_object()) {
             SendError(res, 400, "ERR_MALFORMED_REQUEST", "the body must be a JSON object");
             return;
           }
           using Result = absl::StatusOr<components::lock::LockStatus>;
           const std::string store = req.matches[1];
           Result result = Await<Result>([&](std::function<void(Result)> done) {
             apis->lock->Unlock(store, StringField(body, "resourceId"),
                                StringField(body, "lockOwner"), std::move(done));
           });
           if (!result.ok()) {
             SendStatus(res, result.status(), "ERR_UNLOCK");
             return;
           }
           int status = 3;
           switch (*result) {
             case components::lock::LockStatus::kSuccess:
               status = 0;
               break;
             case components::lock::LockStatus::kLockDoesNotExist:
               status = 1;
               break;
             case components::lock::LockStatus::kLockBelongsToOthers:
               status = 2;
               break;
           }
           SendJson(res, json{{"status", status}});  // 0 included: SDKs read a missing status as 3
         });

  // -------------------------------------------------------------- metadata, shutdown, health
  s.Get(R"(/v1\.0/metadata)", [apis](const httplib::Request&, httplib::Response& res) {
    const api::RuntimeInfo info = apis->metadata->Describe();
    json components = json::array();
    for (const auto& component : info.components) {
      components.push_back({{"name", component.name},
                            {"type", api::DaprComponentType(component.kind, component.type)},
                            {"version", "v1"},
                            {"capabilities", component.capabilities}});
    }
    json subscriptions = json::array();
    for (const auto& subscription : info.subscriptions) {
      json item{{"pubsubname", subscription.pubsub_name},
                {"topic", subscription.topic},
                {"metadata", subscription.metadata},
                {"type", subscription.source == "config" ? "DECLARATIVE" : "PROGRAMMATIC"}};
      if (!subscription.dead_letter_topic.empty()) {
        item["deadLetterTopic"] = subscription.dead_letter_topic;
      }
      subscriptions.push_back(std::move(item));
    }
    SendJson(res, json{{"id", info.app_id},
                       {"runtimeVersion", info.version},
                       {"components", components},
                       {"subscriptions", subscriptions},
                       {"extended", info.attributes},
                       {"actorRuntime", {{"runtimeStatus", "DISABLED"}}}});
  });
  s.Put(R"(/v1\.0/metadata/([^/]+))", [apis](const httplib::Request& req, httplib::Response& res) {
    absl::Status status = apis->metadata->Set(req.matches[1], req.body);
    NoContentOr(res, status, "ERR_METADATA_SET");
  });
  s.Post(R"(/v1\.0/shutdown)", [apis](const httplib::Request&, httplib::Response& res) {
    NoContent(res);
    OTTAVA_LOG(Runtime, info, "Dapr shutdown requested over HTTP");
    if (apis->shutdown) {
      apis->shutdown();
    }
  });
  const std::function<bool()> ready = options_.ready;
  const std::function<bool()> outbound_ready = options_.outbound_ready;
  const std::string app_id = apis_.app_id;
  s.Get(R"(/v1\.0/healthz)", [ready, app_id](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("appid") && req.get_param_value("appid") != app_id) {
      SendError(res, 500, "ERR_HEALTH_APPID_NOT_MATCH", "app id does not match");
      return;
    }
    if (!ready()) {
      SendError(res, 500, "ERR_HEALTH_NOT_READY", "the sidecar is not ready");
      return;
    }
    NoContent(res);
  });
  s.Get(R"(/v1\.0/healthz/outbound)",
        [outbound_ready](const httplib::Request&, httplib::Response& res) {
          if (!outbound_ready()) {
            SendError(res, 500, "ERR_OUTBOUND_HEALTH_NOT_READY", "the components are not ready");
            return;
          }
          NoContent(res);
        });

  // ------------------------------------------------------------------------------ invoke
  // /v1.0/invoke/{app}/method/{path}, or any other path with a dapr-app-id header.
  auto invoke = [apis](const httplib::Request& req, httplib::Response& res) {
    std::string app;
    std::string method;
    if (req.path.rfind("/v1.0/invoke/", 0) == 0 && req.matches.size() == 3) {
      app = req.matches[1];
      method = req.matches[2];
    } else if (req.has_header("dapr-app-id")) {
      app = req.get_header_value("dapr-app-id");
      method = req.path.substr(req.path.empty() || req.path[0] != '/' ? 0 : 1);
    } else {
      SendError(res, 404, "ERR_NOT_FOUND", "no such route in Dapr's HTTP API: " + req.path);
      return;
    }
    if (apis->rpc == nullptr) {
      SendError(res, 500, "ERR_DIRECT_INVOKE",
                "invoke: no mesh is configured (add a \"mesh\" section with a router)");
      return;
    }
    components::rpc::RpcRequest rpc;
    rpc.app_id = app;
    rpc.method = method;
    rpc.verb = req.method;
    rpc.query = QueryString(req);
    rpc.content_type = req.get_header_value("Content-Type");
    rpc.data = req.body;
    rpc.caller_app_id = apis->app_id;
    for (const auto& [name, value] : req.headers) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (SkippedHeaders().count(lower) == 0) {
        rpc.metadata.emplace_back(std::move(lower), value);
      }
    }
    using Result = absl::StatusOr<components::rpc::RpcResponse>;
    Result result = Await<Result>([&](std::function<void(Result)> done) {
      apis->rpc->Invoke(std::move(rpc), std::move(done));
    });
    if (!result.ok()) {
      SendStatus(res, result.status(), "ERR_DIRECT_INVOKE");
      return;
    }
    res.status = result->http_status;
    res.set_content(result->data, result->content_type.empty() ? "application/octet-stream"
                                                               : result->content_type);
  };
  const char* kInvoke = R"(/v1\.0/invoke/([^/]+)/method/(.*))";
  const char* kAnything = R"(/.*)";
  for (const char* pattern : {kInvoke, kAnything}) {
    s.Get(pattern, invoke);
    s.Post(pattern, invoke);
    s.Put(pattern, invoke);
    s.Delete(pattern, invoke);
    s.Patch(pattern, invoke);
    s.Options(pattern, invoke);
  }
}

}  // namespace ottava::runtime::http_api
