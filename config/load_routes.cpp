// [[upstream]] and [[route]].
#include <algorithm>

#include "config/loader.hpp"

namespace gh::config::detail {

void Loader::load_upstream(const Scope& scope) {
  check_keys(scope, {"name", "servers", "balance", "keepalive", "resolve_interval", "panic",
                     "passive_failures", "passive_cooldown", "tls", "tls_verify", "tls_ca_file",
                     "tls_server_name", "min_healthy", "implicit_check"});
  Upstream upstream;
  upstream.name = upstream_name(scope);
  if (const toml::node* node = required(scope, "servers")) {
    load_servers(*node, scope.path("servers"), upstream);
  }
  if (const toml::node* node = scope.table.get("balance")) {
    Choices<Balance> balances = {{"round_robin", Balance::round_robin},
                                 {"least_conn", Balance::least_conn}};
    if (auto balance = choice_value(*node, scope.path("balance"), balances)) {
      upstream.balance = *balance;
    }
  }
  read_integer(scope, "keepalive", 0, upstream.keepalive);
  // Faster would be a DNS query storm for no gain: names change on deploys, not per request.
  read_duration_at_least(scope, "resolve_interval", std::chrono::milliseconds(100),
                         upstream.resolve_interval);
  read_bool(scope, "panic", upstream.panic);
  read_integer(scope, "passive_failures", 0, upstream.passive_failures);
  read_duration(scope, "passive_cooldown", upstream.passive_cooldown);
  read_integer(scope, "min_healthy", 1, upstream.min_healthy);
  if (const toml::node* node = scope.table.get("min_healthy"); node && upstream.min_healthy > 1) {
    min_healthy_at_.emplace(upstream.name, node->source());
  }
  read_bool(scope, "implicit_check", upstream.implicit_check);
  read_bool(scope, "tls", upstream.tls);
  const toml::node* verify = read_bool(scope, "tls_verify", upstream.tls_verify);
  read_string(scope, "tls_ca_file", upstream.tls_ca_file);
  read_string(scope, "tls_server_name", upstream.tls_server_name);
  if (verify && !upstream.tls_verify) {
    warning(verify->source(), scope.path("tls_verify") +
                                  ": false: upstream certificates are not verified (anyone on "
                                  "the path can read and change the traffic)");
  }
  config_.upstreams.push_back(std::move(upstream));
}

// The name, registered so routes can refer to it; "" when missing or invalid.
std::string Loader::upstream_name(const Scope& scope) {
  const toml::node* node = required(scope, "name");
  if (!node) return "";
  auto name = string_value(*node, scope.path("name"));
  if (!name) return "";
  if (name->empty()) {
    error(node->source(), scope.path("name") + ": must not be empty");
    return "";
  }
  auto [first, inserted] = upstream_names_.emplace(*name, node->source());
  if (!inserted) {
    error(node->source(), "upstream: duplicate name " + quoted(*name) + " (first defined at line " +
                              std::to_string(first->second.begin.line) + ")");
  }
  return *name;
}

void Loader::load_servers(const toml::node& node, const std::string& path, Upstream& upstream) {
  const toml::array* servers = node.as_array();
  if (!servers) {
    error(node.source(), path + ": expected an array of strings");
    return;
  }
  if (servers->empty()) error(node.source(), path + ": must list at least one server");
  for (const toml::node& server : *servers) {
    if (auto address = address_value(server, path)) upstream.servers.push_back(*address);
  }
}

void Loader::load_route(const Scope& scope) {
  check_keys(scope, {"host", "path_prefix", "upstream", "sticky", "sticky_cookie", "tunnel_idle"});
  Route route;
  read_route_host(scope, route.host);
  read_path_prefix(scope, route.path_prefix);
  read_route_upstream(scope, route.upstream);
  const toml::node* sticky = scope.table.get("sticky");
  if (sticky) {
    Choices<Sticky> modes = {{"auto", Sticky::automatic},
                             {"none", Sticky::none},
                             {"socketio", Sticky::socketio},
                             {"cookie", Sticky::cookie},
                             {"ip", Sticky::ip}};
    auto mode = choice_value(*sticky, scope.path("sticky"), modes);
    if (mode) route.sticky = *mode;
    if (!mode) sticky = nullptr;
  }
  read_sticky_cookie(scope, route.sticky_cookie);
  const toml::node* tunnel_idle = read_duration(scope, "tunnel_idle", route.tunnel_idle);
  warn_socket_io(route, sticky, tunnel_idle);
  config_.routes.push_back(std::move(route));
}

void Loader::read_route_host(const Scope& scope, std::string& out) {
  const toml::node* node = scope.table.get("host");
  if (!node) return;
  auto host = string_value(*node, scope.path("host"));
  if (!host) return;
  if (!host->empty() && !valid_host_pattern(*host)) {
    error(node->source(), scope.path("host") + ": invalid host pattern " + quoted(*host) +
                              " (expected \"example.com\" or \"*.example.com\")");
    return;
  }
  out = to_lower(*host);  // host names are case-insensitive; store one spelling
}

void Loader::read_path_prefix(const Scope& scope, std::string& out) {
  const toml::node* node = scope.table.get("path_prefix");
  if (!node) return;
  auto prefix = string_value(*node, scope.path("path_prefix"));
  if (!prefix) return;
  if (!prefix->starts_with('/')) {
    error(node->source(), scope.path("path_prefix") + ": must start with \"/\"");
    return;
  }
  out = *prefix;
}

void Loader::read_route_upstream(const Scope& scope, std::string& out) {
  const toml::node* node = required(scope, "upstream");
  if (!node) return;
  auto name = string_value(*node, scope.path("upstream"));
  if (!name) return;
  if (!upstream_names_.contains(*name)) {
    error(node->source(), "route: upstream " + quoted(*name) + " is not defined");
    return;
  }
  upstream_used_.insert(*name);
  out = *name;
}

void Loader::read_sticky_cookie(const Scope& scope, std::string& out) {
  const toml::node* node = scope.table.get("sticky_cookie");
  if (!node) return;
  auto name = string_value(*node, scope.path("sticky_cookie"));
  if (!name) return;
  if (name->empty()) {
    error(node->source(), scope.path("sticky_cookie") + ": must not be empty");
  } else if (!std::all_of(name->begin(), name->end(), is_token_char)) {
    error(node->source(), scope.path("sticky_cookie") + ": invalid cookie name " + quoted(*name) +
                              " (letters, digits and !#$%&'*+-.^_`|~ only)");
  } else {
    out = *name;
  }
}

// Settings that load fine but break Socket.IO in ways that are hard to trace from the
// browser. Only what the route states explicitly is judged: the defaults are safe.
void Loader::warn_socket_io(const Route& route, const toml::node* sticky,
                            const toml::node* tunnel_idle) {
  if (!route.path_prefix.starts_with("/socket.io")) return;
  std::string name = "route " + route.host + route.path_prefix;
  const Upstream* upstream =
      route.upstream.empty() ? nullptr : config_.find_upstream(route.upstream);
  if (sticky && route.sticky == Sticky::none && upstream && upstream->servers.size() > 1) {
    warning(sticky->source(), name + ": sticky = \"none\" with " +
                                  std::to_string(upstream->servers.size()) +
                                  " servers: Socket.IO polling will fail with \"Session ID "
                                  "unknown\"");
  }
  if (tunnel_idle && route.tunnel_idle < kSocketIoHeartbeat) {
    warning(tunnel_idle->source(),
            name + ": tunnel_idle = " + quoted(format_duration(route.tunnel_idle)) +
                " is shorter than Socket.IO's pingInterval+pingTimeout (" +
                format_duration(kSocketIoHeartbeat) + ")");
  }
}

unsigned Loader::upstream_min_healthy(std::string_view name) const {
  for (const Upstream& upstream : config_.upstreams) {
    if (upstream.name == name) return upstream.min_healthy;
  }
  return 1;
}

}  // namespace gh::config::detail
