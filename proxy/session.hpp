// Session: one downstream (client) connection and the exchanges on it, as an explicit
// state machine:
//
//   idle --first byte--> head --valid head, routed--> exchange --both messages done--> idle
//                          |                            |  \--101 Switching Protocols--> tunnel
//                          +--bad head: error response--+--> closing (linger, then close)
//
// Requests and responses stream through fixed buffers (no whole bodies held): bytes
// are parsed in place, body pieces are written on as views (one write in flight per
// direction) and a side is read again once its buffer has room. Every failure goes
// through fail(): an error response if none was started, else a plain close.
// Owned by its Worker; freed after the last of its handles closed. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/byte_buffer.hpp"
#include "core/deadline_timer.hpp"
#include "core/http_head.hpp"
#include "core/http_parser.hpp"
#include "core/outbox.hpp"
#include "proxy/affinity.hpp"
#include "proxy/balancer.hpp"
#include "proxy/rewrite.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/stats.hpp"
#include "proxy/upstream.hpp"
#include "tls/transport.hpp"

namespace gh::proxy {

class Worker;

class Session final : private tls::Transport::Events, private UpstreamConn::Client {
 public:
  Session(Worker& worker, SnapshotPtr snapshot);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Accepts from `listener`; a session over the worker's connection limit answers 503.
  void start(uv_stream_t* listener, std::size_t listener_index, bool over_limit);
  void drain();  // close when idle; answer the exchange in flight with Connection: close
  void close();  // now; idempotent

 private:
  enum class Phase { idle, head, exchange, tunnel, closing };

  // Transport::Events (client side).
  uv_buf_t read_buffer() override;
  void on_read(std::size_t n) override;
  void on_read_end(int status) override;
  void on_write_done(int status) override;
  void on_closed() override;

  // UpstreamConn::Client (upstream side).
  uv_buf_t upstream_read_buffer() override;
  void on_upstream_connected(int status) override;
  void on_upstream_read(std::size_t n) override;
  void on_upstream_read_end(int status) override;
  void on_upstream_write_done(int status) override;

  // Request path.
  void process_input();
  void process_head();
  void start_exchange(std::size_t head_length, bool message_complete);
  void pump_request_body();
  void flush_to_upstream();
  void send_head_and_body();

  // Plain listeners that redirect to HTTPS (and serve ACME http-01 challenges).
  bool answer_redirect_listener();
  void serve_acme_challenge(std::string_view token);
  static void on_acme_open(uv_fs_t* req);
  static void on_acme_read(uv_fs_t* req);
  static void on_acme_closed(uv_fs_t* req);

  // Upstream selection.
  void choose_affinity();
  void learn_session_id();
  void connect_upstream();
  void upstream_connect_failed(const char* why);
  void release_upstream(bool reusable);
  void record_passive_health(HostState& host, bool ok);

  // Response path.
  void process_response();
  bool process_response_head();
  void pump_response_body();
  void append_hsts(std::string& headers, const http::MessageHead* upstream_head) const;
  void flush_to_client();
  void start_tunnel();
  void pump_tunnel();

  // Endings.
  void maybe_finish_exchange();
  void finish_exchange();
  void fail(int status, const char* reason);
  void respond_local(int status, std::string_view body, std::string_view extra_headers = {});
  void linger_close();
  void update_client_reads();
  void update_upstream_reads();
  void arm_client_timer(config::Duration timeout);
  void arm_idle_timer();
  void trim_memory();
  void arm_upstream_timer(config::Duration timeout);
  void on_client_timeout();
  void on_upstream_timeout();
  void write_access_log();
  void handle_closed();

  struct RequestBody final : http::BodySink {
    Session* session = nullptr;
    void on_body(const char* data, std::size_t length) override;
  };
  struct ResponseBody final : http::BodySink {
    Session* session = nullptr;
    void on_body(const char* data, std::size_t length) override;
  };

  const config::Config& config() const { return *snapshot_->config; }

  Worker& worker_;
  SnapshotPtr snapshot_;
  std::size_t listener_index_ = 0;
  std::unique_ptr<tls::Transport> down_;
  DeadlineTimer client_timer_;    // header, body, keep-alive, linger and tunnel idle
  DeadlineTimer upstream_timer_;  // connect and read
  int open_handles_ = 0;
  Phase phase_ = Phase::idle;

  // Client side.
  ByteBuffer in_;
  http::HttpParser request_parser_;
  http::MessageInfo request_;
  Outbox to_upstream_;
  RequestBody request_body_;
  bool client_reading_ = false;
  bool client_eof_ = false;
  bool client_shut_ = false;
  bool client_writing_ = false;
  bool request_complete_ = false;
  bool close_after_response_ = false;
  bool draining_ = false;
  bool trimmed_ = false;  // idle connection gave its memory back
  std::uint64_t request_body_bytes_ = 0;
  std::string client_ip_;
  std::string host_;

  // Upstream side.
  UpstreamConn* upstream_ = nullptr;
  Router::Target route_{};
  StatusClasses* route_counters_ = nullptr;  // the matched route's; null before a match
  health::HostSetPtr host_set_;
  std::size_t host_index_ = kNoHost;
  std::uint64_t tried_hosts_ = 0;
  bool upstream_connected_ = false;
  bool upstream_writing_ = false;
  bool upstream_eof_ = false;
  bool upstream_shut_ = false;
  bool request_body_pumped_ = false;  // body bytes left: no retry elsewhere
  std::string upstream_head_;         // rebuilt request head, kept for a retry
  bool upstream_responded_ = false;   // any response byte
  bool upstream_fresh_only_ = false;  // a reused connection failed: open a new one
  std::string upstream_label_;        // host of the exchange, for logs and affinity

  // Affinity (routes with sticky set).
  std::size_t pinned_host_ = kNoHost;  // host the session/cookie/address maps to
  bool learn_sid_ = false;             // an Engine.IO handshake: learn its sid
  bool set_affinity_cookie_ = false;   // cookie mode without a valid cookie yet
  std::string sid_capture_;            // first bytes of a handshake response body

  // Response.
  ByteBuffer out_;
  http::HttpParser response_parser_;
  http::MessageInfo response_;
  Outbox to_client_;
  ResponseBody response_body_;
  ClientFraming client_framing_ = ClientFraming::none;
  bool response_head_done_ = false;
  bool response_started_ = false;  // bytes of a response went to the client
  bool response_complete_ = false;

  // ACME challenge file, read asynchronously (never a blocking file call on the loop).
  // Allocated only while a challenge is read: most sessions never serve one.
  struct AcmeRead {
    uv_fs_t req{};
    uv_file file = -1;
    std::string body;
  };
  std::unique_ptr<AcmeRead> acme_;

  // Access log.
  std::string log_request_;  // "GET /path HTTP/1.1"
  int log_status_ = 0;
  std::uint64_t log_bytes_ = 0;
  std::uint64_t exchange_start_ms_ = 0;
};

}  // namespace gh::proxy
