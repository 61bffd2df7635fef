#include "proxy/router.hpp"

#include <algorithm>

namespace gh::proxy {
namespace {

// ASCII only, whatever the locale (and without a libc call per byte on the request path).
void lower_in_place(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  lower_in_place(out);
  return out;
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find_first_of("?#"));
}

}  // namespace

void normalize_host(std::string_view host, std::string& out) {
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);  // IPv6 literal keeps its brackets
  } else {
    host = host.substr(0, host.find(':'));
  }
  out.assign(host);
  lower_in_place(out);
  if (!out.empty() && out.back() == '.') out.pop_back();  // "example.com." is the same host
}

std::size_t Router::Entry::specificity() const {
  switch (kind) {
    case Kind::exact:
      return 1'000'000;
    case Kind::suffix:
      return 1'000 + host.size();
    case Kind::any:
      return 0;
  }
  return 0;
}

Router::Router(const config::Config& config) {
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const config::Route& route = config.routes[i];
    Entry entry;
    if (route.host.empty()) {
      entry.kind = Entry::Kind::any;
    } else if (route.host.starts_with("*.")) {
      entry.kind = Entry::Kind::suffix;
      entry.host = lower(std::string_view(route.host).substr(1));
    } else {
      entry.kind = Entry::Kind::exact;
      entry.host = lower(route.host);
    }
    entry.prefix = route.path_prefix;
    std::size_t upstream = 0;
    while (upstream < config.upstreams.size() &&
           config.upstreams[upstream].name != route.upstream) {
      ++upstream;
    }
    if (upstream == config.upstreams.size()) continue;  // validation rejects this earlier
    entry.target = {upstream, i};
    entries_.push_back(std::move(entry));
  }
  std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    if (a.specificity() != b.specificity()) return a.specificity() > b.specificity();
    return a.prefix.size() > b.prefix.size();
  });
}

std::optional<Router::Target> Router::match(std::string_view host, std::string_view target) const {
  std::string_view path = path_of(target);
  for (const Entry& e : entries_) {
    bool host_ok =
        e.kind == Entry::Kind::any || (e.kind == Entry::Kind::exact && host == e.host) ||
        (e.kind == Entry::Kind::suffix && host.size() > e.host.size() && host.ends_with(e.host));
    if (host_ok && path.starts_with(e.prefix)) return e.target;
  }
  return std::nullopt;
}

}  // namespace gh::proxy
