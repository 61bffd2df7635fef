#include "proxy/worker.hpp"

#include <malloc.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "proxy/h1_connection.hpp"
#include "proxy/h2_connection.hpp"

namespace gh::proxy {
namespace {

constexpr std::uint64_t kTickMs = 250;
constexpr std::size_t kAccessLogFlushBytes = 64 * 1024;
// Free buffers a worker keeps: busy tunnels and exchanges take and give back a buffer per
// read, and beyond the pool each give-back was a free() and each take a malloc() that the
// kernel had to zero again (measured: one madvise per loop turn with 50 busy tunnels at 32).
// At most ~2 MiB per worker.
constexpr std::size_t kFreeBuffers = 128;

std::size_t buffer_size_for(const config::Config& config) {
  // A whole head must fit in one buffer so its fields stay contiguous for the parser.
  return std::max<std::size_t>(16 * 1024, config.limits.header_bytes + 1024);
}

}  // namespace

Worker::Worker(unsigned index, std::vector<int> listen_fds, SnapshotPtr snapshot, SidTable& sids,
               WorkerHooks hooks)
    : index_(index),
      listen_fds_(std::move(listen_fds)),
      sids_(sids),
      hooks_(std::move(hooks)),
      buffers_(buffer_size_for(*snapshot->config), kFreeBuffers) {
  uv_loop_init(&loop_);
  posts_.init(&loop_);
  deferred_.init(&loop_);
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  adopt_snapshot(std::move(snapshot));
  last_tick_ms_ = monotonic_ms();
}

Worker::~Worker() {
  join();
  for (int fd : listen_fds_) ::close(fd);
  uv_loop_close(&loop_);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::publish(SnapshotPtr snapshot) {
  posts_.post([this, s = std::move(snapshot)]() mutable { adopt_snapshot(std::move(s)); });
}

void Worker::drain() {
  posts_.post([this] {
    draining_ = true;
    stop_listening();
    std::vector<ClientConnection*> all;
    for (auto& [ptr, owned] : connections_) all.push_back(ptr);
    for (ClientConnection* c : all) c->drain();
    maybe_stop();
  });
}

void Worker::force_close() {
  posts_.post([this] {
    draining_ = true;
    stop_listening();
    std::vector<ClientConnection*> all;
    for (auto& [ptr, owned] : connections_) all.push_back(ptr);
    for (ClientConnection* c : all) c->close();
    maybe_stop();
  });
}

void Worker::run() {
  start_listening();
  uv_timer_start(
      &tick_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->on_tick(); }, kTickMs, kTickMs);
  uv_run(&loop_, UV_RUN_DEFAULT);
  flush_access_log();
  if (hooks_.on_stopped) hooks_.on_stopped(index_);
}

void Worker::adopt_snapshot(SnapshotPtr snapshot) {
  snapshot_ = std::move(snapshot);
  route_counters_.clear();
  for (const config::Route& route : snapshot_->config->routes) {
    route_counters_.push_back(&stats_.requests[route.host + route.path_prefix]);
  }
  unrouted_counters_ = &stats_.requests[WorkerStats::kUnrouted];
  groups_.assign(snapshot_->groups.size(), {});
  for (std::size_t g = 0; g < snapshot_->groups.size(); ++g) {
    for (const health::Host& host : snapshot_->groups[g]->hosts) {
      groups_[g].hosts.push_back(&host_state(host.label));
    }
    groups_[g].loads.resize(groups_[g].hosts.size());
  }
}

void Worker::start_listening() {
  for (std::size_t i = 0; i < listen_fds_.size(); ++i) {
    auto listening = std::make_unique<Listening>();
    listening->worker = this;
    listening->index = i;
    uv_tcp_init(&loop_, &listening->tcp);
    listening->tcp.data = listening.get();
    int rc = uv_tcp_open(&listening->tcp, listen_fds_[i]);
    auto* stream = reinterpret_cast<uv_stream_t*>(&listening->tcp);
    if (rc == 0) rc = uv_listen(stream, 1024, on_connection);
    if (rc != 0) GH_LOG_ERROR("worker %u: cannot listen: %s", index_, uv_strerror(rc));
    listeners_.push_back(std::move(listening));
  }
  listen_fds_.clear();  // the handles own the descriptors now
}

void Worker::stop_listening() {
  for (auto& listening : listeners_) {
    auto* handle = reinterpret_cast<uv_handle_t*>(&listening->tcp);
    if (!uv_is_closing(handle)) uv_close(handle, nullptr);
  }
}

void Worker::on_connection(uv_stream_t* listener, int status) {
  auto* listening = static_cast<Listening*>(listener->data);
  Worker* self = listening->worker;
  if (status < 0) {
    GH_LOG_WARN("accept: %s", uv_strerror(status));
    return;
  }
  ++self->stats_.connections_accepted;
  auto connection = std::make_unique<H1Connection>(*self, self->snapshot_);
  H1Connection* raw = connection.get();
  self->connections_.emplace(raw, std::move(connection));
  bool over_limit = self->connections_.size() > self->snapshot_->config->server.max_connections;
  raw->start(listener, listening->index, over_limit);
}

void Worker::start_http2(std::unique_ptr<tls::Transport> transport, std::size_t listener_index,
                         std::string_view received) {
  auto connection = std::make_unique<H2Connection>(*this, listener_index);
  H2Connection* raw = connection.get();
  connections_.emplace(raw, std::move(connection));
  raw->start(std::move(transport), received);
  if (draining_) raw->drain();
}

void Worker::forget(ClientConnection* connection) {
  connections_.erase(connection);
  maybe_stop();
}

void Worker::forget(UpstreamConn* conn) {
  upstream_conns_.erase(conn);
  maybe_stop();
}

HostState& Worker::host_state(const std::string& label) {
  auto& state = host_states_[label];
  if (!state) {
    state = std::make_unique<HostState>();
    state->label = label;
  }
  return *state;
}

UpstreamConn& Worker::open_upstream(HostState& host) {
  auto conn = std::make_unique<UpstreamConn>(*this, host);
  UpstreamConn* raw = conn.get();
  upstream_conns_.emplace(raw, std::move(conn));
  return *raw;
}

void Worker::on_tick() {
  last_tick_ms_.store(monotonic_ms(), std::memory_order_relaxed);
  flush_access_log();
  close_idle_upstreams(false);
  follow_upstream_demand();
  // Buffers a burst left unused go back to malloc, and from there to the system when
  // there were many (malloc keeps freed chunks in the middle of its heap resident until
  // asked): a busy worker's pool frees a block or two now and then, without madvise calls.
  constexpr std::size_t kTrimAfterFreeing = 8;
  if (buffers_.release_unused() >= kTrimAfterFreeing) malloc_trim(0);
  publish_stats();
}

void Worker::publish_stats() {
  auto copy = std::make_shared<WorkerStats>(stats_);
  copy->connections_open = connections_.size();
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (const HostState* host : groups_[g].hosts) {
      copy->hosts.push_back({snapshot_->groups[g]->group, host->label, host->active,
                             static_cast<unsigned>(host->idle.size()),
                             host->down_until_ms > now_ms()});
    }
  }
  std::lock_guard lock(published_mutex_);
  published_ = std::move(copy);
}

WorkerStatsPtr Worker::published_stats() const {
  std::lock_guard lock(published_mutex_);
  return published_;
}

void Worker::close_idle_upstreams(bool all) {
  const auto timeout =
      static_cast<std::uint64_t>(snapshot_->config->timeouts.upstream_keepalive.count());
  const std::uint64_t now = now_ms();
  for (auto& [label, state] : host_states_) {
    std::vector<UpstreamConn*> expired;
    for (UpstreamConn* conn : state->idle) {
      if (all || now - conn->idle_since() >= timeout) expired.push_back(conn);
    }
    for (UpstreamConn* conn : expired) conn->close();
  }
}

// Each tick a host's peak decays by 1/32 towards its current load (half-life ~5.5 s at
// 250 ms; below 32 it stays, as the old fixed pool of 32 did, until upstream_keepalive),
// and idle connections beyond it close, oldest first: a burst's connections outlive it
// for a while, then the pool shrinks back towards what is used.
void Worker::follow_upstream_demand() {
  for (auto& [label, state] : host_states_) {
    HostState& host = *state;
    host.peak = std::max(host.active, host.peak - host.peak / 32);
    if (host.idle.size() <= host.peak) continue;
    std::vector<UpstreamConn*> surplus(host.idle.begin(),
                                       host.idle.begin() + (host.idle.size() - host.peak));
    for (UpstreamConn* conn : surplus) conn->close();
  }
}

void Worker::maybe_stop() {
  if (!draining_ || stopping_ || !connections_.empty()) return;
  stopping_ = true;
  close_idle_upstreams(true);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  deferred_.close();
  posts_.close();
}

void Worker::access_log(std::string_view line) {
  access_log_buffer_.append(line);
  if (access_log_buffer_.size() >= kAccessLogFlushBytes) flush_access_log();
}

void Worker::flush_access_log() {
  if (access_log_buffer_.empty() || !hooks_.write_access_log) return;
  std::string lines;
  lines.reserve(access_log_buffer_.capacity());
  lines.swap(access_log_buffer_);
  hooks_.write_access_log(std::move(lines));
}

}  // namespace gh::proxy
