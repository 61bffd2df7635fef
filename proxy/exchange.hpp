// Exchange: one client request forwarded to an upstream server and its response streamed
// back, whatever protocol the client speaks. It owns the upstream half of the work:
// route, affinity (Socket.IO sid, cookie, ip), a connection from the host's pool or a new
// one (retried on the next server), the rebuilt HTTP/1.1 request, request body pieces,
// the parsed response head and body, passive health, the access log line and metrics.
//
// A Driver runs it: an HTTP/1.1 connection (h1_connection) or an HTTP/2 stream
// (h2_stream). Dependencies point one way: the driver calls the exchange, the exchange
// answers only through the Driver interface below and never sees the client's socket,
// parser or framing.
//
//   driver.start() --> route, affinity, connect --> request head (+ body pieces) upstream
//   upstream bytes --> response head --> body pieces (views) --> driver writes them,
//                      then response_consumed() --> more pieces ... --> finish()
//
// Views handed to the driver point into the exchange's response buffer and stay valid
// until the driver calls response_consumed(); views the driver hands in (request body)
// must stay valid until the next on_request_writable(), or until the exchange ends
// (finish, abort, a failure). Loop thread only. The exchange holds no libuv handle of its
// own (its upstream timer belongs to the driver), so its owner may destroy it whenever no
// call into it is on the stack; an upstream connection still attached is closed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/byte_buffer.hpp"
#include "core/http_head.hpp"
#include "core/http_parser.hpp"
#include "core/outbox.hpp"
#include "proxy/balancer.hpp"
#include "proxy/router.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/stats.hpp"
#include "proxy/upstream.hpp"

namespace gh::proxy {

class Worker;

// Who the client is and where it came in; fixed for a connection.
struct ClientContext {
  std::string_view ip;
  bool secure = false;             // TLS listener: X-Forwarded-Proto https, Secure cookies
  std::size_t listener_index = 0;  // into Config::listeners
};

// What Gatehouse adds to an upstream's response head besides its own fields.
struct ResponseExtras {
  std::string_view affinity_cookie;  // Set-Cookie value ("name=v; Path=/; ..."), or empty
  std::string_view hsts;             // Strict-Transport-Security value, or empty
};

// An answer Gatehouse makes itself instead of an upstream's: errors (404 no route, 502,
// 503, 504), and what policies answer (redirects, 401, 403, 429, error pages).
struct LocalResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";    // "" sends none
  std::vector<std::pair<std::string, std::string>> headers;  // Location, Retry-After, ...
  std::string body;

  // `status` with `text` and a newline as its plain-text body.
  static LocalResponse plain(int status, std::string_view text);
};

class Exchange final : private UpstreamConn::Client {
 public:
  class Driver {
   public:
    virtual ~Driver() = default;
    // The upstream connection can take (more) request body: it just connected, or the
    // last body write completed and the views given for it are no longer used.
    virtual void on_request_writable() = 0;
    // A response head: final, interim (1xx) or 101 (then the exchange is a tunnel).
    virtual void on_response_head(const http::MessageHead& head, const http::MessageInfo& info,
                                  const ResponseExtras& extras) = 0;
    // A piece of the response body (or of tunnel bytes), valid until response_consumed().
    virtual void on_response_body(const char* data, std::size_t length) = 0;
    // End of a batch (pieces, or an interim head); `complete`: the response ended with
    // it. Returns true when the driver keeps the batch's views and will call
    // response_consumed() later (never from inside this call); false: done with them.
    virtual bool on_response_batch(bool complete) = 0;
    // The exchange failed: answer `status` if no response byte went out yet, else cut
    // the response short. The upstream connection is already released.
    virtual void on_exchange_failed(int status, const char* reason) = 0;
    // Tunnels: the upstream sent FIN and every byte before it was consumed.
    virtual void on_upstream_finished() = 0;
    // The upstream deadline (connect, then read); on expiry call on_upstream_timeout().
    virtual void arm_upstream_timer(std::uint64_t timeout_ms) = 0;
    virtual void disarm_upstream_timer() = 0;
  };

  Exchange(Worker& worker, Driver& driver, const ClientContext& client);
  ~Exchange() override;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Starts a request under the worker's current snapshot. `head` and `info` are read
  // only during the call. `request_complete`: no body follows. Failures (no route, 413,
  // no server) come back through Driver::on_exchange_failed, possibly before it returns.
  void start(const http::MessageHead& head, const http::MessageInfo& info, ClientProtocol protocol,
             bool request_complete);

  // Request body, as views valid until the next on_request_writable(). Chunked requests
  // are re-chunked here; in a tunnel the bytes pass as they are. flush_request_body()
  // writes what was added (only while request_writable()).
  bool request_writable() const { return upstream_connected_ && !upstream_writing_; }
  void add_request_body(const char* data, std::size_t length);
  void end_request_body();
  void flush_request_body();
  std::uint64_t request_body_bytes() const { return request_body_bytes_; }

  // Answers the request with `response` instead of an upstream's, at any point before a
  // response head went to the client (from a policy after start() matched a route, or
  // from start() itself). It goes through the same Driver calls as an upstream response
  // (on_response_head, the body as one piece, on_response_batch(true)), so HTTP/1.1 and
  // HTTP/2 frame it alike, the access log and the route's counters count it, and a HEAD
  // request gets the head only. An upstream connection still attached is closed; a
  // request body not read yet is not wanted (HTTP/1.1 closes after the answer).
  void respond(LocalResponse response);

  // The driver is done with the pieces of the last batch.
  void response_consumed();
  void on_upstream_timeout();

  // The response was delivered: log it, learn a Socket.IO sid, pool the connection if
  // both messages ended cleanly.
  void finish();
  // Drop the exchange now (client gone, stream reset): the upstream connection closes.
  void abort();
  // A request Gatehouse answers itself (redirect listeners): begin() names it for the
  // log; log_local_response() then counts and logs any answer made without an upstream
  // (errors too) and ends the exchange, closing an upstream connection still attached.
  void begin(const http::MessageHead& head, ClientProtocol protocol);
  void log_local_response(int status, std::uint64_t body_bytes);

  // Tunnels (after a 101).
  bool upstream_idle() const { return !upstream_writing_ && to_upstream_.empty(); }
  void shutdown_upstream_write();

  bool active() const { return active_; }
  bool upstream_writing() const { return upstream_writing_; }
  const config::Route* route() const;
  bool head_request() const { return head_request_; }

 private:
  // UpstreamConn::Client
  uv_buf_t upstream_read_buffer() override;
  void on_upstream_connected(int status) override;
  void on_upstream_read(std::size_t n) override;
  void on_upstream_read_end(int status) override;
  void on_upstream_write_done(int status) override;

  void choose_affinity(const http::MessageHead& head);
  void learn_session_id();
  void connect_upstream();
  void upstream_connect_failed(const char* why);
  void release_upstream(bool reusable);
  void record_passive_health(HostState& host, bool ok);
  void process_response();
  bool process_response_head();
  void pump_response_body();
  void pump_tunnel_to_client(bool head_pending = false);
  void deliver_tunnel_end();
  void update_upstream_reads();
  void fail(int status, const char* reason);
  void write_access_log();
  const config::Config& config() const { return *snapshot_->config; }

  struct ResponseBody final : http::BodySink {
    Exchange* exchange = nullptr;
    void on_body(const char* data, std::size_t length) override;
  };

  Worker& worker_;
  Driver& driver_;
  ClientContext client_;
  SnapshotPtr snapshot_;
  bool active_ = false;
  bool failed_ = false;  // on_exchange_failed was said: nothing more for the driver
  bool tunnel_ = false;
  ClientProtocol protocol_ = ClientProtocol::http1_1;

  // Request.
  Router::Target route_{};
  StatusClasses* route_counters_ = nullptr;  // the matched route's; null before a match
  health::HostSetPtr host_set_;
  std::string host_;
  bool head_request_ = false;
  bool upgrade_requested_ = false;
  bool chunked_request_ = false;
  bool request_complete_ = false;
  bool request_body_pumped_ = false;  // body bytes left: no retry elsewhere
  std::uint64_t request_body_bytes_ = 0;
  std::uint64_t declared_body_bytes_ = 0;  // Content-Length sent upstream
  std::string upstream_head_;              // rebuilt request head, kept for a retry
  Outbox to_upstream_;

  // Upstream connection.
  UpstreamConn* upstream_ = nullptr;
  std::size_t host_index_ = kNoHost;
  std::uint64_t tried_hosts_ = 0;
  bool upstream_connected_ = false;
  bool upstream_writing_ = false;
  bool upstream_eof_ = false;
  bool upstream_shut_ = false;
  bool upstream_responded_ = false;   // any response byte
  bool upstream_fresh_only_ = false;  // a reused connection failed: open a new one
  std::string upstream_label_;        // host of the exchange, for logs and affinity

  // Affinity (routes with sticky set).
  std::size_t pinned_host_ = kNoHost;
  bool learn_sid_ = false;            // an Engine.IO handshake: learn its sid
  bool set_affinity_cookie_ = false;  // cookie mode without a valid cookie yet
  std::string sid_capture_;           // first bytes of a handshake response body
  std::string extra_cookie_;          // Set-Cookie value while the head is delivered

  // Response.
  ByteBuffer out_;
  http::HttpParser response_parser_;
  http::MessageInfo response_;
  ResponseBody response_body_;
  bool response_head_done_ = false;
  bool response_complete_ = false;
  bool driver_holds_views_ = false;  // a batch was delivered and not yet consumed
  bool interim_sent_ = false;        // a 1xx head went to the driver
  // A local answer being delivered: the views handed to the driver point into it.
  std::unique_ptr<LocalResponse> local_;

  // Access log.
  std::string log_request_;  // "GET /path HTTP/1.1"
  int log_status_ = 0;
  std::uint64_t log_bytes_ = 0;
  std::uint64_t start_ms_ = 0;
};

// Refused before routing: CONNECT (405), a declared body over limits.body (413).
struct Refusal {
  int status;
  const char* reason;
};
std::optional<Refusal> refuse_before_routing(const http::MessageHead& head,
                                             const http::MessageInfo& info,
                                             const config::Config& config);

// The Strict-Transport-Security value a listener adds, or "" (plain listener, no hsts).
std::string hsts_value(const config::Config& config, std::size_t listener_index, bool secure);

}  // namespace gh::proxy
