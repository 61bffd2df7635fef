// Gatehouse configuration: plain, immutable structs parsed from TOML and validated.
//
// load_file()/load_string() collect every problem as a Diagnostic with file:line:col
// (unknown keys, wrong types, bad durations/sizes/addresses, routes naming missing
// upstreams) instead of stopping at the first. A Config is only returned when there are
// no errors; warnings never block loading. This is the only module that includes toml++.
// Thread: any; the result is frozen and shared read-only between threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace gh::config {

using Duration = std::chrono::milliseconds;

// A host (name, IPv4 or bracketed IPv6 literal) and port, as written: "app:3000",
// "127.0.0.1:8080", "[::1]:8443". Names are resolved later, never here.
struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string text() const;  // "host:port" ("[v6]:port")
  bool operator==(const HostPort&) const = default;
};

struct ServerSettings {
  unsigned workers = 0;  // 0 = one per core ("auto")
  Duration drain_timeout = std::chrono::seconds(30);
  unsigned max_connections = 10000;  // per worker, downstream
  // A new TLS session ticket key this often; tickets under the previous key still resume
  // (and are renewed) for one more period.
  Duration ticket_key_rotation = std::chrono::hours(12);
};

struct Limits {
  std::size_t request_line = 8 * 1024;   // bytes -> 414 beyond
  std::size_t header_bytes = 32 * 1024;  // whole head -> 431 beyond
  std::size_t header_count = 100;        // fields -> 431 beyond
  std::size_t body = 1024 * 1024;        // request body -> 413 beyond; 0 = unlimited
  std::size_t chunk_extension = 1024;    // bytes per chunk-size line -> 400 beyond
};

struct Timeouts {
  Duration request_header = std::chrono::seconds(10);      // whole head deadline -> 408
  Duration client_body = std::chrono::seconds(60);         // idle while reading a body -> 408
  Duration keepalive = std::chrono::seconds(60);           // idle client between requests
  Duration upstream_connect = std::chrono::seconds(5);     // -> 502 / next server
  Duration upstream_read = std::chrono::seconds(60);       // idle waiting on upstream -> 504
  Duration upstream_keepalive = std::chrono::seconds(60);  // idle pooled connection
};

// TLS termination on a listener. The first certificate is the default; others are
// chosen by SNI against the names in each certificate (SAN DNS entries, wildcards too).
struct TlsCertificate {
  std::string cert_file;  // PEM, leaf first then the chain ("fullchain.pem")
  std::string key_file;   // PEM private key (RSA or ECDSA)
};

enum class TlsVersion { tls1_2, tls1_3 };

struct ListenerTls {
  std::vector<TlsCertificate> certificates;  // at least one
  TlsVersion min_version = TlsVersion::tls1_2;
  std::string ciphers;  // TLS 1.2 list; "" = Mozilla intermediate
  Duration handshake_timeout = std::chrono::seconds(10);
  std::optional<Duration> hsts_max_age;  // set = send Strict-Transport-Security
  std::string ocsp_file;                 // DER OCSP response to staple; "" = off
  bool http2 = true;                     // ALPN offers h2 (preferred) and http/1.1
};

struct Listener {
  HostPort address;
  std::optional<ListenerTls> tls;
  // Plain listeners only: answer every request with 301 to https://host/path, except
  // /.well-known/acme-challenge/ which is served from acme_webroot when set.
  bool redirect_to_https = false;
  std::string acme_webroot;
  // Plain listeners only: a connection opening with the HTTP/2 preface speaks h2c (prior
  // knowledge), for use behind another TLS terminator. No Upgrade: h2c.
  bool h2c = false;
};

struct Admin {
  std::optional<HostPort> address;  // unset = no admin listener
};

enum class Balance { round_robin, least_conn };

struct Upstream {
  std::string name;
  std::vector<HostPort> servers;
  Balance balance = Balance::round_robin;
  // Idle pooled connections per server and worker: the pool keeps as many as recent
  // demand used (a decaying peak of concurrent exchanges), at most this many.
  std::size_t keepalive = 1024;
  // Names are re-resolved this often; every address is a host of its own.
  Duration resolve_interval = std::chrono::seconds(5);
  // All hosts failing their checks: true = send to all anyway, false = 503.
  bool panic = false;
  // Passive health: this many consecutive connect failures/502s take a host out until
  // its next passing check (or, without checks, for `passive_cooldown`).
  unsigned passive_failures = 3;
  Duration passive_cooldown = std::chrono::seconds(10);
  // /readyz needs at least this many hosts passing the group's upstream checks (its http
  // checks, or the implicit tcp check).
  unsigned min_healthy = 1;
  // No [[check]] names this upstream: an implicit tcp connect check of every host counts
  // for /readyz (see implicit_checks). Readiness only: it takes no host out of rotation.
  bool implicit_check = true;
  // TLS to the servers. tls_verify checks the chain (against tls_ca_file, a PEM bundle,
  // or the system store when "") and the name: tls_server_name, or when "" the host part
  // of each server (an IP literal is verified as an IP and sends no SNI).
  bool tls = false;
  bool tls_verify = true;
  std::string tls_ca_file;
  std::string tls_server_name;
};

// Session affinity for a route. automatic = socketio for a path_prefix under
// /socket.io/ when the upstream has more than one server, else none.
enum class Sticky { automatic, none, socketio, cookie, ip };

struct Route {
  std::string host;  // "" = any host; "example.com" exact; "*.example.com" suffix
  std::string path_prefix = "/";
  std::string upstream;  // name of an Upstream; validated to exist
  Sticky sticky = Sticky::automatic;
  std::string sticky_cookie = "gh_affinity";     // cookie mode
  Duration tunnel_idle = std::chrono::hours(1);  // WebSocket tunnels idle this long close
};

// A dependency probed by the control thread; required checks make up /readyz.
enum class CheckType { postgres, http, tcp, redis };

struct Check {
  std::string name;  // unique
  CheckType type = CheckType::tcp;
  // postgres: conninfo or postgresql:// URL; tcp/redis: "host:port"; http: unused.
  std::string target;
  // http: probe every host of this upstream (and take failing ones out of rotation).
  // Also set on implicit tcp checks, which probe every host but only for readiness.
  std::string upstream;
  std::string password_file;       // postgres/redis: password read from this file
  std::string query = "SELECT 1";  // postgres
  bool require_primary = false;    // postgres: pg_is_in_recovery() must be false
  std::string path = "/";          // http
  int expect_status_min = 200;     // http: "200-399" or "200"
  int expect_status_max = 399;
  std::string expect_body;   // http: substring the body must contain
  unsigned min_healthy = 1;  // http: passing hosts the check needs (default: the upstream's)
  Duration interval = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(2);
  Duration jitter = std::chrono::milliseconds(0);
  Duration start_period = std::chrono::seconds(0);  // failures before it don't count
  unsigned rise = 2;                                // consecutive passes to become healthy
  unsigned fall = 3;                                // consecutive failures to become unhealthy
  bool required = true;                             // part of /readyz
  bool implicit = false;  // made by implicit_checks(), not written in the config
};

enum class AccessLogFormat { off, text, json };

struct Config {
  std::string source;  // file path, or "<default>" for the embedded config
  ServerSettings server;
  Limits limits;
  Timeouts timeouts;
  std::vector<Listener> listeners;
  Admin admin;
  std::vector<Upstream> upstreams;
  std::vector<Route> routes;
  std::vector<Check> checks;
  AccessLogFormat access_log = AccessLogFormat::text;

  const Upstream* find_upstream(std::string_view name) const;
};

// The name of an upstream's implicit check: "upstream:app".
std::string implicit_check_name(std::string_view upstream);

// The checks to run: config.checks, then one implicit check per upstream that has
// implicit_check = true and no [[check]] naming it: type tcp, that upstream, named by
// implicit_check_name(), min_healthy the upstream's, every other setting the [[check]]
// defaults (interval 5s, timeout 2s, rise 2, fall 3).
std::vector<Check> checks_to_run(const Config& config);

struct Diagnostic {
  std::string file;
  unsigned line = 0;  // 1-based; 0 when the problem has no position
  unsigned column = 0;
  std::string message;
  std::string text() const;  // "file:line:col: message"
};

struct LoadResult {
  std::optional<Config> config;  // set iff errors is empty
  std::vector<Diagnostic> errors;
  std::vector<Diagnostic> warnings;
};

LoadResult load_file(const std::string& path);
LoadResult load_string(std::string_view toml, std::string_view source_name);

// The embedded default: listen 127.0.0.1:8080, everything to 127.0.0.1:3000,
// admin on 127.0.0.1:9901.
std::string_view default_toml();

// Value parsers shared by the loader and tests. Durations: "250ms", "30s", "5m", "1h",
// "2d" (one integer and a unit). Sizes: "512", "16KiB", "1MiB", "1GiB" (also KB/MB/GB
// as powers of 1000). Addresses: "host:port", "[v6]:port", port 0..65535.
Result<Duration> parse_duration(std::string_view text);
Result<std::size_t> parse_size(std::string_view text);
Result<HostPort> parse_host_port(std::string_view text);

}  // namespace gh::config
