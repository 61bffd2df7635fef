// Fuzz target: what Gatehouse forwards (proxy/rewrite.*). A head the scanner and
// analyze_*() accept is rewritten as the proxy does it (write_upstream_request for
// requests, write_client_response for responses), and the rewritten head must be one a
// strict peer reads the same way:
//   - it scans as one complete head (nothing injected: a value cannot end a line early);
//   - analyze_*() accepts it, with the framing Gatehouse chose (same Content-Length, or
//     chunked, or close-delimited for the client) and the same Host / Upgrade;
//   - it carries at most one framing field of each kind, and no field that was hop-by-hop
//     in the original (listed, or named in its Connection) other than the framing,
//     Connection and Upgrade fields Gatehouse writes itself.
// Input: one flag byte, then a head. Flag bit 0: 0 = request, 1 = response; bit 1: the
// client speaks HTTP/1.0; bit 2: keep the client connection; bit 3: the request was HEAD.
#include <string>

#include "core/http_head.hpp"
#include "proxy/rewrite.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using gh::fuzz::escaped;
using gh::http::BodyFraming;
using gh::http::HeadKind;
using gh::http::HeadScan;
using gh::http::iequals;
using gh::http::MessageHead;
using gh::http::MessageInfo;

// Issue 12: a field such as "Transfer_Encoding" reads as a framing field to backends that
// map '_' to '-' (CGI/WSGI); the proxy drops such fields.

bool underscore_framing(std::string_view name) {
  if (name.find('_') == std::string_view::npos) return false;
  std::string dashed(name);
  for (char& c : dashed) c = c == '_' ? '-' : c;
  return iequals(dashed, "content-length") || iequals(dashed, "transfer-encoding") ||
         gh::http::is_hop_by_hop(dashed, MessageHead{});
}

// The rewritten bytes, scanned and analysed like a peer would.
struct Reread {
  MessageHead head;
  MessageInfo info;
  std::size_t content_lengths = 0;
  std::size_t transfer_encodings = 0;
};

Reread reread(const std::string& out, HeadKind kind, std::string_view request_method) {
  Reread r;
  gh::http::HeadLimits roomy;
  roomy.request_line = roomy.header_bytes = out.size() + 1;
  roomy.header_count = 1000;
  const HeadScan scan = gh::http::HeadScanner(kind, roomy, &r.head).scan(out);
  GH_FUZZ_CHECK(scan.state == HeadScan::State::complete && scan.length == out.size(),
                "rewritten head does not scan as one head: " + escaped(out, 600) + " (" +
                    (scan.state == HeadScan::State::invalid ? scan.error.reason : "") + ")");
  gh::http::HeadError error;
  // An HTTP/1.0 request without Host goes upstream with an empty one (RFC 9112 §3.2),
  // which analyze_request() rightly refuses from a client: read it back as named.
  if (kind == HeadKind::request) {
    for (auto& field : r.head.headers) {
      if (iequals(field.name, "host") && field.value.empty()) field.value = "unnamed.invalid";
    }
  }
  const bool ok = kind == HeadKind::request
                      ? gh::http::analyze_request(r.head, r.info, error)
                      : gh::http::analyze_response(r.head, request_method, r.info, error);
  GH_FUZZ_CHECK(ok,
                std::string("rewritten head refused: ") + error.reason + ": " + escaped(out, 600));
  for (const auto& field : r.head.headers) {
    if (iequals(field.name, "content-length")) ++r.content_lengths;
    if (iequals(field.name, "transfer-encoding")) ++r.transfer_encodings;
  }
  return r;
}

// No field that was hop-by-hop in the original head (listed, or named in its Connection)
// is in the rewritten one, but the framing/Connection/Upgrade fields Gatehouse writes
// itself and Host. (Judged against the original: Gatehouse's own "Connection: close"
// makes a forwarded end-to-end field named "close" look hop-by-hop in the rewritten head.)
// `own_length`: Gatehouse wrote a Content-Length of its own (the upstream's may have been
// named in Connection: that one must go, Gatehouse's stays).
void check_hop_by_hop(const MessageHead& original, const Reread& r, const std::string& out,
                      bool own_length) {
  std::size_t connections = 0, upgrades = 0;
  for (const auto& field : r.head.headers) {
    if (iequals(field.name, "connection")) {
      ++connections;
      continue;
    }
    if (iequals(field.name, "upgrade")) {
      ++upgrades;
      continue;
    }
    if (iequals(field.name, "transfer-encoding") || iequals(field.name, "host")) continue;
    if (own_length && iequals(field.name, "content-length")) continue;
    GH_FUZZ_CHECK(!gh::http::is_hop_by_hop(field.name, original),
                  "hop-by-hop field " + escaped(field.name) + " forwarded: " + escaped(out, 600));
  }
  GH_FUZZ_CHECK(connections <= 1 && upgrades <= 1, escaped(out, 600));
  GH_FUZZ_CHECK(r.transfer_encodings <= 1, escaped(out, 600));
}

void check_request(const MessageHead& head, const MessageInfo& info) {
  std::string out;
  const gh::proxy::ForwardedFor forwarded{"192.0.2.1", "https"};
  gh::proxy::write_upstream_request(head, info, forwarded, out);
  const Reread r = reread(out, HeadKind::request, {});
  check_hop_by_hop(head, r, out, info.framing == BodyFraming::content_length);
  GH_FUZZ_CHECK(r.head.method == head.method && r.head.target == head.target, escaped(out, 600));
  GH_FUZZ_CHECK(r.info.framing == info.framing && r.info.content_length == info.content_length,
                "framing changed: " + escaped(out, 600));
  GH_FUZZ_CHECK(r.content_lengths <= 1, escaped(out, 600));
  GH_FUZZ_CHECK(r.info.upgrade == info.upgrade, escaped(out, 600));
  if (!info.host.empty()) GH_FUZZ_CHECK(r.info.host == info.host, escaped(out, 600));
  // Backends, not browsers, read '_' as '-': only the upstream request is held to it.
  for (const auto& field : r.head.headers) {
    GH_FUZZ_CHECK(!underscore_framing(field.name),
                  escaped(field.name) + " forwarded: " + escaped(out, 600));
  }
}

void check_response(const MessageHead& head, const MessageInfo& info, std::string_view method,
                    int client_minor, bool keep_alive) {
  const gh::proxy::ClientFraming framing = gh::proxy::client_framing(info, client_minor);
  std::string out;
  gh::proxy::write_client_response(head, head.reason, info, framing, keep_alive, client_minor, out);
  const Reread r = reread(out, HeadKind::response, method);
  check_hop_by_hop(head, r, out, framing == gh::proxy::ClientFraming::content_length);
  GH_FUZZ_CHECK(r.head.status == head.status, escaped(out, 600));
  using gh::proxy::ClientFraming;
  switch (framing) {
    case ClientFraming::content_length:
      GH_FUZZ_CHECK(r.info.framing == BodyFraming::content_length &&
                        r.info.content_length == info.content_length && r.content_lengths == 1,
                    "framing changed: " + escaped(out, 600));
      break;
    case ClientFraming::chunked:
      GH_FUZZ_CHECK(r.info.framing == BodyFraming::chunked && r.content_lengths == 0,
                    "framing changed: " + escaped(out, 600));
      break;
    case ClientFraming::close_delimited:
      GH_FUZZ_CHECK(r.info.framing == BodyFraming::until_close && !r.info.keep_alive,
                    "framing changed: " + escaped(out, 600));
      break;
    case ClientFraming::none:
      GH_FUZZ_CHECK(r.info.framing == BodyFraming::none, "framing changed: " + escaped(out, 600));
      break;
  }
  if (head.status == 101) GH_FUZZ_CHECK(r.info.upgrade == info.upgrade, escaped(out, 600));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const HeadKind kind = (data[0] & 1) ? HeadKind::response : HeadKind::request;
  const int client_minor = (data[0] & 2) ? 0 : 1;
  const bool keep_alive = (data[0] & 4) != 0;
  const std::string_view method = (data[0] & 8) ? "HEAD" : "GET";
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  MessageHead head;
  const HeadScan scan = gh::http::HeadScanner(kind, gh::http::HeadLimits{}, &head).scan(input);
  if (scan.state != HeadScan::State::complete) return 0;
  MessageInfo info;
  gh::http::HeadError error;
  if (kind == HeadKind::request) {
    if (!gh::http::analyze_request(head, info, error)) return 0;
    check_request(head, info);
  } else {
    if (head.status < 200 && head.status != 101) return 0;  // interim: relayed as they are
    if (!gh::http::analyze_response(head, method, info, error)) return 0;
    check_response(head, info, method, client_minor, keep_alive);
  }
  return 0;
}
