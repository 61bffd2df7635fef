// Snapshot: everything a worker needs to serve requests under one configuration,
// immutable once built and shared by all workers through shared_ptr<const Snapshot>.
// A reload or a membership change builds a new one; exchanges in flight keep theirs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/http_head.hpp"
#include "health/host_set.hpp"
#include "proxy/router.hpp"
#include "tls/context.hpp"

namespace gh::proxy {

struct Snapshot {
  using TlsContexts = std::vector<std::shared_ptr<const tls::ServerContext>>;
  using UpstreamTls = std::vector<std::shared_ptr<const tls::ClientContext>>;

  Snapshot(std::shared_ptr<const config::Config> cfg, std::vector<health::HostSetPtr> host_sets,
           TlsContexts tls_contexts, UpstreamTls upstream_tls_contexts, unsigned gen)
      : config(std::move(cfg)),
        router(*config),
        groups(std::move(host_sets)),
        tls(std::move(tls_contexts)),
        upstream_tls(std::move(upstream_tls_contexts)),
        generation(gen) {
    head_limits.request_line = config->limits.request_line;
    head_limits.header_bytes = config->limits.header_bytes;
    head_limits.header_count = config->limits.header_count;
  }

  std::shared_ptr<const config::Config> config;
  Router router;
  std::vector<health::HostSetPtr> groups;  // same order as config->upstreams
  TlsContexts tls;                         // per listener; null for plain ones
  UpstreamTls upstream_tls;                // same order as config->upstreams; null = plain
  http::HeadLimits head_limits;
  unsigned generation;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace gh::proxy
