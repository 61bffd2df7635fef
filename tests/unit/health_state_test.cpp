// Tests for health/health_state: rise/fall hysteresis, start_period, the /readyz text and
// readiness, and apply_health() marking hosts in a HostSet.
#include "health/health_state.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/clock.hpp"
#include "health/readiness_report.hpp"

namespace gh::health {
namespace {

std::string plain_text(const HealthState& state) {
  return readiness_report(&state, false, monotonic_ms(), ReportFormat::plain).body;
}

// Records `results` ("+" pass, "-" fail) and returns the state after each as a string of
// U(nknown)/H(ealthy)/X (unhealthy), with '*' after the ones that flipped.
std::string trace(Hysteresis& h, const std::string& results) {
  std::string out;
  for (char r : results) {
    const bool flipped = h.record(r == '+');
    out += h.state() == Health::healthy ? 'H' : h.state() == Health::unhealthy ? 'X' : 'U';
    if (flipped) out += '*';
  }
  return out;
}

TEST(HealthHysteresisTest, StartsUnknownAndFirstResultSetsState) {
  Hysteresis up(2, 3);
  EXPECT_EQ(up.state(), Health::unknown);
  EXPECT_EQ(trace(up, "+"), "H*");
  Hysteresis down(2, 3);
  EXPECT_EQ(trace(down, "-"), "X*");
}

TEST(HealthHysteresisTest, FallNeedsConsecutiveFailures) {
  Hysteresis h(2, 3);
  EXPECT_EQ(trace(h, "+--+---"), "H*HHHHHX*");
  // Two failures, a pass resets the streak; the third consecutive failure flips.
  EXPECT_EQ(trace(h, "-"), "X");
}

TEST(HealthHysteresisTest, RiseNeedsConsecutivePasses) {
  Hysteresis h(2, 3);
  EXPECT_EQ(trace(h, "-+-++"), "X*XXXH*");
  EXPECT_EQ(trace(h, "+"), "H");
}

TEST(HealthHysteresisTest, RiseAndFallOfOneFlipEveryTime) {
  Hysteresis h(1, 1);
  EXPECT_EQ(trace(h, "+-+-"), "H*X*H*X*");
}

TEST(HealthHysteresisTest, ZeroCountsBehaveLikeOne) {
  Hysteresis h(0, 0);
  EXPECT_EQ(trace(h, "+-+"), "H*X*H*");
}

TEST(HealthStartPeriodTest, FailuresDuringStartPeriodDoNotCount) {
  HealthTracker t(1, 1, /*start_period_ms=*/1000, /*started_ms=*/5000);
  EXPECT_TRUE(t.in_start_period(5500));
  EXPECT_FALSE(t.record(false, 5500));
  EXPECT_EQ(t.state(), Health::unknown);
  EXPECT_FALSE(t.record(false, 5999));
  EXPECT_EQ(t.state(), Health::unknown);
  // After the start period, the first failure counts.
  EXPECT_FALSE(t.in_start_period(6000));
  EXPECT_TRUE(t.record(false, 6000));
  EXPECT_EQ(t.state(), Health::unhealthy);
}

TEST(HealthStartPeriodTest, FirstPassEndsStartPeriod) {
  HealthTracker t(1, 1, 10000, 0);
  EXPECT_TRUE(t.record(true, 100));
  EXPECT_EQ(t.state(), Health::healthy);
  EXPECT_FALSE(t.in_start_period(200));
  EXPECT_TRUE(t.record(false, 200));  // counts although still within 10 s
  EXPECT_EQ(t.state(), Health::unhealthy);
}

TEST(HealthStartPeriodTest, ZeroStartPeriodCountsEverything) {
  HealthTracker t(2, 3, 0, 1000);
  EXPECT_FALSE(t.in_start_period(1000));
  EXPECT_TRUE(t.record(false, 1000));
  EXPECT_EQ(t.state(), Health::unhealthy);
}

CheckStatus status(std::string name, config::CheckType type, Health health, bool required = true,
                   std::string reason = "") {
  CheckStatus s;
  s.name = std::move(name);
  s.type = type;
  s.health = health;
  s.required = required;
  s.reason = std::move(reason);
  return s;
}

TEST(HealthStateTest, ReadyzTextHasOneLinePerCheck) {
  HealthState state;
  state.checks.push_back(status("db", config::CheckType::postgres, Health::unhealthy, true,
                                "28P01 password authentication failed for user \"x\""));
  state.checks.push_back(status("app", config::CheckType::http, Health::healthy));
  state.checks.push_back(
      status("cache", config::CheckType::redis, Health::unknown, false, "no result yet"));
  EXPECT_EQ(plain_text(state),
            "fail db (postgres): 28P01 password authentication failed for user \"x\"\n"
            "ok app (http)\n"
            "fail cache (redis, optional): no result yet\n");
}

TEST(HealthStateTest, ReadyNeedsEveryRequiredCheckHealthy) {
  HealthState state;
  EXPECT_TRUE(state.ready(monotonic_ms()));
  EXPECT_EQ(plain_text(state), "ok (no checks)\n");
  state.checks.push_back(status("db", config::CheckType::postgres, Health::healthy));
  state.checks.push_back(status("cache", config::CheckType::redis, Health::unhealthy, false, "x"));
  EXPECT_TRUE(state.ready(monotonic_ms()));  // the failing one is optional
  state.checks.push_back(status("q", config::CheckType::tcp, Health::unknown));
  EXPECT_FALSE(state.ready(monotonic_ms()));  // unknown counts as not ready
  state.checks.back().health = Health::healthy;
  EXPECT_TRUE(state.ready(monotonic_ms()));
  state.checks.front().health = Health::unhealthy;
  EXPECT_FALSE(state.ready(monotonic_ms()));
}

TEST(HealthStateTest, FailingCheckWithoutReasonStillSaysWhy) {
  HealthState state;
  state.checks.push_back(status("db", config::CheckType::tcp, Health::unhealthy));
  EXPECT_EQ(plain_text(state), "fail db (tcp): failing\n");
}

HostSetPtr three_hosts() {
  auto set = std::make_shared<HostSet>();
  set->group = "app";
  for (const char* label : {"10.0.0.1:3000", "10.0.0.2:3000", "10.0.0.3:3000"}) {
    Host h;
    h.label = label;
    h.name = "app:3000";
    set->hosts.push_back(h);
  }
  return set;
}

TEST(HealthStateTest, ApplyHealthMarksKnownHostsAndKeepsUnknownHealthy) {
  HostSetPtr set = three_hosts();
  HealthState state;
  state.host_health["app"]["10.0.0.2:3000"] = false;
  state.host_health["app"]["10.0.0.3:3000"] = true;
  state.host_health["other"]["10.0.0.1:3000"] = false;  // another upstream: ignored
  HostSetPtr marked = apply_health(set, state);
  ASSERT_NE(marked, set);
  EXPECT_TRUE(marked->hosts[0].healthy);
  EXPECT_FALSE(marked->hosts[1].healthy);
  EXPECT_TRUE(marked->hosts[2].healthy);
  EXPECT_TRUE(set->hosts[1].healthy);  // the original is untouched
}

TEST(HealthStateTest, ApplyHealthReturnsSameSetWhenNothingChanges) {
  HostSetPtr set = three_hosts();
  HealthState state;
  state.host_health["app"]["10.0.0.1:3000"] = true;
  EXPECT_EQ(apply_health(set, state), set);
  EXPECT_EQ(apply_health(nullptr, state), nullptr);
}

}  // namespace
}  // namespace gh::health
