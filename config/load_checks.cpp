// [[check]]: probes of PostgreSQL, HTTP, TCP and Redis services.
#include <algorithm>

#include "config/loader.hpp"

namespace gh::config::detail {

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

}  // namespace gh::config::detail
