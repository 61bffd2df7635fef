// `gatehouse healthcheck [URL]`: a Docker HEALTHCHECK for images without a shell or curl.
//
// A separate short-lived process, so plain blocking sockets (with poll() deadlines) are
// fine here: GET http://HOST:PORT/PATH, print the status line and the body's first line
// (or the error) to stdout, exit 0 for a 2xx answer and 1 otherwise, all within `timeout`.
// Main thread of that process only.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace gh::health {

constexpr const char* kDefaultHealthcheckUrl = "http://127.0.0.1:9901/readyz";

struct HealthcheckUrl {
  std::string host;  // name, IPv4, or IPv6 without brackets
  uint16_t port = 80;
  std::string path = "/";
  std::string host_header;  // "127.0.0.1:9901"
};

// "http://HOST[:PORT][/PATH]" (IPv6 as [::1]); https is not supported.
Result<HealthcheckUrl> parse_healthcheck_url(std::string_view url);

// The exit code: 0 for 2xx, 1 otherwise. Writes one or two lines to `out`.
int run_healthcheck(const std::string& url, std::chrono::milliseconds timeout,
                    std::FILE* out = stdout);

}  // namespace gh::health
