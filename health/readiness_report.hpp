// The answers of /readyz and /readyz/<name>, rendered from a HealthState snapshot (never by
// probing: asking any number of times costs no probe). Three formats:
//   plain    one line per check ("ok db (postgres)", "fail app (http): ...")
//   verbose  Kubernetes-style: "[+]db ok 2ms", "[-]app failed: 1/3 healthy, need 2", then
//            "readyz check passed|failed" (what `gatehouse healthcheck` prints)
//   json     per check: status, latency, last error, consecutive counts, last change, age,
//            and per host for upstream checks
// Pure; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "health/health_state.hpp"

namespace gh::health {

enum class ReportFormat { plain, verbose, json };

// `?verbose` or `?format=verbose` → verbose; `?format=json` or an Accept naming
// application/json → json; else plain.
ReportFormat report_format(std::string_view query, std::string_view accept);

struct Report {
  int status = 200;  // 200 ready, 503 not
  std::string body;
  const char* content_type = "text/plain; charset=utf-8";
};

// Whether /readyz answers 200. `state` null = no checks configured; `draining` (SIGTERM)
// is never ready.
bool is_ready(const HealthState* state, bool draining, uint64_t now_ms);

// /readyz.
Report readiness_report(const HealthState* state, bool draining, uint64_t now_ms,
                        ReportFormat format);
// /readyz/<name>; nullopt when no check has that name.
std::optional<Report> check_report(const HealthState& state, std::string_view name, uint64_t now_ms,
                                   ReportFormat format);

}  // namespace gh::health
