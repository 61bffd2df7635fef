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

unsigned CheckStatus::healthy_targets() const {
  return static_cast<unsigned>(std::count_if(
      targets.begin(), targets.end(), [](const auto& t) { return t.health == Health::healthy; }));
}

uint64_t CheckStatus::oldest_result_ms() const {
  uint64_t oldest = 0;
  for (const TargetStatus& t : targets) {
    if (oldest == 0 || t.last_result_ms < oldest) oldest = t.last_result_ms;
  }
  return oldest;
}

uint64_t CheckStatus::max_latency_ms() const {
  uint64_t slowest = 0;
  for (const TargetStatus& t : targets) slowest = std::max(slowest, t.latency_ms);
  return slowest;
}

bool CheckStatus::stale(uint64_t now_ms) const {
  const uint64_t oldest = oldest_result_ms();
  return stale_after_ms > 0 && oldest > 0 && now_ms > oldest + stale_after_ms;
}

std::string CheckStatus::failure(uint64_t now_ms) const {
  if (stale(now_ms)) {
    return "stale: no probe result for " + std::to_string((now_ms - oldest_result_ms()) / 1000) +
           " s (prober stuck?)";
  }
  if (healthy()) return "";
  return reason.empty() ? "failing" : reason;
}

bool HealthState::ready(uint64_t now_ms) const {
  return std::all_of(checks.begin(), checks.end(),
                     [now_ms](const CheckStatus& c) { return !c.required || c.passing(now_ms); });
}

const CheckStatus* HealthState::find(std::string_view name) const {
  for (const CheckStatus& c : checks) {
    if (c.name == name) return &c;
  }
  return nullptr;
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
