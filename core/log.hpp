// Error log: one line per event on stderr, prefixed with a UTC timestamp and a level.
// Safe from any thread (one fwrite per line). Errors are rare events; the per-request
// access log goes through proxy/access_log instead.
#pragma once

#include <cstdarg>

namespace gh::log {

enum class Level { debug, info, warn, error };

void set_min_level(Level level);
void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#define GH_LOG_INFO(...) ::gh::log::write(::gh::log::Level::info, __VA_ARGS__)
#define GH_LOG_WARN(...) ::gh::log::write(::gh::log::Level::warn, __VA_ARGS__)
#define GH_LOG_ERROR(...) ::gh::log::write(::gh::log::Level::error, __VA_ARGS__)
#define GH_LOG_DEBUG(...) ::gh::log::write(::gh::log::Level::debug, __VA_ARGS__)

}  // namespace gh::log
