// Certificates: the TLS contexts of a config's listeners, and a watcher that notices
// when their files change on disk (certbot renewals swap them in place or through
// symlinks). Control thread only.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"
#include "proxy/snapshot.hpp"
#include "tls/context.hpp"

namespace gh::proxy {

// One context per listener (null for plain listeners). Any bad certificate fails the
// whole set, naming the file: the caller keeps the contexts it had.
Result<Snapshot::TlsContexts> build_tls_contexts(const config::Config& config,
                                                 std::shared_ptr<const tls::TicketKeys> keys);

// One client context per upstream (null for plain ones). Errors name the upstream and the
// file: "upstream api: /etc/ca.pem: no usable CA certificate (...)".
Result<Snapshot::UpstreamTls> build_upstream_tls(const config::Config& config);

// Validates every listener's certificates and every upstream's tls_ca_file (for
// `gatehouse check`).
std::vector<std::string> certificate_problems(const config::Config& config);

// Polls the certificate and key files of a config (stat every `interval`) and calls
// `on_change` once, shortly after the last of a burst of changes. Owned by Control;
// close() before the loop ends; the watcher frees its handles from their callbacks.
class CertificateWatcher {
 public:
  CertificateWatcher(uv_loop_t* loop, std::function<void()> on_change);
  ~CertificateWatcher();
  CertificateWatcher(const CertificateWatcher&) = delete;
  CertificateWatcher& operator=(const CertificateWatcher&) = delete;

  void watch(const config::Config& config, unsigned interval_ms = 2000);
  void close();

 private:
  struct Poll;
  void changed();
  void close_polls();

  uv_loop_t* loop_;
  std::function<void()> on_change_;
  std::vector<Poll*> polls_;  // each frees itself in its close callback
  uv_timer_t* settle_ = nullptr;
};

}  // namespace gh::proxy
