// Transport: the byte stream under a downstream connection. Plain TCP today; TLS (an
// SSL object over memory BIOs on the same TCP handle) plugs in behind the same
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
#include <memory>
#include <string>

namespace gh::tls {

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
};

// Accepts a pending connection from `listener` into a new plain TCP transport.
// Returns nullptr (connection refused by the kernel side) on failure.
std::unique_ptr<Transport> accept_plain(uv_loop_t* loop, uv_stream_t* listener,
                                        Transport::Events& events);

}  // namespace gh::tls
