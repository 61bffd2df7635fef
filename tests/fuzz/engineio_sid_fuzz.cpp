// Fuzz target: the Engine.IO sid extraction and the other request-value readers of
// proxy/affinity.* (query parameters, cookies), over bytes a client or upstream controls.
// Invariants:
//   - a sid is a non-empty view into the body, at most 128 bytes, without '"', found
//     after "\"sid\":\"" in an open packet ("0{" after an optional EIO3 length prefix);
//   - more bytes arriving never change a sid already found in the first ones (the proxy
//     looks at the first bytes of a response body), for cut points derived from the input;
//   - query_param() and cookie_value() return views into their input that hold no
//     separator ('&' or '#', ';').
#include "proxy/affinity.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;
using gh::fuzz::within;

void check_sid(std::string_view body) {
  const auto sid = gh::proxy::engineio_sid(body);
  for (const std::size_t cut : gh::fuzz::split_points(body, 3)) {
    const auto early = gh::proxy::engineio_sid(body.substr(0, cut));
    if (early) {
      GH_FUZZ_CHECK(sid && *sid == *early, escaped(body) + ": sid " + escaped(*early) +
                                               " from the first " + std::to_string(cut) +
                                               " bytes, then " + (sid ? escaped(*sid) : "none"));
    }
  }
  if (!sid) return;
  GH_FUZZ_CHECK(!sid->empty() && sid->size() <= 128 && within(*sid, body) &&
                    sid->find('"') == std::string_view::npos,
                escaped(body) + " -> " + escaped(*sid));
  const std::size_t at = static_cast<std::size_t>(sid->data() - body.data());
  GH_FUZZ_CHECK(at >= 7 && body.substr(at - 7, 7) == "\"sid\":\"", escaped(body));
  const std::size_t open = body.find("0{");
  GH_FUZZ_CHECK(open != std::string_view::npos && open < at, escaped(body));
  for (std::size_t i = 0; i + 1 < open; ++i) {  // an EIO3 prefix: digits, then ':'
    GH_FUZZ_CHECK(body[i] >= '0' && body[i] <= '9', escaped(body));
  }
  GH_FUZZ_CHECK(open == 0 || body[open - 1] == ':', escaped(body));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_sid(input);

  // A request target and a Cookie value: the name to look up is the input's first
  // bytes up to '\0' (empty: "sid"), the rest is the text to search.
  const std::size_t nul = input.find('\0');
  const std::string_view name =
      nul == std::string_view::npos || nul == 0 ? std::string_view("sid") : input.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? input : input.substr(nul + 1);
  if (const auto value = gh::proxy::query_param(text, name)) {
    GH_FUZZ_CHECK(within(*value, text) && value->find_first_of("&#") == std::string_view::npos,
                  escaped(text) + " -> " + escaped(*value));
  }
  if (const auto value = gh::proxy::cookie_value(text, name)) {
    GH_FUZZ_CHECK(within(*value, text) && value->find(';') == std::string_view::npos,
                  escaped(text) + " -> " + escaped(*value));
  }
  return 0;
}
