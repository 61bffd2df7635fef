#include "proxy/h2_connection.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "proxy/h2_stream.hpp"
#include "proxy/worker.hpp"

namespace gh::proxy {
namespace {

constexpr std::int32_t kMaxConcurrentStreams = 100;
constexpr std::int32_t kConnectionWindow = 1 << 20;
constexpr std::size_t kSendHigh = 64 * 1024;    // stop mem_send beyond
constexpr std::uint64_t kDrainNoticeMs = 1000;  // GOAWAY notice -> final GOAWAY
constexpr std::uint64_t kLingerMs = 2000;       // after a fatal error: flush GOAWAY, then close
// Envoy's premature-reset rule: once this many streams closed, a connection where at
// least half were reset by the client before a response head is abusive.
constexpr std::uint64_t kResetRuleMinStreams = 500;
constexpr unsigned kMaxEmptyDataFrames = 16;

H2Connection& self_of(void* user_data) {
  return *static_cast<H2Connection*>(user_data);
}

int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    self_of(user_data).begin_stream(frame->hd.stream_id);
  }
  return 0;
}

int on_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
              nghttp2_rcbuf* value, std::uint8_t, void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2Stream* stream = self_of(user_data).find_stream(frame->hd.stream_id);
  if (!stream) return 0;
  return stream->on_header(name, value, frame->headers.cat == NGHTTP2_HCAT_HEADERS);
}

// nghttp2 1.52 drops fields with CR, LF, NUL, other controls or stray whitespace and
// forwards the rest; here such a request is answered 400 and never forwarded.
int on_invalid_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf*, nghttp2_rcbuf*,
                      std::uint8_t, void* user_data) {
  if (H2Stream* stream = self_of(user_data).find_stream(frame->hd.stream_id)) {
    stream->on_invalid_header();
  }
  return 0;
}

int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  H2Connection& connection = self_of(user_data);
  const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_DATA)
    connection.note_empty_data(frame->hd.length == 0 && !end_stream);
  H2Stream* stream = connection.find_stream(frame->hd.stream_id);
  if (!stream) return 0;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        stream->on_headers_end(end_stream);
      } else if (end_stream) {
        stream->on_request_end();  // after trailers
      }
      break;
    case NGHTTP2_DATA:
      if (end_stream) stream->on_request_end();
      break;
    case NGHTTP2_RST_STREAM:
      stream->on_peer_reset();
      break;
    default:
      return 0;
  }
  connection.mark_dirty(frame->hd.stream_id);
  return 0;
}

int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                  std::size_t length, void* user_data) {
  H2Connection& connection = self_of(user_data);
  if (H2Stream* stream = connection.find_stream(stream_id)) {
    stream->on_data(data, length);
    connection.mark_dirty(stream_id);
  }
  return 0;
}

// A frame with END_STREAM left nghttp2 (it is in the output): the response is complete
// from the stream's point of view, and only now may it reset an unfinished request.
int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return 0;
  if (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2Connection& connection = self_of(user_data);
  if (H2Stream* stream = connection.find_stream(frame->hd.stream_id)) {
    stream->on_end_stream_sent();
    connection.mark_dirty(frame->hd.stream_id);
  }
  return 0;
}

int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                    void* user_data) {
  H2Connection& connection = self_of(user_data);
  if (H2Stream* stream = connection.find_stream(stream_id)) {
    stream->on_closed(error_code);
    connection.mark_dirty(stream_id);
  }
  return 0;
}

// The library-wide settings: callbacks and options, made once.
struct Codec {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* options = nullptr;
  Codec() {
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(callbacks, on_header);
    nghttp2_session_callbacks_set_on_invalid_header_callback2(callbacks, on_invalid_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
    nghttp2_option_new(&options);
    // Window updates follow what the upstream took, not what arrived (backpressure).
    nghttp2_option_set_no_auto_window_update(options, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(options, 4096);
    // Debian's defaults stay: 1000 queued ACKs (flood), 32 SETTINGS entries, 8
    // CONTINUATIONs, RST_STREAM bucket 1000 burst / 33 per second.
  }
  ~Codec() {
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_option_del(options);
  }
};

const Codec& codec() {
  static const Codec instance;
  return instance;
}

}  // namespace

H2Connection::H2Connection(Worker& worker, std::size_t listener_index)
    : worker_(worker),
      listener_index_(listener_index),
      idle_timer_(worker.loop(), this,
                  [](void* self) { static_cast<H2Connection*>(self)->on_idle_timeout(); }),
      deadline_timer_(worker.loop(), this,
                      [](void* self) { static_cast<H2Connection*>(self)->on_deadline_timer(); }) {
  open_handles_ = 2;  // the timers
}

H2Connection::~H2Connection() {
  streams_.clear();  // before the session: streams never call into it from destructors
  if (session_) nghttp2_session_del(session_);
}

void H2Connection::start(std::unique_ptr<tls::Transport> transport, std::string_view received) {
  transport_ = std::move(transport);
  transport_->set_events(*this);
  ++open_handles_;
  client_ip_ = transport_->peer_ip();
  client_ = ClientContext{client_ip_, transport_->secure(), listener_index_};
  if (nghttp2_session_server_new2(&session_, codec().callbacks, this, codec().options) != 0) {
    GH_LOG_ERROR("%s: cannot create an HTTP/2 session", client_ip_.c_str());
    return close();
  }
  const auto& config = *worker_.snapshot()->config;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(kH2StreamWindow)},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<std::uint32_t>(config.limits.header_bytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  idle_timer_.arm(static_cast<std::uint64_t>(config.timeouts.keepalive.count()));
  if (!received.empty()) feed(received.data(), received.size());
  update_reads();
  send();
}

// ---- input -------------------------------------------------------------------------

uv_buf_t H2Connection::read_buffer() {
  in_.acquire(worker_.buffers());
  return uv_buf_init(in_.end_ptr(), static_cast<unsigned>(in_.free_space()));
}

void H2Connection::on_read(std::size_t n) {
  in_.produced(n);
  feed(in_.begin_ptr(), in_.pending());
  in_.consume(in_.pending());
  in_.release_if_empty(worker_.buffers());  // an idle connection holds no input buffer
  send();
}

void H2Connection::feed(const char* data, std::size_t length) {
  if (dead_ || closing_) return;
  const ssize_t rv =
      nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), length);
  if (calm_down_) return fatal(NGHTTP2_ENHANCE_YOUR_CALM, "too many empty DATA frames");
  if (rv < 0) return fatal(NGHTTP2_PROTOCOL_ERROR, nghttp2_strerror(static_cast<int>(rv)));
  process_streams();
}

// Never feed the session again (CVE-2026-27135: parsing on after termination aborted
// the process); say GOAWAY if the library has not, flush, then close.
void H2Connection::fatal(std::uint32_t error_code, const char* why) {
  if (error_code != NGHTTP2_NO_ERROR) {
    GH_LOG_INFO("%s: HTTP/2 connection error: %s", client_ip_.c_str(), why);
  }
  dead_ = true;
  if (error_code != NGHTTP2_NO_ERROR) {
    // The peer broke the protocol: nothing more of its requests goes upstream.
    for (auto& [id, stream] : streams_) stream->abort();
  }
  nghttp2_session_terminate_session(session_, error_code);
  idle_timer_.arm(kLingerMs);  // a peer that does not read its GOAWAY is cut off then
  update_reads();
}

void H2Connection::on_read_end(int) {
  reading_ = false;
  dead_ = true;
  close();
}

void H2Connection::update_reads() {
  if (!transport_ || closing_) return;
  // Reading goes on while output waits: what a peer that does not read makes us queue
  // stays inside nghttp2 (mem_send stops at kSendHigh), where its flood limits apply.
  const bool want = !dead_ && nghttp2_session_want_read(session_) != 0;
  if (want && !reading_) {
    const int rc = transport_->start_reading();
    reading_ = rc == 0 || rc == UV_EALREADY;  // a handed-over socket already reads
  } else if (!want && reading_) {
    transport_->stop_reading();
    reading_ = false;
  }
}

// ---- streams -----------------------------------------------------------------------

H2Stream* H2Connection::find_stream(std::int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void H2Connection::begin_stream(std::int32_t id) {
  streams_.emplace(id, std::make_unique<H2Stream>(*this, id));
  if (!draining_ && !dead_) idle_timer_.disarm();  // it carries the drain and linger steps
}

bool H2Connection::note_empty_data(bool empty) {
  empty_data_frames_ = empty ? empty_data_frames_ + 1 : 0;
  if (empty_data_frames_ > kMaxEmptyDataFrames) calm_down_ = true;
  return !calm_down_;
}

void H2Connection::process_streams() {
  while (!dirty_.empty()) {
    advancing_.swap(dirty_);  // both keep their capacity: no allocation per pass
    std::sort(advancing_.begin(), advancing_.end());
    advancing_.erase(std::unique(advancing_.begin(), advancing_.end()), advancing_.end());
    for (std::int32_t id : advancing_) {
      H2Stream* stream = find_stream(id);
      if (stream && stream->advance()) destroy_stream(id);
    }
    advancing_.clear();
  }
}

void H2Connection::destroy_stream(std::int32_t id) {
  auto it = streams_.find(id);
  ++closed_streams_;
  if (it->second->premature_reset()) ++premature_resets_;
  streams_.erase(it);
  if (closed_streams_ >= kResetRuleMinStreams && premature_resets_ * 2 >= closed_streams_ &&
      !dead_) {
    fatal(NGHTTP2_ENHANCE_YOUR_CALM, "most streams reset by the client (rapid reset)");
  }
  if (streams_.empty() && !idle_timer_.armed() && !draining_) {
    idle_timer_.arm(
        static_cast<std::uint64_t>(worker_.snapshot()->config->timeouts.keepalive.count()));
  }
}

void H2Connection::schedule_deadline(std::uint64_t at_ms) {
  if (deadline_timer_.armed() && next_deadline_ms_ <= at_ms) return;
  next_deadline_ms_ = at_ms;
  const std::uint64_t now = worker_.now_ms();
  deadline_timer_.arm(at_ms > now ? at_ms - now : 0);
}

void H2Connection::on_deadline_timer() {
  const std::uint64_t now = worker_.now_ms();
  next_deadline_ms_ = 0;  // before the streams re-arm theirs
  std::uint64_t next = 0;
  std::vector<H2Stream*> expired;
  for (auto& [id, stream] : streams_) {
    const std::uint64_t at = stream->deadline_ms();
    if (at == 0) continue;
    if (at <= now) {
      expired.push_back(stream.get());
    } else if (next == 0 || at < next) {
      next = at;
    }
  }
  // Streams are only destroyed by process_streams, so these pointers stay valid.
  for (H2Stream* stream : expired) stream->on_deadline(now);
  if (next != 0) schedule_deadline(next);
}

void H2Connection::fail_connection(const char* why) {
  fatal(NGHTTP2_PROTOCOL_ERROR, why);
  want_send();
}

// ---- output ------------------------------------------------------------------------

void H2Connection::want_send() {
  if (closing_) return;
  if (DeferQueue* queue = DeferQueue::of(worker_.loop())) queue->push(*this);
}

// One pass: frames from nghttp2 into `pending_` (up to kSendHigh), the streams' work
// that sending recorded (pieces copied, responses ended, streams closed), again while
// that produced more; then one write.
void H2Connection::send() {
  if (sending_ || closing_ || !session_) return;
  sending_ = true;
  for (;;) {
    while (pending_.size() < kSendHigh) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        GH_LOG_INFO("%s: HTTP/2 send failed: %s", client_ip_.c_str(),
                    nghttp2_strerror(static_cast<int>(n)));
        sending_ = false;
        return close();
      }
      if (n == 0) break;
      pending_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (dirty_.empty()) break;
    process_streams();
  }
  sending_ = false;
  start_write();
  update_reads();
  maybe_close();
}

void H2Connection::start_write() {
  if (!writing_.empty() || pending_.empty() || closing_) return;
  writing_.swap(pending_);
  uv_buf_t buf = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
  if (transport_->write(&buf, 1) != 0) close();
}

void H2Connection::on_write_done(int status) {
  writing_.clear();
  if (status < 0) return close();
  if (streams_.empty() && pending_.empty()) {
    std::string().swap(writing_);  // idle connections keep no output buffer
    std::string().swap(pending_);
  }
  send();
}

// ---- endings -----------------------------------------------------------------------

void H2Connection::maybe_close() {
  if (closing_ || !writing_.empty() || !pending_.empty()) return;
  if (dead_ ||
      (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0)) {
    close();
  }
}

void H2Connection::drain() {
  if (closing_ || draining_) return;
  draining_ = true;
  if (!session_) return close();
  nghttp2_submit_shutdown_notice(session_);
  idle_timer_.arm(kDrainNoticeMs);
  want_send();
}

void H2Connection::on_idle_timeout() {
  if (closing_) return;
  if (dead_) return close();  // the GOAWAY had its chance
  if (draining_ && !final_goaway_) {
    final_goaway_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    return send();
  }
  if (!streams_.empty()) return;
  fatal(NGHTTP2_NO_ERROR, "idle");  // GOAWAY, then close
  send();
}

void H2Connection::close() {
  if (closing_) return;
  closing_ = true;
  if (DeferQueue* queue = DeferQueue::of(worker_.loop())) queue->cancel(*this);
  for (auto& [id, stream] : streams_) stream->abort();
  const auto timer_closed = [](void* self) { static_cast<H2Connection*>(self)->handle_closed(); };
  idle_timer_.close(timer_closed);
  deadline_timer_.close(timer_closed);
  transport_->close();
}

void H2Connection::on_closed() {
  handle_closed();
}

void H2Connection::handle_closed() {
  if (--open_handles_ > 0) return;
  in_ = ByteBuffer{};
  worker_.forget(this);  // destroys this
}

}  // namespace gh::proxy
