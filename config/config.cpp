// Loads Gatehouse's TOML configuration into the plain structs of config.hpp.
//
// toml++ stays inside this file: its types never appear in the header and its exceptions
// never leave load_string(). The loader walks the document section by section, reporting
// every problem it meets and carrying on, so one run shows the operator all of them.
#include "config/config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <system_error>
#include <tuple>
#include <utility>

// Header-only: no link dependency on (or ABI coupling with) Debian's shared libtomlplusplus.
#ifndef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 1
#endif
#include <toml++/toml.h>

namespace gh::config {

// ---------------------------------------------------------------------------------------
// Value parsers
// ---------------------------------------------------------------------------------------

namespace {

struct Unit {
  std::string_view name;
  uint64_t scale;
};

constexpr Unit kDurationUnits[] = {
    {"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};

// The empty unit makes a bare number a byte count.
constexpr Unit kSizeUnits[] = {{"", 1},
                               {"B", 1},
                               {"KiB", uint64_t{1} << 10},
                               {"MiB", uint64_t{1} << 20},
                               {"GiB", uint64_t{1} << 30},
                               {"KB", 1'000},
                               {"MB", 1'000'000},
                               {"GB", 1'000'000'000}};

constexpr std::string_view kDurationUnitNames = "ms, s, m, h or d";
constexpr std::string_view kSizeUnitNames = "B, KiB, MiB, GiB, KB, MB or GB";

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// "<number><unit>" -> number * scale, checked against `max`. Errors are bare reasons; the
// callers say what kind of value was being parsed.
Result<uint64_t> parse_quantity(std::string_view text, std::span<const Unit> units,
                                std::string_view unit_names, uint64_t max) {
  if (text.empty()) return fail("empty");
  uint64_t number = 0;
  const char* end = text.data() + text.size();
  auto [rest, ec] = std::from_chars(text.data(), end, number);
  if (ec == std::errc::result_out_of_range) return fail("number too large");
  if (ec != std::errc{}) return fail("must start with a number");
  std::string_view unit(rest, static_cast<std::size_t>(end - rest));
  auto match =
      std::find_if(units.begin(), units.end(), [&](const Unit& u) { return u.name == unit; });
  if (match == units.end()) {
    std::string names(unit_names);
    if (unit.empty()) return fail("missing unit (" + names + ")");
    return fail("unknown unit " + quoted(unit) + " (" + names + ")");
  }
  if (number > max / match->scale) return fail("too large");
  return number * match->scale;
}

// ASCII only and locale-independent, unlike <cctype>: host names and IP literals are ASCII.
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_host_char(char c) {
  return is_letter(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}
bool is_ipv6_char(char c) {
  return is_hex_digit(c) || c == ':' || c == '.';
}

Result<uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return fail("missing port");
  bool digits_only = std::all_of(text.begin(), text.end(), is_digit);
  unsigned port = 0;
  auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (!digits_only || ec != std::errc{} || port > 65535) {
    return fail("port " + quoted(text) + " is not a number from 0 to 65535");
  }
  return static_cast<uint16_t>(port);
}

// "[v6]:port"; the brackets are not part of the stored host.
Result<HostPort> parse_bracketed(std::string_view text) {
  std::size_t close = text.find(']');
  if (close == std::string_view::npos) return fail("missing \"]\" after IPv6 address");
  std::string_view host = text.substr(1, close - 1);
  if (host.empty()) return fail("missing host");
  if (host.find(':') == std::string_view::npos ||
      !std::all_of(host.begin(), host.end(), is_ipv6_char)) {
    return fail(quoted(host) + " is not an IPv6 address");
  }
  std::string_view after = text.substr(close + 1);
  if (after.empty()) return fail("missing port");
  if (after.front() != ':') return fail("expected \":\" after \"]\"");
  auto port = parse_port(after.substr(1));
  if (!port) return tl::unexpected(port.error());
  return HostPort{std::string(host), *port};
}

Result<HostPort> parse_plain(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return fail("missing port");
  std::string_view host = text.substr(0, colon);
  if (host.empty()) return fail("missing host");
  if (host.find(':') != std::string_view::npos) {
    return fail("IPv6 addresses need brackets, like \"[::1]:8080\"");
  }
  if (!std::all_of(host.begin(), host.end(), is_host_char)) {
    return fail("invalid character in host " + quoted(host));
  }
  auto port = parse_port(text.substr(colon + 1));
  if (!port) return tl::unexpected(port.error());
  return HostPort{std::string(host), *port};
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  constexpr auto max = static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max());
  auto ms = parse_quantity(text, kDurationUnits, kDurationUnitNames, max);
  if (!ms) return fail("invalid duration " + quoted(text) + ": " + ms.error().message);
  return Duration(static_cast<Duration::rep>(*ms));
}

Result<std::size_t> parse_size(std::string_view text) {
  auto bytes =
      parse_quantity(text, kSizeUnits, kSizeUnitNames, std::numeric_limits<std::size_t>::max());
  if (!bytes) return fail("invalid size " + quoted(text) + ": " + bytes.error().message);
  return static_cast<std::size_t>(*bytes);
}

Result<HostPort> parse_host_port(std::string_view text) {
  Result<HostPort> parsed = fail("empty");
  if (text.find("://") != std::string_view::npos) {
    parsed = fail("must not include a scheme like \"http://\"");
  } else if (text.starts_with('[')) {
    parsed = parse_bracketed(text);
  } else if (!text.empty()) {
    parsed = parse_plain(text);
  }
  if (!parsed) return fail("invalid address " + quoted(text) + ": " + parsed.error().message);
  return parsed;
}

// ---------------------------------------------------------------------------------------
// Small public helpers
// ---------------------------------------------------------------------------------------

std::string HostPort::text() const {
  std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

std::string Diagnostic::text() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

const Upstream* Config::find_upstream(std::string_view name) const {
  auto it = std::find_if(upstreams.begin(), upstreams.end(),
                         [&](const Upstream& u) { return u.name == name; });
  return it == upstreams.end() ? nullptr : &*it;
}

std::string implicit_check_name(std::string_view upstream) {
  return "upstream:" + std::string(upstream);
}

std::vector<Check> checks_to_run(const Config& config) {
  std::vector<Check> checks = config.checks;
  for (const Upstream& upstream : config.upstreams) {
    const bool named = std::any_of(config.checks.begin(), config.checks.end(),
                                   [&](const Check& c) { return c.upstream == upstream.name; });
    if (!upstream.implicit_check || named) continue;
    Check check;
    check.name = implicit_check_name(upstream.name);
    check.type = CheckType::tcp;
    check.upstream = upstream.name;
    check.min_healthy = upstream.min_healthy;
    check.implicit = true;
    checks.push_back(std::move(check));
  }
  return checks;
}

std::string_view default_toml() {
  return R"toml(# Gatehouse built-in configuration: used when no config file is given.
[[listener]]
address = "127.0.0.1:8080"

[admin]
address = "127.0.0.1:9901"

[[upstream]]
name = "app"
servers = ["127.0.0.1:3000"]

[[route]]
path_prefix = "/"
upstream = "app"
)toml";
}

// ---------------------------------------------------------------------------------------
// The loader
// ---------------------------------------------------------------------------------------

namespace {

// Where problems that belong to the file as a whole (no listener, no route) are reported.
toml::source_region file_start() {
  return toml::source_region{{1, 1}, {1, 1}, nullptr};
}

// A table being read and its dotted name, so messages say "server.workers", not "workers".
struct Scope {
  const toml::table& table;
  std::string name;  // "" for the document root

  std::string path(std::string_view key) const {
    return name.empty() ? std::string(key) : name + "." + std::string(key);
  }
};

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

// A typo of a known key ("adress") gets a hint; anything further away does not.
std::string suggestion(std::string_view key, std::initializer_list<std::string_view> known) {
  std::string_view best;
  std::size_t best_distance = 3;
  for (std::string_view candidate : known) {
    std::size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best.empty() ? "" : " (did you mean " + quoted(best) + "?)";
}

std::string to_lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

// RFC 9110 tchar: what a cookie name may contain.
bool is_token_char(char c) {
  return is_letter(c) || is_digit(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A duration in the largest unit that divides it exactly: 90000ms -> "90s", 2h -> "2h".
std::string format_duration(Duration duration) {
  auto ms = static_cast<uint64_t>(duration.count() < 0 ? 0 : duration.count());
  if (ms == 0) return "0s";
  for (auto it = std::rbegin(kDurationUnits); it != std::rend(kDurationUnits); ++it) {
    if (ms % it->scale == 0) return std::to_string(ms / it->scale) + std::string(it->name);
  }
  return std::to_string(ms) + "ms";  // unreachable: the scale of "ms" is 1
}

// "200" or "200-399", each code 100..599, low <= high.
Result<std::pair<int, int>> parse_status_range(std::string_view text) {
  auto code = [](std::string_view part) -> std::optional<int> {
    if (part.size() != 3 || !std::all_of(part.begin(), part.end(), is_digit)) return std::nullopt;
    int value = (part[0] - '0') * 100 + (part[1] - '0') * 10 + (part[2] - '0');
    if (value < 100 || value > 599) return std::nullopt;
    return value;
  };
  std::size_t dash = text.find('-');
  auto low = code(text.substr(0, dash));
  auto high = dash == std::string_view::npos ? low : code(text.substr(dash + 1));
  if (!low || !high) {
    return fail("invalid status " + quoted(text) +
                " (expected a code like \"200\" or a range like \"200-399\", codes 100 to 599)");
  }
  if (*low > *high) {
    return fail("invalid status range " + quoted(text) + ": " + std::to_string(*low) +
                " is above " + std::to_string(*high));
  }
  return std::pair(*low, *high);
}

std::string_view check_type_name(CheckType type) {
  switch (type) {
    case CheckType::postgres:
      return "postgres";
    case CheckType::http:
      return "http";
    case CheckType::tcp:
      return "tcp";
    case CheckType::redis:
      return "redis";
  }
  return "?";
}

// Socket.IO's defaults: the server pings every 25s and gives the client 20s to answer.
constexpr Duration kSocketIoHeartbeat = std::chrono::seconds(45);

// "example.com" or "*.example.com"; "" (any host) is handled by the caller.
bool valid_host_pattern(std::string_view host) {
  if (host.starts_with("*.")) host.remove_prefix(2);
  return !host.empty() && std::all_of(host.begin(), host.end(), is_host_char);
}

template <class E>
using Choices = std::initializer_list<std::pair<std::string_view, E>>;

template <class E>
std::string choice_names(Choices<E> choices) {
  std::string names;
  for (const auto& [name, value] : choices) names += (names.empty() ? "" : ", ") + quoted(name);
  return names;
}

// TOML allows bytes beyond ASCII only inside strings and comments. toml++ 3.3.0 (Debian
// 12) meets some such code points where it expects whitespace with
// __builtin_unreachable() (marzer/tomlplusplus issues 190 and 295; found by
// tests/fuzz/config_fuzz.cpp): refuse them first, at their position. A quote opens a
// string only where one may start (after '=', '[', ',', '{', '.' or at a line's start):
// inside a malformed bare value toml++ reads it as part of the value.
std::optional<toml::source_position> non_ascii_outside_strings(std::string_view text) {
  enum class In { toml, comment, basic, literal, multiline_basic, multiline_literal };
  In in = In::toml;
  char before = '\n';  // the last byte outside strings that was not a space or tab
  toml::source_position at{1, 1};
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::string_view rest = text.substr(i);
    const auto c = static_cast<unsigned char>(text[i]);
    const bool may_open = std::string_view("\n=[,{.").find(before) != std::string_view::npos;
    std::size_t skip = 0;  // further bytes taken with this one
    switch (in) {
      case In::toml:
        if (c >= 0x80) return at;
        if (c == '#') {
          in = In::comment;
        } else if (may_open && rest.starts_with("\"\"\"")) {
          in = In::multiline_basic, skip = 2;
        } else if (may_open && rest.starts_with("'''")) {
          in = In::multiline_literal, skip = 2;
        } else if (may_open && c == '"') {
          in = In::basic;
        } else if (may_open && c == '\'') {
          in = In::literal;
        }
        if (c != ' ' && c != '\t') before = static_cast<char>(c);
        break;
      case In::comment:
        if (c == '\n') in = In::toml, before = '\n';
        break;
      case In::basic:
        if (c == '\\') skip = 1;
        if (c == '"' || c == '\n') in = In::toml, before = static_cast<char>(c);
        break;
      case In::literal:
        if (c == '\'' || c == '\n') in = In::toml, before = static_cast<char>(c);
        break;
      case In::multiline_basic:
        if (c == '\\') skip = 1;
        if (rest.starts_with("\"\"\"")) in = In::toml, before = '"', skip = 2;
        break;
      case In::multiline_literal:
        if (rest.starts_with("'''")) in = In::toml, before = '\'', skip = 2;
        break;
    }
    for (std::size_t k = i; k <= i + skip && k < text.size(); ++k) {
      if (text[k] == '\n') {
        ++at.line, at.column = 1;
      } else if ((static_cast<unsigned char>(text[k]) & 0xC0) != 0x80) {
        ++at.column;  // columns count characters, as toml++'s do
      }
    }
    i += skip;
  }
  return std::nullopt;
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

Diagnostic Loader::diagnostic(const toml::source_region& at, std::string message) const {
  return Diagnostic{file_, at.begin.line, at.begin.column, std::move(message)};
}

void Loader::error(const toml::source_region& at, std::string message) {
  errors_.push_back(diagnostic(at, std::move(message)));
}

void Loader::warning(const toml::source_region& at, std::string message) {
  warnings_.push_back(diagnostic(at, std::move(message)));
}

void Loader::check_keys(const Scope& scope, std::initializer_list<std::string_view> known) {
  for (const auto& [key, node] : scope.table) {
    if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
    error(key.source(),
          "unknown key " + quoted(scope.path(key.str())) + suggestion(key.str(), known));
  }
}

const toml::node* Loader::required(const Scope& scope, std::string_view key) {
  const toml::node* node = scope.table.get(key);
  if (!node) error(scope.table.source(), scope.name + ": missing required key " + quoted(key));
  return node;
}

std::optional<Scope> Loader::table(const Scope& root, std::string_view key) {
  const toml::node* node = root.table.get(key);
  if (!node) return std::nullopt;
  if (const toml::table* t = node->as_table()) return Scope{*t, root.path(key)};
  error(node->source(), root.path(key) + ": expected a table");
  return std::nullopt;
}

std::vector<Scope> Loader::tables(const Scope& root, std::string_view key) {
  std::vector<Scope> found;
  const toml::node* node = root.table.get(key);
  if (!node) return found;
  const toml::array* array = node->as_array();
  if (!array) {
    std::string name(key);
    error(node->source(), name + ": expected an array of tables (write [[" + name + "]])");
    return found;
  }
  for (const toml::node& element : *array) {
    if (const toml::table* t = element.as_table()) {
      found.push_back(Scope{*t, std::string(key)});
    } else {
      error(element.source(), std::string(key) + ": expected a table");
    }
  }
  return found;
}

std::optional<std::string> Loader::string_value(const toml::node& node, const std::string& path) {
  if (const auto* value = node.as_string()) return value->get();
  error(node.source(), path + ": expected a string");
  return std::nullopt;
}

std::optional<bool> Loader::bool_value(const toml::node& node, const std::string& path) {
  if (const auto* value = node.as_boolean()) return value->get();
  error(node.source(), path + ": expected true or false");
  return std::nullopt;
}

std::optional<int64_t> Loader::integer_value(const toml::node& node, const std::string& path,
                                             int64_t min, int64_t max) {
  const auto* value = node.as_integer();
  if (!value) {
    error(node.source(), path + ": expected an integer");
    return std::nullopt;
  }
  int64_t number = value->get();
  if (number >= min && number <= max) return number;
  if (max == std::numeric_limits<int64_t>::max()) {
    error(node.source(), path + ": must be at least " + std::to_string(min));
  } else {
    error(node.source(),
          path + ": must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return std::nullopt;
}

std::optional<HostPort> Loader::address_value(const toml::node& node, const std::string& path) {
  auto text = string_value(node, path);
  if (!text) return std::nullopt;
  auto address = parse_host_port(*text);
  if (address) return *address;
  error(node.source(), path + ": " + address.error().message);
  return std::nullopt;
}

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

const toml::node* Loader::read_duration_at_least(const Scope& scope, std::string_view key,
                                                 Duration min, Duration& out) {
  Duration value = out;
  const toml::node* node = read_duration(scope, key, value);
  if (!node) return nullptr;
  if (value < min) {
    error(node->source(), scope.path(key) + ": must be at least " + format_duration(min));
    return nullptr;
  }
  out = value;
  return node;
}

const toml::node* Loader::read_string(const Scope& scope, std::string_view key, std::string& out) {
  const toml::node* node = scope.table.get(key);
  if (!node) return nullptr;
  auto text = string_value(*node, scope.path(key));
  if (!text) return nullptr;
  out = std::move(*text);
  return node;
}

const toml::node* Loader::read_bool(const Scope& scope, std::string_view key, bool& out) {
  const toml::node* node = scope.table.get(key);
  if (!node) return nullptr;
  auto value = bool_value(*node, scope.path(key));
  if (!value) return nullptr;
  out = *value;
  return node;
}

void Loader::read_required_string(const Scope& scope, std::string_view key, std::string& out) {
  const toml::node* node = required(scope, key);
  if (!node) return;
  auto text = string_value(*node, scope.path(key));
  if (!text) return;
  if (text->empty()) {
    error(node->source(), scope.path(key) + ": must not be empty");
    return;
  }
  out = std::move(*text);
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

LoadResult Loader::load(std::string_view document) {
  try {
    if (auto at = non_ascii_outside_strings(document)) {
      error(toml::source_region{*at, *at, nullptr},
            "a character beyond ASCII outside a string or comment");
    } else {
      toml::table root = toml::parse(document, std::string_view(file_));
      load_root(root);
    }
  } catch (const toml::parse_error& e) {
    error(e.source(), std::string(e.description()));
  }
  auto by_position = [](const Diagnostic& a, const Diagnostic& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  };
  std::stable_sort(errors_.begin(), errors_.end(), by_position);
  std::stable_sort(warnings_.begin(), warnings_.end(), by_position);
  LoadResult result;
  if (errors_.empty()) result.config = std::move(config_);
  result.errors = std::move(errors_);
  result.warnings = std::move(warnings_);
  return result;
}

void Loader::load_root(const toml::table& root) {
  Scope scope{root, ""};
  check_keys(scope, {"server", "limits", "timeouts", "access_log", "listener", "admin", "upstream",
                     "route", "check"});
  if (auto server = table(scope, "server")) load_server(*server);
  if (auto limits = table(scope, "limits")) load_limits(*limits);
  if (auto timeouts = table(scope, "timeouts")) load_timeouts(*timeouts);
  if (auto access_log = table(scope, "access_log")) load_access_log(*access_log);
  for (const Scope& listener : tables(scope, "listener")) load_listener(listener);
  if (auto admin = table(scope, "admin")) load_admin(*admin);
  // Upstreams before routes, whatever the file order, so routes can be checked against them.
  for (const Scope& upstream : tables(scope, "upstream")) load_upstream(upstream);
  for (const Scope& route : tables(scope, "route")) load_route(route);
  for (const Scope& check : tables(scope, "check")) load_check(check);
  require_listener(root);
  default_route(root);
  warn_unused_upstreams();
  check_implicit_names();
}

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

void Loader::load_check(const Scope& scope) {
  check_keys(scope,
             {"name", "type", "target", "upstream", "password_file", "query", "require_primary",
              "path", "expect_status", "expect_body", "interval", "timeout", "jitter",
              "start_period", "rise", "fall", "required", "min_healthy"});
  Check check;
  check.name = check_name(scope);
  const toml::node* interval = read_duration(scope, "interval", check.interval);
  const toml::node* timeout = read_duration(scope, "timeout", check.timeout);
  read_duration(scope, "jitter", check.jitter);
  read_duration(scope, "start_period", check.start_period);
  read_integer(scope, "rise", 1, check.rise);
  read_integer(scope, "fall", 1, check.fall);
  read_bool(scope, "required", check.required);
  // Which other keys are allowed depends on the type; without a valid one, judging them
  // would only add noise to the error about the type.
  if (const toml::node* node = required(scope, "type")) {
    Choices<CheckType> types = {{"postgres", CheckType::postgres},
                                {"http", CheckType::http},
                                {"tcp", CheckType::tcp},
                                {"redis", CheckType::redis}};
    if (auto type = choice_value(*node, scope.path("type"), types)) {
      check.type = *type;
      load_check_type_keys(scope, check);
    }
  }
  check_timing(scope, interval, timeout, check);
  config_.checks.push_back(std::move(check));
}

// The name, unique among checks (it is what /readyz and the logs show); "" when invalid.
std::string Loader::check_name(const Scope& scope) {
  std::string name;
  read_required_string(scope, "name", name);
  if (name.empty()) return "";
  const toml::node* node = scope.table.get("name");
  auto [first, inserted] = check_names_.emplace(name, node->source());
  if (!inserted) {
    error(node->source(), "check: duplicate name " + quoted(name) + " (first defined at line " +
                              std::to_string(first->second.begin.line) + ")");
  }
  return name;
}

void Loader::load_check_type_keys(const Scope& scope, Check& check) {
  using enum CheckType;
  const CheckType type = check.type;
  // Keys that only some types take; the switch below reads only the allowed ones.
  constexpr auto bit = [](CheckType t) { return 1u << static_cast<unsigned>(t); };
  struct Rule {
    std::string_view key;
    unsigned types;  // bit(type) of each type that takes the key
  };
  constexpr Rule kRules[] = {{"target", bit(postgres) | bit(tcp) | bit(redis)},
                             {"upstream", bit(http)},
                             {"password_file", bit(postgres) | bit(redis)},
                             {"query", bit(postgres)},
                             {"require_primary", bit(postgres)},
                             {"path", bit(http)},
                             {"expect_status", bit(http)},
                             {"expect_body", bit(http)},
                             {"min_healthy", bit(http)}};
  for (const auto& [key, node] : scope.table) {
    auto rule = std::find_if(std::begin(kRules), std::end(kRules),
                             [name = key.str()](const Rule& r) { return r.key == name; });
    if (rule == std::end(kRules) || (rule->types & bit(type))) continue;
    std::string allowed;
    for (CheckType t : {postgres, http, tcp, redis}) {
      if (rule->types & bit(t))
        allowed += (allowed.empty() ? "" : ", ") + quoted(check_type_name(t));
    }
    error(key.source(), scope.path(key.str()) + ": not allowed for type " +
                            quoted(check_type_name(type)) + " (only for " + allowed + ")");
  }
  auto needs = [&](std::string_view key) -> const toml::node* {
    const toml::node* node = scope.table.get(key);
    if (!node) {
      error(scope.table.source(), "check: missing required key " + quoted(key) + " for type " +
                                      quoted(check_type_name(type)));
    }
    return node;
  };

  switch (type) {
    case postgres:
      if (const toml::node* node = needs("target")) {
        if (auto target = string_value(*node, scope.path("target"))) {
          if (target->empty()) {
            error(node->source(), scope.path("target") + ": must not be empty");
          } else {
            check.target = *target;
          }
        }
      }
      read_string(scope, "password_file", check.password_file);
      if (const toml::node* node = read_string(scope, "query", check.query)) {
        if (check.query.empty()) error(node->source(), scope.path("query") + ": must not be empty");
      }
      read_bool(scope, "require_primary", check.require_primary);
      break;
    case tcp:
    case redis:
      if (const toml::node* node = needs("target")) {
        if (auto address = address_value(*node, scope.path("target")))
          check.target = address->text();
      }
      if (type == redis) read_string(scope, "password_file", check.password_file);
      break;
    case http:
      if (const toml::node* node = needs("upstream")) {
        if (auto name = string_value(*node, scope.path("upstream"))) {
          if (upstream_names_.contains(*name)) {
            check.upstream = *name;
            check.min_healthy = upstream_min_healthy(*name);
          } else {
            error(node->source(), "check: upstream " + quoted(*name) + " is not defined");
          }
        }
      }
      if (const toml::node* node = scope.table.get("path")) {
        if (auto path = string_value(*node, scope.path("path"))) {
          if (path->starts_with('/')) {
            check.path = *path;
          } else {
            error(node->source(), scope.path("path") + ": must start with \"/\"");
          }
        }
      }
      if (const toml::node* node = scope.table.get("expect_status")) {
        std::string path = scope.path("expect_status");
        if (node->is_integer()) {  // expect_status = 200
          if (auto code = integer_value(*node, path, 100, 599)) {
            check.expect_status_min = check.expect_status_max = static_cast<int>(*code);
          }
        } else if (auto text = string_value(*node, path)) {
          if (auto range = parse_status_range(*text)) {
            std::tie(check.expect_status_min, check.expect_status_max) = *range;
          } else {
            error(node->source(), path + ": " + range.error().message);
          }
        }
      }
      read_string(scope, "expect_body", check.expect_body);
      read_integer(scope, "min_healthy", 1, check.min_healthy);
      break;
  }
}

// A probe still running when the next one is due would pile up on a slow dependency.
void Loader::check_timing(const Scope& scope, const toml::node* interval, const toml::node* timeout,
                          const Check& check) {
  if (check.timeout <= Duration::zero()) {
    error(timeout ? timeout->source() : scope.table.source(),
          scope.path("timeout") + ": must be greater than 0");
  } else if (check.timeout >= check.interval) {
    if (timeout) {
      error(timeout->source(), scope.path("timeout") + ": must be shorter than interval (" +
                                   format_duration(check.interval) + ")");
    } else {
      error(interval ? interval->source() : scope.table.source(),
            scope.path("interval") + ": must be longer than timeout (" +
                format_duration(check.timeout) + ", the default)");
    }
  }
}

// "Absent" rather than "nothing loaded", so a malformed section does not also count as
// a missing one and produce a second, misleading error.
bool absent_or_empty(const toml::table& root, std::string_view key) {
  const toml::node* node = root.get(key);
  return !node || (node->is_array() && node->as_array()->empty());
}

void Loader::require_listener(const toml::table& root) {
  if (!absent_or_empty(root, "listener")) return;
  error(file_start(), "no [[listener]] defined; add one with an address such as \"0.0.0.0:8080\"");
}

// A single-upstream config may leave routing implicit; with more it would be a guess.
void Loader::default_route(const toml::table& root) {
  if (!absent_or_empty(root, "route")) return;
  if (config_.upstreams.size() != 1) {
    error(file_start(),
          "no [[route]] defined; without routes exactly one [[upstream]] is needed, found " +
              std::to_string(config_.upstreams.size()));
    return;
  }
  const std::string& name = config_.upstreams.front().name;
  if (name.empty()) return;  // its missing name is already reported
  warning(file_start(), "no [[route]] defined; sending every request to upstream " + quoted(name));
  upstream_used_.insert(name);
  config_.routes.push_back(Route{"", "/", name});
}

void Loader::warn_unused_upstreams() {
  for (const auto& [name, at] : upstream_names_) {
    if (!upstream_used_.contains(name))
      warning(at, "upstream " + quoted(name) + " is not used by any route");
  }
  // min_healthy counts hosts passing the upstream's checks: without any it is never consulted.
  for (const auto& [name, at] : min_healthy_at_) {
    const Upstream* upstream = config_.find_upstream(name);
    const bool checked =
        std::any_of(config_.checks.begin(), config_.checks.end(),
                    [&upstream = name](const Check& c) { return c.upstream == upstream; });
    if (!checked && upstream && !upstream->implicit_check) {
      warning(at, "upstream " + quoted(name) +
                      ": min_healthy has no effect with implicit_check = false and no http "
                      "[[check]] on this upstream");
    }
  }
}

// An implicit check takes the name "upstream:<name>"; /readyz/<name> must stay unambiguous.
void Loader::check_implicit_names() {
  for (const Check& check : checks_to_run(config_)) {
    if (!check.implicit) continue;
    auto taken = check_names_.find(check.name);
    if (taken == check_names_.end()) continue;
    error(taken->second, "check: name " + quoted(check.name) +
                             " is the implicit check of upstream " + quoted(check.upstream) +
                             "; choose another name, or set implicit_check = false on the "
                             "upstream");
  }
}

// Reads the whole file; errors carry strerror's text (via error_code, which is thread-safe).
Result<std::string> read_file(const std::string& path) {
  struct Closer {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  std::unique_ptr<std::FILE, Closer> file(std::fopen(path.c_str(), "rb"));
  if (!file) return fail(std::error_code(errno, std::generic_category()).message());
  std::string text;
  char buffer[16 * 1024];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, file.get())) text.append(buffer, n);
  if (std::ferror(file.get()))
    return fail(std::error_code(errno, std::generic_category()).message());
  return text;
}

}  // namespace

LoadResult load_string(std::string_view toml, std::string_view source_name) {
  return Loader(std::string(source_name)).load(toml);
}

LoadResult load_file(const std::string& path) {
  auto text = read_file(path);
  if (text) return load_string(*text, path);
  LoadResult result;
  result.errors.push_back(Diagnostic{path, 0, 0, "cannot read file: " + text.error().message});
  return result;
}

}  // namespace gh::config
