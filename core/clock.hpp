// Monotonic milliseconds, comparable across threads (unlike a loop's cached uv_now).
#pragma once

#include <cstdint>
#include <ctime>

namespace gh {

inline std::uint64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace gh
