// Listening sockets bound on the control thread, so that "address in use" is a start-up
// error and port 0 resolves to one port shared by every worker's SO_REUSEPORT socket.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"

namespace gh::proxy {

struct BoundListener {
  std::vector<int> fds;  // one per worker
  std::string address;   // "127.0.0.1:8080" as bound (port 0 resolved)
};

Result<BoundListener> bind_listener(const config::HostPort& address, unsigned count);

}  // namespace gh::proxy
