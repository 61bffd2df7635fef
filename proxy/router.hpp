// Router: (Host, path) -> upstream group index. Pure; built once per config snapshot.
//
// Host patterns: exact ("example.com"), suffix ("*.example.com" matches any subdomain,
// not the bare domain) or any (""). The most specific host pattern that has a matching
// path prefix wins (exact, then longer suffixes, then any), and within it the longest
// path prefix, as nginx picks a server block and then a location.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace gh::proxy {

class Router {
 public:
  struct Target {
    std::size_t upstream;  // index into Config::upstreams
    std::size_t route;     // index into Config::routes
  };

  explicit Router(const config::Config& config);
  std::optional<Target> match(std::string_view host, std::string_view target) const;

 private:
  struct Entry {
    std::string host;  // lower case; for suffix patterns, ".example.com"
    enum class Kind { exact, suffix, any } kind;
    std::string prefix;
    Target target;
    std::size_t specificity() const;
  };
  std::vector<Entry> entries_;  // sorted: most specific host, then longest prefix
};

// "Example.COM:8080" -> "example.com" appended to `out` (cleared first).
void normalize_host(std::string_view host_header, std::string& out);

}  // namespace gh::proxy
