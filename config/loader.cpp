// The Loader's machinery: reporting, typed values, the document's sections in schema
// order and the checks that need the whole file. Sections live in load_*.cpp.
#include "config/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <system_error>

namespace gh::config::detail {

// Where problems that belong to the file as a whole (no listener, no route) are reported.
toml::source_region file_start() {
  return toml::source_region{{1, 1}, {1, 1}, nullptr};
}

namespace {

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

}  // namespace

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

// "example.com" or "*.example.com"; "" (any host) is handled by the caller.
bool valid_host_pattern(std::string_view host) {
  if (host.starts_with("*.")) host.remove_prefix(2);
  return !host.empty() && std::all_of(host.begin(), host.end(), is_host_char);
}

// "Absent" rather than "nothing loaded", so a malformed section does not also count as
// a missing one and produce a second, misleading error.
bool absent_or_empty(const toml::table& root, std::string_view key) {
  const toml::node* node = root.get(key);
  return !node || (node->is_array() && node->as_array()->empty());
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

}  // namespace gh::config::detail

namespace gh::config {

namespace {

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
  return detail::Loader(std::string(source_name)).load(toml);
}

LoadResult load_file(const std::string& path) {
  auto text = read_file(path);
  if (text) return load_string(*text, path);
  LoadResult result;
  result.errors.push_back(Diagnostic{path, 0, 0, "cannot read file: " + text.error().message});
  return result;
}

}  // namespace gh::config
