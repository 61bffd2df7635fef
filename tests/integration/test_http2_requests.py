"""HTTP/2 requests as HTTP semantics, through the real gatehouse binary: what reaches the
HTTP/1.1 upstream and what comes back.

  * malformed requests: pseudo-header and connection-specific field rules, CR/LF/NUL,
    bad trailers; RST_STREAM or 400 and nothing reaches the upstream (RFC 9113 §8.1-8.3;
    h2spec 8.1, 8.1.2.x);
  * content-length (H2.CL; h2spec 8.1.2.6): a disagreeing body resets the stream, the
    upstream never holds a complete request and its connection is not reused;
  * answered before the body ended: the dropped rest never leaves a pooled connection
    waiting for it, a bodyless answer reaches the client before RST_STREAM(NO_ERROR);
  * the request rebuilt for the HTTP/1.1 upstream and the response translated back;
  * limits (431, 414, 413), routing by :authority and path, per-stream upstream errors.

The client is h2_client.H2Conn; the origin is h2_support.RecordingUpstream; the shared
fixture and assertions are in h2_cases.
"""

from __future__ import annotations

import socket
import time
import unittest

from h2_client import (AUTHORITY, CANCEL, DATA, FLAG_END_HEADERS, HEADERS, NO_ERROR,
                       PROTOCOL_ERROR, SETTINGS_INITIAL_WINDOW_SIZE, H2Closed, certificates,
                       frame_bytes, raw_block, request_headers)
from h2_cases import SETTLE, H2TestCase, SharedProxy, verbose
from h2_support import RecordingUpstream, UpstreamSnapshot, h2_config, listener_section
from harness import (LOCALHOST, Gatehouse, HttpClient, delayed_handler, echo_handler,
                     garbage_handler)


def setUpModule():
    certificates()   # make the CA and leaf once, before any proxy starts


# --------------------------------------------------------------------------------------
# Malformed requests (RFC 9113 §8.1-8.3; h2spec 8.1, 8.1.2.x): RST_STREAM or 400, and
# nothing reaches the upstream
# --------------------------------------------------------------------------------------


def base_headers(path="/m", method="GET"):
    return [(":method", method), (":scheme", "https"), (":path", path), (":authority", AUTHORITY)]


def with_fields(*fields, path="/m", method="GET"):
    return base_headers(path, method) + list(fields)


# (name, header list sent verbatim as never-indexed literals, acceptable statuses)
MALFORMED = [
    ("CR in value", with_fields(("x-a", "a\rb"))),
    ("LF in value", with_fields(("x-a", "a\nb"))),
    ("CRLF header injection in value", with_fields(("x-a", "a\r\nx-injected: 1"))),
    ("NUL in value", with_fields(("x-a", "a\x00b"))),
    ("CR in name", with_fields(("x-a\r", "b"))),
    ("LF in name", with_fields(("x-a\nx-b", "c"))),
    ("NUL in name", with_fields(("x-\x00a", "b"))),
    ("space in name", with_fields(("x a", "b"))),
    ("colon in name", with_fields(("x:a", "b"))),
    ("empty name", with_fields(("", "b"))),
    ("leading space in value", with_fields(("x-a", " b"))),
    ("trailing space in value", with_fields(("x-a", "b "))),
    ("leading tab in value", with_fields(("x-a", "\tb"))),
    ("trailing tab in value", with_fields(("x-a", "b\t"))),
    ("uppercase name", with_fields(("X-Upper", "b"))),
    ("uppercase letter inside name", with_fields(("x-uPper", "b"))),
    ("connection", with_fields(("connection", "keep-alive"))),
    ("connection: close", with_fields(("connection", "close"))),
    ("keep-alive", with_fields(("keep-alive", "timeout=5"))),
    ("transfer-encoding chunked", with_fields(("transfer-encoding", "chunked"))),
    ("upgrade", with_fields(("upgrade", "websocket"))),
    ("proxy-connection", with_fields(("proxy-connection", "keep-alive"))),
    ("te: gzip", with_fields(("te", "gzip"))),
    ("te: trailers, deflate", with_fields(("trailers", "test"), ("te", "trailers, deflate"))),
    ("missing :method", base_headers()[1:]),
    ("missing :scheme", [base_headers()[0]] + base_headers()[2:]),
    ("missing :path", base_headers()[:2] + base_headers()[3:]),
    ("missing :authority and host", base_headers()[:3]),
    ("empty :path", [(":method", "GET"), (":scheme", "https"), (":path", ""), (":authority", AUTHORITY)]),
    ("duplicate :method", with_fields((":method", "GET"))),
    ("duplicate :scheme", with_fields((":scheme", "https"))),
    ("duplicate :path", with_fields((":path", "/m"))),
    ("duplicate :authority", with_fields((":authority", AUTHORITY))),
    ("unknown pseudo-header", with_fields((":test", "ok"))),
    (":status in a request", with_fields((":status", "200"))),
    ("pseudo-headers after a regular field", [("x-a", "b")] + base_headers()),
    (":authority after a regular field", base_headers()[:3] + [("x-a", "b"), base_headers()[3]]),
    (":scheme foo", [(":method", "GET"), (":scheme", "foo"), (":path", "/m"), (":authority", AUTHORITY)]),
    (":scheme empty", [(":method", "GET"), (":scheme", ""), (":path", "/m"), (":authority", AUTHORITY)]),
    (":path without leading slash", base_headers("m")),
    (":path absolute-form", base_headers("https://example.test/m")),
    (":path * with GET", base_headers("*")),
    (":path with #", base_headers("/m#frag")),
    (":path with space", base_headers("/m x")),
    (":path with CRLF", base_headers("/m\r\nx-injected: 1")),
    (":method with request-line injection",
     [(":method", "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\nGET"), (":scheme", "https"),
      (":path", "/m"), (":authority", AUTHORITY)]),
    (":method empty", [(":method", ""), (":scheme", "https"), (":path", "/m"), (":authority", AUTHORITY)]),
    (":authority with space", [(":method", "GET"), (":scheme", "https"), (":path", "/m"),
                               (":authority", "exa mple.test")]),
    (":authority with CRLF", [(":method", "GET"), (":scheme", "https"), (":path", "/m"),
                              (":authority", "example.test\r\nx-injected: 1")]),
    (":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL",
     [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/ws"),
      (":authority", AUTHORITY)]),
    (":protocol on GET", with_fields((":protocol", "websocket"))),
    ("content-length not a number", with_fields(("content-length", "abc"), method="POST")),
    ("content-length negative", with_fields(("content-length", "-1"), method="POST")),
    ("content-length list", with_fields(("content-length", "1, 1"), method="POST")),
    ("two different content-length", with_fields(("content-length", "1"), ("content-length", "2"),
                                                 method="POST")),
]


class MalformedRequestTest(SharedProxy):
    def check_case(self, name: str, headers, statuses=(400,), end_stream=True,
                   reset_codes=(PROTOCOL_ERROR,)):
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        sid = conn.send_headers(None, headers, raw=True, end_stream=end_stream)
        outcome = self.assert_rejected(conn, sid, statuses, reset_codes=reset_codes, what=name)
        self.assert_nothing_forwarded(snapshot, name)
        self.assertFalse(conn.goaways, f"{name}: a stream error must not end the connection: "
                                       f"{conn.describe_frames()}")
        # The same connection serves the next stream (HPACK state intact), and so does a
        # new one.
        self.assert_served(conn=conn, path="/after-malformed")
        forwarded = self.echo.requests[-1]
        self.assertEqual(forwarded.target, "/after-malformed")
        self.assertNotIn("x-injected", forwarded.headers)
        return outcome

    def test_malformed_requests_are_rejected_before_the_upstream(self):
        outcomes = {}
        for name, headers in MALFORMED:
            with self.subTest(name):
                outcomes[name] = self.check_case(name, headers)
        self.assert_served()
        verbose(self, ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))

    def test_connect_is_405_or_reset(self):
        self.check_case("CONNECT", [(":method", "CONNECT"), (":authority", "example.test:443")],
                        statuses=(405, 400))

    def test_trailers_without_end_stream(self):
        # h2spec 8.1/1: a second HEADERS without END_STREAM.
        self.body_then_bad_trailers("/trailers-no-end", [("x-trailer", "v")], end_stream=False)

    def test_pseudo_header_in_trailers(self):
        # h2spec 8.1.2.1/3
        self.body_then_bad_trailers("/trailers-pseudo", [(":method", "POST")], end_stream=True)

    def body_then_bad_trailers(self, path, trailers, end_stream):
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", path), end_stream=False)
        conn.send_data(sid, b"test")
        conn.send_headers(sid, trailers, raw=True, end_stream=end_stream)
        self.assert_rejected(conn, sid, (400,), what=f"trailers {trailers}")
        time.sleep(SETTLE)
        self.assertNotIn(path, self.echo.request_targets(),
                         "the upstream received a complete request whose trailers were malformed")
        carried = self.echo.connections_with_head(path)
        if carried:
            self.assertTrue(self.echo.wait_ended(carried), "upstream connection left open")
        self.assert_served(conn=conn)

    def test_options_asterisk_is_not_malformed_and_routed_like_http11(self):
        with HttpClient(self.plain_port) as client:
            h1 = client.request("OPTIONS", "*")
        conn = self.h2()
        sid = conn.send_headers(None, [(":method", "OPTIONS"), (":scheme", "https"), (":path", "*"),
                                       (":authority", AUTHORITY)], raw=True)
        response = conn.response(sid)
        self.assertIsNone(response.reset, response.describe())
        self.assertEqual(response.status, h1.status,
                         f"OPTIONS * over h2 answered {response.status}, over HTTP/1.1 {h1.status}")

    def test_unusual_but_valid_requests_are_forwarded(self):
        conn = self.h2()
        cases = [
            ("te: trailers is allowed (and dropped)", with_fields(("te", "trailers"), path="/valid/te"),
             lambda r: self.assertNotIn("te", r.headers)),
            ("host instead of :authority", [(":method", "GET"), (":scheme", "https"),
                                            (":path", "/valid/host"), ("host", "other.example.test")],
             lambda r: self.assertEqual(r.headers.get_all("host"), ["other.example.test"])),
            ("inner spaces and tabs in a value", with_fields(("x-a", "b \t c"), path="/valid/ws"),
             lambda r: self.assertEqual(r.headers.get("x-a"), "b \t c")),
            (":scheme http on TLS", [(":method", "GET"), (":scheme", "http"), (":path", "/valid/http"),
                                     (":authority", AUTHORITY)],
             lambda r: self.assertEqual(r.headers.get_all("x-forwarded-proto"), ["https"])),
            ("empty value", with_fields(("x-empty", ""), path="/valid/empty"),
             lambda r: self.assertEqual(r.headers.get_all("x-empty"), [""])),
        ]
        for name, headers, check in cases:
            with self.subTest(name):
                before = len(self.echo.requests)
                sid = conn.send_headers(None, headers, raw=True)
                response = conn.response(sid)
                self.assertEqual(response.status, 200, f"{name}: {response.describe()}")
                self.assertTrue(self.echo.wait_for_requests(before + 1))
                check(self.echo.requests[-1])



# --------------------------------------------------------------------------------------
# content-length (H2.CL; h2spec 8.1.2.6)
# --------------------------------------------------------------------------------------


class ContentLengthTest(SharedProxy):
    def warm_pool(self, conn):
        response = conn.get("/warm")
        self.assertEqual(response.status, 200)
        return int(response.header("x-connection-id"))

    def check_poisoned(self, conn, path: str):
        """The request never completed upstream; a connection that carried any of it was
        closed; the next request arrives on another connection."""
        time.sleep(SETTLE)
        self.assertNotIn(path, self.echo.request_targets(),
                         f"{path}: the upstream received a complete request")
        carried = self.echo.connections_with_head(path)
        if carried:
            self.assertTrue(self.echo.wait_ended(carried, 3),
                            f"{path}: upstream connection {carried} still open after the reset")
        follow = (conn if not conn.goaways and not conn.closed else self.h2()).get(f"{path}-next")
        self.assertEqual(follow.status, 200, follow.describe())
        next_id = int(follow.header("x-connection-id"))
        self.assertNotIn(next_id, carried,
                         f"{path}: the upstream connection of the reset stream was reused")
        self.assertEqual(self.echo.errors, [], "the upstream saw a malformed request")

    def test_content_length_larger_than_data(self):
        conn = self.h2()
        self.warm_pool(conn)
        sid = conn.send_headers(None, request_headers("POST", "/cl/short", extra=[("content-length", "10")]),
                                end_stream=False)
        conn.send_data(sid, b"hello", end_stream=True)
        self.assert_stream_error(conn, sid, PROTOCOL_ERROR, "content-length 10, 5 bytes")
        self.assertIsNone(conn.stream(sid).status if conn.stream(sid).ended else None)
        self.check_poisoned(conn, "/cl/short")

    def test_content_length_smaller_than_data(self):
        conn = self.h2()
        self.warm_pool(conn)
        sid = conn.send_headers(None, request_headers("POST", "/cl/long", extra=[("content-length", "5")]),
                                end_stream=False)
        conn.send_data(sid, b"hello, world", end_stream=True)
        self.assert_stream_error(conn, sid, PROTOCOL_ERROR, "content-length 5, 12 bytes")
        self.check_poisoned(conn, "/cl/long")

    def test_content_length_smaller_than_several_data_frames(self):
        # h2spec 8.1.2.6/2: content-length 1, DATA "test" twice.
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", "/cl/multi", extra=[("content-length", "1")]),
                                end_stream=False)
        conn.send_data(sid, b"test")
        conn.send_data(sid, b"test", end_stream=True)
        self.assert_stream_error(conn, sid, PROTOCOL_ERROR, "content-length 1, 8 bytes")
        self.check_poisoned(conn, "/cl/multi")

    def test_content_length_without_any_data(self):
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", "/cl/none", extra=[("content-length", "10")]),
                                end_stream=True)
        self.assert_stream_error(conn, sid, PROTOCOL_ERROR, "content-length 10 and END_STREAM")
        self.check_poisoned(conn, "/cl/none")

    SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"

    def test_content_length_zero_with_a_smuggled_request_in_the_same_write(self):
        # HEADERS (content-length: 0, no END_STREAM) and DATA carrying an HTTP/1.1 request,
        # in one write: the stream is reset and the upstream gets no complete request.
        conn = self.h2()
        self.warm_pool(conn)
        sid = conn.new_stream_id()
        block = conn.encode(request_headers("POST", "/cl/zero", extra=[("content-length", "0")]))
        conn.send(frame_bytes(HEADERS, FLAG_END_HEADERS, sid, block) +
                  frame_bytes(DATA, 1, sid, self.SMUGGLED))
        self.assert_stream_error(conn, sid, PROTOCOL_ERROR, "content-length 0 with DATA")
        self.assertIsNone(conn.stream(sid).status, "answered a request whose DATA broke its "
                                                   "content-length")
        self.assertNotIn(b"/smuggled", self.echo.received_bytes())
        self.check_poisoned(conn, "/cl/zero")
        self.assertNotIn(b"/smuggled", self.echo.received_bytes())

    def test_content_length_reached_then_exceeded_in_the_same_write(self):
        # content-length 4, DATA "test" without END_STREAM, then more DATA, all in one
        # write: the stream is reset, so the upstream must not have a complete request
        # either (the client will treat the POST as failed and may retry it).
        conn = self.h2()
        self.warm_pool(conn)
        sid = conn.new_stream_id()
        block = conn.encode(request_headers("POST", "/cl/exact-then-more",
                                            extra=[("content-length", "4")]))
        conn.send(frame_bytes(HEADERS, FLAG_END_HEADERS, sid, block) +
                  frame_bytes(DATA, 0, sid, b"test") + frame_bytes(DATA, 1, sid, self.SMUGGLED))
        self.assert_stream_error(conn, sid, PROTOCOL_ERROR, "content-length 4, 4 + 35 bytes")
        self.assertIsNone(conn.stream(sid).status)
        self.assertNotIn(b"/smuggled", self.echo.received_bytes())
        self.check_poisoned(conn, "/cl/exact-then-more")
        self.assertNotIn(b"/smuggled", self.echo.received_bytes())

    def test_content_length_zero_then_late_data_never_smuggles(self):
        # The same with the DATA 0.3 s later: the proxy may have answered the (then
        # complete) request, but the DATA's bytes must never reach the upstream.
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", "/cl/zero-late",
                                                      extra=[("content-length", "0")]),
                                end_stream=False)
        time.sleep(0.3)
        conn.try_send(frame_bytes(DATA, 1, sid, self.SMUGGLED))
        conn.wait_stream_outcome(sid, timeout=3)
        state = conn.stream(sid)
        if state.reset is not None and state.status is None:
            self.assertEqual(state.reset, PROTOCOL_ERROR, state.describe())
        time.sleep(SETTLE)
        self.assertNotIn(b"/smuggled", self.echo.received_bytes())
        self.assertNotIn("/smuggled", self.echo.request_targets())
        follow = (conn if not conn.goaways else self.h2()).get("/cl/zero-late-next")
        self.assertEqual(follow.status, 200)
        self.assertNotIn(b"/smuggled", self.echo.received_bytes())

    def test_matching_content_length_is_forwarded_as_content_length(self):
        conn = self.h2()
        body = b"x" * 100_000
        sid = conn.request("POST", "/cl/ok", headers=[("content-length", str(len(body)))], body=body)
        response = conn.response(sid)
        self.assertEqual(response.status, 200, response.describe())
        forwarded = self.echo.requests[-1]
        self.assertEqual(forwarded.framing, "length")
        self.assertEqual(forwarded.headers.get_all("content-length"), [str(len(body))])
        self.assertEqual(forwarded.body, body)
        self.assertEqual(response.body, body)

    def test_body_without_content_length_is_forwarded_chunked(self):
        conn = self.h2()
        body = bytes(range(256)) * 1000
        sid = conn.send_headers(None, request_headers("PUT", "/cl/chunked"), end_stream=False)
        for offset in range(0, len(body), 7000):
            conn.upload(sid, body[offset:offset + 7000], end_stream=offset + 7000 >= len(body))
        response = conn.response(sid)
        self.assertEqual(response.status, 200, response.describe())
        forwarded = self.echo.requests[-1]
        self.assertEqual(forwarded.framing, "chunked")
        self.assertNotIn("content-length", forwarded.headers)
        self.assertEqual(forwarded.headers.get_all("transfer-encoding"), ["chunked"])
        self.assertEqual(forwarded.body, body)

    def test_post_without_body(self):
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", "/cl/empty"), end_stream=True)
        self.assertEqual(conn.response(sid).status, 200)
        forwarded = self.echo.requests[-1]
        self.assertNotEqual(forwarded.framing, "chunked")
        self.assertEqual(forwarded.body_length, 0)



# --------------------------------------------------------------------------------------
# Answered before the request body ended (an upstream that reads the body afterwards)
# --------------------------------------------------------------------------------------

EARLY_ANSWERS = {"/early/404": b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
                 "/early/204": b"HTTP/1.1 204 No Content\r\n\r\n",
                 "/early/cl0": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}


def answer_early(conn, head: bytes) -> None:
    """Like Node's http server: answers at once, then drains the declared body before it
    parses the next request on the connection."""
    answer = EARLY_ANSWERS.get(head.split(b" ", 2)[1].decode("latin-1"))
    if answer:
        conn.send(answer)


def echo_unless_answered(request, conn):
    if request.target not in EARLY_ANSWERS:
        echo_handler(request, conn)


class EarlyAnswerTest(H2TestCase):
    def setUp(self):
        self.upstream = RecordingUpstream(echo_unless_answered, name="early", on_head=answer_early)
        self.addCleanup(self.upstream.close)
        self.gh = self.start_gatehouse(h2_config(
            {"app": [self.upstream]}, listeners=[listener_section(tls=False, h2c=True)]))
        self.port = self.gh.port

    def post(self, conn, path, body, **kwargs):
        return conn.send_headers(None, request_headers("POST", path, scheme="http", extra=[
            ("content-length", len(body))]), raw=True, end_stream=False, **kwargs)

    def test_body_dropped_after_an_early_answer_never_reaches_the_pool(self):
        # The early-answered request declares a body exactly as long as the head the
        # upstream gets for the next request: if its connection went back to the pool,
        # the upstream would take that head as the body and the next body as a request.
        smuggled = b"GET /smuggled HTTP/1.1\r\nHost: internal\r\n\r\n"
        probe = self.h2(tls=False)
        sid = self.post(probe, "/probe", smuggled)
        probe.send_data(sid, smuggled, end_stream=True)
        self.assertEqual(probe.response(sid).status, 200)
        declared = len(self.upstream.head_log[-1][1])  # "/probe" as long as "/after"
        conn = self.h2(tls=False, settings={SETTINGS_INITIAL_WINDOW_SIZE: 0})
        sid = self.post(conn, "/early/404", b"A" * declared)
        self.assertTrue(conn.pump(lambda: conn.stream(sid).status is not None, 3),
                        f"no early answer: {conn.describe_frames()}")  # its DATA waits
        conn.send_data(sid, b"A" * declared, end_stream=True)
        conn.drain(SETTLE)
        conn.send_window_update(sid, 1 << 20)
        self.assertEqual(conn.response(sid).status, 404, conn.describe_frames())
        after = self.post(conn, "/after", smuggled)
        conn.send_data(after, smuggled, end_stream=True)
        conn.send_window_update(after, 1 << 20)
        response = conn.response(after)
        time.sleep(SETTLE)
        self.assertNotIn("/smuggled", self.upstream.request_targets(),
                         "the upstream parsed a request body as a request")
        self.assertEqual((response.status, response.header("x-target"), response.body),
                         (200, "/after", smuggled), response.describe())
        early = self.upstream.connections_with_head("/early/404")
        self.assertNotIn(int(response.header("x-connection-id")), early,
                         "the early-answered request's upstream connection was reused")
        self.assertTrue(self.upstream.wait_ended(early), "its connection was left open")

    def test_bodyless_early_answer_reaches_the_client_before_the_reset(self):
        # 204 or Content-Length: 0 while the client still uploads: HEADERS with END_STREAM,
        # then RST_STREAM(NO_ERROR) asking the client to stop (RFC 9113 §8.1). A race: the
        # reset once overtook the HEADERS in 1 to 15 trials of 100.
        for trial in range(100):
            path = ("/early/204", "/early/cl0")[trial % 2]
            with self.subTest(trial=trial, path=path):
                conn = self.h2(tls=False)
                sid = conn.send_headers(None, request_headers("POST", path, scheme="http"),
                                        end_stream=False)
                for _ in range(200):
                    if conn.stream_done(sid) or not conn.try_send(
                            frame_bytes(DATA, 0, sid, b"x" * 100)):
                        break
                    conn.read_and_process(0)
                conn.pump(lambda: conn.stream(sid).reset is not None, 2)
                kinds = [type(f).__name__ for f in conn.frames
                         if f.stream_id == sid and type(f).__name__ != "WindowUpdateFrame"]
                self.assertEqual(kinds[:2], ["HeadersFrame", "RstStreamFrame"],
                                 conn.describe_frames())
                first_reset = next(f for f in conn.frames if f.stream_id == sid
                                   and type(f).__name__ == "RstStreamFrame")
                self.assertEqual(first_reset.error_code, NO_ERROR, conn.describe_frames())
                state = conn.stream(sid)
                self.assertEqual(state.status, 204 if path == "/early/204" else 200)
                self.assertTrue(state.ended, state.describe())
                conn.close()



# --------------------------------------------------------------------------------------
# The request as the HTTP/1.1 upstream sees it, and the response as the client sees it
# --------------------------------------------------------------------------------------


def response_handler(request, conn):
    """Responses chosen by the target, for the response-translation tests."""
    target = request.target
    if target.startswith("/hop"):
        conn.send(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Named-By-Connection\r\n"
                  b"Keep-Alive: timeout=5\r\nX-Named-By-Connection: 1\r\n"
                  b"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Mixed-Case: Value\r\n"
                  b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    elif target.startswith("/head"):
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Head: yes\r\n\r\n")
    elif target.startswith("/204"):
        conn.send(b"HTTP/1.1 204 No Content\r\nX-Status: 204\r\n\r\n")
    elif target.startswith("/304"):
        conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n")
    elif target.startswith("/cut-length"):
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
        time.sleep(0.1)
        conn.close()
    elif target.startswith("/cut-chunked"):
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + b"y" * 4096 +
                  b"\r\n")
        time.sleep(0.1)
        conn.close()
    elif target.startswith("/early-hints"):
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    else:
        echo_handler(request, conn)


class TranslationTest(H2TestCase):
    def setUp(self):
        self.upstream = self.start_upstream(response_handler, name="origin")
        self.gh = self.start_gatehouse(h2_config({"app": [self.upstream]}))
        self.port = self.gh.port

    def test_request_rebuilt_for_http11_upstream(self):
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("GET", "/rebuilt?q=1&r=%20", extra=[
            ("host", "other.example.test"), ("cookie", "a=1"), ("cookie", "b=2"),
            ("te", "trailers"), ("x-custom", "v1"), ("x-custom", "v2"), ("user-agent", "h2-test"),
            ("x-forwarded-for", "203.0.113.9"), ("x-real-ip", "203.0.113.10")]), raw=True)
        response = conn.response(sid)
        self.assertEqual(response.status, 200, response.describe())
        self.assertTrue(self.upstream.wait_for_requests(1))
        forwarded = self.upstream.requests[-1]
        start = forwarded.raw_head.split(b"\r\n", 1)[0]
        self.assertEqual(start, b"GET /rebuilt?q=1&r=%20 HTTP/1.1")
        headers = forwarded.headers
        self.assertEqual(headers.get_all("host"), [AUTHORITY], ":authority replaces host")
        self.assertEqual(headers.get_all("cookie"), ["a=1; b=2"], "cookie crumbs joined with '; '")
        self.assertEqual(headers.get_all("x-forwarded-proto"), ["https"])
        self.assertEqual(headers.get_all("x-real-ip"), ["127.0.0.1"])
        xff = headers.get_all("x-forwarded-for")
        self.assertEqual(len(xff), 1, xff)
        self.assertTrue(xff[0].endswith("127.0.0.1"), xff)
        self.assertEqual(headers.get_all("x-custom"), ["v1", "v2"])
        self.assertEqual(headers.get("user-agent"), "h2-test")
        for name in ("te", "connection", "keep-alive", "transfer-encoding", "upgrade",
                     "proxy-connection", ":method", ":path", ":scheme", ":authority"):
            self.assertNotIn(name, headers, f"{name} forwarded: {forwarded.raw_head!r}")
        self.assertEqual(forwarded.framing, "none")

    def test_cookie_single_crumb_and_host_without_authority(self):
        conn = self.h2()
        sid = conn.send_headers(None, [(":method", "GET"), (":scheme", "https"), (":path", "/no-authority"),
                                       ("host", "by-host.example.test"), ("cookie", "only=1")], raw=True)
        self.assertEqual(conn.response(sid).status, 200)
        forwarded = self.upstream.requests[-1]
        self.assertEqual(forwarded.headers.get_all("host"), ["by-host.example.test"])
        self.assertEqual(forwarded.headers.get_all("cookie"), ["only=1"])

    def test_response_headers_lowercase_and_hop_by_hop_stripped(self):
        conn = self.h2()
        response = conn.get("/hop")
        self.assertEqual(response.status, 200, response.describe())
        names = [name for name, _ in response.headers]
        for name in names:
            self.assertEqual(name, name.lower(), f"upper-case name {name!r} in an h2 response")
        for name in ("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                     "upgrade", "x-named-by-connection"):
            self.assertNotIn(name, names, f"{name} leaked into the h2 response: {response.headers}")
        self.assertEqual(response.header("x-mixed-case"), "Value")
        self.assertEqual(response.header_all("set-cookie"), ["a=1", "b=2"])
        self.assertEqual(response.body, b"hello world", "chunked body not turned into DATA")
        self.assertTrue(response.ended)
        self.assertIsNone(response.reset)

    def test_head_204_304_have_no_data(self):
        conn = self.h2()
        cases = [("HEAD", "/head", 200), ("GET", "/204", 204), ("GET", "/304", 304)]
        for method, path, status in cases:
            with self.subTest(path):
                response = conn.response(conn.request(method, path))
                self.assertEqual(response.status, status, response.describe())
                self.assertTrue(response.ended)
                self.assertEqual(response.body, b"", f"{path}: DATA bytes in a bodiless response")
                if path == "/head":
                    self.assertEqual(response.header("content-length"), "1234")
                    self.assertEqual(response.header("x-head"), "yes")
        self.assertEqual(conn.get("/after-bodiless").status, 200)

    def test_interim_103_forwarded_and_final_response_follows(self):
        conn = self.h2()
        response = conn.get("/early-hints")
        self.assertEqual(response.status, 200, response.describe())
        self.assertEqual(response.body, b"ok")

    def test_upstream_closing_mid_body_resets_the_stream(self):
        for path, received_at_least in [("/cut-length", 1), ("/cut-chunked", 1)]:
            with self.subTest(path):
                conn = self.h2()
                sid = conn.request("GET", path)
                outcome = conn.wait_stream_outcome(sid, timeout=5)
                state = conn.stream(sid)
                self.assertEqual(outcome, "reset",
                                 f"{path}: a truncated upstream body must end in RST_STREAM, "
                                 f"never END_STREAM: {state.describe()}")
                self.assertFalse(state.ended, f"{path}: END_STREAM sent for a truncated body")
                self.assertEqual(state.status, 200)
                self.assertFalse(conn.goaways)
                self.assert_served(conn=conn)



# --------------------------------------------------------------------------------------
# Limits, routing, upstream errors per stream
# --------------------------------------------------------------------------------------


class LimitsTest(H2TestCase):
    """limits: header_bytes 4KiB, header_count 20, request_line 1KiB, body 64KiB."""

    @classmethod
    def setUpClass(cls):
        cls.upstream = RecordingUpstream(name="limits")
        cls.addClassCleanup(cls.upstream.close)
        cls.gh = Gatehouse(h2_config({"app": [cls.upstream]}, limits={
            "header_bytes": "4KiB", "header_count": 20, "request_line": "1KiB", "body": "64KiB"}))
        cls.addClassCleanup(cls.gh.cleanup)
        cls.gh.start()
        cls.port = cls.gh.port

    def setUp(self):
        self.addCleanup(self._dump_logs_on_failure, self.gh)

    def rejected(self, headers, statuses, what, body=None, end_stream=True, any_reset=True):
        snapshot = UpstreamSnapshot(self.upstream)
        conn = self.h2()
        sid = conn.send_headers(None, headers, raw=True, end_stream=end_stream and body is None)
        if body is not None:
            try:
                conn.upload(sid, body, end_stream=True, timeout=5)
            except H2Closed:
                pass  # the proxy answered (and reset) before the whole body went out
        codes = tuple(range(0, 14)) if any_reset else (PROTOCOL_ERROR,)
        outcome = self.assert_rejected(conn, sid, statuses, reset_codes=codes, what=what)
        self.assertFalse(conn.goaways, f"{what}: connection error for a stream limit")
        self.assert_served(conn=conn, path="/after-limit")
        return snapshot, outcome

    def test_header_bytes_over_limit_is_431(self):
        headers = request_headers("GET", "/big-headers") + [(f"x-h{i}", "v" * 1500) for i in range(3)]
        snapshot, _ = self.rejected(headers, (431,), "4.5 KiB of headers")
        self.assertFalse(self.upstream.connections_with_head("/big-headers"))

    def test_header_count_over_limit_is_431(self):
        headers = request_headers("GET", "/many-headers") + [(f"x-h{i}", "v") for i in range(25)]
        self.rejected(headers, (431,), "29 header fields")
        self.assertFalse(self.upstream.connections_with_head("/many-headers"))

    def test_headers_within_limits_pass(self):
        conn = self.h2()
        headers = request_headers("GET", "/ok-headers") + [(f"x-h{i}", "v" * 100) for i in range(10)]
        sid = conn.send_headers(None, headers, raw=True)
        self.assertEqual(conn.response(sid).status, 200)

    def test_long_path_is_414(self):
        path = "/" + "a" * 2000
        self.rejected(request_headers("GET", path), (414,), "2 KiB :path")
        self.assertFalse(self.upstream.connections_with_head("/aaaa"))

    def test_body_over_limit_with_content_length_is_413(self):
        headers = request_headers("POST", "/big-body", extra=[("content-length", str(100_000))])
        conn = self.h2()
        sid = conn.send_headers(None, headers, raw=True, end_stream=False)
        outcome = conn.wait_stream_outcome(sid, timeout=4)
        state = conn.stream(sid)
        self.assertEqual(state.status, 413, f"content-length over limits.body: {outcome} "
                                            f"{state.describe()}")
        time.sleep(SETTLE)
        self.assertFalse(self.upstream.connections_with_head("/big-body"))
        conn.send_rst(sid, CANCEL)
        self.assert_served(conn=conn)

    def test_streamed_body_over_limit_is_413_or_reset(self):
        headers = request_headers("POST", "/streamed-body")
        self.rejected(headers, (413,), "streamed 200 KiB body", body=b"z" * 200_000, end_stream=False)
        time.sleep(SETTLE)
        self.assertNotIn("/streamed-body", self.upstream.request_targets(),
                         "a body over the limit completed upstream")
        carried = self.upstream.connections_with_head("/streamed-body")
        if carried:
            self.assertTrue(self.upstream.wait_ended(carried), "poisoned upstream connection kept")


class DefaultLimitsTest(SharedProxy):
    def test_default_header_limits(self):
        with self.subTest("40 KiB of headers (default 32 KiB) over CONTINUATION frames"):
            conn = self.h2()
            headers = request_headers("GET", "/default-big") + [(f"x-h{i}", "v" * 4096) for i in range(10)]
            block = raw_block(headers)
            sid = conn.new_stream_id()
            conn.send_headers(sid, block=block[:16000], end_headers=False)
            conn.send_continuation(sid, block[16000:32000], end_headers=False)
            conn.send_continuation(sid, block[32000:], end_headers=True)
            self.assert_rejected(conn, sid, (431,), reset_codes=tuple(range(14)), what="40 KiB headers")
            self.assertFalse(self.echo.connections_with_head("/default-big"))
            self.assert_served(conn=conn)
        with self.subTest("28 KiB of headers pass"):
            conn = self.h2()
            headers = request_headers("GET", "/default-ok") + [(f"x-h{i}", "v" * 4000) for i in range(7)]
            block = raw_block(headers)
            sid = conn.new_stream_id()
            conn.send_headers(sid, block=block[:16000], end_headers=False)
            conn.send_continuation(sid, block[16000:], end_headers=True)
            self.assertEqual(conn.response(sid).status, 200, conn.describe_frames())
        with self.subTest("101 fields (default 100)"):
            conn = self.h2()
            headers = request_headers("GET", "/default-many") + [(f"x-h{i}", "v") for i in range(101)]
            sid = conn.send_headers(None, headers, raw=True)
            self.assert_rejected(conn, sid, (431,), reset_codes=tuple(range(14)), what="105 fields")
            self.assertFalse(self.echo.connections_with_head("/default-many"))


class RoutingAndErrorsTest(H2TestCase):
    def test_routing_by_authority_and_path(self):
        api, static, web = (self.start_upstream(name=n) for n in ("api", "static", "web"))
        gh = self.start_gatehouse(h2_config(
            {"api": [api], "static": [static], "web": [web]},
            [{"host": "api.example.test", "path_prefix": "/", "upstream": "api"},
             {"host": "example.test", "path_prefix": "/static", "upstream": "static"},
             {"host": "example.test", "path_prefix": "/", "upstream": "web"}]))
        self.port = gh.port
        conn = self.h2()
        cases = [("api.example.test", "/x", "api"), ("example.test", "/static/a.css", "static"),
                 ("example.test", "/page", "web"), (f"api.example.test:{gh.port}", "/p", "api"),
                 ("other.test", "/x", None)]
        for authority, path, expected in cases:
            with self.subTest(authority=authority, path=path):
                response = conn.get(path, authority=authority)
                if expected is None:
                    self.assertEqual(response.status, 404, response.describe())
                else:
                    self.assertEqual(response.status, 200, response.describe())
                    self.assertEqual(response.header("x-upstream"), expected)
        self.assertEqual(len(api.requests) + len(static.requests) + len(web.requests), 4)

    def test_upstream_errors_are_per_stream(self):
        ok = self.start_upstream(delayed_handler(0.6), name="ok")
        fast = self.start_upstream(name="fast")
        stall = self.start_upstream(delayed_handler(30), name="stall")
        dead = socket.socket()
        dead.bind((LOCALHOST, 0))               # bound, not listening: refused
        self.addCleanup(dead.close)
        down = [self.start_upstream(garbage_handler, name=f"down{i}") for i in range(2)]
        gh = self.start_gatehouse(h2_config(
            {"ok": [ok], "fast": [fast], "stall": [stall], "dead": [dead],
             "down": {"servers": down, "passive_failures": 1, "passive_cooldown": "30s"}},
            [{"path_prefix": "/", "upstream": "fast"}, {"path_prefix": "/ok", "upstream": "ok"},
             {"path_prefix": "/stall", "upstream": "stall"}, {"path_prefix": "/dead", "upstream": "dead"},
             {"path_prefix": "/down", "upstream": "down"}],
            timeouts={"upstream_read": "1500ms", "upstream_connect": "1s"}))
        self.port = gh.port
        # Prime "down": both hosts fail once (502) and leave the rotation.
        primer = self.h2()
        for i in range(2):
            self.assertEqual(primer.get(f"/down/prime{i}").status, 502)
        conn = self.h2(timeout=8)
        streams = {
            "ok": conn.request("GET", "/ok/slow-but-fine"),
            "stall": conn.request("GET", "/stall/never"),
            "dead": conn.request("GET", "/dead/refused"),
            "down": conn.request("GET", "/down/again"),
        }
        fast = [conn.request("GET", f"/fast/{i}") for i in range(5)]
        conn.pump(lambda: all(conn.stream_done(s) for s in [*streams.values(), *fast]), 8)
        statuses = {name: conn.stream(sid).status for name, sid in streams.items()}
        self.assertEqual(statuses, {"ok": 200, "stall": 504, "dead": 502, "down": 503},
                         conn.describe_frames(40))
        self.assertIsNotNone(conn.stream(streams["down"]).header("retry-after"))
        self.assertEqual([conn.stream(s).status for s in fast], [200] * 5)
        self.assertFalse(conn.goaways, "an upstream error ended the whole connection")
        self.assertEqual(conn.get("/after-errors").status, 200)


if __name__ == "__main__":
    unittest.main()
