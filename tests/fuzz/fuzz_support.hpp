// Helpers shared by the libFuzzer targets: invariant checks that abort with a message
// (libFuzzer then saves the input as crash-*), and split points derived from the input.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace gh::fuzz {

[[noreturn]] inline void invariant_failed(const char* file, int line, const char* condition,
                                          const std::string& detail) {
  std::fprintf(stderr, "\n%s:%d: fuzz invariant broken: %s\n  %s\n", file, line, condition,
               detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// Checks an invariant; `detail` (any expression giving a std::string) is evaluated only when
// it fails.
#define GH_FUZZ_CHECK(condition, detail)                                      \
  do {                                                                        \
    if (!(condition)) {                                                       \
      ::gh::fuzz::invariant_failed(__FILE__, __LINE__, #condition, (detail)); \
    }                                                                         \
  } while (0)

// Printable form of bytes for messages: C escapes for anything but printable ASCII.
inline std::string escaped(std::string_view bytes, std::size_t limit = 200) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (bytes.size() > limit) out += "...";
  return "\"" + out + "\"";
}

// FNV-1a: a deterministic function of the input, so a saved crash replays the same splits.
inline std::uint64_t input_hash(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Up to `count` increasing cut points strictly inside [1, size), derived from the input:
// feeding [0, cut1), [cut1, cut2), ... [cutN, size) must give the result of one piece.
inline std::vector<std::size_t> split_points(std::string_view bytes, std::size_t count) {
  std::vector<std::size_t> cuts;
  if (bytes.size() < 2) return cuts;
  std::uint64_t h = input_hash(bytes);
  for (std::size_t i = 0; i < count; ++i) {
    h = h * 6364136223846793005ull + 1442695040888963407ull;  // one LCG step per cut
    cuts.push_back(1 + static_cast<std::size_t>((h >> 17) % (bytes.size() - 1)));
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

// The pieces `bytes` falls into at `cuts` (from split_points()).
inline std::vector<std::string_view> pieces(std::string_view bytes,
                                            const std::vector<std::size_t>& cuts) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (const std::size_t cut : cuts) {
    out.push_back(bytes.substr(start, cut - start));
    start = cut;
  }
  out.push_back(bytes.substr(start));
  return out;
}

// True if `part` is a view into `whole` (or empty): parsers must hand out views of
// their input, never of memory beyond it.
inline bool within(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  const std::less_equal<const char*> before;  // a total order, unlike <= on pointers
  return before(whole.data(), part.data()) &&
         before(part.data() + part.size(), whole.data() + whole.size());
}

}  // namespace gh::fuzz
