// Private to config/: the Loader that walks a TOML document into the plain structs of
// config.hpp, and the text helpers its sections share. One .cpp per group of sections:
//   loader.cpp          reporting, typed values, document order, whole-file checks
//   values.cpp          durations, sizes, addresses; Config's small public helpers
//   load_server.cpp     [server] [limits] [timeouts] [access_log] [[listener]] [admin]
//   load_routes.cpp     [[upstream]] [[route]]
//   load_checks.cpp     [[check]]
// toml++ never leaks past this header into config.hpp, and its exceptions never leave
// load_string(). The loader reports every problem it meets and carries on, so one run
// shows the operator all of them.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

// Header-only: no link dependency on (or ABI coupling with) Debian's shared libtomlplusplus.
#ifndef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 1
#endif
#include <toml++/toml.h>

namespace gh::config::detail {

struct Unit {
  std::string_view name;
  uint64_t scale;
};

inline constexpr Unit kDurationUnits[] = {
    {"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};

// Socket.IO's defaults: the server pings every 25s and gives the client 20s to answer.
inline constexpr Duration kSocketIoHeartbeat = std::chrono::seconds(45);

std::string quoted(std::string_view text);
// ASCII only and locale-independent, unlike <cctype>: host names and IP literals are ASCII.
bool is_digit(char c);
bool is_letter(char c);
bool is_host_char(char c);
// RFC 9110 tchar: what a cookie name may contain.
bool is_token_char(char c);
std::string to_lower(std::string text);
// A duration in the largest unit that divides it exactly: 90000ms -> "90s", 2h -> "2h".
std::string format_duration(Duration duration);
// "200" or "200-399", each code 100..599, low <= high.
Result<std::pair<int, int>> parse_status_range(std::string_view text);
std::string_view check_type_name(CheckType type);
// "example.com" or "*.example.com"; "" (any host) is handled by the caller.
bool valid_host_pattern(std::string_view host);

// Where problems that belong to the file as a whole (no listener, no route) are reported.
toml::source_region file_start();
// "Absent" rather than "nothing loaded", so a malformed section does not also count as
// a missing one and produce a second, misleading error.
bool absent_or_empty(const toml::table& root, std::string_view key);
// The first byte beyond ASCII outside a string or comment (see loader.cpp).
std::optional<toml::source_position> non_ascii_outside_strings(std::string_view text);

// A table being read and its dotted name, so messages say "server.workers", not "workers".
struct Scope {
  const toml::table& table;
  std::string name;  // "" for the document root

  std::string path(std::string_view key) const {
    return name.empty() ? std::string(key) : name + "." + std::string(key);
  }
};

template <class E>
using Choices = std::initializer_list<std::pair<std::string_view, E>>;

template <class E>
std::string choice_names(Choices<E> choices) {
  std::string names;
  for (const auto& [name, value] : choices) names += (names.empty() ? "" : ", ") + quoted(name);
  return names;
}

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) { config_.source = file_; }

  LoadResult load(std::string_view document);

 private:
  // Reporting.
  Diagnostic diagnostic(const toml::source_region& at, std::string message) const;
  void error(const toml::source_region& at, std::string message);
  void warning(const toml::source_region& at, std::string message);

  // Document structure.
  void check_keys(const Scope& scope, std::initializer_list<std::string_view> known);
  const toml::node* required(const Scope& scope, std::string_view key);
  std::optional<Scope> table(const Scope& root, std::string_view key);
  std::vector<Scope> tables(const Scope& root, std::string_view key);

  // Typed values: nullopt once the problem has been reported.
  std::optional<std::string> string_value(const toml::node& node, const std::string& path);
  std::optional<bool> bool_value(const toml::node& node, const std::string& path);
  std::optional<int64_t> integer_value(const toml::node& node, const std::string& path, int64_t min,
                                       int64_t max);
  std::optional<HostPort> address_value(const toml::node& node, const std::string& path);
  template <class E>
  std::optional<E> choice_value(const toml::node& node, const std::string& path,
                                Choices<E> choices);

  // Optional fields: `out` keeps its default when the key is absent or invalid. Those
  // returning a node return it only when `out` was set from it (for later positions).
  template <class T>
  const toml::node* read_parsed(const Scope& scope, std::string_view key,
                                Result<T> (*parse)(std::string_view), T& out);
  const toml::node* read_duration(const Scope& scope, std::string_view key, Duration& out) {
    return read_parsed(scope, key, parse_duration, out);
  }
  const toml::node* read_duration_at_least(const Scope& scope, std::string_view key, Duration min,
                                           Duration& out);
  const toml::node* read_string(const Scope& scope, std::string_view key, std::string& out);
  const toml::node* read_bool(const Scope& scope, std::string_view key, bool& out);
  // A required string that must not be empty.
  void read_required_string(const Scope& scope, std::string_view key, std::string& out);
  void read_size(const Scope& scope, std::string_view key, std::size_t& out) {
    read_parsed(scope, key, parse_size, out);
  }
  template <class T>
  void read_integer(const Scope& scope, std::string_view key, int64_t min, T& out);

  // Sections, in document order of the schema.
  void load_root(const toml::table& root);
  void load_server(const Scope& server);
  void read_workers(const Scope& server);
  void load_limits(const Scope& limits);
  void load_timeouts(const Scope& timeouts);
  void load_access_log(const Scope& access_log);
  void load_listener(const Scope& listener);
  ListenerTls load_tls(const Scope& tls);
  void load_certificates(const toml::node& node, const std::string& path,
                         std::vector<TlsCertificate>& out);
  void load_admin(const Scope& admin);
  void load_upstream(const Scope& upstream);
  std::string upstream_name(const Scope& upstream);
  void load_servers(const toml::node& node, const std::string& path, Upstream& upstream);
  void load_route(const Scope& route);
  void read_route_host(const Scope& route, std::string& out);
  void read_path_prefix(const Scope& route, std::string& out);
  void read_route_upstream(const Scope& route, std::string& out);
  void read_sticky_cookie(const Scope& route, std::string& out);
  void warn_socket_io(const Route& route, const toml::node* sticky, const toml::node* tunnel_idle);
  void load_check(const Scope& check);
  std::string check_name(const Scope& check);
  void load_check_type_keys(const Scope& scope, Check& check);
  void check_timing(const Scope& scope, const toml::node* interval, const toml::node* timeout,
                    const Check& check);
  void claim_address(const HostPort& address, const toml::node& at, const std::string& path);
  void require_listener(const toml::table& root);
  void default_route(const toml::table& root);
  void warn_unused_upstreams();
  void check_implicit_names();
  unsigned upstream_min_healthy(std::string_view name) const;

  std::string file_;
  Config config_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
  std::map<std::string, toml::source_region, std::less<>> upstream_names_;
  std::set<std::string, std::less<>> upstream_used_;
  std::map<std::string, toml::source_region> min_healthy_at_;
  std::map<std::string, toml::source_region> bound_addresses_;
  std::map<std::string, toml::source_region, std::less<>> check_names_;
};

template <class E>
std::optional<E> Loader::choice_value(const toml::node& node, const std::string& path,
                                      Choices<E> choices) {
  auto text = string_value(node, path);
  if (!text) return std::nullopt;
  for (const auto& [name, value] : choices) {
    if (name == *text) return value;
  }
  error(node.source(),
        path + ": unknown value " + quoted(*text) + " (expected " + choice_names(choices) + ")");
  return std::nullopt;
}

template <class T>
const toml::node* Loader::read_parsed(const Scope& scope, std::string_view key,
                                      Result<T> (*parse)(std::string_view), T& out) {
  const toml::node* node = scope.table.get(key);
  if (!node) return nullptr;
  auto text = string_value(*node, scope.path(key));
  if (!text) return nullptr;
  auto value = parse(*text);
  if (!value) {
    error(node->source(), scope.path(key) + ": " + value.error().message);
    return nullptr;
  }
  out = *value;
  return node;
}

template <class T>
void Loader::read_integer(const Scope& scope, std::string_view key, int64_t min, T& out) {
  const toml::node* node = scope.table.get(key);
  if (!node) return;
  // Both bounds are far inside int64_t for every T used here (unsigned, size_t on LP64).
  constexpr auto max = static_cast<int64_t>(
      std::min<uint64_t>(std::numeric_limits<T>::max(), std::numeric_limits<int64_t>::max()));
  if (auto number = integer_value(*node, scope.path(key), min, max)) out = static_cast<T>(*number);
}

}  // namespace gh::config::detail
