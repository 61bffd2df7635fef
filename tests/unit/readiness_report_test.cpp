// Tests for health/readiness_report: the plain, verbose and JSON answers of /readyz, the
// format negotiation, and staleness (a prober that stops reporting fails readiness).
#include "health/readiness_report.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/json.hpp"

namespace gh::health {
namespace {

constexpr uint64_t kNow = 1'000'000;  // monotonic ms

TargetStatus target(std::string label, Health health, uint64_t age_ms, std::string error = "") {
  TargetStatus t;
  t.label = std::move(label);
  t.health = health;
  t.has_result = true;
  t.last_result_ms = kNow - age_ms;
  t.latency_ms = 3;
  t.last_error = std::move(error);
  t.consecutive_ok = health == Health::healthy ? 4 : 0;
  t.consecutive_failed = health == Health::healthy ? 0 : 2;
  return t;
}

CheckStatus db_check(Health health, uint64_t age_ms) {
  CheckStatus c;
  c.name = "db";
  c.type = config::CheckType::postgres;
  c.health = health;
  c.reason = health == Health::healthy ? "" : "28P01 password authentication failed";
  c.stale_after_ms = 12'000;  // 2 × 5 s + 2 s
  c.targets.push_back(target("", health, age_ms, c.reason));
  return c;
}

CheckStatus app_check() {
  CheckStatus c;
  c.name = "app";
  c.type = config::CheckType::http;
  c.upstream = "app";
  c.min_healthy = 2;
  c.health = Health::unhealthy;
  c.reason = "1/3 hosts healthy in upstream app, need 2: 10.0.0.2:3000: HTTP 500";
  c.stale_after_ms = 12'000;
  c.targets = {target("10.0.0.1:3000", Health::healthy, 100),
               target("10.0.0.2:3000", Health::unhealthy, 100, "HTTP 500"),
               target("10.0.0.3:3000", Health::unhealthy, 100, "timeout after 2000 ms")};
  return c;
}

TEST(ReadinessReportTest, FormatFromQueryOrAccept) {
  EXPECT_EQ(report_format("", ""), ReportFormat::plain);
  EXPECT_EQ(report_format("verbose", ""), ReportFormat::verbose);
  EXPECT_EQ(report_format("x=1&verbose", ""), ReportFormat::verbose);
  EXPECT_EQ(report_format("format=verbose", ""), ReportFormat::verbose);
  EXPECT_EQ(report_format("format=json", ""), ReportFormat::json);
  EXPECT_EQ(report_format("", "text/html, application/json;q=0.9"), ReportFormat::json);
  EXPECT_EQ(report_format("verbosely", "text/plain"), ReportFormat::plain);
}

TEST(ReadinessReportTest, VerboseLinesLikeKubernetes) {
  HealthState state;
  state.checks = {db_check(Health::healthy, 500), app_check()};
  Report report = readiness_report(&state, false, kNow, ReportFormat::verbose);
  EXPECT_EQ(report.status, 503);
  EXPECT_EQ(report.body,
            "[+]db ok 3ms\n"
            "[-]app failed: 1/3 hosts healthy in upstream app, need 2: 10.0.0.2:3000: HTTP 500\n"
            "readyz check failed\n");
  state.checks.pop_back();
  report = readiness_report(&state, false, kNow, ReportFormat::verbose);
  EXPECT_EQ(report.status, 200);
  EXPECT_EQ(report.body, "[+]db ok 3ms\nreadyz check passed\n");
}

TEST(ReadinessReportTest, DrainingIsNeverReady) {
  HealthState state;
  state.checks = {db_check(Health::healthy, 500)};
  EXPECT_EQ(readiness_report(&state, true, kNow, ReportFormat::plain).body, "draining\n");
  Report verbose = readiness_report(&state, true, kNow, ReportFormat::verbose);
  EXPECT_EQ(verbose.status, 503);
  EXPECT_EQ(verbose.body, "[-]draining: shutting down\n[+]db ok 3ms\nreadyz check failed\n");
  EXPECT_EQ(readiness_report(nullptr, false, kNow, ReportFormat::plain).body, "ok (no checks)\n");
}

TEST(ReadinessReportTest, StaleSuccessCountsAsFailure) {
  HealthState state;
  state.checks = {db_check(Health::healthy, 12'000)};
  EXPECT_TRUE(state.ready(kNow));  // exactly at the limit: still fresh
  state.checks = {db_check(Health::healthy, 12'001)};
  EXPECT_FALSE(state.ready(kNow));
  Report report = readiness_report(&state, false, kNow, ReportFormat::plain);
  EXPECT_EQ(report.status, 503);
  EXPECT_EQ(report.body, "fail db (postgres): stale: no probe result for 12 s (prober stuck?)\n");
  // An upstream check is as old as its oldest host result.
  CheckStatus app = app_check();
  app.health = Health::healthy;
  app.targets[2].last_result_ms = kNow - 30'000;
  EXPECT_TRUE(app.stale(kNow));
  EXPECT_EQ(app.oldest_result_ms(), kNow - 30'000);
}

TEST(ReadinessReportTest, JsonCarriesPerCheckAndPerHostDetail) {
  HealthState state;
  state.checks = {db_check(Health::unhealthy, 250), app_check()};
  Report report = readiness_report(&state, false, kNow, ReportFormat::json);
  EXPECT_EQ(report.status, 503);
  EXPECT_STREQ(report.content_type, "application/json");
  const std::string& body = report.body;
  EXPECT_EQ(body.rfind("{\"status\":\"not ready\",\"draining\":false,\"checks\":[", 0), 0u) << body;
  EXPECT_NE(
      body.find("{\"name\":\"db\",\"type\":\"postgres\",\"required\":true,\"status\":\"failed\","
                "\"reason\":\"28P01 password authentication failed\",\"last_change\":"),
      std::string::npos)
      << body;
  EXPECT_NE(body.find("\"latency_ms\":3,\"age_ms\":250,\"last_error\":\"28P01 password "
                      "authentication failed\",\"consecutive_successes\":0,"
                      "\"consecutive_failures\":2}"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("\"upstream\":\"app\",\"healthy_hosts\":1,\"min_healthy\":2,\"hosts\":[{"
                      "\"host\":\"10.0.0.1:3000\",\"status\":\"ok\""),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("{\"host\":\"10.0.0.3:3000\",\"status\":\"failed\",\"latency_ms\":3,"
                      "\"age_ms\":100,\"last_error\":\"timeout after 2000 ms\""),
            std::string::npos)
      << body;
}

TEST(ReadinessReportTest, JsonEscapesReasons) {
  HealthState state;
  CheckStatus c = db_check(Health::unhealthy, 10);
  c.reason = "role \"x\"\tdoes not exist\\";
  state.checks = {c};
  const std::string body = readiness_report(&state, false, kNow, ReportFormat::json).body;
  EXPECT_NE(body.find(R"("reason":"role \"x\"\u0009does not exist\\")"), std::string::npos) << body;
}

TEST(JsonStringTest, KeepsUtf8AndReplacesInvalidBytes) {
  auto json = [](std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
  };
  EXPECT_EQ(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json("a\xff"), "\"a\\ufffd\"");                      // not a lead byte
  EXPECT_EQ(json("\x80x"), "\"\\ufffdx\"");                      // stray continuation
  EXPECT_EQ(json("\xc0\xaf"), "\"\\ufffd\\ufffd\"");             // overlong '/'
  EXPECT_EQ(json("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // surrogate
  EXPECT_EQ(json("\xe2\x82"), "\"\\ufffd\\ufffd\"");             // cut short
  EXPECT_EQ(json("\x01\"\\"), "\"\\u0001\\\"\\\\\"");
}

TEST(ReadinessReportTest, OneCheck) {
  HealthState state;
  state.checks = {db_check(Health::healthy, 10), app_check()};
  EXPECT_FALSE(check_report(state, "nope", kNow, ReportFormat::plain).has_value());
  auto db = check_report(state, "db", kNow, ReportFormat::plain);
  ASSERT_TRUE(db.has_value());
  EXPECT_EQ(db->status, 200);
  EXPECT_EQ(db->body, "ok db\n");
  auto app = check_report(state, "app", kNow, ReportFormat::verbose);
  ASSERT_TRUE(app.has_value());
  EXPECT_EQ(app->status, 503);
  EXPECT_EQ(app->body.rfind("[-]app failed: 1/3 hosts healthy", 0), 0u);
}

}  // namespace
}  // namespace gh::health
