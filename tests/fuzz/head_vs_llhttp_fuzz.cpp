// Differential fuzz target: the strict request head scanner (core/http_head.*) against
// llhttp 8.1 (Debian's node-llhttp, lenient flags off) on the same bytes. Where the scanner
// accepts a request head and analyze_request() accepts its fields, llhttp must accept the
// head too, with the same method, target, version and fields (values compared without
// OWS), and end it at the same byte.
//
// Known, triaged disagreements are not failures (tests/fuzz/README.md, "Differential"):
//   - whatever llhttp refuses within a request line other than a common method with an
//     origin-form target: methods it does not know for HTTP (RFC 9110 9.1: any token is a
//     method), RTSP methods, PRI outside the HTTP/2 preface, its URL grammar. The proxy
//     vets exactly these lines with llhttp (HttpParser::check_request_line);
//   - repeated identical Content-Length fields: analyze_request() accepts them (RFC 9110
//     8.6 allows either), llhttp refuses them (and so does HttpParser::derive_body);
//   - HTAB after the digits of a Content-Length: OWS for RFC 9110 5.5, refused by llhttp;
//   - a head starting with CRLF, should the scanner come to skip it (RFC 9112 2.2).
// Anything else is a finding: the input is saved and the process aborts.
#include <llhttp.h>

#include <algorithm>
#include <array>
#include <string>

#include "core/http_head.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;
using gh::http::HeadKind;
using gh::http::HeadScan;
using gh::http::MessageHead;

struct Seen {
  std::string method, url, version;
  std::vector<std::pair<std::string, std::string>> fields;
  bool headers_done = false;
  bool in_value = false;
};

Seen& seen_of(llhttp_t* parser) {
  return *static_cast<Seen*>(parser->data);
}

int on_method(llhttp_t* p, const char* at, std::size_t n) {
  seen_of(p).method.append(at, n);
  return 0;
}
int on_url(llhttp_t* p, const char* at, std::size_t n) {
  seen_of(p).url.append(at, n);
  return 0;
}
int on_version(llhttp_t* p, const char* at, std::size_t n) {
  seen_of(p).version.append(at, n);
  return 0;
}
int on_field(llhttp_t* p, const char* at, std::size_t n) {
  Seen& seen = seen_of(p);
  if (seen.fields.empty() || seen.in_value) seen.fields.emplace_back();
  seen.in_value = false;
  seen.fields.back().first.append(at, n);
  return 0;
}
int on_value(llhttp_t* p, const char* at, std::size_t n) {
  Seen& seen = seen_of(p);
  if (seen.fields.empty()) seen.fields.emplace_back();  // a value before any name: reported below
  seen.in_value = true;
  seen.fields.back().second.append(at, n);
  return 0;
}
int on_headers_complete(llhttp_t* p) {
  seen_of(p).headers_done = true;
  return HPE_PAUSED;  // stop at the end of the head, like the scanner
}

const llhttp_settings_t& settings() {
  static const llhttp_settings_t instance = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_method = on_method;
    s.on_url = on_url;
    s.on_version = on_version;
    s.on_header_field = on_field;
    s.on_header_value = on_value;
    s.on_headers_complete = on_headers_complete;
    return s;
  }();
  return instance;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// HttpParser::check_request_line skips llhttp only for these methods with a '/' target:
// there llhttp must agree with the scanner on its own.
bool is_common_origin_form(const MessageHead& head) {
  static constexpr std::array<std::string_view, 7> kMethods = {"GET",    "HEAD",    "POST", "PUT",
                                                               "DELETE", "OPTIONS", "PATCH"};
  return head.target.starts_with('/') &&
         std::find(kMethods.begin(), kMethods.end(), head.method) != kMethods.end();
}

std::size_t content_lengths(const MessageHead& head) {
  return static_cast<std::size_t>(
      std::count_if(head.headers.begin(), head.headers.end(), [](const gh::http::Header& field) {
        return gh::http::iequals(field.name, "content-length");
      }));
}

// llhttp 8.1 refuses HTAB between the digits of a Content-Length and the CR (SP passes);
// RFC 9110 5.5 takes OWS, SP or HTAB, off both ends of every field value. The recorded
// value is trimmed, so look at the raw bytes after it.
bool content_length_ends_in_htab(const MessageHead& head) {
  for (const auto& field : head.headers) {
    if (!gh::http::iequals(field.name, "content-length")) continue;
    for (const char* p = field.value.data() + field.value.size(); *p != '\r'; ++p) {
      if (*p == '\t') return true;
    }
  }
  return false;
}

[[noreturn]] void disagree(std::string_view input, const std::string& what) {
  gh::fuzz::invariant_failed(__FILE__, __LINE__, "scanner and llhttp agree",
                             what + "\n  input: " + escaped(input, 400));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  MessageHead head;
  const HeadScan scan =
      gh::http::HeadScanner(HeadKind::request, gh::http::HeadLimits{}, &head).scan(input);
  if (scan.state != HeadScan::State::complete) return 0;
  gh::http::MessageInfo info;
  gh::http::HeadError error;
  // Framing and Host rules live in analyze_request(); llhttp has its own subset of them.
  if (!gh::http::analyze_request(head, info, error)) return 0;

  Seen seen;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings());
  parser.data = &seen;
  const std::string_view bytes = input.substr(0, scan.length);
  const llhttp_errno_t err = llhttp_execute(&parser, bytes.data(), bytes.size());

  const bool accepted = seen.headers_done && (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE);
  if (!accepted) {
    const char* reason = llhttp_get_error_reason(&parser);
    const std::string why = std::string(llhttp_errno_name(err)) + " " + (reason ? reason : "");
    // Triaged (README.md, "Differential"): a repeated Content-Length or one followed by
    // HTAB; and anything llhttp refuses within the request line of a line other than the
    // common origin-form ones (methods it does not know for HTTP, RTSP methods, PRI
    // outside the HTTP/2 preface, its URL grammar): HttpParser::check_request_line hands
    // exactly those lines to llhttp, so Gatehouse refuses them too.
    if (err == HPE_UNEXPECTED_CONTENT_LENGTH && content_lengths(head) > 1) return 0;
    if (err == HPE_INVALID_CONTENT_LENGTH && content_length_ends_in_htab(head)) return 0;
    const char* line_end = head.target.data() + head.target.size() + sizeof " HTTP/1.1\r\n" - 1;
    if (llhttp_get_error_pos(&parser) <= line_end && !is_common_origin_form(head)) return 0;
    disagree(input, "scanner accepts, llhttp says " + why);
  }
  const std::size_t llhttp_end =
      static_cast<std::size_t>(llhttp_get_error_pos(&parser) - bytes.data());
  if (llhttp_end != scan.length) {
    disagree(input, "head ends at " + std::to_string(scan.length) + " for the scanner, at " +
                        std::to_string(llhttp_end) + " for llhttp");
  }
  if (seen.method != head.method) disagree(input, "method " + escaped(seen.method));
  if (seen.url != head.target) disagree(input, "target " + escaped(seen.url));
  if (seen.version != "1." + std::to_string(head.version_minor)) {
    disagree(input, "version " + escaped(seen.version));
  }
  if (seen.fields.size() != head.headers.size()) {
    disagree(input, std::to_string(seen.fields.size()) + " fields for llhttp, " +
                        std::to_string(head.headers.size()) + " for the scanner");
  }
  for (std::size_t i = 0; i < seen.fields.size(); ++i) {
    if (seen.fields[i].first != head.headers[i].name ||
        trim_ows(seen.fields[i].second) != head.headers[i].value) {
      disagree(input, "field " + std::to_string(i) + ": llhttp " + escaped(seen.fields[i].first) +
                          ":" + escaped(seen.fields[i].second) + ", scanner " +
                          escaped(head.headers[i].name) + ":" + escaped(head.headers[i].value));
    }
  }
  return 0;
}
