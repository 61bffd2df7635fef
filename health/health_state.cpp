#include "health/health_state.hpp"

#include <algorithm>

namespace gh::health {

Hysteresis::Hysteresis(unsigned rise, unsigned fall)
    : rise_(std::max(1u, rise)), fall_(std::max(1u, fall)) {}

bool Hysteresis::record(bool ok) {
  const Health wanted = ok ? Health::healthy : Health::unhealthy;
  if (state_ == Health::unknown) {
    state_ = wanted;
    return true;
  }
  if (state_ == wanted) {
    streak_ = 0;
    return false;
  }
  if (++streak_ < (ok ? rise_ : fall_)) return false;
  state_ = wanted;
  streak_ = 0;
  return true;
}

HealthTracker::HealthTracker(unsigned rise, unsigned fall, uint64_t start_period_ms,
                             uint64_t started_ms)
    : hysteresis_(rise, fall), start_period_end_ms_(started_ms + start_period_ms) {}

bool HealthTracker::in_start_period(uint64_t now_ms) const {
  return !passed_once_ && now_ms < start_period_end_ms_;
}

bool HealthTracker::record(bool ok, uint64_t now_ms) {
  if (!ok && in_start_period(now_ms)) return false;
  passed_once_ = passed_once_ || ok;
  return hysteresis_.record(ok);
}

const char* check_type_name(config::CheckType type) {
  switch (type) {
    case config::CheckType::postgres:
      return "postgres";
    case config::CheckType::http:
      return "http";
    case config::CheckType::tcp:
      return "tcp";
    case config::CheckType::redis:
      return "redis";
  }
  return "?";
}

bool HealthState::ready() const {
  return std::all_of(checks.begin(), checks.end(),
                     [](const CheckStatus& c) { return !c.required || c.healthy(); });
}

std::string HealthState::readyz_text() const {
  if (checks.empty()) return "ok (no checks)\n";
  std::string out;
  for (const CheckStatus& c : checks) {
    out += c.healthy() ? "ok " : "fail ";
    out += c.name + " (" + check_type_name(c.type) + (c.required ? ")" : ", optional)");
    if (!c.healthy()) out += ": " + (c.reason.empty() ? std::string("failing") : c.reason);
    out += "\n";
  }
  return out;
}

HostSetPtr apply_health(const HostSetPtr& set, const HealthState& state) {
  if (!set) return set;
  auto group = state.host_health.find(set->group);
  auto healthy_of = [&](const Host& host) {
    if (group == state.host_health.end()) return true;
    auto it = group->second.find(host.label);
    return it == group->second.end() || it->second;
  };
  bool changed = false;
  for (const Host& host : set->hosts) changed = changed || healthy_of(host) != host.healthy;
  if (!changed) return set;
  auto copy = std::make_shared<HostSet>(*set);
  for (Host& host : copy->hosts) host.healthy = healthy_of(host);
  return copy;
}

}  // namespace gh::health
