// Every route of Dapr's HTTP API v1.0, driven with the real `curl` binary against the real
// `ottava` binary, as a user following the README's tour would: state CRUD, bulk, transactions,
// ETag/If-Match, publish and bulk publish (delivered to a Dapr HTTP app), invocation, configuration
// get and subscribe, lock/unlock, metadata, health, and shutdown last. Error cases (bad JSON, bad
// ETag, unknown store, a body over the limit) must come back with Dapr's status code and an error
// body {"errorCode", "message"}.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "spec/proto/runtime/v1/runtime.grpc.pb.h"
#include "test/support/process.h"
#include "test/support/runtime_calls.h"

namespace ottava::test {
namespace {

namespace lv1 = spec::proto::runtime::v1;
using nlohmann::json;

struct Curled {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names

  json Json() const { return json::parse(body, nullptr, false); }
  std::string ErrorCode() const {
    json parsed = Json();
    return parsed.is_object() && parsed.contains("errorCode") && parsed["errorCode"].is_string()
               ? parsed["errorCode"].get<std::string>()
               : "";
  }
  bool HasErrorMessage() const {
    json parsed = Json();
    return parsed.is_object() && parsed.contains("message") && parsed["message"].is_string() &&
           !parsed["message"].get<std::string>().empty();
  }
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `curl -sS -g [args...] URL`; the status, the body and the headers come from files.
Curled Curl(const std::string& base, const std::string& path, std::vector<std::string> args = {}) {
  const std::string dir = MakeTempDir();
  std::vector<std::string> argv{
      "curl",           "-sS", "-g",          "--max-time", "10",          "-D",
      dir + "/headers", "-o",  dir + "/body", "-w",         "%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("http://" + base + path);
  RunResult run = RunProcess(argv, std::chrono::seconds(15));
  Curled out;
  EXPECT_EQ(run.exit_code, 0) << "curl " << path << ": " << run.err;
  out.status = std::atoi(run.out.c_str());
  out.body = ReadAll(dir + "/body");
  std::istringstream headers(ReadAll(dir + "/headers"));
  for (std::string line; std::getline(headers, line);) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) {
      value.pop_back();
    }
    out.headers[name] = value;
  }
  return out;
}

// `curl -X VERB -H 'Content-Type: ...' -d BODY`.
std::vector<std::string> Send(const std::string& verb,
                              const std::string& body,
                              const std::string& type = "application/json") {
  return {"-X", verb, "-H", "Content-Type: " + type, "--data-binary", body};
}

// The Dapr HTTP app the sidecar delivers to: records events, echoes invocations, takes
// configuration updates.
class App {
 public:
  App() {
    server_.Get("/dapr/subscribe", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"([{"pubsubname":"pubsub","topic":"orders","route":"/orders"}])",
                      "application/json");
    });
    server_.Post("/orders", [this](const httplib::Request& req, httplib::Response& res) {
      Record("/orders", req.body);
      res.set_content(R"({"status":"SUCCESS"})", "application/json");
    });
    server_.Post(R"(/configuration/([^/]+)/([^/]+))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   Record(req.path, req.body);
                   res.status = 200;
                 });
    server_.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(json{{"body", req.body},
                           {"content_type", req.get_header_value("Content-Type")},
                           {"q", req.get_param_value("q")}}
                          .dump(),
                      "application/json");
    });
    port_ = static_cast<uint16_t>(server_.bind_to_any_port("127.0.0.1"));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~App() {
    server_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::vector<json> At(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<json> out;
    for (const auto& [at, body] : received_) {
      if (at == path) {
        out.push_back(json::parse(body, nullptr, false));
      }
    }
    return out;
  }

 private:
  void Record(const std::string& path, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu_);
    received_.emplace_back(path, body);
  }

  httplib::Server server_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> received_;
};

class DaprCurlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(RunProcess({"curl", "--version"}).exit_code, 0)
        << "curl is not installed (scripts/setup.sh installs it)";
    app_ = std::make_unique<App>();
    json config = InMemoryConfig("curl-app");
    config["app"]["callback"] = {{"address", "127.0.0.1:" + std::to_string(app_->port())},
                                 {"protocol", "http"},
                                 {"timeout_ms", 3000}};
    auto sidecar = Sidecar::Start(config);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = std::move(*sidecar);
    http_ = sidecar_->dapr_http_address();
  }
  void TearDown() override {
    if (sidecar_) {
      EXPECT_EQ(sidecar_->Stop(SIGTERM), 0) << sidecar_->Stderr();
    }
  }

  std::unique_ptr<App> app_;
  std::unique_ptr<Sidecar> sidecar_;
  std::string http_;
};

TEST_F(DaprCurlTest, EveryRouteThenShutdown) {
  // Health first: a tour starts by asking whether the sidecar is up.
  EXPECT_EQ(Curl(http_, "/v1.0/healthz").status, 204);
  EXPECT_EQ(Curl(http_, "/v1.0/healthz/outbound").status, 204);
  EXPECT_EQ(Curl(http_, "/v1.0/healthz?appid=curl-app").status, 204);

  // --- state CRUD with ETags.
  Curled saved =
      Curl(http_, "/v1.0/state/state", Send("POST", R"([{"key":"order-1","value":{"qty":1}},
                                        {"key":"order-2","value":"two"}])"));
  EXPECT_EQ(saved.status, 204) << saved.body;
  Curled got = Curl(http_, "/v1.0/state/state/order-1");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.Json(), json({{"qty", 1}}));
  const std::string etag = got.headers["etag"];
  ASSERT_FALSE(etag.empty()) << got.body;
  EXPECT_EQ(Curl(http_, "/v1.0/state/state/missing").status, 204);  // absent: 204, no body
  // PUT saves too; the body's etag must match.
  Curled stale = Curl(http_, "/v1.0/state/state",
                      Send("PUT", R"([{"key":"order-1","value":{"qty":2},"etag":"12345"}])"));
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.ErrorCode(), "ERR_STATE_SAVE");
  EXPECT_TRUE(stale.HasErrorMessage());
  EXPECT_EQ(Curl(http_, "/v1.0/state/state",
                 Send("PUT", R"([{"key":"order-1","value":{"qty":2},"etag":")" + etag + R"("}])"))
                .status,
            204);
  const std::string etag2 = Curl(http_, "/v1.0/state/state/order-1").headers["etag"];
  EXPECT_NE(etag2, etag);
  // DELETE with If-Match: stale is 409, malformed 400, right 204.
  Curled delete_stale =
      Curl(http_, "/v1.0/state/state/order-1", {"-X", "DELETE", "-H", "If-Match: " + etag});
  EXPECT_EQ(delete_stale.status, 409);
  EXPECT_EQ(delete_stale.ErrorCode(), "ERR_STATE_DELETE");
  Curled delete_bad =
      Curl(http_, "/v1.0/state/state/order-1", {"-X", "DELETE", "-H", "If-Match: not-an-etag"});
  EXPECT_EQ(delete_bad.status, 400);
  EXPECT_EQ(delete_bad.ErrorCode(), "ERR_STATE_DELETE");
  EXPECT_EQ(
      Curl(http_, "/v1.0/state/state/order-1", {"-X", "DELETE", "-H", "If-Match: " + etag2}).status,
      204);
  EXPECT_EQ(Curl(http_, "/v1.0/state/state/order-1").status, 204);

  // --- bulk get.
  Curled bulk =
      Curl(http_, "/v1.0/state/state/bulk", Send("POST", R"({"keys":["order-2","nope"]})"));
  ASSERT_EQ(bulk.status, 200) << bulk.body;
  json items = bulk.Json();
  ASSERT_EQ(items.size(), 2u) << bulk.body;
  EXPECT_EQ(items[0]["key"], "order-2");
  EXPECT_EQ(items[0]["data"], "two");
  EXPECT_FALSE(items[0]["etag"].get<std::string>().empty());
  EXPECT_EQ(items[1]["key"], "nope");
  EXPECT_FALSE(items[1].contains("data"));

  // --- transaction.
  Curled tx = Curl(http_, "/v1.0/state/state/transaction", Send("POST", R"({"operations":[
                       {"operation":"upsert","request":{"key":"t1","value":"one"}},
                       {"operation":"delete","request":{"key":"order-2"}}]})"));
  EXPECT_EQ(tx.status, 204) << tx.body;
  EXPECT_EQ(Curl(http_, "/v1.0/state/state/t1").body, R"("one")");
  EXPECT_EQ(Curl(http_, "/v1.0/state/state/order-2").status, 204);

  // --- publish and bulk publish, delivered to the app's route.
  ASSERT_TRUE(WaitFor([&] {
    return Curl(http_, "/v1.0/metadata").Json().value("subscriptions", json::array()).size() == 1;
  })) << sidecar_->Stderr();
  EXPECT_EQ(Curl(http_, "/v1.0/publish/pubsub/orders", Send("POST", R"({"n":1})")).status, 204);
  Curled bulk_publish =
      Curl(http_, "/v1.0-alpha1/publish/bulk/pubsub/orders",
           Send("POST", R"([{"entryId":"a","event":{"n":2},"contentType":"application/json"},
                            {"entryId":"b","event":"three","contentType":"text/plain"}])"));
  EXPECT_EQ(bulk_publish.status, 204) << bulk_publish.body;
  EXPECT_EQ(
      Curl(http_, "/v1.0/publish/bulk/pubsub/orders",
           Send("POST", R"([{"entryId":"c","event":{"n":4},"contentType":"application/json"}])"))
          .status,
      204);
  ASSERT_TRUE(WaitFor([&] { return app_->At("/orders").size() == 4; })) << sidecar_->Stderr();
  std::vector<json> data;
  for (const json& event : app_->At("/orders")) {
    data.push_back(event["data"]);
  }
  EXPECT_EQ(data, (std::vector<json>{{{"n", 1}}, {{"n", 2}}, "three", {{"n", 4}}}));

  // --- invocation of the own app, by path and by header.
  Curled invoked =
      Curl(http_, "/v1.0/invoke/curl-app/method/echo?q=1", Send("POST", "hello", "text/plain"));
  ASSERT_EQ(invoked.status, 200) << invoked.body;
  EXPECT_EQ(invoked.Json(), json({{"body", "hello"}, {"content_type", "text/plain"}, {"q", "1"}}));
  Curled by_header = Curl(http_, "/echo?q=2",
                          {"-X", "POST", "-H", "dapr-app-id: curl-app", "-H",
                           "Content-Type: application/json", "--data-binary", "{}"});
  ASSERT_EQ(by_header.status, 200) << by_header.body;
  EXPECT_EQ(by_header.Json()["q"], "2");

  // --- configuration: items written through Layotto's API, read and subscribed over HTTP.
  auto layotto = NewRuntimeStub(sidecar_->grpc_address());
  auto save_config = [&](const std::string& key, const std::string& content) {
    lv1::SaveConfigurationRequest save;
    save.set_store_name("config");
    auto* item = save.add_items();
    item->set_key(key);
    item->set_content(content);
    google::protobuf::Empty empty;
    return layotto->SaveConfiguration(CallContext().get(), save, &empty).ok();
  };
  ASSERT_TRUE(save_config("color", "red"));
  Curled config = Curl(http_, "/v1.0/configuration/config?key=color");
  ASSERT_EQ(config.status, 200) << config.body;
  EXPECT_EQ(config.Json()["color"]["value"], "red");
  EXPECT_EQ(Curl(http_, "/v1.0-alpha1/configuration/config?key=color").Json()["color"]["value"],
            "red");
  Curled subscribed = Curl(http_, "/v1.0/configuration/config/subscribe?key=color");
  ASSERT_EQ(subscribed.status, 200) << subscribed.body;
  const std::string id = subscribed.Json().value("id", "");
  ASSERT_FALSE(id.empty()) << subscribed.body;
  // A subscription registers asynchronously: save until the app saw an update.
  ASSERT_TRUE(WaitFor([&] {
    save_config("color", "blue");
    return !app_->At("/configuration/config/color").empty();
  })) << sidecar_->Stderr();
  json update = app_->At("/configuration/config/color").back();
  EXPECT_EQ(update["id"], id);
  EXPECT_EQ(update["items"]["color"]["value"], "blue");
  Curled unsubscribed = Curl(http_, "/v1.0/configuration/config/" + id + "/unsubscribe");
  EXPECT_EQ(unsubscribed.status, 200);
  EXPECT_EQ(unsubscribed.Json()["ok"], true) << unsubscribed.body;
  EXPECT_EQ(Curl(http_, "/v1.0/configuration/config/" + id + "/unsubscribe").Json()["ok"], false);

  // --- lock and unlock (alpha1).
  const std::string lock_body = R"({"resourceId":"r1","lockOwner":"alice","expiryInSeconds":30})";
  Curled locked = Curl(http_, "/v1.0-alpha1/lock/lock", Send("POST", lock_body));
  ASSERT_EQ(locked.status, 200) << locked.body;
  EXPECT_EQ(locked.Json(), json({{"success", true}}));
  EXPECT_EQ(Curl(http_, "/v1.0-alpha1/lock/lock",
                 Send("POST", R"({"resourceId":"r1","lockOwner":"bob","expiryInSeconds":30})"))
                .Json(),
            json({{"success", false}}));
  EXPECT_EQ(Curl(http_, "/v1.0-alpha1/unlock/lock",
                 Send("POST", R"({"resourceId":"r1","lockOwner":"bob"})"))
                .Json(),
            json({{"status", 2}}));
  EXPECT_EQ(Curl(http_, "/v1.0-alpha1/unlock/lock",
                 Send("POST", R"({"resourceId":"r1","lockOwner":"alice"})"))
                .Json(),
            json({{"status", 0}}));

  // --- metadata.
  EXPECT_EQ(Curl(http_, "/v1.0/metadata/team", Send("PUT", "checkout", "text/plain")).status, 204);
  Curled metadata = Curl(http_, "/v1.0/metadata");
  ASSERT_EQ(metadata.status, 200);
  json described = metadata.Json();
  EXPECT_EQ(described["id"], "curl-app");
  EXPECT_EQ(described["extended"]["team"], "checkout");
  std::vector<std::string> names;
  for (const auto& component : described["components"]) {
    names.push_back(component["name"]);
  }
  for (const char* name : {"state", "lock", "config", "pubsub"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << described.dump();
  }
  EXPECT_EQ(described["subscriptions"][0]["topic"], "orders");

  // --- shutdown, last.
  EXPECT_EQ(Curl(http_, "/v1.0/shutdown", {"-X", "POST"}).status, 204);
  EXPECT_EQ(sidecar_->Stop(0), 0) << sidecar_->Stderr();
  sidecar_.reset();
}

TEST_F(DaprCurlTest, ErrorsCarryDaprStatusAndErrorBody) {
  struct Case {
    const char* name;
    std::string path;
    std::vector<std::string> args;
    int status;
    const char* code;
  };
  const std::string big_file = MakeTempDir() + "/big";
  std::ofstream(big_file) << std::string(5 * 1024 * 1024, 'x');  // over the 4 MiB default
  const std::vector<Case> cases = {
      {"bad JSON", "/v1.0/state/state", Send("POST", R"([{"key":)"), 400, "ERR_MALFORMED_REQUEST"},
      {"bad JSON in a transaction", "/v1.0/state/state/transaction", Send("POST", "{"), 400,
       "ERR_MALFORMED_REQUEST"},
      {"bad JSON in a lock", "/v1.0-alpha1/lock/lock", Send("POST", "nope"), 400,
       "ERR_MALFORMED_REQUEST"},
      {"bad ETag", "/v1.0/state/state",
       Send("POST", R"([{"key":"k","value":1,"etag":"not-a-number"}])"), 400, "ERR_STATE_SAVE"},
      {"unknown store (save)", "/v1.0/state/nope", Send("POST", R"([{"key":"k","value":1}])"), 400,
       "ERR_STATE_STORE_NOT_FOUND"},
      {"unknown store (get)", "/v1.0/state/nope/k", {}, 400, "ERR_STATE_STORE_NOT_FOUND"},
      {"unknown store (bulk)", "/v1.0/state/nope/bulk", Send("POST", R"({"keys":["k"]})"), 400,
       "ERR_STATE_STORE_NOT_FOUND"},
      {"unknown pubsub", "/v1.0/publish/nope/orders", Send("POST", "{}"), 400,
       "ERR_PUBSUB_NOT_FOUND"},
      {"unknown lock store", "/v1.0-alpha1/lock/nope",
       Send("POST", R"({"resourceId":"r","lockOwner":"o","expiryInSeconds":5})"), 400,
       "ERR_LOCK_STORE_NOT_FOUND"},
      {"unknown configuration store",
       "/v1.0/configuration/nope?key=a",
       {},
       400,
       "ERR_CONFIGURATION_STORE_NOT_FOUND"},
      {"body over the limit",
       "/v1.0/publish/pubsub/orders",
       {"-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", "@" + big_file},
       413,
       "ERR_BODY_TOO_LARGE"},
      {"no such route", "/v1.0/nothing-here", {}, 404, "ERR_NOT_FOUND"},
  };
  for (const Case& c : cases) {
    Curled result = Curl(http_, c.path, c.args);
    EXPECT_EQ(result.status, c.status) << c.name << ": " << result.body;
    EXPECT_EQ(result.ErrorCode(), c.code) << c.name << ": " << result.body;
    EXPECT_TRUE(result.HasErrorMessage()) << c.name << ": " << result.body;
    EXPECT_EQ(result.headers["content-type"], "application/json") << c.name;
  }
}

}  // namespace
}  // namespace ottava::test
