// H2Connection: one HTTP/2 client connection (TLS with ALPN h2, or h2c with prior
// knowledge), driving an nghttp2 server session and its H2Streams.
//
// nghttp2 is driven only through nghttp2_session_mem_recv / mem_send from this object,
// never from inside one of its own callbacks: callbacks record into the streams, and
// the streams act (start exchanges, submit responses, give window back) once the library
// call returned. Output is gathered from mem_send into one buffer and written with one
// write in flight; mem_send stops while 64 KiB wait, so a peer that does not read leaves
// its PING/SETTINGS acknowledgements queued inside nghttp2, where its flood limit
// applies (reading goes on so that it does; what a stream holds is bounded by windows).
//
// Limits (per connection): 100 concurrent streams, 64 KiB stream window, 1 MiB connection
// window, request heads limited like HTTP/1.1 (limits.header_bytes decoded, not just
// compressed; limits.header_count fields; limits.request_line for :path). Abuse ends in
// GOAWAY: nghttp2's Rapid Reset bucket (Debian's 1.52.0-1+deb12u1), CONTINUATION cap
// (deb12u2), and here: mostly-reset streams (Envoy's rule) and empty DATA frames.
// Owned by its Worker, freed after its last handle closed. Loop thread only.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/byte_buffer.hpp"
#include "core/deadline_timer.hpp"
#include "core/defer_queue.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/exchange.hpp"
#include "tls/transport.hpp"

namespace gh::proxy {

class H2Stream;
class Worker;

class H2Connection final : public ClientConnection,
                           private tls::Transport::Events,
                           private Deferred {
 public:
  H2Connection(Worker& worker, std::size_t listener_index);
  ~H2Connection() override;
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Takes over a transport whose client speaks h2; `received` holds what was already
  // read from it (the client preface, maybe more).
  void start(std::unique_ptr<tls::Transport> transport, std::string_view received);
  void drain() override;  // GOAWAY notice, then the final GOAWAY; streams in flight finish
  void close() override;

  // For its streams.
  Worker& worker() { return worker_; }
  const ClientContext& client() const { return client_; }
  nghttp2_session* session() { return session_; }
  void want_send();  // a send pass from the loop soon (never from inside a caller's stack)
  void schedule_deadline(std::uint64_t at_ms);
  void fail_connection(const char* why);  // GOAWAY(PROTOCOL_ERROR), then close

  // nghttp2 callbacks (h2_connection.cpp), static trampolines use these.
  H2Stream* find_stream(std::int32_t id);
  void begin_stream(std::int32_t id);
  void mark_dirty(std::int32_t id) { dirty_.push_back(id); }
  bool note_empty_data(bool empty);  // false: a flood, stop parsing

 private:
  // Transport::Events
  uv_buf_t read_buffer() override;
  void on_read(std::size_t n) override;
  void on_read_end(int status) override;
  void on_write_done(int status) override;
  void on_closed() override;
  // Deferred
  void run_deferred() override { send(); }

  void feed(const char* data, std::size_t length);
  void fatal(std::uint32_t error_code, const char* why);
  void send();
  void start_write();
  void process_streams();
  void destroy_stream(std::int32_t id);
  void update_reads();
  void maybe_close();
  void on_idle_timeout();
  void on_deadline_timer();
  void handle_closed();

  Worker& worker_;
  std::size_t listener_index_;
  std::unique_ptr<tls::Transport> transport_;
  std::string client_ip_;
  ClientContext client_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, std::unique_ptr<H2Stream>> streams_;
  std::vector<std::int32_t> dirty_;      // streams with something recorded to act on
  std::vector<std::int32_t> advancing_;  // the ones process_streams works through
  DeadlineTimer idle_timer_;             // no streams for timeouts.keepalive; drain steps
  DeadlineTimer deadline_timer_;         // the streams' upstream deadlines
  std::uint64_t next_deadline_ms_ = 0;
  ByteBuffer in_;
  std::string pending_;  // frames from mem_send not written yet
  std::string writing_;  // the write in flight
  int open_handles_ = 0;
  std::uint64_t closed_streams_ = 0;
  std::uint64_t premature_resets_ = 0;
  unsigned empty_data_frames_ = 0;  // in a row
  bool calm_down_ = false;          // abuse seen inside a callback: GOAWAY after it
  bool reading_ = false;
  bool sending_ = false;
  bool dead_ = false;  // no more input is fed to nghttp2
  bool draining_ = false;
  bool final_goaway_ = false;
  bool closing_ = false;
};

}  // namespace gh::proxy
