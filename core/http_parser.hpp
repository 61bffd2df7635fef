// HttpParser: llhttp driven in strict mode, collecting one message head at a time into a
// MessageHead and handing body bytes to a sink as views into the caller's buffer.
//
// The caller validates a head with scan_head() before feeding it, then feeds the rest of
// the message as it arrives. on_message_complete pauses the parser so that bytes of a
// pipelined next message stay unconsumed; begin_message() starts the next one.
// One parser per connection direction; loop thread only.
#pragma once

#include <llhttp.h>

#include <cstddef>
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
  // For a response to HEAD (or any bodiless exchange): llhttp must not expect a body.
  void expect_no_body() { skip_body_ = true; }

  // Feeds bytes of the current message. The first call must hold exactly the head as
  // measured by scan_head (so the head's views stay in one contiguous buffer).
  Step execute(const char* data, std::size_t length, BodySink* sink);
  // The connection closed: completes a message delimited by close. True if complete.
  bool finish();

  // Gives back the header list's capacity (idle connections).
  void release_memory() { std::vector<Header>().swap(head_.headers); }

  const MessageHead& head() const { return head_; }
  std::string_view reason() const { return reason_; }
  bool head_complete() const { return head_complete_; }
  bool message_complete() const { return message_complete_; }
  const char* error_reason() const;

 private:
  static int on_url(llhttp_t* p, const char* at, std::size_t len);
  static int on_status(llhttp_t* p, const char* at, std::size_t len);
  static int on_method(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t len);
  static int on_message_complete(llhttp_t* p);
  Step feed_chunked(const char* data, std::size_t length, std::size_t already_consumed);
  static HttpParser& self(llhttp_t* p) { return *static_cast<HttpParser*>(p->data); }

  llhttp_t parser_{};
  llhttp_settings_t settings_{};
  HeadKind kind_;
  ChunkedDecoder chunked_;
  bool chunked_body_ = false;  // head complete; body goes through chunked_
  MessageHead head_;
  std::string_view reason_;
  bool in_value_ = false;
  bool head_complete_ = false;
  bool message_complete_ = false;
  bool skip_body_ = false;
  BodySink* sink_ = nullptr;
};

}  // namespace gh::http
