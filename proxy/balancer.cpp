#include "proxy/balancer.hpp"

namespace gh::proxy {
namespace {

unsigned load_of(std::span<const HostLoad> loads, std::size_t i) {
  return i < loads.size() ? loads[i].active : 0;
}

bool was_tried(std::uint64_t tried, std::size_t i) {
  return i < 64 && (tried >> i) & 1u;
}

std::size_t pick_among(const health::HostSet& set, std::span<const HostLoad> loads,
                       std::uint64_t tried, unsigned& cursor, bool healthy_only) {
  const std::size_t n = set.hosts.size();
  std::size_t best = kNoHost;
  for (std::size_t step = 0; step < n; ++step) {
    std::size_t i = (cursor + step) % n;
    const bool healthy = set.hosts[i].healthy && !(i < loads.size() && loads[i].passive_down);
    if (was_tried(tried, i) || (healthy_only && !healthy)) continue;
    if (set.balance == config::Balance::round_robin) {
      best = i;
      break;
    }
    if (best == kNoHost || load_of(loads, i) < load_of(loads, best)) best = i;
  }
  if (best != kNoHost) cursor = static_cast<unsigned>((best + 1) % n);
  return best;
}

}  // namespace

std::size_t pick_host(const health::HostSet& set, std::span<const HostLoad> loads,
                      std::uint64_t tried, unsigned& cursor, bool panic) {
  if (set.hosts.empty()) return kNoHost;
  std::size_t host = pick_among(set, loads, tried, cursor, true);
  if (host != kNoHost || !panic) return host;
  return pick_among(set, loads, tried, cursor, false);
}

}  // namespace gh::proxy
