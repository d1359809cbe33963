#include "actuator/actuator.h"

#include <httplib.h>

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

absl::StatusOr<std::unique_ptr<Actuator>> Actuator::Create(const std::string& host,
                                                           uint16_t port,
                                                           Sources sources) {
  std::unique_ptr<Actuator> actuator(new Actuator(host, std::move(sources)));
  if (port == 0) {
    int bound = actuator->server_->bind_to_any_port(host);
    if (bound <= 0) {
      return absl::UnavailableError("actuator: cannot bind " + host + ":0");
    }
    actuator->port_ = static_cast<uint16_t>(bound);
  } else {
    if (!actuator->server_->bind_to_port(host, port)) {
      return absl::UnavailableError("actuator: cannot bind " + host + ":" + std::to_string(port) +
                                    " (address in use?)");
    }
    actuator->port_ = port;
  }
  return actuator;
}

Actuator::Actuator(std::string host, Sources sources)
    : host_(std::move(host)),
      sources_(std::move(sources)),
      server_(std::make_unique<httplib::Server>()) {
  // Probes are tiny; a small pool keeps the idle footprint small.
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_keep_alive_timeout(5);
  Routes();
}

Actuator::~Actuator() {
  Stop();
}

void Actuator::Start() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() is lost if it comes before the accept loop starts (the loop then runs
  // forever and Stop() never joins), so return only once the server is running.
  for (int i = 0; i < 2000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Actuator::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

void Actuator::AddHandler(std::string method,
                          std::string path,
                          std::string help,
                          Handler handler,
                          bool loopback_only) {
  (void)help;
  auto serve = [handler = std::move(handler), method, loopback_only](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (loopback_only && req.remote_addr != "127.0.0.1" && req.remote_addr != "::1" &&
        req.remote_addr.rfind("::ffff:127.", 0) != 0) {
      res.status = 403;
      res.set_content(nlohmann::json{{"error", "this endpoint only answers loopback clients"}}.dump(),
                      "application/json");
      return;
    }
    HttpRequest request{method, req.path, req.body, req.remote_addr, {}};
    for (const auto& [key, value] : req.params) {
      request.params[key] = value;
    }
    HttpResponse response = handler(request);
    res.status = response.status;
    res.set_content(response.body, response.content_type);
  };
  if (method == "GET") {
    server_->Get(path, serve);
  } else if (method == "POST") {
    server_->Post(path, serve);
  } else if (method == "PUT") {
    server_->Put(path, serve);
  } else if (method == "DELETE") {
    server_->Delete(path, serve);
  }
}

void Actuator::Routes() {
  auto health = [](const std::vector<Indicator>& indicators, httplib::Response& res) {
    nlohmann::json body = HealthBody(indicators);
    res.status = Aggregate(indicators) == HealthState::kUp ? 200 : 503;
    res.set_content(body.dump(), "application/json");
  };
  server_->Get("/actuator/health/liveness",
               [this, health](const httplib::Request&, httplib::Response& res) {
                 health(sources_.liveness(), res);
               });
  server_->Get("/actuator/health/readiness",
               [this, health](const httplib::Request&, httplib::Response& res) {
                 health(sources_.readiness(), res);
               });
  server_->Get("/actuator/health", [this, health](const httplib::Request&, httplib::Response& res) {
    // Overall health: liveness and readiness together.
    auto indicators = sources_.liveness();
    auto readiness = sources_.readiness();
    indicators.insert(indicators.end(), readiness.begin(), readiness.end());
    health(indicators, res);
  });
  server_->Get("/actuator/info", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(sources_.info().dump(), "application/json");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(sources_.stats->RenderPrometheus(), "text/plain; version=0.0.4");
  });
  server_->Post("/actuator/logger", [](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    auto fail = [&res](int status, const std::string& message) {
      res.status = status;
      res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
    };
    if (body.is_discarded() || !body.is_object()) {
      fail(400, "body must be a JSON object {\"module\": NAME, \"level\": LEVEL}");
      return;
    }
    auto module = body.find("module");
    if (module == body.end()) {
      module = body.find("component");  // Layotto's name for the field
    }
    auto level = body.find("level");
    if (module == body.end() || !module->is_string() || level == body.end() ||
        !level->is_string()) {
      fail(400, "body needs string fields \"module\" and \"level\"");
      return;
    }
    const std::string name = module->get<std::string>();
    absl::Status status = name == "all" ? logging::SetAllLevels(level->get<std::string>())
                                        : logging::SetLevel(name, level->get<std::string>());
    if (!status.ok()) {
      fail(status.code() == absl::StatusCode::kNotFound ? 404 : 400, std::string(status.message()));
      return;
    }
    OTTAVA_LOG(Actuator, info, "log level of {} set to {}", name, level->get<std::string>());
    res.set_content(nlohmann::json{{"module", name}, {"level", level->get<std::string>()}}.dump(),
                    "application/json");
  });
  server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(nlohmann::json{{"error", "not found"}}.dump(), "application/json");
    }
  });
}

}  // namespace ottava::actuator
