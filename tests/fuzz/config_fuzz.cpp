// Fuzz target: the configuration loader (config/config.*) on TOML text from the input,
// plus the value parsers it shares with the tests (durations, sizes, addresses).
// Invariants:
//   - load_string() never throws and never crashes: toml++'s parse errors and every
//     validation problem come back as Diagnostics;
//   - a Config is returned iff there is no error; every error and warning names the file
//     and a position (line and column from 1) and has a message;
//   - a returned Config holds what validation promises: at least one listener, every
//     route's upstream exists, check names are unique, status ranges are ordered;
//   - an address parse_host_port() accepts prints (HostPort::text()) as text it parses
//     back to the same address.
#include <set>
#include <stdexcept>

#include "config/config.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;

constexpr std::string_view kFile = "fuzz.toml";

void check_diagnostics(const std::vector<gh::config::Diagnostic>& list, std::string_view kind) {
  for (const auto& d : list) {
    GH_FUZZ_CHECK(d.file == kFile && d.line >= 1 && d.column >= 1 && !d.message.empty(),
                  std::string(kind) + " without a position: " + escaped(d.text()));
    const std::string prefix =
        std::string(kFile) + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": ";
    GH_FUZZ_CHECK(d.text().starts_with(prefix), escaped(d.text()));
  }
}

void check_config(const gh::config::Config& config) {
  GH_FUZZ_CHECK(!config.listeners.empty(), "a Config without a listener");
  for (const auto& route : config.routes) {
    GH_FUZZ_CHECK(config.find_upstream(route.upstream) != nullptr,
                  "route to a missing upstream " + escaped(route.upstream));
  }
  std::set<std::string> names;
  for (const auto& check : config.checks) {
    GH_FUZZ_CHECK(names.insert(check.name).second, "duplicate check " + escaped(check.name));
    GH_FUZZ_CHECK(check.expect_status_min <= check.expect_status_max, escaped(check.name));
    if (!check.upstream.empty()) {
      GH_FUZZ_CHECK(config.find_upstream(check.upstream) != nullptr, escaped(check.upstream));
    }
  }
}

void check_values(std::string_view text) {
  (void)gh::config::parse_duration(text);
  (void)gh::config::parse_size(text);
  if (auto address = gh::config::parse_host_port(text)) {
    const std::string printed = address->text();
    auto again = gh::config::parse_host_port(printed);
    GH_FUZZ_CHECK(again && *again == *address,
                  escaped(text) + " printed as " + escaped(printed) + " does not parse back");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (size <= 64) check_values(input);
  gh::config::LoadResult result;
  try {
    result = gh::config::load_string(input, kFile);
  } catch (const std::exception& e) {
    GH_FUZZ_CHECK(false, std::string("load_string threw: ") + e.what());
  } catch (...) {
    GH_FUZZ_CHECK(false, "load_string threw a non-std exception");
  }
  GH_FUZZ_CHECK(result.config.has_value() == result.errors.empty(),
                std::to_string(result.errors.size()) + " errors");
  check_diagnostics(result.errors, "error");
  check_diagnostics(result.warnings, "warning");
  if (result.config) check_config(*result.config);
  return 0;
}
