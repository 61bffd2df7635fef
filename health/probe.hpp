// Probe: one kind of dependency check (tcp, http, redis, postgres) driven on a libuv loop.
//
// start() makes one attempt and reports it through `done` exactly once, always later from
// a loop callback (never from inside start()). One attempt at a time: start() is only
// called again after `done` ran. Every attempt is bounded by the probe's own timeout.
//
// Ownership (the libuv pattern): the owner holds the probe in a unique_ptr and, to get rid
// of it, calls close(on_closed). From then on `done` never runs; the probe closes its
// handles with uv_close, and on_closed runs (asynchronously) after the last close callback.
// Only then may the owner free the probe, e.g. from inside on_closed.
// Loop thread only (the control thread's loop).
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"

namespace gh::health {

struct ProbeResult {
  bool ok = false;
  // Why it failed, in the dependency's own words where it has them:
  // "28P01 password authentication failed for user \"x\"", "timeout after 2000 ms",
  // "connection refused (127.0.0.1:6379)", "HTTP 503", "-LOADING Redis is loading ...".
  // On success a short note ("HTTP 200", "+PONG"), or empty.
  std::string reason;

  static ProbeResult pass(std::string note = {}) { return {true, std::move(note)}; }
  static ProbeResult failure(std::string why) { return {false, std::move(why)}; }
};

class Probe {
 public:
  using Done = std::function<void(ProbeResult)>;

  virtual ~Probe() = default;
  virtual void start(Done done) = 0;
  virtual void close(std::function<void()> on_closed) = 0;
};

using Milliseconds = std::chrono::milliseconds;

// tcp: resolves host (uv_getaddrinfo) on every attempt and connects to each address in
// turn until one accepts. ok on connect.
std::unique_ptr<Probe> make_tcp_probe(uv_loop_t* loop, std::string host, uint16_t port,
                                      Milliseconds timeout);
// tcp to one fixed address (a host of an upstream, already resolved).
std::unique_ptr<Probe> make_tcp_probe(uv_loop_t* loop, const sockaddr_storage& address,
                                      Milliseconds timeout);

struct HttpProbeSpec {
  std::string host_header;  // "app:3000"
  std::string path = "/";
  int status_min = 200;
  int status_max = 399;
  std::string expect_body;  // "" = any body
};

// http: GET spec.path from one address; ok when the status is in range and the first
// 64 KiB of the body contain expect_body.
std::unique_ptr<Probe> make_http_probe(uv_loop_t* loop, const sockaddr_storage& address,
                                       HttpProbeSpec spec, Milliseconds timeout);

// redis: RESP over TCP: AUTH password (when not empty), then PING; ok on +PONG.
std::unique_ptr<Probe> make_redis_probe(uv_loop_t* loop, std::string host, uint16_t port,
                                        std::string password, Milliseconds timeout);

struct PostgresProbeSpec {
  std::string target;    // conninfo "host=db user=app dbname=app" or postgresql:// URL
  std::string password;  // from password_file; used unless the target has one
  std::string query = "SELECT 1";
  bool require_primary = false;
};

// postgres: libpq, non-blocking on the loop (see postgres_probe.cpp). Fails here when the
// target does not parse or names several hosts to resolve (hostaddr lists are fine).
// The same check of the target alone, creating nothing (config load time).
Result<void> check_postgres_target(const std::string& target);
Result<std::unique_ptr<Probe>> make_postgres_probe(uv_loop_t* loop, PostgresProbeSpec spec,
                                                   Milliseconds timeout);

}  // namespace gh::health
