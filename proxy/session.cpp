#include "proxy/session.hpp"

#include <fcntl.h>

#include <cstring>
#include <ctime>

#include "core/clock.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "proxy/worker.hpp"

namespace gh::proxy {
namespace {

using http::BodyFraming;
using http::HeadKind;
using http::HeadScan;

constexpr config::Duration kLingerTimeout = std::chrono::seconds(2);
constexpr config::Duration kTrimAfter = std::chrono::seconds(1);

}  // namespace

Session::Session(Worker& worker, SnapshotPtr snapshot)
    : worker_(worker),
      snapshot_(std::move(snapshot)),
      client_timer_(worker.loop(), this,
                    [](void* self) { static_cast<Session*>(self)->on_client_timeout(); }),
      upstream_timer_(worker.loop(), this,
                      [](void* self) { static_cast<Session*>(self)->on_upstream_timeout(); }),
      request_parser_(HeadKind::request, snapshot_->config->limits.chunk_extension),
      response_parser_(HeadKind::response, snapshot_->config->limits.chunk_extension) {
  request_body_.session = this;
  response_body_.session = this;
  open_handles_ = 2;  // the timers
}

Session::~Session() = default;

void Session::start(uv_stream_t* listener, std::size_t listener_index, bool over_limit) {
  listener_index_ = listener_index;
  const auto& contexts = snapshot_->tls;
  if (listener_index < contexts.size() && contexts[listener_index]) {
    down_ = tls::accept_tls(worker_.loop(), listener, *this, contexts[listener_index]);
  } else {
    down_ = tls::accept_plain(worker_.loop(), listener, *this);
  }
  ++open_handles_;
  client_ip_ = down_->peer_ip();
  if (over_limit) {
    GH_LOG_WARN("%s: connection limit reached, answering 503", client_ip_.c_str());
    return respond_local(503, "too many connections\n", "Retry-After: 1\r\n");
  }
  arm_client_timer(config().timeouts.request_header);
  update_client_reads();
}

void Session::drain() {
  draining_ = true;
  if (phase_ == Phase::idle && in_.pending() == 0) close();
}

void Session::close() {
  if (client_timer_.closing()) return;  // already closing
  // A tunnel (101) or a response cut short is logged and counted when it ends.
  if (log_status_ != 0) write_access_log();
  phase_ = Phase::closing;
  release_upstream(false);
  const auto timer_closed = [](void* self) { static_cast<Session*>(self)->handle_closed(); };
  client_timer_.close(timer_closed);
  upstream_timer_.close(timer_closed);
  if (down_) down_->close();
}

void Session::on_closed() {
  handle_closed();
}

void Session::handle_closed() {
  if (--open_handles_ > 0) return;
  in_ = ByteBuffer{};
  out_ = ByteBuffer{};
  worker_.forget(this);  // destroys this
}

// ---- client side ---------------------------------------------------------------

uv_buf_t Session::read_buffer() {
  in_.acquire(worker_.buffers());
  return uv_buf_init(in_.end_ptr(), static_cast<unsigned>(in_.free_space()));
}

void Session::on_read(std::size_t n) {
  in_.produced(n);
  switch (phase_) {
    case Phase::idle:
    case Phase::head:
      process_input();
      break;
    case Phase::exchange:
      if (!request_complete_) pump_request_body();
      break;
    case Phase::tunnel:
      arm_client_timer(config().routes[route_.route].tunnel_idle);  // traffic either way
      pump_tunnel();
      break;
    case Phase::closing:
      in_.consume(in_.pending());
      in_.compact();
      break;  // lingering: discard
  }
  update_client_reads();
}

void Session::on_read_end(int status) {
  client_reading_ = false;
  client_eof_ = true;
  if (phase_ == Phase::tunnel && status == UV_EOF) return pump_tunnel();  // half-close
  // The client finished sending: answer what it asked, pipelined requests included.
  if (phase_ == Phase::exchange && request_complete_ && status == UV_EOF) return;
  close();
}

void Session::on_write_done(int status) {
  client_writing_ = false;
  to_client_.clear();
  if (status < 0) return close();
  if (phase_ == Phase::closing) return linger_close();
  out_.compact();
  if (phase_ == Phase::tunnel) {
    pump_tunnel();
    update_upstream_reads();
    return;
  }
  if (!response_complete_) pump_response_body();
  update_upstream_reads();
  maybe_finish_exchange();
}

void Session::update_client_reads() {
  if (client_eof_ || !down_) return;
  if (!upstream_writing_) in_.compact();
  const bool want = !in_.allocated() || in_.free_space() > 0;
  if (want && !client_reading_) {
    client_reading_ = down_->start_reading() == 0;
  } else if (!want && client_reading_) {
    down_->stop_reading();
    client_reading_ = false;
  }
}

void Session::process_input() {
  while (phase_ == Phase::idle || phase_ == Phase::head) {
    if (in_.pending() == 0) return client_eof_ ? close() : void();
    if (phase_ == Phase::idle) {
      phase_ = Phase::head;
      arm_client_timer(config().timeouts.request_header);
    }
    std::size_t before = in_.pending();
    process_head();
    if (phase_ == Phase::head && in_.pending() == before) {
      if (client_eof_) close();  // a partial head and no more bytes coming
      return;
    }
  }
}

void Session::process_head() {
  HeadScan scan =
      request_parser_.scan_head({in_.begin_ptr(), in_.pending()}, snapshot_->head_limits);
  if (scan.state == HeadScan::State::invalid) return fail(scan.error.status, scan.error.reason);
  if (scan.state == HeadScan::State::incomplete) {
    if (in_.free_space() == 0) {
      in_.compact();
      if (in_.free_space() == 0) fail(431, "request header too large");
    }
    return;
  }
  auto step = request_parser_.execute(in_.begin_ptr(), scan.length, nullptr);
  if (step.outcome == http::HttpParser::Outcome::error) {
    return fail(400, request_parser_.error_reason());
  }
  http::HeadError error;
  request_ = {};
  if (!http::analyze_request(request_parser_.head(), request_, error)) {
    return fail(error.status, error.reason);
  }
  start_exchange(scan.length, step.outcome == http::HttpParser::Outcome::message_complete);
}

void Session::start_exchange(std::size_t head_length, bool message_complete) {
  snapshot_ = worker_.snapshot();  // a keep-alive connection follows reloads
  const http::MessageHead& head = request_parser_.head();
  phase_ = Phase::exchange;
  exchange_start_ms_ = worker_.now_ms();
  log_request_.assign(head.method).append(" ").append(head.target);
  log_request_.append(head.version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1");
  log_status_ = 0;
  log_bytes_ = 0;
  request_body_bytes_ = 0;
  request_complete_ = message_complete;
  response_head_done_ = response_started_ = response_complete_ = false;
  upstream_responded_ = upstream_fresh_only_ = false;
  upstream_label_.clear();
  tried_hosts_ = 0;
  if (!request_.keep_alive || draining_) close_after_response_ = true;

  if (head.method == "CONNECT") return fail(405, "CONNECT is not supported");
  const std::size_t body_limit = config().limits.body;
  if (body_limit && request_.framing == BodyFraming::content_length &&
      request_.content_length > body_limit) {
    return fail(413, "request body too large");
  }
  normalize_host(request_.host, host_);
  if (answer_redirect_listener()) return;
  auto target = snapshot_->router.match(host_, head.target);
  if (!target) return fail(404, "no route for this host and path");
  route_ = *target;
  route_counters_ = &worker_.route_counters(route_.route);
  host_set_ = snapshot_->groups[route_.upstream];
  choose_affinity();

  upstream_head_.clear();
  const ForwardedFor forwarded{client_ip_, down_->secure() ? "https" : "http", host_set_->group};
  write_upstream_request(head, request_, forwarded, upstream_head_);
  request_body_pumped_ = false;
  in_.consume(head_length);
  if (request_complete_) {
    client_timer_.disarm();
  } else {
    arm_client_timer(config().timeouts.client_body);
  }
  connect_upstream();
}

void Session::RequestBody::on_body(const char* data, std::size_t length) {
  Session& s = *session;
  s.request_body_bytes_ += length;
  if (s.request_.framing == BodyFraming::chunked) {
    std::size_t mark = s.to_upstream_.mark();
    append_chunk_header(length, s.to_upstream_.scratch());
    s.to_upstream_.add_scratch_since(mark);
    s.to_upstream_.add_view(data, length);
    s.to_upstream_.add_text("\r\n");
  } else {
    s.to_upstream_.add_view(data, length);
  }
}

void Session::pump_request_body() {
  if (request_complete_ || !upstream_connected_ || upstream_writing_ || in_.pending() == 0) return;
  request_body_pumped_ = true;
  auto step = request_parser_.execute(in_.begin_ptr(), in_.pending(), &request_body_);
  if (step.outcome == http::HttpParser::Outcome::error) {
    return fail(400, request_parser_.error_reason());
  }
  const std::size_t body_limit = config().limits.body;
  if (body_limit && request_body_bytes_ > body_limit) return fail(413, "request body too large");
  in_.consume(step.consumed);
  if (step.outcome == http::HttpParser::Outcome::message_complete) {
    request_complete_ = true;
    client_timer_.disarm();
    if (request_.framing == BodyFraming::chunked) to_upstream_.add_text("0\r\n\r\n");
  } else {
    arm_client_timer(config().timeouts.client_body);
  }
  flush_to_upstream();
}

void Session::flush_to_upstream() {
  if (!upstream_connected_ || upstream_writing_ || to_upstream_.empty()) return;
  const auto& bufs = to_upstream_.buffers();
  if (int rc = upstream_->write(bufs.data(), static_cast<unsigned>(bufs.size())); rc != 0) {
    return fail(502, "upstream write failed");
  }
  upstream_writing_ = true;
}

void Session::on_upstream_write_done(int status) {
  upstream_writing_ = false;
  to_upstream_.clear();
  if (status < 0) {
    if (phase_ == Phase::tunnel) return close();
    // A reused connection the server had closed: safe to retry if nothing came back
    // and the request had no body to replay.
    if (upstream_->reused() && !upstream_responded_ && !request_body_pumped_) {
      return upstream_connect_failed("reused upstream connection closed");
    }
    return fail(502, "upstream write failed");
  }
  if (phase_ == Phase::tunnel) {
    pump_tunnel();
    update_client_reads();
    return;
  }
  pump_request_body();
  update_client_reads();
  maybe_finish_exchange();
}

// ---- HTTPS redirect and ACME challenges ----------------------------------------------

namespace {
constexpr std::string_view kAcmePrefix = "/.well-known/acme-challenge/";
constexpr std::size_t kAcmeMaxBytes = 64 * 1024;

// ACME tokens are base64url: anything else (slashes, dots) could escape the webroot.
bool is_acme_token(std::string_view token) {
  if (token.empty() || token.size() > 256) return false;
  for (char c : token) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}
}  // namespace

// True when the request was answered here: 301 to https, or an ACME challenge file.
bool Session::answer_redirect_listener() {
  if (listener_index_ >= config().listeners.size()) return false;
  const config::Listener& listener = config().listeners[listener_index_];
  if (!listener.redirect_to_https) return false;
  const std::string_view target = request_parser_.head().target;
  const std::string_view path = target.substr(0, target.find('?'));
  if (!listener.acme_webroot.empty() && path.starts_with(kAcmePrefix)) {
    std::string_view token = path.substr(kAcmePrefix.size());
    if (!is_acme_token(token)) {
      respond_local(404, "not found\n");
    } else {
      serve_acme_challenge(token);
    }
    return true;
  }
  if (host_.empty()) {
    respond_local(400, "a redirect to https needs a Host header\n");
    return true;
  }
  const std::string location = "Location: https://" + host_ + std::string(target) + "\r\n";
  respond_local(301, "moved to https\n", location);
  return true;
}

void Session::serve_acme_challenge(std::string_view token) {
  const std::string path = config().listeners[listener_index_].acme_webroot +
                           std::string(kAcmePrefix) + std::string(token);
  ++open_handles_;  // the file request keeps the session alive until it calls back
  acme_ = std::make_unique<AcmeRead>();
  acme_->req.data = this;
  if (uv_fs_open(worker_.loop(), &acme_->req, path.c_str(), O_RDONLY | O_CLOEXEC, 0,
                 on_acme_open) != 0) {
    uv_fs_req_cleanup(&acme_->req);
    acme_.reset();
    --open_handles_;
    respond_local(404, "not found\n");
  }
}

void Session::on_acme_open(uv_fs_t* req) {
  auto* self = static_cast<Session*>(req->data);
  const auto fd = static_cast<uv_file>(req->result);
  uv_fs_req_cleanup(req);
  if (fd < 0) {
    const std::unique_ptr<AcmeRead> read = std::move(self->acme_);  // freed on return
    if (self->phase_ != Phase::closing) self->respond_local(404, "not found\n");
    return self->handle_closed();
  }
  self->acme_->file = fd;
  self->acme_->body.resize(kAcmeMaxBytes);
  uv_buf_t buf = uv_buf_init(self->acme_->body.data(), static_cast<unsigned>(kAcmeMaxBytes));
  if (uv_fs_read(req->loop, req, fd, &buf, 1, 0, on_acme_read) != 0) {
    self->acme_->body.clear();
    uv_fs_close(req->loop, req, fd, on_acme_closed);
  }
}

void Session::on_acme_read(uv_fs_t* req) {
  auto* self = static_cast<Session*>(req->data);
  self->acme_->body.resize(req->result > 0 ? static_cast<std::size_t>(req->result) : 0);
  uv_fs_req_cleanup(req);
  uv_fs_close(req->loop, req, self->acme_->file, on_acme_closed);
}

void Session::on_acme_closed(uv_fs_t* req) {
  auto* self = static_cast<Session*>(req->data);
  uv_fs_req_cleanup(req);
  const std::unique_ptr<AcmeRead> read = std::move(self->acme_);  // freed on return
  if (self->phase_ != Phase::closing) {
    if (read->body.empty()) {
      self->respond_local(404, "not found\n");
    } else {
      self->respond_local(200, read->body);
    }
  }
  self->handle_closed();
}

// ---- upstream selection ----------------------------------------------------------

void Session::choose_affinity() {
  pinned_host_ = kNoHost;
  learn_sid_ = set_affinity_cookie_ = false;
  sid_capture_.clear();
  const config::Route& route = config().routes[route_.route];
  const health::HostSet& set = *host_set_;
  const std::string_view target = request_parser_.head().target;
  switch (effective_sticky(route, set)) {
    case config::Sticky::socketio:
      if (auto sid = query_param(target, "sid"); sid && !sid->empty()) {
        if (auto label = worker_.sids().lookup(*sid, worker_.now_ms())) {
          for (std::size_t i = 0; i < set.hosts.size(); ++i) {
            if (set.hosts[i].label == *label) pinned_host_ = i;
          }
        }
      } else if (query_param(target, "EIO")) {
        learn_sid_ = true;  // a handshake: balanced normally, its sid learned from the answer
      }
      break;
    case config::Sticky::cookie: {
      for (const http::Header& h : request_parser_.head().headers) {
        if (!http::iequals(h.name, "cookie")) continue;
        if (auto value = cookie_value(h.value, route.sticky_cookie)) {
          pinned_host_ = host_for_cookie(set, *value);
        }
      }
      if (pinned_host_ != kNoHost && !set.hosts[pinned_host_].healthy) pinned_host_ = kNoHost;
      set_affinity_cookie_ = pinned_host_ == kNoHost;
      break;
    }
    case config::Sticky::ip:
      pinned_host_ = rendezvous_host(set, client_ip_);
      break;
    case config::Sticky::automatic:
    case config::Sticky::none:
      break;
  }
}

void Session::learn_session_id() {
  if (!learn_sid_ || log_status_ != 200 || upstream_label_.empty()) return;
  learn_sid_ = false;
  if (auto sid = engineio_sid(sid_capture_)) {
    worker_.sids().learn(*sid, upstream_label_, worker_.now_ms());
  }
}

void Session::connect_upstream() {
  const health::HostSet& set = *host_set_;
  if (set.hosts.empty()) return fail(503, "no upstream server available");
  // The worker's per-group state lines up with this set only under the same snapshot
  // (a reload during a retry is rare: balance without load data then).
  Worker::GroupState* group =
      worker_.snapshot() == snapshot_ ? &worker_.group(route_.upstream) : nullptr;
  const config::Upstream& upstream_config = config().upstreams[route_.upstream];
  unsigned spare_cursor = 0;
  if (group) {
    const std::uint64_t now = worker_.now_ms();
    // Like nginx's max_fails, passive health never takes out the only host.
    const bool passive = upstream_config.passive_failures > 0 && group->hosts.size() > 1;
    for (std::size_t i = 0; i < group->hosts.size(); ++i) {
      group->loads[i].active = group->hosts[i]->active;
      group->loads[i].passive_down = passive && group->hosts[i]->down_until_ms > now;
    }
  }
  const bool pinned_untried = pinned_host_ < set.hosts.size() &&
                              (pinned_host_ >= 64 || !((tried_hosts_ >> pinned_host_) & 1u));
  host_index_ =
      pinned_untried
          ? pinned_host_
          : pick_host(set,
                      group ? std::span<const HostLoad>(group->loads) : std::span<const HostLoad>(),
                      tried_hosts_, group ? group->cursor : spare_cursor, upstream_config.panic);
  if (host_index_ == kNoHost && tried_hosts_ == 0) return fail(503, "no healthy upstream server");
  if (host_index_ == kNoHost) return fail(502, "no upstream server could be reached");
  if (host_index_ < 64) tried_hosts_ |= std::uint64_t{1} << host_index_;

  HostState& host =
      group ? *group->hosts[host_index_] : worker_.host_state(set.hosts[host_index_].label);
  upstream_label_ = host.label;
  ++host.active;
  upstream_responded_ = false;
  to_upstream_.clear();
  to_upstream_.add_view(upstream_head_.data(), upstream_head_.size());
  if (!host.idle.empty() && !upstream_fresh_only_) {
    upstream_ = host.idle.back();
    upstream_->attach(*this);
    upstream_connected_ = true;
    arm_upstream_timer(config().timeouts.upstream_read);
    update_upstream_reads();
    send_head_and_body();
    return;
  }
  upstream_ = &worker_.open_upstream(host);
  upstream_connected_ = false;
  const health::Host& target = set.hosts[host_index_];
  const auto* address = reinterpret_cast<const sockaddr*>(&target.address);
  const auto& tls = snapshot_->upstream_tls[route_.upstream];
  std::string server_name;
  if (tls) {
    // The configured tls_server_name, else the host part of the server it came from.
    auto server = config::parse_host_port(target.name);
    server_name = tls->server_name_for(server ? server->host : std::string());
  }
  if (upstream_->connect(address, *this, tls, server_name) != 0) {
    return upstream_connect_failed("connect failed");
  }
  arm_upstream_timer(config().timeouts.upstream_connect);
}

void Session::on_upstream_connected(int status) {
  if (status < 0) return upstream_connect_failed(uv_strerror(status));
  upstream_connected_ = true;
  arm_upstream_timer(config().timeouts.upstream_read);
  update_upstream_reads();
  send_head_and_body();
}

// The head goes out together with whatever body bytes are already here: one write for a
// small POST instead of two.
void Session::send_head_and_body() {
  pump_request_body();  // adds body pieces behind the head and flushes
  flush_to_upstream();  // the head alone when there was no body to add
}

void Session::upstream_connect_failed(const char* why) {
  const std::string label = upstream_ ? upstream_->host().label : std::string("?");
  GH_LOG_WARN("upstream %s (%s): %s", label.c_str(), host_set_->group.c_str(), why);
  const bool was_reused = upstream_ && upstream_->reused();
  if (upstream_ && !was_reused) record_passive_health(upstream_->host(), false);
  release_upstream(false);
  // Only a request whose body never left can be sent again.
  if (request_body_pumped_) return fail(502, "upstream connection failed");
  if (was_reused) {
    // A stale pooled connection says nothing about the host: retry it on a new one.
    upstream_fresh_only_ = true;
    if (host_index_ < 64) tried_hosts_ &= ~(std::uint64_t{1} << host_index_);
  }
  connect_upstream();
}

void Session::record_passive_health(HostState& host, bool ok) {
  if (ok) {
    host.failures = 0;
    return;
  }
  const config::Upstream& upstream = config().upstreams[route_.upstream];
  if (upstream.passive_failures == 0 || ++host.failures < upstream.passive_failures) return;
  host.failures = 0;
  host.down_until_ms =
      worker_.now_ms() + static_cast<std::uint64_t>(upstream.passive_cooldown.count());
  worker_.sids().forget_host(host.label);  // its Socket.IO sessions re-handshake elsewhere
  GH_LOG_WARN("upstream %s (%s): out of rotation for %lld ms after %u failures", host.label.c_str(),
              upstream.name.c_str(), static_cast<long long>(upstream.passive_cooldown.count()),
              upstream.passive_failures);
}

void Session::release_upstream(bool reusable) {
  if (!upstream_) return;
  UpstreamConn* conn = upstream_;
  upstream_ = nullptr;
  upstream_connected_ = upstream_writing_ = false;
  if (conn->host().active > 0) --conn->host().active;
  upstream_timer_.disarm();
  if (reusable) {
    conn->release_to_pool(host_set_ ? host_set_->keepalive : 0, worker_.now_ms());
  } else {
    conn->close();
  }
}

// ---- response path ---------------------------------------------------------------

uv_buf_t Session::upstream_read_buffer() {
  out_.acquire(worker_.buffers());
  return uv_buf_init(out_.end_ptr(), static_cast<unsigned>(out_.free_space()));
}

void Session::update_upstream_reads() {
  if (!upstream_ || !upstream_connected_) return;
  if (!client_writing_) out_.compact();
  // Reads stay on after a complete response (see UpstreamConn::start_reading); only a
  // full buffer pauses them.
  const bool want = !out_.allocated() || out_.free_space() > 0;
  if (want) {
    upstream_->start_reading();
  } else {
    upstream_->stop_reading();
  }
}

void Session::on_upstream_read(std::size_t n) {
  out_.produced(n);
  upstream_responded_ = true;
  if (phase_ == Phase::tunnel) {
    arm_client_timer(config().routes[route_.route].tunnel_idle);
    pump_tunnel();
  } else if (response_complete_) {
    response_.keep_alive = false;  // bytes after a complete response: never reuse
  } else {
    arm_upstream_timer(config().timeouts.upstream_read);
    process_response();
  }
  update_upstream_reads();
}

void Session::process_response() {
  while (!response_head_done_ && phase_ == Phase::exchange) {
    if (!process_response_head()) return;
  }
  if (phase_ == Phase::exchange && !client_writing_) pump_response_body();
}

// Returns true when a head was consumed (a final one, or an interim 1xx to loop on).
bool Session::process_response_head() {
  const std::string_view method = request_parser_.head().method;
  response_parser_.begin_message();
  if (method == "HEAD") response_parser_.expect_no_body();
  HeadScan scan =
      response_parser_.scan_head({out_.begin_ptr(), out_.pending()}, snapshot_->head_limits);
  if (scan.state == HeadScan::State::invalid) {
    if (upstream_) record_passive_health(upstream_->host(), false);
    fail(502, scan.error.reason);
    return false;
  }
  if (scan.state == HeadScan::State::incomplete) {
    if (out_.free_space() == 0 && !client_writing_) {
      out_.compact();
      if (out_.free_space() == 0) fail(502, "upstream response header too large");
    }
    return false;
  }
  auto step = response_parser_.execute(out_.begin_ptr(), scan.length, nullptr);
  http::HeadError error;
  response_ = {};
  if (step.outcome == http::HttpParser::Outcome::error ||
      !http::analyze_response(response_parser_.head(), method, response_, error)) {
    fail(502, step.outcome == http::HttpParser::Outcome::error ? response_parser_.error_reason()
                                                               : error.reason);
    return false;
  }
  const http::MessageHead& head = response_parser_.head();
  const int client_minor = request_parser_.head().version_minor;
  if (upstream_) record_passive_health(upstream_->host(), true);
  std::string& scratch = to_client_.scratch();
  std::size_t mark = to_client_.mark();
  if (head.status == 101) {
    if (request_.upgrade.empty()) {
      fail(502, "unexpected 101 from upstream");
      return false;
    }
    write_client_response(head, response_parser_.reason(), response_, ClientFraming::none, true,
                          client_minor, scratch);
    to_client_.add_scratch_since(mark);
    out_.consume(scan.length);
    log_status_ = 101;
    start_tunnel();
    return false;
  }
  if (head.status < 200) {
    // Interim response (100 Continue, 103 Early Hints): relay and read the next head.
    if (client_minor >= 1) {
      write_client_response(head, response_parser_.reason(), response_, ClientFraming::none, true,
                            client_minor, scratch);
      to_client_.add_scratch_since(mark);
      response_started_ = true;
    }
    out_.consume(scan.length);
    flush_to_client();
    return out_.pending() > 0 && !client_writing_;
  }
  client_framing_ = client_framing(response_, client_minor);
  // An early answer (before the request body ended) closes the client connection after.
  if (!response_.keep_alive || !request_complete_ || draining_) {
    if (!request_complete_) close_after_response_ = true;
  }
  bool keep_alive = !close_after_response_ && !draining_;
  std::string extra;
  if (set_affinity_cookie_ && !upstream_label_.empty()) {
    const config::Route& route = config().routes[route_.route];
    extra = "Set-Cookie: " + route.sticky_cookie + "=" + affinity_cookie_value(upstream_label_) +
            "; Path=/; HttpOnly; SameSite=Lax" + (down_->secure() ? "; Secure" : "") + "\r\n";
  }
  append_hsts(extra, &response_parser_.head());
  write_client_response(head, response_parser_.reason(), response_, client_framing_, keep_alive,
                        client_minor, scratch, extra);
  to_client_.add_scratch_since(mark);
  if (!keep_alive || client_framing_ == ClientFraming::close_delimited)
    close_after_response_ = true;
  log_status_ = head.status;
  response_head_done_ = response_started_ = true;
  out_.consume(scan.length);
  if (step.outcome == http::HttpParser::Outcome::message_complete) response_complete_ = true;
  return true;
}

// Strict-Transport-Security on TLS listeners that ask for it, on every response
// (Gatehouse's own errors too, like nginx's `always`), unless the app set its own.
void Session::append_hsts(std::string& headers, const http::MessageHead* upstream_head) const {
  if (!down_->secure() || listener_index_ >= config().listeners.size()) return;
  const auto& tls = config().listeners[listener_index_].tls;
  if (!tls || !tls->hsts_max_age) return;
  if (upstream_head) {
    for (const http::Header& h : upstream_head->headers) {
      if (http::iequals(h.name, "strict-transport-security")) return;
    }
  }
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*tls->hsts_max_age).count();
  headers += "Strict-Transport-Security: max-age=" + std::to_string(seconds) + "\r\n";
}

void Session::ResponseBody::on_body(const char* data, std::size_t length) {
  Session& s = *session;
  s.log_bytes_ += length;
  if (s.learn_sid_ && s.sid_capture_.size() < 256) {
    s.sid_capture_.append(data, std::min<std::size_t>(length, 256 - s.sid_capture_.size()));
  }
  if (s.client_framing_ == ClientFraming::chunked) {
    std::size_t mark = s.to_client_.mark();
    append_chunk_header(length, s.to_client_.scratch());
    s.to_client_.add_scratch_since(mark);
    s.to_client_.add_view(data, length);
    s.to_client_.add_text("\r\n");
  } else {
    s.to_client_.add_view(data, length);
  }
}

void Session::pump_response_body() {
  if (!response_head_done_ || client_writing_) return;
  if (!response_complete_ && out_.pending() > 0) {
    auto step = response_parser_.execute(out_.begin_ptr(), out_.pending(), &response_body_);
    if (step.outcome == http::HttpParser::Outcome::error) {
      return fail(502, response_parser_.error_reason());
    }
    out_.consume(step.consumed);
    if (step.outcome == http::HttpParser::Outcome::message_complete) {
      response_complete_ = true;
      if (client_framing_ == ClientFraming::chunked) to_client_.add_text("0\r\n\r\n");
      // Bytes after a complete response mean the upstream is not speaking HTTP cleanly.
      if (out_.pending() > 0) response_.keep_alive = false;
    }
  }
  if (response_complete_) {
    upstream_timer_.disarm();
    learn_session_id();  // before the client can send the session's next request
  }
  flush_to_client();
}

void Session::flush_to_client() {
  if (client_writing_ || to_client_.empty()) return;
  const auto& bufs = to_client_.buffers();
  if (down_->write(bufs.data(), static_cast<unsigned>(bufs.size())) != 0) return close();
  client_writing_ = true;
}

void Session::on_upstream_read_end(int status) {
  if (phase_ == Phase::tunnel) {
    if (status != UV_EOF) return close();
    upstream_eof_ = true;
    return pump_tunnel();  // half-close towards the client once its bytes are out
  }
  if (response_head_done_ && response_.framing == BodyFraming::until_close && status == UV_EOF &&
      response_parser_.finish()) {
    response_complete_ = true;
    response_.keep_alive = false;
    if (client_framing_ == ClientFraming::chunked) to_client_.add_text("0\r\n\r\n");
    release_upstream(false);
    upstream_timer_.disarm();
    flush_to_client();
    return maybe_finish_exchange();
  }
  if (!upstream_responded_ && upstream_ && upstream_->reused() && !request_body_pumped_ &&
      !upstream_writing_) {
    return upstream_connect_failed("pooled connection closed by upstream");
  }
  fail(502, status == UV_EOF ? "upstream closed the connection early" : uv_strerror(status));
}

// ---- tunnel ----------------------------------------------------------------------

void Session::start_tunnel() {
  phase_ = Phase::tunnel;
  upstream_timer_.disarm();
  // HTTP is over on this connection: only the two buffers matter from here on.
  request_parser_.release_memory();
  response_parser_.release_memory();
  std::string().swap(upstream_head_);
  std::string().swap(sid_capture_);
  arm_client_timer(config().routes[route_.route].tunnel_idle);
  response_started_ = true;
  pump_tunnel();
}

// Copies whatever each side has buffered to the other, one write in flight per
// direction; reading a side pauses while its buffer is full (update_*_reads). A FIN is
// passed on once the bytes before it are written; when both sides ended, close.
void Session::pump_tunnel() {
  if (!client_writing_ && out_.pending() > 0) {
    to_client_.add_view(out_.begin_ptr(), out_.pending());
    out_.consume(out_.pending());
  }
  flush_to_client();  // also sends the 101 head queued by process_response_head
  if (upstream_ && !upstream_writing_ && in_.pending() > 0) {
    to_upstream_.add_view(in_.begin_ptr(), in_.pending());
    in_.consume(in_.pending());
  }
  if (upstream_) flush_to_upstream();
  const bool to_client_done = !client_writing_ && out_.pending() == 0;
  const bool to_upstream_done = !upstream_writing_ && in_.pending() == 0;
  if (upstream_eof_ && to_client_done && !client_shut_) {
    client_shut_ = true;
    down_->shutdown_write();
  }
  if (client_eof_ && to_upstream_done && upstream_ && !upstream_shut_) {
    upstream_shut_ = true;
    upstream_->shutdown_write();
  }
  // An idle tunnel holds no buffers: they go back to the pool once drained.
  if (to_client_done) out_.release_if_empty(worker_.buffers());
  if (to_upstream_done) in_.release_if_empty(worker_.buffers());
  if (client_eof_ && upstream_eof_ && to_client_done && to_upstream_done) close();
}

// ---- endings ---------------------------------------------------------------------

void Session::maybe_finish_exchange() {
  if (phase_ != Phase::exchange || !response_complete_ || client_writing_) return;
  if (!to_client_.empty()) return flush_to_client();
  if (!request_complete_) {
    // Answered before the request ended: the rest of its body is never read.
    close_after_response_ = true;
  } else if (upstream_writing_ || !to_upstream_.empty()) {
    return;
  }
  finish_exchange();
}

void Session::finish_exchange() {
  learn_session_id();
  write_access_log();
  route_counters_ = nullptr;
  release_upstream(response_.keep_alive && request_complete_);
  out_.compact();
  out_.release_if_empty(worker_.buffers());
  if (close_after_response_ || draining_) return linger_close();
  phase_ = Phase::idle;
  response_head_done_ = response_started_ = response_complete_ = false;
  log_request_.clear();
  request_parser_.begin_message();
  if (in_.pending() > 0 || client_eof_) {
    process_input();  // a pipelined request is already here (or the client is gone)
  } else {
    in_.compact();
    in_.release_if_empty(worker_.buffers());
    arm_idle_timer();
  }
  update_client_reads();
}

void Session::fail(int status, const char* reason) {
  if (phase_ == Phase::closing) return;
  if (status >= 500) {
    GH_LOG_WARN("%s \"%s\": %d %s", client_ip_.c_str(), log_request_.c_str(), status, reason);
  } else {
    GH_LOG_INFO("%s: %d %s", client_ip_.c_str(), status, reason);
  }
  release_upstream(false);
  if (response_started_ || phase_ == Phase::tunnel) return close();
  std::string body(reason);
  body.push_back('\n');
  std::string_view extra = status == 503 ? "Retry-After: 1\r\n" : "";
  respond_local(status, body, extra);
}

void Session::respond_local(int status, std::string_view body, std::string_view extra_headers) {
  log_status_ = status;
  log_bytes_ = body.size();
  if (log_request_.empty()) log_request_ = "-";
  write_access_log();
  phase_ = Phase::closing;
  upstream_timer_.disarm();
  arm_client_timer(kLingerTimeout);
  // A write in flight points into the outbox: never rewrite it under its feet.
  if (client_writing_) return close();
  to_client_.clear();
  std::string extra(extra_headers);
  append_hsts(extra, nullptr);
  std::size_t mark = to_client_.mark();
  write_local_response(status, body, false, extra, to_client_.scratch());
  to_client_.add_scratch_since(mark);
  response_started_ = true;
  const auto& bufs = to_client_.buffers();
  if (down_->write(bufs.data(), static_cast<unsigned>(bufs.size())) != 0) return close();
  client_writing_ = true;
}

// After a final response on a connection we close: send FIN, read and discard what the
// client still sends for a moment, then close. Closing with unread input would make the
// kernel send RST, which can destroy the response before the client reads it.
void Session::linger_close() {
  if (client_timer_.closing()) return;
  phase_ = Phase::closing;
  release_upstream(false);
  down_->shutdown_write();
  arm_client_timer(kLingerTimeout);
  in_.consume(in_.pending());
  in_.compact();
  update_client_reads();
}

void Session::arm_client_timer(config::Duration timeout) {
  client_timer_.arm(static_cast<std::uint64_t>(timeout.count()));
}

void Session::arm_upstream_timer(config::Duration timeout) {
  upstream_timer_.arm(static_cast<std::uint64_t>(timeout.count()));
}

// An idle keep-alive connection first waits a moment with its memory (the next request
// usually comes at once), then gives back everything but its sockets until it is used
// again or the keep-alive timeout closes it.
void Session::arm_idle_timer() {
  trimmed_ = false;
  const config::Duration keepalive = config().timeouts.keepalive;
  arm_client_timer(std::min(keepalive, kTrimAfter));
}

void Session::trim_memory() {
  trimmed_ = true;
  in_.release_if_empty(worker_.buffers());
  out_.release_if_empty(worker_.buffers());
  to_client_.release_memory();
  to_upstream_.release_memory();
  request_parser_.release_memory();
  response_parser_.release_memory();
  std::string().swap(upstream_head_);
  std::string().swap(log_request_);
  std::string().swap(sid_capture_);
  std::string().swap(host_);
}

void Session::on_client_timeout() {
  if (phase_ == Phase::idle && !trimmed_ && config().timeouts.keepalive > kTrimAfter) {
    trim_memory();
    return arm_client_timer(config().timeouts.keepalive - kTrimAfter);
  }
  switch (phase_) {
    case Phase::head:
      return fail(408, "request header timeout");
    case Phase::exchange:
      if (!request_complete_) return fail(408, "client body timeout");
      return;
    default:
      return close();
  }
}

void Session::on_upstream_timeout() {
  if (phase_ != Phase::exchange) return;
  if (!upstream_connected_) return upstream_connect_failed("connect timeout");
  fail(504, "upstream timed out");
}

void Session::write_access_log() {
  if (log_status_ != 0) {
    (route_counters_ ? *route_counters_ : worker_.unrouted_counters()).count(log_status_);
  }
  const auto format = config().access_log;
  if (format == config::AccessLogFormat::off || log_status_ == 0) return;
  char time_text[kUtcTextSize];
  format_utc(std::time(nullptr), time_text);
  const std::string& upstream = upstream_label_.empty() ? std::string("-") : upstream_label_;
  const double seconds = static_cast<double>(worker_.now_ms() - exchange_start_ms_) / 1000.0;
  // Room for a 600-byte request line escaped: targets are visible ASCII (the head scanner
  // refuses control characters), so at most '"' and '\\' double.
  char line[2048];
  int n;
  if (format == config::AccessLogFormat::json) {
    std::string request;
    append_json_string(request, std::string_view(log_request_).substr(0, 600));
    n = std::snprintf(line, sizeof line,
                      "{\"time\":\"%s\",\"client\":\"%s\",\"request\":%s,\"status\":%d,"
                      "\"bytes\":%llu,\"upstream\":\"%s\",\"duration\":%.3f}\n",
                      time_text, client_ip_.c_str(), request.c_str(), log_status_,
                      static_cast<unsigned long long>(log_bytes_), upstream.c_str(), seconds);
  } else {
    n = std::snprintf(line, sizeof line, "%s %s \"%.600s\" %d %llu %s %.3f\n", time_text,
                      client_ip_.c_str(), log_request_.c_str(), log_status_,
                      static_cast<unsigned long long>(log_bytes_), upstream.c_str(), seconds);
  }
  if (n > 0)
    worker_.access_log({line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1)});
  log_status_ = 0;
}

}  // namespace gh::proxy
