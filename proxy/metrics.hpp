// /metrics: the Prometheus text exposition (format 0.0.4) of the workers' published
// counters, the health state and the TLS handshake counts. Pure rendering; the control
// thread gathers the inputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "health/health_state.hpp"
#include "proxy/stats.hpp"
#include "tls/transport.hpp"

namespace gh::proxy {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

struct MetricsInput {
  std::vector<WorkerStatsPtr> workers;          // null entries (not published yet) are skipped
  const health::HealthState* health = nullptr;  // null without checks
  tls::HandshakeCounts handshakes;
  bool ready = false;
  bool draining = false;
  unsigned generation = 0;
  std::uint64_t now_ms = 0;  // monotonic, for check result ages
};

std::string render_metrics(const MetricsInput& input);

}  // namespace gh::proxy
