// Unit tests for config/: value parsers, the TOML loader's diagnostics, and the configs we
// ship (the embedded default and deploy/gatehouse.toml), so neither can rot unnoticed.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#ifndef GATEHOUSE_SOURCE_DIR
#error "GATEHOUSE_SOURCE_DIR must name the source tree (the test CMake defines it)"
#endif

namespace gh::config {
namespace {

using namespace std::chrono_literals;

// Seven lines, the smallest config that loads cleanly; tests append to it from line 8.
constexpr std::string_view kMinimal =
    "[[listener]]\n"
    "address = \"127.0.0.1:8080\"\n"
    "[[upstream]]\n"
    "name = \"app\"\n"
    "servers = [\"127.0.0.1:3000\"]\n"
    "[[route]]\n"
    "upstream = \"app\"\n";

LoadResult load(std::string_view toml) {
  return load_string(toml, "test.toml");
}

LoadResult load_with(std::string_view extra) {
  return load(std::string(kMinimal) + std::string(extra));
}

std::vector<std::string> texts(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> out;
  for (const Diagnostic& d : diagnostics) out.push_back(d.text());
  return out;
}

// All error texts on one line each, for readable assertion failures.
std::string joined(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const std::string& text : texts(diagnostics)) out += text + "\n";
  return out;
}

// The only error of a config that must fail.
std::string only_error(std::string_view toml) {
  LoadResult result = load(toml);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.errors.size(), 1u) << joined(result.errors);
  return result.errors.empty() ? "" : result.errors.front().text();
}

std::string duration_error(std::string_view text) {
  auto result = parse_duration(text);
  EXPECT_FALSE(result.has_value()) << text;
  return result ? "" : result.error().message;
}

std::string size_error(std::string_view text) {
  auto result = parse_size(text);
  EXPECT_FALSE(result.has_value()) << text;
  return result ? "" : result.error().message;
}

std::string address_error(std::string_view text) {
  auto result = parse_host_port(text);
  EXPECT_FALSE(result.has_value()) << text;
  return result ? "" : result.error().message;
}

// --- Durations ----------------------------------------------------------------------------

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(parse_duration("250ms").value(), 250ms);
  EXPECT_EQ(parse_duration("30s").value(), 30s);
  EXPECT_EQ(parse_duration("5m").value(), 5min);
  EXPECT_EQ(parse_duration("1h").value(), 1h);
  EXPECT_EQ(parse_duration("2d").value(), 48h);
  EXPECT_EQ(parse_duration("0s").value(), 0ms);
}

TEST(ParseDuration, RejectsMissingOrUnknownUnits) {
  EXPECT_EQ(duration_error("30"), "invalid duration \"30\": missing unit (ms, s, m, h or d)");
  EXPECT_EQ(duration_error("30x"),
            "invalid duration \"30x\": unknown unit \"x\" (ms, s, m, h or d)");
  EXPECT_EQ(duration_error("30 s"),
            "invalid duration \"30 s\": unknown unit \" s\" (ms, s, m, h or d)");
  duration_error("30S");
  duration_error("1.5s");
  duration_error("30sec");
}

TEST(ParseDuration, RejectsMissingNumbers) {
  EXPECT_EQ(duration_error(""), "invalid duration \"\": empty");
  EXPECT_EQ(duration_error("s"), "invalid duration \"s\": must start with a number");
  duration_error("-1s");
  duration_error("+1s");
  duration_error(" 1s");
}

TEST(ParseDuration, RejectsOverflow) {
  EXPECT_EQ(duration_error("99999999999999999999ms"),
            "invalid duration \"99999999999999999999ms\": number too large");
  EXPECT_EQ(duration_error("9999999999999999d"),
            "invalid duration \"9999999999999999d\": too large");
}

// --- Sizes --------------------------------------------------------------------------------

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  EXPECT_EQ(parse_size("512").value(), 512u);
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("7B").value(), 7u);
  EXPECT_EQ(parse_size("16KiB").value(), 16u * 1024);
  EXPECT_EQ(parse_size("1MiB").value(), 1024u * 1024);
  EXPECT_EQ(parse_size("2GiB").value(), 2ull * 1024 * 1024 * 1024);
  EXPECT_EQ(parse_size("2KB").value(), 2000u);
  EXPECT_EQ(parse_size("3MB").value(), 3'000'000u);
  EXPECT_EQ(parse_size("1GB").value(), 1'000'000'000u);
}

TEST(ParseSize, RejectsBadText) {
  EXPECT_EQ(size_error("1kb"),
            "invalid size \"1kb\": unknown unit \"kb\" (B, KiB, MiB, GiB, KB, MB or GB)");
  EXPECT_EQ(size_error("MiB"), "invalid size \"MiB\": must start with a number");
  EXPECT_EQ(size_error(""), "invalid size \"\": empty");
  size_error("1.5MiB");
  size_error("1 KiB");
  size_error("-1");
  size_error("1TiB");
}

TEST(ParseSize, RejectsOverflow) {
  EXPECT_EQ(size_error("99999999999999GiB"), "invalid size \"99999999999999GiB\": too large");
}

// --- Addresses ----------------------------------------------------------------------------

TEST(ParseHostPort, AcceptsIpv4AndNames) {
  EXPECT_EQ(parse_host_port("127.0.0.1:8080").value(), (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(parse_host_port("app:3000").value(), (HostPort{"app", 3000}));
  EXPECT_EQ(parse_host_port("my-db_1.internal:65535").value(),
            (HostPort{"my-db_1.internal", 65535}));
  EXPECT_EQ(parse_host_port("0.0.0.0:0").value(), (HostPort{"0.0.0.0", 0}));
}

TEST(ParseHostPort, AcceptsBracketedIpv6) {
  HostPort loopback = parse_host_port("[::1]:8443").value();
  EXPECT_EQ(loopback, (HostPort{"::1", 8443}));
  EXPECT_EQ(parse_host_port("[2001:db8::10]:80").value(), (HostPort{"2001:db8::10", 80}));
  EXPECT_EQ(parse_host_port("[::ffff:10.0.0.1]:80").value().host, "::ffff:10.0.0.1");
}

TEST(ParseHostPort, TextRoundTrips) {
  for (std::string_view text : {"app:3000", "10.0.0.2:3000", "[::1]:8443", "[fe80::1]:0"}) {
    EXPECT_EQ(parse_host_port(text).value().text(), text);
  }
}

TEST(ParseHostPort, RejectsMissingPort) {
  EXPECT_EQ(address_error("app"), "invalid address \"app\": missing port");
  EXPECT_EQ(address_error("app:"), "invalid address \"app:\": missing port");
  EXPECT_EQ(address_error("[::1]"), "invalid address \"[::1]\": missing port");
}

TEST(ParseHostPort, RejectsBadPorts) {
  EXPECT_EQ(address_error("app:65536"),
            "invalid address \"app:65536\": port \"65536\" is not a number from 0 to 65535");
  address_error("app:-1");
  address_error("app:+80");
  address_error("app:80a");
  address_error("app:http");
  address_error("app:99999999999");
  address_error("[::1]:x");
}

TEST(ParseHostPort, RejectsBadHosts) {
  EXPECT_EQ(address_error(""), "invalid address \"\": empty");
  EXPECT_EQ(address_error(":80"), "invalid address \":80\": missing host");
  EXPECT_EQ(address_error("[]:80"), "invalid address \"[]:80\": missing host");
  EXPECT_EQ(address_error("::1:80"),
            "invalid address \"::1:80\": IPv6 addresses need brackets, like \"[::1]:8080\"");
  EXPECT_EQ(address_error("http://app:80"),
            "invalid address \"http://app:80\": must not include a scheme like \"http://\"");
  address_error("[::1:80");
  address_error("[::1]80");
  address_error("[app]:80");
  address_error("a b:80");
  address_error("app/x:80");
}

// --- Loading a whole config ---------------------------------------------------------------

TEST(LoadString, RoundTripsEveryField) {
  LoadResult result = load(R"(
[server]
workers = 8
drain_timeout = "45s"
max_connections = 2000

[limits]
request_line = "4KiB"
header_bytes = "64KiB"
header_count = 50
body = "0"
chunk_extension = "2KB"

[timeouts]
request_header = "5s"
client_body = "30s"
keepalive = "2m"
upstream_connect = "250ms"
upstream_read = "1h"
upstream_keepalive = "1d"

[access_log]
format = "json"

[[listener]]
address = "0.0.0.0:8080"

[[listener]]
address = "[::]:8443"

[admin]
address = "127.0.0.1:9901"

[[upstream]]
name = "app"
servers = ["app:3000", "10.0.0.2:3000"]
balance = "least_conn"
keepalive = 0

[[upstream]]
name = "static"
servers = ["[::1]:9000"]

[[route]]
host = "*.Example.com"
path_prefix = "/api/"
upstream = "app"

[[route]]
upstream = "static"
)");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.errors.empty());
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  const Config& config = *result.config;
  EXPECT_EQ(config.source, "test.toml");

  EXPECT_EQ(config.server.workers, 8u);
  EXPECT_EQ(config.server.drain_timeout, 45s);
  EXPECT_EQ(config.server.max_connections, 2000u);

  EXPECT_EQ(config.limits.request_line, 4096u);
  EXPECT_EQ(config.limits.header_bytes, 65536u);
  EXPECT_EQ(config.limits.header_count, 50u);
  EXPECT_EQ(config.limits.body, 0u);
  EXPECT_EQ(config.limits.chunk_extension, 2000u);

  EXPECT_EQ(config.timeouts.request_header, 5s);
  EXPECT_EQ(config.timeouts.client_body, 30s);
  EXPECT_EQ(config.timeouts.keepalive, 2min);
  EXPECT_EQ(config.timeouts.upstream_connect, 250ms);
  EXPECT_EQ(config.timeouts.upstream_read, 1h);
  EXPECT_EQ(config.timeouts.upstream_keepalive, 24h);

  EXPECT_EQ(config.access_log, AccessLogFormat::json);

  ASSERT_EQ(config.listeners.size(), 2u);
  EXPECT_EQ(config.listeners[0].address, (HostPort{"0.0.0.0", 8080}));
  EXPECT_EQ(config.listeners[1].address, (HostPort{"::", 8443}));
  EXPECT_EQ(config.admin.address, (HostPort{"127.0.0.1", 9901}));

  ASSERT_EQ(config.upstreams.size(), 2u);
  const Upstream& app = config.upstreams[0];
  EXPECT_EQ(app.name, "app");
  EXPECT_EQ(app.servers, (std::vector<HostPort>{{"app", 3000}, {"10.0.0.2", 3000}}));
  EXPECT_EQ(app.balance, Balance::least_conn);
  EXPECT_EQ(app.keepalive, 0u);
  const Upstream& statics = config.upstreams[1];
  EXPECT_EQ(statics.name, "static");
  EXPECT_EQ(statics.servers, (std::vector<HostPort>{{"::1", 9000}}));
  EXPECT_EQ(statics.balance, Balance::round_robin);
  EXPECT_EQ(statics.keepalive, 1024u);

  ASSERT_EQ(config.routes.size(), 2u);
  EXPECT_EQ(config.routes[0].host, "*.example.com");  // lowercased
  EXPECT_EQ(config.routes[0].path_prefix, "/api/");
  EXPECT_EQ(config.routes[0].upstream, "app");
  EXPECT_EQ(config.routes[1].host, "");
  EXPECT_EQ(config.routes[1].path_prefix, "/");
  EXPECT_EQ(config.routes[1].upstream, "static");

  EXPECT_EQ(config.find_upstream("static"), &config.upstreams[1]);
  EXPECT_EQ(config.find_upstream("nope"), nullptr);
}

TEST(LoadString, MinimalConfigKeepsDefaults) {
  LoadResult result = load(kMinimal);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Config& config = *result.config;
  EXPECT_EQ(config.server.workers, 0u);
  EXPECT_EQ(config.server.drain_timeout, 30s);
  EXPECT_EQ(config.limits.body, 1024u * 1024);
  EXPECT_EQ(config.timeouts.upstream_connect, 5s);
  EXPECT_EQ(config.access_log, AccessLogFormat::text);
  EXPECT_FALSE(config.admin.address.has_value());
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
}

TEST(LoadString, WorkersAcceptsAuto) {
  LoadResult result = load_with("[server]\nworkers = \"auto\"\n");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_EQ(result.config->server.workers, 0u);
}

TEST(LoadString, AccessLogCanBeOff) {
  LoadResult result = load_with("[access_log]\nformat = \"off\"\n");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_EQ(result.config->access_log, AccessLogFormat::off);
}

TEST(LoadString, UnknownKeyIsAnErrorAtItsPosition) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "[server]\n  wrokers = 4\n"),
            "test.toml:9:3: unknown key \"server.wrokers\" (did you mean \"workers\"?)");
  EXPECT_EQ(only_error("colour = 1\n" + std::string(kMinimal)),
            "test.toml:1:1: unknown key \"colour\"");
  // TOML puts keys written after [[route]] into that route, and the message says so.
  EXPECT_EQ(only_error(std::string(kMinimal) + "colour = 1\n"),
            "test.toml:8:1: unknown key \"route.colour\"");
  EXPECT_EQ(only_error("[[listener]]\naddress = \"0.0.0.0:1\"\nport = 1\n" +
                       std::string(kMinimal.substr(kMinimal.find("[[upstream]]")))),
            "test.toml:3:1: unknown key \"listener.port\"");
}

TEST(LoadString, UnknownNestedTableIsAnError) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "[timeouts.extra]\nx = 1\n"),
            "test.toml:8:11: unknown key \"timeouts.extra\"");
}

TEST(LoadString, WrongTypesNameTheKeyAndExpectedType) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "[server]\ndrain_timeout = 30\n"),
            "test.toml:9:17: server.drain_timeout: expected a string");
  EXPECT_EQ(only_error(std::string(kMinimal) + "[server]\nworkers = \"many\"\n"),
            "test.toml:9:11: server.workers: expected \"auto\" or an integer");
  EXPECT_EQ(only_error(std::string(kMinimal) + "[limits]\nheader_count = \"100\"\n"),
            "test.toml:9:16: limits.header_count: expected an integer");
  EXPECT_EQ(only_error(std::string(kMinimal) + "[limits]\nbody = 1024\n"),
            "test.toml:9:8: limits.body: expected a string");
  EXPECT_EQ(only_error("server = 4\n" + std::string(kMinimal)),
            "test.toml:1:10: server: expected a table");
}

TEST(LoadString, BadValuesNameTheKey) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "[timeouts]\nkeepalive = \"60\"\n"),
            "test.toml:9:13: timeouts.keepalive: invalid duration \"60\": missing unit (ms, s, m, "
            "h or d)");
  EXPECT_EQ(only_error(std::string(kMinimal) + "[limits]\nbody = \"1 MiB\"\n"),
            "test.toml:9:8: limits.body: invalid size \"1 MiB\": unknown unit \" MiB\" (B, KiB, "
            "MiB, GiB, KB, MB or GB)");
  EXPECT_EQ(only_error(std::string(kMinimal) + "[access_log]\nformat = \"xml\"\n"),
            "test.toml:9:10: access_log.format: unknown value \"xml\" (expected \"text\", "
            "\"json\", \"off\")");
  EXPECT_EQ(only_error("[[listener]]\naddress = \"8080\"\n" +
                       std::string(kMinimal.substr(kMinimal.find("[[upstream]]")))),
            "test.toml:2:11: listener.address: invalid address \"8080\": missing port");
}

TEST(LoadString, IntegerRangesAreChecked) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "[server]\nworkers = 0\n"),
            "test.toml:9:11: server.workers: must be between 1 and 256");
  EXPECT_EQ(only_error(std::string(kMinimal) + "[server]\nworkers = 257\n"),
            "test.toml:9:11: server.workers: must be between 1 and 256");
  EXPECT_EQ(only_error(std::string(kMinimal) + "[server]\nmax_connections = 0\n"),
            "test.toml:9:19: server.max_connections: must be between 1 and 4294967295");
  EXPECT_EQ(only_error(std::string(kMinimal) + "[server]\nticket_key_rotation = \"500ms\"\n"),
            "test.toml:9:23: server.ticket_key_rotation: must be at least 1s");
  auto rotated = load_with("[server]\nticket_key_rotation = \"1d\"\n");
  ASSERT_TRUE(rotated.config.has_value()) << joined(rotated.errors);
  EXPECT_EQ(rotated.config->server.ticket_key_rotation, std::chrono::hours(24));
  EXPECT_EQ(load(kMinimal).config->server.ticket_key_rotation, std::chrono::hours(12));
  EXPECT_EQ(only_error(std::string(kMinimal) + "[limits]\nheader_count = -1\n"),
            "test.toml:9:16: limits.header_count: must be at least 1");
}

TEST(LoadString, RouteNamingMissingUpstream) {
  std::string toml(kMinimal);
  toml.replace(toml.rfind("\"app\""), 5, "\"api\"");
  LoadResult result = load(toml);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(texts(result.errors),
            std::vector<std::string>{"test.toml:7:12: route: upstream \"api\" is not defined"});
}

TEST(LoadString, DuplicateUpstreamIsAnErrorAtTheSecond) {
  EXPECT_EQ(only_error(std::string(kMinimal) +
                       "[[upstream]]\nname = \"app\"\nservers = [\"10.0.0.9:3000\"]\n"),
            "test.toml:9:8: upstream: duplicate name \"app\" (first defined at line 4)");
}

TEST(LoadString, UpstreamServersAreChecked) {
  std::string head = "[[listener]]\naddress = \"0.0.0.0:1\"\n[[upstream]]\nname = \"app\"\n";
  std::string route = "[[route]]\nupstream = \"app\"\n";
  EXPECT_EQ(only_error(head + "servers = []\n" + route),
            "test.toml:5:11: upstream.servers: must list at least one server");
  EXPECT_EQ(only_error(head + "servers = \"app:1\"\n" + route),
            "test.toml:5:11: upstream.servers: expected an array of strings");
  EXPECT_EQ(only_error(head + "servers = [\"a:1\", 2]\n" + route),
            "test.toml:5:19: upstream.servers: expected a string");
  EXPECT_EQ(only_error(head + "servers = [\"a:1\", \"b\"]\n" + route),
            "test.toml:5:19: upstream.servers: invalid address \"b\": missing port");
  EXPECT_EQ(only_error(head + route), "test.toml:3:1: upstream: missing required key \"servers\"");
  EXPECT_EQ(only_error(head + "servers = [\"a:1\"]\nbalance = \"random\"\n" + route),
            "test.toml:6:11: upstream.balance: unknown value \"random\" (expected "
            "\"round_robin\", \"least_conn\")");
}

TEST(LoadString, RouteFieldsAreChecked) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "path_prefix = \"api\"\n"),
            "test.toml:8:15: route.path_prefix: must start with \"/\"");
  EXPECT_EQ(only_error(std::string(kMinimal) + "host = \"*\"\n"),
            "test.toml:8:8: route.host: invalid host pattern \"*\" (expected \"example.com\" or "
            "\"*.example.com\")");
  EXPECT_EQ(only_error(std::string(kMinimal) + "host = \"a.*.com\"\n").substr(0, 30),
            "test.toml:8:8: route.host: inv");
  LoadResult any_host = load_with("host = \"\"\n");
  ASSERT_TRUE(any_host.config.has_value()) << joined(any_host.errors);
  EXPECT_EQ(any_host.config->routes[0].host, "");
}

TEST(LoadString, ListenerNeedsAnAddress) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "[[listener]]\n"),
            "test.toml:8:1: listener: missing required key \"address\"");
}

TEST(LoadString, ListenerWrittenAsPlainTableGetsAHint) {
  std::string toml(kMinimal);
  toml.replace(0, 12, "[listener]");
  EXPECT_EQ(only_error(toml),
            "test.toml:1:1: listener: expected an array of tables (write [[listener]])");
}

TEST(LoadString, AddressUsedTwiceIsAnError) {
  EXPECT_EQ(only_error(std::string(kMinimal) + "[admin]\naddress = \"127.0.0.1:8080\"\n"),
            "test.toml:9:11: admin.address: address \"127.0.0.1:8080\" is already used at line 2");
  LoadResult ephemeral = load_with(
      "[[listener]]\naddress = \"127.0.0.1:0\"\n"
      "[[listener]]\naddress = \"127.0.0.1:0\"\n");
  EXPECT_TRUE(ephemeral.config.has_value()) << joined(ephemeral.errors);
}

TEST(LoadString, NoListenerIsAnErrorAtFileStart) {
  std::string toml(kMinimal.substr(kMinimal.find("[[upstream]]")));
  LoadResult result = load(toml);
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1u) << joined(result.errors);
  EXPECT_EQ(result.errors[0].line, 1u);
  EXPECT_EQ(result.errors[0].column, 1u);
  EXPECT_TRUE(result.errors[0].text().starts_with("test.toml:1:1: no [[listener]] defined"))
      << result.errors[0].text();
}

// TOML allows non-ASCII text only in strings and comments; toml++ 3.3.0 must never see
// it elsewhere (tests/fuzz/README.md, finding 3).
TEST(LoadString, NonAsciiOutsideStringsIsAnErrorAtItsPosition) {
  EXPECT_EQ(only_error("a = 1\n\xc2\xa7 = 2\n"),
            "test.toml:2:1: a character beyond ASCII outside a string or comment");
  EXPECT_EQ(only_error("x = \"\xc3\xa9\" \xef\xbb\xbe= 1\n"),
            "test.toml:1:9: a character beyond ASCII outside a string or comment");
}

TEST(LoadString, NonAsciiInsideStringsAndCommentsIsAccepted) {
  const std::string documents[] = {
      "# caf\xc3\xa9\n",
      "a = \"caf\xc3\xa9 \\\" \xc3\xa9\"\n",
      "a = 'caf\xc3\xa9'\n",
      "a = \"\"\"\n\xc3\xa9 \\\"\"\" \xc3\xa9\n\"\"\"\n",
      "a = '''\n\xc3\xa9 '' \xc3\xa9\n'''\n",
  };
  for (const std::string& document : documents) {
    for (const Diagnostic& d : load(document).errors) {
      EXPECT_EQ(d.text().find("beyond ASCII"), std::string::npos) << document << d.text();
    }
  }
}

TEST(LoadString, EmptyDocumentReportsWhatIsMissing) {
  LoadResult result = load("");
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 2u) << joined(result.errors);
  EXPECT_NE(result.errors[0].message.find("[[listener]]"), std::string::npos);
  EXPECT_NE(result.errors[1].message.find("[[route]]"), std::string::npos);
}

TEST(LoadString, NoRouteWithOneUpstreamWarnsAndRoutesEverything) {
  std::string toml(kMinimal.substr(0, kMinimal.find("[[route]]")));
  LoadResult result = load(toml);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_EQ(texts(result.warnings),
            std::vector<std::string>{
                "test.toml:1:1: no [[route]] defined; sending every request to upstream \"app\""});
  ASSERT_EQ(result.config->routes.size(), 1u);
  EXPECT_EQ(result.config->routes[0].host, "");
  EXPECT_EQ(result.config->routes[0].path_prefix, "/");
  EXPECT_EQ(result.config->routes[0].upstream, "app");
}

TEST(LoadString, NoRouteWithTwoUpstreamsIsAnError) {
  std::string toml(kMinimal.substr(0, kMinimal.find("[[route]]")));
  toml += "[[upstream]]\nname = \"other\"\nservers = [\"127.0.0.1:4000\"]\n";
  EXPECT_EQ(only_error(toml),
            "test.toml:1:1: no [[route]] defined; without routes exactly one [[upstream]] is "
            "needed, found 2");
}

TEST(LoadString, UnusedUpstreamIsAWarning) {
  LoadResult result = load_with("[[upstream]]\nname = \"spare\"\nservers = [\"127.0.0.1:4000\"]\n");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_EQ(texts(result.warnings),
            std::vector<std::string>{"test.toml:9:8: upstream \"spare\" is not used by any route"});
}

TEST(LoadString, ReportsEveryErrorInFileOrder) {
  LoadResult result = load(R"([server]
workers = "lots"
[limits]
body = "1TB"
[[listener]]
address = "0.0.0.0"
[[upstream]]
name = "app"
servers = ["app:3000"]
speed = 11
[[route]]
upstream = "ap"
)");
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(texts(result.errors),
            (std::vector<std::string>{
                "test.toml:2:11: server.workers: expected \"auto\" or an integer",
                "test.toml:4:8: limits.body: invalid size \"1TB\": unknown unit \"TB\" (B, KiB, "
                "MiB, GiB, KB, MB or GB)",
                "test.toml:6:11: listener.address: invalid address \"0.0.0.0\": missing port",
                "test.toml:10:1: unknown key \"upstream.speed\"",
                "test.toml:12:12: route: upstream \"ap\" is not defined",
            }));
}

TEST(LoadString, SyntaxErrorCarriesItsPosition) {
  LoadResult result = load(std::string(kMinimal) + "[server]\nworkers = \n");
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.errors.size(), 1u) << joined(result.errors);
  EXPECT_EQ(result.errors[0].file, "test.toml");
  EXPECT_EQ(result.errors[0].line, 9u);
  EXPECT_GT(result.errors[0].column, 0u);
  EXPECT_FALSE(result.errors[0].message.empty());
}

TEST(LoadString, SourceNameIsUsedInDiagnostics) {
  LoadResult result = load_string("[[listener]]\n", "<inline>");
  ASSERT_FALSE(result.errors.empty());
  EXPECT_EQ(result.errors[0].file, "<inline>");
  EXPECT_TRUE(result.errors[0].text().starts_with("<inline>:1:1: ")) << result.errors[0].text();
}

// --- TLS listeners, HTTPS redirects -------------------------------------------------------

// kMinimal plus `extra`, which starts at line 8.
std::string with(std::string_view extra) {
  return std::string(kMinimal) + std::string(extra);
}

// A TLS listener on :8443 whose [listener.tls] header is line 10 and whose next key is
// line 12 (line 11 lists the certificates).
std::string tls_listener(std::string_view extra) {
  return with(
      "[[listener]]\n"
      "address = \"0.0.0.0:8443\"\n"
      "[listener.tls]\n"
      "certificates = [ { cert = \"/certs/fullchain.pem\", key = \"/certs/privkey.pem\" } ]\n" +
      std::string(extra));
}

TEST(ConfigTls, RoundTripsEveryKey) {
  LoadResult result = load_with(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
certificates = [
  { cert = "/certs/fullchain.pem", key = "/certs/privkey.pem" },
  { cert = "/certs/other.pem", key = "/certs/other.key" },
]
min_version = "1.3"
ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"
handshake_timeout = "3s"
hsts = "365d"
ocsp_file = "/certs/ocsp.der"
)");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  ASSERT_EQ(result.config->listeners.size(), 2u);
  EXPECT_FALSE(result.config->listeners[0].tls.has_value());
  const Listener& listener = result.config->listeners[1];
  EXPECT_EQ(listener.address, (HostPort{"0.0.0.0", 8443}));
  ASSERT_TRUE(listener.tls.has_value());
  const ListenerTls& tls = *listener.tls;
  ASSERT_EQ(tls.certificates.size(), 2u);
  EXPECT_EQ(tls.certificates[0].cert_file, "/certs/fullchain.pem");
  EXPECT_EQ(tls.certificates[0].key_file, "/certs/privkey.pem");
  EXPECT_EQ(tls.certificates[1].cert_file, "/certs/other.pem");
  EXPECT_EQ(tls.certificates[1].key_file, "/certs/other.key");
  EXPECT_EQ(tls.min_version, TlsVersion::tls1_3);
  EXPECT_EQ(tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(tls.handshake_timeout, 3s);
  EXPECT_EQ(tls.hsts_max_age, std::optional<Duration>(24h * 365));
  EXPECT_EQ(tls.ocsp_file, "/certs/ocsp.der");
  EXPECT_FALSE(listener.redirect_to_https);
}

TEST(ConfigTls, OnlyCertificatesKeepsDefaults) {
  LoadResult result = load(tls_listener(""));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const ListenerTls& tls = result.config->listeners[1].tls.value();
  ASSERT_EQ(tls.certificates.size(), 1u);
  EXPECT_EQ(tls.min_version, TlsVersion::tls1_2);
  EXPECT_EQ(tls.ciphers, "");
  EXPECT_EQ(tls.handshake_timeout, 10s);
  EXPECT_FALSE(tls.hsts_max_age.has_value());
  EXPECT_EQ(tls.ocsp_file, "");
  EXPECT_FALSE(result.config->listeners[0].tls.has_value());
}

TEST(ConfigTls, AcceptsInlineTableAndArrayOfTablesForms) {
  LoadResult inline_tls = load_with(
      "[[listener]]\naddress = \"0.0.0.0:8443\"\n"
      "tls = { certificates = [ { cert = \"c\", key = \"k\" } ], hsts = \"0s\" }\n");
  ASSERT_TRUE(inline_tls.config.has_value()) << joined(inline_tls.errors);
  EXPECT_EQ(inline_tls.config->listeners[1].tls->certificates[0].cert_file, "c");
  EXPECT_EQ(inline_tls.config->listeners[1].tls->hsts_max_age, std::optional<Duration>(0ms));

  LoadResult array_of_tables = load_with(
      "[[listener]]\naddress = \"0.0.0.0:8443\"\n"
      "[[listener.tls.certificates]]\ncert = \"a.pem\"\nkey = \"a.key\"\n"
      "[[listener.tls.certificates]]\ncert = \"b.pem\"\nkey = \"b.key\"\n");
  ASSERT_TRUE(array_of_tables.config.has_value()) << joined(array_of_tables.errors);
  const ListenerTls& tls = array_of_tables.config->listeners[1].tls.value();
  ASSERT_EQ(tls.certificates.size(), 2u);
  EXPECT_EQ(tls.certificates[1].key_file, "b.key");
}

TEST(ConfigTls, CertificatesAreRequiredAndChecked) {
  std::string head = "[[listener]]\naddress = \"0.0.0.0:8443\"\n[listener.tls]\n";
  EXPECT_EQ(only_error(with(head + "min_version = \"1.3\"\n")),
            "test.toml:10:1: listener.tls: missing required key \"certificates\"");
  EXPECT_EQ(only_error(with(head + "certificates = []\n")),
            "test.toml:11:16: listener.tls.certificates: must list at least one certificate");
  EXPECT_EQ(only_error(with(head + "certificates = \"/certs/fullchain.pem\"\n")),
            "test.toml:11:16: listener.tls.certificates: expected an array like [ { cert = "
            "\"...\", key = \"...\" } ]");
  EXPECT_EQ(only_error(with(head + "certificates = [\"/certs/fullchain.pem\"]\n")),
            "test.toml:11:17: listener.tls.certificates: expected a table like { cert = "
            "\"...\", key = \"...\" }");
  EXPECT_EQ(only_error(with(head + "certificates = [ { cert = \"c.pem\" } ]\n")),
            "test.toml:11:18: listener.tls.certificates: missing required key \"key\"");
  EXPECT_EQ(only_error(with(head + "certificates = [ { cert = \"\", key = \"k\" } ]\n")),
            "test.toml:11:27: listener.tls.certificates.cert: must not be empty");
  EXPECT_EQ(only_error(with(head + "certificates = [ { cert = \"c\", key = 1 } ]\n")),
            "test.toml:11:38: listener.tls.certificates.key: expected a string");
  EXPECT_EQ(
      only_error(with(head + "certificates = [ { cert = \"c\", kye = \"k\", key = \"k\" } ]\n")),
      "test.toml:11:32: unknown key \"listener.tls.certificates.kye\" (did you mean "
      "\"key\"?)");
}

TEST(ConfigTls, BadValuesNameTheKey) {
  EXPECT_EQ(only_error(tls_listener("min_version = \"1.1\"\n")),
            "test.toml:12:15: listener.tls.min_version: unknown value \"1.1\" (expected "
            "\"1.2\", \"1.3\")");
  EXPECT_EQ(only_error(tls_listener("min_version = 1.3\n")),
            "test.toml:12:15: listener.tls.min_version: expected a string (\"1.2\", \"1.3\"), not "
            "a number");
  EXPECT_EQ(only_error(tls_listener("hsts = \"1y\"\n")),
            "test.toml:12:8: listener.tls.hsts: invalid duration \"1y\": unknown unit \"y\" (ms, "
            "s, m, h or d)");
  EXPECT_EQ(only_error(tls_listener("handshake_timeout = 10\n")),
            "test.toml:12:21: listener.tls.handshake_timeout: expected a string");
  EXPECT_EQ(only_error(tls_listener("ciphers = [\"AES128\"]\n")),
            "test.toml:12:11: listener.tls.ciphers: expected a string");
  EXPECT_EQ(only_error(tls_listener("ocsp_file = false\n")),
            "test.toml:12:13: listener.tls.ocsp_file: expected a string");
  EXPECT_EQ(only_error(tls_listener("hst = \"1d\"\n")),
            "test.toml:12:1: unknown key \"listener.tls.hst\" (did you mean \"hsts\"?)");
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:8443\"\ntls = true\n")),
            "test.toml:10:7: listener.tls: expected a table");
}

TEST(ConfigListener, RedirectToHttpsWithAcmeWebroot) {
  LoadResult result = load_with(
      "[[listener]]\naddress = \"0.0.0.0:80\"\n"
      "redirect_to_https = true\nacme_webroot = \"/var/www/certbot\"\n");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  const Listener& listener = result.config->listeners[1];
  EXPECT_TRUE(listener.redirect_to_https);
  EXPECT_EQ(listener.acme_webroot, "/var/www/certbot");
  EXPECT_FALSE(listener.tls.has_value());
  EXPECT_FALSE(result.config->listeners[0].redirect_to_https);
  EXPECT_EQ(result.config->listeners[0].acme_webroot, "");
}

TEST(ConfigListener, RedirectIsNotAllowedOnATlsListener) {
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:8443\"\nredirect_to_https = true\n"
                            "[listener.tls]\ncertificates = [ { cert = \"c\", key = \"k\" } ]\n")),
            "test.toml:10:21: listener.redirect_to_https: not allowed on a listener with "
            "[listener.tls] (redirect from a plain listener, such as port 80)");
  // false is merely redundant.
  LoadResult explicit_false = load_with(
      "[[listener]]\naddress = \"0.0.0.0:8443\"\nredirect_to_https = false\n"
      "[listener.tls]\ncertificates = [ { cert = \"c\", key = \"k\" } ]\n");
  ASSERT_TRUE(explicit_false.config.has_value()) << joined(explicit_false.errors);
  EXPECT_TRUE(explicit_false.config->listeners[1].tls.has_value());
}

TEST(ConfigListener, Http2IsOnForTlsAndH2cIsOptInForPlain) {
  LoadResult defaults = load(tls_listener(""));
  ASSERT_TRUE(defaults.config.has_value()) << joined(defaults.errors);
  EXPECT_TRUE(defaults.config->listeners[1].tls->http2);
  EXPECT_FALSE(defaults.config->listeners[0].h2c);

  LoadResult off = load(tls_listener("http2 = false\n"));
  ASSERT_TRUE(off.config.has_value()) << joined(off.errors);
  EXPECT_FALSE(off.config->listeners[1].tls->http2);

  LoadResult h2c = load_with("[[listener]]\naddress = \"0.0.0.0:8081\"\nh2c = true\n");
  ASSERT_TRUE(h2c.config.has_value()) << joined(h2c.errors);
  EXPECT_TRUE(h2c.config->listeners[1].h2c);
}

TEST(ConfigListener, H2cIsOnlyForPlainListeners) {
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:8443\"\nh2c = true\n"
                            "[listener.tls]\ncertificates = [ { cert = \"c\", key = \"k\" } ]\n")),
            "test.toml:10:7: listener.h2c: only for plain listeners (TLS listeners offer h2 "
            "through ALPN: [listener.tls] http2)");
  EXPECT_EQ(only_error(tls_listener("http2 = \"yes\"\n")),
            "test.toml:12:9: listener.tls.http2: expected true or false");
}

TEST(ConfigListener, BadRedirectValues) {
  EXPECT_EQ(
      only_error(with("[[listener]]\naddress = \"0.0.0.0:80\"\nredirect_to_https = \"yes\"\n")),
      "test.toml:10:21: listener.redirect_to_https: expected true or false");
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:80\"\nredirect_to_https = true\n"
                            "acme_webroot = 1\n")),
            "test.toml:11:16: listener.acme_webroot: expected a string");
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:80\"\nredirect = true\n")),
            "test.toml:10:1: unknown key \"listener.redirect\"");
}

TEST(ConfigListener, AcmeWebrootWithoutRedirectIsAWarning) {
  LoadResult result =
      load_with("[[listener]]\naddress = \"0.0.0.0:80\"\nacme_webroot = \"/var/www/certbot\"\n");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_EQ(
      texts(result.warnings),
      std::vector<std::string>{
          "test.toml:10:16: listener.acme_webroot: ignored without redirect_to_https = true"});
  EXPECT_EQ(result.config->listeners[1].acme_webroot, "/var/www/certbot");

  LoadResult off = load_with(
      "[[listener]]\naddress = \"0.0.0.0:80\"\nredirect_to_https = false\nacme_webroot = \"/w\"\n");
  EXPECT_EQ(
      texts(off.warnings),
      std::vector<std::string>{
          "test.toml:11:16: listener.acme_webroot: ignored without redirect_to_https = true"});

  LoadResult empty = load_with("[[listener]]\naddress = \"0.0.0.0:80\"\nacme_webroot = \"\"\n");
  EXPECT_TRUE(empty.warnings.empty()) << joined(empty.warnings);
}

TEST(ConfigListener, EveryProblemOfOneListenerIsReported) {
  LoadResult result = load_with(
      "[[listener]]\naddress = \"0.0.0.0\"\nredirect_to_https = 1\n"
      "[listener.tls]\ncertificates = []\n");
  EXPECT_EQ(texts(result.errors),
            (std::vector<std::string>{
                "test.toml:9:11: listener.address: invalid address \"0.0.0.0\": missing port",
                "test.toml:10:21: listener.redirect_to_https: expected true or false",
                "test.toml:12:16: listener.tls.certificates: must list at least one certificate",
            }));
}

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

std::vector<std::string> warnings_of(const std::string& toml) {
  LoadResult result = load(toml);
  EXPECT_TRUE(result.config.has_value()) << joined(result.errors);
  return texts(result.warnings);
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

// --- Dependency checks --------------------------------------------------------------------

// kMinimal plus one [[check]] whose header is line 8 and first key line 9.
std::string check(std::string_view keys) {
  return with("[[check]]\n" + std::string(keys));
}

TEST(ConfigCheck, PostgresRoundTrips) {
  LoadResult result = load(check(R"(name = "db"
type = "postgres"
target = "postgresql://app@db:5432/app"
password_file = "/run/secrets/pg"
query = "SELECT 42"
require_primary = true
interval = "10s"
timeout = "3s"
jitter = "500ms"
start_period = "1m"
rise = 1
fall = 5
required = false
)"));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  ASSERT_EQ(result.config->checks.size(), 1u);
  const Check& db = result.config->checks[0];
  EXPECT_EQ(db.name, "db");
  EXPECT_EQ(db.type, CheckType::postgres);
  EXPECT_EQ(db.target, "postgresql://app@db:5432/app");
  EXPECT_EQ(db.upstream, "");
  EXPECT_EQ(db.password_file, "/run/secrets/pg");
  EXPECT_EQ(db.query, "SELECT 42");
  EXPECT_TRUE(db.require_primary);
  EXPECT_EQ(db.interval, 10s);
  EXPECT_EQ(db.timeout, 3s);
  EXPECT_EQ(db.jitter, 500ms);
  EXPECT_EQ(db.start_period, 1min);
  EXPECT_EQ(db.rise, 1u);
  EXPECT_EQ(db.fall, 5u);
  EXPECT_FALSE(db.required);
}

TEST(ConfigCheck, HttpRoundTrips) {
  LoadResult result =
      load(check("name = \"app\"\ntype = \"http\"\nupstream = \"app\"\npath = \"/api/health\"\n"
                 "expect_status = \"200-299\"\nexpect_body = \"ok\"\n"));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Check& app = result.config->checks.at(0);
  EXPECT_EQ(app.type, CheckType::http);
  EXPECT_EQ(app.upstream, "app");
  EXPECT_EQ(app.target, "");
  EXPECT_EQ(app.path, "/api/health");
  EXPECT_EQ(app.expect_status_min, 200);
  EXPECT_EQ(app.expect_status_max, 299);
  EXPECT_EQ(app.expect_body, "ok");
}

TEST(ConfigCheck, ExpectStatusForms) {
  auto status = [](std::string_view value) {
    LoadResult result =
        load(check("name = \"app\"\ntype = \"http\"\nupstream = \"app\"\n"
                   "expect_status = " +
                   std::string(value) + "\n"));
    EXPECT_TRUE(result.config.has_value()) << value << "\n" << joined(result.errors);
    const Check& c = result.config->checks.at(0);
    return std::pair(c.expect_status_min, c.expect_status_max);
  };
  EXPECT_EQ(status("\"204\""), std::pair(204, 204));
  EXPECT_EQ(status("\"100-599\""), std::pair(100, 599));
  EXPECT_EQ(status("\"301-301\""), std::pair(301, 301));
  EXPECT_EQ(status("200"), std::pair(200, 200));  // a TOML integer works too
}

TEST(ConfigCheck, TcpAndRedisTakeHostPort) {
  LoadResult result =
      load(check("name = \"smtp\"\ntype = \"tcp\"\ntarget = \"mail:25\"\n"
                 "[[check]]\nname = \"cache\"\ntype = \"redis\"\ntarget = \"[::1]:6379\"\n"
                 "password_file = \"/run/secrets/redis\"\n"));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  ASSERT_EQ(result.config->checks.size(), 2u);
  EXPECT_EQ(result.config->checks[0].type, CheckType::tcp);
  EXPECT_EQ(result.config->checks[0].target, "mail:25");
  EXPECT_EQ(result.config->checks[1].type, CheckType::redis);
  EXPECT_EQ(result.config->checks[1].target, "[::1]:6379");
  EXPECT_EQ(result.config->checks[1].password_file, "/run/secrets/redis");
}

TEST(ConfigCheck, DefaultsWithOnlyRequiredKeys) {
  LoadResult result = load(check("name = \"smtp\"\ntype = \"tcp\"\ntarget = \"mail:25\"\n"));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Check& c = result.config->checks.at(0);
  EXPECT_EQ(c.query, "SELECT 1");
  EXPECT_FALSE(c.require_primary);
  EXPECT_EQ(c.path, "/");
  EXPECT_EQ(c.expect_status_min, 200);
  EXPECT_EQ(c.expect_status_max, 399);
  EXPECT_EQ(c.interval, 5s);
  EXPECT_EQ(c.timeout, 2s);
  EXPECT_EQ(c.jitter, 0ms);
  EXPECT_EQ(c.start_period, 0s);
  EXPECT_EQ(c.rise, 2u);
  EXPECT_EQ(c.fall, 3u);
  EXPECT_TRUE(c.required);
  EXPECT_TRUE(load(kMinimal).config->checks.empty());
}

TEST(ConfigCheck, NameAndTypeAreRequired) {
  EXPECT_EQ(only_error(check("type = \"tcp\"\ntarget = \"a:1\"\n")),
            "test.toml:8:1: check: missing required key \"name\"");
  EXPECT_EQ(only_error(check("name = \"\"\ntype = \"tcp\"\ntarget = \"a:1\"\n")),
            "test.toml:9:8: check.name: must not be empty");
  EXPECT_EQ(only_error(check("name = \"x\"\ntarget = \"a:1\"\n")),
            "test.toml:8:1: check: missing required key \"type\"");
  EXPECT_EQ(only_error(check("name = \"x\"\ntype = \"mysql\"\n")),
            "test.toml:10:8: check.type: unknown value \"mysql\" (expected \"postgres\", \"http\", "
            "\"tcp\", \"redis\")");
  EXPECT_EQ(only_error(check("name = \"x\"\ntype = \"tcp\"\ntarget = \"a:1\"\n"
                             "[[check]]\nname = \"x\"\ntype = \"tcp\"\ntarget = \"b:1\"\n")),
            "test.toml:13:8: check: duplicate name \"x\" (first defined at line 9)");
  EXPECT_EQ(only_error(with("[check]\nname = \"x\"\n")),
            "test.toml:8:1: check: expected an array of tables (write [[check]])");
  EXPECT_EQ(only_error(check("name = \"x\"\ntype = \"tcp\"\ntarget = \"a:1\"\ntimout = \"1s\"\n")),
            "test.toml:12:1: unknown key \"check.timout\" (did you mean \"timeout\"?)");
}

TEST(ConfigCheck, TargetIsRequiredAndCheckedByType) {
  EXPECT_EQ(only_error(check("name = \"db\"\ntype = \"postgres\"\n")),
            "test.toml:8:1: check: missing required key \"target\" for type \"postgres\"");
  EXPECT_EQ(only_error(check("name = \"db\"\ntype = \"postgres\"\ntarget = \"\"\n")),
            "test.toml:11:10: check.target: must not be empty");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"redis\"\n")),
            "test.toml:8:1: check: missing required key \"target\" for type \"redis\"");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"tcp\"\ntarget = \"redis\"\n")),
            "test.toml:11:10: check.target: invalid address \"redis\": missing port");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"redis\"\ntarget = \"redis://cache:6379\"\n")),
            "test.toml:11:10: check.target: invalid address \"redis://cache:6379\": must not "
            "include a scheme like \"http://\"");
  // A postgres target is the driver's business: conninfo and URLs alike.
  EXPECT_TRUE(load(check("name = \"db\"\ntype = \"postgres\"\ntarget = \"host=db dbname=app\"\n"))
                  .config.has_value());
}

TEST(ConfigCheck, HttpNeedsAnExistingUpstream) {
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\n")),
            "test.toml:8:1: check: missing required key \"upstream\" for type \"http\"");
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\nupstream = \"api\"\n")),
            "test.toml:11:12: check: upstream \"api\" is not defined");
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\nupstream = 1\n")),
            "test.toml:11:12: check.upstream: expected a string");
  // A [[check]] written before the [[upstream]] it names still finds it.
  LoadResult early = load("[[check]]\nname = \"app\"\ntype = \"http\"\nupstream = \"app\"\n" +
                          std::string(kMinimal));
  ASSERT_TRUE(early.config.has_value()) << joined(early.errors);
  EXPECT_EQ(early.config->checks.at(0).upstream, "app");
}

TEST(ConfigCheck, KeysOfOtherTypesAreErrors) {
  EXPECT_EQ(only_error(check("name = \"db\"\ntype = \"postgres\"\ntarget = \"db\"\n"
                             "upstream = \"app\"\n")),
            "test.toml:12:1: check.upstream: not allowed for type \"postgres\" (only for "
            "\"http\")");
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\nupstream = \"app\"\n"
                             "target = \"app:3000\"\n")),
            "test.toml:12:1: check.target: not allowed for type \"http\" (only for \"postgres\", "
            "\"tcp\", \"redis\")");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"tcp\"\ntarget = \"a:1\"\n"
                             "password_file = \"/p\"\n")),
            "test.toml:12:1: check.password_file: not allowed for type \"tcp\" (only for "
            "\"postgres\", \"redis\")");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"redis\"\ntarget = \"a:1\"\n"
                             "require_primary = true\n")),
            "test.toml:12:1: check.require_primary: not allowed for type \"redis\" (only for "
            "\"postgres\")");
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\nupstream = \"app\"\n"
                             "query = \"SELECT 1\"\n")),
            "test.toml:12:1: check.query: not allowed for type \"http\" (only for \"postgres\")");
  // Every http-only key on a non-http check, each at its own key.
  LoadResult result =
      load(check("name = \"db\"\ntype = \"postgres\"\ntarget = \"db\"\n"
                 "path = \"/\"\nexpect_status = \"200\"\nexpect_body = \"ok\"\n"));
  EXPECT_EQ(texts(result.errors),
            (std::vector<std::string>{
                "test.toml:12:1: check.path: not allowed for type \"postgres\" (only for \"http\")",
                "test.toml:13:1: check.expect_status: not allowed for type \"postgres\" (only for "
                "\"http\")",
                "test.toml:14:1: check.expect_body: not allowed for type \"postgres\" (only for "
                "\"http\")",
            }));
  // Without a valid type there is nothing to judge these keys against.
  EXPECT_EQ(only_error(check("name = \"x\"\ntype = \"ftp\"\npath = \"/\"\nquery = \"q\"\n")),
            "test.toml:10:8: check.type: unknown value \"ftp\" (expected \"postgres\", \"http\", "
            "\"tcp\", \"redis\")");
}

TEST(ConfigCheck, HttpValuesAreChecked) {
  std::string head = "name = \"app\"\ntype = \"http\"\nupstream = \"app\"\n";  // lines 9-11
  EXPECT_EQ(only_error(check(head + "path = \"health\"\n")),
            "test.toml:12:8: check.path: must start with \"/\"");
  EXPECT_EQ(only_error(check(head + "expect_status = \"2xx\"\n")),
            "test.toml:12:17: check.expect_status: invalid status \"2xx\" (expected a code like "
            "\"200\" or a range like \"200-399\", codes 100 to 599)");
  EXPECT_EQ(only_error(check(head + "expect_status = \"399-200\"\n")),
            "test.toml:12:17: check.expect_status: invalid status range \"399-200\": 399 is above "
            "200");
  EXPECT_EQ(only_error(check(head + "expect_status = 600\n")),
            "test.toml:12:17: check.expect_status: must be between 100 and 599");
  EXPECT_EQ(only_error(check(head + "expect_body = 1\n")),
            "test.toml:12:15: check.expect_body: expected a string");
  for (std::string_view bad : {"99", "600", "200-600", "200-", "-399", "200-399-500", " 200",
                               "200 - 399", "", "0200", "2e2"}) {
    std::string error = only_error(check(head + "expect_status = \"" + std::string(bad) + "\"\n"));
    EXPECT_TRUE(error.starts_with("test.toml:12:17: check.expect_status: invalid status"))
        << bad << ": " << error;
  }
}

TEST(ConfigCheck, PostgresValuesAreChecked) {
  std::string head = "name = \"db\"\ntype = \"postgres\"\ntarget = \"db\"\n";  // lines 9-11
  EXPECT_EQ(only_error(check(head + "require_primary = \"yes\"\n")),
            "test.toml:12:19: check.require_primary: expected true or false");
  EXPECT_EQ(only_error(check(head + "query = \"\"\n")),
            "test.toml:12:9: check.query: must not be empty");
  EXPECT_EQ(only_error(check(head + "password_file = 1\n")),
            "test.toml:12:17: check.password_file: expected a string");
}

TEST(ConfigCheck, TimingIsChecked) {
  std::string head = "name = \"c\"\ntype = \"tcp\"\ntarget = \"a:1\"\n";  // lines 9-11
  EXPECT_EQ(only_error(check(head + "interval = \"1s\"\ntimeout = \"1s\"\n")),
            "test.toml:13:11: check.timeout: must be shorter than interval (1s)");
  EXPECT_EQ(only_error(check(head + "timeout = \"5s\"\n")),
            "test.toml:12:11: check.timeout: must be shorter than interval (5s)");
  EXPECT_EQ(only_error(check(head + "interval = \"1500ms\"\n")),
            "test.toml:12:12: check.interval: must be longer than timeout (2s, the default)");
  EXPECT_EQ(only_error(check(head + "timeout = \"0s\"\n")),
            "test.toml:12:11: check.timeout: must be greater than 0");
  EXPECT_EQ(only_error(check(head + "rise = 0\n")),
            "test.toml:12:8: check.rise: must be between 1 and 4294967295");
  EXPECT_EQ(only_error(check(head + "fall = -3\n")),
            "test.toml:12:8: check.fall: must be between 1 and 4294967295");
  EXPECT_EQ(
      only_error(check(head + "jitter = \"1\"\n")),
      "test.toml:12:10: check.jitter: invalid duration \"1\": missing unit (ms, s, m, h or d)");
  EXPECT_EQ(only_error(check(head + "start_period = 30\n")),
            "test.toml:12:16: check.start_period: expected a string");
  EXPECT_EQ(only_error(check(head + "required = 1\n")),
            "test.toml:12:12: check.required: expected true or false");
  LoadResult fast = load(check(head + "interval = \"200ms\"\ntimeout = \"150ms\"\n"));
  ASSERT_TRUE(fast.config.has_value()) << joined(fast.errors);
  EXPECT_EQ(fast.config->checks[0].interval, 200ms);
}

TEST(ConfigCheck, ReportsEveryErrorOfEveryCheckInFileOrder) {
  LoadResult result = load(check(R"(name = "db"
type = "postgres"
target = ""
path = "/"
[[check]]
name = "db"
type = "http"
upstream = "nope"
expect_status = "abc"
[[check]]
name = "c"
type = "redis"
rise = 0
)"));
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(texts(result.errors),
            (std::vector<std::string>{
                "test.toml:11:10: check.target: must not be empty",
                "test.toml:12:1: check.path: not allowed for type \"postgres\" (only for \"http\")",
                "test.toml:14:8: check: duplicate name \"db\" (first defined at line 9)",
                "test.toml:16:12: check: upstream \"nope\" is not defined",
                "test.toml:17:17: check.expect_status: invalid status \"abc\" (expected a code "
                "like \"200\" or a range like \"200-399\", codes 100 to 599)",
                "test.toml:18:1: check: missing required key \"target\" for type \"redis\"",
                "test.toml:21:8: check.rise: must be between 1 and 4294967295",
            }));
}

// --- Files and the configs we ship --------------------------------------------------------

TEST(Diagnostic, TextIsFileLineColumnMessage) {
  EXPECT_EQ((Diagnostic{"a.toml", 3, 7, "boom"}).text(), "a.toml:3:7: boom");
}

TEST(LoadFile, MissingFileIsAnError) {
  LoadResult result = load_file("/nonexistent/gatehouse.toml");
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(texts(result.errors),
            std::vector<std::string>{
                "/nonexistent/gatehouse.toml:0:0: cannot read file: No such file or directory"});
}

TEST(LoadFile, DirectoryIsAnError) {
  LoadResult result = load_file("/");
  ASSERT_EQ(result.errors.size(), 1u) << joined(result.errors);
  EXPECT_TRUE(result.errors[0].text().starts_with("/:0:0: cannot read file: "))
      << result.errors[0].text();
}

TEST(DefaultToml, Loads) {
  LoadResult result = load_string(default_toml(), "<default>");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  const Config& config = *result.config;
  EXPECT_EQ(config.source, "<default>");
  ASSERT_EQ(config.listeners.size(), 1u);
  EXPECT_EQ(config.listeners[0].address, (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(config.admin.address, (HostPort{"127.0.0.1", 9901}));
  ASSERT_EQ(config.upstreams.size(), 1u);
  EXPECT_EQ(config.upstreams[0].name, "app");
  EXPECT_EQ(config.upstreams[0].servers, (std::vector<HostPort>{{"127.0.0.1", 3000}}));
  ASSERT_EQ(config.routes.size(), 1u);
  EXPECT_EQ(config.routes[0].path_prefix, "/");
  EXPECT_EQ(config.routes[0].upstream, "app");
  // Nothing answering on :3000 is not ready: the implicit check of "app" says so.
  const std::vector<Check> checks = checks_to_run(config);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].name, "upstream:app");
  EXPECT_TRUE(checks[0].implicit);
}

TEST(DeployConfig, LoadsWithoutErrorsOrWarnings) {
  const std::string path = GATEHOUSE_SOURCE_DIR "/deploy/gatehouse.toml";
  LoadResult result = load_file(path);
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  const Config& config = *result.config;
  EXPECT_EQ(config.source, path);
  ASSERT_EQ(config.listeners.size(), 1u);
  EXPECT_EQ(config.listeners[0].address, (HostPort{"0.0.0.0", 8080}));
  EXPECT_EQ(config.admin.address, (HostPort{"0.0.0.0", 9901}));
  ASSERT_NE(config.find_upstream("app"), nullptr);
  EXPECT_EQ(config.find_upstream("app")->servers, (std::vector<HostPort>{{"app", 3000}}));
  ASSERT_EQ(config.routes.size(), 1u);
  EXPECT_EQ(config.routes[0].path_prefix, "/");
  EXPECT_EQ(config.routes[0].upstream, "app");
  EXPECT_EQ(config.routes[0].sticky, Sticky::automatic);
  EXPECT_FALSE(config.listeners[0].tls.has_value());
  EXPECT_TRUE(config.checks.empty());
}

// The file's examples ("#key = ...", "#[[check]]": "#" directly followed by TOML) with
// that "#" removed must load cleanly too, so the documentation cannot rot either.
TEST(DeployConfig, ExamplesLoadWhenUncommented) {
  const std::string path = GATEHOUSE_SOURCE_DIR "/deploy/gatehouse.toml";
  std::ifstream file(path);
  ASSERT_TRUE(file) << path;
  std::string uncommented;
  int examples = 0;
  for (std::string line; std::getline(file, line);) {
    if (line.size() > 1 && line[0] == '#' && line[1] != ' ' && line[1] != '#') {
      line.erase(0, 1);
      ++examples;
    }
    uncommented += line + "\n";
  }
  EXPECT_GT(examples, 0);
  LoadResult result = load_string(uncommented, "gatehouse.toml (examples uncommented)");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  const Config& config = *result.config;

  ASSERT_EQ(config.listeners.size(), 3u);
  const Listener& https = config.listeners[1];
  ASSERT_TRUE(https.tls.has_value());
  EXPECT_EQ(https.tls->certificates.size(), 1u);
  EXPECT_TRUE(https.tls->hsts_max_age.has_value());
  const Listener& redirect = config.listeners[2];
  EXPECT_FALSE(redirect.tls.has_value());
  EXPECT_TRUE(redirect.redirect_to_https);
  EXPECT_FALSE(redirect.acme_webroot.empty());

  ASSERT_EQ(config.routes.size(), 2u);
  EXPECT_EQ(config.routes[1].path_prefix, "/socket.io/");
  EXPECT_EQ(config.routes[1].sticky, Sticky::socketio);

  std::vector<CheckType> types;
  for (const Check& c : config.checks) types.push_back(c.type);
  EXPECT_EQ(types,
            (std::vector<CheckType>{CheckType::postgres, CheckType::http, CheckType::redis}));
  ASSERT_EQ(config.checks.size(), 3u);
  EXPECT_EQ(config.checks[1].upstream, "app");
}

}  // namespace
}  // namespace gh::config
