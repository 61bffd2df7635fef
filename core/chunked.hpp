// ChunkedDecoder: a strict decoder for the chunked transfer coding (RFC 9112 7.1), used
// instead of llhttp's for bodies because llhttp 8.1 accepts malformed framing (chunk data
// not followed by CRLF, invalid trailer fields) that a proxy must reject: a peer that
// disagrees about where a chunk ends is a request-smuggling vector.
//
// Accepts exactly the grammar, no more and no less:
//   chunk-size [ chunk-ext ] CRLF, chunk-size = 1*HEXDIG (leading zeros allowed),
//   chunk-ext  = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
// so whitespace goes only before ';' and around '=' (RFC 9112 7.1.1); CRLF line endings
// only; data of exactly chunk-size bytes followed by CRLF; a last chunk "0"; then trailer
// fields (token ":" value, validated like header fields, then dropped) and the final CRLF.
// Sizes are checked digit by digit, so an oversized chunk is refused at its size line,
// before any of its data: beyond the body limit (too_large()), or a body beyond 2^63 - 1
// bytes in total, which no signed 64-bit length can hold. Extensions are only checked:
// bodies are re-chunked when forwarded. Pure; decoded bytes go to the sink as views.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gh::http {

class BodySink;

class ChunkedDecoder {
 public:
  enum class Status { need_more, done, error };
  struct Step {
    Status status = Status::need_more;
    std::size_t consumed = 0;  // bytes used; on done, the rest belongs to the next message
  };

  // `extension_limit`: bytes of a chunk-size line beyond its significant digits (leading
  // zeros, whitespace, extensions); `trailer_limit`: bytes of the trailer section.
  ChunkedDecoder(std::size_t extension_limit, std::size_t trailer_limit)
      : extension_limit_(extension_limit), trailer_limit_(trailer_limit) {}

  // The most body bytes the chunk sizes of one message may add up to; 0: no limit but
  // 2^63 - 1. Kept across reset().
  void limit_body(std::uint64_t max_bytes) { body_limit_ = max_bytes; }

  void reset();
  Step feed(const char* data, std::size_t length, BodySink& sink);
  const char* error() const { return error_; }
  // The error is a chunk size over the body limit (413 rather than 400).
  bool too_large() const { return too_large_; }

 private:
  enum class State : std::uint8_t {
    size_first,  // first hex digit of a chunk size
    size,        // more hex digits, BWS, ';' or CR
    ext_bws,     // BWS after the size or a value: more of it or ';'
    ext_name_start,
    ext_name,
    ext_name_bws,  // BWS after a name: more of it, '=' or ';'
    ext_value_start,
    ext_token_value,
    ext_quoted_value,
    ext_quoted_pair,  // the byte after '\' in a quoted value
    ext_value_end,    // after a value: BWS, ';' or CR
    size_lf,          // LF after the size line
    data,             // chunk bytes
    data_cr,          // CR after chunk data
    data_lf,          // LF after chunk data
    trailer_start,    // start of a trailer line or the final CRLF
    trailer_name,
    trailer_value,
    trailer_lf,
    final_lf,
    done,
    error
  };
  bool consume(unsigned char c);  // one framing byte (not chunk data); false: error
  bool consume_size(unsigned char c);
  bool consume_extension(unsigned char c);
  static State next_extension_state(State state, unsigned char c);
  static State after_element(unsigned char c, State on_bws);
  bool consume_line_end(unsigned char c);
  bool consume_trailer(unsigned char c);
  bool add_size_digit(int digit);
  bool count_line_byte();
  bool fail(const char* why);

  std::size_t extension_limit_;
  std::size_t trailer_limit_;
  std::uint64_t body_limit_ = 0;
  State state_ = State::size_first;
  std::uint64_t remaining_ = 0;  // chunk bytes still to come / the size being read
  std::uint64_t announced_ = 0;  // sum of the chunk sizes read before this one
  std::size_t line_bytes_ = 0;   // of the size line, beyond its significant digits
  std::size_t trailer_bytes_ = 0;
  bool too_large_ = false;
  const char* error_ = "";
};

}  // namespace gh::http
