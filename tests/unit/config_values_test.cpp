// Unit tests for config/ value parsers: durations, sizes, host:port.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "tests/unit/config_test_support.hpp"

namespace gh::config {
namespace {

using namespace std::chrono_literals;
using namespace gh::config::testing;

std::string duration_error(std::string_view text) {
  auto result = parse_duration(text);
  EXPECT_FALSE(result.has_value()) << text;
  return result ? "" : result.error().message;
}

std::string size_error(std::string_view text) {
  auto result = parse_size(text);
  EXPECT_FALSE(result.has_value()) << text;
  return result ? "" : result.error().message;
}

std::string address_error(std::string_view text) {
  auto result = parse_host_port(text);
  EXPECT_FALSE(result.has_value()) << text;
  return result ? "" : result.error().message;
}

// --- Durations ----------------------------------------------------------------------------

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(parse_duration("250ms").value(), 250ms);
  EXPECT_EQ(parse_duration("30s").value(), 30s);
  EXPECT_EQ(parse_duration("5m").value(), 5min);
  EXPECT_EQ(parse_duration("1h").value(), 1h);
  EXPECT_EQ(parse_duration("2d").value(), 48h);
  EXPECT_EQ(parse_duration("0s").value(), 0ms);
}

TEST(ParseDuration, RejectsMissingOrUnknownUnits) {
  EXPECT_EQ(duration_error("30"), "invalid duration \"30\": missing unit (ms, s, m, h or d)");
  EXPECT_EQ(duration_error("30x"),
            "invalid duration \"30x\": unknown unit \"x\" (ms, s, m, h or d)");
  EXPECT_EQ(duration_error("30 s"),
            "invalid duration \"30 s\": unknown unit \" s\" (ms, s, m, h or d)");
  duration_error("30S");
  duration_error("1.5s");
  duration_error("30sec");
}

TEST(ParseDuration, RejectsMissingNumbers) {
  EXPECT_EQ(duration_error(""), "invalid duration \"\": empty");
  EXPECT_EQ(duration_error("s"), "invalid duration \"s\": must start with a number");
  duration_error("-1s");
  duration_error("+1s");
  duration_error(" 1s");
}

TEST(ParseDuration, RejectsOverflow) {
  EXPECT_EQ(duration_error("99999999999999999999ms"),
            "invalid duration \"99999999999999999999ms\": number too large");
  EXPECT_EQ(duration_error("9999999999999999d"),
            "invalid duration \"9999999999999999d\": too large");
}

// --- Sizes --------------------------------------------------------------------------------

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  EXPECT_EQ(parse_size("512").value(), 512u);
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("7B").value(), 7u);
  EXPECT_EQ(parse_size("16KiB").value(), 16u * 1024);
  EXPECT_EQ(parse_size("1MiB").value(), 1024u * 1024);
  EXPECT_EQ(parse_size("2GiB").value(), 2ull * 1024 * 1024 * 1024);
  EXPECT_EQ(parse_size("2KB").value(), 2000u);
  EXPECT_EQ(parse_size("3MB").value(), 3'000'000u);
  EXPECT_EQ(parse_size("1GB").value(), 1'000'000'000u);
}

TEST(ParseSize, RejectsBadText) {
  EXPECT_EQ(size_error("1kb"),
            "invalid size \"1kb\": unknown unit \"kb\" (B, KiB, MiB, GiB, KB, MB or GB)");
  EXPECT_EQ(size_error("MiB"), "invalid size \"MiB\": must start with a number");
  EXPECT_EQ(size_error(""), "invalid size \"\": empty");
  size_error("1.5MiB");
  size_error("1 KiB");
  size_error("-1");
  size_error("1TiB");
}

TEST(ParseSize, RejectsOverflow) {
  EXPECT_EQ(size_error("99999999999999GiB"), "invalid size \"99999999999999GiB\": too large");
}

// --- Addresses ----------------------------------------------------------------------------

TEST(ParseHostPort, AcceptsIpv4AndNames) {
  EXPECT_EQ(parse_host_port("127.0.0.1:8080").value(), (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(parse_host_port("app:3000").value(), (HostPort{"app", 3000}));
  EXPECT_EQ(parse_host_port("my-db_1.internal:65535").value(),
            (HostPort{"my-db_1.internal", 65535}));
  EXPECT_EQ(parse_host_port("0.0.0.0:0").value(), (HostPort{"0.0.0.0", 0}));
}

TEST(ParseHostPort, AcceptsBracketedIpv6) {
  HostPort loopback = parse_host_port("[::1]:8443").value();
  EXPECT_EQ(loopback, (HostPort{"::1", 8443}));
  EXPECT_EQ(parse_host_port("[2001:db8::10]:80").value(), (HostPort{"2001:db8::10", 80}));
  EXPECT_EQ(parse_host_port("[::ffff:10.0.0.1]:80").value().host, "::ffff:10.0.0.1");
}

TEST(ParseHostPort, TextRoundTrips) {
  for (std::string_view text : {"app:3000", "10.0.0.2:3000", "[::1]:8443", "[fe80::1]:0"}) {
    EXPECT_EQ(parse_host_port(text).value().text(), text);
  }
}

TEST(ParseHostPort, RejectsMissingPort) {
  EXPECT_EQ(address_error("app"), "invalid address \"app\": missing port");
  EXPECT_EQ(address_error("app:"), "invalid address \"app:\": missing port");
  EXPECT_EQ(address_error("[::1]"), "invalid address \"[::1]\": missing port");
}

TEST(ParseHostPort, RejectsBadPorts) {
  EXPECT_EQ(address_error("app:65536"),
            "invalid address \"app:65536\": port \"65536\" is not a number from 0 to 65535");
  address_error("app:-1");
  address_error("app:+80");
  address_error("app:80a");
  address_error("app:http");
  address_error("app:99999999999");
  address_error("[::1]:x");
}

TEST(ParseHostPort, RejectsBadHosts) {
  EXPECT_EQ(address_error(""), "invalid address \"\": empty");
  EXPECT_EQ(address_error(":80"), "invalid address \":80\": missing host");
  EXPECT_EQ(address_error("[]:80"), "invalid address \"[]:80\": missing host");
  EXPECT_EQ(address_error("::1:80"),
            "invalid address \"::1:80\": IPv6 addresses need brackets, like \"[::1]:8080\"");
  EXPECT_EQ(address_error("http://app:80"),
            "invalid address \"http://app:80\": must not include a scheme like \"http://\"");
  address_error("[::1:80");
  address_error("[::1]80");
  address_error("[app]:80");
  address_error("a b:80");
  address_error("app/x:80");
}

}  // namespace
}  // namespace gh::config
