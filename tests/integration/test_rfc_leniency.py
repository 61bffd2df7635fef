"""Strict, but not stricter than the RFCs (issue 12): what Gatehouse must accept, what it
must still refuse, and what it must not pass on, through the real binary.

  * empty lines (CRLF) before a request line are ignored, a few (RFC 9112 §2.2): first
    request, after a POST body, pipelined or later on the same connection; a flood is 400;
  * BWS before ';' and around '=' in chunk extensions (RFC 9112 §7.1.1);
  * unknown method tokens are proxied (RFC 9110 §9.1), over HTTP/1.1 and HTTP/2;
  * names that read as a framing, hop-by-hop or forwarding field with '_' for '-'
    (Transfer_Encoding, Content_Length, X_Forwarded_For) never reach the upstream, over
    HTTP/1.1 and HTTP/2;
  * a chunk size over the body limit, or beyond 2^63 - 1, is refused at its size line:
    nothing of it is streamed and the upstream connection is discarded;
  * an HTTP/1.0 request without Host reaches the upstream with an empty Host
    (RFC 9112 §3.2, §3.3), not a made-up name.
"""

from __future__ import annotations

import time
import unittest

from h2_cases import H2TestCase
from h2_client import certificates, request_headers
from h2_support import h2_config, listener_section
from harness import GatehouseTestCase, HttpClient, make_config, raw_request

HOST = b"Host: example.test\r\n"


def setUpModule():
    certificates()  # the h2 fixtures' CA and leaf, once


def post(target: bytes, body: bytes, *headers: bytes) -> bytes:
    return (b"POST " + target + b" HTTP/1.1\r\n" + HOST + b"".join(headers) +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def get(target: bytes, *headers: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\n" + HOST + b"".join(headers) + b"\r\n"


def chunked_post(target: bytes, chunked_body: bytes) -> bytes:
    return (b"POST " + target + b" HTTP/1.1\r\n" + HOST +
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked_body)


class Http1Test(GatehouseTestCase):
    def setUp(self):
        self.upstream = self.start_upstream(name="app")
        self.gatehouse = self.start_gatehouse(make_config(
            {"app": [self.upstream]}, limits={"body": "4KiB"},
            timeouts={"request_header": "2s", "client_body": "2s"}))
        self.port = self.gatehouse.port

    def assert_clean_heads(self, *methods_and_targets: tuple[str, str]) -> None:
        """The upstream parsed exactly these requests, each head starting at its method."""
        self.assertEqual(self.upstream.errors, [])
        seen = [(r.method, r.target) for r in self.upstream.requests]
        self.assertEqual(seen, list(methods_and_targets))
        for request in self.upstream.requests:
            self.assertTrue(request.raw_head.startswith(request.method.encode() + b" "),
                            request.raw_head[:40])

    # -- RFC 9112 §2.2: empty lines before a request line ---------------------------

    def test_crlf_after_a_post_body_then_a_pipelined_get(self):
        with HttpClient(self.port) as client:
            client.send(post(b"/a", b"hello") + b"\r\n" + get(b"/b"))
            first, second = client.read_response(), client.read_response()
        self.assertEqual((first.status, first.body), (200, b"hello"))
        self.assertEqual(second.status, 200)
        self.assertEqual(second.headers.get("X-Target"), "/b")
        self.assert_clean_heads(("POST", "/a"), ("GET", "/b"))
        self.assertEqual(self.upstream.requests[0].body, b"hello")

    def test_crlf_after_a_post_body_then_a_get_later(self):
        with HttpClient(self.port) as client:
            client.send(post(b"/a", b"hello") + b"\r\n")
            self.assertEqual(client.read_response().status, 200)
            time.sleep(0.2)
            client.send(get(b"/b"))
            response = client.read_response()
        self.assertEqual((response.status, response.headers.get("X-Target")), (200, "/b"))
        self.assert_clean_heads(("POST", "/a"), ("GET", "/b"))

    def test_crlf_after_a_chunked_body(self):
        with HttpClient(self.port) as client:
            client.send(chunked_post(b"/a", b"5\r\nhello\r\n0\r\n\r\n") + b"\r\n" + get(b"/b"))
            self.assertEqual(client.read_response().status, 200)
            self.assertEqual(client.read_response().status, 200)
        self.assert_clean_heads(("POST", "/a"), ("GET", "/b"))

    def test_crlf_after_a_post_body_then_idle_closes_quietly(self):
        # No request began: past request_header the connection closes as an idle one
        # does, without a 408 the client could take for the answer to its next request.
        with HttpClient(self.port, timeout=4) as client:
            client.send(post(b"/a", b"hello") + b"\r\n")
            self.assertEqual(client.read_response().status, 200)
            started = time.monotonic()
            rest, closed = client.read_until_close()
        self.assertTrue(closed)
        self.assertEqual(rest, b"")
        self.assertGreater(time.monotonic() - started, 1.5)  # request_header is 2 s

    def test_empty_lines_before_the_first_request_even_split(self):
        data = b"\r\n\r\n" + get(b"/first", b"Connection: close\r\n")
        for split in (None, 1, 2, 3, 4, 5):
            with self.subTest(split=split):
                result = raw_request(self.port, data, split_at=split)
                self.assertEqual(result.status, 200, result.raw[:200])
        self.assertEqual(len(self.upstream.requests), 6)
        self.assertEqual(self.upstream.errors, [])
        for request in self.upstream.requests:
            self.assertTrue(request.raw_head.startswith(b"GET /first "), request.raw_head[:40])

    def test_a_flood_of_empty_lines_is_refused(self):
        result = raw_request(self.port, b"\r\n" * 9 + get(b"/flood"))
        self.assertEqual(result.status, 400, result.raw[:200])
        self.assertTrue(result.closed)
        self.assertEqual(self.upstream.connections, 0)

    def test_a_bare_lf_before_the_request_line_is_still_refused(self):
        result = raw_request(self.port, b"\n" + get(b"/lf"))
        self.assertEqual(result.status, 400, result.raw[:200])
        self.assertEqual(self.upstream.connections, 0)

    # -- RFC 9112 §7.1.1: BWS in chunk extensions -----------------------------------

    def test_whitespace_in_chunk_extensions(self):
        for index, size_line in enumerate([b"5 ;ext", b"5\t; ext = 1", b"5;a=\"x ;y\" ;b = c"]):
            with self.subTest(size_line=size_line):
                body = size_line + b"\r\nhello\r\n0 ; last\r\n\r\n"
                result = raw_request(self.port, chunked_post(b"/bws-%d" % index, body)
                                     .replace(HOST, HOST + b"Connection: close\r\n"))
                self.assertEqual(result.status, 200, result.raw[:200])
                self.assertEqual(self.upstream.requests[-1].body, b"hello")

    def test_whitespace_off_the_chunk_grammar_is_refused(self):
        for size_line in [b"5 ", b"5;a ", b"5;a=1 ", b"5 5"]:
            with self.subTest(size_line=size_line):
                body = size_line + b"\r\nhello\r\n0\r\n\r\n"
                result = raw_request(self.port, chunked_post(b"/bad", body))
                self.assertEqual(result.status, 400, result.raw[:200])
                self.assertTrue(result.closed)
        self.assertNotIn(b"hello", self.upstream.received_bytes())

    # -- RFC 9110 §9.1: unknown methods --------------------------------------------

    def test_unknown_methods_are_proxied_with_their_bodies(self):
        with HttpClient(self.port) as client:
            for method in ["QUERY", "FOO", "PROPFIND"]:
                with self.subTest(method=method):
                    body = b'{"q": "%s"}' % method.encode()
                    client.send(post(b"/x?y=1", body).replace(b"POST", method.encode(), 1))
                    response = client.read_response(method)
                    self.assertEqual(response.status, 200)
                    self.assertEqual(response.headers.get("X-Method"), method)
                    self.assertEqual(response.body, body)
                    self.assertEqual(self.upstream.requests[-1].body, body)
        self.assert_clean_heads(("QUERY", "/x?y=1"), ("FOO", "/x?y=1"), ("PROPFIND", "/x?y=1"))

    def test_a_known_method_in_other_case_is_refused(self):
        # A backend comparing methods without case would answer "head" without a body.
        for method in [b"head", b"Get"]:
            with self.subTest(method=method):
                result = raw_request(self.port, get(b"/").replace(b"GET", method, 1))
                self.assertEqual(result.status, 400, result.raw[:200])
        self.assertEqual(self.upstream.connections, 0)

    # -- names with '_' that read as framing, hop-by-hop or forwarding fields ----------

    def test_underscore_spellings_of_framing_fields_are_dropped(self):
        request = post(b"/cgi", b"hello", b"Transfer_Encoding: chunked\r\n",
                       b"Content_Length: 0\r\n", b"X_Forwarded_For: 6.6.6.6\r\n",
                       b"Keep_Alive: 1\r\n", b"X_Custom: kept\r\n", b"Connection: close\r\n")
        result = raw_request(self.port, request)
        self.assertEqual(result.status, 200, result.raw[:200])
        upstream_request = self.upstream.requests[-1]
        self.assertEqual(upstream_request.body, b"hello")
        names = {name.lower() for name in upstream_request.headers.names()}
        for dropped in ["transfer_encoding", "content_length", "x_forwarded_for", "keep_alive"]:
            self.assertNotIn(dropped, names, upstream_request.raw_head)
        self.assertEqual(upstream_request.headers.get("X_Custom"), "kept")
        self.assertEqual(upstream_request.headers.get("Content-Length"), "5")
        self.assertEqual(upstream_request.headers.get("X-Forwarded-For"), "127.0.0.1")

    # -- chunk sizes that cannot be honoured -------------------------------------------

    def check_chunk_refused_at_once(self, port: int, size: bytes, status: int) -> None:
        with HttpClient(port, timeout=3) as client:
            started = time.monotonic()
            client.send(chunked_post(b"/huge", b"5\r\nfirst\r\n" + size + b"\r\n" + b"x" * 64))
            raw, closed = client.read_until_close()
        self.assertLess(time.monotonic() - started, 1.5, "not refused at once")
        self.assertTrue(raw.startswith(b"HTTP/1.1 %d " % status), raw[:200])
        self.assertTrue(closed)
        # The head and the first chunk may have gone upstream, nothing of the refused one;
        # that connection is closed, never pooled: the next request gets a new one, and
        # nothing of it lands in the cut chunked body.
        self.assertNotIn(b"xxxx", self.upstream.received_bytes())
        self.assertEqual(self.get(port, "/after").status, 200)
        self.assertEqual(self.upstream.request_targets(), ["/after"])
        self.assertEqual(self.upstream.errors, [])
        self.assertEqual(self.upstream.connections, 2, "the cut connection was reused")

    def test_chunk_size_no_signed_length_holds_is_refused_at_once(self):
        unlimited = self.start_gatehouse(make_config({"app": [self.upstream]},
                                                     limits={"body": "0"}))
        self.check_chunk_refused_at_once(unlimited.port, b"ffffffffffffffff", 400)

    def test_chunk_over_the_body_limit_is_refused_at_once(self):
        self.check_chunk_refused_at_once(self.port, b"1000", 413)  # 5 + 4096 > 4 KiB

    def test_chunks_up_to_the_body_limit_pass(self):
        body = b"5\r\nfirst\r\nffb\r\n" + b"y" * 0xffb + b"\r\n0\r\n\r\n"
        result = raw_request(self.port, chunked_post(b"/fits", body)
                             .replace(HOST, HOST + b"Connection: close\r\n"))
        self.assertEqual(result.status, 200, result.raw[:200])
        self.assertEqual(self.upstream.requests[-1].body_length, 4096)

    # -- RFC 9112 §3.2: HTTP/1.0 without Host ---------------------------------------

    def test_http10_without_host_gets_an_empty_host_upstream(self):
        result = raw_request(self.port, b"GET /old HTTP/1.0\r\nAccept: */*\r\n\r\n")
        self.assertEqual(result.status, 200, result.raw[:200])
        upstream_request = self.upstream.requests[-1]
        self.assertEqual(upstream_request.headers.get_all("Host"), [""],
                         upstream_request.raw_head)
        self.assertIn(b"\r\nHost:\r\n", upstream_request.raw_head)
        self.assertNotIn("X-Forwarded-Host", upstream_request.headers)

    def test_http10_with_host_keeps_it(self):
        result = raw_request(self.port, b"GET /old HTTP/1.0\r\nHost: example.test\r\n\r\n")
        self.assertEqual(result.status, 200, result.raw[:200])
        self.assertEqual(self.upstream.requests[-1].headers.get_all("Host"), ["example.test"])


class Http2Test(H2TestCase):
    """HTTP/2 requests are rebuilt into the same HTTP/1.1 head: the same rules hold."""

    def setUp(self):
        self.upstream = self.start_upstream(name="app")
        self.gh = self.start_gatehouse(h2_config(
            {"app": [self.upstream]}, listeners=[listener_section(tls=False, h2c=True)]))
        self.port = self.gh.port

    def send(self, method: str, path: str, body: bytes, extra=()):
        conn = self.h2(tls=False)
        sid = conn.send_headers(None, request_headers(method, path, scheme="http", extra=[
            ("content-length", len(body)), *extra]), raw=True, end_stream=False)
        conn.send_data(sid, body, end_stream=True)
        return conn.response(sid)

    def test_unknown_method(self):
        response = self.send("QUERY", "/q", b"select 1")
        self.assertEqual(response.status, 200, response.describe())
        self.assertEqual(response.body, b"select 1")
        self.assertEqual((self.upstream.requests[-1].method, self.upstream.requests[-1].body),
                         ("QUERY", b"select 1"))

    def test_underscore_spellings_of_framing_fields_are_dropped(self):
        response = self.send("POST", "/cgi", b"hello", [
            ("transfer_encoding", "chunked"), ("content_length", "0"),
            ("x_forwarded_for", "6.6.6.6"), ("x_custom", "kept")])
        self.assertEqual(response.status, 200, response.describe())
        upstream_request = self.upstream.requests[-1]
        self.assertEqual(upstream_request.body, b"hello")
        names = upstream_request.headers.names()
        for dropped in ["transfer_encoding", "content_length", "x_forwarded_for"]:
            self.assertNotIn(dropped, names, upstream_request.raw_head)
        self.assertEqual(upstream_request.headers.get("x_custom"), "kept")


if __name__ == "__main__":
    unittest.main()
