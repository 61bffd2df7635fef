// Unit tests for config/: value parsers, the TOML loader's diagnostics, and the configs we
// ship (the embedded default and deploy/gatehouse.toml), so neither can rot unnoticed.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
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
  EXPECT_EQ(statics.keepalive, 32u);

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
}

}  // namespace
}  // namespace gh::config
