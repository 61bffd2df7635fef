#include "core/http_head.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace gh::http {
namespace {

// Byte classes: one table lookup per byte on the hot path.
enum CharClass : std::uint8_t {
  kTchar = 1 << 0,       // RFC 9110 5.6.2 token: method, header name, list tokens
  kVisible = 1 << 1,     // VCHAR 0x21-0x7E: request target
  kFieldValue = 1 << 2,  // HTAB, SP, VCHAR, obs-text: field values, reason phrase
  kDigit = 1 << 3,
  kHexDigit = 1 << 4,
  kRegName = 1 << 5,  // RFC 3986 unreserved / sub-delims ('%' is checked apart)
};

constexpr std::array<std::uint8_t, 256> make_char_classes() {
  constexpr std::string_view kTokenPunct = "!#$%&'*+-.^_`|~";
  constexpr std::string_view kRegNamePunct = "-._~!$&'()*+,;=";
  std::array<std::uint8_t, 256> classes{};
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool digit = c >= '0' && c <= '9';
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool hex_alpha = (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    const bool visible = c >= 0x21 && c <= 0x7e;
    std::uint8_t bits = 0;
    if (digit || alpha || kTokenPunct.find(ch) != std::string_view::npos) bits |= kTchar;
    if (visible) bits |= kVisible;
    if (visible || c == ' ' || c == '\t' || c >= 0x80) bits |= kFieldValue;
    if (digit) bits |= kDigit;
    if (digit || hex_alpha) bits |= kHexDigit;
    if (digit || alpha || kRegNamePunct.find(ch) != std::string_view::npos) bits |= kRegName;
    classes[c] = bits;
  }
  return classes;
}

constexpr std::array<std::uint8_t, 256> kCharClasses = make_char_classes();

constexpr bool has(unsigned char c, std::uint8_t char_class) {
  return (kCharClasses[c] & char_class) != 0;
}

constexpr bool has(char c, std::uint8_t char_class) {
  return has(static_cast<unsigned char>(c), char_class);
}

constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Index of the last byte of the run of `char_class` bytes that starts at `pos`, looking
// no further than `stop`: lets the scanner take a whole name or value in a tight loop.
std::size_t last_in_run(std::string_view data, std::size_t pos, std::size_t stop,
                        std::uint8_t char_class) {
  while (pos + 1 < stop && has(data[pos + 1], char_class)) ++pos;
  return pos;
}

// Word-at-a-time checks (SWAR) for the long runs: targets and values such as Cookie or
// User-Agent go 8 bytes per step; the table takes over at the end of a run.
constexpr std::uint64_t kOnes = 0x0101010101010101;
constexpr std::uint64_t kHighBits = 0x8080808080808080;

// Exact "some byte < n" for n <= 128 (bytes >= 0x80 never count).
constexpr std::uint64_t bytes_below(std::uint64_t word, std::uint8_t n) {
  return (word - kOnes * n) & ~word & kHighBits;
}

constexpr std::uint64_t bytes_equal(std::uint64_t word, std::uint8_t byte) {
  return bytes_below(word ^ (kOnes * byte), 1);
}

std::uint64_t load_word(const char* bytes) {
  std::uint64_t word;
  std::memcpy(&word, bytes, sizeof word);
  return word;
}

// Eight field-value bytes: no control other than HTAB, no DEL (HTAB falls to the table).
bool all_field_value(std::uint64_t word) {
  return (bytes_below(word, 0x20) | bytes_equal(word, 0x7f)) == 0;
}

// Eight VCHARs: no control, SP, DEL or obs-text.
bool all_visible(std::uint64_t word) {
  return (bytes_below(word, 0x21) | bytes_equal(word, 0x7f) | (word & kHighBits)) == 0;
}

// last_in_run() for classes that have a word check.
template <bool (*all_in_class)(std::uint64_t)>
std::size_t last_in_long_run(std::string_view data, std::size_t pos, std::size_t stop,
                             std::uint8_t char_class) {
  while (pos + 1 + sizeof(std::uint64_t) <= stop && all_in_class(load_word(&data[pos + 1]))) {
    pos += sizeof(std::uint64_t);
  }
  return last_in_run(data, pos, stop, char_class);
}

static_assert(bytes_below(0x4141414141414109, 0x20) != 0);  // HTAB still ends a fast run
static_assert(bytes_below(0x80ff414141414141, 0x20) == 0);  // obs-text does not
static_assert(bytes_equal(0x414141417f414141, 0x7f) != 0);

// A LF where another byte was expected is reported as such: it is the smuggling case.
const char* cause(unsigned char c, const char* reason) {
  return c == '\n' ? "bare LF" : reason;
}

constexpr std::string_view kVersionPattern = "HTTP/D.D";  // D: one digit
constexpr std::size_t kMajorDigit = kVersionPattern.find('D');

constexpr bool is_supported_version(char major, char minor) {
  return major == '1' && (minor == '0' || minor == '1');
}

// RFC 9112 2.2: a server SHOULD ignore at least one empty line (CRLF) before a request
// line (clients have sent one after a POST body). A few are ignored; more is a flood.
constexpr std::uint8_t kMaxEmptyLines = 8;

}  // namespace

// ---------------------------------------------------------------------------------------
// scan_head

enum class HeadScanner::Step : std::uint8_t {
  // Request line, in this order: the 414 check applies from method_start to version.
  empty_line_lf,  // the LF of an empty line before the request line
  method_start,
  method,
  target_start,
  target,
  request_version,
  // Status line.
  status_version,
  status_code,
  status_code_end,
  reason,
  // Shared.
  start_line_lf,
  line_start,
  name,
  value,
  value_lf,
  final_lf,
};

HeadScanner::HeadScanner(HeadKind kind, const HeadLimits& limits, MessageHead* record)
    : kind_(kind), limits_(limits), record_(record) {
  reset();
}

void HeadScanner::reset() {
  step_ = kind_ == HeadKind::request ? Step::method_start : Step::status_version;
  matched_ = 0;
  version_major_ = version_minor_ = 0;
  status_ = 0;
  offset_ = mark_ = fields_ = 0;
  request_line_start_ = 0;
  empty_lines_ = 0;
  result_ = HeadScan{};
}

HeadScan HeadScanner::scan(std::string_view data) {
  if (result_.state != HeadScan::State::incomplete) return result_;
  // Bytes past header_bytes are never looked at: the head is too large if it gets there.
  const std::size_t stop = std::min(data.size(), limits_.header_bytes);
  for (; offset_ < stop; ++offset_) {
    if (!consume(data, stop)) return result_;
  }
  if (data.size() > limits_.header_bytes) fail(431, "header section too large");
  return result_;
}

bool HeadScanner::fail(int status, const char* reason) {
  // A bad response is the upstream's fault: the client gets 502 whatever the cause.
  result_.state = HeadScan::State::invalid;
  result_.error = {kind_ == HeadKind::response ? 502 : status, reason};
  return false;
}

void HeadScanner::record_version() {
  if (record_) record_->version_minor = version_minor_ - '0';
}

// Takes the byte after offset_ if it is `expected` (and within `stop`): lets a step that
// ended a run handle the delimiter that usually follows without another loop turn. The
// delimiter gets exactly what its own step would have done with it.
bool HeadScanner::next_is(std::string_view data, std::size_t stop, char expected) {
  if (offset_ + 1 >= stop || data[offset_ + 1] != expected) return false;
  ++offset_;
  return true;
}

// At the colon (offset_): the name runs from mark_ to here; the value starts after it.
void HeadScanner::end_field_name(std::string_view data) {
  if (record_) {
    // One allocation for an ordinary head rather than growing through 1, 2, 4, 8.
    if (record_->headers.capacity() == 0) record_->headers.reserve(16);
    record_->headers.push_back({marked(data), {}});
  }
  mark_ = offset_ + 1;
  step_ = Step::value;
}

// At the CR (offset_): the value runs from mark_ to here, without the OWS around it.
void HeadScanner::end_field_value(std::string_view data) {
  if (record_) record_->headers.back().value = trim_ows(marked(data));
  step_ = Step::value_lf;
}

// "HTTP/x.y" at offset_ in one turn when all of it is before `stop` (the usual case);
// otherwise, or if it does not match, consume_version() goes byte by byte and finds the
// byte to blame.
bool HeadScanner::take_whole_version(std::string_view data, std::size_t stop) {
  if (matched_ != 0 || offset_ + kVersionPattern.size() > stop) return false;
  const std::string_view version = data.substr(offset_, kVersionPattern.size());
  if (!version.starts_with("HTTP/") || !has(version[5], kDigit) || version[6] != '.' ||
      !has(version[7], kDigit)) {
    return false;
  }
  version_major_ = version[5];
  version_minor_ = version[7];
  matched_ = static_cast<std::uint8_t>(kVersionPattern.size());
  offset_ += kVersionPattern.size() - 1;
  return true;
}

bool HeadScanner::consume(std::string_view data, std::size_t stop) {
  const auto c = static_cast<unsigned char>(data[offset_]);
  if (step_ <= Step::request_version) return consume_request_line(c, data, stop);
  if (step_ < Step::start_line_lf) return consume_status_line(c, data, stop);
  return consume_header_line(c, data, stop);
}

// Matches kVersionPattern one byte at a time, keeping the digits.
bool HeadScanner::consume_version(unsigned char c) {
  const char expected = kVersionPattern[matched_];
  if (expected == 'D') {
    if (!has(c, kDigit)) return false;
    (matched_ == kMajorDigit ? version_major_ : version_minor_) = static_cast<char>(c);
  } else if (c != static_cast<unsigned char>(expected)) {
    return false;
  }
  ++matched_;
  return true;
}

bool HeadScanner::consume_request_line(unsigned char c, std::string_view data, std::size_t stop) {
  // The CR that ends a line of exactly request_line bytes is still fine.
  const std::size_t line_bytes = offset_ - request_line_start_;
  if (line_bytes >= limits_.request_line && c != '\r') return fail(414, "request line too long");
  const std::size_t line_stop = std::min(stop, request_line_start_ + limits_.request_line);
  switch (step_) {
    case Step::empty_line_lf:
      if (c != '\n') return fail(400, "bare CR");
      request_line_start_ = offset_ + 1;
      step_ = Step::method_start;
      return true;
    case Step::method_start:
      if (c == '\r') {
        if (++empty_lines_ > kMaxEmptyLines) return fail(400, "too many empty lines");
        step_ = Step::empty_line_lf;
        return true;
      }
      if (!has(c, kTchar)) return fail(400, cause(c, "invalid method"));
      step_ = Step::method;
      return true;
    case Step::method:
      if (c == ' ') {
        if (record_) record_->method = data.substr(request_line_start_, line_bytes);
        step_ = Step::target_start;
        return true;
      }
      if (!has(c, kTchar)) return fail(400, cause(c, "invalid method"));
      offset_ = last_in_run(data, offset_, line_stop, kTchar);
      return true;
    case Step::target_start:
      if (c == ' ') return fail(400, "extra space in request line");
      [[fallthrough]];
    case Step::target:
      if (has(c, kVisible)) {
        if (step_ == Step::target_start) mark_ = offset_;
        step_ = Step::target;
        offset_ = last_in_long_run<all_visible>(data, offset_, line_stop, kVisible);
        return true;
      }
      if (c == ' ') {  // target_start took care of an empty target
        if (record_) record_->target = marked(data);
        step_ = Step::request_version;
        return true;
      }
      if (c == '\r') return fail(400, "missing HTTP version");
      return fail(400, cause(c, "invalid character in request target"));
    default:  // Step::request_version
      if (matched_ < kVersionPattern.size()) {
        // line_stop: the 414 check above must see every byte of a line that reaches it.
        if (take_whole_version(data, line_stop)) return true;
        return consume_version(c) || fail(400, cause(c, "invalid HTTP version"));
      }
      if (c != '\r') return fail(400, cause(c, "invalid HTTP version"));
      if (!is_supported_version(version_major_, version_minor_)) {
        return fail(505, "HTTP version not supported");
      }
      record_version();
      step_ = Step::start_line_lf;
      return true;
  }
}

bool HeadScanner::consume_status_line(unsigned char c, std::string_view data, std::size_t stop) {
  switch (step_) {
    case Step::status_version:
      if (matched_ < kVersionPattern.size()) {
        if (take_whole_version(data, stop)) return true;
        return consume_version(c) || fail(502, cause(c, "invalid HTTP version"));
      }
      if (c != ' ') return fail(502, cause(c, "invalid status line"));
      if (!is_supported_version(version_major_, version_minor_)) {
        return fail(502, "HTTP version not supported");
      }
      record_version();
      step_ = Step::status_code;
      matched_ = 0;
      return true;
    case Step::status_code:
      // RFC 9110 15: status codes are 100-599.
      if (!has(c, kDigit) || (matched_ == 0 && (c < '1' || c > '5'))) {
        return fail(502, cause(c, "invalid status code"));
      }
      status_ = status_ * 10 + (c - '0');
      if (++matched_ == 3) {
        if (record_) record_->status = status_;
        step_ = Step::status_code_end;
      }
      return true;
    case Step::status_code_end:
      // "HTTP/1.1 200\r\n" without SP and reason: real servers send it.
      if (c == ' ') {
        mark_ = offset_ + 1;
        step_ = Step::reason;
        return true;
      }
      if (c == '\r') {
        step_ = Step::start_line_lf;
        return true;
      }
      return fail(502, cause(c, "invalid status code"));
    default:  // Step::reason
      if (has(c, kFieldValue)) {
        offset_ = last_in_long_run<all_field_value>(data, offset_, stop, kFieldValue);
        return true;
      }
      if (c == '\r') {
        if (record_) record_->reason = marked(data);
        step_ = Step::start_line_lf;
        return true;
      }
      return fail(502, cause(c, "invalid character in reason phrase"));
  }
}

bool HeadScanner::consume_header_line(unsigned char c, std::string_view data, std::size_t stop) {
  switch (step_) {
    case Step::start_line_lf:
    case Step::value_lf:
      if (c != '\n') return fail(400, "bare CR");
      step_ = Step::line_start;
      return true;
    case Step::line_start:
      if (c == '\r') {
        step_ = Step::final_lf;
        return true;
      }
      // obs-fold: llhttp 8.1 would take " Content-Length: 5" as a header (CVE-2024-27982).
      if (c == ' ' || c == '\t') return fail(400, "header line starts with whitespace");
      if (c == ':') return fail(400, "empty header name");
      if (!has(c, kTchar)) return fail(400, cause(c, "invalid character in header name"));
      if (++fields_ > limits_.header_count) return fail(431, "too many header fields");
      mark_ = offset_;
      step_ = Step::name;
      offset_ = last_in_run(data, offset_, stop, kTchar);
      if (next_is(data, stop, ':')) end_field_name(data);  // the usual case, in this turn
      return true;
    case Step::name:
      if (has(c, kTchar)) {  // the name continues past the end of the previous read
        offset_ = last_in_run(data, offset_, stop, kTchar);
        if (next_is(data, stop, ':')) end_field_name(data);
        return true;
      }
      if (c == ':') {
        end_field_name(data);
        return true;
      }
      if (c == ' ' || c == '\t') return fail(400, "whitespace before colon");
      if (c == '\r') return fail(400, "header line without colon");
      return fail(400, cause(c, "invalid character in header name"));
    case Step::value:
      if (has(c, kFieldValue)) {
        offset_ = last_in_long_run<all_field_value>(data, offset_, stop, kFieldValue);
        if (next_is(data, stop, '\r')) {  // the usual end of the line, in this turn
          end_field_value(data);
          if (next_is(data, stop, '\n')) step_ = Step::line_start;
        }
        return true;
      }
      if (c == '\r') {
        end_field_value(data);
        return true;
      }
      return fail(400, cause(c, "invalid character in header value"));
    default:  // Step::final_lf: "\r\n\rX" is a bare CR, never an end of head
      if (c != '\n') return fail(400, "bare CR");
      result_.state = HeadScan::State::complete;
      result_.length = offset_ + 1;
      return false;
  }
}

HeadScan scan_head(std::string_view data, HeadKind kind, const HeadLimits& limits) {
  return HeadScanner(kind, limits).scan(data);
}

bool is_before_request_line(std::string_view data) {
  return !data.empty() && data.find_first_not_of("\r\n") == std::string_view::npos;
}

// ---------------------------------------------------------------------------------------
// analyze_request / analyze_response

namespace {

// Takes the next element of a comma-separated list (RFC 9110 5.6.1) off `list`, without
// OWS; elements may be empty ("a, , b").
std::string_view next_list_element(std::string_view& list) {
  const std::size_t comma = list.find(',');
  const std::string_view element = list.substr(0, comma);
  list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
  return trim_ows(element);
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return has(c, kTchar); });
}

bool list_contains(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    if (iequals(next_list_element(list), token)) return true;
  }
  return false;
}

// Content-Length = 1*DIGIT: no sign, no spaces, no list ("1, 1"), no hex, no overflow.
bool parse_content_length(std::string_view value, std::uint64_t& length) {
  if (value.empty()) return false;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t result = 0;
  for (const char c : value) {
    if (!has(c, kDigit)) return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (result > (kMax - digit) / 10) return false;
    result = result * 10 + digit;
  }
  length = result;
  return true;
}

bool is_port(std::string_view port) {
  std::uint64_t number = 0;
  return port.size() <= 5 && parse_content_length(port, number) && number <= 65535;
}

// reg-name / IPv4address (RFC 3986 3.2.2): unreserved, sub-delims, pct-encoded; non-empty.
bool is_reg_name(std::string_view host) {
  if (host.empty()) return false;
  for (std::size_t i = 0; i < host.size(); ++i) {
    if (has(host[i], kRegName)) continue;
    const bool pct_encoded = host[i] == '%' && i + 2 < host.size() && has(host[i + 1], kHexDigit) &&
                             has(host[i + 2], kHexDigit);
    if (!pct_encoded) return false;
    i += 2;
  }
  return true;
}

// "[" IPv6address "]", checked for its alphabet only (hex digits, ':', '.'); IPvFuture
// and zone identifiers are refused.
bool is_ipv6_literal(std::string_view literal) {
  if (literal.size() < 4 || literal.front() != '[' || literal.back() != ']') return false;
  const std::string_view address = literal.substr(1, literal.size() - 2);
  bool colon = false;
  for (const char c : address) {
    if (c == ':') {
      colon = true;
    } else if (!has(c, kHexDigit) && c != '.') {
      return false;
    }
  }
  return colon;
}

// Host = uri-host [ ":" port ] (RFC 9112 3.2); an empty host or port is refused.
bool is_valid_host(std::string_view value) {
  const bool literal = value.starts_with('[');
  const std::size_t bracket = value.find(']');
  if (literal && bracket == std::string_view::npos) return false;
  const std::string_view host = value.substr(0, literal ? bracket + 1 : value.find(':'));
  if (!(literal ? is_ipv6_literal(host) : is_reg_name(host))) return false;
  if (host.size() == value.size()) return true;
  return value[host.size()] == ':' && is_port(value.substr(host.size() + 1));
}

enum class Field { other, host, content_length, transfer_encoding, connection, upgrade, expect };

Field classify(std::string_view name) {
  switch (name.size()) {  // the length rules out all but one candidate
    case 4:
      return iequals(name, "host") ? Field::host : Field::other;
    case 6:
      return iequals(name, "expect") ? Field::expect : Field::other;
    case 7:
      return iequals(name, "upgrade") ? Field::upgrade : Field::other;
    case 10:
      return iequals(name, "connection") ? Field::connection : Field::other;
    case 14:
      return iequals(name, "content-length") ? Field::content_length : Field::other;
    case 17:
      return iequals(name, "transfer-encoding") ? Field::transfer_encoding : Field::other;
    default:
      return Field::other;
  }
}

// What the semantic checks need, gathered in one pass over the fields.
struct Fields {
  std::size_t host_count = 0;
  std::string_view host;
  std::size_t content_length_count = 0;
  std::string_view content_length;  // the first value
  bool content_lengths_differ = false;
  std::size_t transfer_encoding_count = 0;
  std::string_view transfer_encoding;
  std::size_t upgrade_count = 0;
  std::string_view upgrade;
  bool expect_continue = false;
  bool expect_other = false;
  bool connection_valid = true;
  ConnectionOptions connection;
};

// Connection = #connection-option, each a token (RFC 9110 7.6.1).
bool add_connection_options(std::string_view list, ConnectionOptions& options) {
  while (!list.empty()) {
    const std::string_view option = next_list_element(list);
    if (option.empty()) continue;
    if (!is_token(option)) return false;
    options.close |= iequals(option, "close");
    options.keep_alive |= iequals(option, "keep-alive");
    options.upgrade |= iequals(option, "upgrade");
  }
  return true;
}

void add_field(const Header& header, Fields& fields) {
  switch (classify(header.name)) {
    case Field::host:
      if (fields.host_count++ == 0) fields.host = header.value;
      break;
    case Field::content_length:
      if (fields.content_length_count++ == 0) fields.content_length = header.value;
      fields.content_lengths_differ |= header.value != fields.content_length;
      break;
    case Field::transfer_encoding:
      if (fields.transfer_encoding_count++ == 0) fields.transfer_encoding = header.value;
      break;
    case Field::upgrade:
      if (fields.upgrade_count++ == 0) fields.upgrade = header.value;
      break;
    case Field::expect:
      (iequals(header.value, "100-continue") ? fields.expect_continue : fields.expect_other) = true;
      break;
    case Field::connection:
      fields.connection_valid &= add_connection_options(header.value, fields.connection);
      break;
    case Field::other:
      break;
  }
}

Fields collect_fields(const MessageHead& head) {
  Fields fields;
  for (const Header& header : head.headers) add_field(header, fields);
  return fields;
}

bool reject(HeadError& error, int status, const char* reason) {
  error = {status, reason};
  return false;
}

// Content-Length must be valid wherever it appears: it may be forwarded even when it
// does not frame a body (HEAD, 304).
bool check_content_length(const Fields& fields, std::uint64_t& length, HeadError& error) {
  if (fields.content_length_count == 0) return true;
  if (fields.content_lengths_differ) return reject(error, 400, "conflicting Content-Length");
  if (!parse_content_length(fields.content_length, length)) {
    return reject(error, 400, "invalid Content-Length");
  }
  return true;
}

// Body framing of a message that may have a body (RFC 9112 6.1-6.3), with the smuggling
// cases refused: a message framed two ways, or by a coding we would have to guess at.
bool derive_framing(const Fields& fields, int version_minor, MessageInfo& info, HeadError& error) {
  std::uint64_t length = 0;
  if (!check_content_length(fields, length, error)) return false;
  if (fields.transfer_encoding_count == 0) {
    info.framing =
        fields.content_length_count > 0 ? BodyFraming::content_length : BodyFraming::none;
    info.content_length = length;
    return true;
  }
  if (fields.transfer_encoding_count > 1) {
    return reject(error, 400, "duplicate Transfer-Encoding");
  }
  if (version_minor == 0) return reject(error, 400, "Transfer-Encoding in HTTP/1.0");
  if (fields.content_length_count > 0) {
    return reject(error, 400, "both Content-Length and Transfer-Encoding");
  }
  if (!iequals(fields.transfer_encoding, "chunked")) {
    return reject(error, 501, "unsupported Transfer-Encoding");
  }
  info.framing = BodyFraming::chunked;
  return true;
}

// HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive" (RFC 9112 9.3).
bool persists(int version_minor, const ConnectionOptions& connection) {
  if (connection.close) return false;
  return version_minor >= 1 || connection.keep_alive;
}

// The Upgrade value, when Connection names it; HTTP/1.0 upgrades are ignored (RFC 9110
// 7.8). Several Upgrade fields would have to be merged, so they are refused.
bool select_upgrade(const Fields& fields, int version_minor, MessageInfo& info, HeadError& error) {
  if (!fields.connection.upgrade || fields.upgrade_count == 0 || version_minor == 0) {
    return true;
  }
  if (fields.upgrade_count > 1) return reject(error, 400, "duplicate Upgrade");
  info.upgrade = fields.upgrade;
  return true;
}

bool check_request(const MessageHead& head, const Fields& fields, MessageInfo& info,
                   HeadError& error) {
  // HTTP/1.0 predates Host: such a request may come without one (the proxy supplies it).
  const bool host_optional = head.version_minor == 0 && fields.host_count == 0;
  if (fields.host_count == 0 && !host_optional) return reject(error, 400, "missing Host");
  if (fields.host_count > 1) return reject(error, 400, "duplicate Host");
  if (!host_optional && !is_valid_host(fields.host)) return reject(error, 400, "invalid Host");
  if (!fields.connection_valid) return reject(error, 400, "invalid Connection");
  if (fields.expect_other) return reject(error, 417, "unsupported expectation");
  if (!derive_framing(fields, head.version_minor, info, error)) return false;
  if (!select_upgrade(fields, head.version_minor, info, error)) return false;
  info.host = fields.host;
  // An HTTP/1.0 client does not know 100 Continue (RFC 9110 10.1.1).
  info.expect_continue = fields.expect_continue && head.version_minor >= 1;
  return true;
}

// RFC 9112 6.3 items 1-2: these responses end at the end of the head.
bool response_has_body(const MessageHead& head, std::string_view request_method) {
  const int status = head.status;
  if (status < 200 || status == 204 || status == 304) return false;
  if (request_method == "HEAD") return false;
  return !(request_method == "CONNECT" && status < 300);
}

bool check_response(const MessageHead& head, std::string_view request_method, const Fields& fields,
                    MessageInfo& info, HeadError& error) {
  if (!fields.connection_valid) return reject(error, 400, "invalid Connection");
  if (response_has_body(head, request_method)) {
    if (!derive_framing(fields, head.version_minor, info, error)) return false;
    if (info.framing == BodyFraming::none) info.framing = BodyFraming::until_close;
  } else {
    // Any Transfer-Encoding or Content-Length is ignored, but a malformed length is not.
    std::uint64_t ignored = 0;
    if (!check_content_length(fields, ignored, error)) return false;
  }
  if (head.status == 101) {
    if (!select_upgrade(fields, head.version_minor, info, error)) return false;
    if (info.upgrade.empty()) return reject(error, 400, "101 without Upgrade");
  }
  return true;
}

}  // namespace

bool analyze_request(const MessageHead& head, MessageInfo& info, HeadError& error) {
  info = MessageInfo{};
  const Fields fields = collect_fields(head);
  if (!check_request(head, fields, info, error)) return false;
  info.connection = fields.connection;
  info.keep_alive = persists(head.version_minor, fields.connection);
  return true;
}

bool analyze_response(const MessageHead& head, std::string_view request_method, MessageInfo& info,
                      HeadError& error) {
  info = MessageInfo{};
  const Fields fields = collect_fields(head);
  if (!check_response(head, request_method, fields, info, error)) {
    error.status = 502;  // the upstream's fault, whatever the cause
    return false;
  }
  info.connection = fields.connection;
  info.keep_alive =
      info.framing != BodyFraming::until_close && persists(head.version_minor, fields.connection);
  return true;
}

// ---------------------------------------------------------------------------------------
// is_hop_by_hop

namespace {

bool is_listed_hop_by_hop(std::string_view name) {
  switch (name.size()) {  // the length rules out all but one or two candidates
    case 2:
      return iequals(name, "te");
    case 7:
      return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10:
      return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16:
      return iequals(name, "proxy-connection");
    case 17:
      return iequals(name, "transfer-encoding");
    case 18:
      return iequals(name, "proxy-authenticate");
    case 19:
      return iequals(name, "proxy-authorization");
    default:
      return false;
  }
}

}  // namespace

HopByHop::HopByHop(const MessageHead& head) : head_(head) {
  for (const Header& header : head.headers) {
    if (!iequals(header.name, "connection")) continue;
    std::string_view list = header.value;
    while (!list.empty()) {
      const std::string_view option = next_list_element(list);
      if (option.empty()) continue;
      if (option_count_ < options_.size()) options_[option_count_] = option;
      ++option_count_;
    }
  }
}

bool HopByHop::operator()(std::string_view name) const {
  if (is_listed_hop_by_hop(name)) return true;
  if (option_count_ > options_.size()) {
    return std::any_of(head_.headers.begin(), head_.headers.end(), [name](const Header& header) {
      return iequals(header.name, "connection") && list_contains(header.value, name);
    });
  }
  const auto named = options_.begin() + static_cast<std::ptrdiff_t>(option_count_);
  return std::any_of(options_.begin(), named,
                     [name](std::string_view option) { return iequals(option, name); });
}

bool is_hop_by_hop(std::string_view name, const MessageHead& head) {
  return HopByHop(head)(name);
}

bool is_token_char(unsigned char c) {
  return has(c, kTchar);
}

}  // namespace gh::http
