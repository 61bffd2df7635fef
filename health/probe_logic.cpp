#include "health/probe_logic.hpp"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gh::health {
namespace {

constexpr std::size_t kRespLineLimit = 64 * 1024;
constexpr std::size_t kChunkExtensionLimit = 1024;

// The line at the start of `data` without its CRLF; nullopt while incomplete.
std::optional<std::string_view> resp_line(std::string_view data, bool& invalid) {
  std::size_t end = data.find("\r\n");
  if (end == std::string_view::npos) {
    invalid = data.size() > kRespLineLimit;
    return std::nullopt;
  }
  invalid = end > kRespLineLimit;
  return data.substr(0, end);
}

std::optional<long long> resp_integer(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

RespParse invalid_resp() {
  RespParse p;
  p.state = RespParse::State::invalid;
  return p;
}

RespParse parse_bulk(std::string_view data, std::size_t header, long long length) {
  RespParse p;
  if (length < 0) {
    p.state = RespParse::State::complete;
    p.reply = {'$', "", true};
    p.consumed = header;
    return p;
  }
  if (static_cast<unsigned long long>(length) > kRespLineLimit) return invalid_resp();
  const std::size_t total = header + static_cast<std::size_t>(length) + 2;
  if (data.size() < total) return p;
  if (data.substr(total - 2, 2) != "\r\n") return invalid_resp();
  p.state = RespParse::State::complete;
  p.reply = {'$', std::string(data.substr(header, static_cast<std::size_t>(length))), false};
  p.consumed = total;
  return p;
}

// PING and AUTH replies are never nested: a deeper array is not a Redis answering them,
// and the limit keeps the recursion off the stack's end.
constexpr int kRespMaxDepth = 4;

RespParse parse_resp_at(std::string_view data, int depth);

RespParse parse_array(std::string_view data, std::size_t header, long long count, int depth) {
  if (count > 0 && depth >= kRespMaxDepth) return invalid_resp();
  RespParse p;
  std::size_t offset = header;
  for (long long i = 0; i < count; ++i) {
    RespParse element = parse_resp_at(data.substr(offset), depth + 1);
    if (element.state != RespParse::State::complete) return element;
    offset += element.consumed;
  }
  p.state = RespParse::State::complete;
  p.reply = {'*', "", count < 0};
  p.consumed = offset;
  return p;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_sqlstate(std::string_view s) {
  if (s.size() != 5) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) &&
        !std::isupper(static_cast<unsigned char>(c)))
      return false;
  }
  return true;
}

// The last "SEVERITY:  SQLSTATE: message" in a verbose libpq message, as "SQLSTATE message".
std::optional<std::string> last_server_error(std::string_view message) {
  std::optional<std::string> found;
  for (std::size_t at = message.find(":  "); at != std::string_view::npos;
       at = message.find(":  ", at + 1)) {
    std::string_view rest = message.substr(at + 3);
    if (rest.size() < 7 || !is_sqlstate(rest.substr(0, 5)) || rest.substr(5, 2) != ": ") continue;
    std::string_view text = rest.substr(7);
    text = text.substr(0, text.find('\n'));
    found = std::string(rest.substr(0, 5)) + " " + std::string(trim(text));
  }
  return found;
}

RespParse parse_resp_at(std::string_view data, int depth) {
  if (data.empty()) return {};
  bool invalid = false;
  auto line = resp_line(data, invalid);
  if (invalid || (line && line->empty())) return invalid_resp();  // no type byte
  if (!line) return {};
  const char type = data[0];
  const std::string_view body = line->substr(1);
  const std::size_t header = line->size() + 2;
  switch (type) {
    case '+':
    case '-':
    case ':': {
      RespParse p;
      p.state = RespParse::State::complete;
      p.reply = {type, std::string(body), false};
      p.consumed = header;
      return p;
    }
    case '$':
    case '*': {
      auto n = resp_integer(body);
      if (!n || *n < -1) return invalid_resp();
      return type == '$' ? parse_bulk(data, header, *n) : parse_array(data, header, *n, depth);
    }
    default:
      return invalid_resp();
  }
}

}  // namespace

std::string timeout_reason(Milliseconds timeout) {
  return "timeout after " + std::to_string(timeout.count()) + " ms";
}

// --- RESP ------------------------------------------------------------------------------

std::string RespReply::line() const {
  if (type == '$' || type == '*') return std::string(1, type) + (null ? "-1" : text);
  return std::string(1, type) + text;
}

RespParse parse_resp_reply(std::string_view data) {
  return parse_resp_at(data, 0);
}

std::string resp_command(std::initializer_list<std::string_view> words) {
  std::string out = "*" + std::to_string(words.size()) + "\r\n";
  for (std::string_view w : words) {
    out += "$" + std::to_string(w.size()) + "\r\n";
    out.append(w);
    out += "\r\n";
  }
  return out;
}

ProbeResult redis_verdict(const std::vector<RespReply>& replies, bool sent_auth) {
  const std::size_t expected = sent_auth ? 2 : 1;
  if (replies.size() < expected) return ProbeResult::failure("incomplete reply from Redis");
  if (sent_auth && replies[0].type == '-') return ProbeResult::failure(replies[0].line());
  const RespReply& pong = replies[expected - 1];
  if (pong.type == '+' && pong.text == "PONG") return ProbeResult::pass("+PONG");
  if (pong.type == '-') return ProbeResult::failure(pong.line());
  return ProbeResult::failure("unexpected reply to PING: " + pong.line());
}

// --- HTTP ------------------------------------------------------------------------------

ProbeResult http_verdict(int status, std::string_view body, const HttpProbeSpec& spec) {
  const std::string code = "HTTP " + std::to_string(status);
  if (status < spec.status_min || status > spec.status_max) return ProbeResult::failure(code);
  if (!spec.expect_body.empty() && body.find(spec.expect_body) == std::string_view::npos) {
    return ProbeResult::failure(code + ": body does not contain \"" + spec.expect_body + "\"");
  }
  return ProbeResult::pass(code);
}

HttpResponseReader::HttpResponseReader(const HttpProbeSpec& spec)
    : spec_(spec),
      scanner_(http::HeadKind::response, http::HeadLimits{}),
      parser_(http::HeadKind::response, kChunkExtensionLimit) {}

void HttpResponseReader::Sink::on_body(const char* data, std::size_t length) {
  const std::size_t room = kHttpBodyLimit - std::min(kHttpBodyLimit, body_.size());
  body_.append(data, std::min(room, length));
}

std::optional<ProbeResult> HttpResponseReader::feed(std::string_view bytes) {
  return in_body_ ? feed_body(bytes) : feed_head(bytes);
}

std::optional<ProbeResult> HttpResponseReader::feed_head(std::string_view bytes) {
  head_.append(bytes);
  http::HeadScan scan = scanner_.scan(head_);
  if (scan.state == http::HeadScan::State::invalid) {
    return ProbeResult::failure(std::string("invalid HTTP response: ") + scan.error.reason);
  }
  if (scan.state == http::HeadScan::State::incomplete) return std::nullopt;
  parser_.begin_message();
  auto step = parser_.execute(head_.data(), scan.length, &sink_);
  if (step.outcome == http::HttpParser::Outcome::error) {
    return ProbeResult::failure(std::string("invalid HTTP response: ") + parser_.error_reason());
  }
  status_ = parser_.head().status;
  status_line_ = head_.substr(0, head_.find("\r\n"));
  std::string rest = head_.substr(scan.length);
  head_.clear();
  in_body_ = true;
  return feed_body(rest);  // also completes a bodiless response
}

std::optional<ProbeResult> HttpResponseReader::feed_body(std::string_view bytes) {
  http::HttpParser::Step step;
  if (parser_.message_complete()) {
    step.outcome = http::HttpParser::Outcome::message_complete;
  } else if (!bytes.empty()) {
    step = parser_.execute(bytes.data(), bytes.size(), &sink_);
  }
  if (step.outcome == http::HttpParser::Outcome::error) {
    return ProbeResult::failure(std::string("invalid HTTP response body: ") +
                                parser_.error_reason());
  }
  if (step.outcome == http::HttpParser::Outcome::message_complete) {
    if (status_ >= 200) return verdict();
    // 1xx interim response: the real one follows.
    in_body_ = false;
    scanner_.reset();
    body_.clear();
    std::string_view rest = bytes.substr(std::min(step.consumed, bytes.size()));
    return rest.empty() ? std::nullopt : feed_head(rest);
  }
  if (body_.size() >= kHttpBodyLimit) return verdict();
  return std::nullopt;
}

ProbeResult HttpResponseReader::finish() {
  if (!in_body_) return ProbeResult::failure("connection closed before the response head");
  if (parser_.finish()) return verdict();
  ProbeResult r = verdict();
  if (!r.ok) return r;
  return ProbeResult::failure("HTTP " + std::to_string(status_) +
                              ": connection closed before the body was complete");
}

ProbeResult HttpResponseReader::verdict() const {
  return http_verdict(status_, body_, spec_);
}

// --- PostgreSQL ------------------------------------------------------------------------

std::string summarize_pg_error(std::string_view message) {
  if (auto server = last_server_error(message)) return *server;
  std::string_view last;
  std::size_t start = 0;
  while (start < message.size()) {
    std::size_t end = message.find('\n', start);
    if (end == std::string_view::npos) end = message.size();
    std::string_view line = message.substr(start, end - start);
    const bool indented = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    const bool detail = line.rfind("DETAIL:", 0) == 0 || line.rfind("HINT:", 0) == 0 ||
                        line.rfind("LOCATION:", 0) == 0;
    if (!trim(line).empty() && !indented && !detail) last = trim(line);
    start = end + 1;
  }
  return last.empty() ? std::string("unknown libpq error") : std::string(last);
}

// --- secrets ---------------------------------------------------------------------------

Result<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  std::string secret = content.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

}  // namespace gh::health
