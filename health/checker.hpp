// Checker: runs the [[check]] list of one Config on the control thread's loop and
// publishes the resulting HealthState.
//
// Each check runs one probe attempt every `interval` (plus a random offset in [0, jitter]
// for each run, the first one included), each attempt bounded by `timeout`, its results
// filtered by rise/fall hysteresis and start_period (see health_state.hpp: the state
// starts "unknown", which is not ready, and the first counted result sets it).
// An http check names an upstream: it probes every host of that upstream's current
// HostSet (fed through set_hosts) and tracks each host by label; the check itself is
// healthy while at least min_healthy hosts are (per-host states go to
// HealthState::host_health so the proxy can take failing hosts out of rotation). An
// implicit tcp check (config::checks_to_run) probes an upstream's hosts the same way, by
// connecting to each, but only for readiness: it feeds no host_health.
//
// on_change receives a new immutable snapshot once at start() and then whenever a check or
// a host flips. Threads: everything here runs on `loop` (the control thread's); nothing
// blocks it. Ownership: the creator owns the Checker; stop(on_closed) closes every probe
// and timer, and the Checker may be destroyed only once closed() (or after on_closed ran,
// e.g. from inside it). A Checker that was never started has no handles and may be
// destroyed at once.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"
#include "health/health_state.hpp"
#include "health/host_set.hpp"
#include "health/probe.hpp"
#include "health/uv_util.hpp"

namespace gh::health {

class Checker {
 public:
  using OnChange = std::function<void(HealthStatePtr)>;
  // Every probe result, before hysteresis (host = "" for checks without an upstream).
  using OnResult =
      std::function<void(const std::string& check, const std::string& host, const ProbeResult&)>;

  // Validates targets and reads password files (blocking: call at config load time).
  static Result<std::unique_ptr<Checker>> create(uv_loop_t* loop,
                                                 const std::vector<config::Check>& checks,
                                                 OnChange on_change);
  struct Key {
    explicit Key() = default;
  };
  Checker(Key, uv_loop_t* loop, OnChange on_change);  // use create()
  ~Checker();
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  void set_on_result(OnResult on_result) { on_result_ = std::move(on_result); }

  // Starts probing and publishes the initial snapshot (every check unknown).
  void start();
  // The current hosts of `upstream` (initial set and every membership change); probes
  // follow: new hosts get a probe, gone hosts lose theirs. Before or after start().
  void set_hosts(const std::string& upstream, HostSetPtr hosts);
  // Upstreams whose hosts http checks probe (the ones set_hosts matters for).
  std::vector<std::string> upstreams() const;

  // The last published snapshot (null before start()).
  HealthStatePtr state() const { return state_; }
  // A snapshot with the latest failure reasons, even those that did not flip anything.
  HealthStatePtr current() const { return build_state(); }

  // Closes every probe and timer; on_closed runs once all close callbacks did.
  void stop(std::function<void()> on_closed = {});
  bool closed() const { return closed_; }

 private:
  struct Run;
  struct Target;

  void add_target(Run& run, std::string label, const Host* host);
  void activate(Target& target, uint64_t delay_ms);
  void retire(Run& run, std::size_t index);
  std::unique_ptr<Probe> make_probe(const Run& run, const Host* host) const;
  void run_probe(Target& target);
  void on_probe_done(Target& target, ProbeResult result);
  void schedule_next(Target& target);
  bool update_run(Run& run);
  static std::string failing_hosts_reason(const Run& run, unsigned healthy, unsigned needed);
  HealthStatePtr build_state() const;
  void publish();
  uint64_t jitter_ms(const Run& run);
  void maybe_closed();

  uv_loop_t* loop_;
  OnChange on_change_;
  OnResult on_result_;
  std::vector<std::unique_ptr<Run>> runs_;
  std::vector<std::unique_ptr<Target>> retiring_;  // probes closing
  HealthStatePtr state_;
  std::mt19937_64 random_;
  Graveyard graveyard_;
  bool started_ = false;
  bool stopping_ = false;
  bool graveyard_drained_ = false;
  bool closed_ = false;
  std::function<void()> on_closed_;
};

}  // namespace gh::health
