// Balancer: picks a host of a HostSet for one request. Pure; the caller (a worker) owns
// the per-host counters, so no state is shared between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "health/host_set.hpp"

namespace gh::proxy {

struct HostLoad {
  unsigned active = 0;        // exchanges in flight on this worker
  bool passive_down = false;  // recent connect failures/502s on this worker
};

inline constexpr std::size_t kNoHost = static_cast<std::size_t>(-1);

// Picks among healthy hosts (not failing checks, not passively down) not in `tried` (a
// bit per host index; hosts past 64 are never excluded). round_robin advances `cursor`;
// least_conn takes the fewest active, ties broken round-robin. If no healthy host is
// left, `panic` uses the unhealthy untried ones (better than failing when health data is
// wrong); without it the answer is kNoHost, as when all were tried.
std::size_t pick_host(const health::HostSet& set, std::span<const HostLoad> loads,
                      std::uint64_t tried, unsigned& cursor, bool panic = true);

}  // namespace gh::proxy
