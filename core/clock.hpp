// Monotonic milliseconds, comparable across threads (unlike a loop's cached uv_now).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>

namespace gh {

// "2026-12-01T02:46:39Z" into `out` (at least kUtcTextSize bytes): the timestamp of
// access-log lines and /readyz JSON.
inline constexpr std::size_t kUtcTextSize = 24;
inline void format_utc(std::time_t seconds, char* out) {
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::strftime(out, kUtcTextSize, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

inline std::uint64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace gh
