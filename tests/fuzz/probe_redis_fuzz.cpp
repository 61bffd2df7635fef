// Fuzz target: the Redis probe's RESP reader (health/probe_logic.*: parse_resp_reply and
// the reply loop of RedisProbe::on_data in health/stream_probes.cpp, mirrored here).
// Invariants:
//   - a complete reply consumed no more than the input and parses the same from exactly
//     its own bytes; every shorter prefix of it is incomplete, never invalid;
//   - an incomplete input stays incomplete for its prefixes;
//   - the probe's verdict (after [AUTH,] PING) is the same whether the server's bytes
//     arrive in one read, one byte per read, or in reads cut at derived points.
#include <optional>

#include "health/probe_logic.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;
using gh::health::RespParse;

std::string describe(const RespParse& p) {
  const char* state = p.state == RespParse::State::complete  ? "complete"
                      : p.state == RespParse::State::invalid ? "invalid"
                                                             : "incomplete";
  return std::string(state) + " consumed=" + std::to_string(p.consumed) + " " +
         escaped(p.reply.line());
}

bool same(const RespParse& a, const RespParse& b) {
  return a.state == b.state && a.consumed == b.consumed && a.reply.type == b.reply.type &&
         a.reply.text == b.reply.text && a.reply.null == b.reply.null;
}

// RedisProbe::on_data over a sequence of reads: the first verdict, if any.
std::optional<gh::health::ProbeResult> probe(const std::vector<std::string_view>& reads,
                                             bool sent_auth) {
  std::string received;
  std::vector<gh::health::RespReply> replies;
  const std::size_t expected = sent_auth ? 2 : 1;
  for (const std::string_view read : reads) {
    received.append(read);
    bool waiting = false;
    while (replies.size() < expected) {
      RespParse parsed = gh::health::parse_resp_reply(received);
      if (parsed.state == RespParse::State::invalid) {
        return gh::health::ProbeResult::failure("invalid RESP reply from the server");
      }
      if (parsed.state == RespParse::State::incomplete) {
        waiting = true;
        break;
      }
      GH_FUZZ_CHECK(parsed.consumed > 0 && parsed.consumed <= received.size(), describe(parsed));
      replies.push_back(std::move(parsed.reply));
      received.erase(0, parsed.consumed);
    }
    if (!waiting) return gh::health::redis_verdict(replies, sent_auth);
  }
  return std::nullopt;
}

std::string describe(const std::optional<gh::health::ProbeResult>& r) {
  if (!r) return "no verdict";
  return (r->ok ? "pass " : "fail ") + escaped(r->reason);
}

bool same(const std::optional<gh::health::ProbeResult>& a,
          const std::optional<gh::health::ProbeResult>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->ok == b->ok && a->reason == b->reason);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const RespParse whole = gh::health::parse_resp_reply(input);
  const auto cuts = gh::fuzz::split_points(input, 4);
  switch (whole.state) {
    case RespParse::State::complete: {
      GH_FUZZ_CHECK(whole.consumed > 0 && whole.consumed <= size, describe(whole));
      const RespParse exact = gh::health::parse_resp_reply(input.substr(0, whole.consumed));
      GH_FUZZ_CHECK(same(whole, exact), describe(whole) + " vs exact " + describe(exact));
      for (const std::size_t cut : cuts) {
        if (cut >= whole.consumed) break;
        const RespParse prefix = gh::health::parse_resp_reply(input.substr(0, cut));
        GH_FUZZ_CHECK(
            prefix.state == RespParse::State::incomplete,
            std::to_string(cut) + " bytes of " + describe(whole) + ": " + describe(prefix));
      }
      break;
    }
    case RespParse::State::incomplete:
      for (const std::size_t cut : cuts) {
        const RespParse prefix = gh::health::parse_resp_reply(input.substr(0, cut));
        GH_FUZZ_CHECK(prefix.state == RespParse::State::incomplete, describe(prefix));
      }
      break;
    case RespParse::State::invalid:
      break;
  }

  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < size; ++i) bytes.push_back(input.substr(i, 1));
  for (const bool sent_auth : {false, true}) {
    const auto one = probe({input}, sent_auth);
    const auto bytewise = probe(bytes, sent_auth);
    GH_FUZZ_CHECK(same(one, bytewise), describe(one) + " vs byte-wise " + describe(bytewise));
    const auto split = probe(gh::fuzz::pieces(input, cuts), sent_auth);
    GH_FUZZ_CHECK(same(one, split), describe(one) + " vs split " + describe(split));
  }
  return 0;
}
