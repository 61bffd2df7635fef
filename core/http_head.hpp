// HTTP/1.1 message heads: strict validation that does not trust the linked llhttp.
//
// Debian's llhttp 8.1.0 still accepts inputs later releases reject as smuggling vectors
// (bare CR in values, whitespace-prefixed Content-Length lines, "\r\n\rX" as end of
// head, obs-fold, whitespace before the colon, empty names). So heads are parsed here:
//   1. scan_head() / HeadScanner: syntax and size limits over the raw bytes; the scanner
//                        can also record the start line and fields as it goes (what
//                        HttpParser uses, so a head is walked once).
//   2. analyze_request() / analyze_response(): framing and semantics over the fields
//                        (Host, Content-Length, Transfer-Encoding, ...).
// Pure functions, no I/O, no allocation (but the recorded field list); any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace gh::http {

struct HeadLimits {
  std::size_t request_line = 8 * 1024;   // first line without CRLF -> 414 beyond
  std::size_t header_bytes = 32 * 1024;  // whole head -> 431 beyond
  std::size_t header_count = 100;        // header fields -> 431 beyond
};

enum class HeadKind { request, response };

// A rejected head: the status to answer (400, 413, 414, 417, 431, 501, 505; 502 for
// responses) and a short cause for the error body and the log.
struct HeadError {
  int status = 400;
  const char* reason = "";
};

struct HeadScan {
  enum class State { incomplete, complete, invalid };
  State state = State::incomplete;
  std::size_t length = 0;  // complete: head length including the final CRLF CRLF
  HeadError error;         // invalid: why
};

// Scans `data`, which begins at the first byte of a head, for the end of the head while
// validating every byte seen so far: CRLF line endings only (a bare CR or LF is 400), a
// well-formed start line (request: token SP target SP "HTTP/1.0|1.1", target without
// controls or spaces; response: "HTTP/1.x" SP 3DIGIT SP reason), header names that are
// non-empty tokens followed directly by ':', no obs-fold (a line starting with SP/HTAB),
// no control characters other than HTAB in values, and the limits (414 for a long
// request line, 431 for too many header bytes or fields; these fire as soon as they are
// exceeded, even while incomplete). Incomplete input that is valid so far returns
// State::incomplete; call again with more bytes appended (same start).
// A well-formed "HTTP/x.y" other than 1.0 and 1.1 in a request line is 505.
// Up to 8 empty lines (CRLF) before a request line are ignored (RFC 9112 2.2): they are
// part of the head's length and bytes, never of its recorded fields; a 9th is 400.
HeadScan scan_head(std::string_view data, HeadKind kind, const HeadLimits& limits);

// True when the start of a request head holds nothing but the empty lines a request may
// begin with (RFC 9112 2.2): no request has started yet.
bool is_before_request_line(std::string_view data);

struct MessageHead;

// scan_head() for a head that arrives in pieces, without rescanning: each scan() call
// continues at the first byte not checked yet. Pass the head so far each time (same
// start, more bytes appended); once complete or invalid, scan() repeats that result until
// reset(). scan_head(data, kind, limits) is HeadScanner(kind, limits).scan(data).
//
// With `record`, the scanner also fills in the start line and fields it validated
// (header values without OWS), as views into the scanned bytes: across several scan()
// calls the bytes must stay where they are. The head is complete and trustworthy only
// once scan() says State::complete. reset() does not clear it.
class HeadScanner {
 public:
  HeadScanner(HeadKind kind, const HeadLimits& limits, MessageHead* record = nullptr);
  HeadScan scan(std::string_view data);
  void reset();

 private:
  enum class Step : std::uint8_t;  // defined in http_head.cpp
  bool consume(std::string_view data, std::size_t stop);
  bool consume_request_line(unsigned char c, std::string_view data, std::size_t stop);
  bool consume_status_line(unsigned char c, std::string_view data, std::size_t stop);
  bool consume_header_line(unsigned char c, std::string_view data, std::size_t stop);
  bool consume_version(unsigned char c);
  bool take_whole_version(std::string_view data, std::size_t stop);
  bool next_is(std::string_view data, std::size_t stop, char expected);
  void end_field_name(std::string_view data);
  void end_field_value(std::string_view data);
  bool fail(int status, const char* reason);
  // Recording (no-ops without a MessageHead): the span from mark_ to offset_.
  std::string_view marked(std::string_view data) const {
    return data.substr(mark_, offset_ - mark_);
  }
  void record_version();

  HeadKind kind_;
  HeadLimits limits_;
  MessageHead* record_;
  Step step_;
  std::uint8_t matched_ = 0;  // bytes of "HTTP/x.y" or of the status code seen so far
  char version_major_ = 0;
  char version_minor_ = 0;
  int status_ = 0;          // status code digits so far
  std::size_t offset_ = 0;  // next byte to check
  std::size_t mark_ = 0;    // first byte of the target, reason, name or value being scanned
  std::size_t fields_ = 0;  // header fields started so far
  std::size_t request_line_start_ = 0;  // after the empty lines ignored before it
  std::uint8_t empty_lines_ = 0;
  HeadScan result_;
};

struct Header {
  std::string_view name;
  std::string_view value;  // without leading/trailing OWS
};

// Fields recorded by HeadScanner; views point into the connection's buffer.
struct MessageHead {
  std::string_view method;  // requests
  std::string_view target;  // requests
  int status = 0;           // responses
  std::string_view reason;  // responses: the reason phrase as sent (may be empty)
  int version_minor = 1;    // HTTP/1.x
  std::vector<Header> headers;
  void clear() {
    method = target = reason = {};
    status = 0;
    version_minor = 1;
    headers.clear();
  }
};

enum class BodyFraming { none, content_length, chunked, until_close };

// Bits for the hop-by-hop headers a message named in its Connection field.
struct ConnectionOptions {
  bool close = false;
  bool keep_alive = false;
  bool upgrade = false;
};

struct MessageInfo {
  BodyFraming framing = BodyFraming::none;
  // Body length for BodyFraming::content_length ("Content-Length: 0" is content_length
  // with 0, so it can be forwarded as such); 0 for every other framing.
  std::uint64_t content_length = 0;
  bool keep_alive = true;        // after this exchange, by version and Connection
  bool expect_continue = false;  // request had "Expect: 100-continue"
  std::string_view host;         // request's Host value
  std::string_view upgrade;      // Upgrade value when Connection names "upgrade"
  ConnectionOptions connection;
};

// Checks a request's fields and derives its framing. Rules: exactly one Host with a
// valid host[:port] value (400); Content-Length only digits, repeated values must be
// identical (400); Transfer-Encoding on HTTP/1.0 is 400; Transfer-Encoding other than
// exactly "chunked" is 501; both Content-Length and Transfer-Encoding is 400; a request
// without either has no body. "Expect: 100-continue" is noted, other expectations 417.
bool analyze_request(const MessageHead& head, MessageInfo& info, HeadError& error);

// The same for a response to a request with `request_method`: HEAD, 1xx, 204 and 304
// have no body; otherwise chunked, Content-Length, or until the connection closes.
// Errors are reported with status 502.
bool analyze_response(const MessageHead& head, std::string_view request_method, MessageInfo& info,
                      HeadError& error);

// True for headers a proxy must not forward (RFC 9110 7.6.1): Connection, Keep-Alive,
// TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection, Proxy-Authenticate,
// Proxy-Authorization, and any header named in one of `head`'s Connection fields.
// The proxy re-adds framing, Connection and Upgrade itself.
bool is_hop_by_hop(std::string_view name, const MessageHead& head);

// The same test for every field of one message, with its Connection fields parsed
// once (rebuilding a head asks it for every field: this keeps that linear).
class HopByHop {
 public:
  explicit HopByHop(const MessageHead& head);
  bool operator()(std::string_view name) const;

 private:
  const MessageHead& head_;
  std::array<std::string_view, 8> options_;  // the options the Connection fields list
  std::size_t option_count_ = 0;             // > 8: rescan head_ (never in practice)
};

// RFC 9110 tchar: the characters of header names and other tokens.
bool is_token_char(unsigned char c);

// ASCII case-insensitive comparison for header names and tokens. Inline: it runs for
// every header of every message.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x == y) continue;
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

}  // namespace gh::http
