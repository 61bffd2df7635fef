#include "health/readiness_report.hpp"

#include <ctime>

#include "core/clock.hpp"
#include "core/json.hpp"

namespace gh::health {

namespace {

bool has_param(std::string_view query, std::string_view wanted) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    if (query.substr(0, amp) == wanted) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

const char* health_name(Health health) {
  switch (health) {
    case Health::healthy:
      return "ok";
    case Health::unhealthy:
      return "failed";
    case Health::unknown:
      return "unknown";
  }
  return "?";
}

void append_plain(std::string& out, const CheckStatus& c, uint64_t now_ms) {
  const bool ok = c.passing(now_ms);
  out += ok ? "ok " : "fail ";
  out += c.name + " (" + check_type_name(c.type) + (c.implicit ? ", implicit" : "") +
         (c.required ? ")" : ", optional)");
  if (!ok) out += ": " + c.failure(now_ms);
  out += "\n";
}

void append_verbose(std::string& out, const CheckStatus& c, uint64_t now_ms) {
  const bool ok = c.passing(now_ms);
  out += ok ? "[+]" : "[-]";
  out += c.name;
  if (ok) {
    out += " ok " + std::to_string(c.max_latency_ms()) + "ms";
  } else {
    out += " failed: " + c.failure(now_ms);
  }
  if (!c.required) out += " (optional)";
  out += "\n";
}

std::string iso_time(std::chrono::system_clock::time_point at) {
  char text[kUtcTextSize];
  format_utc(std::chrono::system_clock::to_time_t(at), text);
  return text;
}

void append_field(std::string& out, std::string_view key, std::string_view text) {
  out += ",\"";
  out += key;
  out += "\":";
  append_json_string(out, text);
}

void append_field(std::string& out, std::string_view key, uint64_t number) {
  out += ",\"";
  out += key;
  out += "\":" + std::to_string(number);
}

// Result details shared by a host's object and a single-target check's own.
void append_target_fields(std::string& out, const TargetStatus& t, uint64_t now_ms) {
  if (t.has_result) {
    append_field(out, "latency_ms", t.latency_ms);
    append_field(out, "age_ms", now_ms > t.last_result_ms ? now_ms - t.last_result_ms : 0);
  }
  append_field(out, "last_error", t.last_error);
  append_field(out, "consecutive_successes", t.consecutive_ok);
  append_field(out, "consecutive_failures", t.consecutive_failed);
}

void append_json(std::string& out, const CheckStatus& c, uint64_t now_ms) {
  out += "{\"name\":";
  append_json_string(out, c.name);
  append_field(out, "type", check_type_name(c.type));
  out += std::string(",\"required\":") + (c.required ? "true" : "false");
  if (c.implicit) out += ",\"implicit\":true";
  append_field(out, "status", c.stale(now_ms) ? "stale" : health_name(c.health));
  append_field(out, "reason", c.failure(now_ms));
  append_field(out, "last_change", iso_time(c.since));
  if (!c.upstream.empty()) {
    append_field(out, "upstream", c.upstream);
    append_field(out, "healthy_hosts", c.healthy_targets());
    append_field(out, "min_healthy", c.min_healthy);
    out += ",\"hosts\":[";
    for (std::size_t i = 0; i < c.targets.size(); ++i) {
      out += i > 0 ? ",{\"host\":" : "{\"host\":";
      append_json_string(out, c.targets[i].label);
      append_field(out, "status", health_name(c.targets[i].health));
      append_target_fields(out, c.targets[i], now_ms);
      out += "}";
    }
    out += "]";
  } else if (!c.targets.empty()) {
    append_target_fields(out, c.targets.front(), now_ms);
  }
  out += "}";
}

void append_summary(std::string& out, bool ready, ReportFormat format) {
  if (format == ReportFormat::verbose)
    out += ready ? "readyz check passed\n" : "readyz check failed\n";
}

}  // namespace

ReportFormat report_format(std::string_view query, std::string_view accept) {
  if (has_param(query, "format=json") || accept.find("application/json") != std::string_view::npos)
    return ReportFormat::json;
  if (has_param(query, "verbose") || has_param(query, "verbose=1") ||
      has_param(query, "format=verbose"))
    return ReportFormat::verbose;
  return ReportFormat::plain;
}

bool is_ready(const HealthState* state, bool draining, uint64_t now_ms) {
  return !draining && (!state || state->ready(now_ms));
}

Report readiness_report(const HealthState* state, bool draining, uint64_t now_ms,
                        ReportFormat format) {
  const bool ready = is_ready(state, draining, now_ms);
  Report report;
  report.status = ready ? 200 : 503;
  std::string& out = report.body;
  if (format == ReportFormat::json) {
    report.content_type = "application/json";
    out += std::string("{\"status\":\"") + (ready ? "ready" : "not ready") + "\"";
    out += std::string(",\"draining\":") + (draining ? "true" : "false") + ",\"checks\":[";
    for (std::size_t i = 0; state && i < state->checks.size(); ++i) {
      if (i > 0) out += ",";
      append_json(out, state->checks[i], now_ms);
    }
    out += "]}\n";
    return report;
  }
  if (format == ReportFormat::plain && draining) {
    out = "draining\n";
    return report;
  }
  if (format == ReportFormat::plain && (!state || state->checks.empty())) {
    out = "ok (no checks)\n";
    return report;
  }
  if (draining) out += "[-]draining: shutting down\n";
  for (std::size_t i = 0; state && i < state->checks.size(); ++i) {
    if (format == ReportFormat::plain) {
      append_plain(out, state->checks[i], now_ms);
    } else {
      append_verbose(out, state->checks[i], now_ms);
    }
  }
  append_summary(out, ready, format);
  return report;
}

std::optional<Report> check_report(const HealthState& state, std::string_view name, uint64_t now_ms,
                                   ReportFormat format) {
  const CheckStatus* check = state.find(name);
  if (!check) return std::nullopt;
  Report report;
  const bool ok = check->passing(now_ms);
  report.status = ok ? 200 : 503;
  if (format == ReportFormat::json) {
    report.content_type = "application/json";
    append_json(report.body, *check, now_ms);
    report.body += "\n";
  } else if (format == ReportFormat::verbose) {
    append_verbose(report.body, *check, now_ms);
  } else {
    report.body = ok ? "ok " + check->name + "\n"
                     : "fail " + check->name + ": " + check->failure(now_ms) + "\n";
  }
  return report;
}

}  // namespace gh::health
