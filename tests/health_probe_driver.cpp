// health_probe_driver: runs one health check (health::Checker, plus health::Resolver for
// http checks) on its own libuv loop for a while and prints what happens, one line each,
// flushed at once, for tests/integration/test_health_probes.py:
//
//   RESULT <ms> <check> <host|-> ok|fail <reason>     every probe result
//   STATE <ms> ready=<0|1>                            every published snapshot, followed by
//   CHECK <ms> <check> ok|fail|unknown <reason>       one line per check and
//   HOST <ms> <upstream> <label> ok|fail              one line per host with a known state
//   HOSTS <ms> <upstream> <label,label,...>           a membership change from the Resolver
//   CLOSED loop_close=<rc>                            at exit, after everything closed
//
// <ms> counts from the start. SIGTERM/SIGINT end the run early. Exit code 0 unless the
// arguments are wrong (2) or the check cannot be built (1).
#include <uv.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "health/checker.hpp"
#include "health/health_state.hpp"
#include "health/host_set.hpp"
#include "health/resolver.hpp"

namespace {

using gh::config::Check;
using gh::config::CheckType;

struct Options {
  Check check;
  std::vector<std::string> servers;  // http: the upstream's servers
  gh::config::Duration duration = std::chrono::seconds(10);
  gh::config::Duration resolve_interval = std::chrono::seconds(5);
};

void usage() {
  std::fprintf(stderr,
               "usage: health_probe_driver --type tcp|http|redis|postgres [--name N] [--target T]\n"
               "  [--server HOST:PORT]... (http) [--path P] [--status MIN-MAX] [--expect-body S]\n"
               "  [--password-file F] [--query Q] [--require-primary] [--optional]\n"
               "  [--interval D] [--timeout D] [--jitter D] [--start-period D] [--rise N]\n"
               "  [--fall N] [--duration D] [--resolve-interval D]\n");
}

bool parse_type(const std::string& text, CheckType& type) {
  if (text == "tcp")
    type = CheckType::tcp;
  else if (text == "http")
    type = CheckType::http;
  else if (text == "redis")
    type = CheckType::redis;
  else if (text == "postgres")
    type = CheckType::postgres;
  else
    return false;
  return true;
}

bool parse_duration(const std::string& text, gh::config::Duration& out) {
  auto d = gh::config::parse_duration(text);
  if (d) out = *d;
  return d.has_value();
}

bool parse_status(const std::string& text, Check& check) {
  const std::size_t dash = text.find('-');
  check.expect_status_min = std::atoi(text.substr(0, dash).c_str());
  check.expect_status_max =
      dash == std::string::npos ? check.expect_status_min : std::atoi(text.c_str() + dash + 1);
  return check.expect_status_min > 0 && check.expect_status_max >= check.expect_status_min;
}

bool parse_option(Options& o, const std::string& key, const std::string& value) {
  Check& c = o.check;
  if (key == "--type") return parse_type(value, c.type);
  if (key == "--name") return c.name = value, true;
  if (key == "--target") return c.target = value, true;
  if (key == "--server") return o.servers.push_back(value), true;
  if (key == "--path") return c.path = value, true;
  if (key == "--status") return parse_status(value, c);
  if (key == "--expect-body") return c.expect_body = value, true;
  if (key == "--password-file") return c.password_file = value, true;
  if (key == "--query") return c.query = value, true;
  if (key == "--interval") return parse_duration(value, c.interval);
  if (key == "--timeout") return parse_duration(value, c.timeout);
  if (key == "--jitter") return parse_duration(value, c.jitter);
  if (key == "--start-period") return parse_duration(value, c.start_period);
  if (key == "--rise") return (c.rise = static_cast<unsigned>(std::atoi(value.c_str()))) > 0;
  if (key == "--fall") return (c.fall = static_cast<unsigned>(std::atoi(value.c_str()))) > 0;
  if (key == "--duration") return parse_duration(value, o.duration);
  if (key == "--resolve-interval") return parse_duration(value, o.resolve_interval);
  return false;
}

bool parse_args(int argc, char** argv, Options& o) {
  o.check.name = "check";
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--require-primary") {
      o.check.require_primary = true;
    } else if (key == "--optional") {
      o.check.required = false;
    } else if (i + 1 >= argc || !parse_option(o, key, argv[++i])) {
      std::fprintf(stderr, "bad or incomplete option: %s\n", key.c_str());
      return false;
    }
  }
  if (o.check.type == CheckType::http) o.check.upstream = "app";
  return true;
}

class Driver {
 public:
  explicit Driver(Options options) : options_(std::move(options)) {}

  int run() {
    uv_loop_init(&loop_);
    start_ms_ = uv_hrtime() / 1000000;
    auto checker = gh::health::Checker::create(
        &loop_, {options_.check}, [this](gh::health::HealthStatePtr s) { print_state(*s); });
    if (!checker) {
      std::printf("ERROR %s\n", checker.error().message.c_str());
      uv_loop_close(&loop_);
      return 1;
    }
    checker_ = std::move(*checker);
    checker_->set_on_result([this](const std::string& check, const std::string& host,
                                   const gh::health::ProbeResult& r) {
      line("RESULT %llu %s %s %s %s", ms(), check.c_str(), host.empty() ? "-" : host.c_str(),
           r.ok ? "ok" : "fail", r.reason.c_str());
    });
    start_resolver();
    checker_->start();
    start_timers();
    uv_run(&loop_, UV_RUN_DEFAULT);
    const int rc = uv_loop_close(&loop_);
    line("CLOSED loop_close=%d", rc);
    return 0;
  }

 private:
  void start_resolver() {
    if (options_.check.type != CheckType::http) return;
    gh::config::Upstream upstream;
    upstream.name = "app";
    upstream.resolve_interval = options_.resolve_interval;
    for (const std::string& s : options_.servers) {
      if (auto hp = gh::config::parse_host_port(s)) upstream.servers.push_back(*hp);
    }
    std::vector<std::string> warnings;
    gh::health::HostSetPtr initial = gh::health::resolve_upstream(upstream, warnings);
    for (const std::string& w : warnings) line("WARN %s", w.c_str());
    checker_->set_hosts("app", initial);
    resolver_ = std::make_unique<gh::health::Resolver>(
        &loop_, std::vector<gh::config::Upstream>{upstream},
        std::vector<gh::health::HostSetPtr>{initial},
        [this](const std::string& name, gh::health::HostSetPtr hosts) {
          std::string labels;
          for (const auto& h : hosts->hosts) labels += (labels.empty() ? "" : ",") + h.label;
          line("HOSTS %llu %s %s", ms(), name.c_str(), labels.c_str());
          checker_->set_hosts(name, hosts);
        });
    resolver_->start();
  }

  void start_timers() {
    uv_timer_init(&loop_, &end_timer_);
    end_timer_.data = this;
    uv_timer_start(
        &end_timer_, [](uv_timer_t* t) { static_cast<Driver*>(t->data)->finish(); },
        static_cast<uint64_t>(options_.duration.count()), 0);
    for (auto* s : {&sigterm_, &sigint_}) {
      uv_signal_init(&loop_, s);
      s->data = this;
    }
    auto on_signal = [](uv_signal_t* s, int) { static_cast<Driver*>(s->data)->finish(); };
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_start(&sigint_, on_signal, SIGINT);
  }

  void finish() {
    if (finishing_) return;
    finishing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&end_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
    if (resolver_) resolver_->stop();
    checker_->stop();  // the loop ends once every handle closed
  }

  void print_state(const gh::health::HealthState& s) {
    const unsigned long long now = ms();
    line("STATE %llu ready=%d", now, s.ready(gh::monotonic_ms()) ? 1 : 0);
    for (const auto& c : s.checks) {
      const char* word = c.health == gh::health::Health::healthy     ? "ok"
                         : c.health == gh::health::Health::unhealthy ? "fail"
                                                                     : "unknown";
      line("CHECK %llu %s %s %s", now, c.name.c_str(), word, c.reason.c_str());
    }
    for (const auto& [upstream, hosts] : s.host_health) {
      for (const auto& [label, healthy] : hosts) {
        line("HOST %llu %s %s %s", now, upstream.c_str(), label.c_str(), healthy ? "ok" : "fail");
      }
    }
  }

  unsigned long long ms() { return uv_hrtime() / 1000000 - start_ms_; }

  void line(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    va_list args;
    va_start(args, fmt);
    std::vprintf(fmt, args);
    va_end(args);
    std::printf("\n");
    std::fflush(stdout);
  }

  Options options_;
  uv_loop_t loop_{};
  uint64_t start_ms_ = 0;
  std::unique_ptr<gh::health::Checker> checker_;
  std::unique_ptr<gh::health::Resolver> resolver_;
  uv_timer_t end_timer_{};
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  bool finishing_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_args(argc, argv, options)) {
    usage();
    return 2;
  }
  return Driver(std::move(options)).run();
}
