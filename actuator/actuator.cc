#include "actuator/actuator.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <tuple>

#include "actuator/socket_http_server.h"
#include "common/accept_loop.h"
#include "common/assert.h"
#include "common/logging.h"

namespace ottava::actuator {

using components::HealthState;
using components::HealthStateName;

HealthState Aggregate(const std::vector<Indicator>& indicators) {
  HealthState result = HealthState::kUp;
  for (const auto& indicator : indicators) {
    if (!indicator.counts) {
      continue;
    }
    if (indicator.state == HealthState::kDown) {
      return HealthState::kDown;
    }
    if (indicator.state == HealthState::kInit) {
      result = HealthState::kInit;
    }
  }
  return result;
}

nlohmann::json HealthBody(const std::vector<Indicator>& indicators) {
  nlohmann::json body;
  body["status"] = HealthStateName(Aggregate(indicators));
  nlohmann::json components = nlohmann::json::object();
  for (const auto& indicator : indicators) {
    nlohmann::json entry;
    entry["status"] = HealthStateName(indicator.state);
    nlohmann::json details = nlohmann::json::object();
    if (!indicator.reason.empty()) {
      details["reason"] = indicator.reason;
    }
    if (!indicator.counts) {
      details["required"] = false;
    }
    if (!details.empty()) {
      entry["details"] = std::move(details);
    }
    components[indicator.name] = std::move(entry);
  }
  body["components"] = std::move(components);
  return body;
}

namespace {

bool IsLoopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "::1" || address.rfind("::ffff:127.", 0) == 0;
}

HttpResponse Json(int status, const nlohmann::json& body) {
  return HttpResponse{status, "application/json", body.dump()};
}

HttpResponse Health(const std::vector<Indicator>& indicators) {
  return Json(Aggregate(indicators) == HealthState::kUp ? 200 : 503, HealthBody(indicators));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Actuator>> Actuator::Create(const std::string& host,
                                                           uint16_t port,
                                                           int inherited_fd) {
  std::unique_ptr<Actuator> actuator(new Actuator(host));
  if (inherited_fd >= 0) {
    actuator->listen_fd_ = inherited_fd;
  } else {
    absl::StatusOr<int> fd = BindListenSocket(Address{host, port});
    if (!fd.ok()) {
      return absl::UnavailableError("actuator: " + std::string(fd.status().message()) +
                                    " (address in use?)");
    }
    actuator->listen_fd_ = *fd;
  }
  absl::StatusOr<Address> bound = SocketAddress(actuator->listen_fd_);
  if (!bound.ok()) {
    return bound.status();
  }
  actuator->port_ = bound->port;
  return actuator;
}

Actuator::Actuator(std::string host)
    : host_(std::move(host)), server_(std::make_unique<SocketHttpServer>()) {
  // Probes are tiny; a small pool keeps the idle footprint small.
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_keep_alive_timeout(5);
  server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(nlohmann::json{{"error", "not found"}}.dump(), "application/json");
    }
  });
  AddHandler("GET", "/actuator", "this list of endpoints",
             [this](const HttpRequest&) { return Index(); });
  server_->Get("/actuator/", [this](const httplib::Request&, httplib::Response& res) {
    HttpResponse index = Index();
    res.set_content(index.body, index.content_type);
  });
}

Actuator::~Actuator() {
  Stop();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
  }
}

void Actuator::AddHandler(
    std::string method, std::string path, std::string help, Handler handler, bool loopback_only) {
  OTTAVA_RELEASE_ASSERT(!started_, "actuator handler added after Start()");
  for (const auto& registered : registered_) {
    OTTAVA_RELEASE_ASSERT(registered.method != method || registered.path != path,
                          "actuator handler registered twice");
  }
  auto serve = [method, handler = std::move(handler), loopback_only](const httplib::Request& req,
                                                                     httplib::Response& res) {
    HttpResponse response;
    if (loopback_only && !IsLoopback(req.remote_addr)) {
      response = Json(403, nlohmann::json{{"error", "only served to loopback clients"}});
    } else {
      HttpRequest request{method, req.path, req.body, req.remote_addr, {}};
      for (const auto& [key, value] : req.params) {
        request.params.emplace(key, value);  // keeps the first of repeated keys
      }
      response = handler(request);
    }
    res.status = response.status;
    res.set_content(response.body, response.content_type);
  };
  if (method == "GET") {
    server_->Get(path, std::move(serve));
  } else if (method == "POST") {
    server_->Post(path, std::move(serve));
  } else if (method == "PUT") {
    server_->Put(path, std::move(serve));
  } else if (method == "DELETE") {
    server_->Delete(path, std::move(serve));
  } else if (method == "PATCH") {
    server_->Patch(path, std::move(serve));
  } else {
    OTTAVA_RELEASE_ASSERT(false, "unsupported actuator handler method");
  }
  registered_.push_back({std::move(method), std::move(path), std::move(help)});
}

HttpResponse Actuator::Index() const {
  std::vector<const Registered*> sorted;
  for (const auto& registered : registered_) {
    sorted.push_back(&registered);
  }
  std::sort(sorted.begin(), sorted.end(), [](const Registered* a, const Registered* b) {
    return std::tie(a->path, a->method) < std::tie(b->path, b->method);
  });
  nlohmann::json handlers = nlohmann::json::array();
  for (const Registered* registered : sorted) {
    handlers.push_back(
        {{"method", registered->method}, {"path", registered->path}, {"help", registered->help}});
  }
  return Json(200, nlohmann::json{{"handlers", std::move(handlers)}});
}

void Actuator::Start() {
  started_ = true;
  if (absl::Status status = server_->Serve(listen_fd_); !status.ok()) {
    OTTAVA_LOG(Actuator, error, "actuator: {}", status.message());
  }
}

void Actuator::StopAccepting() {
  server_->StopAccepting();
  server_->Drain();
}

void Actuator::Stop() {
  server_->Stop();
}

void AddHealthHandlers(Actuator& actuator,
                       std::function<std::vector<Indicator>()> liveness,
                       std::function<std::vector<Indicator>()> readiness) {
  actuator.AddHandler("GET", "/actuator/health/liveness",
                      "liveness: the process and its event loops respond (200 UP, else 503)",
                      [liveness](const HttpRequest&) { return Health(liveness()); });
  actuator.AddHandler(
      "GET", "/actuator/health/readiness",
      "readiness: every required component is UP and the API serves (200 UP, else 503)",
      [readiness](const HttpRequest&) { return Health(readiness()); });
  actuator.AddHandler("GET", "/actuator/health", "liveness and readiness together",
                      [liveness, readiness](const HttpRequest&) {
                        auto indicators = liveness();
                        auto more = readiness();
                        indicators.insert(indicators.end(), more.begin(), more.end());
                        return Health(indicators);
                      });
}

void AddInfoHandler(Actuator& actuator, std::function<nlohmann::json()> info) {
  actuator.AddHandler("GET", "/actuator/info",
                      "version, build, app id, components and subscriptions",
                      [info = std::move(info)](const HttpRequest&) { return Json(200, info()); });
}

void AddMetricsHandler(Actuator& actuator, const stats::Store& stats) {
  actuator.AddHandler(
      "GET", "/metrics", "metrics in Prometheus text format", [&stats](const HttpRequest&) {
        return HttpResponse{200, "text/plain; version=0.0.4", stats.RenderPrometheus()};
      });
}

void AddLoggerHandler(Actuator& actuator) {
  actuator.AddHandler(
      "POST", "/actuator/logger",
      "sets a module's log level: {\"module\": NAME|\"all\", \"level\": LEVEL}",
      [](const HttpRequest& req) {
        nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        auto fail = [](int status, const std::string& message) {
          return Json(status, nlohmann::json{{"error", message}});
        };
        if (body.is_discarded() || !body.is_object()) {
          return fail(400, "body must be a JSON object {\"module\": NAME, \"level\": LEVEL}");
        }
        auto module = body.find("module");
        if (module == body.end()) {
          module = body.find("component");  // Layotto's name for the field
        }
        auto level = body.find("level");
        if (module == body.end() || !module->is_string() || level == body.end() ||
            !level->is_string()) {
          return fail(400, "body needs string fields \"module\" and \"level\"");
        }
        const std::string name = module->get<std::string>();
        absl::Status status = name == "all" ? logging::SetAllLevels(level->get<std::string>())
                                            : logging::SetLevel(name, level->get<std::string>());
        if (!status.ok()) {
          return fail(status.code() == absl::StatusCode::kNotFound ? 404 : 400,
                      std::string(status.message()));
        }
        OTTAVA_LOG(Actuator, info, "log level of {} set to {}", name, level->get<std::string>());
        return Json(200, nlohmann::json{{"module", name}, {"level", level->get<std::string>()}});
      });
}

}  // namespace ottava::actuator
