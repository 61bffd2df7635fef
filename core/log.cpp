#include "core/log.hpp"

#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>

namespace gh::log {
namespace {
std::atomic<Level> min_level{Level::info};

const char* level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "?";
}
}  // namespace

void set_min_level(Level level) {
  min_level.store(level, std::memory_order_relaxed);
}

void write(Level level, const char* fmt, ...) {
  if (level < min_level.load(std::memory_order_relaxed)) return;
  char line[2048];
  timeval now{};
  gettimeofday(&now, nullptr);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  int n = static_cast<int>(strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &utc));
  n += snprintf(line + n, sizeof line - n, ".%03dZ [%s] ", static_cast<int>(now.tv_usec / 1000),
                level_name(level));
  va_list args;
  va_start(args, fmt);
  int body = vsnprintf(line + n, sizeof line - n - 1, fmt, args);
  va_end(args);
  n = body < 0 ? n : std::min<int>(n + body, sizeof line - 2);
  line[n++] = '\n';
  fwrite(line, 1, n, stderr);
}

}  // namespace gh::log
