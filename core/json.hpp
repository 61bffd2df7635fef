// Minimal JSON text helpers for the few JSON answers Gatehouse writes (access log lines,
// /readyz?format=json): escaping is the only part that is easy to get wrong.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace gh {

// Appends `text` as a quoted JSON string: quotes, backslashes and control characters
// escaped, other bytes as they are.
inline void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace gh
