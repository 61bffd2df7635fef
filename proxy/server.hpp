// Server: the control thread. It owns the configuration, the listening sockets (bound
// here, one SO_REUSEPORT socket per listener and worker, handed to the workers), the
// workers, signals and the admin endpoint. Reload builds a new Snapshot and publishes
// it; SIGTERM drains the workers within server.drain_timeout.
#pragma once

#include <string>

namespace gh::proxy {

struct RunOptions {
  std::string config_path;  // empty: the embedded default config
  std::string ready_file;   // written once listening: bound addresses and generation
};

// Runs until SIGTERM/SIGINT and the drain finish. Returns the process exit code.
int run_server(const RunOptions& options);

}  // namespace gh::proxy
