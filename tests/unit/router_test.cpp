// Tests for proxy/router: host pattern precedence (exact, then longer suffixes, then any),
// longest path prefix within a host pattern, fallback to less specific host patterns,
// and Host header normalization. Configs are built in code, not parsed from TOML.
#include "proxy/router.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace gh::proxy {
namespace {

struct RouteSpec {
  std::string host;
  std::string prefix;
  std::string upstream;
};

// Upstreams "u0".."u{n-1}" (so an upstream's index is its number) and the given routes.
config::Config make_config(std::size_t upstreams, const std::vector<RouteSpec>& routes) {
  config::Config config;
  config.source = "<test>";
  for (std::size_t i = 0; i < upstreams; ++i) {
    config::Upstream upstream;
    upstream.name = "u" + std::to_string(i);
    upstream.servers.push_back({"127.0.0.1", static_cast<std::uint16_t>(3000 + i)});
    config.upstreams.push_back(upstream);
  }
  for (const RouteSpec& spec : routes) {
    config::Route route;
    route.host = spec.host;
    route.path_prefix = spec.prefix;
    route.upstream = spec.upstream;
    config.routes.push_back(route);
  }
  return config;
}

// Checks that `host`/`target` routes to exactly (upstream, route).
void expect_target(const Router& router, std::string_view host, std::string_view target,
                   std::size_t upstream, std::size_t route) {
  SCOPED_TRACE(std::string(host) + " " + std::string(target));
  const std::optional<Router::Target> match = router.match(host, target);
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->upstream, upstream);
  EXPECT_EQ(match->route, route);
}

void expect_no_match(const Router& router, std::string_view host, std::string_view target) {
  SCOPED_TRACE(std::string(host) + " " + std::string(target));
  EXPECT_FALSE(router.match(host, target).has_value());
}

// ---------------------------------------------------------------------------------------
// Host precedence

TEST(RouterTest, ExactHostBeatsWildcardBeatsAny) {
  // Listed least specific first, so config order cannot be what decides.
  const config::Config config = make_config(3, {
                                                   {"", "/", "u0"},
                                                   {"*.example.com", "/", "u1"},
                                                   {"api.example.com", "/", "u2"},
                                               });
  const Router router(config);
  expect_target(router, "api.example.com", "/x", 2, 2);
  expect_target(router, "www.example.com", "/x", 1, 1);
  expect_target(router, "other.org", "/x", 0, 0);
}

TEST(RouterTest, ExactHostBeatsWildcardEvenWithShorterPrefix) {
  // Host specificity is decided before the path: nginx picks the server, then a location.
  const config::Config config = make_config(2, {
                                                   {"*.example.com", "/deep/path", "u0"},
                                                   {"api.example.com", "/", "u1"},
                                               });
  const Router router(config);
  expect_target(router, "api.example.com", "/deep/path/x", 1, 1);
}

TEST(RouterTest, LongerSuffixBeatsShorterSuffix) {
  const config::Config config = make_config(2, {
                                                   {"*.example.com", "/", "u0"},
                                                   {"*.api.example.com", "/", "u1"},
                                               });
  const Router router(config);
  expect_target(router, "v1.api.example.com", "/", 1, 1);
  expect_target(router, "www.example.com", "/", 0, 0);
  // "api.example.com" is not a subdomain of "api.example.com", but is one of example.com.
  expect_target(router, "api.example.com", "/", 0, 0);
}

TEST(RouterTest, WildcardMatchesSubdomainsButNotBareDomain) {
  const config::Config config = make_config(1, {{"*.example.com", "/", "u0"}});
  const Router router(config);
  expect_target(router, "a.example.com", "/", 0, 0);
  expect_target(router, "a.b.example.com", "/", 0, 0);
  expect_no_match(router, "example.com", "/");
  expect_no_match(router, "badexample.com", "/");  // suffix must start at a label boundary
  expect_no_match(router, "a.example.com.evil", "/");
  expect_no_match(router, "a.example.org", "/");
}

TEST(RouterTest, ExactHostDoesNotMatchSubdomainOrOtherHost) {
  const config::Config config = make_config(1, {{"example.com", "/", "u0"}});
  const Router router(config);
  expect_target(router, "example.com", "/", 0, 0);
  expect_no_match(router, "www.example.com", "/");
  expect_no_match(router, "example.co", "/");
  expect_no_match(router, "xexample.com", "/");
}

TEST(RouterTest, ConfiguredHostPatternsAreCaseInsensitive) {
  // The router lower-cases patterns; the caller passes a normalized (lower-case) host.
  const config::Config config = make_config(2, {
                                                   {"API.Example.COM", "/", "u0"},
                                                   {"*.Example.Com", "/", "u1"},
                                               });
  const Router router(config);
  expect_target(router, "api.example.com", "/", 0, 0);
  expect_target(router, "www.example.com", "/", 1, 1);
}

// ---------------------------------------------------------------------------------------
// Paths

TEST(RouterTest, LongestPathPrefixWins) {
  const config::Config config = make_config(3, {
                                                   {"", "/api", "u1"},
                                                   {"", "/", "u0"},
                                                   {"", "/api/v2", "u2"},
                                               });
  const Router router(config);
  expect_target(router, "h", "/api/v2/users", 2, 2);
  expect_target(router, "h", "/api/v2", 2, 2);
  expect_target(router, "h", "/api/v1/users", 1, 0);
  expect_target(router, "h", "/api", 1, 0);
  expect_target(router, "h", "/static/a.css", 0, 1);
  expect_target(router, "h", "/", 0, 1);
}

TEST(RouterTest, PrefixIsAPlainStringPrefix) {
  // As nginx prefix locations: "/api" also covers "/apiary".
  const config::Config config = make_config(2, {
                                                   {"", "/", "u0"},
                                                   {"", "/api", "u1"},
                                               });
  const Router router(config);
  expect_target(router, "h", "/apiary", 1, 1);
  expect_target(router, "h", "/ap", 0, 0);
}

TEST(RouterTest, LongestPrefixWithinExactHost) {
  const config::Config config = make_config(3, {
                                                   {"example.com", "/", "u0"},
                                                   {"example.com", "/admin/secret", "u2"},
                                                   {"example.com", "/admin", "u1"},
                                               });
  const Router router(config);
  expect_target(router, "example.com", "/admin/secret/key", 2, 1);
  expect_target(router, "example.com", "/admin/users", 1, 2);
  expect_target(router, "example.com", "/home", 0, 0);
}

TEST(RouterTest, QueryStringIsIgnored) {
  const config::Config config = make_config(2, {
                                                   {"", "/", "u0"},
                                                   {"", "/search", "u1"},
                                               });
  const Router router(config);
  expect_target(router, "h", "/search?q=1", 1, 1);
  // A query that looks like the prefix must not route: the path is "/".
  expect_target(router, "h", "/?next=/search", 0, 0);
  expect_target(router, "h", "/other?x=/search", 0, 0);
  expect_target(router, "h", "/#/search", 0, 0);
}

TEST(RouterTest, QueryStringCannotSatisfyAPrefix) {
  const config::Config config = make_config(1, {{"", "/search", "u0"}});
  const Router router(config);
  expect_no_match(router, "h", "/?/search");
  expect_no_match(router, "h", "/sea?rch");
  expect_target(router, "h", "/search?", 0, 0);
}

// ---------------------------------------------------------------------------------------
// Fallback and misses

TEST(RouterTest, ExactHostWithoutMatchingPrefixFallsBackToAnyHost) {
  const config::Config config = make_config(2, {
                                                   {"", "/", "u0"},
                                                   {"api.example.com", "/admin", "u1"},
                                               });
  const Router router(config);
  expect_target(router, "api.example.com", "/admin/x", 1, 1);
  expect_target(router, "api.example.com", "/public", 0, 0);
}

TEST(RouterTest, FallbackGoesThroughWildcardBeforeAnyHost) {
  const config::Config config = make_config(3, {
                                                   {"", "/", "u0"},
                                                   {"*.example.com", "/shop", "u1"},
                                                   {"api.example.com", "/admin", "u2"},
                                               });
  const Router router(config);
  expect_target(router, "api.example.com", "/admin", 2, 2);
  expect_target(router, "api.example.com", "/shop/cart", 1, 1);
  expect_target(router, "api.example.com", "/other", 0, 0);
  expect_target(router, "www.example.com", "/admin", 0, 0);
}

TEST(RouterTest, NoMatchingRouteIsNullopt) {
  const config::Config config = make_config(2, {
                                                   {"example.com", "/", "u0"},
                                                   {"", "/api", "u1"},
                                               });
  const Router router(config);
  expect_no_match(router, "other.com", "/");
  expect_no_match(router, "other.com", "/static");
  expect_target(router, "other.com", "/api/x", 1, 1);
}

TEST(RouterTest, NoRoutesMatchesNothing) {
  const config::Config config = make_config(1, {});
  const Router router(config);
  expect_no_match(router, "example.com", "/");
}

TEST(RouterTest, TargetCarriesConfigIndexes) {
  // The route index is the index in Config::routes, the upstream index the position of
  // the named upstream in Config::upstreams, whatever the sorted order inside the router.
  const config::Config config = make_config(4, {
                                                   {"", "/", "u3"},
                                                   {"a.com", "/x", "u0"},
                                                   {"", "/long/prefix", "u2"},
                                               });
  const Router router(config);
  expect_target(router, "a.com", "/x", 0, 1);
  expect_target(router, "b.com", "/long/prefix/y", 2, 2);
  expect_target(router, "b.com", "/", 3, 0);
}

// ---------------------------------------------------------------------------------------
// normalize_host

struct NormalizeCase {
  std::string_view input;
  std::string_view expected;
};

TEST(RouterTest, NormalizeHost) {
  const NormalizeCase cases[] = {
      {"Example.COM:8080", "example.com"},
      {"example.com", "example.com"},
      {"EXAMPLE.com", "example.com"},
      {"example.com:80", "example.com"},
      {"example.com.", "example.com"},
      {"Example.com.:443", "example.com"},
      {"127.0.0.1:8080", "127.0.0.1"},
      {"127.0.0.1", "127.0.0.1"},
      {"[::1]:8080", "[::1]"},
      {"[::1]", "[::1]"},
      {"[2001:DB8::A]:443", "[2001:db8::a]"},
      {"", ""},
  };
  for (const NormalizeCase& c : cases) {
    SCOPED_TRACE(c.input);
    std::string out = "previous contents";
    normalize_host(c.input, out);
    EXPECT_EQ(out, c.expected);
  }
}

TEST(RouterTest, NormalizedHostRoutes) {
  const config::Config config = make_config(2, {
                                                   {"example.com", "/", "u0"},
                                                   {"*.example.com", "/", "u1"},
                                               });
  const Router router(config);
  std::string host;
  normalize_host("WWW.Example.Com.:8443", host);
  expect_target(router, host, "/", 1, 1);
  normalize_host("EXAMPLE.COM:80", host);
  expect_target(router, host, "/", 0, 0);
}

}  // namespace
}  // namespace gh::proxy
