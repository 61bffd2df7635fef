// Fuzz target: the strict head scanner (core/http_head.*), built twice: fuzz_head_request
// (GH_FUZZ_REQUEST=1) and fuzz_head_response (0). The input is the bytes of a head (and
// whatever follows it). Invariants:
//   - the verdict (state, length, status, reason) is the same whether the bytes come in
//     one piece, one byte at a time, or in pieces at cut points derived from the input,
//     and whether or not the buffer moves between calls (no recording then);
//   - an accepted head is well-formed as documented (ends in CRLF CRLF, start line and
//     fields as recorded, values without OWS or controls, views inside the head);
//   - an accepted head re-serialised (start line, "name: value" CRLF per field, CRLF) is
//     accepted again, whole, with the same start line and fields, and analyze_request() /
//     analyze_response() give the same verdict and framing for both;
//   - the framing analyze_*() derive agrees with the fields; HopByHop's cached answer is
//     is_hop_by_hop()'s.
#include <charconv>
#include <limits>

#include "core/http_head.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;
using gh::http::HeadKind;
using gh::http::HeadLimits;
using gh::http::HeadScan;
using gh::http::HeadScanner;
using gh::http::MessageHead;

#if GH_FUZZ_REQUEST
constexpr HeadKind kKind = HeadKind::request;
#else
constexpr HeadKind kKind = HeadKind::response;
#endif

std::string describe(const HeadScan& scan) {
  switch (scan.state) {
    case HeadScan::State::incomplete:
      return "incomplete";
    case HeadScan::State::complete:
      return "complete(" + std::to_string(scan.length) + ")";
    case HeadScan::State::invalid:
      return "invalid(" + std::to_string(scan.error.status) + " " + scan.error.reason + ")";
  }
  return "?";
}

bool same_verdict(const HeadScan& a, const HeadScan& b) {
  if (a.state != b.state) return false;
  if (a.state == HeadScan::State::complete) return a.length == b.length;
  if (a.state == HeadScan::State::invalid) {
    return a.error.status == b.error.status && std::string_view(a.error.reason) == b.error.reason;
  }
  return true;
}

std::string describe(const MessageHead& head) {
  std::string out = "[" + std::string(head.method) + "|" + std::string(head.target) + "|" +
                    std::to_string(head.status) + "|" + std::string(head.reason) + "|1." +
                    std::to_string(head.version_minor) + "]";
  for (const auto& field : head.headers) {
    out += " " + escaped(field.name) + ":" + escaped(field.value);
  }
  return out;
}

bool same_head(const MessageHead& a, const MessageHead& b) {
  if (a.method != b.method || a.target != b.target || a.status != b.status ||
      a.reason != b.reason || a.version_minor != b.version_minor ||
      a.headers.size() != b.headers.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

// Mostly the production limits; one input in four gets small ones, so that the 414 and
// 431 paths are reached with short inputs.
HeadLimits limits_for(std::string_view input) {
  HeadLimits limits;
  const std::uint64_t h = gh::fuzz::input_hash(input);
  if (h % 4 == 0) {
    limits.request_line = 16 + (h >> 8) % 64;
    limits.header_bytes = 32 + (h >> 16) % 512;
    limits.header_count = 1 + (h >> 24) % 8;
  }
  return limits;
}

std::string reserialise(const MessageHead& head) {
  std::string out;
  if (kKind == HeadKind::request) {
    out.append(head.method).append(" ").append(head.target).append(" HTTP/1.");
    out += static_cast<char>('0' + head.version_minor);
  } else {
    out = "HTTP/1.";
    out += static_cast<char>('0' + head.version_minor);
    out += " " + std::to_string(head.status) + " ";
    out.append(head.reason);
  }
  out += "\r\n";
  for (const auto& field : head.headers) {
    out.append(field.name).append(": ").append(field.value).append("\r\n");
  }
  out += "\r\n";
  return out;
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

// What the documentation of scan_head() promises about an accepted head.
void check_accepted(std::string_view input, const HeadScan& scan, const MessageHead& head,
                    const HeadLimits& limits) {
  const std::string_view bytes = input.substr(0, scan.length);
  GH_FUZZ_CHECK(scan.length >= 4 && scan.length <= input.size() && bytes.ends_with("\r\n\r\n"),
                describe(scan));
  GH_FUZZ_CHECK(scan.length <= limits.header_bytes, describe(scan));
  GH_FUZZ_CHECK(head.headers.size() <= limits.header_count, describe(head));
  GH_FUZZ_CHECK(head.version_minor == 0 || head.version_minor == 1, describe(head));
  if (kKind == HeadKind::request) {
    GH_FUZZ_CHECK(!head.method.empty() && !head.target.empty(), describe(head));
    for (const char c : head.method) {
      GH_FUZZ_CHECK(gh::http::is_token_char(static_cast<unsigned char>(c)), describe(head));
    }
    for (const char c : head.target) {
      GH_FUZZ_CHECK(c > 0x20 && c < 0x7f, describe(head));
    }
    const std::string line = std::string(head.method) + " " + std::string(head.target) +
                             " HTTP/1." + std::to_string(head.version_minor) + "\r\n";
    // RFC 9112 2.2: a server may skip empty lines before the request line.
    std::string_view request = bytes;
    while (request.starts_with("\r\n")) request.remove_prefix(2);
    GH_FUZZ_CHECK(request.starts_with(line), escaped(line) + " vs " + escaped(bytes));
    GH_FUZZ_CHECK(line.size() - 2 <= limits.request_line, describe(head));
  } else {
    GH_FUZZ_CHECK(head.status >= 100 && head.status <= 599, describe(head));
    GH_FUZZ_CHECK(bytes.starts_with("HTTP/1."), escaped(bytes));
  }
  for (const auto& field : head.headers) {
    GH_FUZZ_CHECK(!field.name.empty() && gh::fuzz::within(field.name, bytes) &&
                      gh::fuzz::within(field.value, bytes),
                  describe(head));
    for (const char c : field.name) {
      GH_FUZZ_CHECK(gh::http::is_token_char(static_cast<unsigned char>(c)), describe(head));
    }
    GH_FUZZ_CHECK(
        field.value.empty() || (!is_ows(field.value.front()) && !is_ows(field.value.back())),
        describe(head));
    for (const char c : field.value) {
      const auto u = static_cast<unsigned char>(c);
      GH_FUZZ_CHECK(u == '\t' || (u >= 0x20 && u != 0x7f), describe(head));
    }
  }
  for (const std::string_view view : {head.method, head.target, head.reason}) {
    GH_FUZZ_CHECK(gh::fuzz::within(view, bytes), describe(head));
  }
}

std::uint64_t parse_length(std::string_view digits, bool& ok) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  ok = ec == std::errc() && end == digits.data() + digits.size() && !digits.empty();
  return value;
}

struct Analysis {
  bool ok = false;
  gh::http::MessageInfo info;
  gh::http::HeadError error;
};

Analysis analyze(const MessageHead& head, std::string_view request_method) {
  Analysis a;
  if (kKind == HeadKind::request) {
    a.ok = gh::http::analyze_request(head, a.info, a.error);
  } else {
    a.ok = gh::http::analyze_response(head, request_method, a.info, a.error);
  }
  return a;
}

bool same_analysis(const Analysis& a, const Analysis& b) {
  if (a.ok != b.ok) return false;
  if (!a.ok)
    return a.error.status == b.error.status && std::string_view(a.error.reason) == b.error.reason;
  return a.info.framing == b.info.framing && a.info.content_length == b.info.content_length &&
         a.info.keep_alive == b.info.keep_alive &&
         a.info.expect_continue == b.info.expect_continue && a.info.host == b.info.host &&
         a.info.upgrade == b.info.upgrade;
}

// The framing analyze_*() derived agrees with the fields it came from.
void check_analysis(const MessageHead& head, const Analysis& a) {
  using gh::http::BodyFraming;
  using gh::http::iequals;
  std::size_t content_lengths = 0, transfer_encodings = 0, hosts = 0;
  for (const auto& field : head.headers) {
    if (iequals(field.name, "content-length")) {
      ++content_lengths;
      if (a.ok && a.info.framing == BodyFraming::content_length) {
        bool ok = false;
        const std::uint64_t value = parse_length(field.value, ok);
        GH_FUZZ_CHECK(ok && value == a.info.content_length, describe(head));
      }
    }
    if (iequals(field.name, "transfer-encoding")) ++transfer_encodings;
    if (iequals(field.name, "host")) ++hosts;
  }
  if (!a.ok) {
    if (kKind == HeadKind::response) {
      GH_FUZZ_CHECK(a.error.status == 502, describe(head));
    } else {
      const int s = a.error.status;
      GH_FUZZ_CHECK(
          s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 || s == 505,
          describe(head) + " -> " + std::to_string(s));
    }
    return;
  }
  switch (a.info.framing) {
    case BodyFraming::content_length:
      GH_FUZZ_CHECK(content_lengths > 0 && transfer_encodings == 0, describe(head));
      break;
    case BodyFraming::chunked:
      GH_FUZZ_CHECK(transfer_encodings == 1 && content_lengths == 0 && head.version_minor == 1,
                    describe(head));
      break;
    case BodyFraming::none:
      if (kKind == HeadKind::request) {
        GH_FUZZ_CHECK(content_lengths == 0 && transfer_encodings == 0, describe(head));
      }
      break;
    case BodyFraming::until_close:
      GH_FUZZ_CHECK(kKind == HeadKind::response && content_lengths == 0, describe(head));
      GH_FUZZ_CHECK(!a.info.keep_alive, describe(head));
      break;
  }
  if (a.info.framing != BodyFraming::content_length) {
    GH_FUZZ_CHECK(a.info.content_length == 0, describe(head));
  }
  if (kKind == HeadKind::request) {
    GH_FUZZ_CHECK(hosts == 1 || (hosts == 0 && head.version_minor == 0), describe(head));
  }
  const gh::http::HopByHop hop_by_hop(head);
  for (const auto& field : head.headers) {
    GH_FUZZ_CHECK(hop_by_hop(field.name) == gh::http::is_hop_by_hop(field.name, head),
                  describe(head));
  }
}

HeadScan scan_pieces_moving(std::string_view input, const HeadLimits& limits,
                            const std::vector<std::size_t>& cuts) {
  HeadScanner scanner(kKind, limits);
  std::string buffer;  // re-made for every call: the bytes move (no recording)
  for (const std::size_t cut : cuts) {
    buffer = std::string(input.substr(0, cut));
    const HeadScan scan = scanner.scan(buffer);
    if (scan.state != HeadScan::State::incomplete) return scan;
  }
  buffer = std::string(input);
  return scanner.scan(buffer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const HeadLimits limits = limits_for(input);

  MessageHead head;
  const HeadScan whole = HeadScanner(kKind, limits, &head).scan(input);
  GH_FUZZ_CHECK(same_verdict(whole, gh::http::scan_head(input, kKind, limits)), describe(whole));

  // One byte at a time, recording, over the same buffer.
  MessageHead bytewise_head;
  HeadScanner bytewise(kKind, limits, &bytewise_head);
  for (std::size_t k = 1; k < size; ++k) {
    if (bytewise.scan(input.substr(0, k)).state != HeadScan::State::incomplete) break;
  }
  const HeadScan by_byte = bytewise.scan(input);
  GH_FUZZ_CHECK(same_verdict(whole, by_byte),
                describe(whole) + " vs byte-wise " + describe(by_byte));

  const HeadScan split = scan_pieces_moving(input, limits, gh::fuzz::split_points(input, 3));
  GH_FUZZ_CHECK(same_verdict(whole, split), describe(whole) + " vs split " + describe(split));

  if (whole.state == HeadScan::State::invalid) {
    GH_FUZZ_CHECK(*whole.error.reason != '\0', describe(whole));
    GH_FUZZ_CHECK(kKind == HeadKind::request || whole.error.status == 502, describe(whole));
    return 0;
  }
  if (whole.state == HeadScan::State::incomplete) {
    GH_FUZZ_CHECK(size <= limits.header_bytes, describe(whole));
    return 0;
  }

  GH_FUZZ_CHECK(same_head(head, bytewise_head),
                describe(head) + " vs byte-wise " + describe(bytewise_head));
  check_accepted(input, whole, head, limits);
  // The head alone, without what follows it, is the same head.
  GH_FUZZ_CHECK(
      same_verdict(whole, gh::http::scan_head(input.substr(0, whole.length), kKind, limits)),
      describe(whole));

  const std::string again = reserialise(head);
  HeadLimits roomy = limits;
  roomy.header_bytes = std::numeric_limits<std::size_t>::max();
  MessageHead again_head;
  const HeadScan rescan = HeadScanner(kKind, roomy, &again_head).scan(again);
  GH_FUZZ_CHECK(rescan.state == HeadScan::State::complete && rescan.length == again.size(),
                escaped(input) + " re-serialised as " + escaped(again) + ": " + describe(rescan));
  GH_FUZZ_CHECK(same_head(head, again_head),
                describe(head) + " vs re-serialised " + describe(again_head));

  for (const std::string_view method : {"GET", "HEAD", "CONNECT"}) {
    const Analysis first = analyze(head, method);
    check_analysis(head, first);
    GH_FUZZ_CHECK(same_analysis(first, analyze(again_head, method)), describe(head));
    if (kKind == HeadKind::request) break;  // the method only matters for responses
  }
  return 0;
}
