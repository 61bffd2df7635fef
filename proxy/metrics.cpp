#include "proxy/metrics.hpp"

#include <map>
#include <utility>

namespace gh::proxy {

namespace {

// One metric family: HELP and TYPE once, then its samples.
class Family {
 public:
  Family(std::string& out, const char* name, const char* type, const char* help)
      : out_(out), name_(name) {
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }

  // labels: {"route", "/api/"}, ... rendered as {route="/api/",...}.
  void sample(std::initializer_list<std::pair<const char*, std::string_view>> labels,
              double value) {
    out_ += name_;
    if (labels.size() > 0) {
      char separator = '{';
      for (const auto& [key, text] : labels) {
        out_.push_back(separator);
        out_ += key;
        out_ += "=\"";
        append_label_value(text);
        out_ += "\"";
        separator = ',';
      }
      out_ += "}";
    }
    char number[32];
    std::snprintf(number, sizeof number, " %.15g\n", value);
    out_ += number;
  }
  void sample(double value) { sample({}, value); }

 private:
  void append_label_value(std::string_view text) {
    for (char c : text) {
      if (c == '\\' || c == '"') out_.push_back('\\');
      if (c == '\n') {
        out_ += "\\n";
        continue;
      }
      out_.push_back(c);
    }
  }

  std::string& out_;
  const char* name_;
};

struct HostTotals {
  unsigned in_flight = 0;
  unsigned idle = 0;
  bool passive_down = false;  // on any worker
};

using HostKey = std::pair<std::string, std::string>;  // upstream, host

struct Totals {
  std::uint64_t accepted = 0;
  std::uint64_t open = 0;
  std::map<std::string, StatusClasses> requests;
  std::array<std::uint64_t, 2> by_protocol{};  // HTTP/1.x, HTTP/2
  std::map<HostKey, HostTotals> hosts;
};

Totals sum_workers(const std::vector<WorkerStatsPtr>& workers) {
  Totals totals;
  for (const WorkerStatsPtr& worker : workers) {
    if (!worker) continue;
    totals.accepted += worker->connections_accepted;
    totals.open += worker->connections_open;
    for (std::size_t i = 0; i < totals.by_protocol.size(); ++i) {
      totals.by_protocol[i] += worker->requests_by_protocol[i];
    }
    for (const auto& [route, classes] : worker->requests) {
      auto& sum = totals.requests[route];
      for (std::size_t i = 0; i < classes.counts.size(); ++i) sum.counts[i] += classes.counts[i];
    }
    for (const HostGauge& host : worker->hosts) {
      HostTotals& sum = totals.hosts[{host.upstream, host.host}];
      sum.in_flight += host.in_flight;
      sum.idle += host.idle;
      sum.passive_down = sum.passive_down || host.passive_down;
    }
  }
  return totals;
}

// A host is in rotation unless its checks fail or passive health took it out.
bool host_up(const health::HealthState* health, const HostKey& key, const HostTotals& host) {
  if (host.passive_down) return false;
  if (!health) return true;
  auto group = health->host_health.find(key.first);
  if (group == health->host_health.end()) return true;
  auto it = group->second.find(key.second);
  return it == group->second.end() || it->second;
}

void render_traffic(std::string& out, const Totals& totals) {
  Family requests(out, "gatehouse_requests_total", "counter",
                  "Responses sent to clients, by route and status class.");
  static constexpr const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  for (const auto& [route, classes] : totals.requests) {
    for (std::size_t i = 0; i < classes.counts.size(); ++i) {
      if (classes.counts[i] == 0) continue;
      requests.sample({{"route", route}, {"class", kClasses[i]}},
                      static_cast<double>(classes.counts[i]));
    }
  }
  Family by_protocol(out, "gatehouse_requests_by_protocol_total", "counter",
                     "Responses sent to clients, by the client's protocol.");
  by_protocol.sample({{"protocol", "http/1.1"}}, static_cast<double>(totals.by_protocol[0]));
  by_protocol.sample({{"protocol", "h2"}}, static_cast<double>(totals.by_protocol[1]));
  Family accepted(out, "gatehouse_connections_accepted_total", "counter",
                  "Client connections accepted.");
  accepted.sample(static_cast<double>(totals.accepted));
  Family open(out, "gatehouse_connections_open", "gauge", "Client connections open now.");
  open.sample(static_cast<double>(totals.open));
}

void render_upstreams(std::string& out, const Totals& totals, const health::HealthState* health) {
  Family up(out, "gatehouse_upstream_host_up", "gauge",
            "1 while the host is in rotation (checks pass, passive health has not taken it out).");
  for (const auto& [key, host] : totals.hosts) {
    up.sample({{"upstream", key.first}, {"host", key.second}}, host_up(health, key, host) ? 1 : 0);
  }
  Family in_flight(out, "gatehouse_upstream_in_flight", "gauge",
                   "Exchanges and tunnels in progress on the host's connections.");
  for (const auto& [key, host] : totals.hosts) {
    in_flight.sample({{"upstream", key.first}, {"host", key.second}}, host.in_flight);
  }
  Family idle(out, "gatehouse_upstream_idle_connections", "gauge",
              "Pooled keep-alive connections to the host.");
  for (const auto& [key, host] : totals.hosts) {
    idle.sample({{"upstream", key.first}, {"host", key.second}}, host.idle);
  }
}

void render_checks(std::string& out, const health::HealthState& health, std::uint64_t now_ms) {
  Family up(out, "gatehouse_check_up", "gauge", "1 while the check passes (and is fresh).");
  for (const health::CheckStatus& c : health.checks) {
    up.sample({{"check", c.name}, {"type", health::check_type_name(c.type)}},
              c.passing(now_ms) ? 1 : 0);
  }
  Family latency(out, "gatehouse_check_latency_seconds", "gauge",
                 "Duration of the check's latest probe (the slowest host's for upstream checks).");
  for (const health::CheckStatus& c : health.checks) {
    latency.sample({{"check", c.name}}, static_cast<double>(c.max_latency_ms()) / 1000.0);
  }
  Family age(out, "gatehouse_check_result_age_seconds", "gauge",
             "Age of the check's oldest latest result (a stuck prober makes it grow).");
  for (const health::CheckStatus& c : health.checks) {
    const std::uint64_t oldest = c.oldest_result_ms();
    age.sample({{"check", c.name}},
               oldest && now_ms > oldest ? static_cast<double>(now_ms - oldest) / 1000.0 : 0);
  }
  Family healthy(out, "gatehouse_check_healthy_targets", "gauge",
                 "Targets (hosts for upstream checks) whose state is healthy.");
  for (const health::CheckStatus& c : health.checks) {
    healthy.sample({{"check", c.name}}, c.healthy_targets());
  }
}

void render_process(std::string& out, const MetricsInput& input) {
  Family ready(out, "gatehouse_ready", "gauge", "1 when /readyz answers 200.");
  ready.sample(input.ready ? 1 : 0);
  Family draining(out, "gatehouse_draining", "gauge", "1 after SIGTERM, while draining.");
  draining.sample(input.draining ? 1 : 0);
  Family generation(out, "gatehouse_config_generation", "gauge",
                    "Configuration generation (1 at start, +1 per successful reload).");
  generation.sample(input.generation);
  Family handshakes(out, "gatehouse_tls_handshakes_total", "counter",
                    "TLS handshakes with clients by result (failed: closed before completing).");
  handshakes.sample({{"result", "full"}}, static_cast<double>(input.handshakes.full));
  handshakes.sample({{"result", "resumed"}}, static_cast<double>(input.handshakes.resumed));
  handshakes.sample({{"result", "failed"}}, static_cast<double>(input.handshakes.failed));
}

}  // namespace

std::string render_metrics(const MetricsInput& input) {
  std::string out;
  const Totals totals = sum_workers(input.workers);
  render_process(out, input);
  render_traffic(out, totals);
  render_upstreams(out, totals, input.health);
  if (input.health) render_checks(out, *input.health, input.now_ms);
  return out;
}

}  // namespace gh::proxy
