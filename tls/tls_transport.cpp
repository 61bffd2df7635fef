// TLS transport: one uv_tcp_t, one uv_timer_t and one SSL, on the worker's loop thread:
// a server SSL for accepted connections (accept_tls), a client SSL for upstream ones
// (connect_tls; the handshake starts once TCP connects, and on_connected reports it). The transport
// owns all three; the owner (Events) owns its plaintext buffers.
//
// OpenSSL never touches the socket. Its BIO (transport_bio_method) reads ciphertext from
// a block this transport read from TCP and appends the ciphertext it produces to
// `out_pending_`, which goes out with one uv_write at a time. Everything happens in
// pump(), run after each TCP read, each finished ciphertext write and each deferred step:
// handshake, then decrypting into Events::read_buffer(), then encrypting the owner's write,
// then flushing. The timer is the handshake deadline until the handshake completes and
// after that schedules deferred pumps (start_reading() with plaintext already buffered,
// a write that produced nothing to send), so no owner callback runs inside an owner call.
//
// Memory: with SSL_MODE_RELEASE_BUFFERS OpenSSL keeps no record buffers between records,
// the ciphertext read block comes from a per-thread pool and goes back as soon as it is
// consumed, and the ciphertext write buffers are freed once no write is pending, so an
// idle connection holds only the SSL object and its session (about 14 KiB with OpenSSL
// 3.0, measured after a TLS 1.3 handshake).
//
// Back-pressure: TCP is read only when the ciphertext block is consumed, and after the
// handshake only while the owner reads. close() may be called from any callback: every
// step checks `closing_` after calling out, and nothing but on_closed() follows it.
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/byte_buffer.hpp"
#include "core/log.hpp"
#include "tls/context.hpp"
#include "tls/transport.hpp"

namespace gh::tls {
namespace {

constexpr std::size_t kCipherBlock = 17 * 1024;      // a full TLS record and then some
constexpr std::size_t kRecordPlaintext = 16 * 1024;  // TLS maximum record payload
constexpr std::size_t kCipherBatch = 16 * 1024;      // encrypt ahead at most this much

// Process-wide: a handshake costs ~1 ms of CPU, so a shared atomic add is noise here.
enum class Handshake { full, resumed, failed };
std::atomic<std::uint64_t> handshake_counters[3];

void count_handshake(Handshake kind) {
  handshake_counters[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
}

BufferPool& cipher_pool() {
  thread_local BufferPool pool(kCipherBlock, 64);
  return pool;
}

// The BIO under every TLS transport's SSL: read and write go to the transport (below).
BIO_METHOD* transport_bio_method();

class TlsTransport final : public Transport {
 public:
  // `context` keeps alive whatever `ssl` points back at (its ServerContext or
  // ClientContext); `label` names the peer in logs ("" = its IP).
  TlsTransport(uv_loop_t* loop, Events& events, std::shared_ptr<const void> context, SslPtr ssl,
               std::string label = {})
      : events_(&events),
        context_(std::move(context)),
        ssl_(std::move(ssl)),
        label_(std::move(label)) {
    uv_tcp_init(loop, &tcp_);
    uv_timer_init(loop, &timer_);
    tcp_.data = timer_.data = this;
  }

  ~TlsTransport() override { release_input(); }

  void accept_from(uv_stream_t* listener, config::Duration handshake_timeout);
  void connect_to(const sockaddr* address);

  int start_reading() override;
  void stop_reading() override;
  int write(const uv_buf_t* bufs, unsigned count) override;
  void shutdown_write() override;
  void close() override;
  bool secure() const override { return true; }
  std::string peer_ip() const override;
  void set_events(Events& events) override { events_ = &events; }
  std::string_view alpn() const override {
    const unsigned char* protocol = nullptr;
    unsigned length = 0;
    SSL_get0_alpn_selected(ssl_.get(), &protocol, &length);
    return {reinterpret_cast<const char*>(protocol), length};
  }

  // BIO side: OpenSSL reading ciphertext (0 = none left) and writing ciphertext.
  std::size_t take_ciphertext(char* out, std::size_t size);
  void put_ciphertext(const char* data, std::size_t size);

 private:
  // The owner's shutdown_write(): requested, close_notify queued, FIN handed to libuv.
  enum class Fin { open, requested, notify_queued, sent };

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  bool start_tls();  // the BIO under the SSL, once TCP is up
  std::string who() const { return label_.empty() ? peer_ip() : label_; }

  // pump() and its steps
  void pump();
  void advance_handshake();
  void deliver_plaintext();
  void continue_owner_write();
  int encrypt_some();
  std::string_view next_record(std::array<char, kRecordPlaintext>& staging);
  bool plaintext_left();
  void start_fin();
  void flush_ciphertext();
  void schedule_pump();
  void update_network_reads();
  bool has_input() const;
  void release_input();
  void release_idle_buffers();

  // endings
  void end_reads(int status);
  void fail(int status);
  void fail_tls(int ssl_error, const char* what);
  void on_network_end(int status);

  static void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf);
  static void on_network_read(uv_stream_t* stream, ssize_t n, const uv_buf_t*);
  static void on_ciphertext_written(uv_write_t* req, int status);
  static void on_handshake_timeout(uv_timer_t* timer);
  static void on_deferred_pump(uv_timer_t* timer);
  static void on_handle_closed(uv_handle_t* handle);
  static void on_tcp_connected(uv_connect_t* req, int status);
  static void on_connect_refused(uv_timer_t* timer);

  Events* events_;
  std::shared_ptr<const void> context_;
  SslPtr ssl_;
  std::string label_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  uv_connect_t connect_req_{};
  int open_handles_ = 2;

  // Ciphertext read from TCP, [in_begin_, in_end_) not yet taken by OpenSSL.
  std::unique_ptr<char[]> in_block_;
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;

  std::vector<char> out_pending_;  // ciphertext from OpenSSL, not yet handed to libuv
  std::vector<char> out_flight_;   // ciphertext of the uv_write in flight

  // The owner's write in flight: its buffers, encrypted up to [plain_index_].plain_offset_.
  std::vector<uv_buf_t> plain_;
  std::size_t plain_index_ = 0;
  std::size_t plain_offset_ = 0;

  int error_ = 0;        // first fatal error; the connection is unusable after it
  int write_error_ = 0;  // a failed ciphertext write, turned into fail() by pump()
  Fin fin_ = Fin::open;
  bool handshake_done_ = false;
  bool owner_reading_ = false;
  bool owner_writing_ = false;
  bool network_reading_ = false;
  bool ciphertext_writing_ = false;
  bool write_closed_ = false;  // FIN sent or writes failed: ciphertext is dropped
  bool read_ended_ = false;    // on_read_end reported (or about to be)
  bool closing_ = false;
  bool connecting_ = false;  // client: on_connected not reported yet
};

// ---- setup and owner calls -------------------------------------------------------

void TlsTransport::accept_from(uv_stream_t* listener, config::Duration handshake_timeout) {
  if (int rc = uv_accept(listener, stream()); rc != 0) {
    GH_LOG_WARN("accept failed: %s", uv_strerror(rc));
    error_ = rc;
    return;
  }
  if (!start_tls()) return;
  const auto timeout = static_cast<std::uint64_t>(handshake_timeout.count());
  if (timeout > 0) uv_timer_start(&timer_, on_handshake_timeout, timeout, 0);
  update_network_reads();
}

// Client: the handshake starts in on_tcp_connected. A connect libuv refuses at once is
// reported from the timer, not from inside this call.
void TlsTransport::connect_to(const sockaddr* address) {
  connecting_ = true;
  connect_req_.data = this;
  uv_tcp_nodelay(&tcp_, 1);
  if (int rc = uv_tcp_connect(&connect_req_, &tcp_, address, on_tcp_connected); rc != 0) {
    error_ = rc;
    uv_timer_start(&timer_, on_connect_refused, 0, 0);
  }
}

bool TlsTransport::start_tls() {
  uv_tcp_nodelay(&tcp_, 1);
  BIO* bio = ssl_ ? BIO_new(transport_bio_method()) : nullptr;
  if (bio == nullptr) {
    GH_LOG_WARN("%s: cannot set up TLS: %s", who().c_str(), take_openssl_error().c_str());
    error_ = UV_ENOMEM;
    return false;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_.get(), bio, bio);  // the SSL owns the BIO from here
  return true;
}

int TlsTransport::start_reading() {
  if (closing_) return UV_EINVAL;
  if (error_) return error_;
  owner_reading_ = true;
  if (has_input()) schedule_pump();
  update_network_reads();
  return error_;
}

void TlsTransport::stop_reading() {
  owner_reading_ = false;
  update_network_reads();
}

int TlsTransport::write(const uv_buf_t* bufs, unsigned count) {
  if (closing_ || fin_ != Fin::open) return UV_EPIPE;
  if (error_ || write_error_) return error_ ? error_ : write_error_;
  if (owner_writing_) return UV_EBUSY;
  plain_.assign(bufs, bufs + count);
  plain_index_ = plain_offset_ = 0;
  owner_writing_ = true;
  if (!handshake_done_) return 0;  // encrypted when the handshake completes
  if (int rc = encrypt_some(); rc != 0) {
    owner_writing_ = false;
    plain_.clear();
    return rc;
  }
  flush_ciphertext();
  if (!ciphertext_writing_) schedule_pump();  // finish (or fail) from the loop, not in here
  return 0;
}

void TlsTransport::shutdown_write() {
  if (closing_ || fin_ != Fin::open) return;
  fin_ = Fin::requested;
  start_fin();
}

void TlsTransport::close() {
  if (closing_) return;
  closing_ = true;
  if (!handshake_done_ && ssl_ && SSL_is_server(ssl_.get())) count_handshake(Handshake::failed);
  network_reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_handle_closed);
}

std::string TlsTransport::peer_ip() const {
  return peer_ip_of(tcp_);
}

// ---- the pump ----------------------------------------------------------------------

void TlsTransport::pump() {
  if (closing_) return;
  if (!error_ && !handshake_done_) advance_handshake();
  if (!error_ && !closing_ && handshake_done_) deliver_plaintext();
  if (!error_ && !closing_ && handshake_done_) continue_owner_write();
  if (closing_) return;
  start_fin();
  flush_ciphertext();
  if (write_error_ && !error_) fail(write_error_);
  if (closing_) return;
  update_network_reads();
  release_idle_buffers();
}

void TlsTransport::advance_handshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_.get());
  if (rc == 1) {
    handshake_done_ = true;
    uv_timer_stop(&timer_);
    if (SSL_is_server(ssl_.get())) {
      count_handshake(SSL_session_reused(ssl_.get()) ? Handshake::resumed : Handshake::full);
    }
    if (connecting_) {
      connecting_ = false;
      events_->on_connected(0);
    }
    return;
  }
  const int err = SSL_get_error(ssl_.get(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
  fail_tls(err, "TLS handshake failed");
}

// Decrypts into the owner's buffer while it reads and there is input. A full buffer
// (len 0) pauses delivery until the owner's next start_reading().
void TlsTransport::deliver_plaintext() {
  while (owner_reading_ && !read_ended_ && has_input()) {
    uv_buf_t room = events_->read_buffer();
    if (closing_) return;
    if (room.len == 0) {
      owner_reading_ = false;
      return;
    }
    std::size_t got = 0;
    ERR_clear_error();
    const int rc = SSL_read_ex(ssl_.get(), room.base, room.len, &got);
    if (rc == 1) {
      events_->on_read(got);
      if (closing_ || error_) return;
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    if (err == SSL_ERROR_ZERO_RETURN) return end_reads(UV_EOF);  // close_notify
    return fail_tls(err, "TLS error");
  }
}

// Encrypts more of the owner's write and reports it done once all of it is on the wire.
void TlsTransport::continue_owner_write() {
  if (!owner_writing_) return;
  if (int rc = encrypt_some(); rc != 0) return fail(rc);
  if (plaintext_left() || ciphertext_writing_ || !out_pending_.empty()) return;
  owner_writing_ = false;
  plain_.clear();
  events_->on_write_done(0);
}

// SSL_write()s the owner's plaintext, one record of up to 16 KiB at a time, until
// kCipherBatch bytes of ciphertext wait. Returns 0 or a libuv error.
int TlsTransport::encrypt_some() {
  thread_local std::array<char, kRecordPlaintext> staging;
  while (out_pending_.size() < kCipherBatch) {
    const std::string_view record = next_record(staging);
    if (record.empty()) break;
    std::size_t written = 0;
    ERR_clear_error();
    const int rc = SSL_write_ex(ssl_.get(), record.data(), record.size(), &written);
    if (rc != 1) {
      const int err = SSL_get_error(ssl_.get(), rc);
      GH_LOG_INFO(
          "%s: TLS write failed: %s", who().c_str(),
          take_openssl_error(err == SSL_ERROR_SSL ? "protocol error" : "I/O error").c_str());
      return UV_EPROTO;
    }
  }
  return 0;
}

// The next record's plaintext: a view into the owner's buffer when one holds enough,
// else the small buffers that follow gathered into `staging` (no tiny records).
std::string_view TlsTransport::next_record(std::array<char, kRecordPlaintext>& staging) {
  if (!plaintext_left()) return {};
  const uv_buf_t& first = plain_[plain_index_];
  const std::size_t available = first.len - plain_offset_;
  if (available >= kRecordPlaintext || plain_index_ + 1 == plain_.size()) {
    const std::size_t n = std::min(available, kRecordPlaintext);
    std::string_view piece(first.base + plain_offset_, n);
    plain_offset_ += n;
    return piece;
  }
  std::size_t used = 0;
  while (used < staging.size() && plaintext_left()) {
    const uv_buf_t& buf = plain_[plain_index_];
    const std::size_t n = std::min(buf.len - plain_offset_, staging.size() - used);
    std::memcpy(staging.data() + used, buf.base + plain_offset_, n);
    used += n;
    plain_offset_ += n;
  }
  return {staging.data(), used};
}

// Whether unencrypted bytes remain; steps past finished (and empty) buffers.
bool TlsTransport::plaintext_left() {
  while (plain_index_ < plain_.size() && plain_offset_ == plain_[plain_index_].len) {
    ++plain_index_;
    plain_offset_ = 0;
  }
  return plain_index_ < plain_.size();
}

// shutdown_write(), once the owner's write is out and the handshake done (or failed):
// queue close_notify; flush_ciphertext() sends the FIN after it.
void TlsTransport::start_fin() {
  if (fin_ != Fin::requested || owner_writing_ || (!handshake_done_ && !error_)) return;
  if (!error_) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  fin_ = Fin::notify_queued;
  flush_ciphertext();
}

// Hands pending ciphertext to libuv, one write at a time, then a queued FIN.
void TlsTransport::flush_ciphertext() {
  if (closing_ || ciphertext_writing_) return;
  if (write_closed_) {
    out_pending_.clear();
    return;
  }
  if (!out_pending_.empty()) {
    out_flight_.swap(out_pending_);
    uv_buf_t buf = uv_buf_init(out_flight_.data(), static_cast<unsigned>(out_flight_.size()));
    write_req_.data = this;
    if (int rc = uv_write(&write_req_, stream(), &buf, 1, on_ciphertext_written); rc != 0) {
      write_error_ = rc;
      write_closed_ = true;
      out_flight_.clear();
      schedule_pump();  // reported from the loop: this may run inside an owner call
      return;
    }
    ciphertext_writing_ = true;
  }
  if (fin_ == Fin::notify_queued) {
    fin_ = Fin::sent;
    write_closed_ = true;
    shutdown_req_.data = this;
    uv_shutdown(&shutdown_req_, stream(), [](uv_shutdown_t*, int) {});
  }
}

void TlsTransport::schedule_pump() {
  // Before the handshake completes, the timer is the deadline and TCP reads drive pump().
  if (handshake_done_ && !closing_) uv_timer_start(&timer_, on_deferred_pump, 0, 0);
}

void TlsTransport::update_network_reads() {
  const bool want = !closing_ && !error_ && !read_ended_ && in_begin_ == in_end_ &&
                    (!handshake_done_ || owner_reading_);
  if (want == network_reading_) return;
  if (!want) {
    uv_read_stop(stream());
    network_reading_ = false;
  } else if (int rc = uv_read_start(stream(), on_alloc, on_network_read); rc == 0) {
    network_reading_ = true;
  } else {
    error_ = rc;  // the owner sees it from start_reading() or write()
  }
}

bool TlsTransport::has_input() const {
  return in_begin_ < in_end_ || (ssl_ && SSL_has_pending(ssl_.get()) == 1);
}

void TlsTransport::release_input() {
  in_begin_ = in_end_ = 0;
  if (in_block_) cipher_pool().give_back(std::move(in_block_));
}

void TlsTransport::release_idle_buffers() {
  if (in_begin_ == in_end_) release_input();
  if (!ciphertext_writing_ && out_pending_.empty() && !owner_writing_) {
    std::vector<char>().swap(out_pending_);
    std::vector<char>().swap(out_flight_);
  }
}

// ---- endings -----------------------------------------------------------------------

void TlsTransport::end_reads(int status) {
  if (read_ended_ || closing_) return;
  read_ended_ = true;
  in_begin_ = in_end_;  // anything after close_notify or an error is ignored
  update_network_reads();
  events_->on_read_end(status);
}

// A fatal error: OpenSSL's alert (if any) goes out, reads end with `status`, and a
// write in flight fails with it.
void TlsTransport::fail(int status) {
  if (error_) return;
  flush_ciphertext();
  error_ = status;
  uv_timer_stop(&timer_);
  plain_.clear();
  plain_index_ = plain_offset_ = 0;
  if (connecting_) {
    connecting_ = false;
    return events_->on_connected(status == UV_EOF ? UV_ECONNRESET : status);
  }
  if (!read_ended_) end_reads(status);
  if (closing_ || !owner_writing_) return;
  owner_writing_ = false;
  events_->on_write_done(status == UV_EOF ? UV_EPIPE : status);
}

void TlsTransport::fail_tls(int ssl_error, const char* what) {
  std::string reason =
      take_openssl_error(ssl_error == SSL_ERROR_SYSCALL ? "connection ended" : "protocol error");
  if (!connecting_) {
    GH_LOG_INFO("%s: %s: %s", who().c_str(), what, reason.c_str());
    return fail(UV_EPROTO);
  }
  // An upstream's handshake: worth a warning, with the verification failure spelled out.
  if (const long verify = SSL_get_verify_result(ssl_.get()); verify != X509_V_OK) {
    reason += std::string(": ") + X509_verify_cert_error_string(verify);
  }
  GH_LOG_WARN("%s: %s: %s", who().c_str(), what, reason.c_str());
  fail(UV_EPROTO);
}

void TlsTransport::on_network_end(int status) {
  if (!handshake_done_) {
    if (connecting_) {
      GH_LOG_WARN("%s: connection ended during the TLS handshake: %s", who().c_str(),
                  uv_strerror(status));
    } else {
      GH_LOG_DEBUG("%s: connection ended during the TLS handshake: %s", who().c_str(),
                   uv_strerror(status));
    }
    return fail(status);
  }
  // A TCP FIN without close_notify: an EOF like any other to HTTP/1.1.
  if (status == UV_EOF) return end_reads(UV_EOF);
  fail(status);
}

// ---- libuv callbacks ---------------------------------------------------------------

void TlsTransport::on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* self = static_cast<TlsTransport*>(handle->data);
  if (!self->in_block_) self->in_block_ = cipher_pool().take();
  self->in_begin_ = self->in_end_ = 0;  // TCP is read only once the block is consumed
  *buf = uv_buf_init(self->in_block_.get(), static_cast<unsigned>(kCipherBlock));
}

void TlsTransport::on_network_read(uv_stream_t* stream, ssize_t n, const uv_buf_t*) {
  auto* self = static_cast<TlsTransport*>(stream->data);
  if (n > 0) {
    self->in_end_ = static_cast<std::size_t>(n);
    return self->pump();
  }
  self->release_input();
  if (n < 0) self->on_network_end(static_cast<int>(n));
}

void TlsTransport::on_ciphertext_written(uv_write_t* req, int status) {
  auto* self = static_cast<TlsTransport*>(req->data);
  self->ciphertext_writing_ = false;
  self->out_flight_.clear();
  if (self->closing_) return;  // cancelled by close()
  if (status < 0) {
    self->write_error_ = status;
    self->write_closed_ = true;
  }
  self->pump();
}

void TlsTransport::on_handshake_timeout(uv_timer_t* timer) {
  auto* self = static_cast<TlsTransport*>(timer->data);
  GH_LOG_INFO("%s: TLS handshake timed out", self->who().c_str());
  self->fail(UV_ETIMEDOUT);
}

void TlsTransport::on_tcp_connected(uv_connect_t* req, int status) {
  auto* self = static_cast<TlsTransport*>(req->data);
  if (self->closing_) return;                                 // cancelled by close()
  if (status == 0 && self->start_tls()) return self->pump();  // sends the ClientHello
  self->connecting_ = false;
  self->error_ = status < 0 ? status : self->error_;
  self->events_->on_connected(self->error_);
}

void TlsTransport::on_connect_refused(uv_timer_t* timer) {
  auto* self = static_cast<TlsTransport*>(timer->data);
  self->connecting_ = false;
  self->events_->on_connected(self->error_);
}

void TlsTransport::on_deferred_pump(uv_timer_t* timer) {
  static_cast<TlsTransport*>(timer->data)->pump();
}

void TlsTransport::on_handle_closed(uv_handle_t* handle) {
  auto* self = static_cast<TlsTransport*>(handle->data);
  if (--self->open_handles_ > 0) return;
  self->release_input();
  self->events_->on_closed();  // may destroy *self
}

// ---- the BIO -----------------------------------------------------------------------

std::size_t TlsTransport::take_ciphertext(char* out, std::size_t size) {
  const std::size_t n = std::min(size, in_end_ - in_begin_);
  if (n > 0) std::memcpy(out, in_block_.get() + in_begin_, n);
  in_begin_ += n;
  return n;
}

void TlsTransport::put_ciphertext(const char* data, std::size_t size) {
  if (write_closed_) return;  // nothing more can be sent; OpenSSL need not know
  out_pending_.insert(out_pending_.end(), data, data + size);
}

int bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  if (size <= 0) return 0;
  static_cast<TlsTransport*>(BIO_get_data(bio))
      ->put_ciphertext(data, static_cast<std::size_t>(size));
  return size;
}

int bio_read(BIO* bio, char* out, int size) {
  BIO_clear_retry_flags(bio);
  if (size <= 0) return 0;
  auto* transport = static_cast<TlsTransport*>(BIO_get_data(bio));
  const std::size_t n = transport->take_ciphertext(out, static_cast<std::size_t>(size));
  if (n == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int command, long, void*) {
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int bio_destroy(BIO* bio) {
  BIO_set_data(bio, nullptr);
  BIO_set_init(bio, 0);
  return 1;
}

// Created once, shared by all threads, intentionally never freed.
BIO_METHOD* transport_bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gatehouse-tls");
    if (m != nullptr) {
      BIO_meth_set_write(m, bio_write);
      BIO_meth_set_read(m, bio_read);
      BIO_meth_set_ctrl(m, bio_ctrl);
      BIO_meth_set_create(m, bio_create);
      BIO_meth_set_destroy(m, bio_destroy);
    }
    return m;
  }();
  return method;
}

}  // namespace

std::unique_ptr<Transport> accept_tls(uv_loop_t* loop, uv_stream_t* listener,
                                      Transport::Events& events,
                                      std::shared_ptr<const ServerContext> context) {
  const config::Duration timeout = context->handshake_timeout();
  SslPtr ssl = context->new_ssl();
  auto transport = std::make_unique<TlsTransport>(loop, events, std::move(context), std::move(ssl));
  transport->accept_from(listener, timeout);
  return transport;
}

std::unique_ptr<Transport> connect_tls(uv_loop_t* loop, const sockaddr* address,
                                       Transport::Events& events,
                                       std::shared_ptr<const ClientContext> context,
                                       const std::string& server_name) {
  // sin_port and sin6_port share their offset.
  const unsigned port = ntohs(reinterpret_cast<const sockaddr_in*>(address)->sin_port);
  const std::string ip = ip_text(address);
  std::string label = "upstream " + (address->sa_family == AF_INET6 ? "[" + ip + "]" : ip) + ":" +
                      std::to_string(port);
  if (!server_name.empty()) label += " (" + server_name + ")";
  SslPtr ssl = context->new_ssl(server_name, ip + ":" + std::to_string(port) + "/" + server_name);
  auto transport = std::make_unique<TlsTransport>(loop, events, std::move(context), std::move(ssl),
                                                  std::move(label));
  transport->connect_to(address);
  return transport;
}

HandshakeCounts server_handshake_counts() {
  auto value = [](Handshake kind) {
    return handshake_counters[static_cast<int>(kind)].load(std::memory_order_relaxed);
  };
  return {value(Handshake::full), value(Handshake::resumed), value(Handshake::failed)};
}

}  // namespace gh::tls
