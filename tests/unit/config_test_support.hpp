// Shared by the config/ unit tests: the smallest config that loads, and ways to load a
// document and read its diagnostics.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace gh::config::testing {

// Seven lines, the smallest config that loads cleanly; tests append to it from line 8.
inline constexpr std::string_view kMinimal =
    "[[listener]]\n"
    "address = \"127.0.0.1:8080\"\n"
    "[[upstream]]\n"
    "name = \"app\"\n"
    "servers = [\"127.0.0.1:3000\"]\n"
    "[[route]]\n"
    "upstream = \"app\"\n";

inline LoadResult load(std::string_view toml) {
  return load_string(toml, "test.toml");
}

inline LoadResult load_with(std::string_view extra) {
  return load(std::string(kMinimal) + std::string(extra));
}

inline std::vector<std::string> texts(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> out;
  for (const Diagnostic& d : diagnostics) out.push_back(d.text());
  return out;
}

// All error texts on one line each, for readable assertion failures.
inline std::string joined(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const std::string& text : texts(diagnostics)) out += text + "\n";
  return out;
}

// The only error of a config that must fail.
inline std::string only_error(std::string_view toml) {
  LoadResult result = load(toml);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.errors.size(), 1u) << joined(result.errors);
  return result.errors.empty() ? "" : result.errors.front().text();
}

// kMinimal plus `extra`, which starts at line 8.
inline std::string with(std::string_view extra) {
  return std::string(kMinimal) + std::string(extra);
}

// The warnings of a config that must load.
inline std::vector<std::string> warnings_of(const std::string& toml) {
  LoadResult result = load(toml);
  EXPECT_TRUE(result.config.has_value()) << joined(result.errors);
  return texts(result.warnings);
}

}  // namespace gh::config::testing
