// [server], [limits], [timeouts], [access_log], [[listener]] (with [listener.tls]) and
// [admin].
#include <algorithm>

#include "config/loader.hpp"

namespace gh::config::detail {

void Loader::load_server(const Scope& server) {
  check_keys(server, {"workers", "drain_timeout", "max_connections", "ticket_key_rotation"});
  read_workers(server);
  read_duration(server, "drain_timeout", config_.server.drain_timeout);
  read_integer(server, "max_connections", 1, config_.server.max_connections);
  read_duration_at_least(server, "ticket_key_rotation", std::chrono::seconds(1),
                         config_.server.ticket_key_rotation);
}

void Loader::read_workers(const Scope& server) {
  const toml::node* node = server.table.get("workers");
  if (!node) return;
  std::string path = server.path("workers");
  if (node->is_integer()) {
    if (auto workers = integer_value(*node, path, 1, 256)) {
      config_.server.workers = static_cast<unsigned>(*workers);
    }
  } else if (node->is_string() && node->as_string()->get() == "auto") {
    config_.server.workers = 0;
  } else {
    error(node->source(), path + ": expected \"auto\" or an integer");
  }
}

void Loader::load_limits(const Scope& limits) {
  check_keys(limits, {"request_line", "header_bytes", "header_count", "body", "chunk_extension"});
  read_size(limits, "request_line", config_.limits.request_line);
  read_size(limits, "header_bytes", config_.limits.header_bytes);
  read_integer(limits, "header_count", 1, config_.limits.header_count);
  read_size(limits, "body", config_.limits.body);
  read_size(limits, "chunk_extension", config_.limits.chunk_extension);
}

void Loader::load_timeouts(const Scope& timeouts) {
  check_keys(timeouts, {"request_header", "client_body", "keepalive", "upstream_connect",
                        "upstream_read", "upstream_keepalive"});
  Timeouts& t = config_.timeouts;
  read_duration(timeouts, "request_header", t.request_header);
  read_duration(timeouts, "client_body", t.client_body);
  read_duration(timeouts, "keepalive", t.keepalive);
  read_duration(timeouts, "upstream_connect", t.upstream_connect);
  read_duration(timeouts, "upstream_read", t.upstream_read);
  read_duration(timeouts, "upstream_keepalive", t.upstream_keepalive);
}

void Loader::load_access_log(const Scope& access_log) {
  check_keys(access_log, {"format"});
  const toml::node* node = access_log.table.get("format");
  if (!node) return;
  Choices<AccessLogFormat> formats = {{"text", AccessLogFormat::text},
                                      {"json", AccessLogFormat::json},
                                      {"off", AccessLogFormat::off}};
  if (auto format = choice_value(*node, access_log.path("format"), formats)) {
    config_.access_log = *format;
  }
}

void Loader::load_listener(const Scope& listener) {
  check_keys(listener, {"address", "tls", "redirect_to_https", "acme_webroot", "h2c"});
  Listener loaded;
  bool has_address = false;
  if (const toml::node* node = required(listener, "address")) {
    std::string path = listener.path("address");
    if (auto address = address_value(*node, path)) {
      claim_address(*address, *node, path);
      loaded.address = *address;
      has_address = true;
    }
  }
  if (auto tls = table(listener, "tls")) loaded.tls = load_tls(*tls);
  const toml::node* redirect = read_bool(listener, "redirect_to_https", loaded.redirect_to_https);
  // Presence, not a successful load: a broken [listener.tls] still makes this an HTTPS one.
  if (redirect && loaded.redirect_to_https && listener.table.contains("tls")) {
    error(redirect->source(), listener.path("redirect_to_https") +
                                  ": not allowed on a listener with [listener.tls] (redirect from "
                                  "a plain listener, such as port 80)");
  }
  const toml::node* webroot = read_string(listener, "acme_webroot", loaded.acme_webroot);
  if (webroot && !loaded.acme_webroot.empty() && !loaded.redirect_to_https) {
    warning(webroot->source(),
            listener.path("acme_webroot") + ": ignored without redirect_to_https = true");
  }
  const toml::node* h2c = read_bool(listener, "h2c", loaded.h2c);
  if (h2c && loaded.h2c && listener.table.contains("tls")) {
    error(h2c->source(), listener.path("h2c") +
                             ": only for plain listeners (TLS listeners offer h2 through ALPN: "
                             "[listener.tls] http2)");
  }
  if (has_address) config_.listeners.push_back(std::move(loaded));
}

ListenerTls Loader::load_tls(const Scope& scope) {
  check_keys(scope, {"certificates", "min_version", "ciphers", "handshake_timeout", "hsts",
                     "ocsp_file", "http2"});
  ListenerTls tls;
  if (const toml::node* node = required(scope, "certificates")) {
    load_certificates(*node, scope.path("certificates"), tls.certificates);
  }
  if (const toml::node* node = scope.table.get("min_version")) {
    Choices<TlsVersion> versions = {{"1.2", TlsVersion::tls1_2}, {"1.3", TlsVersion::tls1_3}};
    if (node->is_floating_point()) {
      // min_version = 1.2 is a TOML float, and 1.20 would be the same float.
      error(node->source(), scope.path("min_version") + ": expected a string (" +
                                choice_names(versions) + "), not a number");
    } else if (auto version = choice_value(*node, scope.path("min_version"), versions)) {
      tls.min_version = *version;
    }
  }
  read_string(scope, "ciphers", tls.ciphers);
  read_duration(scope, "handshake_timeout", tls.handshake_timeout);
  Duration hsts{};
  if (read_duration(scope, "hsts", hsts)) tls.hsts_max_age = hsts;
  read_string(scope, "ocsp_file", tls.ocsp_file);
  read_bool(scope, "http2", tls.http2);
  return tls;
}

// Inline tables ([ { cert = "...", key = "..." } ]) or [[listener.tls.certificates]].
void Loader::load_certificates(const toml::node& node, const std::string& path,
                               std::vector<TlsCertificate>& out) {
  const toml::array* certificates = node.as_array();
  if (!certificates) {
    error(node.source(), path + ": expected an array like [ { cert = \"...\", key = \"...\" } ]");
    return;
  }
  if (certificates->empty()) error(node.source(), path + ": must list at least one certificate");
  for (const toml::node& element : *certificates) {
    const toml::table* table = element.as_table();
    if (!table) {
      error(element.source(), path + ": expected a table like { cert = \"...\", key = \"...\" }");
      continue;
    }
    Scope scope{*table, path};
    check_keys(scope, {"cert", "key"});
    TlsCertificate certificate;
    read_required_string(scope, "cert", certificate.cert_file);
    read_required_string(scope, "key", certificate.key_file);
    out.push_back(std::move(certificate));
  }
}

void Loader::load_admin(const Scope& admin) {
  check_keys(admin, {"address"});
  const toml::node* node = admin.table.get("address");
  if (!node) return;
  std::string path = admin.path("address");
  if (auto address = address_value(*node, path)) {
    claim_address(*address, *node, path);
    config_.admin.address = *address;
  }
}

// Two sockets on one address would either fail at bind or, with SO_REUSEPORT, silently
// share traffic between the proxy and the admin API; catch it here instead.
void Loader::claim_address(const HostPort& address, const toml::node& at, const std::string& path) {
  if (address.port == 0) return;  // ephemeral ports never clash
  auto [it, inserted] = bound_addresses_.emplace(address.text(), at.source());
  if (inserted) return;
  error(at.source(), path + ": address " + quoted(address.text()) + " is already used at line " +
                         std::to_string(it->second.begin.line));
}

}  // namespace gh::config::detail
