// H2Stream: one HTTP/2 request stream, the HTTP/2 side of one Exchange.
//
// Its H2Connection feeds it from nghttp2's callbacks, where it only records (header
// fields, body bytes, END_STREAM, close); advance() then acts on that outside nghttp2:
// validates the head and starts the exchange, hands body bytes upstream, turns response
// heads into HEADERS and body pieces into DATA (copied by nghttp2's read callback).
//
// Flow control is backpressure, not buffering: a request body's window is given back
// (nghttp2_session_consume) only once the upstream took the bytes, so a stream never
// holds more than one window (64 KiB) of request body; the response is read from the
// exchange's buffer only as nghttp2 sends DATA, so a client that does not read stops the
// upstream read. Loop thread only; owned by its H2Connection, destroyed after nghttp2
// closed the stream (never inside an nghttp2 callback).
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http_head.hpp"
#include "core/recycler.hpp"
#include "proxy/exchange.hpp"

namespace gh::proxy {

class H2Connection;

// Spare stream blocks a worker keeps after a burst (each ~1.7 KiB): a connection's
// worth of concurrent streams.
inline constexpr std::size_t kRecycledStreams = 100;

// The stream window Gatehouse advertises (SETTINGS_INITIAL_WINDOW_SIZE): the most request
// body a stream holds before the upstream took some.
inline constexpr std::size_t kH2StreamWindow = 65535;

class H2Stream final : private Exchange::Driver {
 public:
  H2Stream(H2Connection& connection, std::int32_t id);
  ~H2Stream() override;
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;
  GH_RECYCLED(H2Stream, kRecycledStreams)

  std::int32_t id() const { return id_; }

  // From nghttp2 callbacks: record only. on_header returns 0 or an nghttp2 error code.
  int on_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, bool trailer);
  void on_invalid_header() {
    if (head_error_ == 0) head_error_ = 400;
  }
  void on_headers_end(bool end_stream);
  void on_data(const std::uint8_t* data, std::size_t length);
  void on_request_end();
  void on_peer_reset() { peer_reset_ = true; }
  void on_closed(std::uint32_t error_code);
  void on_end_stream_sent();  // a frame with END_STREAM went into the output
  // nghttp2's DATA source: copies response pieces into `buf`.
  ssize_t read_response(std::uint8_t* buf, std::size_t length, std::uint32_t* flags);

  // Outside nghttp2: act on what was recorded. True once the stream can be destroyed.
  bool advance();
  void abort();  // the connection is closing: drop the exchange now

  // The earliest of its deadlines (0 = none), run by the connection's timer: the
  // exchange's upstream deadline, the client's (header block, body), the response's
  // (a client window that stays shut).
  std::uint64_t deadline_ms() const;
  void on_deadline(std::uint64_t now_ms);

  // For the connection's reset accounting: closed by the peer's RST_STREAM before a
  // response head went out.
  bool premature_reset() const { return peer_reset_ && !response_submitted_; }

 private:
  // Exchange::Driver
  void on_request_writable() override;
  void on_response_head(const http::MessageHead& head, const http::MessageInfo& info,
                        const ResponseExtras& extras) override;
  void on_response_body(const char* data, std::size_t length) override;
  bool on_response_batch(bool complete) override;
  void on_exchange_failed(int status, const char* reason) override;
  void on_upstream_finished() override {}
  void arm_upstream_timer(std::uint64_t timeout_ms) override;
  void disarm_upstream_timer() override { upstream_deadline_ms_ = 0; }

  const config::Timeouts& timeouts() const;
  void arm_client_deadline(config::Duration timeout);
  void arm_send_deadline();
  void on_client_timeout();

  void start_exchange();
  // The request head from the recorded fields, or the status to answer instead.
  int build_request_head();
  void push_request_body();
  void respond_local(int status, std::string_view reason);
  void submit_response(const http::MessageHead& head, const ResponseExtras& extras, bool final,
                       bool has_body);
  void reset(std::uint32_t error_code);
  void release_headers();
  void consume(std::size_t bytes);

  H2Connection& connection_;
  std::int32_t id_;
  std::optional<Exchange> exchange_;

  // Request head: views into nghttp2's reference-counted buffers, held until the
  // exchange has copied what it needs.
  std::vector<nghttp2_rcbuf*> held_;
  std::string_view method_, scheme_, authority_, path_;
  std::vector<http::Header> fields_;
  std::vector<std::string_view> cookies_;
  std::string cookie_;  // crumbs joined with "; " (RFC 9113 §8.2.3)
  http::MessageHead head_;
  http::MessageInfo info_;
  std::size_t header_bytes_ = 0;
  int head_error_ = 0;   // a status to answer once the head is complete (431, ...)
  int head_status_ = 0;  // the head as built: 0, or the status to answer

  // Request body: bytes [0, in_flight_) are being written upstream, the rest waits.
  // Reserved up front within the stream window, so appending never moves them.
  std::string body_;
  std::size_t in_flight_ = 0;
  std::size_t discarded_ = 0;  // received but not forwarded: window still to give back

  // Response.
  std::vector<std::string_view> pieces_;    // views into the exchange's buffer
  std::size_t piece_offset_ = 0;            // copied part of pieces_.front()
  std::string local_body_;                  // a response Gatehouse made itself
  std::uint64_t upstream_deadline_ms_ = 0;  // 0 = none
  std::uint64_t client_deadline_ms_ = 0;
  std::uint64_t send_deadline_ms_ = 0;

  bool headers_done_ = false;
  bool headers_end_stream_ = false;  // END_STREAM on HEADERS: no body at all
  bool head_request_ = false;
  bool body_reserved_ = false;
  bool body_overflow_ = false;  // DATA beyond the window we advertised
  bool body_dropped_ = false;   // body bytes not forwarded: the upstream never gets it whole
  bool reset_sent_ = false;
  bool request_ended_ = false;  // END_STREAM received
  bool request_end_sent_ = false;
  bool started_ = false;
  bool response_submitted_ = false;
  bool response_has_body_ = false;
  bool response_complete_ = false;
  bool data_deferred_ = false;  // the read callback said DEFERRED: resume on new pieces
  bool holding_views_ = false;  // pieces_ came from the exchange: consume when drained
  bool views_drained_ = false;  // ... and nghttp2 copied them all
  bool eof_sent_ = false;
  bool peer_reset_ = false;
  bool closed_ = false;   // nghttp2 closed the stream
  bool aborted_ = false;  // the connection failed or closes: never start or forward
};

}  // namespace gh::proxy
