#include "core/http_parser.hpp"

namespace gh::http {
namespace {

// Extends `view` with a span that llhttp delivered in pieces; the pieces are contiguous
// because a head is always fed in one buffer.
void extend(std::string_view& view, const char* at, std::size_t len) {
  if (view.empty()) {
    view = {at, len};
  } else {
    view = {view.data(), static_cast<std::size_t>(at + len - view.data())};
  }
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

HttpParser::HttpParser(HeadKind kind, std::size_t chunk_extension_limit, std::size_t trailer_limit)
    : kind_(kind), chunked_(chunk_extension_limit, trailer_limit) {
  llhttp_settings_init(&settings_);
  settings_.on_url = on_url;
  settings_.on_status = on_status;
  settings_.on_method = on_method;
  settings_.on_header_field = on_header_field;
  settings_.on_header_value = on_header_value;
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_body = on_body;
  settings_.on_message_complete = on_message_complete;
  llhttp_init(&parser_, kind == HeadKind::request ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

void HttpParser::begin_message() {
  llhttp_reset(&parser_);
  parser_.data = this;
  head_.clear();
  reason_ = {};
  in_value_ = false;
  head_complete_ = message_complete_ = skip_body_ = chunked_body_ = false;
  chunked_.reset();
}

HttpParser::Step HttpParser::execute(const char* data, std::size_t length, BodySink* sink) {
  sink_ = sink;
  if (chunked_body_) return feed_chunked(data, length, 0);
  llhttp_errno_t err = llhttp_execute(&parser_, data, length);
  if (err == HPE_OK) return {Outcome::need_more, length};
  if (err == HPE_PAUSED) {
    auto consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
    if (message_complete_) return {Outcome::message_complete, consumed};
    if (chunked_body_) return feed_chunked(data + consumed, length - consumed, consumed);
  }
  return {Outcome::error, 0};
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
  if (message_complete_) return true;
  if (chunked_body_) return false;
  // on_message_complete answers HPE_PAUSED, which llhttp_finish passes back.
  llhttp_errno_t err = llhttp_finish(&parser_);
  return (err == HPE_OK || err == HPE_PAUSED) && message_complete_;
}

const char* HttpParser::error_reason() const {
  if (chunked_body_ && *chunked_.error()) return chunked_.error();
  const char* reason = llhttp_get_error_reason(&parser_);
  return reason ? reason : "malformed message";
}

int HttpParser::on_url(llhttp_t* p, const char* at, std::size_t len) {
  extend(self(p).head_.target, at, len);
  return 0;
}

int HttpParser::on_status(llhttp_t* p, const char* at, std::size_t len) {
  extend(self(p).reason_, at, len);
  return 0;
}

int HttpParser::on_method(llhttp_t* p, const char* at, std::size_t len) {
  extend(self(p).head_.method, at, len);
  return 0;
}

int HttpParser::on_header_field(llhttp_t* p, const char* at, std::size_t len) {
  HttpParser& s = self(p);
  if (s.in_value_ || s.head_.headers.empty()) {
    s.head_.headers.push_back({});
    s.in_value_ = false;
  }
  extend(s.head_.headers.back().name, at, len);
  return 0;
}

int HttpParser::on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  HttpParser& s = self(p);
  s.in_value_ = true;
  extend(s.head_.headers.back().value, at, len);
  return 0;
}

int HttpParser::on_headers_complete(llhttp_t* p) {
  HttpParser& s = self(p);
  for (Header& h : s.head_.headers) h.value = trim_ows(h.value);
  s.head_.version_minor = p->http_minor;
  if (s.kind_ == HeadKind::response) s.head_.status = p->status_code;
  s.head_complete_ = true;
  const bool bodiless_status =
      s.kind_ == HeadKind::response &&
      (p->status_code < 200 || p->status_code == 204 || p->status_code == 304);
  s.chunked_body_ = (p->flags & F_CHUNKED) && !s.skip_body_ && !bodiless_status;
  // 1 tells llhttp the message has no body: a response to HEAD, or a chunked body that
  // ChunkedDecoder takes over.
  return s.skip_body_ || s.chunked_body_ ? 1 : 0;
}

int HttpParser::on_body(llhttp_t* p, const char* at, std::size_t len) {
  HttpParser& s = self(p);
  if (s.sink_) s.sink_->on_body(at, len);
  return 0;
}

int HttpParser::on_message_complete(llhttp_t* p) {
  HttpParser& s = self(p);
  if (!s.chunked_body_) s.message_complete_ = true;
  return HPE_PAUSED;  // leave pipelined bytes (or the chunked body) for later
}

}  // namespace gh::http
