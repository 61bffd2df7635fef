// Value parsers (durations, sizes, host:port) and Config's small public helpers.
#include <algorithm>
#include <charconv>
#include <limits>
#include <span>

#include "config/loader.hpp"

namespace gh::config::detail {

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

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

}  // namespace gh::config::detail

namespace gh::config {

namespace {

using detail::is_digit;
using detail::is_host_char;
using detail::quoted;
using detail::Unit;

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

bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
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
  auto ms = parse_quantity(text, detail::kDurationUnits, kDurationUnitNames, max);
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

}  // namespace gh::config
