// Regression tests for what the fuzz targets (tests/fuzz) found. Each test names the
// target and the input file under tests/fuzz/regressions/<target>/ it comes from.
//
// Each failed (or crashed the test binary) before its fix.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"
#include "health/probe_logic.hpp"

namespace gh::health {
namespace {

// fuzz_probe_redis, regressions/probe_redis/resp-empty-line ("\r\n"): parse_resp_reply()
// takes line->substr(1) of the empty line and throws std::out_of_range. RedisProbe calls
// it from a libuv read callback, so any service at a redis check's address that answers
// with an empty line ends the process (std::terminate). An empty line is no RESP reply.
TEST(FuzzRegressions, RespEmptyLine) {
  for (const std::string input : {"\r\n", "\r\n+PONG\r\n", "*1\r\n\r\n", "*2\r\n+OK\r\n\r\n"}) {
    RespParse parsed;
    EXPECT_NO_THROW(parsed = parse_resp_reply(input)) << input;
    EXPECT_EQ(parsed.state, RespParse::State::invalid) << input;
  }
}

// Found reading the code fuzz_probe_redis runs (its inputs are too short to reach it):
// parse_resp_reply() recurses once per nested array ("*1\r\n*1\r\n..."), without a bound,
// over a buffer RedisProbe grows without a bound, so a peer sending ~400 KB of "*1\r\n"
// overflows the stack (SIGSEGV at 100,000 levels in a -O2 build). Replies to AUTH and
// PING are never nested: a small depth limit (and a cap on the bytes buffered) suffices.
TEST(FuzzRegressions, RespDeepNestingDoesNotOverflowTheStack) {
  std::string input;
  for (int i = 0; i < 1'000'000; ++i) input += "*1\r\n";
  input += "+PONG\r\n";
  // Refused (a depth limit) or parsed (without recursion): either way, an answer.
  EXPECT_NE(parse_resp_reply(input).state, RespParse::State::incomplete);
}

}  // namespace
}  // namespace gh::health

namespace gh::config {
namespace {

// fuzz_config, regressions/config/toml-unreachable: toml++ 3.3.0's
// is_non_ascii_horizontal_whitespace() reaches __builtin_unreachable() for code points
// such as U+00A7 or U+FEFE where the parser expects whitespace (upstream issues 190 and
// 295, fixed after 3.3.0). Undefined behaviour; GCC 12 and clang 14 at -O2 happen to
// return a parse error. This test passes there and aborts under GATEHOUSE_SANITIZE
// (UBSan) unless config/loader.cpp refuses such bytes before toml::parse, as it now does.
TEST(FuzzRegressions, TomlNonAsciiWhereWhitespaceGoesIsAnError) {
  // The last: regressions/config/toml-unreachable-in-bare-value, a quote inside a bare
  // value (toml++ reads on through it, so what follows is not in a string).
  const std::string inputs[] = {"certificates \xef\xbb\xbe= 1\n", "a = 1\n\xc2\xa7 = 2\n",
                                std::string("servers =-\0l\"a\xce\x9d\"U\n", 19)};
  for (const std::string& input : inputs) {
    const LoadResult result = load_string(input, "t.toml");
    EXPECT_FALSE(result.config.has_value());
    EXPECT_FALSE(result.errors.empty());
  }
}

}  // namespace
}  // namespace gh::config
