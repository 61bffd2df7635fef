#include "proxy/exchange.hpp"

#include <ctime>

#include "core/clock.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "proxy/affinity.hpp"
#include "proxy/balancer.hpp"
#include "proxy/rewrite.hpp"
#include "proxy/worker.hpp"

namespace gh::proxy {
namespace {

using http::BodyFraming;
using http::HeadScan;

std::string_view protocol_text(ClientProtocol protocol) {
  switch (protocol) {
    case ClientProtocol::http1_0:
      return " HTTP/1.0";
    case ClientProtocol::http1_1:
      return " HTTP/1.1";
    case ClientProtocol::http2:
      return " HTTP/2.0";
  }
  return "";
}

}  // namespace

LocalResponse LocalResponse::plain(int status, std::string_view text) {
  LocalResponse response;
  response.status = status;
  response.body.assign(text).push_back('\n');
  return response;
}

std::string hsts_value(const config::Config& config, std::size_t listener_index, bool secure) {
  if (!secure || listener_index >= config.listeners.size()) return {};
  const auto& tls = config.listeners[listener_index].tls;
  if (!tls || !tls->hsts_max_age) return {};
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*tls->hsts_max_age).count();
  return "max-age=" + std::to_string(seconds);
}

std::optional<Refusal> refuse_before_routing(const http::MessageHead& head,
                                             const http::MessageInfo& info,
                                             const config::Config& config) {
  if (head.method == "CONNECT") return Refusal{405, "CONNECT is not supported"};
  const std::size_t body_limit = config.limits.body;
  if (body_limit && info.framing == BodyFraming::content_length &&
      info.content_length > body_limit) {
    return Refusal{413, "request body too large"};
  }
  return std::nullopt;
}

Exchange::Exchange(Worker& worker, Driver& driver, const ClientContext& client)
    : worker_(worker),
      driver_(driver),
      client_(client),
      snapshot_(worker.snapshot()),
      response_parser_(http::HeadKind::response, snapshot_->config->limits.chunk_extension) {
  response_body_.exchange = this;
}

// The driver is going away too: no call back into it from here.
Exchange::~Exchange() {
  if (upstream_) {
    if (upstream_->host().active > 0) --upstream_->host().active;
    upstream_->close();
  }
  out_.release_if_empty(worker_.buffers());
}

const config::Route* Exchange::route() const {
  return route_counters_ ? &config().routes[route_.route] : nullptr;
}

// ---- request ----------------------------------------------------------------------

void Exchange::begin(const http::MessageHead& head, ClientProtocol protocol) {
  snapshot_ = worker_.snapshot();  // a keep-alive connection follows reloads
  active_ = true;
  failed_ = tunnel_ = false;
  protocol_ = protocol;
  start_ms_ = worker_.now_ms();
  log_request_.assign(head.method).append(" ").append(head.target).append(protocol_text(protocol));
  log_status_ = 0;
  log_bytes_ = 0;
  route_counters_ = nullptr;
  upstream_label_.clear();
}

void Exchange::start(const http::MessageHead& head, const http::MessageInfo& info,
                     ClientProtocol protocol, bool request_complete) {
  begin(head, protocol);
  request_body_bytes_ = 0;
  request_complete_ = request_complete;
  request_body_pumped_ = false;
  head_request_ = head.method == "HEAD";
  upgrade_requested_ = !info.upgrade.empty();
  chunked_request_ = info.framing == BodyFraming::chunked;
  declared_body_bytes_ = info.framing == BodyFraming::content_length ? info.content_length : 0;
  response_head_done_ = response_complete_ = driver_holds_views_ = interim_sent_ = false;
  local_.reset();
  upstream_responded_ = upstream_fresh_only_ = upstream_eof_ = upstream_shut_ = false;
  tried_hosts_ = 0;
  to_upstream_.clear();

  if (auto refusal = refuse_before_routing(head, info, config())) {
    return fail(refusal->status, refusal->reason);
  }
  normalize_host(info.host, host_);
  auto target = snapshot_->router.match(host_, head.target);
  if (!target) return fail(404, "no route for this host and path");
  route_ = *target;
  route_counters_ = &worker_.route_counters(route_.route);
  host_set_ = snapshot_->groups[route_.upstream];
  choose_affinity(head);

  upstream_head_.clear();
  const ForwardedFor forwarded{client_.ip, client_.secure ? "https" : "http"};
  write_upstream_request(head, info, forwarded, upstream_head_);
  connect_upstream();
}

void Exchange::add_request_body(const char* data, std::size_t length) {
  request_body_pumped_ = true;
  request_body_bytes_ += length;
  if (chunked_request_ && !tunnel_) {
    std::size_t mark = to_upstream_.mark();
    append_chunk_header(length, to_upstream_.scratch());
    to_upstream_.add_scratch_since(mark);
    to_upstream_.add_view(data, length);
    to_upstream_.add_text("\r\n");
  } else {
    to_upstream_.add_view(data, length);
  }
}

void Exchange::end_request_body() {
  request_body_pumped_ = true;
  if (chunked_request_) {
    to_upstream_.add_text("0\r\n\r\n");
  } else if (request_body_bytes_ != declared_body_bytes_) {
    // Short of its Content-Length (body bytes were dropped): the upstream still waits for
    // the rest, so this connection must never be reused.
    return;
  }
  request_complete_ = true;
}

void Exchange::flush_request_body() {
  if (!request_writable() || to_upstream_.empty()) return;
  const auto& bufs = to_upstream_.buffers();
  if (int rc = upstream_->write(bufs.data(), static_cast<unsigned>(bufs.size())); rc != 0) {
    return fail(502, "upstream write failed");
  }
  upstream_writing_ = true;
}

void Exchange::on_upstream_write_done(int status) {
  upstream_writing_ = false;
  to_upstream_.clear();
  if (status < 0) {
    if (tunnel_) return fail(502, "upstream write failed");
    // A reused connection the server had closed: safe to retry if nothing came back
    // and the request had no body to replay.
    if (upstream_->reused() && !upstream_responded_ && !request_body_pumped_) {
      return upstream_connect_failed("reused upstream connection closed");
    }
    return fail(502, "upstream write failed");
  }
  driver_.on_request_writable();
}

void Exchange::shutdown_upstream_write() {
  if (!upstream_ || upstream_shut_) return;
  upstream_shut_ = true;
  upstream_->shutdown_write();
}

// ---- upstream selection -------------------------------------------------------------

void Exchange::choose_affinity(const http::MessageHead& head) {
  pinned_host_ = kNoHost;
  learn_sid_ = set_affinity_cookie_ = false;
  sid_capture_.clear();
  const config::Route& route = config().routes[route_.route];
  const health::HostSet& set = *host_set_;
  const std::string_view target = head.target;
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
      for (const http::Header& h : head.headers) {
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
      pinned_host_ = rendezvous_host(set, client_.ip);
      break;
    case config::Sticky::automatic:
    case config::Sticky::none:
      break;
  }
}

void Exchange::learn_session_id() {
  if (!learn_sid_ || log_status_ != 200 || upstream_label_.empty()) return;
  learn_sid_ = false;
  if (auto sid = engineio_sid(sid_capture_)) {
    worker_.sids().learn(*sid, upstream_label_, worker_.now_ms());
  }
}

void Exchange::connect_upstream() {
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
  host.peak = std::max(host.peak, ++host.active);
  upstream_responded_ = false;
  to_upstream_.clear();
  to_upstream_.add_view(upstream_head_.data(), upstream_head_.size());
  if (!host.idle.empty() && !upstream_fresh_only_) {
    upstream_ = host.idle.back();
    upstream_->attach(*this);
    upstream_connected_ = true;
    driver_.arm_upstream_timer(static_cast<std::uint64_t>(config().timeouts.upstream_read.count()));
    update_upstream_reads();
    driver_.on_request_writable();  // body pieces join the head in one write
    return flush_request_body();    // the head alone when there was no body to add
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
  driver_.arm_upstream_timer(
      static_cast<std::uint64_t>(config().timeouts.upstream_connect.count()));
}

void Exchange::on_upstream_connected(int status) {
  if (status < 0) return upstream_connect_failed(uv_strerror(status));
  upstream_connected_ = true;
  driver_.arm_upstream_timer(static_cast<std::uint64_t>(config().timeouts.upstream_read.count()));
  update_upstream_reads();
  driver_.on_request_writable();  // body pieces join the head in one write
  flush_request_body();
}

void Exchange::upstream_connect_failed(const char* why) {
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

void Exchange::record_passive_health(HostState& host, bool ok) {
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

void Exchange::release_upstream(bool reusable) {
  if (!upstream_) return;
  UpstreamConn* conn = upstream_;
  upstream_ = nullptr;
  upstream_connected_ = upstream_writing_ = false;
  to_upstream_.clear();
  if (conn->host().active > 0) --conn->host().active;
  driver_.disarm_upstream_timer();
  if (reusable) {
    conn->release_to_pool(host_set_ ? host_set_->keepalive : 0, worker_.now_ms());
  } else {
    conn->close();
  }
}

// ---- response -----------------------------------------------------------------------

uv_buf_t Exchange::upstream_read_buffer() {
  out_.acquire(worker_.buffers());
  return uv_buf_init(out_.end_ptr(), static_cast<unsigned>(out_.free_space()));
}

void Exchange::update_upstream_reads() {
  if (!upstream_ || !upstream_connected_) return;
  if (!driver_holds_views_) out_.compact();
  // Reads stay on after a complete response (see UpstreamConn::start_reading); only a
  // full buffer pauses them.
  const bool want = !out_.allocated() || out_.free_space() > 0;
  if (want) {
    upstream_->start_reading();
  } else {
    upstream_->stop_reading();
  }
}

void Exchange::on_upstream_read(std::size_t n) {
  out_.produced(n);
  upstream_responded_ = true;
  if (tunnel_) {
    pump_tunnel_to_client();
  } else if (response_complete_) {
    response_.keep_alive = false;  // bytes after a complete response: never reuse
  } else {
    driver_.arm_upstream_timer(static_cast<std::uint64_t>(config().timeouts.upstream_read.count()));
    process_response();
  }
  update_upstream_reads();
}

void Exchange::process_response() {
  while (!response_head_done_ && !failed_ && !tunnel_) {
    if (!process_response_head()) return;
  }
  if (!failed_ && !tunnel_ && !driver_holds_views_) pump_response_body();
}

// Returns true when a head was consumed (a final one, or an interim 1xx to loop on).
bool Exchange::process_response_head() {
  if (driver_holds_views_) return false;  // an interim head is still being written
  response_parser_.begin_message();
  if (head_request_) response_parser_.expect_no_body();
  HeadScan scan =
      response_parser_.scan_head({out_.begin_ptr(), out_.pending()}, snapshot_->head_limits);
  if (scan.state == HeadScan::State::invalid) {
    if (upstream_) record_passive_health(upstream_->host(), false);
    fail(502, scan.error.reason);
    return false;
  }
  if (scan.state == HeadScan::State::incomplete) {
    if (out_.free_space() == 0) {
      out_.compact();
      if (out_.free_space() == 0) fail(502, "upstream response header too large");
    }
    return false;
  }
  auto step = response_parser_.execute(out_.begin_ptr(), scan.length, nullptr);
  http::HeadError error;
  response_ = {};
  const std::string_view method = head_request_ ? "HEAD" : "GET";
  if (step.outcome == http::HttpParser::Outcome::error ||
      !http::analyze_response(response_parser_.head(), method, response_, error)) {
    fail(502, step.outcome == http::HttpParser::Outcome::error ? response_parser_.error_reason()
                                                               : error.reason);
    return false;
  }
  const http::MessageHead& head = response_parser_.head();
  if (upstream_) record_passive_health(upstream_->host(), true);
  ResponseExtras extras;
  const std::string hsts = hsts_value(config(), client_.listener_index, client_.secure);
  if (head.status == 101) {
    if (!upgrade_requested_) {
      fail(502, "unexpected 101 from upstream");
      return false;
    }
    log_status_ = 101;
    driver_.on_response_head(head, response_, extras);
    out_.consume(scan.length);
    tunnel_ = true;
    driver_.disarm_upstream_timer();
    // HTTP is over on this connection: only the buffers matter from here on.
    response_parser_.release_memory();
    std::string().swap(upstream_head_);
    std::string().swap(sid_capture_);
    pump_tunnel_to_client(true);
    return false;
  }
  if (head.status < 200) {
    // Interim response (100 Continue, 103 Early Hints): relay and read the next head.
    interim_sent_ = true;
    driver_.on_response_head(head, response_, extras);
    out_.consume(scan.length);
    driver_holds_views_ = driver_.on_response_batch(false);
    return out_.pending() > 0 && !driver_holds_views_;
  }
  if (set_affinity_cookie_ && !upstream_label_.empty()) {
    const config::Route& route = config().routes[route_.route];
    extra_cookie_ = route.sticky_cookie + "=" + affinity_cookie_value(upstream_label_) +
                    "; Path=/; HttpOnly; SameSite=Lax" + (client_.secure ? "; Secure" : "");
    extras.affinity_cookie = extra_cookie_;
  }
  if (!hsts.empty()) {
    bool upstream_has_hsts = false;
    for (const http::Header& h : head.headers) {
      upstream_has_hsts |= http::iequals(h.name, "strict-transport-security");
    }
    if (!upstream_has_hsts) extras.hsts = hsts;
  }
  log_status_ = head.status;
  response_head_done_ = true;
  if (step.outcome == http::HttpParser::Outcome::message_complete) response_complete_ = true;
  driver_.on_response_head(head, response_, extras);
  out_.consume(scan.length);
  return true;
}

void Exchange::ResponseBody::on_body(const char* data, std::size_t length) {
  Exchange& e = *exchange;
  e.log_bytes_ += length;
  if (e.learn_sid_ && e.sid_capture_.size() < 256) {
    e.sid_capture_.append(data, std::min<std::size_t>(length, 256 - e.sid_capture_.size()));
  }
  e.driver_.on_response_body(data, length);
}

// Parses what the buffer holds into one batch of body pieces for the driver.
void Exchange::pump_response_body() {
  if (!response_head_done_ || driver_holds_views_) return;
  if (!response_complete_ && out_.pending() > 0) {
    auto step = response_parser_.execute(out_.begin_ptr(), out_.pending(), &response_body_);
    if (step.outcome == http::HttpParser::Outcome::error) {
      return fail(502, response_parser_.error_reason());
    }
    out_.consume(step.consumed);
    if (step.outcome == http::HttpParser::Outcome::message_complete) {
      response_complete_ = true;
      // Bytes after a complete response mean the upstream is not speaking HTTP cleanly.
      if (out_.pending() > 0) response_.keep_alive = false;
    }
  }
  // A body delimited by the connection's end is complete once the bytes before the FIN
  // were parsed.
  if (!response_complete_ && upstream_eof_ && out_.pending() == 0 && response_parser_.finish()) {
    response_complete_ = true;
  }
  if (response_complete_) {
    driver_.disarm_upstream_timer();
    learn_session_id();  // before the client can send the session's next request
  }
  driver_holds_views_ = driver_.on_response_batch(response_complete_);
}

void Exchange::response_consumed() {
  driver_holds_views_ = false;
  if (!active_ || failed_ || local_) return;
  if (tunnel_) {
    pump_tunnel_to_client();
  } else if (!response_head_done_) {
    process_response();  // an interim head went out; the final one may be buffered
  } else if (!response_complete_ && (out_.pending() > 0 || upstream_eof_)) {
    pump_response_body();
  }
  update_upstream_reads();
}

void Exchange::on_upstream_read_end(int status) {
  if (tunnel_) {
    if (status != UV_EOF) return fail(502, uv_strerror(status));
    upstream_eof_ = true;
    return pump_tunnel_to_client();  // the FIN passes on once the bytes before it did
  }
  if (response_head_done_ && response_.framing == BodyFraming::until_close && status == UV_EOF) {
    upstream_eof_ = true;  // the body ends after what is buffered (pump_response_body)
    response_.keep_alive = false;
    release_upstream(false);
    if (!driver_holds_views_) pump_response_body();
    return;
  }
  if (!upstream_responded_ && upstream_ && upstream_->reused() && !request_body_pumped_ &&
      !upstream_writing_) {
    return upstream_connect_failed("pooled connection closed by upstream");
  }
  fail(502, status == UV_EOF ? "upstream closed the connection early" : uv_strerror(status));
}

void Exchange::on_upstream_timeout() {
  if (!active_ || failed_ || tunnel_) return;
  if (!upstream_connected_) return upstream_connect_failed("connect timeout");
  fail(504, "upstream timed out");
}

// ---- tunnel -------------------------------------------------------------------------

// Upstream bytes go to the driver as one piece per batch (the first batch also carries
// the 101 head); the FIN follows the last one.
void Exchange::pump_tunnel_to_client(bool head_pending) {
  if (driver_holds_views_ || failed_) return;
  const std::size_t n = out_.pending();
  if (n > 0) {
    out_.consume(n);
    driver_.on_response_body(out_.begin_ptr() - n, n);
  }
  if (n > 0 || head_pending) {
    driver_holds_views_ = driver_.on_response_batch(false);
    if (driver_holds_views_) return;
  }
  out_.compact();
  out_.release_if_empty(worker_.buffers());  // an idle tunnel holds no buffer
  if (upstream_eof_) deliver_tunnel_end();
}

void Exchange::deliver_tunnel_end() {
  upstream_eof_ = false;  // once
  driver_.on_upstream_finished();
}

// ---- endings ------------------------------------------------------------------------

void Exchange::finish() {
  if (!active_) return;
  learn_session_id();
  write_access_log();
  active_ = false;
  route_counters_ = nullptr;
  release_upstream(response_.keep_alive && request_complete_ && response_complete_ &&
                   !upstream_writing_ && to_upstream_.empty());
  // Bytes after a complete response (the connection was not pooled for them) belong to
  // no request: never to the client's next one.
  out_.consume(out_.pending());
  out_.compact();
  out_.release_if_empty(worker_.buffers());
}

void Exchange::abort() {
  if (!active_) return;
  // A tunnel (101) or a response cut short is logged and counted when it ends.
  if (log_status_ != 0) write_access_log();
  active_ = false;
  tunnel_ = false;
  release_upstream(false);
}

void Exchange::fail(int status, const char* reason) {
  if (!active_ || failed_) return;
  if (status >= 500) {
    GH_LOG_WARN("%.*s \"%s\": %d %s", static_cast<int>(client_.ip.size()), client_.ip.data(),
                log_request_.c_str(), status, reason);
  } else {
    GH_LOG_INFO("%.*s: %d %s", static_cast<int>(client_.ip.size()), client_.ip.data(), status,
                reason);
  }
  // Nothing went to the client yet: the error is an ordinary response (kept alive where
  // the request was read whole, like nginx); else the driver cuts the response short.
  if (!response_head_done_ && !interim_sent_ && !tunnel_) {
    LocalResponse response = LocalResponse::plain(status, reason);
    if (status == 503) response.headers.emplace_back("Retry-After", "1");
    return respond(std::move(response));
  }
  failed_ = true;
  release_upstream(false);
  driver_.on_exchange_failed(status, reason);
}

void Exchange::respond(LocalResponse response) {
  if (!active_ || response_head_done_ || interim_sent_ || tunnel_) return;
  release_upstream(false);
  to_upstream_.clear();
  driver_.disarm_upstream_timer();
  learn_sid_ = false;
  local_ = std::make_unique<LocalResponse>(std::move(response));
  const LocalResponse& local = *local_;
  http::MessageHead head;
  head.status = local.status;
  if (!local.content_type.empty()) head.headers.push_back({"Content-Type", local.content_type});
  for (const auto& [name, value] : local.headers) head.headers.push_back({name, value});
  response_ = {};
  response_.framing = BodyFraming::content_length;
  response_.content_length = local.body.size();
  ResponseExtras extras;
  const std::string hsts = hsts_value(config(), client_.listener_index, client_.secure);
  extras.hsts = hsts;
  log_status_ = local.status;
  log_bytes_ = head_request_ ? 0 : local.body.size();
  response_head_done_ = response_complete_ = true;
  driver_.on_response_head(head, response_, extras);
  if (!head_request_ && !local.body.empty()) {
    driver_.on_response_body(local.body.data(), local.body.size());
  }
  driver_holds_views_ = driver_.on_response_batch(true);
}

void Exchange::log_local_response(int status, std::uint64_t body_bytes) {
  log_status_ = status;
  log_bytes_ = body_bytes;
  if (!active_) {
    log_request_ = "-";
    route_counters_ = nullptr;
    upstream_label_.clear();
    start_ms_ = worker_.now_ms();
  }
  write_access_log();
  active_ = false;
  tunnel_ = false;
  route_counters_ = nullptr;
  release_upstream(false);
}

void Exchange::write_access_log() {
  if (log_status_ != 0) {
    (route_counters_ ? *route_counters_ : worker_.unrouted_counters()).count(log_status_);
    worker_.count_protocol(protocol_);
  }
  const auto format = config().access_log;
  if (format == config::AccessLogFormat::off || log_status_ == 0) {
    log_status_ = 0;
    return;
  }
  char time_text[kUtcTextSize];
  format_utc(std::time(nullptr), time_text);
  const std::string& upstream = upstream_label_.empty() ? std::string("-") : upstream_label_;
  const double seconds = static_cast<double>(worker_.now_ms() - start_ms_) / 1000.0;
  const int ip_length = static_cast<int>(client_.ip.size());
  // Room for a 600-byte request line escaped: targets are visible ASCII (the head scanner
  // refuses control characters), so at most '"' and '\\' double.
  char line[2048];
  int n;
  if (format == config::AccessLogFormat::json) {
    std::string request;
    append_json_string(request, std::string_view(log_request_).substr(0, 600));
    n = std::snprintf(line, sizeof line,
                      "{\"time\":\"%s\",\"client\":\"%.*s\",\"request\":%s,\"status\":%d,"
                      "\"bytes\":%llu,\"upstream\":\"%s\",\"duration\":%.3f}\n",
                      time_text, ip_length, client_.ip.data(), request.c_str(), log_status_,
                      static_cast<unsigned long long>(log_bytes_), upstream.c_str(), seconds);
  } else {
    n = std::snprintf(line, sizeof line, "%s %.*s \"%.600s\" %d %llu %s %.3f\n", time_text,
                      ip_length, client_.ip.data(), log_request_.c_str(), log_status_,
                      static_cast<unsigned long long>(log_bytes_), upstream.c_str(), seconds);
  }
  if (n > 0)
    worker_.access_log({line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1)});
  log_status_ = 0;
}

}  // namespace gh::proxy
