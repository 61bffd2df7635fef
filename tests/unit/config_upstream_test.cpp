// Unit tests for config/: [[upstream]] and [[route]] keys, and the Socket.IO warnings.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "tests/unit/config_test_support.hpp"

namespace gh::config {
namespace {

using namespace std::chrono_literals;
using namespace gh::config::testing;

// --- Upstream discovery and passive health ------------------------------------------------

TEST(ConfigUpstream, RoundTripsNewKeys) {
  LoadResult result = load(R"([[listener]]
address = "127.0.0.1:8080"
[[upstream]]
name = "app"
servers = ["127.0.0.1:3000"]
resolve_interval = "100ms"
panic = true
passive_failures = 0
passive_cooldown = "1m"
[[route]]
upstream = "app"
)");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Upstream& app = result.config->upstreams.at(0);
  EXPECT_EQ(app.resolve_interval, 100ms);
  EXPECT_TRUE(app.panic);
  EXPECT_EQ(app.passive_failures, 0u);
  EXPECT_EQ(app.passive_cooldown, 1min);
}

TEST(ConfigUpstream, NewKeysDefault) {
  LoadResult result = load(kMinimal);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Upstream& app = result.config->upstreams.at(0);
  EXPECT_EQ(app.resolve_interval, 5s);
  EXPECT_FALSE(app.panic);
  EXPECT_EQ(app.passive_failures, 3u);
  EXPECT_EQ(app.passive_cooldown, 10s);
}

TEST(ConfigUpstream, BadValuesNameTheKey) {
  // Keys written after kMinimal's [[route]] would belong to it: insert them at line 6.
  auto upstream_with = [](std::string_view line) {
    std::string toml(kMinimal);
    toml.insert(toml.find("[[route]]"), std::string(line) + "\n");
    return toml;
  };
  EXPECT_EQ(only_error(upstream_with("resolve_interval = \"99ms\"")),
            "test.toml:6:20: upstream.resolve_interval: must be at least 100ms");
  EXPECT_EQ(only_error(upstream_with("resolve_interval = \"0s\"")),
            "test.toml:6:20: upstream.resolve_interval: must be at least 100ms");
  EXPECT_EQ(only_error(upstream_with("resolve_interval = \"5\"")),
            "test.toml:6:20: upstream.resolve_interval: invalid duration \"5\": missing unit (ms, "
            "s, m, h or d)");
  EXPECT_EQ(only_error(upstream_with("panic = \"false\"")),
            "test.toml:6:9: upstream.panic: expected true or false");
  EXPECT_EQ(only_error(upstream_with("passive_failures = -1")),
            "test.toml:6:20: upstream.passive_failures: must be between 0 and 4294967295");
  EXPECT_EQ(only_error(upstream_with("passive_failures = \"3\"")),
            "test.toml:6:20: upstream.passive_failures: expected an integer");
  EXPECT_EQ(only_error(upstream_with("passive_cooldown = \"soon\"")),
            "test.toml:6:20: upstream.passive_cooldown: invalid duration \"soon\": must start "
            "with a number");
  EXPECT_EQ(only_error(upstream_with("passive_failure = 3")),
            "test.toml:6:1: unknown key \"upstream.passive_failure\" (did you mean "
            "\"passive_failures\"?)");
}

TEST(ConfigUpstream, MinHealthyGoesToTheUpstreamsHttpChecks) {
  LoadResult result = load(R"([[listener]]
address = "127.0.0.1:8080"
[[upstream]]
name = "app"
servers = ["app:3000"]
min_healthy = 2
[[route]]
upstream = "app"
[[check]]
name = "app"
type = "http"
upstream = "app"
[[check]]
name = "app-strict"
type = "http"
upstream = "app"
min_healthy = 3
)");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_EQ(result.config->upstreams.at(0).min_healthy, 2u);
  EXPECT_EQ(result.config->checks.at(0).min_healthy, 2u);  // the upstream's
  EXPECT_EQ(result.config->checks.at(1).min_healthy, 3u);  // its own
  EXPECT_EQ(load(kMinimal).config->upstreams.at(0).min_healthy, 1u);
}

TEST(ConfigUpstream, MinHealthyWithoutAnyCheckIsAWarning) {
  std::string toml(kMinimal);
  toml.insert(toml.find("[[route]]"), "min_healthy = 2\n");
  // The implicit check counts the upstream's hosts: min_healthy applies to it.
  LoadResult implicit = load(toml);
  ASSERT_TRUE(implicit.config.has_value()) << joined(implicit.errors);
  EXPECT_TRUE(implicit.warnings.empty()) << joined(implicit.warnings);
  EXPECT_EQ(checks_to_run(*implicit.config).at(0).min_healthy, 2u);
  toml.insert(toml.find("[[route]]"), "implicit_check = false\n");
  LoadResult result = load(toml);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_EQ(texts(result.warnings),
            std::vector<std::string>{"test.toml:6:15: upstream \"app\": min_healthy has no effect "
                                     "with implicit_check = false and no http [[check]] on this "
                                     "upstream"});
  LoadResult checked =
      load(toml + "[[check]]\nname = \"app\"\ntype = \"http\"\nupstream = \"app\"\n");
  ASSERT_TRUE(checked.config.has_value()) << joined(checked.errors);
  EXPECT_TRUE(checked.warnings.empty()) << joined(checked.warnings);
}

TEST(ConfigUpstream, ImplicitTcpCheckByDefault) {
  LoadResult result = load(kMinimal);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.config->upstreams.at(0).implicit_check);
  EXPECT_TRUE(result.config->checks.empty());  // [[check]] only: implicit ones are derived
  const std::vector<Check> checks = checks_to_run(*result.config);
  ASSERT_EQ(checks.size(), 1u);
  const Check& c = checks[0];
  EXPECT_EQ(c.name, "upstream:app");
  EXPECT_EQ(c.name, implicit_check_name("app"));
  EXPECT_EQ(c.type, CheckType::tcp);
  EXPECT_EQ(c.upstream, "app");
  EXPECT_TRUE(c.implicit);
  EXPECT_TRUE(c.required);
  EXPECT_TRUE(c.target.empty());
  EXPECT_EQ(c.min_healthy, 1u);
  // The [[check]] defaults.
  const Check defaults;
  EXPECT_EQ(c.interval, defaults.interval);
  EXPECT_EQ(c.interval, 5s);
  EXPECT_EQ(c.timeout, 2s);
  EXPECT_EQ(c.rise, 2u);
  EXPECT_EQ(c.fall, 3u);
  EXPECT_EQ(c.start_period, 0s);
}

TEST(ConfigUpstream, ImplicitCheckOnlyWhereNoCheckNamesTheUpstreamAndNotWhenOff) {
  LoadResult result = load(R"([[listener]]
address = "127.0.0.1:8080"
[[upstream]]
name = "api"
servers = ["127.0.0.1:3000", "127.0.0.1:3001"]
min_healthy = 2
[[upstream]]
name = "web"
servers = ["127.0.0.1:4000"]
[[upstream]]
name = "static"
servers = ["127.0.0.1:5000"]
implicit_check = false
[[route]]
path_prefix = "/api/"
upstream = "api"
[[route]]
path_prefix = "/static/"
upstream = "static"
[[route]]
upstream = "web"
[[check]]
name = "db"
type = "tcp"
target = "127.0.0.1:5432"
[[check]]
name = "web"
type = "http"
upstream = "web"
required = false
)");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  EXPECT_FALSE(result.config->find_upstream("static")->implicit_check);
  const std::vector<Check> checks = checks_to_run(*result.config);
  std::vector<std::string> names;
  for (const Check& c : checks) names.push_back(c.name);
  // The written checks first, in file order; then "api" (web has an http check, even an
  // optional one; static opted out).
  EXPECT_EQ(names, (std::vector<std::string>{"db", "web", "upstream:api"}));
  EXPECT_FALSE(checks[0].implicit);
  EXPECT_FALSE(checks[1].implicit);
  EXPECT_TRUE(checks[2].implicit);
  EXPECT_EQ(checks[2].min_healthy, 2u);
}

TEST(ConfigUpstream, ImplicitCheckValuesAndNamesAreChecked) {
  std::string toml(kMinimal);
  toml.insert(toml.find("[[route]]"), "implicit_check = \"no\"\n");
  EXPECT_EQ(only_error(toml), "test.toml:6:18: upstream.implicit_check: expected true or false");
  EXPECT_EQ(
      only_error(std::string(kMinimal) + "[[check]]\nname = \"upstream:app\"\ntype = \"tcp\"\n"
                                         "target = \"127.0.0.1:3000\"\n"),
      "test.toml:9:8: check: name \"upstream:app\" is the implicit check of upstream "
      "\"app\"; choose another name, or set implicit_check = false on the upstream");
  // Opted out, the name is free.
  std::string off(kMinimal);
  off.insert(off.find("[[route]]"), "implicit_check = false\n");
  LoadResult free_name = load(off +
                              "[[check]]\nname = \"upstream:app\"\ntype = \"tcp\"\n"
                              "target = \"127.0.0.1:3000\"\n");
  ASSERT_TRUE(free_name.config.has_value()) << joined(free_name.errors);
  EXPECT_EQ(checks_to_run(*free_name.config).size(), 1u);
}

TEST(ConfigUpstream, MinHealthyMustBePositiveAndOnlyForHttpChecks) {
  std::string toml(kMinimal);
  toml.insert(toml.find("[[route]]"), "min_healthy = 0\n");
  EXPECT_EQ(only_error(toml),
            "test.toml:6:15: upstream.min_healthy: must be between 1 and 4294967295");
  EXPECT_EQ(only_error(std::string(kMinimal) +
                       "[[check]]\nname = \"db\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:5432\"\n"
                       "min_healthy = 2\n"),
            "test.toml:12:1: check.min_healthy: not allowed for type \"tcp\" (only for \"http\")");
}

TEST(ConfigUpstream, TlsDefaultsOff) {
  LoadResult result = load(kMinimal);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Upstream& app = result.config->upstreams.at(0);
  EXPECT_FALSE(app.tls);
  EXPECT_TRUE(app.tls_verify);
  EXPECT_EQ(app.tls_ca_file, "");
  EXPECT_EQ(app.tls_server_name, "");
}

TEST(ConfigUpstream, TlsRoundTrips) {
  LoadResult result = load(R"([[listener]]
address = "127.0.0.1:8080"
[[upstream]]
name = "app"
servers = ["api.internal:8443"]
tls = true
tls_ca_file = "/etc/gatehouse/ca.pem"
tls_server_name = "api.example"
[[route]]
upstream = "app"
)");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  const Upstream& app = result.config->upstreams.at(0);
  EXPECT_TRUE(app.tls);
  EXPECT_TRUE(app.tls_verify);
  EXPECT_EQ(app.tls_ca_file, "/etc/gatehouse/ca.pem");
  EXPECT_EQ(app.tls_server_name, "api.example");
}

TEST(ConfigUpstream, TlsVerifyOffWarns) {
  std::string toml(kMinimal);
  toml.insert(toml.find("[[route]]"), "tls = true\ntls_verify = false\n");
  LoadResult result = load(toml);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_FALSE(result.config->upstreams.at(0).tls_verify);
  EXPECT_EQ(texts(result.warnings),
            (std::vector<std::string>{
                "test.toml:7:14: upstream.tls_verify: false: upstream certificates are not "
                "verified (anyone on the path can read and change the traffic)"}));
}

TEST(ConfigUpstream, TlsBadValuesNameTheKey) {
  auto upstream_with = [](std::string_view line) {
    std::string toml(kMinimal);
    toml.insert(toml.find("[[route]]"), std::string(line) + "\n");
    return toml;
  };
  EXPECT_EQ(only_error(upstream_with("tls = \"yes\"")),
            "test.toml:6:7: upstream.tls: expected true or false");
  EXPECT_EQ(only_error(upstream_with("tls_verify = 1")),
            "test.toml:6:14: upstream.tls_verify: expected true or false");
  EXPECT_EQ(only_error(upstream_with("tls_ca_file = 3")),
            "test.toml:6:15: upstream.tls_ca_file: expected a string");
  EXPECT_EQ(only_error(upstream_with("tls_server_name = false")),
            "test.toml:6:19: upstream.tls_server_name: expected a string");
  EXPECT_EQ(only_error(upstream_with("tls_verfy = true")),
            "test.toml:6:1: unknown key \"upstream.tls_verfy\" (did you mean \"tls_verify\"?)");
}

// --- Route stickiness and tunnels ---------------------------------------------------------

TEST(ConfigRoute, StickyValues) {
  struct Case {
    std::string_view text;
    Sticky sticky;
  };
  for (Case c : {Case{"auto", Sticky::automatic}, Case{"none", Sticky::none},
                 Case{"socketio", Sticky::socketio}, Case{"cookie", Sticky::cookie},
                 Case{"ip", Sticky::ip}}) {
    LoadResult result = load_with("sticky = \"" + std::string(c.text) + "\"\n");
    ASSERT_TRUE(result.config.has_value()) << c.text << "\n" << joined(result.errors);
    EXPECT_EQ(result.config->routes[0].sticky, c.sticky) << c.text;
    EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  }
}

TEST(ConfigRoute, RoundTripsCookieAndTunnelIdle) {
  LoadResult result = load_with(
      "sticky = \"cookie\"\nsticky_cookie = \"__Host-gh.aff_1\"\ntunnel_idle = \"10m\"\n");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Route& route = result.config->routes[0];
  EXPECT_EQ(route.sticky, Sticky::cookie);
  EXPECT_EQ(route.sticky_cookie, "__Host-gh.aff_1");
  EXPECT_EQ(route.tunnel_idle, 10min);
}

TEST(ConfigRoute, NewKeysDefault) {
  LoadResult result = load(kMinimal);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Route& route = result.config->routes[0];
  EXPECT_EQ(route.sticky, Sticky::automatic);
  EXPECT_EQ(route.sticky_cookie, "gh_affinity");
  EXPECT_EQ(route.tunnel_idle, 1h);
}

TEST(ConfigRoute, BadValuesNameTheKey) {
  EXPECT_EQ(only_error(with("sticky = \"Cookie\"\n")),
            "test.toml:8:10: route.sticky: unknown value \"Cookie\" (expected \"auto\", \"none\", "
            "\"socketio\", \"cookie\", \"ip\")");
  EXPECT_EQ(only_error(with("sticky = true\n")), "test.toml:8:10: route.sticky: expected a string");
  EXPECT_EQ(only_error(with("sticky_cookie = \"gh affinity\"\n")),
            "test.toml:8:17: route.sticky_cookie: invalid cookie name \"gh affinity\" (letters, "
            "digits and !#$%&'*+-.^_`|~ only)");
  for (std::string_view bad : {"a=b", "a;b", "a,b", "(a)", "a\\\"b", "caf\u00e9"}) {
    std::string error = only_error(with("sticky_cookie = \"" + std::string(bad) + "\"\n"));
    EXPECT_TRUE(error.starts_with("test.toml:8:17: route.sticky_cookie: invalid cookie name"))
        << bad << ": " << error;
  }
  EXPECT_EQ(only_error(with("sticky_cookie = \"\"\n")),
            "test.toml:8:17: route.sticky_cookie: must not be empty");
  EXPECT_EQ(only_error(with("tunnel_idle = \"1 h\"\n")),
            "test.toml:8:15: route.tunnel_idle: invalid duration \"1 h\": unknown unit \" h\" (ms, "
            "s, m, h or d)");
  EXPECT_EQ(only_error(with("stiky = \"ip\"\n")),
            "test.toml:8:1: unknown key \"route.stiky\" (did you mean \"sticky\"?)");
}

// --- Socket.IO warnings -------------------------------------------------------------------

// Two servers on "app"; the route is the last table, so `route_keys` land in it (line 9 on).
std::string socket_io(std::string_view route_keys) {
  return "[[listener]]\naddress = \"127.0.0.1:8080\"\n"
         "[[upstream]]\nname = \"app\"\nservers = [\"app1:3000\", \"app2:3000\"]\n"
         "[[route]]\npath_prefix = \"/socket.io/\"\nupstream = \"app\"\n" +
         std::string(route_keys);
}

TEST(ConfigSocketIo, StickyNoneWithSeveralServersWarns) {
  EXPECT_EQ(warnings_of(socket_io("sticky = \"none\"\n")),
            std::vector<std::string>{
                "test.toml:9:10: route /socket.io/: sticky = \"none\" with 2 servers: Socket.IO "
                "polling will fail with \"Session ID unknown\""});
  // The host, when the route has one, is part of the route's name.
  EXPECT_EQ(warnings_of(socket_io("sticky = \"none\"\nhost = \"chat.example.com\"\n")),
            std::vector<std::string>{
                "test.toml:9:10: route chat.example.com/socket.io/: sticky = \"none\" with 2 "
                "servers: Socket.IO polling will fail with \"Session ID unknown\""});
}

TEST(ConfigSocketIo, StickyModesThatWorkDoNotWarn) {
  for (std::string_view mode : {"auto", "socketio", "cookie", "ip"}) {
    EXPECT_EQ(warnings_of(socket_io("sticky = \"" + std::string(mode) + "\"\n")),
              std::vector<std::string>{})
        << mode;
  }
  EXPECT_EQ(warnings_of(socket_io("")), std::vector<std::string>{});
  // One server: nothing to be sticky to.
  std::string one_server = socket_io("sticky = \"none\"\n");
  one_server.replace(one_server.find(", \"app2:3000\""), 13, "");
  EXPECT_EQ(warnings_of(one_server), std::vector<std::string>{});
  // Not a Socket.IO path.
  std::string api = socket_io("sticky = \"none\"\n");
  api.replace(api.find("/socket.io/"), 11, "/api/");
  EXPECT_EQ(warnings_of(api), std::vector<std::string>{});
  // The prefix only has to start with /socket.io.
  std::string bare = socket_io("sticky = \"none\"\n");
  bare.replace(bare.find("/socket.io/"), 11, "/socket.io");
  EXPECT_EQ(warnings_of(bare).size(), 1u);
}

TEST(ConfigSocketIo, ShortTunnelIdleWarns) {
  EXPECT_EQ(warnings_of(socket_io("tunnel_idle = \"30s\"\n")),
            std::vector<std::string>{
                "test.toml:9:15: route /socket.io/: tunnel_idle = \"30s\" is shorter than "
                "Socket.IO's pingInterval+pingTimeout (45s)"});
  EXPECT_EQ(warnings_of(socket_io("tunnel_idle = \"44999ms\"\n")).size(), 1u);
  EXPECT_EQ(warnings_of(socket_io("tunnel_idle = \"45s\"\n")), std::vector<std::string>{});
  EXPECT_EQ(warnings_of(socket_io("tunnel_idle = \"2h\"\n")), std::vector<std::string>{});
  EXPECT_EQ(warnings_of(with("tunnel_idle = \"5s\"\n")), std::vector<std::string>{});
}

TEST(ConfigSocketIo, BothWarningsInFileOrder) {
  EXPECT_EQ(warnings_of(socket_io("tunnel_idle = \"10s\"\nsticky = \"none\"\n")),
            (std::vector<std::string>{
                "test.toml:9:15: route /socket.io/: tunnel_idle = \"10s\" is shorter than "
                "Socket.IO's pingInterval+pingTimeout (45s)",
                "test.toml:10:10: route /socket.io/: sticky = \"none\" with 2 servers: Socket.IO "
                "polling will fail with \"Session ID unknown\"",
            }));
}

}  // namespace
}  // namespace gh::config
