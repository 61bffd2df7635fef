#include "proxy/rewrite.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace gh::proxy {
namespace {

using http::iequals;

void append_number(std::uint64_t n, std::string& out) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

void append_header(std::string_view name, std::string_view value, std::string& out) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

bool is_forwarding_header(std::string_view name) {
  return iequals(name, "x-forwarded-for") || iequals(name, "x-forwarded-proto") ||
         iequals(name, "x-forwarded-host") || iequals(name, "x-real-ip");
}

// Fields only Gatehouse writes upstream: framing, hop-by-hop and the forwarding headers.
// Host is kept even when a client names it in Connection.
bool is_replaced(std::string_view name, const http::HopByHop& is_hop_by_hop) {
  if (iequals(name, "host")) return false;
  return is_hop_by_hop(name) || iequals(name, "content-length") || is_forwarding_header(name);
}

// A name with '_' that reads as a replaced field once '_' is taken for '-', as CGI/WSGI
// backends do (Content_Length and Content-Length are both HTTP_CONTENT_LENGTH there): a
// second framing or a forged X-Forwarded-For beside ours. nginx drops every name with
// '_' (underscores_in_headers off); only these are dropped here. (Host, Connection, TE,
// Trailer and Upgrade have no '-', so no '_' spelling.)
bool is_underscore_alias(std::string_view name, const http::HopByHop& is_hop_by_hop) {
  constexpr std::size_t kLongestAlias = 64;  // longer: only a Connection option could match
  if (name.size() > kLongestAlias || name.find('_') == std::string_view::npos) return false;
  std::array<char, kLongestAlias> dashed;
  std::replace_copy(name.begin(), name.end(), dashed.begin(), '_', '-');
  return is_replaced({dashed.data(), name.size()}, is_hop_by_hop);
}

}  // namespace

void write_upstream_request(const http::MessageHead& head, const http::MessageInfo& info,
                            const ForwardedFor& forwarded, std::string& out) {
  // Sized once (fields, their separators, what is added), not grown by doubling.
  std::size_t size = head.method.size() + head.target.size() + 256;
  for (const http::Header& h : head.headers) size += h.name.size() + h.value.size() + 4;
  out.reserve(out.size() + size);
  out.append(head.method);
  out.push_back(' ');
  out.append(head.target);
  out.append(" HTTP/1.1\r\n");
  const http::HopByHop is_hop_by_hop(head);
  for (const http::Header& h : head.headers) {
    if (is_replaced(h.name, is_hop_by_hop) || is_underscore_alias(h.name, is_hop_by_hop)) continue;
    append_header(h.name, h.value, out);
  }
  // X-Forwarded-For: the client's chain, then this hop's client.
  out.append("X-Forwarded-For: ");
  for (const http::Header& h : head.headers) {
    if (iequals(h.name, "x-forwarded-for") && !h.value.empty()) {
      out.append(h.value);
      out.append(", ");
    }
  }
  out.append(forwarded.client_ip);
  out.append("\r\n");
  append_header("X-Real-IP", forwarded.client_ip, out);
  append_header("X-Forwarded-Proto", forwarded.proto, out);
  if (info.host.empty()) {
    // HTTP/1.0 without Host: the target URI has no authority (RFC 9112 3.3), and an
    // HTTP/1.1 request without one carries an empty Host (RFC 9112 3.2). No name is
    // made up for the backend to trust or to build links with.
    out.append("Host:\r\n");
  } else {
    append_header("X-Forwarded-Host", info.host, out);
  }
  if (info.framing == http::BodyFraming::chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (info.framing == http::BodyFraming::content_length) {
    out.append("Content-Length: ");
    append_number(info.content_length, out);
    out.append("\r\n");
  }
  if (!info.upgrade.empty()) {
    out.append("Connection: upgrade\r\n");
    append_header("Upgrade", info.upgrade, out);
  }
  out.append("\r\n");
}

ClientFraming client_framing(const http::MessageInfo& response, int client_version_minor) {
  switch (response.framing) {
    case http::BodyFraming::none:
      return ClientFraming::none;
    case http::BodyFraming::content_length:
      return ClientFraming::content_length;
    case http::BodyFraming::chunked:
    case http::BodyFraming::until_close:
      return client_version_minor >= 1 ? ClientFraming::chunked : ClientFraming::close_delimited;
  }
  return ClientFraming::close_delimited;
}

void write_client_response(const http::MessageHead& head, std::string_view reason,
                           const http::MessageInfo& info, ClientFraming framing, bool keep_alive,
                           int client_version_minor, std::string& out,
                           std::string_view extra_headers) {
  out.append("HTTP/1.1 ");
  append_number(static_cast<std::uint64_t>(head.status), out);
  out.push_back(' ');
  out.append(reason.empty() ? status_text(head.status) : reason);
  out.append("\r\n");
  const http::HopByHop is_hop_by_hop(head);
  for (const http::Header& h : head.headers) {
    if (is_hop_by_hop(h.name)) continue;
    // Without a body (HEAD, 304) the upstream's Content-Length is information, not framing.
    if (iequals(h.name, "content-length") && framing != ClientFraming::none) continue;
    append_header(h.name, h.value, out);
  }
  if (framing == ClientFraming::content_length) {
    out.append("Content-Length: ");
    append_number(info.content_length, out);
    out.append("\r\n");
  } else if (framing == ClientFraming::chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (head.status == 101) {
    out.append("Connection: upgrade\r\n");
    append_header("Upgrade", info.upgrade, out);
  } else if (!keep_alive || framing == ClientFraming::close_delimited) {
    out.append("Connection: close\r\n");
  } else if (client_version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append(extra_headers);
  out.append("\r\n");
}

void write_local_response(int status, std::string_view body, bool keep_alive,
                          std::string_view extra_headers, std::string& out,
                          std::string_view content_type) {
  out.append("HTTP/1.1 ");
  append_number(static_cast<std::uint64_t>(status), out);
  out.push_back(' ');
  out.append(status_text(status));
  out.append("\r\nServer: gatehouse\r\nContent-Type: ");
  out.append(content_type);
  out.append("\r\nContent-Length: ");
  append_number(body.size(), out);
  out.append("\r\n");
  out.append(extra_headers);
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
  out.append(body);
}

std::string_view status_text(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void append_chunk_header(std::uint64_t size, std::string& out) {
  char digits[20];
  auto end = std::to_chars(digits, digits + sizeof digits, size, 16).ptr;
  out.append(digits, end);
  out.append("\r\n");
}

}  // namespace gh::proxy
