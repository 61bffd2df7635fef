// Transport: the byte stream under a downstream or upstream connection. Plain TCP, or TLS (an SSL
// object over an in-memory BIO on the same kind of TCP handle) behind the same
// interface, so HTTP proxying and tunnels are written once.
//
// Contract (loop thread only):
// - The transport owns its uv_tcp_t. close() is idempotent; Events::on_closed() is the
//   last callback and comes from the uv_close callback, after which the owner may free
//   the transport.
// - Reads land in the buffer the owner offers (Events::read_buffer) as plaintext.
// - At most one write is in flight; on_write_done follows each write() that returned 0.
//   Buffers passed to write() must stay valid until then.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace gh::tls {

class ServerContext;
class ClientContext;

class Transport {
 public:
  class Events {
   public:
    virtual ~Events() = default;
    virtual uv_buf_t read_buffer() = 0;        // room for plaintext; len 0 = pause reads
    virtual void on_read(std::size_t n) = 0;   // n bytes landed in read_buffer()
    virtual void on_read_end(int status) = 0;  // UV_EOF or a libuv error
    virtual void on_write_done(int status) = 0;
    virtual void on_closed() = 0;
    // Outgoing transports only (connect_plain, connect_tls): the connection is ready
    // (status 0: connected, and for TLS the handshake done and the peer verified) or
    // failed (a libuv error; the reason is logged). Always from the loop, never from
    // inside the connect_* call. Nothing but close() is expected after a failure.
    virtual void on_connected(int /*status*/) {}
  };

  virtual ~Transport() = default;
  virtual int start_reading() = 0;
  virtual void stop_reading() = 0;
  virtual int write(const uv_buf_t* bufs, unsigned count) = 0;
  // Half-close after pending writes (TCP FIN); reads continue.
  virtual void shutdown_write() = 0;
  virtual void close() = 0;
  virtual bool secure() const = 0;
  // The peer's address as text ("127.0.0.1"), empty if unknown.
  virtual std::string peer_ip() const = 0;
  // Hands the connection to another owner (HTTP/1.1 -> HTTP/2 after ALPN): every later
  // callback goes to `events`, from the next one on, even within the current callback.
  virtual void set_events(Events& events) = 0;
  // The protocol ALPN selected ("h2", "http/1.1"); empty for plain TCP or none.
  virtual std::string_view alpn() const { return {}; }
};

// The peer address of a connected TCP handle as text ("127.0.0.1", "::1"); empty if
// unknown. Shared by the transports.
std::string peer_ip_of(const uv_tcp_t& tcp);
// The IP of an IPv4 or IPv6 address as text ("10.0.0.2", "::1").
std::string ip_text(const sockaddr* address);

// Accepts a pending connection from `listener` into a new plain TCP transport.
// A transport comes back even when uv_accept fails (the failure is logged); its reads and
// writes then fail, and the owner closes it as usual.
std::unique_ptr<Transport> accept_plain(uv_loop_t* loop, uv_stream_t* listener,
                                        Transport::Events& events);

// Accepts a pending connection from `listener` into a TLS transport (tls_transport.cpp)
// using `context` (non-null; the transport keeps it alive). The handshake starts at once
// and reads run until it completes, whether or not the owner reads; it must finish within
// context->handshake_timeout() (0 = no limit), else the owner gets
// on_read_end(UV_ETIMEDOUT). Writes made before then are encrypted once it completes.
// Beyond the contract above:
// - handshake failures, fatal alerts and TLS errors are logged at info level and reported
//   as on_read_end(error) (plus on_write_done(error) for a write in flight);
// - the peer's close_notify, or a TCP EOF after the handshake, is on_read_end(UV_EOF);
// - shutdown_write() sends close_notify and then the TCP FIN, after pending writes;
// - after close(), no callback but on_closed() is made.
// Like accept_plain, a transport comes back even when accept fails; its start_reading()
// and write() then return the error.
std::unique_ptr<Transport> accept_tls(uv_loop_t* loop, uv_stream_t* listener,
                                      Transport::Events& events,
                                      std::shared_ptr<const ServerContext> context);

// Outgoing connections. Both return a transport at once and report the outcome through
// Events::on_connected(); writes may follow only after on_connected(0).
// - connect_plain: a plain TCP connection to `address`.
// - connect_tls: TCP, then a client TLS handshake using `context` (non-null; kept alive
//   by the transport) for `server_name` (SNI and the name verified, see
//   ClientContext::new_ssl; "" = no SNI and no name check). A failed connect, handshake
//   or verification is on_connected(error), logged with its reason ("upstream
//   10.0.0.2:8443 (api.internal): TLS handshake failed: certificate verify failed: unable
//   to get local issuer certificate"). There is no handshake deadline here: the owner's
//   connect timeout covers it. After on_connected(0) the accept_tls contract applies.
std::unique_ptr<Transport> connect_plain(uv_loop_t* loop, const sockaddr* address,
                                         Transport::Events& events);
std::unique_ptr<Transport> connect_tls(uv_loop_t* loop, const sockaddr* address,
                                       Transport::Events& events,
                                       std::shared_ptr<const ClientContext> context,
                                       const std::string& server_name);

// TLS handshakes of accepted connections since start, over every worker (for /metrics).
// A connection closed before its handshake completed counts as failed.
struct HandshakeCounts {
  std::uint64_t full = 0;
  std::uint64_t resumed = 0;
  std::uint64_t failed = 0;
};
HandshakeCounts server_handshake_counts();

}  // namespace gh::tls
