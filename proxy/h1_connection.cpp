#include "proxy/h1_connection.hpp"

#include <fcntl.h>

#include <cstring>

#include "core/log.hpp"
#include "proxy/router.hpp"
#include "proxy/worker.hpp"

namespace gh::proxy {
namespace {

using http::BodyFraming;
using http::HeadKind;
using http::HeadScan;

constexpr config::Duration kLingerTimeout = std::chrono::seconds(2);
constexpr config::Duration kTrimAfter = std::chrono::milliseconds(250);
constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

H1Connection::H1Connection(Worker& worker, SnapshotPtr snapshot)
    : worker_(worker), snapshot_(std::move(snapshot)), timer_(worker.loop(), this, [](void* self) {
        static_cast<H1Connection*>(self)->on_client_timeout();
      }) {
  timer_.on_expired(kUpstreamDeadline, [](void* self) {
    auto* connection = static_cast<H1Connection*>(self);
    if (connection->state_) connection->state_->exchange.on_upstream_timeout();
  });
  open_handles_ = 1;  // the timer
}

H1Connection::RequestState::RequestState(H1Connection& connection, const ClientContext& client)
    : parser(HeadKind::request, connection.config().limits.chunk_extension),
      exchange(connection.worker_, static_cast<Exchange::Driver&>(connection), client) {
  body_sink.connection = &connection;
}

H1Connection::~H1Connection() = default;

void H1Connection::start(uv_stream_t* listener, std::size_t listener_index, bool over_limit) {
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
    request_state();  // the 503 is logged as a local response
    GH_LOG_WARN("%s: connection limit reached, answering 503", client_ip_.c_str());
    return respond_local(503, "too many connections\n", "Retry-After: 1\r\n");
  }
  arm_client_timer(config().timeouts.request_header);
  update_client_reads();
}

void H1Connection::drain() {
  draining_ = true;
  if (phase_ == Phase::idle && in_.pending() == 0) close();
}

void H1Connection::close() {
  if (timer_.closing()) return;  // already closing
  phase_ = Phase::closing;
  if (state_) state_->exchange.abort();  // a tunnel or a cut response is logged here
  timer_.close([](void* self) { static_cast<H1Connection*>(self)->handle_closed(); });
  if (down_) down_->close();
}

void H1Connection::on_closed() {
  handle_closed();
}

void H1Connection::handle_closed() {
  if (--open_handles_ > 0) return;
  in_ = ByteBuffer{};
  state_.reset();
  worker_.forget(this);  // destroys this
}

// ---- HTTP/2 hand-over -----------------------------------------------------------------

H1Connection::Handover H1Connection::wants_http2() {
  if (down_->alpn() == "h2") return Handover::yes;
  if (down_->secure() || listener_index_ >= config().listeners.size() ||
      !config().listeners[listener_index_].h2c) {
    return Handover::no;
  }
  const std::string_view seen(in_.begin_ptr(), std::min(in_.pending(), kHttp2Preface.size()));
  if (!kHttp2Preface.starts_with(seen)) return Handover::no;
  return seen.size() == kHttp2Preface.size() ? Handover::yes : Handover::wait;
}

// The transport, with the bytes read so far, moves to a new H2Connection; this object
// then closes its timers and goes away without touching the socket.
void H1Connection::hand_over_to_http2() {
  const std::string_view received(in_.begin_ptr(), in_.pending());
  worker_.start_http2(std::move(down_), listener_index_, received);
  in_.consume(in_.pending());
  --open_handles_;  // the transport's close callback now belongs to the H2Connection
  close();
}

// ---- client side ---------------------------------------------------------------

uv_buf_t H1Connection::read_buffer() {
  in_.acquire(worker_.buffers());
  return uv_buf_init(in_.end_ptr(), static_cast<unsigned>(in_.free_space()));
}

void H1Connection::on_read(std::size_t n) {
  in_.produced(n);
  if (!checked_protocol_ && phase_ != Phase::closing) {
    switch (wants_http2()) {
      case Handover::yes:
        return hand_over_to_http2();
      case Handover::wait:
        return update_client_reads();
      case Handover::no:
        checked_protocol_ = true;
        break;
    }
  }
  switch (phase_) {
    case Phase::idle:
    case Phase::head:
      process_input();
      break;
    case Phase::exchange:
      if (!request_complete_) pump_request_body();
      break;
    case Phase::tunnel:
      arm_client_timer(state_->exchange.route()->tunnel_idle);  // traffic either way
      pump_tunnel();
      break;
    case Phase::closing:
      in_.consume(in_.pending());
      in_.compact();
      break;  // lingering: discard
  }
  update_client_reads();
}

void H1Connection::on_read_end(int status) {
  client_reading_ = false;
  client_eof_ = true;
  if (phase_ == Phase::tunnel && status == UV_EOF) return pump_tunnel();  // half-close
  // The client finished sending: answer what it asked, pipelined requests included.
  if (phase_ == Phase::exchange && request_complete_ && status == UV_EOF) return;
  close();
}

void H1Connection::on_write_done(int status) {
  client_writing_ = false;
  state_->to_client.clear();
  if (status < 0) return close();
  if (phase_ == Phase::closing) return linger_close();
  if (holding_views_) {
    holding_views_ = false;
    state_->exchange.response_consumed();  // may hand over the next batch at once
  }
  if (phase_ == Phase::tunnel) return pump_tunnel();
  maybe_finish_exchange();
}

void H1Connection::update_client_reads() {
  if (client_eof_ || !down_) return;
  // Body views into `in_` stay in use while the exchange writes them upstream.
  if (!state_ || !state_->exchange.upstream_writing()) in_.compact();
  const bool want = !in_.allocated() || in_.free_space() > 0;
  if (want && !client_reading_) {
    client_reading_ = down_->start_reading() == 0;
  } else if (!want && client_reading_) {
    down_->stop_reading();
    client_reading_ = false;
  }
}

H1Connection::RequestState& H1Connection::request_state() {
  if (!state_) {
    state_ = std::make_unique<RequestState>(
        *this, ClientContext{client_ip_, down_->secure(), listener_index_});
  }
  return *state_;
}

void H1Connection::process_input() {
  while (phase_ == Phase::idle || phase_ == Phase::head) {
    if (in_.pending() == 0) return client_eof_ ? close() : void();
    if (phase_ == Phase::idle) {
      request_state();
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

void H1Connection::process_head() {
  HeadScan scan =
      state_->parser.scan_head({in_.begin_ptr(), in_.pending()}, snapshot_->head_limits);
  if (scan.state == HeadScan::State::invalid) return fail(scan.error.status, scan.error.reason);
  if (scan.state == HeadScan::State::incomplete) {
    if (in_.free_space() == 0) {
      in_.compact();
      if (in_.free_space() == 0) fail(431, "request header too large");
    }
    return;
  }
  auto step = state_->parser.execute(in_.begin_ptr(), scan.length, nullptr);
  if (step.outcome == http::HttpParser::Outcome::error) {
    return fail(400, state_->parser.error_reason());
  }
  http::HeadError error;
  state_->request = {};
  if (!http::analyze_request(state_->parser.head(), state_->request, error)) {
    return fail(error.status, error.reason);
  }
  start_exchange(scan.length, step.outcome == http::HttpParser::Outcome::message_complete);
}

void H1Connection::start_exchange(std::size_t head_length, bool message_complete) {
  snapshot_ = worker_.snapshot();  // a keep-alive connection follows reloads
  const http::MessageHead& head = state_->parser.head();
  phase_ = Phase::exchange;
  request_minor_ = head.version_minor;
  request_complete_ = message_complete;
  response_started_ = response_complete_ = upstream_finished_ = false;
  client_framing_ = ClientFraming::none;
  if (!state_->request.keep_alive || draining_) close_after_response_ = true;
  const auto protocol = request_minor_ == 0 ? ClientProtocol::http1_0 : ClientProtocol::http1_1;
  if (redirect_listener() && !refuse_before_routing(head, state_->request, config())) {
    state_->exchange.begin(head, protocol);  // names the request in the access log
    return answer_redirect_listener();
  }
  // The head's views stay valid: consuming does not move bytes, and nothing compacts
  // `in_` before the exchange has copied what it needs.
  in_.consume(head_length);
  if (request_complete_) {
    timer_.disarm();
  } else {
    arm_client_timer(config().timeouts.client_body);
  }
  state_->exchange.start(head, state_->request, protocol, request_complete_);
}

void H1Connection::RequestBody::on_body(const char* data, std::size_t length) {
  connection->state_->exchange.add_request_body(data, length);
}

// Parses the body bytes buffered so far into pieces for the exchange, one upstream write
// at a time.
void H1Connection::pump_request_body() {
  if (phase_ != Phase::exchange || request_complete_ || !state_->exchange.request_writable() ||
      in_.pending() == 0) {
    return;
  }
  const std::size_t body_limit = config().limits.body;
  state_->parser.limit_body(body_limit);  // a chunk over it is refused before its data
  auto step = state_->parser.execute(in_.begin_ptr(), in_.pending(), &state_->body_sink);
  if (step.outcome == http::HttpParser::Outcome::error) {
    return fail(state_->parser.error_status(), state_->parser.error_reason());
  }
  if (body_limit && state_->exchange.request_body_bytes() > body_limit) {
    return fail(413, "request body too large");
  }
  in_.consume(step.consumed);
  if (step.outcome == http::HttpParser::Outcome::message_complete) {
    request_complete_ = true;
    timer_.disarm();
    state_->exchange.end_request_body();
  } else {
    arm_client_timer(config().timeouts.client_body);
  }
  state_->exchange.flush_request_body();
}

void H1Connection::on_request_writable() {
  if (phase_ == Phase::tunnel) return pump_tunnel();
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

bool H1Connection::redirect_listener() const {
  return listener_index_ < config().listeners.size() &&
         config().listeners[listener_index_].redirect_to_https;
}

// Answers 301 to https, or an ACME challenge file.
void H1Connection::answer_redirect_listener() {
  const config::Listener& listener = config().listeners[listener_index_];
  const std::string_view target = state_->parser.head().target;
  const std::string_view path = target.substr(0, target.find('?'));
  if (!listener.acme_webroot.empty() && path.starts_with(kAcmePrefix)) {
    std::string_view token = path.substr(kAcmePrefix.size());
    if (!is_acme_token(token)) {
      respond_local(404, "not found\n");
    } else {
      serve_acme_challenge(token);
    }
    return;
  }
  std::string host;
  normalize_host(state_->request.host, host);
  if (host.empty()) {
    respond_local(400, "a redirect to https needs a Host header\n");
    return;
  }
  const std::string location = "Location: https://" + host + std::string(target) + "\r\n";
  respond_local(301, "moved to https\n", location);
}

void H1Connection::serve_acme_challenge(std::string_view token) {
  const std::string path = config().listeners[listener_index_].acme_webroot +
                           std::string(kAcmePrefix) + std::string(token);
  ++open_handles_;  // the file request keeps the connection alive until it calls back
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

void H1Connection::on_acme_open(uv_fs_t* req) {
  auto* self = static_cast<H1Connection*>(req->data);
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

void H1Connection::on_acme_read(uv_fs_t* req) {
  auto* self = static_cast<H1Connection*>(req->data);
  self->acme_->body.resize(req->result > 0 ? static_cast<std::size_t>(req->result) : 0);
  uv_fs_req_cleanup(req);
  uv_fs_close(req->loop, req, self->acme_->file, on_acme_closed);
}

void H1Connection::on_acme_closed(uv_fs_t* req) {
  auto* self = static_cast<H1Connection*>(req->data);
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

// ---- response path ---------------------------------------------------------------

void H1Connection::on_response_head(const http::MessageHead& head, const http::MessageInfo& info,
                                    const ResponseExtras& extras) {
  std::string& scratch = state_->to_client.scratch();
  const std::size_t mark = state_->to_client.mark();
  if (head.status == 101) {
    write_client_response(head, head.reason, info, ClientFraming::none, true, request_minor_,
                          scratch);
    state_->to_client.add_scratch_since(mark);
    phase_ = Phase::tunnel;
    response_started_ = true;
    // HTTP is over on this connection: only the buffers matter from here on.
    state_->parser.release_memory();
    arm_client_timer(state_->exchange.route()->tunnel_idle);
    return;
  }
  if (head.status < 200) {
    // Interim response (100 Continue, 103 Early Hints): HTTP/1.0 clients never see one.
    if (request_minor_ >= 1) {
      write_client_response(head, head.reason, info, ClientFraming::none, true, request_minor_,
                            scratch);
      state_->to_client.add_scratch_since(mark);
      response_started_ = true;
    }
    return;
  }
  client_framing_ = client_framing(info, request_minor_);
  // An early answer (before the request body ended) closes the client connection after.
  if (!request_complete_) close_after_response_ = true;
  const bool keep_alive = !close_after_response_ && !draining_;
  std::string extra;
  if (!extras.affinity_cookie.empty()) {
    extra.append("Set-Cookie: ").append(extras.affinity_cookie).append("\r\n");
  }
  if (!extras.hsts.empty()) {
    extra.append("Strict-Transport-Security: ").append(extras.hsts).append("\r\n");
  }
  write_client_response(head, head.reason, info, client_framing_, keep_alive, request_minor_,
                        scratch, extra);
  state_->to_client.add_scratch_since(mark);
  if (!keep_alive || client_framing_ == ClientFraming::close_delimited) {
    close_after_response_ = true;
  }
  response_started_ = true;
}

void H1Connection::on_response_body(const char* data, std::size_t length) {
  if (phase_ == Phase::tunnel) {
    arm_client_timer(state_->exchange.route()->tunnel_idle);  // traffic either way
    return state_->to_client.add_view(data, length);
  }
  if (client_framing_ == ClientFraming::chunked) {
    const std::size_t mark = state_->to_client.mark();
    append_chunk_header(length, state_->to_client.scratch());
    state_->to_client.add_scratch_since(mark);
    state_->to_client.add_view(data, length);
    state_->to_client.add_text("\r\n");
  } else {
    state_->to_client.add_view(data, length);
  }
}

// One write per batch: the head (if new), the pieces and their chunk framing.
bool H1Connection::on_response_batch(bool complete) {
  if (complete && !response_complete_) {
    response_complete_ = true;
    if (client_framing_ == ClientFraming::chunked) state_->to_client.add_text("0\r\n\r\n");
  }
  if (state_->to_client.empty()) {
    // Only a close-delimited body's end: everything went out already, the connection
    // closes next (no pipelined request starts from inside the exchange's call).
    if (complete) maybe_finish_exchange();
    return false;
  }
  holding_views_ = true;
  flush_to_client();
  return true;
}

void H1Connection::flush_to_client() {
  if (client_writing_ || state_->to_client.empty()) return;
  const auto& bufs = state_->to_client.buffers();
  if (down_->write(bufs.data(), static_cast<unsigned>(bufs.size())) != 0) return close();
  client_writing_ = true;
}

// The exchange answers errors itself while nothing went out (Exchange::respond); this
// is a response (or tunnel) cut short, or a failure before any head could be sent.
void H1Connection::on_exchange_failed(int status, const char* reason) {
  if (phase_ == Phase::closing) return;
  if (response_started_ || phase_ == Phase::tunnel) {
    state_->exchange.abort();
    return close();
  }
  std::string body(reason);
  body.push_back('\n');
  respond_local(status, body, status == 503 ? "Retry-After: 1\r\n" : "");
}

// ---- tunnel ----------------------------------------------------------------------

void H1Connection::on_upstream_finished() {
  upstream_finished_ = true;
  pump_tunnel();
}

// Client bytes go to the exchange, one upstream write in flight; the exchange hands
// upstream bytes over as batches (on_response_body). A FIN is passed on once the bytes
// before it are written; when both sides ended, close.
void H1Connection::pump_tunnel() {
  if (phase_ != Phase::tunnel) return;
  if (state_->exchange.request_writable() && in_.pending() > 0) {
    state_->exchange.add_request_body(in_.begin_ptr(), in_.pending());
    in_.consume(in_.pending());
    state_->exchange.flush_request_body();
    if (phase_ != Phase::tunnel) return;
  }
  const bool to_client_done = !client_writing_ && upstream_finished_;
  const bool to_upstream_done = state_->exchange.upstream_idle() && in_.pending() == 0;
  if (to_client_done && !client_shut_) {
    client_shut_ = true;
    down_->shutdown_write();
  }
  if (client_eof_ && to_upstream_done) state_->exchange.shutdown_upstream_write();
  // An idle tunnel holds no buffers: they go back to the pool once drained.
  if (to_upstream_done) {
    in_.compact();
    in_.release_if_empty(worker_.buffers());
  }
  if (client_eof_ && to_client_done && to_upstream_done) return close();
  update_client_reads();
}

// ---- endings ---------------------------------------------------------------------

void H1Connection::maybe_finish_exchange() {
  if (phase_ != Phase::exchange || !response_complete_ || client_writing_) return;
  if (!state_->to_client.empty()) return flush_to_client();
  if (!request_complete_) {
    // Answered before the request ended: the rest of its body is never read.
    close_after_response_ = true;
  } else if (!state_->exchange.upstream_idle()) {
    return;
  }
  finish_exchange();
}

void H1Connection::finish_exchange() {
  state_->exchange.finish();
  if (close_after_response_ || draining_) return linger_close();
  phase_ = Phase::idle;
  response_started_ = response_complete_ = false;
  state_->parser.begin_message();
  if (in_.pending() > 0 || client_eof_) {
    process_input();  // a pipelined request is already here (or the client is gone)
  } else {
    in_.compact();
    in_.release_if_empty(worker_.buffers());
    arm_idle_timer();
  }
  update_client_reads();
}

void H1Connection::fail(int status, const char* reason) {
  if (phase_ == Phase::closing) return;
  GH_LOG_INFO("%s: %d %s", client_ip_.c_str(), status, reason);
  if (response_started_ || phase_ == Phase::tunnel) {
    state_->exchange.abort();
    return close();
  }
  std::string body(reason);
  body.push_back('\n');
  respond_local(status, body);
}

void H1Connection::respond_local(int status, std::string_view body,
                                 std::string_view extra_headers) {
  state_->exchange.log_local_response(status, body.size());  // releases its upstream connection
  timer_.disarm(kUpstreamDeadline);
  phase_ = Phase::closing;
  arm_client_timer(kLingerTimeout);
  // A write in flight points into the outbox: never rewrite it under its feet.
  if (client_writing_) return close();
  state_->to_client.clear();
  std::string extra(extra_headers);
  if (std::string hsts = hsts_value(config(), listener_index_, down_->secure()); !hsts.empty()) {
    extra.append("Strict-Transport-Security: ").append(hsts).append("\r\n");
  }
  std::size_t mark = state_->to_client.mark();
  write_local_response(status, body, false, extra, state_->to_client.scratch());
  state_->to_client.add_scratch_since(mark);
  response_started_ = true;
  const auto& bufs = state_->to_client.buffers();
  if (down_->write(bufs.data(), static_cast<unsigned>(bufs.size())) != 0) return close();
  client_writing_ = true;
}

// After a final response on a connection we close: send FIN, read and discard what the
// client still sends for a moment, then close. Closing with unread input would make the
// kernel send RST, which can destroy the response before the client reads it.
void H1Connection::linger_close() {
  if (timer_.closing()) return;
  phase_ = Phase::closing;
  if (state_) state_->exchange.abort();
  down_->shutdown_write();
  arm_client_timer(kLingerTimeout);
  in_.consume(in_.pending());
  in_.compact();
  update_client_reads();
}

void H1Connection::arm_client_timer(config::Duration timeout) {
  timer_.arm(static_cast<std::uint64_t>(timeout.count()));
}

// An idle keep-alive connection first waits a moment with its memory (the next request
// usually comes at once), then gives back everything but its sockets until it is used
// again or the keep-alive timeout closes it.
void H1Connection::arm_idle_timer() {
  trimmed_ = false;
  const config::Duration keepalive = config().timeouts.keepalive;
  arm_client_timer(std::min(keepalive, kTrimAfter));
}

void H1Connection::trim_memory() {
  trimmed_ = true;
  in_.release_if_empty(worker_.buffers());
  state_.reset();
}

void H1Connection::on_client_timeout() {
  if (phase_ == Phase::idle && !trimmed_ && config().timeouts.keepalive > kTrimAfter) {
    trim_memory();
    return arm_client_timer(config().timeouts.keepalive - kTrimAfter);
  }
  switch (phase_) {
    case Phase::head:
      // Only empty lines so far: no request began, so close as an idle connection does
      // (a 408 could be read as the answer to the client's next request).
      if (http::is_before_request_line({in_.begin_ptr(), in_.pending()})) return close();
      return fail(408, "request header timeout");
    case Phase::exchange:
      if (!request_complete_) return fail(408, "client body timeout");
      return;
    default:
      return close();
  }
}

}  // namespace gh::proxy
