// The pure parts of the probes: RESP reply parsing, HTTP response evaluation, libpq error
// summaries, secret files. No I/O except read_secret_file (called at build time, never on
// the loop in steady state). Any thread.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http_head.hpp"
#include "core/http_parser.hpp"
#include "core/result.hpp"
#include "health/probe.hpp"

namespace gh::health {

// "timeout after 2000 ms"
std::string timeout_reason(Milliseconds timeout);

// --- RESP (Redis) -------------------------------------------------------------------

struct RespReply {
  char type = 0;             // '+' simple string, '-' error, ':' integer, '$' bulk, '*' array
  std::string text;          // the line after the type byte; a bulk string's bytes; "" for arrays
  bool null = false;         // $-1 / *-1
  std::string line() const;  // "+PONG", "-LOADING Redis is loading ..."
};

struct RespParse {
  enum class State { incomplete, complete, invalid };
  State state = State::incomplete;
  RespReply reply;
  std::size_t consumed = 0;  // complete: bytes of this reply
};

// Parses one reply at the start of `data`. Lines longer than 64 KiB are invalid.
RespParse parse_resp_reply(std::string_view data);

// A command as a RESP array of bulk strings: "*1\r\n$4\r\nPING\r\n".
std::string resp_command(std::initializer_list<std::string_view> words);

// The verdict over the replies to [AUTH,] PING, in order (`sent_auth` says whether the
// first one answers AUTH). Errors keep the server's line: "-NOAUTH Authentication required."
ProbeResult redis_verdict(const std::vector<RespReply>& replies, bool sent_auth);

// --- HTTP ------------------------------------------------------------------------------

constexpr std::size_t kHttpBodyLimit = 64 * 1024;

// ok iff status is in [spec.status_min, spec.status_max] and body contains expect_body.
ProbeResult http_verdict(int status, std::string_view body, const HttpProbeSpec& spec);

// Reads one HTTP/1.1 response incrementally (strict head check, then llhttp) and keeps up
// to kHttpBodyLimit bytes of its body. 1xx interim responses are skipped.
class HttpResponseReader {
 public:
  explicit HttpResponseReader(const HttpProbeSpec& spec);
  // A verdict once one is known (complete response, body limit reached, or garbage).
  std::optional<ProbeResult> feed(std::string_view bytes);
  // The server closed the connection.
  ProbeResult finish();

  const std::string& status_line() const { return status_line_; }  // "HTTP/1.1 200 OK"
  const std::string& body() const { return body_; }                // up to kHttpBodyLimit

 private:
  class Sink final : public http::BodySink {
   public:
    explicit Sink(std::string& body) : body_(body) {}
    void on_body(const char* data, std::size_t length) override;

   private:
    std::string& body_;
  };

  std::optional<ProbeResult> feed_head(std::string_view bytes);
  std::optional<ProbeResult> feed_body(std::string_view bytes);
  ProbeResult verdict() const;

  HttpProbeSpec spec_;
  http::HeadScanner scanner_;
  http::HttpParser parser_;
  std::string head_;  // bytes of the head so far
  bool in_body_ = false;
  int status_ = 0;
  std::string status_line_;
  std::string body_;
  Sink sink_{body_};
};

// --- PostgreSQL ------------------------------------------------------------------------

// One line out of a libpq error message (PQERRORS_VERBOSE, possibly one paragraph per
// host tried): "SQLSTATE primary message" from the last server error when there is one
// ("28P01 password authentication failed for user \"x\""), else the last top-level line
// ("connection to server at \"127.0.0.1\", port 5999 failed: Connection refused").
std::string summarize_pg_error(std::string_view message);

// --- secrets ---------------------------------------------------------------------------

// The file's content without trailing CR/LF. Blocking: call at config load time.
Result<std::string> read_secret_file(const std::string& path);

}  // namespace gh::health
