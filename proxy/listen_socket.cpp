#include "proxy/listen_socket.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "health/host_set.hpp"

namespace gh::proxy {
namespace {

Result<sockaddr_storage> resolve_bind_address(const config::HostPort& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  const char* host = address.host == "*" ? nullptr : address.host.c_str();
  if (int rc = getaddrinfo(host, port.c_str(), &hints, &found); rc != 0) {
    return fail("listen " + address.text() + ": " + gai_strerror(rc));
  }
  sockaddr_storage storage{};
  std::memcpy(&storage, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  return storage;
}

socklen_t length_of(const sockaddr_storage& a) {
  return a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

Result<int> open_socket(const sockaddr_storage& address, const std::string& text) {
  int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("listen " + text + ": socket: " + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (address.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length_of(address)) != 0 ||
      ::listen(fd, 1024) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return fail("listen " + text + ": " + why);
  }
  return fd;
}

}  // namespace

Result<BoundListener> bind_listener(const config::HostPort& address, unsigned count) {
  auto resolved = resolve_bind_address(address);
  if (!resolved) return tl::unexpected(resolved.error());
  sockaddr_storage storage = *resolved;
  BoundListener bound;
  for (unsigned i = 0; i < count; ++i) {
    auto fd = open_socket(storage, address.text());
    if (!fd) {
      for (int open_fd : bound.fds) ::close(open_fd);
      return tl::unexpected(fd.error());
    }
    if (i == 0) {
      // Port 0: every worker's socket joins the port the kernel gave the first one.
      socklen_t len = sizeof storage;
      getsockname(*fd, reinterpret_cast<sockaddr*>(&storage), &len);
      bound.address = health::address_label(reinterpret_cast<const sockaddr*>(&storage));
    }
    bound.fds.push_back(*fd);
  }
  return bound;
}

}  // namespace gh::proxy
