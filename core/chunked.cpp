#include "core/chunked.hpp"

#include <algorithm>

#include "core/http_head.hpp"
#include "core/http_parser.hpp"

namespace gh::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Field values and extensions: visible ASCII, SP, HTAB and obs-text; no other controls.
bool is_value_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

}  // namespace

void ChunkedDecoder::reset() {
  state_ = State::size_first;
  remaining_ = 0;
  size_digits_ = 0;
  extension_bytes_ = trailer_bytes_ = 0;
  error_ = "";
}

ChunkedDecoder::Step ChunkedDecoder::fail(const char* why, std::size_t consumed) {
  state_ = State::error;
  error_ = why;
  return {Status::error, consumed};
}

ChunkedDecoder::Step ChunkedDecoder::feed(const char* data, std::size_t length, BodySink& sink) {
  std::size_t i = 0;
  while (i < length) {
    const auto c = static_cast<unsigned char>(data[i]);
    switch (state_) {
      case State::size_first:
      case State::size: {
        int v = hex_value(static_cast<char>(c));
        if (v >= 0) {
          if (++size_digits_ > 16) return fail("chunk size too large", i);
          remaining_ = (remaining_ << 4) | static_cast<unsigned>(v);
          state_ = State::size;
        } else if (state_ == State::size_first) {
          return fail("invalid chunk size", i);
        } else if (c == ';') {
          state_ = State::extension;
          extension_bytes_ = 1;
        } else if (c == '\r') {
          state_ = State::size_lf;
        } else {
          return fail("invalid chunk size", i);
        }
        ++i;
        break;
      }
      case State::extension:
        if (c == '\r') {
          state_ = State::size_lf;
        } else if (!is_value_char(c)) {
          return fail("invalid chunk extension", i);
        } else if (++extension_bytes_ > extension_limit_) {
          return fail("chunk extension too long", i);
        }
        ++i;
        break;
      case State::size_lf:
        if (c != '\n') return fail("chunk size line not ended by CRLF", i);
        ++i;
        size_digits_ = 0;
        extension_bytes_ = 0;
        state_ = remaining_ == 0 ? State::trailer_start : State::data;
        break;
      case State::data: {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, length - i));
        sink.on_body(data + i, n);
        remaining_ -= n;
        i += n;
        if (remaining_ == 0) state_ = State::data_cr;
        break;
      }
      case State::data_cr:
        if (c != '\r') return fail("chunk data not followed by CRLF", i);
        state_ = State::data_lf;
        ++i;
        break;
      case State::data_lf:
        if (c != '\n') return fail("chunk data not followed by CRLF", i);
        state_ = State::size_first;
        ++i;
        break;
      case State::trailer_start:
        if (c == '\r') {
          state_ = State::final_lf;
        } else if (is_token_char(c)) {
          state_ = State::trailer_name;
        } else {
          return fail("invalid trailer field", i);
        }
        ++trailer_bytes_;
        ++i;
        break;
      case State::trailer_name:
        if (c == ':') {
          state_ = State::trailer_value;
        } else if (!is_token_char(c)) {
          return fail("invalid trailer field", i);
        }
        ++trailer_bytes_;
        ++i;
        break;
      case State::trailer_value:
        if (c == '\r') {
          state_ = State::trailer_lf;
        } else if (!is_value_char(c)) {
          return fail("invalid trailer field", i);
        }
        ++trailer_bytes_;
        ++i;
        break;
      case State::trailer_lf:
        if (c != '\n') return fail("trailer field not ended by CRLF", i);
        state_ = State::trailer_start;
        ++trailer_bytes_;
        ++i;
        break;
      case State::final_lf:
        if (c != '\n') return fail("chunked body not ended by CRLF", i);
        state_ = State::done;
        return {Status::done, i + 1};
      case State::done:
        return {Status::done, i};
      case State::error:
        return {Status::error, i};
    }
    if (trailer_bytes_ > trailer_limit_) return fail("trailer section too large", i);
  }
  if (state_ == State::done) return {Status::done, i};
  return {Status::need_more, i};
}

}  // namespace gh::http
