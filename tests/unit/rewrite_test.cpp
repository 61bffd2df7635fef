// Tests for proxy/rewrite: the heads Gatehouse writes. Every head is compared as a whole
// string, so a header that leaks through, goes missing, is duplicated or moves fails.
#include "proxy/rewrite.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "core/http_head.hpp"

namespace gh::proxy {
namespace {

using http::BodyFraming;
using http::Header;
using http::MessageHead;
using http::MessageInfo;

MessageHead request(std::string_view method, std::string_view target,
                    std::initializer_list<Header> headers, int version_minor = 1) {
  MessageHead head;
  head.method = method;
  head.target = target;
  head.version_minor = version_minor;
  head.headers = headers;
  return head;
}

MessageHead response(int status, std::initializer_list<Header> headers, int version_minor = 1) {
  MessageHead head;
  head.status = status;
  head.version_minor = version_minor;
  head.headers = headers;
  return head;
}

MessageInfo info_with(BodyFraming framing, std::uint64_t content_length = 0,
                      std::string_view host = "", std::string_view upgrade = "") {
  MessageInfo info;
  info.framing = framing;
  info.content_length = content_length;
  info.host = host;
  info.upgrade = upgrade;
  return info;
}

std::string upstream_request(const MessageHead& head, const MessageInfo& info,
                             ForwardedFor forwarded = {"10.0.0.9", "http"}) {
  std::string out;
  write_upstream_request(head, info, forwarded, out);
  return out;
}

std::string client_response(const MessageHead& head, std::string_view reason,
                            const MessageInfo& info, ClientFraming framing, bool keep_alive,
                            int client_version_minor) {
  std::string out;
  write_client_response(head, reason, info, framing, keep_alive, client_version_minor, out);
  return out;
}

std::size_t count(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// write_upstream_request

TEST(RewriteTest, UpstreamRequestDropsHopByHopAndClientForwardingHeaders) {
  const MessageHead head = request("POST", "/submit?x=1",
                                   {
                                       {"Host", "example.com"},
                                       {"User-Agent", "t/1"},
                                       {"Connection", "keep-alive, X-Secret"},
                                       {"Keep-Alive", "timeout=5"},
                                       {"X-Secret", "s"},
                                       {"TE", "trailers"},
                                       {"Trailer", "X-Checksum"},
                                       {"Transfer-Encoding", "chunked"},
                                       {"Upgrade", "h2c"},
                                       {"Proxy-Connection", "keep-alive"},
                                       {"X-Real-IP", "6.6.6.6"},
                                       {"X-Forwarded-Proto", "https"},
                                       {"X-Forwarded-Host", "evil.example"},
                                       {"Accept", "*/*"},
                                   });
  const MessageInfo info = info_with(BodyFraming::chunked, 0, "example.com");
  EXPECT_EQ(upstream_request(head, info),
            "POST /submit?x=1 HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "User-Agent: t/1\r\n"
            "Accept: */*\r\n"
            "X-Forwarded-For: 10.0.0.9\r\n"
            "X-Real-IP: 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: example.com\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
}

TEST(RewriteTest, UpstreamRequestDropsHopByHopCaseInsensitively) {
  const MessageHead head = request("GET", "/",
                                   {
                                       {"host", "a.test"},
                                       {"CONNECTION", "X-Drop-Me"},
                                       {"x-drop-me", "1"},
                                       {"keep-alive", "max=3"},
                                       {"te", "trailers"},
                                       {"x-real-ip", "1.2.3.4"},
                                       {"X-FORWARDED-PROTO", "https"},
                                       {"x-forwarded-host", "b.test"},
                                       {"proxy-connection", "close"},
                                       {"X-Keep", "yes"},
                                   });
  const MessageInfo info = info_with(BodyFraming::none, 0, "a.test");
  EXPECT_EQ(upstream_request(head, info, {"192.0.2.1", "https"}),
            "GET / HTTP/1.1\r\n"
            "host: a.test\r\n"
            "X-Keep: yes\r\n"
            "X-Forwarded-For: 192.0.2.1\r\n"
            "X-Real-IP: 192.0.2.1\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: a.test\r\n"
            "\r\n");
}

TEST(RewriteTest, UpstreamRequestAppendsToForwardedForChain) {
  const MessageHead head = request("GET", "/",
                                   {
                                       {"Host", "h"},
                                       {"X-Forwarded-For", "1.1.1.1"},
                                       {"x-forwarded-for", "2.2.2.2, 3.3.3.3"},
                                       {"X-Forwarded-For", ""},
                                   });
  const std::string out = upstream_request(head, info_with(BodyFraming::none, 0, "h"));
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9\r\n"
            "X-Real-IP: 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "\r\n");
  EXPECT_EQ(count(out, "X-Forwarded-For"), 1u);
}

TEST(RewriteTest, UpstreamRequestContentLengthFramingExactlyOnce) {
  const MessageHead head = request("PUT", "/obj",
                                   {
                                       {"Host", "h"},
                                       {"Content-Length", "5"},
                                       {"content-length", "5"},
                                       {"Content-Type", "text/plain"},
                                   });
  const std::string out = upstream_request(head, info_with(BodyFraming::content_length, 5, "h"));
  EXPECT_EQ(out,
            "PUT /obj HTTP/1.1\r\n"
            "Host: h\r\n"
            "Content-Type: text/plain\r\n"
            "X-Forwarded-For: 10.0.0.9\r\n"
            "X-Real-IP: 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "Content-Length: 5\r\n"
            "\r\n");
  EXPECT_EQ(count(out, "ontent-"), 2u);  // Content-Length and Content-Type only
}

TEST(RewriteTest, UpstreamRequestZeroContentLengthIsForwarded) {
  const MessageHead head = request("POST", "/", {{"Host", "h"}, {"Content-Length", "0"}});
  const std::string out = upstream_request(head, info_with(BodyFraming::content_length, 0, "h"));
  EXPECT_EQ(count(out, "Content-Length: 0\r\n"), 1u);
  EXPECT_EQ(count(out, "Transfer-Encoding"), 0u);
}

TEST(RewriteTest, UpstreamRequestChunkedHasNoContentLength) {
  const MessageHead head = request("POST", "/", {{"Host", "h"}, {"Transfer-Encoding", "chunked"}});
  const std::string out = upstream_request(head, info_with(BodyFraming::chunked, 0, "h"));
  EXPECT_EQ(count(out, "Transfer-Encoding: chunked\r\n"), 1u);
  EXPECT_EQ(count(out, "Transfer-Encoding"), 1u);
  EXPECT_EQ(count(out, "Content-Length"), 0u);
}

TEST(RewriteTest, UpstreamRequestWithoutBodyHasNoFramingHeader) {
  const MessageHead head = request("GET", "/", {{"Host", "h"}});
  const std::string out = upstream_request(head, info_with(BodyFraming::none, 0, "h"));
  EXPECT_EQ(count(out, "Content-Length"), 0u);
  EXPECT_EQ(count(out, "Transfer-Encoding"), 0u);
  EXPECT_TRUE(out.ends_with("X-Forwarded-Host: h\r\n\r\n")) << out;
}

TEST(RewriteTest, UpstreamRequestLineIsAlwaysHttp11) {
  const MessageHead head =
      request("GET", "/old?q=1", {{"Host", "h"}, {"Connection", "keep-alive"}}, 0);
  const std::string out = upstream_request(head, info_with(BodyFraming::none, 0, "h"));
  EXPECT_EQ(out,
            "GET /old?q=1 HTTP/1.1\r\n"
            "Host: h\r\n"
            "X-Forwarded-For: 10.0.0.9\r\n"
            "X-Real-IP: 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "\r\n");
}

// RFC 9112 3.2/3.3: without Host the target URI has no authority, and an HTTP/1.1
// request for it carries an empty Host; no name is made up (it was the group's name).
TEST(RewriteTest, UpstreamRequestForHttp10WithoutHostHasAnEmptyHost) {
  const MessageHead head = request("GET", "/old", {{"Accept", "*/*"}}, 0);
  MessageInfo info;
  http::HeadError error;
  ASSERT_TRUE(http::analyze_request(head, info, error)) << error.reason;
  EXPECT_EQ(upstream_request(head, info),
            "GET /old HTTP/1.1\r\n"
            "Accept: */*\r\n"
            "X-Forwarded-For: 10.0.0.9\r\n"
            "X-Real-IP: 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "Host:\r\n"
            "\r\n");
}

// CGI/WSGI-style backends read '_' as '-': Content_Length would be a second framing
// beside ours, X_Forwarded_For a forged chain. Such names are dropped; other names with
// '_' pass (nginx drops them all by default).
TEST(RewriteTest, UpstreamRequestDropsUnderscoreSpellingsOfReplacedFields) {
  const MessageHead head = request("POST", "/cgi",
                                   {
                                       {"Host", "h"},
                                       {"Content-Length", "5"},
                                       {"Content_Length", "0"},
                                       {"transfer_encoding", "chunked"},
                                       {"TRANSFER_ENCODING", "chunked"},
                                       {"Keep_Alive", "timeout=1"},
                                       {"Proxy_Connection", "close"},
                                       {"Proxy_Authorization", "Basic eDp5"},
                                       {"X_Forwarded_For", "6.6.6.6"},
                                       {"X-Forwarded_Proto", "https"},
                                       {"x_forwarded_host", "evil.example"},
                                       {"X_Real_IP", "6.6.6.6"},
                                       {"Connection", "X-Hop"},
                                       {"X_Hop", "1"},
                                       {"X_Custom", "kept"},
                                       {"Content_Type", "text/plain"},
                                       {"Host_", "kept too"},
                                       {"Transfer__Encoding", "kept: not a spelling of one"},
                                   });
  EXPECT_EQ(upstream_request(head, info_with(BodyFraming::content_length, 5, "h")),
            "POST /cgi HTTP/1.1\r\n"
            "Host: h\r\n"
            "X_Custom: kept\r\n"
            "Content_Type: text/plain\r\n"
            "Host_: kept too\r\n"
            "Transfer__Encoding: kept: not a spelling of one\r\n"
            "X-Forwarded-For: 10.0.0.9\r\n"
            "X-Real-IP: 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "Content-Length: 5\r\n"
            "\r\n");
}

TEST(RewriteTest, UpstreamRequestUpgrade) {
  const MessageHead head = request("GET", "/ws",
                                   {
                                       {"Host", "h:8080"},
                                       {"Connection", "keep-alive, Upgrade"},
                                       {"Upgrade", "websocket"},
                                       {"Sec-WebSocket-Key", "dGhlIHNhbXBsZQ=="},
                                       {"Sec-WebSocket-Version", "13"},
                                   });
  const std::string out =
      upstream_request(head, info_with(BodyFraming::none, 0, "h:8080", "websocket"));
  EXPECT_EQ(out,
            "GET /ws HTTP/1.1\r\n"
            "Host: h:8080\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "X-Forwarded-For: 10.0.0.9\r\n"
            "X-Real-IP: 10.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h:8080\r\n"
            "Connection: upgrade\r\n"
            "Upgrade: websocket\r\n"
            "\r\n");
}

TEST(RewriteTest, UpstreamRequestFromAnalyzedHead) {
  // End to end with the real analysis: a chunked POST over keep-alive.
  const MessageHead head = request("POST", "/upload",
                                   {
                                       {"Host", "files.example.com"},
                                       {"Transfer-Encoding", "chunked"},
                                       {"Connection", "keep-alive"},
                                       {"X-Forwarded-For", "203.0.113.7"},
                                   });
  MessageInfo info;
  http::HeadError error;
  ASSERT_TRUE(http::analyze_request(head, info, error)) << error.reason;
  EXPECT_EQ(upstream_request(head, info, {"198.51.100.2", "https"}),
            "POST /upload HTTP/1.1\r\n"
            "Host: files.example.com\r\n"
            "X-Forwarded-For: 203.0.113.7, 198.51.100.2\r\n"
            "X-Real-IP: 198.51.100.2\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: files.example.com\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
}

// ---------------------------------------------------------------------------------------
// client_framing

struct FramingCase {
  BodyFraming upstream;
  int client_minor;
  ClientFraming expected;
};

TEST(RewriteTest, ClientFramingForEveryUpstreamFramingAndVersion) {
  const FramingCase cases[] = {
      {BodyFraming::none, 1, ClientFraming::none},
      {BodyFraming::none, 0, ClientFraming::none},
      {BodyFraming::content_length, 1, ClientFraming::content_length},
      {BodyFraming::content_length, 0, ClientFraming::content_length},
      {BodyFraming::chunked, 1, ClientFraming::chunked},
      {BodyFraming::chunked, 0, ClientFraming::close_delimited},
      {BodyFraming::until_close, 1, ClientFraming::chunked},
      {BodyFraming::until_close, 0, ClientFraming::close_delimited},
  };
  for (const FramingCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "upstream framing " << static_cast<int>(c.upstream)
                                    << ", client HTTP/1." << c.client_minor);
    MessageInfo info = info_with(c.upstream, c.upstream == BodyFraming::content_length ? 7 : 0);
    EXPECT_EQ(static_cast<int>(client_framing(info, c.client_minor)), static_cast<int>(c.expected));
  }
}

// ---------------------------------------------------------------------------------------
// write_client_response

TEST(RewriteTest, ClientResponseContentLength) {
  const MessageHead head = response(200, {
                                             {"Content-Type", "text/html"},
                                             {"Content-Length", "12"},
                                             {"Connection", "keep-alive"},
                                             {"Keep-Alive", "timeout=5"},
                                             {"Server", "upstream"},
                                         });
  EXPECT_EQ(client_response(head, "OK", info_with(BodyFraming::content_length, 12),
                            ClientFraming::content_length, true, 1),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/html\r\n"
            "Server: upstream\r\n"
            "Content-Length: 12\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseChunkedToHttp11) {
  const MessageHead head = response(200, {
                                             {"Transfer-Encoding", "chunked"},
                                             {"Trailer", "X-Sum"},
                                             {"X-A", "1"},
                                         });
  EXPECT_EQ(
      client_response(head, "OK", info_with(BodyFraming::chunked), ClientFraming::chunked, true, 1),
      "HTTP/1.1 200 OK\r\n"
      "X-A: 1\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n");
}

TEST(RewriteTest, ClientResponseUntilCloseBecomesChunkedForHttp11) {
  const MessageHead head = response(200, {{"X-A", "1"}}, 0);
  const MessageInfo info = info_with(BodyFraming::until_close);
  const ClientFraming framing = client_framing(info, 1);
  EXPECT_EQ(client_response(head, "OK", info, framing, true, 1),
            "HTTP/1.1 200 OK\r\n"
            "X-A: 1\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseCloseDelimitedForHttp10) {
  const MessageHead head = response(200, {{"Transfer-Encoding", "chunked"}, {"X-A", "1"}});
  const MessageInfo info = info_with(BodyFraming::chunked);
  const ClientFraming framing = client_framing(info, 0);
  ASSERT_EQ(static_cast<int>(framing), static_cast<int>(ClientFraming::close_delimited));
  // Even when the exchange would otherwise keep the connection, the body ends at close.
  EXPECT_EQ(client_response(head, "OK", info, framing, true, 0),
            "HTTP/1.1 200 OK\r\n"
            "X-A: 1\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseConnectionCloseWhenNotKeepAlive) {
  const MessageHead head = response(200, {{"Content-Length", "3"}, {"Connection", "close"}});
  EXPECT_EQ(client_response(head, "OK", info_with(BodyFraming::content_length, 3),
                            ClientFraming::content_length, false, 1),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 3\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseKeepAliveHeaderForHttp10Client) {
  const MessageHead head = response(200, {{"Content-Length", "3"}});
  EXPECT_EQ(client_response(head, "OK", info_with(BodyFraming::content_length, 3),
                            ClientFraming::content_length, true, 0),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 3\r\n"
            "Connection: keep-alive\r\n"
            "\r\n");
  // Not kept alive: close, and no keep-alive.
  EXPECT_EQ(client_response(head, "OK", info_with(BodyFraming::content_length, 3),
                            ClientFraming::content_length, false, 0),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 3\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseHttp11KeepAliveHasNoConnectionHeader) {
  const MessageHead head = response(200, {{"Content-Length", "3"}, {"Connection", "keep-alive"}});
  const std::string out = client_response(head, "OK", info_with(BodyFraming::content_length, 3),
                                          ClientFraming::content_length, true, 1);
  EXPECT_EQ(count(out, "Connection"), 0u) << out;
}

TEST(RewriteTest, ClientResponseHeadKeepsUpstreamContentLength) {
  // Response to HEAD: no body, the Content-Length is information and passes through as is.
  const MessageHead head = response(200, {
                                             {"Content-Length", "1234"},
                                             {"ETag", "\"abc\""},
                                         });
  MessageInfo info;
  http::HeadError error;
  ASSERT_TRUE(http::analyze_response(head, "HEAD", info, error)) << error.reason;
  ASSERT_EQ(static_cast<int>(info.framing), static_cast<int>(BodyFraming::none));
  const ClientFraming framing = client_framing(info, 1);
  EXPECT_EQ(client_response(head, "OK", info, framing, true, 1),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 1234\r\n"
            "ETag: \"abc\"\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseNoBodyDropsTransferEncoding) {
  // A chunked response to HEAD: Transfer-Encoding is hop-by-hop and nothing replaces it.
  const MessageHead head = response(200, {{"Transfer-Encoding", "chunked"}, {"X-A", "1"}});
  EXPECT_EQ(client_response(head, "OK", info_with(BodyFraming::none), ClientFraming::none, true, 1),
            "HTTP/1.1 200 OK\r\n"
            "X-A: 1\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseNotModified) {
  const MessageHead head = response(304, {{"ETag", "\"v1\""}, {"Content-Length", "50"}});
  EXPECT_EQ(client_response(head, "", info_with(BodyFraming::none), ClientFraming::none, true, 1),
            "HTTP/1.1 304 Not Modified\r\n"
            "ETag: \"v1\"\r\n"
            "Content-Length: 50\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseStatusTextFallback) {
  const MessageHead not_found = response(404, {{"Content-Length", "0"}});
  const MessageInfo info = info_with(BodyFraming::content_length, 0);
  EXPECT_EQ(client_response(not_found, "", info, ClientFraming::content_length, true, 1),
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  // The upstream's reason wins when there is one.
  EXPECT_EQ(client_response(not_found, "Nope", info, ClientFraming::content_length, true, 1),
            "HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n");
  const MessageHead odd = response(299, {{"Content-Length", "0"}});
  EXPECT_EQ(client_response(odd, "", info, ClientFraming::content_length, true, 1),
            "HTTP/1.1 299 Unknown\r\nContent-Length: 0\r\n\r\n");
}

TEST(RewriteTest, ClientResponseStatusLineIsHttp11ForHttp10Upstream) {
  const MessageHead head = response(200, {{"Content-Length", "2"}}, 0);
  const std::string out = client_response(head, "OK", info_with(BodyFraming::content_length, 2),
                                          ClientFraming::content_length, true, 1);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out;
}

TEST(RewriteTest, ClientResponseDropsHeadersNamedInConnection) {
  const MessageHead head = response(200, {
                                             {"Connection", "X-Internal, keep-alive"},
                                             {"X-Internal", "secret"},
                                             {"Proxy-Authenticate", "Basic"},
                                             {"Content-Length", "1"},
                                             {"X-Public", "ok"},
                                         });
  EXPECT_EQ(client_response(head, "OK", info_with(BodyFraming::content_length, 1),
                            ClientFraming::content_length, true, 1),
            "HTTP/1.1 200 OK\r\n"
            "X-Public: ok\r\n"
            "Content-Length: 1\r\n"
            "\r\n");
}

TEST(RewriteTest, ClientResponseSwitchingProtocols) {
  const MessageHead head =
      response(101, {
                        {"Connection", "Upgrade"},
                        {"Upgrade", "websocket"},
                        {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
                    });
  EXPECT_EQ(
      client_response(head, "Switching Protocols", info_with(BodyFraming::none, 0, "", "websocket"),
                      ClientFraming::none, true, 1),
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "Connection: upgrade\r\n"
      "Upgrade: websocket\r\n"
      "\r\n");
}

// ---------------------------------------------------------------------------------------
// write_local_response, status_text, append_chunk_header

TEST(RewriteTest, LocalResponseKeepAlive) {
  std::string out;
  write_local_response(404, "no route for this host and path\n", true, "", out);
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\n"
            "Server: gatehouse\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 32\r\n"
            "\r\n"
            "no route for this host and path\n");
}

TEST(RewriteTest, LocalResponseCloseWithExtraHeaders) {
  std::string out;
  write_local_response(503, "busy", false, "Retry-After: 1\r\n", out);
  EXPECT_EQ(out,
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Server: gatehouse\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 4\r\n"
            "Retry-After: 1\r\n"
            "Connection: close\r\n"
            "\r\n"
            "busy");
}

TEST(RewriteTest, LocalResponseEmptyBody) {
  std::string out;
  write_local_response(301, "", true, "Location: https://example.com/\r\n", out);
  EXPECT_EQ(out,
            "HTTP/1.1 301 Moved Permanently\r\n"
            "Server: gatehouse\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 0\r\n"
            "Location: https://example.com/\r\n"
            "\r\n");
}

TEST(RewriteTest, StatusText) {
  EXPECT_EQ(status_text(200), "OK");
  EXPECT_EQ(status_text(400), "Bad Request");
  EXPECT_EQ(status_text(413), "Content Too Large");
  EXPECT_EQ(status_text(431), "Request Header Fields Too Large");
  EXPECT_EQ(status_text(502), "Bad Gateway");
  EXPECT_EQ(status_text(504), "Gateway Timeout");
  EXPECT_EQ(status_text(418), "Unknown");
  EXPECT_EQ(status_text(0), "Unknown");
}

TEST(RewriteTest, ChunkHeaderIsLowerCaseHex) {
  const std::pair<std::uint64_t, std::string_view> cases[] = {
      {0, "0\r\n"},
      {1, "1\r\n"},
      {10, "a\r\n"},
      {15, "f\r\n"},
      {16, "10\r\n"},
      {255, "ff\r\n"},
      {4096, "1000\r\n"},
      {0x1a2b, "1a2b\r\n"},
      {std::numeric_limits<std::uint64_t>::max(), "ffffffffffffffff\r\n"},
  };
  for (const auto& [size, expected] : cases) {
    SCOPED_TRACE(size);
    std::string out;
    append_chunk_header(size, out);
    EXPECT_EQ(out, expected);
  }
}

TEST(RewriteTest, ChunkHeaderAppends) {
  std::string out = "prefix";
  append_chunk_header(26, out);
  append_chunk_header(3, out);
  EXPECT_EQ(out, "prefix1a\r\n3\r\n");
}

}  // namespace
}  // namespace gh::proxy
