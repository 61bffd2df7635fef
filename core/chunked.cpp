#include "core/chunked.hpp"

#include <algorithm>
#include <limits>

#include "core/http_head.hpp"
#include "core/http_parser.hpp"

namespace gh::http {
namespace {

// The largest body (so also chunk) a signed 64-bit length holds: what off_t-based peers
// (nginx, most servers) and our own counters can represent.
constexpr std::uint64_t kMaxBodyBytes = std::numeric_limits<std::int64_t>::max();

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// BWS = OWS (RFC 9110 5.6.3).
bool is_bws(unsigned char c) {
  return c == ' ' || c == '\t';
}

// qdtext (RFC 9110 5.6.4): HTAB, SP, VCHAR but '"' and '\', obs-text.
bool is_qdtext(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f);
}

// What a quoted-pair may escape: HTAB, SP, VCHAR, obs-text.
bool is_quotable(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

// Trailer field values: visible ASCII, SP, HTAB and obs-text; no other controls.
bool is_value_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

}  // namespace

void ChunkedDecoder::reset() {
  state_ = State::size_first;
  remaining_ = announced_ = 0;
  line_bytes_ = trailer_bytes_ = 0;
  too_large_ = false;
  error_ = "";
}

bool ChunkedDecoder::fail(const char* why) {
  state_ = State::error;
  error_ = why;
  return false;
}

ChunkedDecoder::Step ChunkedDecoder::feed(const char* data, std::size_t length, BodySink& sink) {
  std::size_t i = 0;
  while (i < length) {
    switch (state_) {
      case State::data: {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, length - i));
        sink.on_body(data + i, n);
        remaining_ -= n;
        i += n;
        if (remaining_ == 0) state_ = State::data_cr;
        break;
      }
      case State::done:
        return {Status::done, i};
      case State::error:
        return {Status::error, i};
      default:
        if (!consume(static_cast<unsigned char>(data[i]))) return {Status::error, i};
        ++i;
        if (state_ == State::done) return {Status::done, i};
    }
  }
  if (state_ == State::error) return {Status::error, i};
  return {Status::need_more, i};
}

bool ChunkedDecoder::consume(unsigned char c) {
  switch (state_) {
    case State::size_first:
    case State::size:
      return consume_size(c);
    case State::size_lf:
    case State::data_cr:
    case State::data_lf:
    case State::final_lf:
      return consume_line_end(c);
    case State::trailer_start:
    case State::trailer_name:
    case State::trailer_value:
    case State::trailer_lf:
      return consume_trailer(c);
    default:  // the extension states
      return consume_extension(c);
  }
}

bool ChunkedDecoder::consume_size(unsigned char c) {
  const int digit = hex_value(c);
  if (digit >= 0) return add_size_digit(digit);
  if (state_ == State::size_first) return fail("invalid chunk size");
  if (c == '\r') {
    state_ = State::size_lf;
    return true;
  }
  if (c != ';' && !is_bws(c)) return fail("invalid chunk size");
  return consume_extension(c);  // "6 ;a" (BWS, RFC 9112 7.1.1) or "6;a"
}

// Digit by digit, so a chunk that cannot fit is refused at once, before the rest of its
// size line and any of its data.
bool ChunkedDecoder::add_size_digit(int digit) {
  const bool leading_zero = state_ == State::size && remaining_ == 0 && digit == 0;
  state_ = State::size;
  if (leading_zero) return count_line_byte();
  const bool limited = body_limit_ != 0 && body_limit_ <= kMaxBodyBytes;
  const std::uint64_t cap = limited ? body_limit_ : kMaxBodyBytes;
  const std::uint64_t allowance = announced_ < cap ? cap - announced_ : 0;
  const auto value = static_cast<std::uint64_t>(digit);
  if (remaining_ > allowance >> 4 || (remaining_ << 4) + value > allowance) {
    too_large_ = limited;
    return fail(limited ? "chunked body larger than the body limit" : "chunk size too large");
  }
  remaining_ = (remaining_ << 4) | value;
  return true;
}

bool ChunkedDecoder::count_line_byte() {
  if (++line_bytes_ > extension_limit_) return fail("chunk extension too long");
  return true;
}

// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ), entered
// at the first BWS or ';' after the size. Every byte but the CR counts against the limit.
bool ChunkedDecoder::consume_extension(unsigned char c) {
  if (c != '\r' && !count_line_byte()) return false;
  const State next = next_extension_state(state_, c);
  if (next == State::error) return fail("invalid chunk extension");
  state_ = next;
  return true;
}

// After a chunk size, an extension name or an extension value: BWS (then `on_bws`), the
// next extension, or the end of the line.
ChunkedDecoder::State ChunkedDecoder::after_element(unsigned char c, State on_bws) {
  if (is_bws(c)) return on_bws;
  if (c == ';') return State::ext_name_start;
  if (c == '\r') return State::size_lf;
  return State::error;
}

ChunkedDecoder::State ChunkedDecoder::next_extension_state(State state, unsigned char c) {
  switch (state) {
    case State::size:
    case State::ext_value_end:
      return after_element(c, State::ext_bws);
    case State::ext_name:
      if (is_token_char(c)) return state;
      if (c == '=') return State::ext_value_start;
      return after_element(c, State::ext_name_bws);
    case State::ext_token_value:
      if (is_token_char(c)) return state;
      return after_element(c, State::ext_bws);
    case State::ext_bws:
      if (is_bws(c)) return state;
      return c == ';' ? State::ext_name_start : State::error;
    case State::ext_name_bws:
      if (is_bws(c)) return state;
      if (c == '=') return State::ext_value_start;
      return c == ';' ? State::ext_name_start : State::error;
    case State::ext_name_start:
      if (is_bws(c)) return state;
      return is_token_char(c) ? State::ext_name : State::error;
    case State::ext_value_start:
      if (is_bws(c)) return state;
      if (c == '"') return State::ext_quoted_value;
      return is_token_char(c) ? State::ext_token_value : State::error;
    case State::ext_quoted_value:
      if (c == '"') return State::ext_value_end;
      if (c == '\\') return State::ext_quoted_pair;
      return is_qdtext(c) ? state : State::error;
    case State::ext_quoted_pair:
      return is_quotable(c) ? State::ext_quoted_value : State::error;
    default:
      return State::error;
  }
}

bool ChunkedDecoder::consume_line_end(unsigned char c) {
  switch (state_) {
    case State::size_lf:
      if (c != '\n') return fail("chunk size line not ended by CRLF");
      announced_ += remaining_;
      line_bytes_ = 0;
      state_ = remaining_ == 0 ? State::trailer_start : State::data;
      return true;
    case State::data_cr:
      if (c != '\r') return fail("chunk data not followed by CRLF");
      state_ = State::data_lf;
      return true;
    case State::data_lf:
      if (c != '\n') return fail("chunk data not followed by CRLF");
      state_ = State::size_first;
      return true;
    default:  // State::final_lf
      if (c != '\n') return fail("chunked body not ended by CRLF");
      state_ = State::done;
      return true;
  }
}

bool ChunkedDecoder::consume_trailer(unsigned char c) {
  if (++trailer_bytes_ > trailer_limit_) return fail("trailer section too large");
  switch (state_) {
    case State::trailer_start:
      if (c == '\r') {
        state_ = State::final_lf;
      } else if (is_token_char(c)) {
        state_ = State::trailer_name;
      } else {
        return fail("invalid trailer field");
      }
      return true;
    case State::trailer_name:
      if (c == ':') {
        state_ = State::trailer_value;
      } else if (!is_token_char(c)) {
        return fail("invalid trailer field");
      }
      return true;
    case State::trailer_value:
      if (c == '\r') {
        state_ = State::trailer_lf;
      } else if (!is_value_char(c)) {
        return fail("invalid trailer field");
      }
      return true;
    default:  // State::trailer_lf
      if (c != '\n') return fail("trailer field not ended by CRLF");
      state_ = State::trailer_start;
      return true;
  }
}

}  // namespace gh::http
