// Fuzz target: ChunkedDecoder (core/chunked.*). The input is used twice:
//   1. as a chunked body: the verdict, the bytes consumed and the decoded bytes are the
//      same in one piece, one byte at a time and in pieces at derived cut points; a body
//      the decoder finishes re-reads (by a plain walk over its size lines) as chunks whose
//      sizes add up to the output length and whose data is the output; "need more"
//      consumed everything it was given; an error names a cause and consumed no more
//      than it was given;
//   2. as a payload: cut into chunks (sizes from the input), encoded the way senders do
//      (hex sizes in either case, leading zeros, extensions, trailers), it decodes to
//      exactly the payload and the decoder stops exactly at the end of the body.
#include <string>

#include "core/chunked.hpp"
#include "core/http_parser.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;
using gh::http::ChunkedDecoder;

struct Collect final : gh::http::BodySink {
  std::string bytes;
  void on_body(const char* data, std::size_t length) override {
    GH_FUZZ_CHECK(length > 0, "empty on_body");
    bytes.append(data, length);
  }
};

struct Outcome {
  ChunkedDecoder::Status status = ChunkedDecoder::Status::need_more;
  std::size_t consumed = 0;  // over the whole input
  std::string output;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

std::string describe(const Outcome& o) {
  const char* status = o.status == ChunkedDecoder::Status::done    ? "done"
                       : o.status == ChunkedDecoder::Status::error ? "error"
                                                                   : "need_more";
  return std::string(status) + " consumed=" + std::to_string(o.consumed) +
         " out=" + std::to_string(o.output.size()) + " " + o.error;
}

struct Limits {
  std::size_t extension = 1024;  // config's limits.chunk_extension default
  std::size_t trailer = 8192;    // HttpParser's default
};

Limits limits_for(std::string_view input) {
  Limits limits;
  const std::uint64_t h = gh::fuzz::input_hash(input);
  if (h % 4 == 0) {
    limits.extension = (h >> 8) % 32;
    limits.trailer = (h >> 16) % 64;
  }
  return limits;
}

// Feeds `pieces` in order; stops at the first verdict other than need_more.
Outcome decode(const std::vector<std::string_view>& pieces, const Limits& limits) {
  ChunkedDecoder decoder(limits.extension, limits.trailer);
  Collect sink;
  Outcome out;
  for (const std::string_view piece : pieces) {
    const ChunkedDecoder::Step step = decoder.feed(piece.data(), piece.size(), sink);
    GH_FUZZ_CHECK(step.consumed <= piece.size(), describe(out));
    out.status = step.status;
    out.consumed += step.consumed;
    if (step.status == ChunkedDecoder::Status::need_more) {
      GH_FUZZ_CHECK(step.consumed == piece.size(), "need_more left bytes unconsumed");
      continue;
    }
    if (step.status == ChunkedDecoder::Status::error) {
      out.error = decoder.error();
      GH_FUZZ_CHECK(!out.error.empty(), "error without a cause");
    }
    break;
  }
  out.output = std::move(sink.bytes);
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A body the decoder accepted, walked again: the chunk data it holds.
std::string walk_accepted(std::string_view body) {
  std::string data;
  std::size_t at = 0;
  for (;;) {
    std::uint64_t size = 0;
    std::size_t digits = 0;
    std::size_t significant = 0;  // leading zeros are allowed (RFC 9112 §7.1: 1*HEXDIG)
    for (; at < body.size() && hex_value(body[at]) >= 0; ++at, ++digits) {
      if (size > 0 || body[at] != '0') ++significant;
      size = size * 16 + static_cast<std::uint64_t>(hex_value(body[at]));
    }
    GH_FUZZ_CHECK(digits > 0, "accepted a size line without digits");
    GH_FUZZ_CHECK(significant <= 16, "accepted a chunk size beyond 64 bits");
    const std::size_t line_end = body.find("\r\n", at);
    GH_FUZZ_CHECK(line_end != std::string_view::npos, "accepted a size line without CRLF");
    at = line_end + 2;
    if (size == 0) break;
    GH_FUZZ_CHECK(size <= body.size() - at, "accepted a chunk larger than the body");
    data.append(body.substr(at, static_cast<std::size_t>(size)));
    at += static_cast<std::size_t>(size);
    GH_FUZZ_CHECK(body.substr(at, 2) == "\r\n", "accepted chunk data without CRLF");
    at += 2;
  }
  // Trailer fields, then the empty line that ends the body at its very last byte.
  for (;;) {
    const std::size_t line_end = body.find("\r\n", at);
    GH_FUZZ_CHECK(line_end != std::string_view::npos, "accepted a trailer line without CRLF");
    if (line_end == at) {
      GH_FUZZ_CHECK(at + 2 == body.size(), "the final CRLF is not the end of the body");
      break;
    }
    GH_FUZZ_CHECK(body.substr(at, line_end - at).find(':') != std::string_view::npos,
                  "accepted a trailer line without colon");
    at = line_end + 2;
  }
  return data;
}

void check_raw(std::string_view input) {
  const Limits limits = limits_for(input);
  const Outcome whole = decode({input}, limits);

  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  const Outcome bytewise = decode(bytes, limits);
  GH_FUZZ_CHECK(whole == bytewise, describe(whole) + " vs byte-wise " + describe(bytewise));
  const Outcome split = decode(gh::fuzz::pieces(input, gh::fuzz::split_points(input, 3)), limits);
  GH_FUZZ_CHECK(whole == split, describe(whole) + " vs split " + describe(split));

  if (whole.status == ChunkedDecoder::Status::done) {
    const std::string data = walk_accepted(input.substr(0, whole.consumed));
    GH_FUZZ_CHECK(data == whole.output, escaped(input) + ": " + describe(whole));
  } else {
    // Whatever was decoded so far was taken from the input.
    GH_FUZZ_CHECK(whole.output.size() <= whole.consumed, describe(whole));
  }
}

// Encodes `payload` as a chunked body, with the shape (chunk sizes, digit case, leading
// zeros, extensions, trailers) taken from `shape` bytes.
std::string encode(std::string_view payload, std::string_view shape, std::size_t& trailer_bytes) {
  std::string body;
  std::size_t next_shape = 0;
  auto pick = [&]() -> unsigned {
    if (shape.empty()) return 0;
    return static_cast<unsigned char>(shape[next_shape++ % shape.size()]);
  };
  static constexpr char kLower[] = "0123456789abcdef";
  static constexpr char kUpper[] = "0123456789ABCDEF";
  auto size_line = [&](std::size_t size) {
    const unsigned style = pick();
    std::string digits;
    do {
      digits.insert(digits.begin(), ((style & 1) ? kUpper : kLower)[size % 16]);
      size /= 16;
    } while (size > 0);
    body.append(style >> 5, '0');  // up to 7 leading zeros, within 16 digits
    body += digits;
    if (style & 2) body += ";name=value";
    if (style & 4) body += ";q=\"quoted string\"";
    body += "\r\n";
  };
  std::size_t at = 0;
  while (at < payload.size()) {
    const std::size_t size = std::min<std::size_t>(payload.size() - at, 1 + pick() * 3);
    size_line(size);
    body.append(payload.substr(at, size));
    body += "\r\n";
    at += size;
  }
  size_line(0);
  trailer_bytes = 0;
  if (pick() & 1) {
    const std::string trailer = "X-Checksum: 1234\r\nX-Other:\r\n";
    trailer_bytes = trailer.size();
    body += trailer;
  }
  body += "\r\n";
  return body;
}

void check_round_trip(std::string_view input) {
  const std::size_t shape_size = std::min<std::size_t>(input.size(), 8);
  const std::string_view shape = input.substr(0, shape_size);
  const std::string_view payload = input.substr(shape_size);
  std::size_t trailer_bytes = 0;
  std::string body = encode(payload, shape, trailer_bytes);
  body += "GET /next HTTP/1.1\r\n";  // a pipelined message after the body stays unread

  const Limits limits;  // roomy enough for what encode() writes
  const std::string_view view = body;
  for (const auto& pieces : {std::vector<std::string_view>{view},
                             gh::fuzz::pieces(view, gh::fuzz::split_points(view, 4))}) {
    const Outcome out = decode(pieces, limits);
    GH_FUZZ_CHECK(out.status == ChunkedDecoder::Status::done, escaped(body) + ": " + describe(out));
    GH_FUZZ_CHECK(out.consumed + 20 == body.size(), escaped(body) + ": " + describe(out));
    GH_FUZZ_CHECK(out.output == payload, escaped(body) + ": output differs from the payload");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_raw(input);
  check_round_trip(input);
  return 0;
}
