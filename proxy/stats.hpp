// Traffic counters of one worker, for /metrics.
//
// The worker thread owns WorkerStats and updates it with plain integer increments (nothing
// shared on the request path). Every tick it publishes an immutable copy with its gauges
// (open connections, in-flight and idle upstream connections per host) filled in; the
// control thread sums the workers' latest copies when /metrics is asked, so the answer is
// at most one tick (250 ms) old.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gh::proxy {

// Which client protocol carried an exchange: the access log and metrics tell them apart.
enum class ClientProtocol : std::uint8_t { http1_0, http1_1, http2 };

// Responses by status class: counts[0] = 1xx ... counts[4] = 5xx.
struct StatusClasses {
  std::array<std::uint64_t, 5> counts{};
  void count(int status) {
    if (status >= 100 && status < 600) ++counts[static_cast<std::size_t>(status / 100 - 1)];
  }
};

struct HostGauge {
  std::string upstream;
  std::string host;
  unsigned in_flight = 0;  // exchanges and tunnels on this host's connections
  unsigned idle = 0;       // pooled keep-alive connections
  bool passive_down = false;
};

struct WorkerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;  // filled in when published
  // By route label ("example.com/api/", "/socket.io/"); kUnrouted for answers given
  // before a route was chosen (malformed requests, timeouts, no matching route).
  std::map<std::string, StatusClasses> requests;
  // Responses by client protocol: [0] HTTP/1.x, [1] HTTP/2.
  std::array<std::uint64_t, 2> requests_by_protocol{};
  std::vector<HostGauge> hosts;  // filled in when published

  static constexpr const char* kUnrouted = "-";
};

using WorkerStatsPtr = std::shared_ptr<const WorkerStats>;

}  // namespace gh::proxy
