#include <netdb.h>
#include <netinet/in.h>
#include <uv.h>

#include <cstring>

#include "health/host_set.hpp"

namespace gh::health {

std::string address_label(const sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uv_ip6_name(in6, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
  uv_ip4_name(in, text, sizeof text);
  return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
}

namespace {

void add_addresses(const config::HostPort& server, HostSet& set,
                   std::vector<std::string>& warnings) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(server.port);
  if (int rc = getaddrinfo(server.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    warnings.push_back("upstream " + set.group + ": cannot resolve " + server.text() + ": " +
                       gai_strerror(rc));
    return;
  }
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    Host host;
    std::memcpy(&host.address, ai->ai_addr, ai->ai_addrlen);
    host.label = address_label(ai->ai_addr);
    host.name = server.text();
    bool duplicate = false;
    for (const Host& h : set.hosts) duplicate = duplicate || h.label == host.label;
    if (!duplicate) set.hosts.push_back(std::move(host));
  }
  freeaddrinfo(found);
}

}  // namespace

HostSetPtr resolve_upstream(const config::Upstream& upstream, std::vector<std::string>& warnings) {
  auto set = std::make_shared<HostSet>();
  set->group = upstream.name;
  set->balance = upstream.balance;
  set->keepalive = upstream.keepalive;
  for (const config::HostPort& server : upstream.servers) add_addresses(server, *set, warnings);
  return set;
}

}  // namespace gh::health
