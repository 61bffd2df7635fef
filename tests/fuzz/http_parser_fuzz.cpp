// Fuzz target: HttpParser (core/http_parser.*), the message parser of client requests and
// upstream responses, used as the proxy uses it: scan_head(), execute() with exactly the
// head, then execute() with the rest as it arrives, finish() at EOF.
//
// Input: one flag byte, then the bytes of a message (and whatever follows it).
//   flag bit 0: 0 = request, 1 = response; bit 1: response to HEAD (expect_no_body()).
// Invariants:
//   - the outcome, the bytes consumed and the body delivered are the same whether the
//     bytes after the head come in one piece, one byte at a time, or in derived pieces;
//   - need_more consumed all it was given; message_complete consumed no more than given;
//   - body accounting, where analyze_request()/analyze_response() accept the head:
//     Content-Length n delivers exactly the n bytes after the head and ends there; no body
//     ends at the head; a close-delimited body is everything after the head and
//     finish() completes it; a chunked body delivers no more bytes than it consumed.
#include <string>

#include "core/http_parser.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;
using gh::http::HeadKind;
using gh::http::HeadScan;
using gh::http::HttpParser;

struct Collect final : gh::http::BodySink {
  std::string bytes;
  void on_body(const char* data, std::size_t length) override { bytes.append(data, length); }
};

struct Result {
  HeadScan::State head = HeadScan::State::incomplete;
  std::size_t head_length = 0;
  HttpParser::Outcome outcome = HttpParser::Outcome::need_more;
  std::size_t consumed = 0;  // message bytes, head included
  bool finished = false;     // finish() after all input (need_more only)
  std::string body;
  std::string error;
  bool operator==(const Result&) const = default;
};

std::string describe(const Result& r) {
  const char* outcome = r.outcome == HttpParser::Outcome::message_complete ? "complete"
                        : r.outcome == HttpParser::Outcome::error          ? "error"
                                                                           : "need_more";
  return "head=" + std::to_string(static_cast<int>(r.head)) + "/" + std::to_string(r.head_length) +
         " " + outcome + " consumed=" + std::to_string(r.consumed) +
         " body=" + std::to_string(r.body.size()) + " finished=" + std::to_string(r.finished) +
         " " + r.error;
}

// The message in `message`, its body bytes cut at `cuts` (offsets into the body).
Result run(HttpParser& parser, HeadKind kind, bool head_response, std::string_view message,
           const std::vector<std::size_t>& cuts) {
  Result r;
  parser.begin_message();
  if (kind == HeadKind::response && head_response) parser.expect_no_body();
  const HeadScan scan = parser.scan_head(message, gh::http::HeadLimits{});
  r.head = scan.state;
  if (scan.state != HeadScan::State::complete) return r;
  r.head_length = scan.length;
  Collect sink;
  HttpParser::Step step = parser.execute(message.data(), scan.length, &sink);
  GH_FUZZ_CHECK(step.consumed <= scan.length, describe(r));
  r.outcome = step.outcome;
  r.consumed = step.consumed;
  GH_FUZZ_CHECK(step.outcome == HttpParser::Outcome::error || parser.head_complete(), describe(r));
  if (step.outcome == HttpParser::Outcome::need_more) {
    GH_FUZZ_CHECK(step.consumed == scan.length, describe(r));
    const std::string_view rest = message.substr(scan.length);
    for (const std::string_view piece : gh::fuzz::pieces(rest, cuts)) {
      step = parser.execute(piece.data(), piece.size(), &sink);
      r.outcome = step.outcome;
      GH_FUZZ_CHECK(step.consumed <= piece.size(), describe(r));
      if (step.outcome == HttpParser::Outcome::error) break;
      r.consumed += step.consumed;
      if (step.outcome == HttpParser::Outcome::message_complete) break;
      GH_FUZZ_CHECK(step.consumed == piece.size(), "need_more left bytes: " + describe(r));
    }
    if (r.outcome == HttpParser::Outcome::need_more) r.finished = parser.finish();
  }
  if (r.outcome == HttpParser::Outcome::error) {
    r.consumed = 0;  // error steps report 0
    r.error = parser.error_reason();
    GH_FUZZ_CHECK(!r.error.empty(), describe(r));
  } else {
    GH_FUZZ_CHECK(parser.message_complete() ==
                      (r.outcome == HttpParser::Outcome::message_complete || r.finished),
                  describe(r));
  }
  r.body = std::move(sink.bytes);
  return r;
}

std::vector<std::size_t> every_byte(std::size_t size) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < size; ++i) cuts.push_back(i);
  return cuts;
}

void check_accounting(const HttpParser& parser, HeadKind kind, bool head_response,
                      std::string_view message, const Result& r) {
  if (r.outcome == HttpParser::Outcome::error) return;
  const auto& head = parser.head();
  gh::http::MessageInfo info;
  gh::http::HeadError error;
  const bool ok =
      kind == HeadKind::request
          ? gh::http::analyze_request(head, info, error)
          : gh::http::analyze_response(head, head_response ? "HEAD" : "GET", info, error);
  // CONNECT: what follows the head is tunnel data (the proxy does not use the body framing).
  if (!ok || (kind == HeadKind::request && head.method == "CONNECT")) return;
  const std::string_view after = message.substr(r.head_length);
  using gh::http::BodyFraming;
  const std::string where = escaped(message) + ": " + describe(r);
  switch (info.framing) {
    case BodyFraming::none:
      GH_FUZZ_CHECK(r.outcome == HttpParser::Outcome::message_complete && r.body.empty() &&
                        r.consumed == r.head_length,
                    where);
      break;
    case BodyFraming::content_length:
      if (info.content_length <= after.size()) {
        GH_FUZZ_CHECK(r.outcome == HttpParser::Outcome::message_complete &&
                          r.consumed == r.head_length + info.content_length &&
                          r.body == after.substr(0, info.content_length),
                      where);
      } else {
        GH_FUZZ_CHECK(r.outcome == HttpParser::Outcome::need_more && r.body == after &&
                          r.consumed == message.size() && !r.finished,
                      where);
      }
      break;
    case BodyFraming::until_close:
      GH_FUZZ_CHECK(r.outcome == HttpParser::Outcome::need_more && r.body == after && r.finished,
                    where);
      break;
    case BodyFraming::chunked:
      GH_FUZZ_CHECK(r.body.size() <= r.consumed - r.head_length, where);
      GH_FUZZ_CHECK(r.outcome != HttpParser::Outcome::need_more || !r.finished, where);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const HeadKind kind = (data[0] & 1) ? HeadKind::response : HeadKind::request;
  const bool head_response = (data[0] & 2) != 0;
  const std::string_view message(reinterpret_cast<const char*>(data) + 1, size - 1);

  HttpParser parser(kind, 64);
  const Result whole = run(parser, kind, head_response, message, {});
  if (whole.head != HeadScan::State::complete) return 0;
  check_accounting(parser, kind, head_response, message, whole);

  const std::string_view rest = message.substr(whole.head_length);
  // The same parser object again: begin_message() must leave nothing of the last message.
  const Result bytewise = run(parser, kind, head_response, message, every_byte(rest.size()));
  GH_FUZZ_CHECK(whole == bytewise, describe(whole) + " vs byte-wise " + describe(bytewise));
  HttpParser fresh(kind, 64);
  const Result split = run(fresh, kind, head_response, message, gh::fuzz::split_points(rest, 3));
  GH_FUZZ_CHECK(whole == split, describe(whole) + " vs split " + describe(split));
  return 0;
}
