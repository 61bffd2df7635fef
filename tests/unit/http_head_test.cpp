// Tests for core/http_head: table-driven, one table per function. Each scan_head case is
// also replayed on every prefix and through HeadScanner in pieces, because a head that
// arrives split must give the same verdict as one that arrives whole.
#include "core/http_head.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace gh::http {
namespace {

using namespace std::literals;
using State = HeadScan::State;

constexpr HeadLimits kSmall{.request_line = 32, .header_bytes = 96, .header_count = 3};

// ---------------------------------------------------------------------------------------
// scan_head

struct ScanCase {
  const char* name;
  std::string_view input;
  HeadKind kind = HeadKind::request;
  State state = State::complete;
  std::size_t length = 0;  // complete: expected head length
  int status = 0;          // invalid: expected status
  HeadLimits limits = {};
};

void PrintTo(const ScanCase& c, std::ostream* os) {
  *os << c.name;
}

// Names for failure messages (gtest would print the enums as raw bytes).
std::string_view name_of(State state) {
  constexpr std::string_view kNames[] = {"incomplete", "complete", "invalid"};
  return kNames[static_cast<int>(state)];
}

std::string_view name_of(BodyFraming framing) {
  constexpr std::string_view kNames[] = {"none", "content_length", "chunked", "until_close"};
  return kNames[static_cast<int>(framing)];
}

ScanCase valid(const char* name, std::string_view head, HeadKind kind = HeadKind::request,
               HeadLimits limits = {}) {
  return {name, head, kind, State::complete, head.size(), 0, limits};
}

// A complete head followed by body bytes that must not be scanned.
ScanCase valid_then_body(const char* name, std::string_view head, std::string_view data) {
  return {name, data, HeadKind::request, State::complete, head.size(), 0, {}};
}

ScanCase incomplete(const char* name, std::string_view data, HeadKind kind = HeadKind::request,
                    HeadLimits limits = {}) {
  return {name, data, kind, State::incomplete, 0, 0, limits};
}

ScanCase invalid(const char* name, std::string_view data, int status,
                 HeadKind kind = HeadKind::request, HeadLimits limits = {}) {
  return {name, data, kind, State::invalid, 0, status, limits};
}

constexpr auto kResponse = HeadKind::response;

const ScanCase kScanCases[] = {
    // Valid requests.
    valid("simple_get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"sv),
    valid("http10_no_headers", "GET / HTTP/1.0\r\n\r\n"sv),
    valid("several_fields", "POST /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"sv),
    valid("token_method", "M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n"sv),
    valid("absolute_form", "GET http://a.example/p HTTP/1.1\r\nHost: a.example\r\n\r\n"sv),
    valid("empty_value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n"sv),
    valid("htab_and_spaces_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX: \t a b \t\r\n\r\n"sv),
    valid("obs_text_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\xff\r\n\r\n"sv),
    valid("token_punctuation_in_name", "GET / HTTP/1.1\r\nX!#$%&'*+-.^_`|~1: v\r\n\r\n"sv),
    valid("colon_in_value", "GET / HTTP/1.1\r\nHost: a:80\r\n\r\n"sv),
    valid_then_body("body_after_head_not_scanned", "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n"sv,
                    "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\0\n\x7f"sv),
    valid_then_body("pipelined_request_after_head", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"sv,
                    "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n"sv),
    // Incomplete requests.
    incomplete("empty", ""sv),
    incomplete("method_only", "GET"sv),
    incomplete("line_without_crlf", "GET / HTTP/1.1"sv),
    incomplete("line_then_cr", "GET / HTTP/1.1\r"sv),
    incomplete("one_field", "GET / HTTP/1.1\r\nHost: a\r\n"sv),
    incomplete("before_final_lf", "GET / HTTP/1.1\r\nHost: a\r\n\r"sv),
    // Request line.
    // RFC 9112 2.2: empty lines before a request line are ignored, a few of them.
    valid("empty_line_before_request_line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"sv),
    valid("eight_empty_lines_before_request_line",
          "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"sv),
    valid("request_line_at_limit_after_empty_lines",
          "\r\n\r\nGET /aaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n"sv, HeadKind::request, kSmall),
    incomplete("only_empty_lines", "\r\n\r\n\r"sv),
    invalid("nine_empty_lines_before_request_line",
            "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"sv, 400),
    invalid("nine_empty_lines_refused_before_the_request_line",
            "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r"sv, 400),
    invalid("bare_lf_before_request_line", "\nGET / HTTP/1.1\r\n\r\n"sv, 400),
    invalid("bare_cr_before_request_line", "\rGET / HTTP/1.1\r\n\r\n"sv, 400),
    invalid("empty_line_then_bare_lf", "\r\n\nGET / HTTP/1.1\r\n\r\n"sv, 400),
    invalid("empty_line_then_space", "\r\n GET / HTTP/1.1\r\n\r\n"sv, 400),
    invalid("request_line_over_limit_after_empty_lines",
            "\r\n\r\nGET /aaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n"sv, 414, HeadKind::request, kSmall),
    invalid("leading_space", " GET / HTTP/1.1\r\n\r\n"sv, 400),
    invalid("method_with_slash", "GE/T / HTTP/1.1\r\n\r\n"sv, 400),
    invalid("tab_separator", "GET\t/ HTTP/1.1\r\n\r\n"sv, 400),
    invalid("two_spaces_before_target", "GET  / HTTP/1.1\r\n\r\n"sv, 400),
    invalid("two_spaces_before_version", "GET /  HTTP/1.1\r\n\r\n"sv, 400),
    invalid("trailing_space", "GET / HTTP/1.1 \r\n\r\n"sv, 400),
    invalid("control_in_target", "GET /a\x01 HTTP/1.1\r\n\r\n"sv, 400),
    invalid("nul_in_target", "GET /a\0b HTTP/1.1\r\n\r\n"sv, 400),
    invalid("del_in_target", "GET /a\x7f HTTP/1.1\r\n\r\n"sv, 400),
    invalid("obs_text_in_target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n"sv, 400),
    invalid("http09_no_version", "GET /\r\n\r\n"sv, 400),
    invalid("lowercase_version", "GET / http/1.1\r\n\r\n"sv, 400),
    invalid("version_garbage", "GET / HTTP/1.x\r\n\r\n"sv, 400),
    invalid("version_too_long", "GET / HTTP/1.11\r\n\r\n"sv, 400),
    invalid("http2_version", "GET / HTTP/2.0\r\n\r\n"sv, 505),
    invalid("http12_version", "GET / HTTP/1.2\r\n\r\n"sv, 505),
    invalid("bare_lf_after_request_line", "GET / HTTP/1.1\nHost: a\r\n\r\n"sv, 400),
    invalid("bare_cr_after_request_line", "GET / HTTP/1.1\rHost: a\r\n\r\n"sv, 400),
    // Header lines.
    invalid("cve_2023_30589_bare_cr_in_value", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"sv, 400),
    invalid("bare_lf_in_value", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"sv, 400),
    invalid("bare_lf_ends_head", "GET / HTTP/1.1\r\nHost: a\r\n\n"sv, 400),
    invalid("cve_2024_27982_space_before_content_length",
            "POST / HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\n"sv, 400),
    invalid("obs_fold_with_tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"sv, 400),
    invalid("obs_fold_transfer_encoding",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n ,chunked\r\n\r\n"sv, 400),
    invalid("cve_2025_23167_cr_then_other_byte", "GET / HTTP/1.1\r\nHost: a\r\n\rX"sv, 400),
    invalid("cr_cr_lf_at_end", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"sv, 400),
    invalid("whitespace_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"sv, 400),
    invalid("tab_before_colon", "GET / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n"sv, 400),
    invalid("empty_header_name", "GET / HTTP/1.1\r\n: a\r\n\r\n"sv, 400),
    invalid("line_without_colon", "GET / HTTP/1.1\r\nHost\r\n\r\n"sv, 400),
    invalid("non_token_in_name", "GET / HTTP/1.1\r\nX(y): a\r\n\r\n"sv, 400),
    invalid("obs_text_in_name", "GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n"sv, 400),
    invalid("nul_in_value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"sv, 400),
    invalid("del_in_value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"sv, 400),
    invalid("vertical_tab_in_value", "GET / HTTP/1.1\r\nX: a\x0b\r\n\r\n"sv, 400),
    invalid("error_before_end_even_if_incomplete", "GET / HTTP/1.1\r\nX: a\0"sv, 400),
    // Limits (kSmall: request line 32, head 96 bytes, 3 fields).
    valid("request_line_at_limit", "GET /aaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n"sv, HeadKind::request,
          kSmall),
    invalid("request_line_over_limit", "GET /aaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n"sv, 414,
            HeadKind::request, kSmall),
    invalid("request_line_over_limit_incomplete", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaa"sv, 414,
            HeadKind::request, kSmall),
    valid("header_bytes_at_limit",
          "GET / HTTP/1.1\r\nA: 012345678901234567890123456789\r\n"
          "B: 01234567890123456789012345678901234567\r\n\r\n"sv,
          HeadKind::request, kSmall),
    invalid("header_bytes_over_limit",
            "GET / HTTP/1.1\r\nA: 012345678901234567890123456789\r\n"
            "B: 012345678901234567890123456789012345678\r\n\r\n"sv,
            431, HeadKind::request, kSmall),
    invalid("header_bytes_over_limit_incomplete",
            "GET / HTTP/1.1\r\nA: 0123456789012345678901234567890123456789"
            "01234567890123456789012345678901234567890123456789"sv,
            431, HeadKind::request, kSmall),
    valid("header_count_at_limit", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"sv,
          HeadKind::request, kSmall),
    invalid("header_count_over_limit", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"sv,
            431, HeadKind::request, kSmall),
    invalid("header_count_over_limit_incomplete", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD"sv,
            431, HeadKind::request, kSmall),
    // Responses: every error is 502.
    valid("response_ok", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"sv, kResponse),
    valid("response_http10", "HTTP/1.0 404 Not Found\r\n\r\n"sv, kResponse),
    valid("response_empty_reason", "HTTP/1.1 204 \r\n\r\n"sv, kResponse),
    valid("response_no_reason_no_space", "HTTP/1.1 200\r\nServer: x\r\n\r\n"sv, kResponse),
    valid("response_obs_text_reason", "HTTP/1.1 200 T\xc3\xa9st\tok\r\n\r\n"sv, kResponse),
    valid("response_long_status_line_has_no_414",
          "HTTP/1.1 200 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"sv, kResponse, kSmall),
    incomplete("response_incomplete", "HTTP/1.1 200 OK\r\n"sv, kResponse),
    invalid("response_http2", "HTTP/2.0 200 OK\r\n\r\n"sv, 502, kResponse),
    invalid("response_after_empty_line", "\r\nHTTP/1.1 200 OK\r\n\r\n"sv, 502, kResponse),
    invalid("response_two_digit_status", "HTTP/1.1 20 OK\r\n\r\n"sv, 502, kResponse),
    invalid("response_four_digit_status", "HTTP/1.1 2000 OK\r\n\r\n"sv, 502, kResponse),
    invalid("response_status_600", "HTTP/1.1 600 X\r\n\r\n"sv, 502, kResponse),
    invalid("response_status_099", "HTTP/1.1 099 X\r\n\r\n"sv, 502, kResponse),
    invalid("response_control_in_reason", "HTTP/1.1 200 O\x01K\r\n\r\n"sv, 502, kResponse),
    invalid("response_bare_cr_in_value", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"sv, 502, kResponse),
    invalid("response_obs_fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"sv, 502, kResponse),
    invalid("response_space_before_colon", "HTTP/1.1 200 OK\r\nX : a\r\n\r\n"sv, 502, kResponse),
    invalid("response_cr_then_other_byte", "HTTP/1.1 200 OK\r\n\rX"sv, 502, kResponse),
    invalid("response_too_many_fields", "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"sv,
            502, kResponse, kSmall),
    invalid("response_too_large",
            "HTTP/1.1 200 OK\r\nA: 0123456789012345678901234567890123456789"
            "01234567890123456789012345678901234567890123456789"sv,
            502, kResponse, kSmall),
};

void expect_scan(const HeadScan& scan, const ScanCase& c) {
  ASSERT_EQ(name_of(scan.state), name_of(c.state)) << "error: " << scan.error.reason;
  if (c.state == State::complete) {
    EXPECT_EQ(scan.length, c.length);
  }
  if (c.state == State::invalid) {
    EXPECT_EQ(scan.error.status, c.status) << scan.error.reason;
    EXPECT_STRNE(scan.error.reason, "");
  }
}

class ScanHeadTest : public testing::TestWithParam<ScanCase> {};

TEST_P(ScanHeadTest, WholeInput) {
  const ScanCase& c = GetParam();
  expect_scan(scan_head(c.input, c.kind, c.limits), c);
}

// Every prefix: incomplete until the end of a valid head; an invalid head never turns
// complete on the way, and once invalid it stays invalid.
TEST_P(ScanHeadTest, EveryPrefix) {
  const ScanCase& c = GetParam();
  bool seen_invalid = false;
  for (std::size_t n = 0; n <= c.input.size(); ++n) {
    const HeadScan scan = scan_head(c.input.substr(0, n), c.kind, c.limits);
    if (c.state == State::complete && n >= c.length) {
      ASSERT_EQ(name_of(scan.state), "complete") << "prefix " << n;
      ASSERT_EQ(scan.length, c.length) << "prefix " << n;
      continue;
    }
    ASSERT_NE(name_of(scan.state), "complete") << "prefix " << n;
    if (c.state != State::invalid) {
      ASSERT_EQ(name_of(scan.state), "incomplete") << "prefix " << n;
    }
    ASSERT_FALSE(seen_invalid && scan.state != State::invalid) << "prefix " << n;
    seen_invalid = scan.state == State::invalid;
  }
}

// HeadScanner fed one byte at a time, then in random pieces, ends as scan_head does.
TEST_P(ScanHeadTest, ResumedScanMatches) {
  const ScanCase& c = GetParam();
  HeadScanner by_byte(c.kind, c.limits);
  HeadScan scan;
  for (std::size_t n = 0; n <= c.input.size(); ++n) scan = by_byte.scan(c.input.substr(0, n));
  expect_scan(scan, c);

  std::mt19937 random(42);
  HeadScanner by_piece(c.kind, c.limits);
  std::size_t n = 0;
  while (n < c.input.size()) {
    n = std::min(c.input.size(), n + 1 + random() % 7);
    scan = by_piece.scan(c.input.substr(0, n));
  }
  expect_scan(by_piece.scan(c.input), c);

  by_piece.reset();
  expect_scan(by_piece.scan(c.input), c);
}

// Recording the fields (what HttpParser does) never changes a verdict, on any prefix.
TEST_P(ScanHeadTest, RecordingScanMatches) {
  const ScanCase& c = GetParam();
  for (std::size_t n = 0; n <= c.input.size(); ++n) {
    MessageHead head;
    const HeadScan recorded = HeadScanner(c.kind, c.limits, &head).scan(c.input.substr(0, n));
    const HeadScan plain = scan_head(c.input.substr(0, n), c.kind, c.limits);
    ASSERT_EQ(name_of(recorded.state), name_of(plain.state)) << "prefix " << n;
    ASSERT_EQ(recorded.length, plain.length) << "prefix " << n;
    ASSERT_EQ(recorded.error.status, plain.error.status) << "prefix " << n;
    ASSERT_STREQ(recorded.error.reason, plain.error.reason) << "prefix " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ScanHeadTest, testing::ValuesIn(kScanCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ScanHead, IsBeforeRequestLine) {
  EXPECT_TRUE(is_before_request_line("\r\n"));
  EXPECT_TRUE(is_before_request_line("\r\n\r"));
  EXPECT_FALSE(is_before_request_line(""));
  EXPECT_FALSE(is_before_request_line("\r\nG"));
  EXPECT_FALSE(is_before_request_line("GET"));
}

// The empty lines before a request line count in the head's length, not in its fields.
TEST(ScanHeadRecord, EmptyLinesBeforeTheRequestLineAreSkipped) {
  const std::string_view input = "\r\n\r\nPOST /p HTTP/1.0\r\nX: 1\r\n\r\n"sv;
  MessageHead head;
  const HeadScan scan = HeadScanner(HeadKind::request, {}, &head).scan(input);
  ASSERT_EQ(name_of(scan.state), "complete") << scan.error.reason;
  EXPECT_EQ(scan.length, input.size());
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/p");
  EXPECT_EQ(head.version_minor, 0);
  ASSERT_EQ(head.headers.size(), 1u);
  EXPECT_EQ(head.headers[0].name, "X");
}

// Heads that scan_head accepts satisfy the rules checked here independently; every
// one-byte mutation of valid heads is tried with the bytes smuggling relies on.
bool obeys_crlf_and_charset(std::string_view head) {
  for (std::size_t i = 0; i < head.size(); ++i) {
    const auto c = static_cast<unsigned char>(head[i]);
    if (c == '\r' && (i + 1 == head.size() || head[i + 1] != '\n')) return false;
    if (c == '\n' && (i == 0 || head[i - 1] != '\r')) return false;
    if (c < 0x20 && c != '\r' && c != '\n' && c != '\t') return false;
    if (c == 0x7f) return false;
    if (c == '\n' && i + 1 < head.size() && (head[i + 1] == ' ' || head[i + 1] == '\t')) {
      return false;
    }
  }
  return head.ends_with("\r\n\r\n");
}

TEST(ScanHeadMutation, AcceptedHeadsObeyTheRulesAndSplittingNeverMatters) {
  const std::string_view seeds[] = {
      "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX: y\r\n\r\n"sv,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"sv,
  };
  const char bytes[] = {'\0', '\r', '\n', ' ', '\t', ':', '\x7f', '\x80', 'x', '\x0b'};
  for (const std::string_view seed : seeds) {
    const HeadKind kind = seed.starts_with("HTTP/") ? HeadKind::response : HeadKind::request;
    for (std::size_t i = 0; i < seed.size(); ++i) {
      for (const char b : bytes) {
        std::string mutated(seed);
        mutated[i] = b;
        const HeadScan whole = scan_head(mutated, kind, {});
        HeadScanner pieces(kind, {});
        HeadScan last;
        for (std::size_t n = 0; n <= mutated.size(); n += 3)
          last = pieces.scan(mutated.substr(0, n));
        last = pieces.scan(mutated);
        ASSERT_EQ(name_of(last.state), name_of(whole.state)) << i;
        ASSERT_EQ(last.length, whole.length) << i;
        if (whole.state == State::complete) {
          ASSERT_TRUE(obeys_crlf_and_charset(std::string_view(mutated).substr(0, whole.length)))
              << "accepted mutation at " << i << ": " << mutated;
        }
      }
    }
  }
}

// Long values and targets are checked a word at a time: every byte value at every
// position of one must give the same verdict as the byte-by-byte rules.
TEST(ScanHeadBytes, EveryByteAtEveryPositionOfAValue) {
  const std::string prefix = "GET / HTTP/1.1\r\nCookie: ";
  for (int byte = 0; byte < 256; ++byte) {
    const bool allowed = byte == '\t' || byte == ' ' || (byte > 0x20 && byte != 0x7f);
    for (std::size_t pos = 0; pos < 24; ++pos) {
      std::string value(24, 'v');
      value[pos] = static_cast<char>(byte);
      const std::string head = prefix + value + "\r\n\r\n";
      const HeadScan scan = scan_head(head, HeadKind::request, {});
      ASSERT_EQ(name_of(scan.state), allowed ? "complete" : "invalid") << byte << " at " << pos;
    }
  }
}

TEST(ScanHeadBytes, EveryByteAtEveryPositionOfATarget) {
  for (int byte = 0; byte < 256; ++byte) {
    const bool allowed = byte > 0x20 && byte < 0x7f;
    for (std::size_t pos = 0; pos < 24; ++pos) {
      std::string target(24, 't');
      target[0] = '/';
      if (pos > 0) target[pos] = static_cast<char>(byte);
      const std::string head = "GET " + target + " HTTP/1.1\r\n\r\n";
      const HeadScan scan = scan_head(head, HeadKind::request, {});
      const bool expected = pos == 0 || allowed;
      ASSERT_EQ(name_of(scan.state), expected ? "complete" : "invalid") << byte << " at " << pos;
    }
  }
}

// ---------------------------------------------------------------------------------------
// analyze_request

struct RequestCase {
  const char* name;
  std::vector<Header> headers;
  int version_minor = 1;
  int status = 0;  // 0: accepted
  BodyFraming framing = BodyFraming::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;
  bool expect_continue = false;
  std::string_view upgrade = {};
};

void PrintTo(const RequestCase& c, std::ostream* os) {
  *os << c.name;
}

const Header kHost{"Host", "a.example"};

RequestCase accepted(const char* name, std::vector<Header> headers, BodyFraming framing,
                     std::uint64_t length = 0) {
  return {name, std::move(headers), 1, 0, framing, length};
}

RequestCase rejected(const char* name, std::vector<Header> headers, int status,
                     int version_minor = 1) {
  return {name, std::move(headers), version_minor, status};
}

RequestCase with_host(const char* name, std::string_view host) {
  return {name, {{"Host", host}}, 1, 0};
}

RequestCase bad_host(const char* name, std::string_view host) {
  return rejected(name, {{"Host", host}}, 400);
}

RequestCase bad_content_length(const char* name, std::string_view value) {
  return rejected(name, {kHost, {"Content-Length", value}}, 400);
}

RequestCase bad_transfer_encoding(const char* name, std::string_view value) {
  return rejected(name, {kHost, {"Transfer-Encoding", value}}, 501);
}

RequestCase connection(const char* name, int version_minor, std::vector<Header> headers,
                       bool keep_alive) {
  headers.push_back(kHost);
  return {name, std::move(headers), version_minor, 0, BodyFraming::none, 0, keep_alive};
}

const BodyFraming kNone = BodyFraming::none;
const BodyFraming kLength = BodyFraming::content_length;
const BodyFraming kChunked = BodyFraming::chunked;

const RequestCase kRequestCases[] = {
    // Framing.
    accepted("no_body", {kHost}, kNone),
    accepted("content_length", {kHost, {"Content-Length", "5"}}, kLength, 5),
    accepted("content_length_zero", {kHost, {"Content-Length", "0"}}, kLength, 0),
    accepted("content_length_max", {kHost, {"Content-Length", "18446744073709551615"}}, kLength,
             UINT64_MAX),
    accepted("content_length_leading_zeros", {kHost, {"Content-Length", "007"}}, kLength, 7),
    accepted("duplicate_identical_content_length",
             {kHost, {"Content-Length", "5"}, {"content-length", "5"}}, kLength, 5),
    accepted("chunked", {kHost, {"Transfer-Encoding", "chunked"}}, kChunked),
    accepted("chunked_any_case", {{"TRANSFER-ENCODING", "ChUnKeD"}, kHost}, kChunked),
    // Host.
    with_host("host_with_port", "a.example:8080"),
    with_host("host_ipv4", "192.0.2.1"),
    with_host("host_ipv6", "[2001:db8::1]"),
    with_host("host_ipv6_port", "[::ffff:192.0.2.1]:443"),
    with_host("host_pct_encoded", "a%41b"),
    with_host("host_sub_delims", "a_b~c!d"),
    rejected("missing_host", {}, 400),
    // HTTP/1.0 predates Host: accepted without one.
    RequestCase{"missing_host_http10", {}, 0, 0, BodyFraming::none, 0, false},
    rejected("duplicate_host", {kHost, {"host", "a.example"}}, 400),
    bad_host("empty_host", ""),
    bad_host("host_with_space", "a example"),
    bad_host("host_with_slash", "a.example/x"),
    bad_host("host_with_userinfo", "user@a.example"),
    bad_host("host_empty_port", "a.example:"),
    bad_host("host_port_not_digits", "a.example:http"),
    bad_host("host_port_too_big", "a.example:65536"),
    bad_host("host_port_too_long", "a.example:000080"),
    bad_host("host_two_ports", "a.example:80:81"),
    bad_host("host_only_port", ":80"),
    bad_host("host_ipv6_unterminated", "[::1"),
    bad_host("host_ipv6_junk_after", "[::1]x"),
    bad_host("host_ipv6_bad_char", "[::g]"),
    bad_host("host_ipvfuture", "[v1.x]"),
    bad_host("host_bad_pct", "a%4"),
    bad_host("host_bad_pct_hex", "a%zz"),
    bad_host("host_obs_text", "caf\xc3\xa9"),
    // Content-Length.
    bad_content_length("content_length_plus", "+5"),
    bad_content_length("content_length_minus", "-5"),
    bad_content_length("content_length_hex", "0x10"),
    bad_content_length("content_length_list", "1, 1"),
    bad_content_length("content_length_list_no_space", "1,1"),
    bad_content_length("content_length_inner_space", "1 1"),
    bad_content_length("content_length_empty", ""),
    bad_content_length("content_length_decimal", "5.0"),
    bad_content_length("content_length_overflow", "18446744073709551616"),
    bad_content_length("content_length_huge", "99999999999999999999999999999999"),
    rejected("content_length_values_differ",
             {kHost, {"Content-Length", "5"}, {"Content-Length", "6"}}, 400),
    rejected("content_length_spellings_differ",
             {kHost, {"Content-Length", "5"}, {"Content-Length", "05"}}, 400),
    // Transfer-Encoding.
    rejected("transfer_encoding_and_content_length",
             {kHost, {"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}, 400),
    rejected("content_length_after_transfer_encoding",
             {kHost, {"Transfer-Encoding", "chunked"}, {"Content-Length", "0"}}, 400),
    rejected("transfer_encoding_http10", {kHost, {"Transfer-Encoding", "chunked"}}, 400, 0),
    rejected("transfer_encoding_twice",
             {kHost, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}, 400),
    bad_transfer_encoding("transfer_encoding_chunked_twice", "chunked, chunked"),
    bad_transfer_encoding("transfer_encoding_gzip_chunked", "gzip, chunked"),
    bad_transfer_encoding("transfer_encoding_identity", "identity"),
    bad_transfer_encoding("transfer_encoding_parameter", "chunked;x"),
    bad_transfer_encoding("transfer_encoding_gzip", "gzip"),
    bad_transfer_encoding("transfer_encoding_empty", ""),
    bad_transfer_encoding("transfer_encoding_lookalike", "chunkedx"),
    // Connection and keep-alive.
    connection("http11_default_keep_alive", 1, {}, true),
    connection("http11_close", 1, {{"Connection", "close"}}, false),
    connection("http11_close_any_case_in_list", 1, {{"Connection", "Keep-Alive , CLOSE"}}, false),
    connection("http10_default_close", 0, {}, false),
    connection("http10_keep_alive", 0, {{"Connection", "keep-alive"}}, true),
    connection("close_in_second_field", 1, {{"Connection", "keep-alive"}, {"Connection", "close"}},
               false),
    connection("empty_list_elements", 1, {{"Connection", ", ,close,"}}, false),
    rejected("connection_not_tokens", {kHost, {"Connection", "close;x"}}, 400),
    // Expect.
    {"expect_continue", {kHost, {"Expect", "100-Continue"}}, 1, 0, kNone, 0, true, true},
    {"expect_continue_http10", {kHost, {"Expect", "100-continue"}}, 0, 0, kNone, 0, false, false},
    rejected("expect_other", {kHost, {"Expect", "200-ok"}}, 417),
    rejected("expect_list", {kHost, {"Expect", "100-continue, x"}}, 417),
    // Upgrade.
    {"upgrade",
     {kHost, {"Connection", "Upgrade"}, {"Upgrade", "websocket"}},
     1,
     0,
     kNone,
     0,
     true,
     false,
     "websocket"},
    {"upgrade_not_named_by_connection", {kHost, {"Upgrade", "websocket"}}, 1, 0, kNone, 0, true},
    {"upgrade_ignored_in_http10",
     {kHost, {"Connection", "upgrade, keep-alive"}, {"Upgrade", "websocket"}},
     0,
     0,
     kNone,
     0,
     true},
    rejected("upgrade_twice",
             {kHost, {"Connection", "upgrade"}, {"Upgrade", "a"}, {"Upgrade", "b"}}, 400),
};

class AnalyzeRequestTest : public testing::TestWithParam<RequestCase> {};

TEST_P(AnalyzeRequestTest, Verdict) {
  const RequestCase& c = GetParam();
  MessageHead head;
  head.method = "POST";
  head.target = "/";
  head.version_minor = c.version_minor;
  head.headers = c.headers;
  MessageInfo info;
  HeadError error;
  const bool ok = analyze_request(head, info, error);
  if (c.status != 0) {
    ASSERT_FALSE(ok);
    EXPECT_EQ(error.status, c.status) << error.reason;
    EXPECT_STRNE(error.reason, "");
    return;
  }
  ASSERT_TRUE(ok) << error.status << " " << error.reason;
  EXPECT_EQ(name_of(info.framing), name_of(c.framing));
  EXPECT_EQ(info.content_length, c.content_length);
  EXPECT_EQ(info.keep_alive, c.keep_alive);
  EXPECT_EQ(info.expect_continue, c.expect_continue);
  EXPECT_EQ(info.upgrade, c.upgrade);
  for (const Header& header : c.headers) {
    if (iequals(header.name, "host")) {
      EXPECT_EQ(info.host, header.value);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, AnalyzeRequestTest, testing::ValuesIn(kRequestCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(AnalyzeRequest, ReportsConnectionOptions) {
  MessageHead head;
  head.headers = {kHost, {"Connection", "Keep-Alive, x-foo"}, {"connection", "UPGRADE"}};
  MessageInfo info;
  HeadError error;
  ASSERT_TRUE(analyze_request(head, info, error));
  EXPECT_FALSE(info.connection.close);
  EXPECT_TRUE(info.connection.keep_alive);
  EXPECT_TRUE(info.connection.upgrade);
}

// ---------------------------------------------------------------------------------------
// analyze_response

struct ResponseCase {
  const char* name;
  int status;
  std::string_view method;
  std::vector<Header> headers;
  int version_minor = 1;
  bool ok = true;  // false: rejected with 502
  BodyFraming framing = BodyFraming::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;
  std::string_view upgrade = {};
};

void PrintTo(const ResponseCase& c, std::ostream* os) {
  *os << c.name;
}

ResponseCase response(const char* name, int status, std::string_view method,
                      std::vector<Header> headers, BodyFraming framing, std::uint64_t length = 0,
                      bool keep_alive = true) {
  return {name, status, method, std::move(headers), 1, true, framing, length, keep_alive};
}

ResponseCase bad_response(const char* name, int status, std::vector<Header> headers,
                          int version_minor = 1) {
  return {name, status, "GET", std::move(headers), version_minor, false};
}

const BodyFraming kUntilClose = BodyFraming::until_close;

const ResponseCase kResponseCases[] = {
    response("content_length", 200, "GET", {{"Content-Length", "5"}}, kLength, 5),
    response("chunked", 200, "POST", {{"Transfer-Encoding", "chunked"}}, kChunked),
    response("until_close", 200, "GET", {}, kUntilClose, 0, false),
    response("close", 200, "GET", {{"Content-Length", "1"}, {"Connection", "close"}}, kLength, 1,
             false),
    {"http10_default_close", 200, "GET", {{"Content-Length", "1"}}, 0, true, kLength, 1, false},
    {"http10_keep_alive",
     200,
     "GET",
     {{"Content-Length", "1"}, {"Connection", "keep-alive"}},
     0,
     true,
     kLength,
     1,
     true},
    response("head_content_length", 200, "HEAD", {{"Content-Length", "1234"}}, kNone),
    response("head_chunked", 200, "HEAD", {{"Transfer-Encoding", "chunked"}}, kNone),
    response("no_content", 204, "GET", {}, kNone),
    response("no_content_ignores_framing", 204, "GET",
             {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}, kNone),
    response("not_modified_with_length", 304, "GET", {{"Content-Length", "1234"}}, kNone),
    response("continue", 100, "POST", {}, kNone),
    response("informational_ignores_framing", 103, "GET", {{"Transfer-Encoding", "gzip"}}, kNone),
    response("connect_established", 200, "CONNECT", {}, kNone),
    {"switching_protocols",
     101,
     "GET",
     {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}},
     1,
     true,
     kNone,
     0,
     true,
     "websocket"},
    response("upgrade_ignored_when_not_101", 200, "GET",
             {{"Connection", "upgrade"}, {"Upgrade", "h2c"}, {"Content-Length", "0"}}, kLength),
    bad_response("both_framings", 200, {{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}),
    bad_response("gzip_chunked", 200, {{"Transfer-Encoding", "gzip, chunked"}}),
    bad_response("duplicate_transfer_encoding", 200,
                 {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}),
    bad_response("transfer_encoding_http10", 200, {{"Transfer-Encoding", "chunked"}}, 0),
    bad_response("content_length_not_digits", 200, {{"Content-Length", "abc"}}),
    bad_response("content_length_differs", 200, {{"Content-Length", "1"}, {"Content-Length", "2"}}),
    bad_response("content_length_overflow", 200, {{"Content-Length", "18446744073709551616"}}),
    bad_response("not_modified_bad_length", 304, {{"Content-Length", "-1"}}),
    bad_response("switching_without_upgrade", 101, {{"Connection", "upgrade"}}),
    bad_response("bad_connection", 200, {{"Connection", "close\"x\""}}),
};

class AnalyzeResponseTest : public testing::TestWithParam<ResponseCase> {};

TEST_P(AnalyzeResponseTest, Verdict) {
  const ResponseCase& c = GetParam();
  MessageHead head;
  head.status = c.status;
  head.version_minor = c.version_minor;
  head.headers = c.headers;
  MessageInfo info;
  HeadError error;
  const bool ok = analyze_response(head, c.method, info, error);
  if (!c.ok) {
    ASSERT_FALSE(ok);
    EXPECT_EQ(error.status, 502) << error.reason;
    EXPECT_STRNE(error.reason, "");
    return;
  }
  ASSERT_TRUE(ok) << error.status << " " << error.reason;
  EXPECT_EQ(name_of(info.framing), name_of(c.framing));
  EXPECT_EQ(info.content_length, c.content_length);
  EXPECT_EQ(info.keep_alive, c.keep_alive);
  EXPECT_EQ(info.upgrade, c.upgrade);
}

INSTANTIATE_TEST_SUITE_P(Cases, AnalyzeResponseTest, testing::ValuesIn(kResponseCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------
// is_hop_by_hop and iequals

struct HopCase {
  std::string_view name;
  bool hop_by_hop;
};

TEST(IsHopByHop, StandardAndConnectionNamedFields) {
  MessageHead head;
  head.headers = {{"Connection", "close, X-Foo"},
                  {"Host", "a"},
                  {"connection", " x-bar ,, "},
                  {"X-Baz", "Connection"}};
  const HopCase cases[] = {
      {"Connection", true},
      {"keep-alive", true},
      {"TE", true},
      {"Trailer", true},
      {"Transfer-Encoding", true},
      {"UPGRADE", true},
      {"Proxy-Connection", true},
      {"Proxy-Authenticate", true},
      {"proxy-authorization", true},
      {"x-foo", true},
      {"X-BAR", true},
      {"Host", false},
      {"Content-Length", false},
      {"X-Baz", false},
      {"Trailers", false},
      {"T", false},
      {"close", true},  // a listed token names a field, whatever it is called
  };
  for (const HopCase& c : cases) EXPECT_EQ(is_hop_by_hop(c.name, head), c.hop_by_hop) << c.name;
}

TEST(IsHopByHop, ManyConnectionOptions) {
  MessageHead head;
  head.headers = {{"Connection", "a1, a2, a3, a4, a5, a6"}, {"Connection", "a7, a8, a9, a10"}};
  for (const char* name : {"a1", "A8", "a9", "a10"}) EXPECT_TRUE(is_hop_by_hop(name, head)) << name;
  EXPECT_FALSE(is_hop_by_hop("a11", head));
  head.headers.pop_back();
  EXPECT_TRUE(is_hop_by_hop("A6", head));
  EXPECT_FALSE(is_hop_by_hop("a7", head));
}

TEST(IsHopByHop, WithoutConnectionField) {
  const MessageHead head;
  EXPECT_TRUE(is_hop_by_hop("Transfer-Encoding", head));
  EXPECT_FALSE(is_hop_by_hop("X-Foo", head));
  EXPECT_FALSE(is_hop_by_hop("", head));
}

TEST(IEquals, AsciiCaseOnly) {
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("chunked", "chunke"));
  EXPECT_FALSE(iequals("a", "b"));
  EXPECT_FALSE(iequals("@", "`"));  // differ by 0x20 but are not letters
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("\xc3\xa9", "\xc3\x89"));
}

}  // namespace
}  // namespace gh::http
