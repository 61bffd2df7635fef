// ChunkedDecoder: a strict decoder for the chunked transfer coding (RFC 9112 7.1), used
// instead of llhttp's for bodies because llhttp 8.1 accepts malformed framing (chunk data
// not followed by CRLF, invalid trailer fields) that a proxy must reject: a peer that
// disagrees about where a chunk ends is a request-smuggling vector.
//
// Accepts: chunk-size = 1*16HEXDIG, optional extensions (";" ...) up to a byte limit,
// CRLF line endings only, data of exactly chunk-size bytes followed by CRLF, a last
// chunk "0", then trailer fields (token ":" value, validated like header fields, then
// dropped) and the final CRLF. Pure; decoded bytes go to the sink as views.
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

  ChunkedDecoder(std::size_t extension_limit, std::size_t trailer_limit)
      : extension_limit_(extension_limit), trailer_limit_(trailer_limit) {}

  void reset();
  Step feed(const char* data, std::size_t length, BodySink& sink);
  const char* error() const { return error_; }

 private:
  enum class State {
    size_first,     // first hex digit of a chunk size
    size,           // more hex digits, ';' or CR
    extension,      // ";..." up to CR
    size_lf,        // LF after the size line
    data,           // chunk bytes
    data_cr,        // CR after chunk data
    data_lf,        // LF after chunk data
    trailer_start,  // start of a trailer line or the final CRLF
    trailer_name,
    trailer_value,
    trailer_lf,
    final_lf,
    done,
    error
  };
  Step fail(const char* why, std::size_t consumed);

  std::size_t extension_limit_;
  std::size_t trailer_limit_;
  State state_ = State::size_first;
  std::uint64_t remaining_ = 0;  // chunk bytes still to come / the size being read
  unsigned size_digits_ = 0;
  std::size_t extension_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  const char* error_ = "";
};

}  // namespace gh::http
