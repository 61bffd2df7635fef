// H1Connection: one HTTP/1.1 client connection and the requests on it, as an explicit
// state machine:
//
//   idle --first byte--> head --valid head, routed--> exchange --both messages done--> idle
//                          |                            |  \--101 Switching Protocols--> tunnel
//                          +--bad head: error response--+--> closing (linger, then close)
//
// What is HTTP/1.1 lives here: parsing request heads and bodies out of the connection's
// buffer, framing responses (Content-Length, chunked, close), keep-alive, pipelining,
// the byte tunnel after a 101, and plain listeners that redirect to HTTPS. Each request
// runs through the connection's Exchange (exchange.hpp), which owns everything upstream.
// A TLS connection that negotiated h2 (or a plain one opening with the HTTP/2 preface on
// an h2c listener) is handed to an H2Connection before its first request.
//
// Requests and responses stream through fixed buffers (no whole bodies held): bytes are
// parsed in place, body pieces are written on as views (one write in flight per
// direction) and a side is read again once its buffer has room. Owned by its Worker;
// freed after the last of its handles closed. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/byte_buffer.hpp"
#include "core/deadline_timer.hpp"
#include "core/http_head.hpp"
#include "core/http_parser.hpp"
#include "core/outbox.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/exchange.hpp"
#include "proxy/rewrite.hpp"
#include "proxy/snapshot.hpp"
#include "tls/transport.hpp"

namespace gh::proxy {

class Worker;

class H1Connection final : public ClientConnection,
                           private tls::Transport::Events,
                           private Exchange::Driver {
 public:
  H1Connection(Worker& worker, SnapshotPtr snapshot);
  ~H1Connection() override;
  H1Connection(const H1Connection&) = delete;
  H1Connection& operator=(const H1Connection&) = delete;

  // Accepts from `listener`; a connection over the worker's limit answers 503.
  void start(uv_stream_t* listener, std::size_t listener_index, bool over_limit);
  void drain() override;  // close when idle; answer the exchange in flight with Connection: close
  void close() override;  // now; idempotent

 private:
  enum class Phase { idle, head, exchange, tunnel, closing };
  struct RequestState;

  // Transport::Events (client side).
  uv_buf_t read_buffer() override;
  void on_read(std::size_t n) override;
  void on_read_end(int status) override;
  void on_write_done(int status) override;
  void on_closed() override;

  // Exchange::Driver.
  void on_request_writable() override;
  void on_response_head(const http::MessageHead& head, const http::MessageInfo& info,
                        const ResponseExtras& extras) override;
  void on_response_body(const char* data, std::size_t length) override;
  bool on_response_batch(bool complete) override;
  void on_exchange_failed(int status, const char* reason) override;
  void on_upstream_finished() override;
  void arm_upstream_timer(std::uint64_t timeout_ms) override {
    timer_.arm(timeout_ms, kUpstreamDeadline);
  }
  void disarm_upstream_timer() override { timer_.disarm(kUpstreamDeadline); }

  // HTTP/2 on this connection: ALPN said h2, or the h2c preface on a listener allowing it.
  enum class Handover { no, yes, wait };
  Handover wants_http2();
  void hand_over_to_http2();

  // Request path.
  RequestState& request_state();  // made on first use
  void process_input();
  void process_head();
  void start_exchange(std::size_t head_length, bool message_complete);
  void pump_request_body();

  // Plain listeners that redirect to HTTPS (and serve ACME http-01 challenges).
  bool redirect_listener() const;
  void answer_redirect_listener();
  void serve_acme_challenge(std::string_view token);
  static void on_acme_open(uv_fs_t* req);
  static void on_acme_read(uv_fs_t* req);
  static void on_acme_closed(uv_fs_t* req);

  // Response path.
  void flush_to_client();
  void pump_tunnel();

  // Endings.
  void maybe_finish_exchange();
  void finish_exchange();
  void fail(int status, const char* reason);
  // A local response made by the connection itself (no exchange could answer: a bad
  // request, the redirect listener); the connection closes after it.
  void respond_local(int status, std::string_view body, std::string_view extra_headers = {});
  void linger_close();
  void update_client_reads();
  void arm_client_timer(config::Duration timeout);
  void arm_idle_timer();
  void trim_memory();
  void on_client_timeout();
  void handle_closed();

  struct RequestBody final : http::BodySink {
    H1Connection* connection = nullptr;
    void on_body(const char* data, std::size_t length) override;
  };

  // What a connection needs while a request is in progress: its parser, the exchange,
  // the response's outbox. An idle keep-alive connection gives it back (trim_memory) and
  // makes a new one on its next request, so it holds little more than its socket and its
  // timer; one allocation, so a burst of connections leaves few holes in the heap.
  struct RequestState {
    RequestState(H1Connection& connection, const ClientContext& client);
    http::HttpParser parser;
    http::MessageInfo request;
    RequestBody body_sink;
    Outbox to_client;
    Exchange exchange;
  };

  const config::Config& config() const { return *snapshot_->config; }

  Worker& worker_;
  SnapshotPtr snapshot_;
  std::size_t listener_index_ = 0;
  std::unique_ptr<tls::Transport> down_;
  // Slot 0: header, body, keep-alive, linger and tunnel idle deadlines; slot 1: the
  // exchange's upstream connect and read deadline.
  static constexpr std::size_t kClientDeadline = 0;
  static constexpr std::size_t kUpstreamDeadline = 1;
  DeadlineTimer timer_;
  int open_handles_ = 0;
  Phase phase_ = Phase::idle;
  std::string client_ip_;
  std::unique_ptr<RequestState> state_;  // while in use; see RequestState

  // Request.
  ByteBuffer in_;
  int request_minor_ = 1;  // HTTP/1.x of the request in flight
  bool checked_protocol_ = false;
  bool client_reading_ = false;
  bool client_eof_ = false;
  bool client_shut_ = false;
  bool client_writing_ = false;
  bool request_complete_ = false;
  bool close_after_response_ = false;
  bool draining_ = false;
  bool trimmed_ = false;  // idle connection gave its memory back

  // Response.
  ClientFraming client_framing_ = ClientFraming::none;
  bool response_started_ = false;   // bytes of a response went to the client
  bool response_complete_ = false;  // the exchange delivered the last piece
  bool holding_views_ = false;      // to_client_ points into the exchange's buffer
  bool upstream_finished_ = false;  // tunnel: the upstream's FIN is due to the client

  // ACME challenge file, read asynchronously (never a blocking file call on the loop).
  // Allocated only while a challenge is read: most connections never serve one.
  struct AcmeRead {
    uv_fs_t req{};
    uv_file file = -1;
    std::string body;
  };
  std::unique_ptr<AcmeRead> acme_;
};

}  // namespace gh::proxy
