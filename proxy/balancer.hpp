// Balancer: picks a host of a HostSet for one request. Pure; the caller (a worker) owns
// the per-host counters, so no state is shared between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "health/host_set.hpp"

namespace gh::proxy {

struct HostLoad {
  unsigned active = 0;  // exchanges in flight on this worker
};

inline constexpr std::size_t kNoHost = static_cast<std::size_t>(-1);

// Picks among healthy hosts not in `tried` (a bit per host index; hosts past 64 are
// never excluded). round_robin advances `cursor`; least_conn takes the fewest active,
// ties broken round-robin. If no healthy host is left, unhealthy untried ones are used
// (better than failing: health data may be stale). Returns kNoHost when all were tried.
std::size_t pick_host(const health::HostSet& set, std::span<const HostLoad> loads,
                      std::uint64_t tried, unsigned& cursor);

}  // namespace gh::proxy
