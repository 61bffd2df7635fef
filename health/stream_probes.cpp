// tcp, http and redis probes: one TCP connection per attempt on the loop (libuv only).
//
// StreamProbe does the shared part: resolve the name (uv_getaddrinfo) or take the fixed
// address, connect to each address in turn until one accepts, write the request, read
// until the subclass has a verdict, all under one timer that bounds the whole attempt.
// Each attempt's uv_tcp_t lives in a heap Connection that is buried in the probe's
// Graveyard when the attempt ends, so late connect/write callbacks (UV_ECANCELED) still
// find valid memory and see that nobody owns the connection any more.
// Loop thread only; owned by the Checker (see probe.hpp for the close protocol).
#include <array>
#include <optional>

#include "health/probe.hpp"
#include "health/probe_logic.hpp"
#include "health/uv_util.hpp"

namespace gh::health {
namespace {

class StreamProbe;

struct Connection {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_write_t write{};
  std::string out;
  std::array<char, 16 * 1024> in{};
  StreamProbe* owner = nullptr;  // null once abandoned: late callbacks do nothing
};

class StreamProbe : public Probe {
 public:
  void start(Done done) override;
  void close(std::function<void()> on_closed) override;

 protected:
  StreamProbe(uv_loop_t* loop, Milliseconds timeout) : loop_(loop), timeout_(timeout) {
    timer_ = make_timer(loop, this);
  }
  ~StreamProbe() override = default;

  void set_name(std::string host, uint16_t port) {
    host_ = std::move(host);
    port_ = port;
  }
  void set_address(const sockaddr_storage& address) { fixed_ = address; }

  virtual void begin_attempt() {}
  // Bytes to send once connected; "" = the connect itself is the check.
  virtual std::string request() = 0;
  // Bytes received; a verdict when known.
  virtual std::optional<ProbeResult> on_data(std::string_view bytes) = 0;
  // The server closed the connection before a verdict.
  virtual ProbeResult on_eof() = 0;

 private:
  void on_resolved(Result<Lookup::Addresses> addresses);
  void connect_next();
  void on_connected();
  void finish(ProbeResult result);
  void finish_soon(ProbeResult result);
  void drop_connection();

  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t*);
  static void on_write(uv_write_t* req, int status);
  static void on_timer(uv_timer_t* timer);

  uv_loop_t* loop_;
  Milliseconds timeout_;
  std::string host_;
  uint16_t port_ = 0;
  std::optional<sockaddr_storage> fixed_;
  std::unique_ptr<uv_timer_t> timer_;
  std::unique_ptr<Connection> conn_;
  std::shared_ptr<Lookup> lookup_;
  Lookup::Addresses addresses_;
  std::size_t next_address_ = 0;
  std::string last_error_;
  std::optional<ProbeResult> pending_;  // reported by the next timer callback
  Done done_;
  Graveyard graveyard_;
};

void StreamProbe::start(Done done) {
  done_ = std::move(done);
  pending_.reset();
  last_error_.clear();
  begin_attempt();
  uv_timer_start(timer_.get(), on_timer, static_cast<uint64_t>(timeout_.count()), 0);
  if (fixed_) return on_resolved(Lookup::Addresses{*fixed_});
  auto lookup = Lookup::start(loop_, host_, port_, [this](Result<Lookup::Addresses> found) {
    lookup_.reset();
    on_resolved(std::move(found));
  });
  if (!lookup) return finish_soon(ProbeResult::failure(lookup.error().message));
  lookup_ = std::move(*lookup);
}

void StreamProbe::close(std::function<void()> on_closed) {
  done_ = nullptr;
  cancel_lookup(lookup_);
  drop_connection();
  graveyard_.bury(std::move(timer_));
  graveyard_.on_empty(loop_, std::move(on_closed));
}

void StreamProbe::on_resolved(Result<Lookup::Addresses> addresses) {
  if (!addresses) return finish(ProbeResult::failure(addresses.error().message));
  addresses_ = std::move(*addresses);
  next_address_ = 0;
  connect_next();
}

void StreamProbe::connect_next() {
  drop_connection();
  while (next_address_ < addresses_.size()) {
    const sockaddr_storage& address = addresses_[next_address_++];
    conn_ = std::make_unique<Connection>();
    conn_->owner = this;
    uv_tcp_init(loop_, &conn_->tcp);
    conn_->tcp.data = conn_.get();
    conn_->connect.data = conn_.get();
    int rc = uv_tcp_connect(&conn_->connect, &conn_->tcp,
                            reinterpret_cast<const sockaddr*>(&address), on_connect);
    if (rc == 0) return;
    last_error_ = std::string(uv_strerror(rc)) + " (" + sockaddr_text(address) + ")";
    drop_connection();
  }
  finish_soon(ProbeResult::failure(last_error_.empty() ? "no address" : last_error_));
}

void StreamProbe::on_connect(uv_connect_t* req, int status) {
  auto* conn = static_cast<Connection*>(req->data);
  StreamProbe* self = conn->owner;
  if (!self) return;
  if (status != 0) {
    const sockaddr_storage& address = self->addresses_[self->next_address_ - 1];
    self->last_error_ = std::string(uv_strerror(status)) + " (" + sockaddr_text(address) + ")";
    return self->connect_next();
  }
  self->on_connected();
}

void StreamProbe::on_connected() {
  conn_->out = request();
  if (conn_->out.empty()) {
    const sockaddr_storage& address = addresses_[next_address_ - 1];
    return finish(ProbeResult::pass("connected to " + sockaddr_text(address)));
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn_->tcp);
  uv_buf_t buf = uv_buf_init(conn_->out.data(), static_cast<unsigned>(conn_->out.size()));
  conn_->write.data = conn_.get();
  int rc = uv_write(&conn_->write, stream, &buf, 1, on_write);
  if (rc == 0) rc = uv_read_start(stream, on_alloc, on_read);
  if (rc != 0) finish(ProbeResult::failure(std::string("send failed: ") + uv_strerror(rc)));
}

void StreamProbe::on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(conn->in.data(), static_cast<unsigned>(conn->in.size()));
}

void StreamProbe::on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(stream->data);
  StreamProbe* self = conn->owner;
  if (!self || n == 0) return;
  if (n == UV_EOF) return self->finish(self->on_eof());
  if (n < 0) {
    return self->finish(
        ProbeResult::failure(std::string("read failed: ") + uv_strerror(static_cast<int>(n))));
  }
  if (auto verdict = self->on_data({buf->base, static_cast<std::size_t>(n)})) {
    self->finish(std::move(*verdict));
  }
}

void StreamProbe::on_write(uv_write_t* req, int status) {
  auto* conn = static_cast<Connection*>(req->data);
  StreamProbe* self = conn->owner;
  if (!self || status == 0) return;
  self->finish(ProbeResult::failure(std::string("send failed: ") + uv_strerror(status)));
}

void StreamProbe::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<StreamProbe*>(timer->data);
  if (self->pending_) return self->finish(std::move(*self->pending_));
  self->finish(ProbeResult::failure(timeout_reason(self->timeout_)));
}

void StreamProbe::finish_soon(ProbeResult result) {
  pending_ = std::move(result);
  uv_timer_start(timer_.get(), on_timer, 0, 0);
}

void StreamProbe::finish(ProbeResult result) {
  if (!done_) return;
  uv_timer_stop(timer_.get());
  cancel_lookup(lookup_);
  drop_connection();
  pending_.reset();
  Done done = std::move(done_);
  done_ = nullptr;
  done(std::move(result));  // may start the next attempt or close this probe
}

void StreamProbe::drop_connection() {
  if (!conn_) return;
  conn_->owner = nullptr;
  auto* handle = reinterpret_cast<uv_handle_t*>(&conn_->tcp);
  graveyard_.bury(std::move(conn_), handle);
}

// --- tcp -------------------------------------------------------------------------------

class TcpProbe final : public StreamProbe {
 public:
  TcpProbe(uv_loop_t* loop, std::string host, uint16_t port, Milliseconds timeout)
      : StreamProbe(loop, timeout) {
    set_name(std::move(host), port);
  }
  TcpProbe(uv_loop_t* loop, const sockaddr_storage& address, Milliseconds timeout)
      : StreamProbe(loop, timeout) {
    set_address(address);
  }

 private:
  std::string request() override { return {}; }
  std::optional<ProbeResult> on_data(std::string_view) override { return std::nullopt; }
  ProbeResult on_eof() override { return ProbeResult::failure("connection closed"); }
};

// --- http ------------------------------------------------------------------------------

class HttpProbe final : public StreamProbe {
 public:
  HttpProbe(uv_loop_t* loop, const sockaddr_storage& address, HttpProbeSpec spec,
            Milliseconds timeout)
      : StreamProbe(loop, timeout), spec_(std::move(spec)) {
    set_address(address);
  }

 private:
  void begin_attempt() override { reader_.emplace(spec_); }
  std::string request() override {
    return "GET " + spec_.path + " HTTP/1.1\r\nHost: " + spec_.host_header +
           "\r\nUser-Agent: gatehouse-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  }
  std::optional<ProbeResult> on_data(std::string_view bytes) override {
    return reader_->feed(bytes);
  }
  ProbeResult on_eof() override { return reader_->finish(); }

  HttpProbeSpec spec_;
  std::optional<HttpResponseReader> reader_;
};

// --- redis -----------------------------------------------------------------------------

class RedisProbe final : public StreamProbe {
 public:
  RedisProbe(uv_loop_t* loop, std::string host, uint16_t port, std::string password,
             Milliseconds timeout)
      : StreamProbe(loop, timeout), password_(std::move(password)) {
    set_name(std::move(host), port);
  }

 private:
  void begin_attempt() override {
    received_.clear();
    replies_.clear();
  }
  std::string request() override {
    std::string out = password_.empty() ? "" : resp_command({"AUTH", password_});
    return out + resp_command({"PING"});
  }
  std::optional<ProbeResult> on_data(std::string_view bytes) override;
  ProbeResult on_eof() override {
    return ProbeResult::failure("connection closed by the server before it answered PING");
  }

  std::string password_;
  std::string received_;
  std::vector<RespReply> replies_;
};

std::optional<ProbeResult> RedisProbe::on_data(std::string_view bytes) {
  // Answers to PING and AUTH are a few bytes; a server that sends more is not answering
  // them, and the reply is re-read whole on every read.
  constexpr std::size_t kMaxReplyBytes = 256 * 1024;
  if (received_.size() + bytes.size() > kMaxReplyBytes) {
    return ProbeResult::failure("RESP reply larger than 256 KiB");
  }
  received_.append(bytes);
  const std::size_t expected = password_.empty() ? 1 : 2;
  while (replies_.size() < expected) {
    RespParse parsed = parse_resp_reply(received_);
    if (parsed.state == RespParse::State::invalid) {
      return ProbeResult::failure("invalid RESP reply from the server");
    }
    if (parsed.state == RespParse::State::incomplete) return std::nullopt;
    replies_.push_back(std::move(parsed.reply));
    received_.erase(0, parsed.consumed);
  }
  return redis_verdict(replies_, !password_.empty());
}

}  // namespace

std::unique_ptr<Probe> make_tcp_probe(uv_loop_t* loop, std::string host, uint16_t port,
                                      Milliseconds timeout) {
  return std::make_unique<TcpProbe>(loop, std::move(host), port, timeout);
}

std::unique_ptr<Probe> make_tcp_probe(uv_loop_t* loop, const sockaddr_storage& address,
                                      Milliseconds timeout) {
  return std::make_unique<TcpProbe>(loop, address, timeout);
}

std::unique_ptr<Probe> make_http_probe(uv_loop_t* loop, const sockaddr_storage& address,
                                       HttpProbeSpec spec, Milliseconds timeout) {
  return std::make_unique<HttpProbe>(loop, address, std::move(spec), timeout);
}

std::unique_ptr<Probe> make_redis_probe(uv_loop_t* loop, std::string host, uint16_t port,
                                        std::string password, Milliseconds timeout) {
  return std::make_unique<RedisProbe>(loop, std::move(host), port, std::move(password), timeout);
}

}  // namespace gh::health
