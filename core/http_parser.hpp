// HttpParser: one message at a time, its head recorded by the strict HeadScanner and its
// body handed to a sink as views into the caller's buffer.
//
// The caller scans a head with scan_head() (validation and field recording in one walk
// over the bytes), then feeds exactly the head's bytes to execute(), then the rest of the
// message as it arrives. A message ends at its framing (Content-Length, chunked, or the
// connection closing); bytes of a pipelined next message stay unconsumed;
// begin_message() starts the next one.
//
// llhttp is no longer the head parser: it re-parsed every head the scanner had already
// validated more strictly (about 4,000 instructions per proxied request, counted with
// bench/callgrind.py). What llhttp refused beyond the scanner is still refused: a request
// line is still run through llhttp (its request-target grammar, and its method list for
// the methods it knows; all but the common methods with a "/..." target, which llhttp
// accepts whatever visible characters follow, as a unit test checks). A method llhttp
// does not know is proxied when it is a token (RFC 9110 9.1), except PRI and a known
// method in other letter case ("head"). A repeated Content-Length,
// Content-Length together with Transfer-Encoding, or a request whose last transfer
// coding is not chunked are errors here as they were there.
// One parser per connection direction; loop thread only.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/chunked.hpp"
#include "core/http_head.hpp"

namespace gh::http {

class BodySink {
 public:
  virtual ~BodySink() = default;
  // Decoded body bytes (chunk framing removed). Views die after execute() returns.
  virtual void on_body(const char* data, std::size_t length) = 0;
};

class HttpParser {
 public:
  enum class Outcome { need_more, message_complete, error };
  struct Step {
    Outcome outcome = Outcome::need_more;
    std::size_t consumed = 0;  // bytes of the input that belong to this message
  };

  // Chunked bodies are decoded by ChunkedDecoder (strict), not llhttp; trailers are
  // checked and dropped.
  HttpParser(HeadKind kind, std::size_t chunk_extension_limit, std::size_t trailer_limit = 8192);
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  // Starts a new message; clears the head.
  void begin_message();
  // Chunked bodies whose chunk sizes add up to more than `max_bytes` are refused at the
  // size line that crosses it, before its data (error_status() 413); 0: no limit (but
  // 2^63 - 1). A Content-Length is the caller's to check. Kept across messages.
  void limit_body(std::uint64_t max_bytes) { chunked_.limit_body(max_bytes); }
  // For a response to HEAD (or any bodiless exchange): no body follows the head.
  void expect_no_body() { skip_body_ = true; }

  // Validates the head at the start of `data` like http::scan_head() and records its
  // fields into head() (views into `data`). Call again with more bytes (same start) while
  // incomplete; each call scans from the start, so the bytes may move in between.
  HeadScan scan_head(std::string_view data, const HeadLimits& limits);

  // Feeds bytes of the current message. The first call must hold exactly the head as
  // measured by scan_head(); it is not scanned again if scan_head() just recorded it
  // from the same bytes (else it is scanned here with default limits).
  Step execute(const char* data, std::size_t length, BodySink* sink);
  // The connection closed: completes a message delimited by close. True if complete.
  bool finish();

  // Gives back the header list's capacity (idle connections).
  void release_memory() { std::vector<Header>().swap(head_.headers); }

  const MessageHead& head() const { return head_; }
  std::string_view reason() const { return head_.reason; }
  bool head_complete() const { return head_complete_; }
  bool message_complete() const { return message_complete_; }
  const char* error_reason() const;
  // The status for the error of a request: 413 for a chunked body over limit_body(),
  // else 400.
  int error_status() const;

 private:
  // How the body after the head ends.
  enum class Body { none, content_length, chunked, until_close };

  Step start_message(const char* data, std::size_t length);
  bool check_request_line(const char* data, std::size_t length);
  bool derive_body();
  Step feed_body(const char* data, std::size_t length, std::size_t already_consumed);
  Step feed_chunked(const char* data, std::size_t length, std::size_t already_consumed);
  Step fail(const char* reason);    // an error Step
  bool refuse(const char* reason);  // false

  llhttp_t line_parser_{};  // vets request lines only
  llhttp_settings_t line_settings_{};
  HeadKind kind_;
  ChunkedDecoder chunked_;
  MessageHead head_;
  std::string_view scanned_;  // the bytes scan_head() last found a complete head in
  Body body_ = Body::none;
  std::uint64_t body_left_ = 0;  // Body::content_length
  const char* error_ = nullptr;  // our own error, else the decoder's or llhttp's
  bool head_complete_ = false;
  bool message_complete_ = false;
  bool skip_body_ = false;
  BodySink* sink_ = nullptr;
};

}  // namespace gh::http
