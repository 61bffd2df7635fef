// Health state: the pure rules behind the Checker and the immutable snapshot it publishes.
//
//   * Hysteresis: rise/fall. The state starts "unknown" (not ready); the first counted
//     result sets it at once (so a dependency that is up is ready after one probe, and
//     one that is down fails /readyz after one probe); from then on `rise` consecutive
//     passes are needed to become healthy and `fall` consecutive failures to become
//     unhealthy.
//   * HealthTracker adds start_period (Docker semantics): failures before the first pass
//     and within start_period of the target's start do not count at all (the state stays
//     where it was); the first pass ends the start period early.
//   * HealthState: what /readyz shows and what the proxy uses to mark hosts; built by the
//     Checker, never changed after publication, shared as shared_ptr<const HealthState>.
// Pure; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "health/host_set.hpp"

namespace gh::health {

enum class Health { unknown, healthy, unhealthy };

class Hysteresis {
 public:
  Hysteresis(unsigned rise, unsigned fall);
  // Records one result; true when the state changed (including unknown -> known).
  bool record(bool ok);
  Health state() const { return state_; }

 private:
  unsigned rise_;
  unsigned fall_;
  unsigned streak_ = 0;  // consecutive results against the current state
  Health state_ = Health::unknown;
};

class HealthTracker {
 public:
  HealthTracker(unsigned rise, unsigned fall, uint64_t start_period_ms, uint64_t started_ms);
  // True when the state changed. `now_ms` on the same clock as `started_ms`.
  bool record(bool ok, uint64_t now_ms);
  // Whether a failure at `now_ms` would be ignored.
  bool in_start_period(uint64_t now_ms) const;
  Health state() const { return hysteresis_.state(); }

 private:
  Hysteresis hysteresis_;
  uint64_t start_period_end_ms_;
  bool passed_once_ = false;
};

const char* check_type_name(config::CheckType type);

// One probed target of a check: the check's own target, or one host of its upstream.
struct TargetStatus {
  std::string label;  // host label; "" for checks without an upstream
  Health health = Health::unknown;
  std::string last_error;       // the latest failure, kept after recovery ("" if none yet)
  uint64_t latency_ms = 0;      // the latest attempt's duration
  unsigned consecutive_ok = 0;  // raw results in a row, before rise/fall
  unsigned consecutive_failed = 0;
  // Monotonic ms (gh::monotonic_ms) of the latest result; before the first one, when
  // probing started (so a prober that never answers goes stale too).
  uint64_t last_result_ms = 0;
  bool has_result = false;
};

struct CheckStatus {
  std::string name;
  config::CheckType type = config::CheckType::tcp;
  bool required = true;
  Health health = Health::unknown;  // unknown counts as not healthy
  // The latest failure ("28P01 password authentication failed ..."), "no result yet",
  // or for an upstream check a summary of its failing hosts; empty when healthy.
  std::string reason;
  std::string upstream;      // upstream checks: the upstream whose hosts are probed
  unsigned min_healthy = 1;  // upstream checks: hosts that must pass
  bool implicit = false;     // the implicit tcp check of an upstream without [[check]]
  std::chrono::system_clock::time_point since;  // when `health` took its current value
  std::vector<TargetStatus> targets;
  // A result older than this (2 intervals + timeout + jitter) means a stuck prober: the
  // check then counts as failed whatever it said last.
  uint64_t stale_after_ms = 0;

  bool healthy() const { return health == Health::healthy; }
  unsigned healthy_targets() const;
  // The oldest of the targets' latest results (0 without targets).
  uint64_t oldest_result_ms() const;
  uint64_t max_latency_ms() const;
  bool stale(uint64_t now_ms) const;
  // Healthy and fresh at `now_ms`.
  bool passing(uint64_t now_ms) const { return healthy() && !stale(now_ms); }
  // Why it is not passing ("" when it is).
  std::string failure(uint64_t now_ms) const;
};

struct HealthState {
  std::vector<CheckStatus> checks;  // config order
  // Per upstream and host label: the host's state, for hosts whose state is known
  // (a host missing here has no result yet: treat it as healthy).
  std::unordered_map<std::string, std::unordered_map<std::string, bool>> host_health;

  // Every required check passing at `now_ms` (monotonic; true without checks).
  bool ready(uint64_t now_ms) const;
  const CheckStatus* find(std::string_view name) const;
};

using HealthStatePtr = std::shared_ptr<const HealthState>;

// `set` with each host's `healthy` flag taken from `state` (hosts without a known state
// are healthy). Returns `set` itself when no flag changes.
HostSetPtr apply_health(const HostSetPtr& set, const HealthState& state);

}  // namespace gh::health
