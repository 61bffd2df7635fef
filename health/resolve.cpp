#include <netdb.h>
#include <netinet/in.h>
#include <uv.h>

#include <cstring>

#include "health/host_set.hpp"

namespace gh::health {
namespace {

std::string address_label(const sockaddr* sa, uint16_t port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(sa), text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(port);
  }
  uv_ip4_name(reinterpret_cast<const sockaddr_in*>(sa), text, sizeof text);
  return std::string(text) + ":" + std::to_string(port);
}

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
    host.label = address_label(ai->ai_addr, server.port);
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
