// Rewrite: the heads Gatehouse sends, rebuilt from parsed fields rather than copied, so
// exactly one framing header goes out and nothing hop-by-hop leaks through. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/http_head.hpp"

namespace gh::proxy {

struct ForwardedFor {
  std::string_view client_ip;  // appended to X-Forwarded-For, set as X-Real-IP
  std::string_view proto;      // "http" or "https"
};

// Request line + headers + blank line for the upstream (always HTTP/1.1). The body
// framing is `info.framing` (Content-Length: n, or chunked re-encoded by the caller).
// Dropped: hop-by-hop fields, Content-Length, the client's forwarding headers, and names
// that read as one of these with '_' for '-' (Content_Length, Transfer_Encoding,
// X_Forwarded_For). An HTTP/1.0 request without Host gets an empty one (RFC 9112 3.2).
void write_upstream_request(const http::MessageHead& head, const http::MessageInfo& info,
                            const ForwardedFor& forwarded, std::string& out);

// How the response body goes to the client.
enum class ClientFraming { none, content_length, chunked, close_delimited };

ClientFraming client_framing(const http::MessageInfo& response, int client_version_minor);

// Status line + headers + blank line for the client.
// `extra_headers` (complete lines: Set-Cookie, Strict-Transport-Security) go last.
void write_client_response(const http::MessageHead& head, std::string_view reason,
                           const http::MessageInfo& info, ClientFraming framing, bool keep_alive,
                           int client_version_minor, std::string& out,
                           std::string_view extra_headers = {});

// A complete short plain-text response made by Gatehouse itself (errors, redirects).
void write_local_response(int status, std::string_view body, bool keep_alive,
                          std::string_view extra_headers, std::string& out,
                          std::string_view content_type = "text/plain; charset=utf-8");

std::string_view status_text(int status);

// "1a2b\r\n" for a chunk of `size` bytes.
void append_chunk_header(std::uint64_t size, std::string& out);

}  // namespace gh::proxy
