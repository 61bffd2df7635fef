// `gatehouse healthcheck [URL]`: a Docker HEALTHCHECK for images without a shell or curl.
//
// A separate short-lived process, so plain blocking sockets (with poll() deadlines) are
// fine here: GET http://HOST:PORT/PATH, print the status line and the body (or the error)
// to stdout, at most kHealthcheckOutputLimit bytes, exit 0 for a 2xx answer and 1
// otherwise (never 2, which Docker reserves), all within `timeout`.
// Main thread of that process only.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace gh::health {

// Verbose: the output names each failing check (Docker shows it in `docker inspect`).
constexpr const char* kDefaultHealthcheckUrl = "http://127.0.0.1:9901/readyz?verbose";
// Docker keeps only the first 4 KiB of a health check's output.
constexpr std::size_t kHealthcheckOutputLimit = 4000;

struct HealthcheckUrl {
  std::string host;  // name, IPv4, or IPv6 without brackets
  uint16_t port = 80;
  std::string path = "/";
  std::string host_header;  // "127.0.0.1:9901"
};

// "http://HOST[:PORT][/PATH]" (IPv6 as [::1]); https is not supported.
Result<HealthcheckUrl> parse_healthcheck_url(std::string_view url);

// The exit code: 0 for 2xx, 1 otherwise. Writes the status line and the body to `out`.
int run_healthcheck(const std::string& url, std::chrono::milliseconds timeout,
                    std::FILE* out = stdout);

}  // namespace gh::health
