// Tests for proxy/metrics: the Prometheus text of the workers' counters, host gauges,
// checks and TLS handshakes, summed over workers.
#include "proxy/metrics.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace gh::proxy {
namespace {

WorkerStatsPtr worker(std::uint64_t ok, std::uint64_t errors, unsigned in_flight, bool down) {
  auto stats = std::make_shared<WorkerStats>();
  stats->connections_accepted = ok + errors;
  stats->connections_open = 1;
  for (std::uint64_t i = 0; i < ok; ++i) stats->requests["/api/"].count(200);
  for (std::uint64_t i = 0; i < errors; ++i) stats->requests[WorkerStats::kUnrouted].count(400);
  stats->hosts.push_back({"app", "10.0.0.1:3000", in_flight, 2, down});
  return stats;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsTest, SumsWorkers) {
  MetricsInput input;
  input.workers = {worker(3, 1, 2, false), worker(4, 0, 1, false), nullptr};
  input.ready = true;
  input.generation = 2;
  input.handshakes = {5, 7, 1};
  const std::string text = render_metrics(input);
  EXPECT_TRUE(has_line(text, "gatehouse_requests_total{route=\"/api/\",class=\"2xx\"} 7")) << text;
  EXPECT_TRUE(has_line(text, "gatehouse_requests_total{route=\"-\",class=\"4xx\"} 1")) << text;
  EXPECT_EQ(text.find("class=\"5xx\""), std::string::npos);  // zero counts are left out
  EXPECT_TRUE(has_line(text, "gatehouse_connections_accepted_total 8"));
  EXPECT_TRUE(has_line(text, "gatehouse_connections_open 2"));
  EXPECT_TRUE(
      has_line(text, "gatehouse_upstream_in_flight{upstream=\"app\",host=\"10.0.0.1:3000\"} 3"));
  EXPECT_TRUE(has_line(
      text, "gatehouse_upstream_idle_connections{upstream=\"app\",host=\"10.0.0.1:3000\"} 4"));
  EXPECT_TRUE(
      has_line(text, "gatehouse_upstream_host_up{upstream=\"app\",host=\"10.0.0.1:3000\"} 1"));
  EXPECT_TRUE(has_line(text, "gatehouse_ready 1"));
  EXPECT_TRUE(has_line(text, "gatehouse_config_generation 2"));
  EXPECT_TRUE(has_line(text, "gatehouse_tls_handshakes_total{result=\"resumed\"} 7"));
  EXPECT_TRUE(has_line(text, "# TYPE gatehouse_requests_total counter"));
}

TEST(MetricsTest, HostDownByChecksOrPassiveHealth) {
  health::HealthState health;
  health.host_health["app"]["10.0.0.1:3000"] = false;
  MetricsInput input;
  input.workers = {worker(0, 0, 0, false)};
  input.health = &health;
  EXPECT_TRUE(has_line(render_metrics(input),
                       "gatehouse_upstream_host_up{upstream=\"app\",host=\"10.0.0.1:3000\"} 0"));
  health.host_health.clear();
  input.workers = {worker(0, 0, 0, false), worker(0, 0, 0, true)};  // one worker took it out
  EXPECT_TRUE(has_line(render_metrics(input),
                       "gatehouse_upstream_host_up{upstream=\"app\",host=\"10.0.0.1:3000\"} 0"));
}

TEST(MetricsTest, ChecksAndEscapedLabels) {
  health::HealthState health;
  health::CheckStatus check;
  check.name = "db \"main\"";
  check.type = config::CheckType::postgres;
  check.health = health::Health::healthy;
  check.stale_after_ms = 10'000;
  health::TargetStatus target;
  target.has_result = true;
  target.health = health::Health::healthy;
  target.latency_ms = 25;
  target.last_result_ms = 1'000;
  check.targets = {target};
  health.checks = {check};
  MetricsInput input;
  input.health = &health;
  input.now_ms = 3'500;
  const std::string text = render_metrics(input);
  EXPECT_TRUE(has_line(text, R"(gatehouse_check_up{check="db \"main\"",type="postgres"} 1)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(gatehouse_check_latency_seconds{check="db \"main\""} 0.025)"));
  EXPECT_TRUE(has_line(text, R"(gatehouse_check_result_age_seconds{check="db \"main\""} 2.5)"));
  input.now_ms = 12'000;  // stale now
  EXPECT_TRUE(has_line(render_metrics(input),
                       R"(gatehouse_check_up{check="db \"main\"",type="postgres"} 0)"));
}

}  // namespace
}  // namespace gh::proxy
