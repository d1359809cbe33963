#include "mesh/router/route_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace ottava::mesh {
namespace {

using nlohmann::json;

RouterConfig ParseRouter(const std::string& routes) {
  json doc = json::parse(R"({"routers": [{"name": "r", "routes": )" + routes + R"(}],
    "clusters": [{"name": "a", "hosts": [{"address": "127.0.0.1:1"}]},
                 {"name": "b", "hosts": [{"address": "127.0.0.1:2"}]},
                 {"name": "c", "hosts": [{"address": "127.0.0.1:3"}]},
                 {"name": "d", "hosts": [{"address": "127.0.0.1:4"}]}]})");
  absl::StatusOr<MeshConfig> config = MeshConfig::Parse(doc, "/mesh");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? config->routers[0] : RouterConfig{};
}

std::shared_ptr<const RouteTable> MakeTable(const std::string& routes) {
  absl::StatusOr<std::shared_ptr<const RouteTable>> table = RouteTable::Create(ParseRouter(routes));
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *table : nullptr;
}

RequestHeaders Request(std::string service,
                       std::string method,
                       std::string path,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
  RequestHeaders request;
  request.service = std::move(service);
  request.method = std::move(method);
  request.path = std::move(path);
  for (const auto& [name, value] : headers) {
    request.headers.Add(name, value);
  }
  return request;
}

// The cluster of the matched route, "" for a direct response, "none" for no match.
std::string Target(const RouteTable& table, const RequestHeaders& request) {
  const RouteEntry* route = table.Match(request);
  return route == nullptr ? "none" : route->PickCluster(0);
}

TEST(RouteTableTest, FirstMatchingRouteWins) {
  auto table = MakeTable(R"([
    {"match": {"service": "s1"}, "cluster": "a"},
    {"match": {"path_prefix": "/api"}, "cluster": "b"},
    {"match": {"service": "s1", "path_prefix": "/api"}, "cluster": "c"},
    {"cluster": "d"}
  ])");
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(Target(*table, Request("s1", "GET", "/api/x")), "a");  // not c: a comes first
  EXPECT_EQ(Target(*table, Request("s2", "GET", "/api/x")), "b");
  EXPECT_EQ(Target(*table, Request("s2", "GET", "/other")), "d");
  EXPECT_EQ(table->Match(Request("s1", "GET", "/")), &table->routes()[0]);
}

TEST(RouteTableTest, NoMatchIsNull) {
  auto table = MakeTable(R"([{"match": {"service": "s1"}, "cluster": "a"}])");
  EXPECT_EQ(table->Match(Request("s2", "GET", "/")), nullptr);
  auto empty = MakeTable("[]");
  EXPECT_EQ(empty->Match(Request("s1", "GET", "/")), nullptr);
}

TEST(RouteTableTest, EachCondition) {
  auto table = MakeTable(R"([
    {"match": {"service": "svc"}, "cluster": "a"},
    {"match": {"method": "DELETE"}, "cluster": "b"},
    {"match": {"path_prefix": "/v1/"}, "cluster": "c"},
    {"match": {"headers": [{"name": "x-env", "exact": "canary"}]}, "cluster": "d"},
    {"match": {"headers": [{"name": "x-flag"}]}, "direct_response": {"status": 204}}
  ])");
  // service: exact, not prefix.
  EXPECT_EQ(Target(*table, Request("svc", "GET", "/")), "a");
  EXPECT_EQ(Target(*table, Request("svc2", "GET", "/")), "none");
  // method: exact and case-sensitive, as HTTP methods are.
  EXPECT_EQ(Target(*table, Request("", "DELETE", "/")), "b");
  EXPECT_EQ(Target(*table, Request("", "delete", "/")), "none");
  // path_prefix: on the path without the query string.
  EXPECT_EQ(Target(*table, Request("", "GET", "/v1/users?id=1")), "c");
  EXPECT_EQ(Target(*table, Request("", "GET", "/v1")), "none");
  EXPECT_EQ(Target(*table, Request("", "GET", "/x?/v1/")), "none");
  // exact header value; names are case-insensitive.
  EXPECT_EQ(Target(*table, Request("", "GET", "/", {{"X-Env", "canary"}})), "d");
  EXPECT_EQ(Target(*table, Request("", "GET", "/", {{"x-env", "canary2"}})), "none");
  // presence only: any value, even empty.
  EXPECT_EQ(Target(*table, Request("", "GET", "/", {{"x-flag", ""}})), "");
  const RouteEntry* direct = table->Match(Request("", "GET", "/", {{"x-flag", "1"}}));
  ASSERT_NE(direct, nullptr);
  ASSERT_TRUE(direct->config.direct_response.has_value());
  EXPECT_EQ(direct->config.direct_response->status, 204);
}

TEST(RouteTableTest, AllConditionsOfARouteMustHold) {
  auto table = MakeTable(R"([
    {"match": {"service": "s", "method": "POST", "path_prefix": "/p",
               "headers": [{"name": "h1", "exact": "1"}, {"name": "h2"}]}, "cluster": "a"}
  ])");
  const std::vector<std::pair<std::string, std::string>> headers = {{"h1", "1"}, {"h2", "x"}};
  EXPECT_EQ(Target(*table, Request("s", "POST", "/p", headers)), "a");
  EXPECT_EQ(Target(*table, Request("t", "POST", "/p", headers)), "none");
  EXPECT_EQ(Target(*table, Request("s", "GET", "/p", headers)), "none");
  EXPECT_EQ(Target(*table, Request("s", "POST", "/q", headers)), "none");
  EXPECT_EQ(Target(*table, Request("s", "POST", "/p", {{"h1", "1"}})), "none");
  EXPECT_EQ(Target(*table, Request("s", "POST", "/p", {{"h1", "2"}, {"h2", "x"}})), "none");
}

TEST(RouteTableTest, RegexMustMatchTheWholeValue) {
  auto table = MakeTable(R"([
    {"match": {"headers": [{"name": "x-user", "regex": "u[0-9]+"}]}, "cluster": "a"}
  ])");
  EXPECT_EQ(Target(*table, Request("", "GET", "/", {{"x-user", "u42"}})), "a");
  EXPECT_EQ(Target(*table, Request("", "GET", "/", {{"x-user", "xu42"}})), "none");
  EXPECT_EQ(Target(*table, Request("", "GET", "/", {{"x-user", "u42x"}})), "none");
  EXPECT_EQ(Target(*table, Request("", "GET", "/", {{"x-user", "u"}})), "none");
  EXPECT_EQ(Target(*table, Request("", "GET", "/")), "none");
}

TEST(RouteTableTest, CreateReportsABadRegexWithItsPointer) {
  RouterConfig config;
  config.name = "r";
  RouteConfig route;
  route.pointer = "/routers/0/routes/0";
  route.cluster = "a";
  route.match.headers.push_back({"x", std::nullopt, "a(b"});
  config.routes.push_back(route);
  absl::StatusOr<std::shared_ptr<const RouteTable>> table = RouteTable::Create(config);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(std::string(table.status().message()),
            "/routers/0/routes/0/match/headers/0/regex: invalid regex: missing ): a(b");
}

TEST(RouteTableTest, WeightedPickFollowsWeights) {
  auto table = MakeTable(R"([
    {"weighted_clusters": [{"cluster": "a", "weight": 90}, {"cluster": "b", "weight": 10}]}
  ])");
  const RouteEntry* route = table->Match(Request("", "GET", "/"));
  ASSERT_NE(route, nullptr);
  std::mt19937_64 random(7);
  constexpr int kPicks = 200000;
  int a = 0;
  for (int i = 0; i < kPicks; ++i) {
    const std::string& cluster = route->PickCluster(random());
    ASSERT_TRUE(cluster == "a" || cluster == "b");
    a += cluster == "a" ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(a) / kPicks, 0.90, 0.01);
  // The ranges are exact: [0, 90) → a, [90, 100) → b.
  EXPECT_EQ(route->PickCluster(89), "a");
  EXPECT_EQ(route->PickCluster(90), "b");
  EXPECT_EQ(route->PickCluster(99), "b");
  EXPECT_EQ(route->PickCluster(100), "a");
}

TEST(RouteTableTest, HeaderNamesAreCollected) {
  auto table = MakeTable(R"([
    {"match": {"headers": [{"name": "X-B"}, {"name": "x-a", "exact": "1"}]}, "cluster": "a"},
    {"match": {"headers": [{"name": "x-b", "regex": ".*"}]}, "cluster": "b"}
  ])");
  EXPECT_EQ(table->header_names(), (std::vector<std::string>{"x-a", "x-b"}));
}

TEST(RouteCacheTest, AgreesWithMatchOnRandomRequests) {
  auto table = MakeTable(R"([
    {"match": {"service": "s1", "headers": [{"name": "x-v", "exact": "2"}]}, "cluster": "a"},
    {"match": {"service": "s1", "method": "POST"}, "cluster": "b"},
    {"match": {"path_prefix": "/api/", "headers": [{"name": "x-u", "regex": "[ab]+"}]},
     "cluster": "c"},
    {"match": {"path_prefix": "/api/", "headers": [{"name": "x-p"}]}, "cluster": "d"},
    {"match": {"service": "s2"}, "direct_response": {"status": 503}}
  ])");
  RouteCache cache(64);  // small, so the wholesale clear happens too
  std::mt19937 random(11);
  const char* services[] = {"s1", "s2", "s3", ""};
  const char* methods[] = {"GET", "POST"};
  const char* paths[] = {"/", "/api/x", "/api/y?q=1", "/api", "/other"};
  const char* values[] = {"", "2", "a", "ab", "abc", "b"};
  const char* names[] = {"x-v", "x-u", "x-p", "x-unrelated"};
  int matched = 0;
  for (int i = 0; i < 20000; ++i) {
    RequestHeaders request =
        Request(services[random() % 4], methods[random() % 2], paths[random() % 5]);
    for (const char* name : names) {
      if (random() % 2 == 0) {
        request.headers.Add(name, values[random() % 6]);
      }
    }
    const RouteEntry* expected = table->Match(request);
    ASSERT_EQ(cache.Match(*table, request), expected) << i;
    ASSERT_EQ(cache.Match(*table, request), expected) << i;  // now from the cache
    matched += expected != nullptr ? 1 : 0;
    ASSERT_LE(cache.size(), 64u);
  }
  EXPECT_GT(matched, 1000);
  EXPECT_GT(cache.hits(), 20000u);
}

TEST(RouteCacheTest, CachesMissesAndDistinguishesAbsentFromEmpty) {
  auto table = MakeTable(R"([{"match": {"headers": [{"name": "x-p"}]}, "cluster": "a"}])");
  RouteCache cache;
  EXPECT_EQ(cache.Match(*table, Request("", "GET", "/")), nullptr);
  EXPECT_EQ(cache.Match(*table, Request("", "GET", "/")), nullptr);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.Match(*table, Request("", "GET", "/", {{"x-p", ""}})), &table->routes()[0]);
  EXPECT_EQ(cache.misses(), 2u);
  // Query strings do not matter to matching, so they share an entry.
  EXPECT_EQ(cache.Match(*table, Request("", "GET", "/?a=1", {{"x-p", ""}})), &table->routes()[0]);
  EXPECT_EQ(cache.hits(), 2u);
}

TEST(RouteCacheTest, ClearedWhenTheTableChanges) {
  const std::string routes = R"([{"match": {"service": "s"}, "cluster": "a"}])";
  auto first = MakeTable(routes);
  auto second = MakeTable(R"([{"match": {"service": "s"}, "cluster": "b"}])");
  RouteCache cache;
  const RequestHeaders request = Request("s", "GET", "/");
  EXPECT_EQ(cache.Match(*first, request), &first->routes()[0]);
  EXPECT_EQ(cache.size(), 1u);
  const RouteEntry* route = cache.Match(*second, request);
  EXPECT_EQ(route, &second->routes()[0]);
  EXPECT_EQ(route->PickCluster(0), "b");
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.hits(), 0u);
  // A table built later at the same address is still a different table.
  const RouteTable* old_address = first.get();
  first.reset();
  std::shared_ptr<const RouteTable> third;
  for (int i = 0; i < 100 && (third == nullptr || third.get() != old_address); ++i) {
    third = MakeTable(R"([{"match": {"service": "s"}, "cluster": "c"}])");
  }
  EXPECT_EQ(cache.Match(*third, request)->PickCluster(0), "c");
}

}  // namespace
}  // namespace ottava::mesh
