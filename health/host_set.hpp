// HostSet: the servers of one upstream group at one moment, as an immutable snapshot.
// The control thread builds a new set whenever membership or health changes (config
// reload, DNS re-resolution, probe results) and publishes it to the workers; a worker
// reads the set it holds without locks. Hosts are keyed by their address text, so
// per-worker state (pools, counters) survives a change of set.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace gh::health {

struct Host {
  sockaddr_storage address{};
  std::string label;  // "10.0.0.2:3000"; the key for per-host state
  std::string name;   // the configured server it came from: "app:3000"
  bool healthy = true;
};

struct HostSet {
  std::string group;
  config::Balance balance = config::Balance::round_robin;
  std::size_t keepalive = 1024;
  std::vector<Host> hosts;
};

using HostSetPtr = std::shared_ptr<const HostSet>;

// Resolves every server of `upstream` (numeric addresses directly, names through
// getaddrinfo). A name that does not resolve contributes no host (the group answers 503
// until it does) and is reported through `warnings`. Blocking: control thread only.
HostSetPtr resolve_upstream(const config::Upstream& upstream, std::vector<std::string>& warnings);

// The key of a host: "10.0.0.2:3000", "[::1]:3000" (address and port of `sa`).
std::string address_label(const sockaddr* sa);

}  // namespace gh::health
