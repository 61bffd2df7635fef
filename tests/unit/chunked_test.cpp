// Tests for core/chunked: the chunk-size line grammar of RFC 9112 7.1 / 7.1.1, exactly
// (whitespace before ';' and around '=' is BWS and accepted, everything else off the
// grammar refused), and chunk sizes checked against the body limit digit by digit. Each
// case also runs split at every offset: a body that arrives in pieces gets the same verdict.
#include "core/chunked.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "core/http_parser.hpp"

namespace gh::http {
namespace {

using namespace std::literals;
using Status = ChunkedDecoder::Status;

constexpr std::size_t kLineLimit = 64;

class CollectingSink final : public BodySink {
 public:
  void on_body(const char* data, std::size_t length) override { body.append(data, length); }
  std::string body;
};

struct Result {
  Status status = Status::need_more;
  std::string body;
  std::string error;
};

// Feeds `input` split at `split` (0: whole), as two reads would.
Result decode(std::string_view input, std::size_t split = 0, std::uint64_t body_limit = 0) {
  ChunkedDecoder decoder(kLineLimit, 1024);
  decoder.limit_body(body_limit);
  CollectingSink sink;
  Result result;
  for (const std::string_view piece : {input.substr(0, split), input.substr(split)}) {
    const std::string buffer(piece);  // a read buffer of its own
    const ChunkedDecoder::Step step = decoder.feed(buffer.data(), buffer.size(), sink);
    result.status = step.status;
    if (step.status != Status::need_more) break;
  }
  result.body = sink.body;
  result.error = decoder.error();
  return result;
}

std::string_view name_of(Status status) {
  constexpr std::string_view kNames[] = {"need_more", "done", "error"};
  return kNames[static_cast<int>(status)];
}

struct Case {
  const char* name;
  std::string_view size_line;  // without CRLF; six bytes of data follow
};

// RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
const Case kValidLines[] = {
    {"plain", "6"},
    {"leading_zeros", "0000000000000000000000006"},
    {"upper_case_hex", "06"},
    {"extension", "6;ext"},
    {"extension_with_value", "6;ext=1"},
    {"space_before_semicolon", "6 ;ext=1"},
    {"tab_before_semicolon", "6\t;ext"},
    {"spaces_around_equals", "6;ext = 1"},
    {"space_after_semicolon", "6; ext=1"},
    {"bws_everywhere", "6 \t; \tname \t= \tvalue \t;\tother"},
    {"several_extensions", "6;a=1;b;c=x"},
    {"space_before_second_extension", "6;a=1 ;b"},
    {"quoted_value", "6;a=\"x y;z=w\""},
    {"quoted_pair", "6;a=\"x\\\"y\\\\\""},
    {"quoted_obs_text", "6;a=\"caf\xc3\xa9\""},
    {"empty_quoted_value", "6;a=\"\""},
    {"space_after_quoted_value", "6;a=\"x\" ;b"},
    {"token_punctuation", "6;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~"},
};

const Case kInvalidLines[] = {
    {"space_before_crlf", "6 "},
    {"space_after_name_before_crlf", "6;a "},
    {"space_after_value_before_crlf", "6;a=1 "},
    {"space_inside_size", "6 6"},
    {"space_before_size", " 6"},
    {"empty_name", "6;"},
    {"empty_name_before_equals", "6;=1"},
    {"empty_value", "6;a="},
    {"two_equals", "6;a==1"},
    {"space_inside_value", "6;a=b c"},
    {"non_token_name", "6;a@b"},
    {"non_token_value", "6;a=b/c"},
    {"unterminated_quote", "6;a=\"x"},
    {"text_after_quote", "6;a=\"x\"y"},
    {"control_in_quote", "6;a=\"x\x01\""},
    {"escaped_control", "6;a=\"\\\x01\""},
    {"bare_cr_in_extension", "6;a\rb"},
    {"bare_lf_in_extension", "6;a\nb"},
    {"nul_in_extension", "6;a\0b"sv},
    {"comma_between_extensions", "6;a,b"},
    {"hex_prefix", "0x6"},
    {"sign", "+6"},
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class ValidSizeLine : public testing::TestWithParam<Case> {};
class InvalidSizeLine : public testing::TestWithParam<Case> {};

TEST_P(ValidSizeLine, DecodesAtEverySplit) {
  const std::string body = std::string(GetParam().size_line) + "\r\nabcdef\r\n0\r\n\r\n";
  for (std::size_t split = 0; split < body.size(); ++split) {
    const Result result = decode(body, split);
    ASSERT_EQ(name_of(result.status), "done") << "split " << split << ": " << result.error;
    ASSERT_EQ(result.body, "abcdef") << "split " << split;
  }
}

TEST_P(ValidSizeLine, AlsoOnTheLastChunk) {
  std::string last(GetParam().size_line);
  last.replace(last.find('6'), 1, "0");
  const Result result = decode("1\r\nx\r\n" + last + "\r\n\r\n");
  EXPECT_EQ(name_of(result.status), "done") << result.error;
}

TEST_P(InvalidSizeLine, RefusedAtEverySplit) {
  const std::string body = std::string(GetParam().size_line) + "\r\nabcdef\r\n0\r\n\r\n";
  for (std::size_t split = 0; split < body.size(); ++split) {
    const Result result = decode(body, split);
    ASSERT_EQ(name_of(result.status), "error") << "split " << split;
    ASSERT_EQ(result.body, "") << "split " << split;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ValidSizeLine, testing::ValuesIn(kValidLines),
                         [](const auto& info) { return std::string(info.param.name); });
INSTANTIATE_TEST_SUITE_P(Cases, InvalidSizeLine, testing::ValuesIn(kInvalidLines),
                         [](const auto& info) { return std::string(info.param.name); });

// The line limit covers everything but the size's digits: leading zeros (after the first
// digit) too.
TEST(ChunkedDecoder, SizeLineLimit) {
  const auto zeros_then_one = [](std::size_t zeros) {
    return decode(std::string(zeros, '0') + "1\r\nx\r\n0\r\n\r\n").status;
  };
  EXPECT_EQ(name_of(zeros_then_one(kLineLimit + 1)), "done");
  EXPECT_EQ(name_of(zeros_then_one(kLineLimit + 2)), "error");
  const std::string extension = ";" + std::string(kLineLimit - 1, 'a');
  EXPECT_EQ(name_of(decode("1" + extension + "\r\nx\r\n0\r\n\r\n").status), "done");
  EXPECT_EQ(name_of(decode("1" + extension + "a\r\nx\r\n0\r\n\r\n").status), "error");
}

// Refused at the digit that crosses the limit: nothing of the chunk reaches the sink and
// the rest of the size line is never waited for.
TEST(ChunkedDecoder, ChunkOverTheBodyLimitIsRefusedAtItsSize) {
  const std::string_view crossing = "4\r\nabcd\r\n10";
  for (std::size_t split = 0; split < crossing.size(); ++split) {
    const Result result = decode(crossing, split, 16);
    ASSERT_EQ(name_of(result.status), "error") << split;
    ASSERT_EQ(result.error, "chunked body larger than the body limit");
    ASSERT_EQ(result.body, "abcd");
  }
  ChunkedDecoder decoder(kLineLimit, 1024);
  decoder.limit_body(16);
  CollectingSink sink;
  const std::string_view at_limit = "4\r\nabcd\r\nc\r\n";
  EXPECT_EQ(name_of(decoder.feed(at_limit.data(), at_limit.size(), sink).status), "need_more");
  EXPECT_FALSE(decoder.too_large());
  const std::string_view over = "4\r\nabcd\r\n11";
  decoder.reset();
  EXPECT_EQ(name_of(decoder.feed(over.data(), over.size(), sink).status), "error");
  EXPECT_TRUE(decoder.too_large());
}

// Without a limit, a body is still bounded by what a signed 64-bit length holds, in total.
TEST(ChunkedDecoder, SizesNoSignedLengthHoldsAreRefused) {
  EXPECT_EQ(name_of(decode("7fffffffffffffff\r\nx").status), "need_more");
  for (const std::string_view refused :
       {"8000000000000000"sv, "ffffffffffffffff"sv, "10000000000000000"sv,
        "fffffffffffffffffffff"sv, "1\r\nx\r\n7fffffffffffffff"sv}) {
    const Result result = decode(refused);
    EXPECT_EQ(name_of(result.status), "error") << refused;
    EXPECT_EQ(result.error, "chunk size too large") << refused;
  }
  ChunkedDecoder decoder(kLineLimit, 1024);
  CollectingSink sink;
  decoder.feed("ffffffffffffffff", 16, sink);
  EXPECT_FALSE(decoder.too_large());  // 400, not 413: there is no limit to be over
}

}  // namespace
}  // namespace gh::http
