#include "proxy/certificates.hpp"

#include <set>

#include "core/log.hpp"

namespace gh::proxy {

Result<Snapshot::TlsContexts> build_tls_contexts(const config::Config& config,
                                                 std::shared_ptr<const tls::TicketKeys> keys) {
  Snapshot::TlsContexts contexts;
  for (const config::Listener& listener : config.listeners) {
    if (!listener.tls) {
      contexts.push_back(nullptr);
      continue;
    }
    auto context = tls::ServerContext::build(*listener.tls, keys);
    if (!context)
      return fail("listener " + listener.address.text() + ": " + context.error().message);
    contexts.push_back(std::move(*context));
  }
  return contexts;
}

Result<Snapshot::UpstreamTls> build_upstream_tls(const config::Config& config) {
  Snapshot::UpstreamTls contexts;
  for (const config::Upstream& upstream : config.upstreams) {
    if (!upstream.tls) {
      contexts.push_back(nullptr);
      continue;
    }
    auto context = tls::ClientContext::build(upstream);
    if (!context) return fail("upstream " + upstream.name + ": " + context.error().message);
    contexts.push_back(std::move(*context));
  }
  return contexts;
}

std::vector<std::string> certificate_problems(const config::Config& config) {
  std::vector<std::string> problems;
  for (const config::Listener& listener : config.listeners) {
    if (!listener.tls) continue;
    if (auto ok = tls::check_certificates(*listener.tls); !ok) {
      problems.push_back("listener " + listener.address.text() + ": " + ok.error().message);
    }
  }
  // Upstream TLS as the server would build it: an unreadable or empty tls_ca_file.
  for (const config::Upstream& upstream : config.upstreams) {
    if (!upstream.tls) continue;
    if (auto context = tls::ClientContext::build(upstream); !context) {
      problems.push_back("upstream " + upstream.name + ": " + context.error().message);
    }
  }
  return problems;
}

// A uv_fs_poll_t and its owner, freed from the close callback (libuv's rule).
struct CertificateWatcher::Poll {
  uv_fs_poll_t handle{};
  CertificateWatcher* watcher = nullptr;
};

CertificateWatcher::CertificateWatcher(uv_loop_t* loop, std::function<void()> on_change)
    : loop_(loop), on_change_(std::move(on_change)) {}

CertificateWatcher::~CertificateWatcher() = default;

void CertificateWatcher::watch(const config::Config& config, unsigned interval_ms) {
  close_polls();
  std::set<std::string> files;
  for (const config::Listener& listener : config.listeners) {
    if (!listener.tls) continue;
    for (const config::TlsCertificate& c : listener.tls->certificates) {
      files.insert(c.cert_file);
      files.insert(c.key_file);
    }
    if (!listener.tls->ocsp_file.empty()) files.insert(listener.tls->ocsp_file);
  }
  for (const std::string& file : files) {
    auto poll = std::make_unique<Poll>();
    poll->watcher = this;
    uv_fs_poll_init(loop_, &poll->handle);
    poll->handle.data = poll.get();
    uv_fs_poll_start(
        &poll->handle,
        [](uv_fs_poll_t* h, int, const uv_stat_t*, const uv_stat_t*) {
          static_cast<Poll*>(h->data)->watcher->changed();
        },
        file.c_str(), interval_ms);
    polls_.push_back(poll.release());  // owned by its handle from here: freed on close
  }
}

// certbot writes the certificate and the key one after the other: wait for quiet.
void CertificateWatcher::changed() {
  if (!settle_) {
    auto timer = std::make_unique<uv_timer_t>();
    uv_timer_init(loop_, timer.get());
    timer->data = this;
    settle_ = timer.release();  // freed in close()
  }
  uv_timer_start(
      settle_, [](uv_timer_t* t) { static_cast<CertificateWatcher*>(t->data)->on_change_(); }, 500,
      0);
}

void CertificateWatcher::close_polls() {
  for (Poll* poll : polls_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle),
             [](uv_handle_t* h) { std::unique_ptr<Poll>(static_cast<Poll*>(h->data)); });
  }
  polls_.clear();
}

void CertificateWatcher::close() {
  close_polls();
  if (settle_) {
    uv_close(reinterpret_cast<uv_handle_t*>(settle_),
             [](uv_handle_t* h) { std::unique_ptr<uv_timer_t>(reinterpret_cast<uv_timer_t*>(h)); });
    settle_ = nullptr;
  }
}

}  // namespace gh::proxy
