// Fuzz target: the HTTP probe's response reader (health/probe_logic.*: HttpResponseReader,
// used by the http checks and `gatehouse healthcheck`), fed what a server sends.
// Input: one flag byte (the check's expectations), then the server's bytes.
// Invariants:
//   - the verdict, status line and kept body are the same whether the bytes arrive in one
//     read, one byte per read, or in reads cut at derived points (then EOF if no verdict);
//   - the body kept is at most kHttpBodyLimit bytes; a pass has a status in range.
#include "health/probe_logic.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;

struct Seen {
  bool ok = false;
  std::string reason;
  std::string status_line;
  std::string body;
  bool at_eof = false;
  bool operator==(const Seen&) const = default;
};

std::string describe(const Seen& s) {
  return (s.ok ? "pass " : "fail ") + escaped(s.reason) + " line=" + escaped(s.status_line) +
         " body=" + std::to_string(s.body.size()) + (s.at_eof ? " at EOF" : "");
}

Seen read(const gh::health::HttpProbeSpec& spec, const std::vector<std::string_view>& reads) {
  gh::health::HttpResponseReader reader(spec);
  Seen seen;
  std::optional<gh::health::ProbeResult> verdict;
  for (const std::string_view bytes : reads) {
    if ((verdict = reader.feed(bytes))) break;
  }
  if (!verdict) {
    verdict = reader.finish();
    seen.at_eof = true;
  }
  seen.ok = verdict->ok;
  seen.reason = verdict->reason;
  seen.status_line = reader.status_line();
  seen.body = reader.body();
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  gh::health::HttpProbeSpec spec;
  switch (data[0] & 3) {
    case 0:
      spec.status_min = 200, spec.status_max = 399;
      break;
    case 1:
      spec.status_min = spec.status_max = 200;
      break;
    case 2:
      spec.status_min = 100, spec.status_max = 599;
      break;
    default:
      spec.status_min = 200, spec.status_max = 299;
      spec.expect_body = "ok";
      break;
  }
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Seen whole = read(spec, {input});
  GH_FUZZ_CHECK(whole.body.size() <= gh::health::kHttpBodyLimit, describe(whole));
  if (whole.ok) {
    GH_FUZZ_CHECK(whole.status_line.size() >= 12, describe(whole));
    const int status = std::stoi(whole.status_line.substr(9, 3));
    GH_FUZZ_CHECK(status >= spec.status_min && status <= spec.status_max, describe(whole));
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  const Seen bytewise = read(spec, bytes);
  GH_FUZZ_CHECK(whole == bytewise, describe(whole) + " vs byte-wise " + describe(bytewise));
  const Seen split = read(spec, gh::fuzz::pieces(input, gh::fuzz::split_points(input, 3)));
  GH_FUZZ_CHECK(whole == split, describe(whole) + " vs split " + describe(split));
  return 0;
}
