#include "proxy/h2_stream.hpp"

#include <array>
#include <charconv>
#include <cstring>

#include "core/log.hpp"
#include "proxy/h2_connection.hpp"
#include "proxy/rewrite.hpp"
#include "proxy/worker.hpp"

namespace gh::proxy {
namespace {

constexpr std::size_t kTypicalFields = 16;

std::string_view view_of(nghttp2_rcbuf* buf) {
  const nghttp2_vec vec = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(vec.base), vec.len};
}

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

ssize_t read_response_callback(nghttp2_session*, std::int32_t, std::uint8_t* buf,
                               std::size_t length, std::uint32_t* flags,
                               nghttp2_data_source* source, void*) {
  return static_cast<H2Stream*>(source->ptr)->read_response(buf, length, flags);
}

// RFC 9113 §8.3.1: origin-form (or "*" for OPTIONS); nghttp2 already refused controls
// and spaces. A fragment never belongs in a request target.
bool valid_path(std::string_view path, std::string_view method) {
  if (path == "*") return method == "OPTIONS";
  if (path.empty() || path.front() != '/') return false;
  for (unsigned char c : path) {
    if (c <= 0x20 || c == 0x7f || c == '#') return false;
  }
  return true;
}

// ":status" digits; statuses are 100..599 (analyze_response and our own answers).
std::array<char, 3> status_digits(int status) {
  return {static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
          static_cast<char>('0' + status % 10)};
}

bool method_has_body(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

// The declared Content-Length, or none (nghttp2 already refused malformed values).
std::optional<std::uint64_t> declared_length(const std::vector<http::Header>& fields) {
  for (const http::Header& field : fields) {
    if (field.name != "content-length") continue;
    std::uint64_t n = 0;
    const char* end = field.value.data() + field.value.size();
    const auto [stop, error] = std::from_chars(field.value.data(), end, n);
    if (error != std::errc() || stop != end) return std::nullopt;
    return n;
  }
  return std::nullopt;
}

}  // namespace

H2Stream::H2Stream(H2Connection& connection, std::int32_t id) : connection_(connection), id_(id) {
  // A browser's request carries 10-20 fields: one allocation each instead of growing
  // through 1, 2, 4, 8, 16 (malloc was a quarter of the h2 path's instructions).
  fields_.reserve(kTypicalFields);
  head_.headers.reserve(kTypicalFields + 2);  // the fields, host, the joined cookie
  held_.reserve(2 * kTypicalFields + 8);
  arm_client_deadline(timeouts().request_header);  // HEADERS + CONTINUATION must end
}

H2Stream::~H2Stream() {
  release_headers();
}

// ---- request, recorded from nghttp2's callbacks ---------------------------------------

int H2Stream::on_header(nghttp2_rcbuf* name_buf, nghttp2_rcbuf* value_buf, bool trailer) {
  const std::string_view name = view_of(name_buf);
  const std::string_view value = view_of(value_buf);
  const config::Limits& limits = connection_.worker().snapshot()->config->limits;
  // The decoded list counts (an HPACK bomb is small on the wire), as HTTP/1.1 head bytes.
  header_bytes_ += name.size() + value.size() + 4;
  if (trailer) {
    // Trailers are not forwarded (the upstream body is re-framed); only bounded.
    return header_bytes_ > limits.header_bytes ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
  }
  if (head_error_ != 0) return 0;  // refused already: keep nothing more
  if (header_bytes_ > limits.header_bytes ||
      fields_.size() + cookies_.size() >= limits.header_count) {
    head_error_ = 431;
    return 0;
  }
  if (name.starts_with(':')) {
    if (name == ":method") {
      method_ = value;
    } else if (name == ":scheme") {
      scheme_ = value;
    } else if (name == ":authority") {
      authority_ = value;
    } else if (name == ":path") {
      path_ = value;
    } else {
      head_error_ = 400;  // :protocol and the like (nghttp2 refuses them first)
      return 0;
    }
  } else if (name == "cookie") {
    cookies_.push_back(value);
  } else {
    fields_.push_back({name, value});
  }
  nghttp2_rcbuf_incref(name_buf);
  nghttp2_rcbuf_incref(value_buf);
  held_.push_back(name_buf);
  held_.push_back(value_buf);
  return 0;
}

void H2Stream::on_headers_end(bool end_stream) {
  headers_done_ = true;
  headers_end_stream_ = request_ended_ = end_stream;
  if (end_stream) {
    client_deadline_ms_ = 0;
  } else {
    arm_client_deadline(timeouts().client_body);  // the body must keep coming
  }
}

void H2Stream::on_data(const std::uint8_t* data, std::size_t length) {
  if (!request_ended_) arm_client_deadline(timeouts().client_body);
  const bool forwarding = !started_ || (exchange_ && exchange_->active() && !response_complete_);
  if (!forwarding || body_overflow_ || head_error_ != 0) {
    // Answered already (or refused): a body cut short upstream, never a complete request.
    if (started_) body_dropped_ = true;
    discarded_ += length;
    return;
  }
  if (!body_reserved_) {
    // Room for one window (what the client may send before we give some back), or for
    // the whole body when it declared a smaller one.
    body_reserved_ = true;
    const auto declared = declared_length(fields_);
    body_.reserve(declared && *declared < kH2StreamWindow ? static_cast<std::size_t>(*declared)
                                                          : kH2StreamWindow);
  }
  if (body_.size() + length > body_.capacity()) {
    body_overflow_ = true;  // more than the window we gave: never moves the bytes in flight
    discarded_ += length;
    return;
  }
  body_.append(reinterpret_cast<const char*>(data), length);
}

void H2Stream::on_request_end() {
  request_ended_ = true;
  client_deadline_ms_ = 0;
}

void H2Stream::on_end_stream_sent() {
  eof_sent_ = true;
  send_deadline_ms_ = 0;
}

void H2Stream::on_closed(std::uint32_t) {
  closed_ = true;
}

// ---- acting, outside nghttp2 ----------------------------------------------------------

bool H2Stream::advance() {
  if (closed_) {
    if (exchange_ && exchange_->active()) {
      if (eof_sent_) {
        exchange_->finish();
      } else {
        exchange_->abort();  // reset mid-exchange: that upstream connection is never reused
      }
    }
    consume(body_.size() + discarded_);  // the connection window of what never went on
    body_.clear();
    discarded_ = 0;
    return true;
  }
  if (aborted_) return false;  // the connection is going away: nothing more upstream
  if (body_overflow_) {
    body_overflow_ = false;
    reset(NGHTTP2_FLOW_CONTROL_ERROR);
    return false;
  }
  if (headers_done_ && !started_) start_exchange();
  if (started_ && !exchange_->active() && !body_.empty()) {
    // The exchange ended (answered, failed): the body is not wanted, the bytes in flight
    // upstream included (their connection is closed), and the window goes back.
    discarded_ += body_.size();
    body_.clear();
    in_flight_ = 0;
  }
  if (discarded_ > 0) {
    consume(discarded_);
    discarded_ = 0;
  }
  if (exchange_ && exchange_->active()) push_request_body();
  if (views_drained_) {
    views_drained_ = holding_views_ = false;
    if (exchange_) exchange_->response_consumed();  // the next batch, maybe at once
  }
  if (eof_sent_) {
    if (exchange_ && exchange_->active()) exchange_->finish();
    // Answered before the request ended: the client may stop sending (RFC 9113 §8.1).
    if (!request_ended_ && !reset_sent_) reset(NGHTTP2_NO_ERROR);
  }
  return false;
}

// The head is built once HEADERS ended; the exchange starts then, except for a request
// that declared `content-length: 0` and has not ended: it could still turn out to carry
// DATA (nghttp2 then resets the stream), and the upstream must never have seen it whole.
void H2Stream::start_exchange() {
  if (!exchange_) {
    exchange_.emplace(connection_.worker(), static_cast<Exchange::Driver&>(*this),
                      connection_.client());
    head_status_ = head_error_ != 0 ? head_error_ : build_request_head();
  }
  if (head_status_ == 0 && !request_ended_ && info_.framing == http::BodyFraming::content_length &&
      info_.content_length == 0) {
    return;  // waiting for END_STREAM
  }
  started_ = true;
  if (head_status_ != 0) {
    release_headers();
    const char* reason = head_status_ == 431   ? "request header too large"
                         : head_status_ == 414 ? "request target too long"
                         : head_status_ == 405 ? "CONNECT is not supported"
                                               : "malformed request";
    return respond_local(head_status_, reason);
  }
  const bool complete = headers_end_stream_;
  request_end_sent_ = complete;
  exchange_->start(head_, info_, ClientProtocol::http2, complete);
  release_headers();  // the exchange copied what it needs
}

int H2Stream::build_request_head() {
  const config::Config& config = *connection_.worker().snapshot()->config;
  head_request_ = method_ == "HEAD";
  if (method_ == "CONNECT") return 405;
  if (scheme_ != "http" && scheme_ != "https") return 400;
  if (path_.size() > config.limits.request_line) return 414;
  if (!valid_path(path_, method_)) return 400;
  // Host is :authority, replacing any host field (RFC 9113 §8.3.1); else the host field.
  std::string_view host = authority_;
  head_.headers.clear();
  for (const http::Header& field : fields_) {
    if (field.name == "host") {
      if (host.empty()) host = field.value;
      continue;
    }
    head_.headers.push_back(field);
  }
  if (host.empty()) return 400;
  head_.headers.push_back({"host", host});
  if (!cookies_.empty()) {
    for (std::string_view crumb : cookies_) {
      if (!cookie_.empty()) cookie_.append("; ");
      cookie_.append(crumb);
    }
    head_.headers.push_back({"cookie", cookie_});
  }
  head_.method = method_;
  head_.target = path_;
  head_.version_minor = 1;
  http::HeadError error;
  info_ = {};
  if (!http::analyze_request(head_, info_, error)) return error.status;
  if (headers_end_stream_) {
    if (info_.framing == http::BodyFraming::content_length && info_.content_length > 0) return 400;
    if (method_has_body(method_)) info_.framing = http::BodyFraming::content_length;
  } else if (info_.framing != http::BodyFraming::content_length) {
    if (request_ended_) {
      // The whole body is already here: its length is known, no chunking needed.
      info_.framing = http::BodyFraming::content_length;
      info_.content_length = body_.size();
    } else {
      info_.framing = http::BodyFraming::chunked;
    }
  }
  return 0;
}

void H2Stream::push_request_body() {
  if (!exchange_->request_writable() || in_flight_ > 0) return;
  std::size_t sendable = body_.size();
  if (info_.framing == http::BodyFraming::content_length && !request_ended_) {
    // The last byte waits for END_STREAM: content-length that disagrees with the DATA
    // (H2.CL) resets the stream before the upstream ever holds a complete request.
    const std::uint64_t left = info_.content_length - exchange_->request_body_bytes();
    if (sendable >= left) sendable = left > 0 ? static_cast<std::size_t>(left - 1) : 0;
  }
  if (sendable > 0) {
    exchange_->add_request_body(body_.data(), sendable);
    in_flight_ = sendable;
    const std::size_t limit = connection_.worker().snapshot()->config->limits.body;
    if (limit && exchange_->request_body_bytes() > limit) {
      return on_exchange_failed(413, "request body too large");
    }
  }
  if (request_ended_ && !request_end_sent_ && !body_dropped_) {
    request_end_sent_ = true;
    exchange_->end_request_body();
  }
  exchange_->flush_request_body();
}

void H2Stream::on_request_writable() {
  if (in_flight_ > 0) {
    body_.erase(0, in_flight_);  // capacity stays: later appends never move
    consume(in_flight_);         // the client may send that much more
    in_flight_ = 0;
    if (!request_ended_) arm_client_deadline(timeouts().client_body);  // it was waiting on us
    connection_.want_send();
  }
  if (exchange_ && exchange_->active()) push_request_body();
}

void H2Stream::consume(std::size_t bytes) {
  if (bytes == 0) return;
  nghttp2_session_consume(connection_.session(), id_, bytes);
}

void H2Stream::release_headers() {
  for (nghttp2_rcbuf* buf : held_) nghttp2_rcbuf_decref(buf);
  held_.clear();
  method_ = scheme_ = authority_ = path_ = {};
  fields_.clear();
  cookies_.clear();
  head_.clear();
  std::string().swap(cookie_);
}

// ---- response -------------------------------------------------------------------------

void H2Stream::on_response_head(const http::MessageHead& head, const http::MessageInfo& info,
                                const ResponseExtras& extras) {
  const bool final = head.status >= 200;
  const bool empty =
      info.framing == http::BodyFraming::none ||
      (info.framing == http::BodyFraming::content_length && info.content_length == 0);
  submit_response(head, extras, final, final && !empty && !head_request_);
}

// HEADERS from an HTTP/1.1 head: lower-case names, without the fields HTTP/2 forbids
// (Connection and what it names, Keep-Alive, Transfer-Encoding, Upgrade, ...).
void H2Stream::submit_response(const http::MessageHead& head, const ResponseExtras& extras,
                               bool final, bool has_body) {
  const http::HopByHop is_hop_by_hop(head);
  std::size_t name_bytes = 0;
  for (const http::Header& h : head.headers) name_bytes += h.name.size();
  // Ordinary heads fit on the stack; nv entries point into `names`, which never moves.
  std::array<char, 1024> name_space;
  std::string names_heap;
  char* names = name_space.data();
  if (name_bytes > name_space.size()) {
    names_heap.resize(name_bytes);
    names = names_heap.data();
  }
  std::size_t names_used = 0;
  std::array<nghttp2_nv, 40> nv_space;
  std::vector<nghttp2_nv> nv_heap;
  const std::size_t nv_count = head.headers.size() + 3;
  nghttp2_nv* nva = nv_space.data();
  if (nv_count > nv_space.size()) {
    nv_heap.resize(nv_count);
    nva = nv_heap.data();
  }
  std::size_t nv_used = 0;
  const auto status = status_digits(head.status);
  nva[nv_used++] = make_nv(":status", {status.data(), status.size()});
  for (const http::Header& h : head.headers) {
    if (is_hop_by_hop(h.name)) continue;
    char* name = names + names_used;
    for (char c : h.name) {
      names[names_used++] = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
    }
    nva[nv_used++] = make_nv({name, h.name.size()}, h.value);
  }
  if (!extras.affinity_cookie.empty()) {
    nva[nv_used++] = make_nv("set-cookie", extras.affinity_cookie);
  }
  if (!extras.hsts.empty()) nva[nv_used++] = make_nv("strict-transport-security", extras.hsts);
  nghttp2_session* session = connection_.session();
  int rc = 0;
  if (!final) {
    rc = nghttp2_submit_headers(session, NGHTTP2_FLAG_NONE, id_, nullptr, nva, nv_used, nullptr);
  } else {
    nghttp2_data_provider provider{};
    provider.source.ptr = this;
    provider.read_callback = read_response_callback;
    response_submitted_ = true;
    response_has_body_ = has_body;
    rc = nghttp2_submit_response(session, id_, nva, nv_used, has_body ? &provider : nullptr);
  }
  if (rc != 0) {
    exchange_->abort();
    return reset(NGHTTP2_INTERNAL_ERROR);
  }
  connection_.want_send();
}

void H2Stream::on_response_body(const char* data, std::size_t length) {
  if (response_has_body_ && length > 0) pieces_.emplace_back(data, length);
}

bool H2Stream::on_response_batch(bool complete) {
  if (!response_submitted_) return false;  // an interim head went out as its own HEADERS
  if (complete) response_complete_ = true;
  if (!response_has_body_) return false;  // END_STREAM is queued with the HEADERS
  holding_views_ = !pieces_.empty();
  if (holding_views_) arm_send_deadline();
  if (data_deferred_ && (holding_views_ || complete)) {
    data_deferred_ = false;
    nghttp2_session_resume_data(connection_.session(), id_);
  }
  connection_.want_send();
  return holding_views_;
}

// Inside nghttp2_session_mem_send: copy, and note for advance() what became of the views.
ssize_t H2Stream::read_response(std::uint8_t* buf, std::size_t length, std::uint32_t* flags) {
  std::size_t copied = 0;
  while (copied < length && !pieces_.empty()) {
    std::string_view& piece = pieces_.front();
    const std::size_t n = std::min(length - copied, piece.size() - piece_offset_);
    std::memcpy(buf + copied, piece.data() + piece_offset_, n);
    copied += n;
    piece_offset_ += n;
    if (piece_offset_ == piece.size()) {
      pieces_.erase(pieces_.begin());
      piece_offset_ = 0;
    }
  }
  if (copied > 0 && !pieces_.empty()) arm_send_deadline();  // progress
  if (pieces_.empty()) {
    send_deadline_ms_ = 0;
    if (holding_views_ && !views_drained_) {
      views_drained_ = true;
      connection_.mark_dirty(id_);
    }
    if (response_complete_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;  // on_end_stream_sent follows once it is packed
    } else if (copied == 0) {
      data_deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(copied);
}

void H2Stream::on_exchange_failed(int status, const char* reason) {
  if (!response_submitted_) return respond_local(status, reason);
  exchange_->abort();
  reset(NGHTTP2_INTERNAL_ERROR);  // a response cut short never ends with END_STREAM
}

// A client that stopped: an unfinished header block stalls the whole connection (HPACK
// state), a body that stopped coming gets 408, a response the client does not take is cut.
void H2Stream::on_client_timeout() {
  if (!headers_done_) return connection_.fail_connection("request header timeout");
  if (!request_ended_ && !response_submitted_) {
    GH_LOG_INFO("%s: 408 client body timeout (HTTP/2)",
                std::string(connection_.client().ip).c_str());
    if (exchange_) exchange_->abort();
    return respond_local(408, "client body timeout");
  }
  if (exchange_) exchange_->abort();
  reset(NGHTTP2_CANCEL);
}

void H2Stream::respond_local(int status, std::string_view reason) {
  if (response_submitted_) return reset(NGHTTP2_INTERNAL_ERROR);
  started_ = true;  // answered: no exchange starts for this request any more
  local_body_.assign(reason).push_back('\n');
  exchange_->log_local_response(status, local_body_.size());
  pieces_.clear();
  piece_offset_ = 0;
  holding_views_ = false;
  pieces_.emplace_back(local_body_);
  response_complete_ = true;
  const std::string length = std::to_string(local_body_.size());
  const config::Config& config = *connection_.worker().snapshot()->config;
  const std::string hsts =
      hsts_value(config, connection_.client().listener_index, connection_.client().secure);
  const auto digits = status_digits(status);
  std::vector<nghttp2_nv> nva = {make_nv(":status", {digits.data(), digits.size()}),
                                 make_nv("content-type", "text/plain; charset=utf-8"),
                                 make_nv("content-length", length)};
  if (status == 503) nva.push_back(make_nv("retry-after", "1"));
  if (!hsts.empty()) nva.push_back(make_nv("strict-transport-security", hsts));
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = read_response_callback;
  response_submitted_ = true;
  response_has_body_ = !head_request_;
  if (nghttp2_submit_response(connection_.session(), id_, nva.data(), nva.size(),
                              head_request_ ? nullptr : &provider) != 0) {
    return reset(NGHTTP2_INTERNAL_ERROR);
  }
  connection_.mark_dirty(id_);  // the request body, if any, is not wanted any more
  connection_.want_send();
}

void H2Stream::reset(std::uint32_t error_code) {
  if (reset_sent_) return;
  reset_sent_ = true;
  pieces_.clear();
  piece_offset_ = 0;
  send_deadline_ms_ = client_deadline_ms_ = 0;
  nghttp2_submit_rst_stream(connection_.session(), NGHTTP2_FLAG_NONE, id_, error_code);
  connection_.mark_dirty(id_);
  connection_.want_send();
}

void H2Stream::abort() {
  aborted_ = true;
  if (exchange_) exchange_->abort();
}

// ---- deadlines ------------------------------------------------------------------------

const config::Timeouts& H2Stream::timeouts() const {
  return connection_.worker().snapshot()->config->timeouts;
}

void H2Stream::arm_upstream_timer(std::uint64_t timeout_ms) {
  upstream_deadline_ms_ = connection_.worker().now_ms() + timeout_ms;
  connection_.schedule_deadline(upstream_deadline_ms_);
}

void H2Stream::arm_client_deadline(config::Duration timeout) {
  client_deadline_ms_ = connection_.worker().now_ms() + static_cast<std::uint64_t>(timeout.count());
  connection_.schedule_deadline(client_deadline_ms_);
}

// A response the client's window holds back may wait as long as an upstream may be silent.
void H2Stream::arm_send_deadline() {
  send_deadline_ms_ =
      connection_.worker().now_ms() + static_cast<std::uint64_t>(timeouts().upstream_read.count());
  connection_.schedule_deadline(send_deadline_ms_);
}

std::uint64_t H2Stream::deadline_ms() const {
  std::uint64_t next = 0;
  for (std::uint64_t at : {upstream_deadline_ms_, client_deadline_ms_, send_deadline_ms_}) {
    if (at != 0 && (next == 0 || at < next)) next = at;
  }
  return next;
}

void H2Stream::on_deadline(std::uint64_t now_ms) {
  if (upstream_deadline_ms_ != 0 && upstream_deadline_ms_ <= now_ms) {
    upstream_deadline_ms_ = 0;
    if (exchange_) exchange_->on_upstream_timeout();
  }
  const bool client_late = client_deadline_ms_ != 0 && client_deadline_ms_ <= now_ms;
  const bool send_late = send_deadline_ms_ != 0 && send_deadline_ms_ <= now_ms;
  if (client_late) client_deadline_ms_ = 0;
  if (send_late) send_deadline_ms_ = 0;
  if (client_late || send_late) on_client_timeout();
}

}  // namespace gh::proxy
