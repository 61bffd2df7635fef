#include "proxy/server.hpp"

#include <uv.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/post_queue.hpp"
#include "health/checker.hpp"
#include "health/health_state.hpp"
#include "health/readiness_report.hpp"
#include "health/resolver.hpp"
#include "proxy/admin.hpp"
#include "proxy/certificates.hpp"
#include "proxy/listen_socket.hpp"
#include "proxy/metrics.hpp"
#include "proxy/worker.hpp"

namespace gh::proxy {
namespace {

constexpr std::uint64_t kLivenessWindowMs = 2000;

config::LoadResult load(const std::string& path) {
  return path.empty() ? config::load_string(config::default_toml(), "<default>")
                      : config::load_file(path);
}

void log_diagnostics(const config::LoadResult& result, const char* prefix) {
  for (const auto& d : result.warnings) GH_LOG_WARN("%s%s", prefix, d.text().c_str());
  for (const auto& d : result.errors) GH_LOG_ERROR("%s%s", prefix, d.text().c_str());
}

std::vector<health::HostSetPtr> resolve_all(const config::Config& config) {
  std::vector<health::HostSetPtr> groups;
  std::vector<std::string> warnings;
  for (const config::Upstream& upstream : config.upstreams) {
    groups.push_back(health::resolve_upstream(upstream, warnings));
  }
  for (const std::string& w : warnings) GH_LOG_WARN("%s", w.c_str());
  return groups;
}

void log_tls(const Snapshot::TlsContexts& contexts, const config::Config& config) {
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    if (contexts[i]) {
      GH_LOG_INFO("listener %s: TLS for %s", config.listeners[i].address.text().c_str(),
                  contexts[i]->describe().c_str());
    }
  }
}

class Control {
 public:
  explicit Control(RunOptions options) : options_(std::move(options)) {}

  int run() {
    auto loaded = load(options_.config_path);
    log_diagnostics(loaded, "");
    if (!loaded.config) return 1;
    auto config = std::make_shared<const config::Config>(std::move(*loaded.config));
    auto keys = tls::TicketKeys::generate();
    if (!keys) {
      GH_LOG_ERROR("TLS session ticket keys: %s", keys.error().message.c_str());
      return 1;
    }
    ticket_keys_ = std::move(*keys);
    auto contexts = build_tls_contexts(*config, ticket_keys_);
    if (!contexts) {
      GH_LOG_ERROR("%s", contexts.error().message.c_str());
      return 1;
    }
    tls_ = std::move(*contexts);
    log_tls(tls_, *config);
    auto upstream_tls = build_upstream_tls(*config);
    if (!upstream_tls) {
      GH_LOG_ERROR("%s", upstream_tls.error().message.c_str());
      return 1;
    }
    upstream_tls_ = std::move(*upstream_tls);
    host_sets_ = resolve_all(*config);
    publish(config, 1);
    unsigned workers =
        config->server.workers ? config->server.workers : std::thread::hardware_concurrency();
    workers = std::max(1u, workers);

    std::vector<BoundListener> bound;
    for (const config::Listener& listener : config->listeners) {
      auto b = bind_listener(listener.address, workers);
      if (!b) {
        GH_LOG_ERROR("%s", b.error().message.c_str());
        return 1;
      }
      bound.push_back(std::move(*b));
    }
    uv_loop_init(&loop_);
    posts_.init(&loop_);
    if (auto ok = start_health(*config); !ok) {
      GH_LOG_ERROR("%s", ok.error().message.c_str());
      return 1;
    }
    if (config->admin.address) {
      auto b = bind_listener(*config->admin.address, 1);
      if (!b) {
        GH_LOG_ERROR("admin: %s", b.error().message.c_str());
        return 1;
      }
      admin_address_ = b->address;
      admin_ = std::make_unique<AdminServer>(
          &loop_, [this](const AdminRequest& request) { return admin_request(request); });
      if (auto ok = admin_->listen(b->fds[0]); !ok) {
        GH_LOG_ERROR("%s", ok.error().message.c_str());
        return 1;
      }
    }
    for (const BoundListener& b : bound) listener_addresses_.push_back(b.address);
    start_workers(bound, workers);
    watch_signals();
    schedule_ticket_rotation();
    cert_watcher_ = std::make_unique<CertificateWatcher>(&loop_, [this] { reload_certificates(); });
    cert_watcher_->watch(*config);
    write_ready_file();
    GH_LOG_INFO("gatehouse listening on %s with %u workers (config %s)",
                listener_addresses_[0].c_str(), workers, config->source.c_str());
    uv_run(&loop_, UV_RUN_DEFAULT);
    workers_.clear();  // joins the threads
    uv_loop_close(&loop_);
    GH_LOG_INFO("gatehouse stopped");
    return 0;
  }

 private:
  // A new snapshot from the current ingredients, to every worker: host sets as resolved,
  // with the health checks' verdicts applied.
  void publish(std::shared_ptr<const config::Config> config, unsigned generation) {
    std::vector<health::HostSetPtr> groups = host_sets_;
    if (health_) {
      for (auto& set : groups) set = health::apply_health(set, *health_);
    }
    if (snapshot_) forget_sessions_of_lost_hosts(snapshot_->groups, groups);
    snapshot_ = std::make_shared<const Snapshot>(std::move(config), std::move(groups), tls_,
                                                 upstream_tls_, generation);
    for (auto& w : workers_) w->publish(snapshot_);
  }

  void republish() {
    if (snapshot_) publish(snapshot_->config, snapshot_->generation);
  }

  // Socket.IO sessions pinned to a host that died or left must re-handshake elsewhere.
  void forget_sessions_of_lost_hosts(const std::vector<health::HostSetPtr>& before,
                                     const std::vector<health::HostSetPtr>& after) {
    std::set<std::string> alive;
    for (const auto& set : after) {
      for (const health::Host& h : set->hosts) {
        if (h.healthy) alive.insert(h.label);
      }
    }
    for (const auto& set : before) {
      for (const health::Host& h : set->hosts) {
        if (!alive.count(h.label)) sids_.forget_host(h.label);
      }
    }
  }

  // Probes ([[check]] and implicit upstream checks) and DNS re-resolution for `config`,
  // replacing those of the previous config. Fails (keeping the old ones) on a bad check
  // target or an unreadable password file.
  Result<void> start_health(const config::Config& config) {
    auto checker = health::Checker::create(&loop_, config::checks_to_run(config),
                                           [this](health::HealthStatePtr s) {
                                             health_ = std::move(s);
                                             republish();
                                           });
    if (!checker) return tl::unexpected(checker.error());
    retire_health();
    checker_ = std::move(*checker);
    for (std::size_t i = 0; i < config.upstreams.size(); ++i) {
      checker_->set_hosts(config.upstreams[i].name, host_sets_[i]);
    }
    resolver_ = std::make_unique<health::Resolver>(
        &loop_, config.upstreams, host_sets_,
        [this](const std::string& upstream, health::HostSetPtr set) {
          on_hosts_changed(upstream, set);
        });
    checker_->start();
    resolver_->start();
    return {};
  }

  void on_hosts_changed(const std::string& upstream, health::HostSetPtr set) {
    const auto& upstreams = snapshot_->config->upstreams;
    for (std::size_t i = 0; i < upstreams.size(); ++i) {
      if (upstreams[i].name != upstream) continue;
      GH_LOG_INFO("upstream %s: %zu address(es) after re-resolution", upstream.c_str(),
                  set->hosts.size());
      host_sets_[i] = set;
      if (checker_) checker_->set_hosts(upstream, set);
    }
    republish();
  }

  // Old probes and resolvers close in the background and are freed once closed.
  void retire_health() {
    if (checker_) {
      health::Checker* raw = checker_.get();
      retired_checkers_.push_back(std::move(checker_));
      raw->stop([this, raw] {
        std::erase_if(retired_checkers_, [raw](const auto& c) { return c.get() == raw; });
      });
    }
    if (resolver_) {
      health::Resolver* raw = resolver_.get();
      retired_resolvers_.push_back(std::move(resolver_));
      raw->stop([this, raw] {
        std::erase_if(retired_resolvers_, [raw](const auto& r) { return r.get() == raw; });
      });
    }
    health_.reset();
  }

  // Certificate files changed on disk: new handshakes use the new ones, established
  // connections keep theirs. A bad new pair is refused and the old one stays.
  void reload_certificates() {
    auto contexts = build_tls_contexts(*snapshot_->config, ticket_keys_);
    if (!contexts) {
      GH_LOG_ERROR("certificates changed but were refused, keeping the old ones: %s",
                   contexts.error().message.c_str());
      return;
    }
    tls_ = std::move(*contexts);
    publish(snapshot_->config, snapshot_->generation);
    GH_LOG_INFO("certificates reloaded");
    log_tls(tls_, *snapshot_->config);
  }

  void start_workers(const std::vector<BoundListener>& bound, unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
      std::vector<int> fds;
      for (const BoundListener& b : bound) fds.push_back(b.fds[i]);
      WorkerHooks hooks;
      hooks.write_access_log = [this](std::string&& lines) {
        posts_.post([l = std::move(lines)] {
          std::fwrite(l.data(), 1, l.size(), stdout);
          std::fflush(stdout);
        });
      };
      hooks.on_stopped = [this](unsigned) { posts_.post([this] { on_worker_stopped(); }); };
      workers_.push_back(
          std::make_unique<Worker>(i, std::move(fds), snapshot_, sids_, std::move(hooks)));
    }
    for (auto& w : workers_) w->start();
  }

  void watch_signals() {
    auto init = [this](uv_signal_t& s, int signum, uv_signal_cb cb) {
      uv_signal_init(&loop_, &s);
      s.data = this;
      uv_signal_start(&s, cb, signum);
    };
    init(sigterm_, SIGTERM,
         [](uv_signal_t* s, int) { static_cast<Control*>(s->data)->begin_drain("SIGTERM"); });
    init(sigint_, SIGINT,
         [](uv_signal_t* s, int) { static_cast<Control*>(s->data)->begin_drain("SIGINT"); });
    init(sighup_, SIGHUP, [](uv_signal_t* s, int) { static_cast<Control*>(s->data)->reload(); });
    uv_timer_init(&loop_, &drain_timer_);
    drain_timer_.data = this;
    uv_timer_init(&loop_, &ticket_rotation_);
    ticket_rotation_.data = this;
    uv_timer_init(&loop_, &sid_expiry_);
    sid_expiry_.data = this;
    uv_timer_start(
        &sid_expiry_,
        [](uv_timer_t* t) { static_cast<Control*>(t->data)->sids_.expire(uv_now(t->loop)); },
        10'000, 10'000);
  }

  // One-shot, re-armed from the running config each time (and by a reload that changes
  // the period).
  void schedule_ticket_rotation() {
    const auto period =
        static_cast<std::uint64_t>(snapshot_->config->server.ticket_key_rotation.count());
    uv_timer_start(
        &ticket_rotation_,
        [](uv_timer_t* t) {
          auto* self = static_cast<Control*>(t->data);
          if (auto ok = self->ticket_keys_->rotate(); !ok) {
            GH_LOG_ERROR("TLS ticket key rotation: %s", ok.error().message.c_str());
          }
          self->schedule_ticket_rotation();
        },
        period, 0);
  }

  void reload() {
    if (draining_) return;
    if (options_.config_path.empty()) {
      GH_LOG_WARN("reload: running on the embedded default config; nothing to re-read");
      return;
    }
    auto loaded = load(options_.config_path);
    log_diagnostics(loaded, "reload: ");
    if (!loaded.config) {
      GH_LOG_ERROR("reload failed: keeping the running config (generation %u)",
                   snapshot_->generation);
      return;
    }
    auto config = std::make_shared<const config::Config>(std::move(*loaded.config));
    auto contexts = build_tls_contexts(*config, ticket_keys_);
    if (!contexts) {
      GH_LOG_ERROR("reload failed: %s; keeping the running config (generation %u)",
                   contexts.error().message.c_str(), snapshot_->generation);
      return;
    }
    auto upstream_tls = build_upstream_tls(*config);
    if (!upstream_tls) {
      GH_LOG_ERROR("reload failed: %s; keeping the running config (generation %u)",
                   upstream_tls.error().message.c_str(), snapshot_->generation);
      return;
    }
    if (config->listeners.size() != snapshot_->config->listeners.size() ||
        !std::equal(config->listeners.begin(), config->listeners.end(),
                    snapshot_->config->listeners.begin(),
                    [](const auto& a, const auto& b) { return a.address == b.address; })) {
      GH_LOG_WARN("reload: listener changes take effect only after a restart");
    }
    auto previous_sets = std::move(host_sets_);
    host_sets_ = resolve_all(*config);
    if (auto ok = start_health(*config); !ok) {
      host_sets_ = std::move(previous_sets);
      GH_LOG_ERROR("reload failed: %s; keeping the running config (generation %u)",
                   ok.error().message.c_str(), snapshot_->generation);
      return;
    }
    tls_ = std::move(*contexts);
    upstream_tls_ = std::move(*upstream_tls);
    cert_watcher_->watch(*config);
    const bool new_rotation =
        config->server.ticket_key_rotation != snapshot_->config->server.ticket_key_rotation;
    publish(config, snapshot_->generation + 1);
    if (new_rotation) schedule_ticket_rotation();
    write_ready_file();
    GH_LOG_INFO("config reloaded (generation %u)", snapshot_->generation);
  }

  void begin_drain(const char* why) {
    if (draining_) {
      GH_LOG_WARN("%s again: closing all connections now", why);
      return force_close();
    }
    draining_ = true;
    GH_LOG_INFO("%s: draining for up to %lld ms", why,
                static_cast<long long>(snapshot_->config->server.drain_timeout.count()));
    for (auto& w : workers_) w->drain();
    uv_timer_start(
        &drain_timer_, [](uv_timer_t* t) { static_cast<Control*>(t->data)->force_close(); },
        static_cast<std::uint64_t>(snapshot_->config->server.drain_timeout.count()), 0);
  }

  void force_close() {
    for (auto& w : workers_) w->force_close();
  }

  void on_worker_stopped() {
    if (++stopped_workers_ < workers_.size()) return;
    for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_})
      uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sid_expiry_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&ticket_rotation_), nullptr);
    cert_watcher_->close();
    retire_health();
    if (admin_) admin_->close();
    posts_.close();
  }

  AdminResponse admin_request(const AdminRequest& request) {
    if (request.method != "GET" && request.method != "HEAD") return {405, "method not allowed\n"};
    if (request.path == "/livez") {
      const std::uint64_t now = monotonic_ms();
      for (const auto& w : workers_) {
        if (now - w->last_tick_ms() > kLivenessWindowMs) return {503, "a worker loop is stuck\n"};
      }
      return {200, "ok\n"};
    }
    if (request.path == "/metrics") return {200, metrics_text(), kPrometheusContentType};
    if (request.path != "/readyz" && !request.path.starts_with("/readyz/")) {
      return {404, "not found\n"};
    }
    // Ready: listeners up, config loaded, every required check passing and fresh, not
    // draining. Answers come from the cached state: asking never adds probes.
    const auto format = health::report_format(request.query, request.accept);
    health::HealthStatePtr state = checker_ ? checker_->current() : nullptr;
    if (request.path == "/readyz") {
      return admin_response(
          health::readiness_report(state.get(), draining_, monotonic_ms(), format));
    }
    if (request.path.starts_with("/readyz/") && state) {
      const std::string_view name = request.path.substr(8);
      if (auto report = health::check_report(*state, name, monotonic_ms(), format)) {
        return admin_response(*report);
      }
      return {404, "no check named " + std::string(name) + "\n"};
    }
    return {404, "not found\n"};
  }

  std::string metrics_text() const {
    MetricsInput input;
    for (const auto& w : workers_) input.workers.push_back(w->published_stats());
    health::HealthStatePtr state = checker_ ? checker_->current() : nullptr;
    input.health = state.get();
    input.handshakes = tls::server_handshake_counts();
    input.now_ms = monotonic_ms();
    input.draining = draining_;
    input.ready = health::is_ready(state.get(), draining_, input.now_ms);
    input.generation = snapshot_->generation;
    return render_metrics(input);
  }

  static AdminResponse admin_response(health::Report report) {
    return {report.status, std::move(report.body), report.content_type};
  }

  void write_ready_file() {
    if (options_.ready_file.empty()) return;
    std::string text;
    for (const std::string& a : listener_addresses_) text += "listener " + a + "\n";
    if (!admin_address_.empty()) text += "admin " + admin_address_ + "\n";
    text += "generation " + std::to_string(snapshot_->generation) + "\n";
    const std::string tmp = options_.ready_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fwrite(text.data(), 1, text.size(), f);
      std::fclose(f);
      std::rename(tmp.c_str(), options_.ready_file.c_str());
    }
  }

  RunOptions options_;
  uv_loop_t loop_{};
  PostQueue posts_;
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_timer_t drain_timer_{};
  std::unique_ptr<AdminServer> admin_;
  SidTable sids_;  // Engine.IO sessions -> host, shared by the workers
  uv_timer_t sid_expiry_{};
  uv_timer_t ticket_rotation_{};
  std::vector<std::unique_ptr<Worker>> workers_;
  // Snapshot ingredients: what publish() combines.
  std::shared_ptr<tls::TicketKeys> ticket_keys_;  // one set for every context: resumption
                                                  // works on any worker and across reloads
  Snapshot::TlsContexts tls_;
  Snapshot::UpstreamTls upstream_tls_;  // per upstream, rebuilt on reload
  std::vector<health::HostSetPtr> host_sets_;
  std::unique_ptr<CertificateWatcher> cert_watcher_;
  std::unique_ptr<health::Checker> checker_;
  std::unique_ptr<health::Resolver> resolver_;
  health::HealthStatePtr health_;
  std::vector<std::unique_ptr<health::Checker>> retired_checkers_;
  std::vector<std::unique_ptr<health::Resolver>> retired_resolvers_;
  SnapshotPtr snapshot_;
  std::vector<std::string> listener_addresses_;
  std::string admin_address_;
  std::size_t stopped_workers_ = 0;
  bool draining_ = false;
};

}  // namespace

int run_server(const RunOptions& options) {
  Control control(options);
  return control.run();
}

}  // namespace gh::proxy
