// Unit tests for config/: the TOML loader's diagnostics on whole documents, and the
// configs we ship (the embedded default and deploy/gatehouse.toml), so neither can rot
// unnoticed. Sections have their own files: config_<section>_test.cpp.

#ifndef GATEHOUSE_SOURCE_DIR
#error "GATEHOUSE_SOURCE_DIR must name the source tree (the test CMake defines it)"
#endif
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/unit/config_test_support.hpp"

namespace gh::config {
namespace {

using namespace std::chrono_literals;
using namespace gh::config::testing;

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
