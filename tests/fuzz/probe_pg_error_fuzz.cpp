// Fuzz target: summarize_pg_error (health/probe_logic.*), which turns libpq's error text
// (partly the server's words: a PostgreSQL server or anything listening on its port can
// send them) into the one line a failing postgres check reports. libpq itself parses the
// wire protocol; this is the only part of the postgres probe that reads outside bytes.
// Invariants: the summary is one non-empty line; it is either "unknown libpq error", a
// line of the message (trimmed), or "SQLSTATE text" where the message holds
// "SQLSTATE: " and the text.
#include "health/probe_logic.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view message(reinterpret_cast<const char*>(data), size);
  const std::string summary = gh::health::summarize_pg_error(message);
  const std::string where = gh::fuzz::escaped(message) + " -> " + gh::fuzz::escaped(summary);
  GH_FUZZ_CHECK(!summary.empty() && summary.find('\n') == std::string::npos, where);
  if (summary == "unknown libpq error" || message.find(summary) != std::string_view::npos) {
    return 0;
  }
  GH_FUZZ_CHECK(summary.size() >= 6 && summary[5] == ' ', where);
  GH_FUZZ_CHECK(message.find(summary.substr(0, 5) + ": ") != std::string_view::npos, where);
  GH_FUZZ_CHECK(message.find(summary.substr(6)) != std::string_view::npos, where);
  return 0;
}
