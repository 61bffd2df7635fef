#include "core/http_parser.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <limits>

namespace gh::http {
namespace {

// The last element of a Transfer-Encoding list, without OWS.
std::string_view last_coding(std::string_view list) {
  const std::size_t comma = list.rfind(',');
  std::string_view coding = comma == std::string_view::npos ? list : list.substr(comma + 1);
  while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) {
    coding.remove_prefix(1);
  }
  return coding;  // values are recorded without trailing OWS
}

// Content-Length digits, refused as llhttp refused them: null, or why not.
const char* parse_content_length(std::string_view digits, std::uint64_t& length) {
  if (digits.empty()) return "Empty Content-Length";
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  length = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return "Invalid character in Content-Length";
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (length > (kMax - digit) / 10) return "Content-Length overflow";
    length = length * 10 + digit;
  }
  return nullptr;
}

// Methods after which llhttp accepts every origin-form target the scanner lets through
// (visible characters only): HttpParserTest.LlhttpAcceptsEveryOriginFormTarget checks it
// over every path of up to three characters. Such request lines skip llhttp.
bool is_common_origin_form(const MessageHead& head) {
  static constexpr std::array<std::string_view, 7> kMethods = {"GET",    "HEAD",    "POST", "PUT",
                                                               "DELETE", "OPTIONS", "PATCH"};
  return head.target.starts_with('/') &&
         std::find(kMethods.begin(), kMethods.end(), head.method) != kMethods.end();
}

// The methods llhttp 8.1 parses in an HTTP request line (its HTTP_METHOD_MAP).
#define GH_METHOD_TEXT(number, name, text) #text,
constexpr std::string_view kLlhttpMethods[] = {HTTP_METHOD_MAP(GH_METHOD_TEXT)};
#undef GH_METHOD_TEXT

bool is_llhttp_method(std::string_view method) {
  return std::find(std::begin(kLlhttpMethods), std::end(kLlhttpMethods), method) !=
         std::end(kLlhttpMethods);
}

// "head" for HEAD: methods are case-sensitive (RFC 9110 9.1), but a backend that compares
// them without case would answer "head" without a body where the proxy waits for one.
bool is_case_variant_of_llhttp_method(std::string_view method) {
  return std::any_of(std::begin(kLlhttpMethods), std::end(kLlhttpMethods),
                     [method](std::string_view known) { return iequals(known, method); });
}

}  // namespace

HttpParser::HttpParser(HeadKind kind, std::size_t chunk_extension_limit, std::size_t trailer_limit)
    : kind_(kind), chunked_(chunk_extension_limit, trailer_limit) {
  llhttp_settings_init(&line_settings_);
  // Pausing at the end of the message tells a complete request line from one that left
  // llhttp waiting for more (the HTTP/2 preface after "PRI * HTTP/2.0").
  line_settings_.on_message_complete = [](llhttp_t*) -> int { return HPE_PAUSED; };
  llhttp_init(&line_parser_, HTTP_REQUEST, &line_settings_);
}

void HttpParser::begin_message() {
  head_.clear();
  scanned_ = {};
  body_ = Body::none;
  body_left_ = 0;
  error_ = nullptr;
  head_complete_ = message_complete_ = skip_body_ = false;
  chunked_.reset();
}

HeadScan HttpParser::scan_head(std::string_view data, const HeadLimits& limits) {
  head_.clear();
  scanned_ = {};
  const HeadScan scan = HeadScanner(kind_, limits, &head_).scan(data);
  if (scan.state == HeadScan::State::complete) scanned_ = data.substr(0, scan.length);
  return scan;
}

HttpParser::Step HttpParser::execute(const char* data, std::size_t length, BodySink* sink) {
  sink_ = sink;
  if (!head_complete_) return start_message(data, length);
  return feed_body(data, length, 0);
}

HttpParser::Step HttpParser::start_message(const char* data, std::size_t length) {
  if (scanned_.data() != data || scanned_.size() != length) {
    const HeadScan scan = scan_head({data, length}, HeadLimits{});
    if (scan.state == HeadScan::State::invalid) return fail(scan.error.reason);
    if (scan.state != HeadScan::State::complete || scan.length != length) {
      return fail("not exactly one head");
    }
  }
  scanned_ = {};
  if (kind_ == HeadKind::request && !check_request_line(data, length)) return {Outcome::error, 0};
  if (!derive_body()) return {Outcome::error, 0};
  head_complete_ = true;
  return feed_body(data + length, 0, length);
}

// llhttp's request-target grammar and its method list, which the scanner does not repeat:
// the request line alone, then the empty line that ends a head without fields. Nothing
// after the request line changes llhttp's verdict on it. A method llhttp does not know
// is any token (RFC 9110 9.1: QUERY, FOO): llhttp then reads the line with GET in its
// place, which vets the target alone (one grammar for every method but CONNECT).
bool HttpParser::check_request_line(const char* data, std::size_t length) {
  if (is_common_origin_form(head_)) return true;
  const std::string_view method = head_.method;
  const bool known = is_llhttp_method(method);
  if (method == "PRI") return refuse("PRI is only the HTTP/2 preface");  // RFC 9113 3.4
  if (!known && is_case_variant_of_llhttp_method(method)) return refuse("Invalid method case");
  // The line starts at the method (after any empty lines) and ends at the LF the scanner
  // found (a bare LF is an error there).
  const char* after_method = method.data() + method.size();
  const auto left = static_cast<std::size_t>(data + length - after_method);
  const auto* line_end = static_cast<const char*>(std::memchr(after_method, '\n', left));
  if (!line_end) return refuse("invalid request line");
  const std::string_view parsed_method = known ? method : "GET";
  llhttp_reset(&line_parser_);
  llhttp_errno_t err = llhttp_execute(&line_parser_, parsed_method.data(), parsed_method.size());
  if (err == HPE_OK) {
    err = llhttp_execute(&line_parser_, after_method,
                         static_cast<std::size_t>(line_end + 1 - after_method));
  }
  if (err == HPE_OK) err = llhttp_execute(&line_parser_, "\r\n", 2);
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) return true;  // the message ended
  if (err == HPE_OK) return refuse("incomplete request line");
  const char* reason = llhttp_get_error_reason(&line_parser_);
  return refuse(reason ? reason : "invalid request line");
}

// Where the body ends, from the recorded fields (RFC 9112 6.3), refusing what llhttp
// refused. The caller's analyze_request/analyze_response narrow this further (exactly
// "chunked", no Transfer-Encoding in HTTP/1.0, statuses for each case).
bool HttpParser::derive_body() {
  const Header* content_length = nullptr;
  const Header* transfer_encoding = nullptr;
  for (const Header& h : head_.headers) {
    if (iequals(h.name, "content-length")) {
      if (content_length) return refuse("Duplicate Content-Length");
      content_length = &h;
    } else if (iequals(h.name, "transfer-encoding")) {
      transfer_encoding = &h;
    }
  }
  if (content_length && transfer_encoding) {
    return refuse("Content-Length can't be present with Transfer-Encoding");
  }
  if (content_length) {
    if (const char* invalid = parse_content_length(content_length->value, body_left_)) {
      return refuse(invalid);
    }
  }
  const bool chunked =
      transfer_encoding && iequals(last_coding(transfer_encoding->value), "chunked");
  // What follows a CONNECT head is tunnel data, not a body (llhttp's view too).
  const bool bodiless = kind_ == HeadKind::request ? head_.method == "CONNECT"
                                                   : skip_body_ || head_.status < 200 ||
                                                         head_.status == 204 || head_.status == 304;
  if (bodiless) {
    body_ = Body::none;
  } else if (transfer_encoding) {
    if (!chunked && kind_ == HeadKind::request) {
      return refuse("Request has invalid `Transfer-Encoding`");
    }
    body_ = chunked ? Body::chunked : Body::until_close;
  } else if (content_length) {
    body_ = Body::content_length;
  } else {
    body_ = kind_ == HeadKind::request ? Body::none : Body::until_close;
  }
  return true;
}

HttpParser::Step HttpParser::feed_body(const char* data, std::size_t length,
                                       std::size_t already_consumed) {
  if (message_complete_) return {Outcome::message_complete, already_consumed};
  switch (body_) {
    case Body::none:
      break;
    case Body::content_length: {
      const auto taken = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, length));
      if (taken > 0 && sink_) sink_->on_body(data, taken);
      body_left_ -= taken;
      if (body_left_ > 0) return {Outcome::need_more, already_consumed + taken};
      already_consumed += taken;
      break;
    }
    case Body::chunked:
      return feed_chunked(data, length, already_consumed);
    case Body::until_close:
      if (length > 0 && sink_) sink_->on_body(data, length);
      return {Outcome::need_more, already_consumed + length};
  }
  message_complete_ = true;
  return {Outcome::message_complete, already_consumed};
}

HttpParser::Step HttpParser::feed_chunked(const char* data, std::size_t length,
                                          std::size_t already_consumed) {
  struct NullSink final : BodySink {
    void on_body(const char*, std::size_t) override {}
  } null_sink;
  auto step = chunked_.feed(data, length, sink_ ? *sink_ : static_cast<BodySink&>(null_sink));
  switch (step.status) {
    case ChunkedDecoder::Status::need_more:
      return {Outcome::need_more, already_consumed + length};
    case ChunkedDecoder::Status::done:
      message_complete_ = true;
      return {Outcome::message_complete, already_consumed + step.consumed};
    case ChunkedDecoder::Status::error:
      break;
  }
  return {Outcome::error, 0};
}

bool HttpParser::finish() {
  if (!message_complete_ && head_complete_ && body_ == Body::until_close) message_complete_ = true;
  return message_complete_;
}

int HttpParser::error_status() const {
  return !error_ && body_ == Body::chunked && chunked_.too_large() ? 413 : 400;
}

const char* HttpParser::error_reason() const {
  if (error_) return error_;
  if (body_ == Body::chunked && *chunked_.error()) return chunked_.error();
  return "malformed message";
}

HttpParser::Step HttpParser::fail(const char* reason) {
  refuse(reason);
  return {Outcome::error, 0};
}

bool HttpParser::refuse(const char* reason) {
  error_ = reason;
  return false;
}

}  // namespace gh::http
