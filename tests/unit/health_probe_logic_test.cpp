// Tests for the pure parts of the probes (health/probe_logic, resolver, healthcheck URL):
// RESP replies, the Redis verdict, HTTP status/body checks and response reading, libpq
// error summaries, secret files, host sets from addresses.
#include <gtest/gtest.h>
#include <uv.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "health/healthcheck_client.hpp"
#include "health/probe_logic.hpp"
#include "health/resolver.hpp"

namespace gh::health {
namespace {

// --- RESP ------------------------------------------------------------------------------

TEST(HealthRespTest, SimpleStringsErrorsAndIntegers) {
  RespParse p = parse_resp_reply("+PONG\r\nextra");
  ASSERT_EQ(p.state, RespParse::State::complete);
  EXPECT_EQ(p.reply.type, '+');
  EXPECT_EQ(p.reply.text, "PONG");
  EXPECT_EQ(p.consumed, 7u);
  EXPECT_EQ(p.reply.line(), "+PONG");

  p = parse_resp_reply("-LOADING Redis is loading the dataset in memory\r\n");
  ASSERT_EQ(p.state, RespParse::State::complete);
  EXPECT_EQ(p.reply.line(), "-LOADING Redis is loading the dataset in memory");

  p = parse_resp_reply(":42\r\n");
  ASSERT_EQ(p.state, RespParse::State::complete);
  EXPECT_EQ(p.reply.text, "42");
}

TEST(HealthRespTest, IncompleteUntilCrlf) {
  EXPECT_EQ(parse_resp_reply("").state, RespParse::State::incomplete);
  EXPECT_EQ(parse_resp_reply("+PON").state, RespParse::State::incomplete);
  EXPECT_EQ(parse_resp_reply("+PONG\r").state, RespParse::State::incomplete);
  EXPECT_EQ(parse_resp_reply("$4\r\nPO").state, RespParse::State::incomplete);
  EXPECT_EQ(parse_resp_reply("*2\r\n+a\r\n").state, RespParse::State::incomplete);
}

TEST(HealthRespTest, BulkStringsAndArrays) {
  RespParse p = parse_resp_reply("$4\r\nPONG\r\n");
  ASSERT_EQ(p.state, RespParse::State::complete);
  EXPECT_EQ(p.reply.text, "PONG");
  EXPECT_EQ(p.consumed, 10u);

  p = parse_resp_reply("$-1\r\n");
  ASSERT_EQ(p.state, RespParse::State::complete);
  EXPECT_TRUE(p.reply.null);

  p = parse_resp_reply("*2\r\n$3\r\nfoo\r\n:1\r\n+next\r\n");
  ASSERT_EQ(p.state, RespParse::State::complete);
  EXPECT_EQ(p.reply.type, '*');
  EXPECT_EQ(p.consumed, 17u);
}

TEST(HealthRespTest, GarbageIsInvalid) {
  EXPECT_EQ(parse_resp_reply("HTTP/1.1 400 Bad Request\r\n").state, RespParse::State::invalid);
  EXPECT_EQ(parse_resp_reply("$x\r\n").state, RespParse::State::invalid);
  EXPECT_EQ(parse_resp_reply("$3\r\nabcd\r\n").state, RespParse::State::invalid);
  EXPECT_EQ(parse_resp_reply("+" + std::string(70000, 'a')).state, RespParse::State::invalid);
}

TEST(HealthRespTest, CommandsAreArraysOfBulkStrings) {
  EXPECT_EQ(resp_command({"PING"}), "*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(resp_command({"AUTH", "s3 cr\r\net"}), "*2\r\n$4\r\nAUTH\r\n$9\r\ns3 cr\r\net\r\n");
}

RespReply reply(char type, std::string text) {
  return {type, std::move(text), false};
}

TEST(HealthRespTest, RedisVerdict) {
  EXPECT_TRUE(redis_verdict({reply('+', "PONG")}, false).ok);
  EXPECT_TRUE(redis_verdict({reply('+', "OK"), reply('+', "PONG")}, true).ok);

  ProbeResult r =
      redis_verdict({reply('-', "LOADING Redis is loading the dataset in memory")}, false);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "-LOADING Redis is loading the dataset in memory");

  r = redis_verdict({reply('-', "NOAUTH Authentication required.")}, false);
  EXPECT_EQ(r.reason, "-NOAUTH Authentication required.");

  r = redis_verdict({reply('-', "WRONGPASS invalid username-password pair"),
                     reply('-', "NOAUTH Authentication required.")},
                    true);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "-WRONGPASS invalid username-password pair");

  r = redis_verdict({reply('-', "MASTERDOWN Link with MASTER is down")}, false);
  EXPECT_EQ(r.reason, "-MASTERDOWN Link with MASTER is down");

  r = redis_verdict({reply(':', "1")}, false);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "unexpected reply to PING: :1");
}

// --- HTTP ------------------------------------------------------------------------------

HttpProbeSpec spec(int min = 200, int max = 399, std::string expect = "") {
  HttpProbeSpec s;
  s.host_header = "app:3000";
  s.status_min = min;
  s.status_max = max;
  s.expect_body = std::move(expect);
  return s;
}

TEST(HealthHttpTest, StatusRange) {
  EXPECT_TRUE(http_verdict(200, "", spec()).ok);
  EXPECT_TRUE(http_verdict(399, "", spec()).ok);
  EXPECT_FALSE(http_verdict(199, "", spec()).ok);
  ProbeResult r = http_verdict(503, "", spec());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "HTTP 503");
  EXPECT_TRUE(http_verdict(204, "", spec(204, 204)).ok);
  EXPECT_FALSE(http_verdict(200, "", spec(204, 204)).ok);
}

TEST(HealthHttpTest, ExpectBody) {
  EXPECT_TRUE(http_verdict(200, "status: ready\n", spec(200, 299, "ready")).ok);
  ProbeResult r = http_verdict(200, "status: starting\n", spec(200, 299, "ready"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "HTTP 200: body does not contain \"ready\"");
}

// Feeds `response` to a reader in pieces of `step` bytes; the verdict, if any.
std::optional<ProbeResult> read_in_steps(HttpResponseReader& reader, const std::string& response,
                                         std::size_t step) {
  for (std::size_t i = 0; i < response.size(); i += step) {
    if (auto v = reader.feed(std::string_view(response).substr(i, step))) return v;
  }
  return std::nullopt;
}

TEST(HealthHttpTest, ReaderContentLengthInPieces) {
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello ready";
  for (std::size_t step : {1u, 3u, 7u, 1000u}) {
    HttpResponseReader reader(spec(200, 299, "ready"));
    auto v = read_in_steps(reader, response, step);
    ASSERT_TRUE(v) << step;
    EXPECT_TRUE(v->ok) << v->reason;
    EXPECT_EQ(reader.status_line(), "HTTP/1.1 200 OK");
    EXPECT_EQ(reader.body(), "hello ready");
  }
}

TEST(HealthHttpTest, ReaderChunkedBody) {
  HttpResponseReader reader(spec(200, 299, "world"));
  auto v = reader.feed(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello "
      "\r\n5\r\nworld\r\n0\r\n\r\n");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok) << v->reason;
  EXPECT_EQ(reader.body(), "hello world");
}

TEST(HealthHttpTest, ReaderBodyUntilClose) {
  HttpResponseReader reader(spec(200, 299, "tail"));
  EXPECT_FALSE(reader.feed("HTTP/1.0 200 OK\r\n\r\nbody with a tail"));
  ProbeResult r = reader.finish();
  EXPECT_TRUE(r.ok) << r.reason;
}

TEST(HealthHttpTest, ReaderSkipsInterimResponses) {
  HttpResponseReader reader(spec());
  auto v = reader.feed(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n"
      "Content-Length: 0\r\n\r\n");
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->reason, "HTTP 503");
}

TEST(HealthHttpTest, ReaderStopsAtBodyLimit) {
  HttpResponseReader reader(spec(200, 299, "never"));
  auto v = reader.feed("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
  EXPECT_FALSE(v);
  const std::string chunk(16 * 1024, 'x');
  for (int i = 0; i < 3 && !v; ++i) v = reader.feed(chunk);
  EXPECT_FALSE(v);
  v = reader.feed(chunk);  // 64 KiB: enough to judge
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(reader.body().size(), kHttpBodyLimit);
}

TEST(HealthHttpTest, ReaderRejectsGarbageAndTruncation) {
  HttpResponseReader garbage(spec());
  auto v = garbage.feed("SSH-2.0-OpenSSH_9.2\r\n\r\n");
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->ok);
  EXPECT_NE(v->reason.find("invalid HTTP response"), std::string::npos);

  HttpResponseReader early(spec());
  EXPECT_FALSE(early.feed("HTTP/1.1 200 OK\r\nContent-Le"));
  EXPECT_EQ(early.finish().reason, "connection closed before the response head");

  HttpResponseReader short_body(spec());
  EXPECT_FALSE(short_body.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
  ProbeResult r = short_body.finish();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "HTTP 200: connection closed before the body was complete");
}

// --- PostgreSQL ------------------------------------------------------------------------

TEST(HealthPgErrorTest, ServerErrorBecomesSqlstateAndMessage) {
  EXPECT_EQ(summarize_pg_error("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  "
                               "28P01: password authentication failed for user \"app\"\n"
                               "LOCATION:  auth_failed, auth.c:335\n"),
            "28P01 password authentication failed for user \"app\"");
  EXPECT_EQ(summarize_pg_error("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  "
                               "3D000: database \"nope\" does not exist\n"),
            "3D000 database \"nope\" does not exist");
}

TEST(HealthPgErrorTest, LastServerErrorWinsAcrossHosts) {
  EXPECT_EQ(summarize_pg_error(
                "connection to server at \"::1\", port 5432 failed: Connection refused\n"
                "\tIs the server running on that host and accepting TCP/IP connections?\n"
                "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  57P03: the "
                "database system is starting up\n"),
            "57P03 the database system is starting up");
}

TEST(HealthPgErrorTest, ClientErrorsKeepLibpqLine) {
  EXPECT_EQ(summarize_pg_error(
                "connection to server at \"127.0.0.1\", port 5999 failed: Connection refused\n"
                "\tIs the server running on that host and accepting TCP/IP connections?\n"),
            "connection to server at \"127.0.0.1\", port 5999 failed: Connection refused");
  EXPECT_EQ(summarize_pg_error("server closed the connection unexpectedly\n\tThis probably means "
                               "the server terminated abnormally\n"),
            "server closed the connection unexpectedly");
  EXPECT_EQ(summarize_pg_error(""), "unknown libpq error");
}

TEST(HealthPgErrorTest, TargetValidation) {
  EXPECT_TRUE(check_postgres_target("host=db user=app dbname=app"));
  EXPECT_TRUE(check_postgres_target("postgresql://app:pw@db:5432/app?sslmode=disable"));
  EXPECT_FALSE(check_postgres_target("host=a,b user=app"));
  EXPECT_FALSE(check_postgres_target("host=db port=5432,5433"));
  EXPECT_TRUE(check_postgres_target("hostaddr=10.0.0.1,10.0.0.2 port=5432,5433"));
  EXPECT_FALSE(check_postgres_target("nokey"));
  EXPECT_FALSE(check_postgres_target("postgresql://app@db/app?nosuchoption=1"));
}

// --- secrets, URLs, host sets ----------------------------------------------------------

TEST(HealthSecretTest, ReadsFileWithoutTrailingNewlines) {
  const std::string path = ::testing::TempDir() + "health_secret_test";
  {
    std::ofstream out(path);
    out << "s3cret pass\r\n\n";
  }
  auto secret = read_secret_file(path);
  std::remove(path.c_str());
  ASSERT_TRUE(secret);
  EXPECT_EQ(*secret, "s3cret pass");
  auto missing = read_secret_file(path);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find(path), std::string::npos);
}

TEST(HealthHealthcheckUrlTest, Parses) {
  auto u = parse_healthcheck_url(kDefaultHealthcheckUrl);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 9901);
  EXPECT_EQ(u->path, "/readyz?verbose");
  EXPECT_EQ(u->host_header, "127.0.0.1:9901");

  u = parse_healthcheck_url("http://[::1]:8080");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/");

  u = parse_healthcheck_url("http://proxy/livez?x=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/livez?x=1");

  EXPECT_FALSE(parse_healthcheck_url("https://127.0.0.1/"));
  EXPECT_FALSE(parse_healthcheck_url("http://:80/"));
  EXPECT_FALSE(parse_healthcheck_url("http://h:99999/"));
  EXPECT_FALSE(parse_healthcheck_url("http://h:x/"));
  EXPECT_FALSE(parse_healthcheck_url("http://[::1/"));
}

sockaddr_storage v4(const char* ip, int port) {
  sockaddr_storage a{};
  uv_ip4_addr(ip, port, reinterpret_cast<sockaddr_in*>(&a));
  return a;
}

TEST(HealthResolverTest, BuildHostSetDeduplicatesAndKeepsServerOrder) {
  config::Upstream upstream;
  upstream.name = "app";
  upstream.servers = {{"app", 3000}, {"10.0.0.9", 3000}};
  HostSetPtr set = build_host_set(upstream, {{v4("10.0.0.2", 3000), v4("10.0.0.1", 3000)},
                                             {v4("10.0.0.9", 3000), v4("10.0.0.2", 3000)}});
  ASSERT_EQ(set->hosts.size(), 3u);
  EXPECT_EQ(set->group, "app");
  EXPECT_EQ(set->hosts[0].label, "10.0.0.2:3000");
  EXPECT_EQ(set->hosts[0].name, "app:3000");
  EXPECT_EQ(set->hosts[1].label, "10.0.0.1:3000");
  EXPECT_EQ(set->hosts[2].label, "10.0.0.9:3000");
  EXPECT_EQ(set->hosts[2].name, "10.0.0.9:3000");
  EXPECT_TRUE(set->hosts[0].healthy);
}

TEST(HealthResolverTest, SameMembersIgnoresOrder) {
  config::Upstream upstream;
  upstream.name = "app";
  upstream.servers = {{"app", 3000}};
  HostSetPtr a = build_host_set(upstream, {{v4("10.0.0.1", 3000), v4("10.0.0.2", 3000)}});
  HostSetPtr b = build_host_set(upstream, {{v4("10.0.0.2", 3000), v4("10.0.0.1", 3000)}});
  HostSetPtr c = build_host_set(upstream, {{v4("10.0.0.2", 3000)}});
  EXPECT_TRUE(same_members(*a, *b));
  EXPECT_FALSE(same_members(*a, *c));
}

}  // namespace
}  // namespace gh::health
