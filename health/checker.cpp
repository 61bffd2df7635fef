#include "health/checker.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "health/probe_logic.hpp"

namespace gh::health {

using Clock = std::chrono::system_clock;

// One check and its targets: one target for tcp/redis/postgres, one per host of its upstream
// for http and implicit tcp checks.
struct Checker::Run {
  config::Check check;
  std::string secret;        // from password_file
  config::HostPort address;  // tcp/redis target
  std::vector<std::unique_ptr<Target>> targets;
  bool hosts_known = false;  // upstream checks: set_hosts was called for the upstream
  Health health = Health::unknown;
  std::string reason = "no result yet";
  Clock::time_point since = Clock::now();
};

// What is probed: the check's target, or one host of its upstream.
struct Checker::Target {
  Target(Checker& c, Run& r, std::string l) : checker(c), run(r), label(std::move(l)) {}
  Checker& checker;
  Run& run;
  std::string label;  // host label; "" for checks without an upstream
  Host host;          // upstream checks
  std::unique_ptr<Probe> probe;
  std::unique_ptr<uv_timer_t> timer;
  HealthTracker tracker{1, 1, 0, 0};  // replaced on activation
  uint64_t attempt_started_ms = 0;
  TargetStatus status;  // details for /readyz?verbose, JSON and /metrics

  // The latest failure; "" after a pass.
  const std::string& reason() const {
    static const std::string none;
    return status.consecutive_failed > 0 ? status.last_error : none;
  }
};

namespace {

constexpr std::size_t kHostsInReason = 3;

// Probes every host of an upstream (http, implicit tcp) rather than one target.
bool per_host(const config::Check& check) {
  return !check.upstream.empty();
}

Result<void> validate(const config::Check& check, config::HostPort& address) {
  if (check.type == config::CheckType::tcp && per_host(check)) return {};
  switch (check.type) {
    case config::CheckType::tcp:
    case config::CheckType::redis: {
      auto parsed = config::parse_host_port(check.target);
      if (!parsed) return fail("target \"" + check.target + "\": " + parsed.error().message);
      address = *parsed;
      return {};
    }
    case config::CheckType::postgres:
      return check_postgres_target(check.target);
    case config::CheckType::http:
      if (check.upstream.empty()) return fail("an http check needs `upstream`");
      return {};
  }
  return {};
}

void record_details(TargetStatus& status, const ProbeResult& result, uint64_t latency_ms) {
  status.has_result = true;
  status.last_result_ms = monotonic_ms();
  status.latency_ms = latency_ms;
  if (result.ok) {
    ++status.consecutive_ok;
    status.consecutive_failed = 0;
  } else {
    ++status.consecutive_failed;
    status.consecutive_ok = 0;
    status.last_error = result.reason;
  }
}

// 2 intervals without a result (plus the attempt's own bounds) means a stuck prober.
uint64_t stale_after_ms(const config::Check& check) {
  return static_cast<uint64_t>(2 * check.interval.count() + check.timeout.count() +
                               std::max<int64_t>(0, check.jitter.count()));
}

// The state and reason of a check without an upstream: its single target's.
std::pair<Health, std::string> single_state(Health health, const std::string& reason) {
  if (health == Health::healthy) return {health, ""};
  if (health == Health::unknown) {
    return {health, reason.empty() ? "no result yet" : "in start period: " + reason};
  }
  return {health, reason};
}

}  // namespace

Checker::Checker(Key, uv_loop_t* loop, OnChange on_change)
    : loop_(loop), on_change_(std::move(on_change)), random_(std::random_device{}()) {}

Checker::~Checker() = default;

Result<std::unique_ptr<Checker>> Checker::create(uv_loop_t* loop,
                                                 const std::vector<config::Check>& checks,
                                                 OnChange on_change) {
  auto checker = std::make_unique<Checker>(Key{}, loop, std::move(on_change));
  for (const config::Check& check : checks) {
    auto run = std::make_unique<Run>();
    run->check = check;
    if (auto ok = validate(check, run->address); !ok) {
      return fail("check " + check.name + ": " + ok.error().message);
    }
    if (!check.password_file.empty()) {
      auto secret = read_secret_file(check.password_file);
      if (!secret)
        return fail("check " + check.name + ": password_file: " + secret.error().message);
      run->secret = std::move(*secret);
    }
    if (!per_host(check)) checker->add_target(*run, "", nullptr);
    checker->runs_.push_back(std::move(run));
  }
  return checker;
}

std::vector<std::string> Checker::upstreams() const {
  std::vector<std::string> names;
  for (const auto& run : runs_) {
    const std::string& u = run->check.upstream;
    if (!u.empty() && std::find(names.begin(), names.end(), u) == names.end()) names.push_back(u);
  }
  return names;
}

void Checker::start() {
  if (started_ || stopping_) return;
  started_ = true;
  for (auto& run : runs_) {
    for (auto& target : run->targets) activate(*target, jitter_ms(*run));
    update_run(*run);
  }
  publish();
}

void Checker::set_hosts(const std::string& upstream, HostSetPtr hosts) {
  if (stopping_) return;
  bool changed = false;
  for (auto& run : runs_) {
    if (!per_host(run->check) || run->check.upstream != upstream) continue;
    run->hosts_known = true;
    std::unordered_set<std::string> wanted;
    if (hosts) {
      for (const Host& host : hosts->hosts) wanted.insert(host.label);
    }
    for (std::size_t i = run->targets.size(); i-- > 0;) {
      if (wanted.count(run->targets[i]->label)) continue;
      retire(*run, i);
      changed = true;
    }
    for (const Host& host : hosts ? hosts->hosts : std::vector<Host>{}) {
      const bool known = std::any_of(run->targets.begin(), run->targets.end(),
                                     [&](const auto& t) { return t->label == host.label; });
      if (!known) add_target(*run, host.label, &host);
    }
    changed = update_run(*run) || changed;
  }
  if (changed && started_) publish();
}

void Checker::add_target(Run& run, std::string label, const Host* host) {
  auto target = std::make_unique<Target>(*this, run, std::move(label));
  if (host) target->host = *host;
  Target& added = *target;
  run.targets.push_back(std::move(target));
  if (started_) activate(added, jitter_ms(run));
}

// Creates the target's probe and timer and schedules its first attempt.
void Checker::activate(Target& target, uint64_t delay_ms) {
  const config::Check& c = target.run.check;
  target.tracker = HealthTracker(c.rise, c.fall, static_cast<uint64_t>(c.start_period.count()),
                                 loop_now_ms(loop_));
  target.probe = make_probe(target.run, target.label.empty() ? nullptr : &target.host);
  target.status.label = target.label;
  target.status.last_result_ms = monotonic_ms();  // staleness counts from here
  target.timer = make_timer(loop_, &target);
  uv_timer_start(
      target.timer.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Target*>(t->data);
        self->checker.run_probe(*self);
      },
      delay_ms, 0);
}

std::unique_ptr<Probe> Checker::make_probe(const Run& run, const Host* host) const {
  const config::Check& c = run.check;
  switch (c.type) {
    case config::CheckType::tcp:
      if (host) return make_tcp_probe(loop_, host->address, c.timeout);
      return make_tcp_probe(loop_, run.address.host, run.address.port, c.timeout);
    case config::CheckType::redis:
      return make_redis_probe(loop_, run.address.host, run.address.port, run.secret, c.timeout);
    case config::CheckType::http: {
      HttpProbeSpec spec;
      spec.host_header = host->name.empty() ? host->label : host->name;
      spec.path = c.path;
      spec.status_min = c.expect_status_min;
      spec.status_max = c.expect_status_max;
      spec.expect_body = c.expect_body;
      return make_http_probe(loop_, host->address, std::move(spec), c.timeout);
    }
    case config::CheckType::postgres: {
      PostgresProbeSpec spec{c.target, run.secret, c.query, c.require_primary};
      auto probe = make_postgres_probe(loop_, std::move(spec), c.timeout);
      return probe ? std::move(*probe) : nullptr;  // validated in create()
    }
  }
  return nullptr;
}

// A target leaves (its host is gone, or stop()): its timer and probe close; the Target
// itself is freed once the probe reports closed.
void Checker::retire(Run& run, std::size_t index) {
  std::unique_ptr<Target> target = std::move(run.targets[index]);
  run.targets.erase(run.targets.begin() + static_cast<std::ptrdiff_t>(index));
  if (target->timer) {
    uv_timer_stop(target->timer.get());
    graveyard_.bury(std::move(target->timer));
  }
  if (!target->probe) return;  // never activated: nothing to close
  Target* raw = target.get();
  retiring_.push_back(std::move(target));
  raw->probe->close([this, raw] {
    auto it = std::find_if(retiring_.begin(), retiring_.end(),
                           [raw](const auto& t) { return t.get() == raw; });
    if (it != retiring_.end()) retiring_.erase(it);
    maybe_closed();
  });
}

void Checker::run_probe(Target& target) {
  target.attempt_started_ms = loop_now_ms(loop_);
  target.probe->start(
      [&target](ProbeResult result) { target.checker.on_probe_done(target, std::move(result)); });
}

void Checker::on_probe_done(Target& target, ProbeResult result) {
  if (on_result_) on_result_(target.run.check.name, target.label, result);
  record_details(target.status, result, loop_now_ms(loop_) - target.attempt_started_ms);
  bool flipped = target.tracker.record(result.ok, loop_now_ms(loop_));
  if (flipped && !target.label.empty()) {
    GH_LOG_INFO("check %s: host %s is now %s%s%s", target.run.check.name.c_str(),
                target.label.c_str(), result.ok ? "healthy" : "unhealthy", result.ok ? "" : ": ",
                target.reason().c_str());
  }
  flipped = update_run(target.run) || flipped;
  schedule_next(target);
  if (flipped) publish();
}

void Checker::schedule_next(Target& target) {
  const uint64_t interval = static_cast<uint64_t>(target.run.check.interval.count());
  const uint64_t elapsed = loop_now_ms(loop_) - target.attempt_started_ms;
  const uint64_t delay = (interval > elapsed ? interval - elapsed : 0) + jitter_ms(target.run);
  uv_timer_start(
      target.timer.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Target*>(t->data);
        self->checker.run_probe(*self);
      },
      delay, 0);
}

// Recomputes a check's state from its targets; true when its health changed.
bool Checker::update_run(Run& run) {
  Health health = Health::unknown;
  std::string reason;
  if (!per_host(run.check)) {
    const Target& t = *run.targets.front();
    std::tie(health, reason) = single_state(t.tracker.state(), t.reason());
  } else if (!run.hosts_known) {
    reason = "waiting for the hosts of upstream " + run.check.upstream;
  } else if (run.targets.empty()) {
    health = Health::unhealthy;
    reason = "upstream " + run.check.upstream + " has no hosts";
  } else {
    auto count = [&](Health h) {
      return std::count_if(run.targets.begin(), run.targets.end(),
                           [h](const auto& t) { return t->tracker.state() == h; });
    };
    const auto healthy = static_cast<unsigned>(count(Health::healthy));
    const auto unknown = static_cast<unsigned>(count(Health::unknown));
    const unsigned needed = std::max(1u, run.check.min_healthy);
    if (healthy >= needed) {
      health = Health::healthy;
    } else if (healthy + unknown >= needed) {
      reason = "no result yet";
    } else {
      health = Health::unhealthy;
      reason = failing_hosts_reason(run, healthy, needed);
    }
  }
  run.reason = reason;
  if (health == run.health) return false;
  GH_LOG_INFO(
      "check %s (%s) is now %s%s%s", run.check.name.c_str(), check_type_name(run.check.type),
      health == Health::healthy ? "healthy" : (health == Health::unknown ? "unknown" : "unhealthy"),
      reason.empty() ? "" : ": ", reason.c_str());
  run.health = health;
  run.since = Clock::now();
  return true;
}

// "no healthy host in upstream app: 127.0.0.1:8081: HTTP 500; ..." or, with min_healthy,
// "1/3 hosts healthy in upstream app, need 2: ...".
std::string Checker::failing_hosts_reason(const Run& run, unsigned healthy, unsigned needed) {
  std::string reason = healthy == 0 && needed == 1
                           ? "no healthy host in upstream " + run.check.upstream + ":"
                           : std::to_string(healthy) + "/" + std::to_string(run.targets.size()) +
                                 " hosts healthy in upstream " + run.check.upstream + ", need " +
                                 std::to_string(needed) + ":";
  std::size_t listed = 0;
  for (const auto& target : run.targets) {
    if (target->tracker.state() == Health::healthy || listed == kHostsInReason) continue;
    reason += " " + target->label + ": " +
              (target->reason().empty() ? std::string("no result yet") : target->reason()) + ";";
    ++listed;
  }
  const std::size_t failing = run.targets.size() - healthy;
  if (failing > listed) {
    reason += " and " + std::to_string(failing - listed) + " more";
  } else {
    reason.pop_back();
  }
  return reason;
}

HealthStatePtr Checker::build_state() const {
  auto state = std::make_shared<HealthState>();
  for (const auto& run : runs_) {
    CheckStatus status;
    status.name = run->check.name;
    status.type = run->check.type;
    status.required = run->check.required;
    status.health = run->health;
    status.reason = run->reason;
    status.upstream = run->check.upstream;
    status.min_healthy = run->check.min_healthy;
    status.implicit = run->check.implicit;
    status.since = run->since;
    status.stale_after_ms = stale_after_ms(run->check);
    for (const auto& target : run->targets) {
      status.targets.push_back(target->status);
      status.targets.back().health = target->tracker.state();
    }
    state->checks.push_back(std::move(status));
    // Implicit checks count for readiness only: passive health handles rotation there.
    if (!per_host(run->check) || run->check.implicit) continue;
    auto& hosts = state->host_health[run->check.upstream];
    for (const auto& target : run->targets) {
      const Health h = target->tracker.state();
      if (h == Health::unknown) continue;
      // Several checks on one upstream: a host is healthy only if all of them say so.
      auto [it, inserted] = hosts.emplace(target->label, h == Health::healthy);
      if (!inserted) it->second = it->second && h == Health::healthy;
    }
  }
  return state;
}

void Checker::publish() {
  state_ = build_state();
  if (on_change_) on_change_(state_);
}

uint64_t Checker::jitter_ms(const Run& run) {
  const auto jitter = static_cast<uint64_t>(std::max<int64_t>(0, run.check.jitter.count()));
  if (jitter == 0) return 0;
  return std::uniform_int_distribution<uint64_t>(0, jitter)(random_);
}

void Checker::stop(std::function<void()> on_closed) {
  if (stopping_) return;
  stopping_ = true;
  on_closed_ = std::move(on_closed);
  for (auto& run : runs_) {
    while (!run->targets.empty()) retire(*run, run->targets.size() - 1);
  }
  graveyard_.on_empty(loop_, [this] {
    graveyard_drained_ = true;
    maybe_closed();
  });
}

void Checker::maybe_closed() {
  if (!stopping_ || !graveyard_drained_ || !retiring_.empty() || closed_) return;
  closed_ = true;
  auto on_closed = std::move(on_closed_);
  on_closed_ = nullptr;
  if (on_closed) on_closed();  // may destroy this Checker
}

}  // namespace gh::health
