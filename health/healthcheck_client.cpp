#include "health/healthcheck_client.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

#include "health/probe_logic.hpp"

namespace gh::health {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Closes the socket on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

struct AddrinfoFree {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};

int remaining_ms(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, SteadyClock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

Result<int> connect_one(const addrinfo* ai, SteadyClock::time_point deadline) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
  Fd guard(fd);
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    return fail(std::strerror(errno));
  }
  if (!wait_for(fd, POLLOUT, deadline)) return fail("timeout");
  int error = 0;
  socklen_t len = sizeof error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0) return fail(std::strerror(error));
  return guard.release();
}

Result<int> connect_any(const HealthcheckUrl& url, SteadyClock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(url.port);
  if (int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return fail("cannot resolve " + url.host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, AddrinfoFree> list(found);
  std::string last = "no address";
  for (const addrinfo* ai = found; ai; ai = ai->ai_next) {
    auto fd = connect_one(ai, deadline);
    if (fd) return fd;
    last = fd.error().message;
  }
  return fail("cannot connect to " + url.host_header + ": " + last);
}

Result<void> send_all(int fd, const std::string& data, SteadyClock::time_point deadline) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return fail(std::string("send: ") + std::strerror(errno));
    } else if (!wait_for(fd, POLLOUT, deadline)) {
      return fail("timeout sending the request");
    }
  }
  return {};
}

// Reads until the reader has a verdict or the peer closes; the verdict.
Result<ProbeResult> read_response(int fd, HttpResponseReader& reader,
                                  SteadyClock::time_point deadline) {
  char buf[16 * 1024];
  for (;;) {
    if (!wait_for(fd, POLLIN, deadline)) return fail("timeout waiting for the response");
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return reader.finish();
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail(std::string("recv: ") + std::strerror(errno));
    }
    if (auto verdict = reader.feed({buf, static_cast<std::size_t>(n)})) return *verdict;
  }
}

}  // namespace

Result<HealthcheckUrl> parse_healthcheck_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) return fail("only http:// URLs are supported");
  url.remove_prefix(scheme.size());
  HealthcheckUrl out;
  const std::size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  out.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  out.host_header = std::string(authority);
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unbalanced [ in the URL host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return fail("junk after ] in the URL host");
    if (!rest.empty()) port_text = rest.substr(1);
  } else {
    const std::size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return fail("the URL has no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return fail("invalid port in the URL: " + std::string(port_text));
    }
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

int run_healthcheck(const std::string& url_text, std::chrono::milliseconds timeout,
                    std::FILE* out) {
  const auto deadline = SteadyClock::now() + timeout;
  auto report_error = [out](const std::string& message) {
    std::fprintf(out, "healthcheck: %s\n", message.c_str());
    return 1;
  };
  auto url = parse_healthcheck_url(url_text);
  if (!url) return report_error(url.error().message);
  auto fd = connect_any(*url, deadline);
  if (!fd) return report_error(fd.error().message);
  Fd socket(*fd);
  const std::string request = "GET " + url->path + " HTTP/1.1\r\nHost: " + url->host_header +
                              "\r\nUser-Agent: gatehouse-healthcheck\r\nConnection: close\r\n\r\n";
  if (auto sent = send_all(socket.get(), request, deadline); !sent) {
    return report_error(sent.error().message);
  }
  HttpProbeSpec spec;
  spec.status_min = 200;
  spec.status_max = 299;
  HttpResponseReader reader(spec);
  auto verdict = read_response(socket.get(), reader, deadline);
  if (!verdict) return report_error(verdict.error().message);
  if (reader.status_line().empty()) return report_error(verdict->reason);
  std::string text = reader.status_line() + "\n" + reader.body();
  if (!text.ends_with('\n')) text += "\n";
  if (text.size() > kHealthcheckOutputLimit) {
    constexpr std::string_view kCut = "...(cut)\n";
    text.resize(kHealthcheckOutputLimit - kCut.size());
    text += kCut;
  }
  std::fwrite(text.data(), 1, text.size(), out);
  return verdict->ok ? 0 : 1;
}

}  // namespace gh::health
