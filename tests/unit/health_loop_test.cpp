// Loop tests for the health module: the tcp, http and redis probes, the Checker and the
// Resolver run on a real libuv loop against in-process servers on 127.0.0.1 (port 0) and a
// refused port; every test ends with everything closed and uv_loop_close() == 0. The
// healthcheck client (blocking, its own process in production) runs against a thread.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "health/checker.hpp"
#include "health/healthcheck_client.hpp"
#include "health/probe.hpp"
#include "health/readiness_report.hpp"
#include "health/resolver.hpp"

namespace gh::health {
namespace {

std::string plain_text(const HealthState& state) {
  return readiness_report(&state, false, monotonic_ms(), ReportFormat::plain).body;
}

using namespace std::chrono_literals;

// A TCP server on the test loop: answers each connection with `reply` once `trigger` was
// received (an empty reply: never answers), then closes it if `close_after`.
class CannedServer {
 public:
  CannedServer(uv_loop_t* loop, std::string trigger, std::string reply, bool close_after = true)
      : loop_(loop),
        trigger_(std::move(trigger)),
        reply_(std::move(reply)),
        close_after_(close_after) {
    uv_tcp_init(loop, &listener_);
    listener_.data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
    uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16, on_connection);
    sockaddr_in bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.sin_port);
  }

  int port() const { return port_; }
  int accepted() const { return accepted_; }
  const std::string& last_request() const { return last_request_; }
  void set_reply(std::string reply) { reply_ = std::move(reply); }

  void close() {
    if (closed_) return;
    closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    for (auto& c : clients_) close_client(*c);
  }

 private:
  struct Client {
    uv_tcp_t tcp{};
    uv_write_t write{};
    std::string in;
    std::string out;
    CannedServer* server = nullptr;
    bool replied = false;
    bool closing = false;
  };

  static void on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<CannedServer*>(listener->data);
    if (status != 0) return;
    auto client = std::make_unique<Client>();
    client->server = self;
    uv_tcp_init(self->loop_, &client->tcp);
    client->tcp.data = client.get();
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&client->tcp)) != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&client->tcp), nullptr);
      self->clients_.push_back(std::move(client));
      return;
    }
    ++self->accepted_;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&client->tcp), on_alloc, on_read);
    self->clients_.push_back(std::move(client));
  }

  static void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf) {
    static char storage[4096];
    *buf = uv_buf_init(storage, sizeof storage);
  }

  static void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
    auto* client = static_cast<Client*>(stream->data);
    CannedServer* self = client->server;
    if (n < 0) return self->close_client(*client);
    client->in.append(buf->base, static_cast<std::size_t>(n));
    if (client->replied || client->in.find(self->trigger_) == std::string::npos) return;
    self->last_request_ = client->in;
    client->replied = true;
    if (self->reply_.empty()) return;  // silent server
    client->out = self->reply_;
    uv_buf_t out = uv_buf_init(client->out.data(), static_cast<unsigned>(client->out.size()));
    client->write.data = client;
    uv_write(&client->write, stream, &out, 1, [](uv_write_t* req, int) {
      auto* c = static_cast<Client*>(req->data);
      if (c->server->close_after_) c->server->close_client(*c);
    });
  }

  void close_client(Client& client) {
    if (client.closing) return;
    client.closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&client.tcp), nullptr);
  }

  uv_loop_t* loop_;
  std::string trigger_;
  std::string reply_;
  bool close_after_;
  uv_tcp_t listener_{};
  int port_ = 0;
  int accepted_ = 0;
  bool closed_ = false;
  std::string last_request_;
  std::vector<std::unique_ptr<Client>> clients_;  // freed with the server, after the loop ran
};

// A port nobody listens on: bound, then closed.
int refused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

sockaddr_storage loopback(int port) {
  sockaddr_storage a{};
  uv_ip4_addr("127.0.0.1", port, reinterpret_cast<sockaddr_in*>(&a));
  return a;
}

class HealthLoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }

  void TearDown() override {
    for (auto& s : servers_) s->close();
    uv_run(&loop_, UV_RUN_DEFAULT);  // every close callback
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  CannedServer& server(std::string trigger, std::string reply, bool close_after = true) {
    servers_.push_back(
        std::make_unique<CannedServer>(&loop_, std::move(trigger), std::move(reply), close_after));
    return *servers_.back();
  }

  // Runs the loop until `done` or `limit` passed; returns done().
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    uv_timer_t tick;  // keeps UV_RUN_ONCE from blocking past the limit
    uv_timer_init(&loop_, &tick);
    uv_timer_start(
        &tick, [](uv_timer_t*) {}, 10, 10);
    const uint64_t deadline = uv_hrtime() + static_cast<uint64_t>(limit.count()) * 1000000;
    while (!done() && uv_hrtime() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);  // the tick's close callback
    return done();
  }

  ProbeResult attempt(Probe& probe) {
    std::optional<ProbeResult> result;
    int calls = 0;
    probe.start([&](ProbeResult r) {
      ++calls;
      result = std::move(r);
    });
    EXPECT_FALSE(result) << "done ran inside start()";
    EXPECT_TRUE(run_until([&] { return result.has_value(); }));
    EXPECT_EQ(calls, 1);
    return result.value_or(ProbeResult::failure("no result"));
  }

  void close(std::unique_ptr<Probe> probe) {
    bool closed = false;
    probe->close([&] { closed = true; });
    EXPECT_FALSE(closed) << "on_closed must be asynchronous";
    EXPECT_TRUE(run_until([&] { return closed; }));
  }

  uv_loop_t loop_{};
  std::vector<std::unique_ptr<CannedServer>> servers_;
};

const std::string kHttpOk =
    "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nready\n";
const std::string kHttp503 =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

// --- tcp -------------------------------------------------------------------------------

TEST_F(HealthLoopTest, TcpProbeConnectsAgainAndAgain) {
  CannedServer& s = server("never", "");
  auto probe = make_tcp_probe(&loop_, "127.0.0.1", static_cast<uint16_t>(s.port()), 2s);
  for (int i = 0; i < 3; ++i) {
    ProbeResult r = attempt(*probe);
    EXPECT_TRUE(r.ok) << r.reason;
  }
  EXPECT_TRUE(run_until([&] { return s.accepted() == 3; }));
  close(std::move(probe));
}

TEST_F(HealthLoopTest, TcpProbeRefused) {
  const int port = refused_port();
  auto probe = make_tcp_probe(&loop_, "127.0.0.1", static_cast<uint16_t>(port), 2s);
  ProbeResult r = attempt(*probe);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "connection refused (127.0.0.1:" + std::to_string(port) + ")");
  close(std::move(probe));
}

TEST_F(HealthLoopTest, TcpProbeResolvesNamesAndTriesEveryAddress) {
  CannedServer& s = server("never", "");
  // "localhost" may resolve to ::1 first, where nothing listens: the next address wins.
  auto probe = make_tcp_probe(&loop_, "localhost", static_cast<uint16_t>(s.port()), 2s);
  ProbeResult r = attempt(*probe);
  EXPECT_TRUE(r.ok) << r.reason;
  close(std::move(probe));
}

TEST_F(HealthLoopTest, TcpProbeUnresolvableName) {
  auto probe = make_tcp_probe(&loop_, "no-such-host.invalid", 80, 3s);
  ProbeResult r = attempt(*probe);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("cannot resolve no-such-host.invalid"), std::string::npos) << r.reason;
  close(std::move(probe));
}

// --- http ------------------------------------------------------------------------------

HttpProbeSpec http_spec(std::string expect = "") {
  HttpProbeSpec spec;
  spec.host_header = "app:3000";
  spec.path = "/healthz";
  spec.expect_body = std::move(expect);
  return spec;
}

TEST_F(HealthLoopTest, HttpProbeOkSendsGetWithHost) {
  CannedServer& s = server("\r\n\r\n", kHttpOk);
  auto probe = make_http_probe(&loop_, loopback(s.port()), http_spec("ready"), 2s);
  ProbeResult r = attempt(*probe);
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.reason, "HTTP 200");
  EXPECT_EQ(s.last_request().rfind("GET /healthz HTTP/1.1\r\nHost: app:3000\r\n", 0), 0u)
      << s.last_request();
  close(std::move(probe));
}

TEST_F(HealthLoopTest, HttpProbeStatusAndBodyFailures) {
  CannedServer& s = server("\r\n\r\n", kHttp503);
  auto probe = make_http_probe(&loop_, loopback(s.port()), http_spec(), 2s);
  ProbeResult r = attempt(*probe);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "HTTP 503");
  s.set_reply(kHttpOk);
  auto picky = make_http_probe(&loop_, loopback(s.port()), http_spec("healthy"), 2s);
  r = attempt(*picky);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "HTTP 200: body does not contain \"healthy\"");
  close(std::move(probe));
  close(std::move(picky));
}

TEST_F(HealthLoopTest, HttpProbeTimesOutOnSilentServer) {
  CannedServer& s = server("\r\n\r\n", "");
  auto probe = make_http_probe(&loop_, loopback(s.port()), http_spec(), 200ms);
  const uint64_t start = uv_hrtime();
  ProbeResult r = attempt(*probe);
  const uint64_t elapsed_ms = (uv_hrtime() - start) / 1000000;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "timeout after 200 ms");
  EXPECT_GE(elapsed_ms, 150u);
  EXPECT_LT(elapsed_ms, 1500u);
  close(std::move(probe));
}

TEST_F(HealthLoopTest, HttpProbeRefused) {
  auto probe = make_http_probe(&loop_, loopback(refused_port()), http_spec(), 2s);
  ProbeResult r = attempt(*probe);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("connection refused"), std::string::npos) << r.reason;
  close(std::move(probe));
}

TEST_F(HealthLoopTest, ClosingDuringAnAttemptNeverCallsDone) {
  CannedServer& s = server("\r\n\r\n", "");
  auto probe = make_http_probe(&loop_, loopback(s.port()), http_spec(), 5s);
  bool called = false;
  probe->start([&](ProbeResult) { called = true; });
  EXPECT_TRUE(run_until([&] { return s.accepted() == 1; }));
  close(std::move(probe));
  EXPECT_FALSE(called);
}

// --- redis -----------------------------------------------------------------------------

TEST_F(HealthLoopTest, RedisProbeAuthThenPing) {
  CannedServer& s = server("PING\r\n", "+OK\r\n+PONG\r\n");
  auto probe = make_redis_probe(&loop_, "127.0.0.1", static_cast<uint16_t>(s.port()), "pw", 2s);
  ProbeResult r = attempt(*probe);
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(s.last_request(), "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n");
  close(std::move(probe));
}

TEST_F(HealthLoopTest, RedisProbeReportsServerError) {
  CannedServer& s =
      server("PING\r\n", "-LOADING Redis is loading the dataset in memory\r\n", false);
  auto probe = make_redis_probe(&loop_, "127.0.0.1", static_cast<uint16_t>(s.port()), "", 2s);
  ProbeResult r = attempt(*probe);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "-LOADING Redis is loading the dataset in memory");
  close(std::move(probe));
}

// --- Checker ---------------------------------------------------------------------------

config::Check tcp_check(int port) {
  config::Check c;
  c.name = "queue";
  c.type = config::CheckType::tcp;
  c.target = "127.0.0.1:" + std::to_string(port);
  c.interval = 30ms;
  c.timeout = 1s;
  c.rise = 1;
  c.fall = 2;
  return c;
}

TEST_F(HealthLoopTest, CheckerPublishesInitialStateAndFlips) {
  CannedServer& s = server("never", "");
  std::vector<HealthStatePtr> states;
  auto checker = Checker::create(&loop_, {tcp_check(s.port())},
                                 [&](HealthStatePtr st) { states.push_back(st); });
  ASSERT_TRUE(checker) << checker.error().message;
  int results = 0;
  (*checker)->set_on_result(
      [&](const std::string&, const std::string&, const ProbeResult&) { ++results; });
  (*checker)->start();
  ASSERT_EQ(states.size(), 1u);  // the initial snapshot, synchronously
  EXPECT_FALSE(states[0]->ready(monotonic_ms()));
  EXPECT_EQ(plain_text(*states[0]), "fail queue (tcp): no result yet\n");

  ASSERT_TRUE(run_until([&] { return states.size() == 2; }));
  EXPECT_TRUE(states[1]->ready(monotonic_ms()));
  EXPECT_EQ(plain_text(*states[1]), "ok queue (tcp)\n");

  // Passing results do not publish again.
  const int seen = results;
  ASSERT_TRUE(run_until([&] { return results >= seen + 3; }));
  EXPECT_EQ(states.size(), 2u);

  s.close();  // now refused: two consecutive failures (fall = 2) flip it
  ASSERT_TRUE(run_until([&] { return states.size() == 3; }));
  EXPECT_FALSE(states[2]->ready(monotonic_ms()));
  EXPECT_EQ(states[2]->checks[0].health, Health::unhealthy);
  EXPECT_NE(states[2]->checks[0].reason.find("connection refused"), std::string::npos);
  EXPECT_EQ((*checker)->state(), states[2]);

  bool closed = false;
  (*checker)->stop([&] { closed = true; });
  EXPECT_TRUE(run_until([&] { return closed; }));
  EXPECT_TRUE((*checker)->closed());
}

TEST_F(HealthLoopTest, CheckerStartPeriodHoldsFailures) {
  config::Check c = tcp_check(refused_port());
  c.start_period = 10s;
  c.fall = 1;
  std::vector<HealthStatePtr> states;
  auto checker = Checker::create(&loop_, {c}, [&](HealthStatePtr st) { states.push_back(st); });
  ASSERT_TRUE(checker);
  int results = 0;
  (*checker)->set_on_result(
      [&](const std::string&, const std::string&, const ProbeResult&) { ++results; });
  (*checker)->start();
  ASSERT_TRUE(run_until([&] { return results >= 3; }));
  EXPECT_EQ(states.size(), 1u);  // failures in the start period flip nothing
  HealthStatePtr now = (*checker)->current();
  EXPECT_EQ(now->checks[0].health, Health::unknown);
  EXPECT_EQ(now->checks[0].reason.rfind("in start period: connection refused", 0), 0u)
      << now->checks[0].reason;
  bool closed = false;
  (*checker)->stop([&] { closed = true; });
  EXPECT_TRUE(run_until([&] { return closed; }));
}

TEST_F(HealthLoopTest, CheckerProbesEveryHostOfAnUpstream) {
  CannedServer& good = server("\r\n\r\n", kHttpOk);
  const int bad_port = refused_port();
  config::Check c;
  c.name = "app";
  c.type = config::CheckType::http;
  c.upstream = "app";
  c.path = "/healthz";
  c.interval = 30ms;
  c.timeout = 1s;
  c.rise = 1;
  c.fall = 1;
  HealthStatePtr last;
  auto checker = Checker::create(&loop_, {c}, [&](HealthStatePtr st) { last = st; });
  ASSERT_TRUE(checker);
  EXPECT_EQ((*checker)->upstreams(), std::vector<std::string>{"app"});
  config::Upstream upstream;
  upstream.name = "app";
  upstream.servers = {{"127.0.0.1", static_cast<uint16_t>(good.port())},
                      {"127.0.0.1", static_cast<uint16_t>(bad_port)}};
  HostSetPtr both = build_host_set(upstream, {{loopback(good.port())}, {loopback(bad_port)}});
  (*checker)->set_hosts("app", both);
  (*checker)->start();
  const std::string good_label = "127.0.0.1:" + std::to_string(good.port());
  const std::string bad_label = "127.0.0.1:" + std::to_string(bad_port);
  auto hosts_known = [&](std::size_t n) {
    return last && last->host_health.count("app") && last->host_health.at("app").size() == n;
  };
  ASSERT_TRUE(run_until([&] { return hosts_known(2); }));
  auto hosts = last->host_health.at("app");
  EXPECT_TRUE(hosts.at(good_label));
  EXPECT_FALSE(hosts.at(bad_label));
  EXPECT_TRUE(last->ready(monotonic_ms()));  // one healthy host is enough
  HostSetPtr marked = apply_health(both, *last);
  EXPECT_TRUE(marked->hosts[0].healthy);
  EXPECT_FALSE(marked->hosts[1].healthy);

  // Only the failing host is left: the check fails, the gone host is forgotten.
  (*checker)->set_hosts("app", build_host_set(upstream, {{}, {loopback(bad_port)}}));
  ASSERT_TRUE(run_until([&] { return !last->ready(monotonic_ms()); }));
  EXPECT_EQ(last->host_health.at("app").count(good_label), 0u);
  EXPECT_NE(last->checks[0].reason.find("no healthy host in upstream app: " + bad_label),
            std::string::npos)
      << last->checks[0].reason;

  bool closed = false;
  (*checker)->stop([&] { closed = true; });
  EXPECT_TRUE(run_until([&] { return closed; }));
}

// The implicit check of an upstream without [[check]] (config::checks_to_run): a TCP
// connect to each current host, min_healthy of them needed; readiness only.
TEST_F(HealthLoopTest, ImplicitTcpCheckFollowsTheHostsAndLeavesRotationAlone) {
  CannedServer& up = server("never", "");
  const int down_port = refused_port();
  config::Upstream upstream;
  upstream.name = "app";
  upstream.min_healthy = 2;
  upstream.servers = {{"127.0.0.1", static_cast<uint16_t>(up.port())},
                      {"127.0.0.1", static_cast<uint16_t>(down_port)}};
  config::Config cfg;
  cfg.upstreams = {upstream};
  std::vector<config::Check> checks = config::checks_to_run(cfg);
  ASSERT_EQ(checks.size(), 1u);
  checks[0].interval = 30ms;
  checks[0].timeout = 1s;
  checks[0].rise = 1;
  checks[0].fall = 1;
  HealthStatePtr last;
  auto checker = Checker::create(&loop_, checks, [&](HealthStatePtr st) { last = st; });
  ASSERT_TRUE(checker) << checker.error().message;
  EXPECT_EQ((*checker)->upstreams(), std::vector<std::string>{"app"});
  (*checker)->start();
  // No hosts yet: waiting, not ready.
  ASSERT_TRUE(last);
  EXPECT_FALSE(last->ready(monotonic_ms()));
  EXPECT_EQ(plain_text(*last),
            "fail upstream:app (tcp, implicit): waiting for the hosts of upstream app\n");

  HostSetPtr both = build_host_set(upstream, {{loopback(up.port())}, {loopback(down_port)}});
  (*checker)->set_hosts("app", both);
  const std::string down_label = "127.0.0.1:" + std::to_string(down_port);
  ASSERT_TRUE(run_until([&] {
    return last->checks[0].health == Health::unhealthy && last->checks[0].healthy_targets() == 1;
  }));
  EXPECT_FALSE(last->ready(monotonic_ms()));  // 1 of 2, min_healthy 2
  EXPECT_NE(last->checks[0].reason.find("1/2 hosts healthy in upstream app, need 2: " + down_label +
                                        ": connection refused"),
            std::string::npos)
      << last->checks[0].reason;
  EXPECT_TRUE(last->checks[0].implicit);
  // Readiness only: no host leaves the rotation because of it.
  EXPECT_EQ(last->host_health.count("app"), 0u);
  EXPECT_EQ(apply_health(both, *last), both);

  // Re-resolution drops the dead address and adds a live one: the probes follow.
  CannedServer& up2 = server("never", "");
  (*checker)->set_hosts("app",
                        build_host_set(upstream, {{loopback(up.port())}, {loopback(up2.port())}}));
  ASSERT_TRUE(run_until([&] { return last->ready(monotonic_ms()); }));
  EXPECT_EQ(last->checks[0].targets.size(), 2u);
  for (const TargetStatus& t : last->checks[0].targets) EXPECT_NE(t.label, down_label);
  EXPECT_TRUE(run_until([&] { return up2.accepted() >= 1; }));

  // Every host refusing: not ready.
  up.close();
  up2.close();
  ASSERT_TRUE(run_until([&] { return last->checks[0].reason.find("0/2") != std::string::npos; }));
  EXPECT_FALSE(last->ready(monotonic_ms()));
  EXPECT_NE(last->checks[0].reason.find("0/2 hosts healthy in upstream app, need 2"),
            std::string::npos)
      << last->checks[0].reason;

  bool closed = false;
  (*checker)->stop([&] { closed = true; });
  EXPECT_TRUE(run_until([&] { return closed; }));
}

TEST_F(HealthLoopTest, CheckerRejectsBadChecks) {
  config::Check tcp;
  tcp.name = "bad";
  tcp.type = config::CheckType::tcp;
  tcp.target = "no-port";
  auto r = Checker::create(&loop_, {tcp}, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.rfind("check bad: target \"no-port\"", 0), 0u) << r.error().message;

  config::Check http;
  http.name = "web";
  http.type = config::CheckType::http;
  EXPECT_FALSE(Checker::create(&loop_, {http}, nullptr));

  config::Check pg;
  pg.name = "db";
  pg.type = config::CheckType::postgres;
  pg.target = "host=db";
  pg.password_file = "/nonexistent/secret";
  r = Checker::create(&loop_, {pg}, nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("password_file"), std::string::npos);
}

// --- Resolver --------------------------------------------------------------------------

TEST_F(HealthLoopTest, ResolverReportsChangesAndKeepsAddressesOfFailingNames) {
  config::Upstream upstream;
  upstream.name = "app";
  upstream.resolve_interval = 20ms;
  upstream.servers = {{"localhost", 3000}, {"no-such-host.invalid", 80}};
  // At startup the failing name had an address; it must survive the failure.
  sockaddr_storage old{};
  uv_ip4_addr("10.9.9.9", 80, reinterpret_cast<sockaddr_in*>(&old));
  HostSetPtr initial = build_host_set(upstream, {{}, {old}});
  std::vector<HostSetPtr> changes;
  Resolver resolver(&loop_, {upstream}, {initial}, [&](const std::string& name, HostSetPtr set) {
    EXPECT_EQ(name, "app");
    changes.push_back(set);
  });
  resolver.start();
  ASSERT_TRUE(run_until([&] { return !changes.empty(); }));
  std::vector<std::string> labels;
  for (const Host& h : changes[0]->hosts) labels.push_back(h.label);
  EXPECT_NE(std::find(labels.begin(), labels.end(), "10.9.9.9:80"), labels.end());
  EXPECT_TRUE(std::find(labels.begin(), labels.end(), "127.0.0.1:3000") != labels.end() ||
              std::find(labels.begin(), labels.end(), "[::1]:3000") != labels.end());
  // Later rounds find the same members: no more calls.
  const uint64_t until = uv_hrtime() + 150'000'000;
  run_until([&] { return uv_hrtime() > until; });
  EXPECT_EQ(changes.size(), 1u);
  bool closed = false;
  resolver.stop([&] { closed = true; });
  EXPECT_TRUE(run_until([&] { return closed; }));
}

// --- healthcheck client ----------------------------------------------------------------

// A one-connection blocking server on a thread: reads the request, sends `reply` (unless
// empty: then holds the connection for `hold`).
class ThreadServer {
 public:
  explicit ThreadServer(std::string reply, std::chrono::milliseconds hold = 0ms) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 4);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, reply = std::move(reply), hold] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      std::string in;
      while (in.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      request_ = in;
      if (!reply.empty()) {
        ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      } else {
        std::this_thread::sleep_for(hold);
      }
      ::close(c);
    });
  }
  ~ThreadServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string request() const { return request_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

// Runs the client with its output captured.
std::pair<int, std::string> healthcheck(const std::string& url, std::chrono::milliseconds timeout) {
  std::FILE* out = std::tmpfile();
  int rc = run_healthcheck(url, timeout, out);
  std::rewind(out);
  std::string text;
  char buf[512];
  while (std::fgets(buf, sizeof buf, out)) text += buf;
  std::fclose(out);
  return {rc, text};
}

TEST(HealthHealthcheckClientTest, TwoHundredIsZero) {
  ThreadServer server("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\nok db (postgres)\n");
  auto [rc, out] = healthcheck("http://127.0.0.1:" + std::to_string(server.port()) + "/readyz", 2s);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\nok db (postgres)\n");
}

TEST(HealthHealthcheckClientTest, FiveHundredThreeIsOne) {
  ThreadServer server(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 28\r\n\r\nfail db (postgres): "
      "timeout\n");
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/readyz";
  auto [rc, out] = healthcheck(url, 2s);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out, "HTTP/1.1 503 Service Unavailable\nfail db (postgres): timeout\n");
}

TEST(HealthHealthcheckClientTest, RefusedIsOne) {
  auto [rc, out] = healthcheck("http://127.0.0.1:" + std::to_string(refused_port()) + "/", 2s);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out.rfind("healthcheck: cannot connect to 127.0.0.1:", 0), 0u) << out;
}

TEST(HealthHealthcheckClientTest, SilentServerTimesOut) {
  ThreadServer server("", 1s);
  const auto start = std::chrono::steady_clock::now();
  auto [rc, out] = healthcheck("http://127.0.0.1:" + std::to_string(server.port()) + "/", 300ms);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out, "healthcheck: timeout waiting for the response\n");
  EXPECT_LT(elapsed, 2s);
}

TEST(HealthHealthcheckClientTest, BadUrlIsOne) {
  auto [rc, out] = healthcheck("ftp://x/", 1s);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out, "healthcheck: only http:// URLs are supported\n");
}

}  // namespace
}  // namespace gh::health
