"""HTTP/2 to clients, at the frame level, through the real gatehouse binary.

The client is h2_support.H2Conn (hyperframe frames + hpack blocks, so anything can be put
on the wire); the origin is the harness's recording Upstream. Groups:

  * listeners: ALPN h2/http1.1 choice, `http2 = false`, h2c prior knowledge opt-in and
    its absence, the server's SETTINGS;
  * the groups h2spec covers (RFC 9113/7540 sections in the class and test names):
    preface, frame format and size, header compression, stream states and identifiers,
    concurrency, every frame type's rules, error codes, HPACK representations;
  * HTTP semantics: pseudo-header and connection-specific field rules (malformed requests
    never reach the upstream), content-length (H2.CL), the request rebuilt for the
    HTTP/1.1 upstream and the response translated back, limits, routing, per-stream
    upstream errors;
  * security: Rapid Reset, CONTINUATION flood, HPACK bomb, PING/SETTINGS floods, the
    CVE-2026-27135 shape;
  * flow control as backpressure (downloads and uploads), SIGTERM/SIGHUP, access log and
    metrics.

Where nghttp2 (Debian 1.52.0-1+deb12u3) deliberately ignores a frame that h2spec expects
an error for (frames on streams it no longer tracks, PRIORITY with NO_RFC7540_PRIORITIES),
the test accepts "ignored" too, but still requires that nothing reaches the upstream and
that the connection keeps working. Every malformed case also checks that the same
connection (after a stream error) or a new one is served afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import ssl
import struct
import threading
import time
import unittest

import hpack

from h2_support import (AUTHORITY, CANCEL, COMPRESSION_ERROR, CONTINUATION, DATA,
                        DEFAULT_WINDOW, ENHANCE_YOUR_CALM, FLAG_END_HEADERS, FLAG_PADDED,
                        FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, GOAWAY, HEADERS, INTERNAL_ERROR,
                        NO_ERROR, PING, PREFACE, PRIORITY, PROTOCOL_ERROR, PUSH_PROMISE,
                        REFUSED_STREAM, RST_STREAM, SETTINGS, SETTINGS_ENABLE_CONNECT_PROTOCOL,
                        SETTINGS_ENABLE_PUSH,
                        SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS,
                        SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE,
                        SETTINGS_NO_RFC7540_PRIORITIES, STREAM_CLOSED, WINDOW_UPDATE,
                        ConcurrencyProbe, H2Closed, H2Conn, RecordingUpstream,
                        UpstreamSnapshot, certificates, client_tls_context, error_name,
                        frame_bytes, h2_config,
                        indexed, listener_section, literal_incremental, raw_block,
                        request_headers, table_size_update)
from harness import (LOCALHOST, Gatehouse, GatehouseTestCase, HttpClient, RssSampler,
                     Upstream, delayed_handler, echo_handler, echo_headers, garbage_handler,
                     pattern_blocks, raw_request, static_handler, tree_rss_kib, wait_for)

TEXT = b"hello from the text upstream\n" * 64          # 1856 bytes, several DATA frames
SETTLE = 0.3        # seconds to let anything that was (wrongly) forwarded reach the upstream
RSS_GROWTH_LIMIT_KIB = int(os.environ.get("GATEHOUSE_H2_RSS_GROWTH_MB", "16")) * 1024


def setUpModule():
    certificates()   # make the CA and leaf once, before any proxy starts


def verbose(test: unittest.TestCase, text: str) -> None:
    """Measurements worth seeing, printed with GATEHOUSE_H2_VERBOSE=1."""
    if os.environ.get("GATEHOUSE_H2_VERBOSE"):
        print(f"\n{test.id()}: {text}", flush=True)


def admin_get(port: int, path: str) -> tuple[int, str]:
    with HttpClient(port) as client:
        response = client.request("GET", path)
        return response.status, response.body.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------------------


class H2TestCase(GatehouseTestCase):
    """Assertions on H2Conn outcomes, shared by every class below."""

    port: int

    def h2(self, port: int | None = None, *, settings: dict | None = None,
           handshake: bool = True, **kwargs) -> H2Conn:
        conn = H2Conn(port or self.port, **kwargs)
        self.addCleanup(conn.close)
        if handshake:
            conn.handshake(settings)
        return conn

    def assert_served(self, port: int | None = None, path: str = "/served-after",
                      conn: H2Conn | None = None) -> None:
        """A well-formed GET answered 200 (on `conn`, else on a new connection)."""
        if conn is None:
            conn = self.h2(port)
        response = conn.get(path)
        self.assertEqual(response.status, 200,
                         f"follow-up request not served: {response.describe()} "
                         f"frames: {conn.describe_frames()}")
        self.assertTrue(response.ended, response.describe())

    def assert_connection_error(self, conn: H2Conn, codes, what: str = "") -> None:
        """GOAWAY with one of `codes`, or the connection closed (h2spec accepts both)."""
        codes = set(codes if isinstance(codes, (set, list, tuple)) else [codes])
        ended = conn.wait_connection_end(timeout=3)
        self.assertTrue(ended, f"{what}: expected a connection error "
                               f"({', '.join(map(error_name, codes))}); connection still open; "
                               f"frames: {conn.describe_frames()}")
        if conn.goaways:
            self.assertIn(conn.last_goaway.error_code, codes,
                          f"{what}: GOAWAY with {error_name(conn.last_goaway.error_code)}; "
                          f"frames: {conn.describe_frames()}")

    def assert_stream_error(self, conn: H2Conn, stream_id: int, codes, what: str = "") -> None:
        """RST_STREAM or GOAWAY with one of `codes`, or the connection closed."""
        codes = set(codes if isinstance(codes, (set, list, tuple)) else [codes])
        outcome = conn.wait_stream_outcome(stream_id, timeout=3)
        state = conn.stream(stream_id)
        if outcome == "reset":
            self.assertIn(state.reset, codes, f"{what}: RST_STREAM {error_name(state.reset)}")
        elif outcome == "goaway":
            self.assertIn(conn.last_goaway.error_code, codes,
                          f"{what}: GOAWAY {error_name(conn.last_goaway.error_code)}")
        elif outcome != "closed":
            self.fail(f"{what}: expected a stream error ({', '.join(map(error_name, codes))}), "
                      f"got {outcome}: {state.describe()}; frames: {conn.describe_frames()}")

    def assert_error_or_ignored(self, conn: H2Conn, stream_id: int | None, codes,
                                what: str = "") -> str:
        """An error with one of `codes`, or the frame ignored with the connection still
        answering PING (nghttp2's documented leniency). Returns which."""
        codes = set(codes if isinstance(codes, (set, list, tuple)) else [codes])
        conn.pump(lambda: bool(conn.goaways) or conn.closed or
                  (stream_id is not None and conn.stream(stream_id).reset is not None), 0.5)
        if conn.goaways:
            self.assertIn(conn.last_goaway.error_code, codes,
                          f"{what}: GOAWAY {error_name(conn.last_goaway.error_code)}")
            return "goaway"
        if stream_id is not None and conn.stream(stream_id).reset is not None:
            self.assertIn(conn.stream(stream_id).reset, codes | {CANCEL, NO_ERROR},
                          f"{what}: RST_STREAM {error_name(conn.stream(stream_id).reset)}")
            return "reset"
        if conn.closed:
            return "closed"
        self.assertTrue(conn.ping_roundtrip(timeout=2),
                        f"{what}: neither an error nor a working connection: "
                        f"{conn.describe_frames()}")
        return "ignored"

    def assert_rejected(self, conn: H2Conn, stream_id: int, statuses=(400,), *,
                        reset_codes=(PROTOCOL_ERROR,), what: str = "") -> str:
        """RST_STREAM (one of reset_codes) or a response with one of `statuses` on the
        stream — a stream-level answer, not a connection error."""
        outcome = conn.wait_stream_outcome(stream_id, timeout=4)
        state = conn.stream(stream_id)
        if state.status is not None and state.status in statuses:
            return "response"
        if outcome == "reset" and state.status is None:
            self.assertIn(state.reset, set(reset_codes),
                          f"{what}: RST_STREAM {error_name(state.reset)}, expected "
                          f"{'/'.join(map(error_name, reset_codes))} or {statuses}")
            return "reset"
        self.fail(f"{what}: expected RST_STREAM({'/'.join(map(error_name, reset_codes))}) or "
                  f"a {'/'.join(map(str, statuses))} response on stream {stream_id}, got "
                  f"{outcome}: {state.describe()}; frames: {conn.describe_frames()}")

    def assert_nothing_forwarded(self, snapshot: UpstreamSnapshot, what: str = "") -> None:
        time.sleep(SETTLE)
        self.assertTrue(snapshot.unchanged(), f"{what}: {snapshot.describe()}")

    def assert_path_never_forwarded(self, path: str, what: str):
        """The observer shares the upstream, so check by target instead of by bytes."""
        time.sleep(SETTLE)
        self.assertFalse(self.upstream.connections_with_head(path),
                         f"{what}: a request for {path} reached the upstream")
        self.assertNotIn(path.encode(), self.upstream.received_bytes())

    def assert_rss_growth(self, before: int, sampler: RssSampler, what: str) -> None:
        with self.subTest("memory"):
            if self.gh.sanitized:
                self.skipTest("RSS is not meaningful under AddressSanitizer")
            growth = sampler.peak_kib - before
            self.assertLess(growth, RSS_GROWTH_LIMIT_KIB,
                            f"{what}: proxy RSS grew by {growth} KiB (from {before} KiB)")


class SharedProxy(H2TestCase):
    """One proxy per class (workers = 1) with four listeners: [0] TLS (http2 default),
    [1] plain with h2c = true, [2] plain (defaults), [3] TLS with http2 = false.
    Routes: / -> echo (RecordingUpstream), /slow -> 1 s delay, /text -> TEXT,
    /gate -> held until the test releases it (ConcurrencyProbe)."""

    extra_limits: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.echo = RecordingUpstream(name="echo")
        cls.slow = Upstream(delayed_handler(1.0), name="slow")
        cls.text = Upstream(static_handler(200, TEXT), name="text")
        cls.gate = ConcurrencyProbe(gate=True, match="/gate")
        cls.gated = RecordingUpstream(cls.gate, name="gated")
        cls.gate.port_of = lambda: cls.gated.port
        for upstream in (cls.echo, cls.slow, cls.text, cls.gated):
            cls.addClassCleanup(upstream.close)
        config = h2_config(
            {"echo": [cls.echo], "slow": [cls.slow], "text": [cls.text], "gated": [cls.gated]},
            [{"path_prefix": "/", "upstream": "echo"},
             {"path_prefix": "/slow", "upstream": "slow"},
             {"path_prefix": "/text", "upstream": "text"},
             {"path_prefix": "/gate", "upstream": "gated"}],
            listeners=[listener_section(), listener_section(tls=False, h2c=True),
                       listener_section(tls=False), listener_section(http2=False)],
            limits={"body": "16MiB", **cls.extra_limits},
            timeouts={"upstream_read": "20s", "client_body": "20s"})
        cls.gh = Gatehouse(config)
        cls.addClassCleanup(cls.gh.cleanup)
        cls.gh.start()
        cls.port, cls.h2c_port, cls.plain_port, cls.h1_only_port = cls.gh.ports

    def setUp(self):
        self.addCleanup(self._dump_logs_on_failure, self.gh)
        self.addCleanup(self._check_alive)

    def _check_alive(self):
        self.assertIsNone(self.gh.proc.poll(), f"gatehouse exited with {self.gh.proc.returncode}")


# --------------------------------------------------------------------------------------
# Listeners, ALPN, preface, SETTINGS (RFC 9113 §3, h2spec 3.5)
# --------------------------------------------------------------------------------------


class ListenerTest(SharedProxy):
    def test_alpn_prefers_h2_and_still_offers_http11(self):
        for offered, expected in [(["h2", "http/1.1"], "h2"), (["http/1.1", "h2"], "h2"),
                                  (["h2"], "h2"), (["http/1.1"], "http/1.1")]:
            with self.subTest(offered=offered):
                conn = self.h2(alpn=offered, handshake=False)
                self.assertEqual(conn.alpn, expected)
                conn.close()
        with self.subTest("HTTP/1.1 over the same TLS listener"):
            raw = socket.create_connection((LOCALHOST, self.port), timeout=5)
            with client_tls_context(["http/1.1"]).wrap_socket(raw, server_hostname=AUTHORITY) as tls:
                tls.sendall(b"GET /h1-on-tls HTTP/1.1\r\nHost: example.test\r\n"
                            b"Connection: close\r\n\r\n")
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
        with self.subTest("no ALPN at all is HTTP/1.1"):
            conn = self.h2(alpn=None, handshake=False)
            self.assertIsNone(conn.alpn)

    def test_server_settings_and_connection_window(self):
        conn = self.h2()
        settings = conn.server_settings
        self.assertIsNotNone(settings)
        first = conn.frames[0]
        self.assertEqual(first.type, SETTINGS, "the server's first frame must be SETTINGS")
        self.assertNotIn("ACK", first.flags)
        self.assertEqual(settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 100, settings)
        self.assertEqual(settings.get(SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW), 65535,
                         settings)
        self.assertEqual(settings.get(SETTINGS_NO_RFC7540_PRIORITIES), 1, settings)
        self.assertEqual(settings.get(SETTINGS_MAX_HEADER_LIST_SIZE), 32768, settings)
        self.assertNotIn(SETTINGS_ENABLE_CONNECT_PROTOCOL, settings,
                         "extended CONNECT (RFC 8441) must not be advertised")
        conn.drain(0.2)
        increments = [f.window_increment for f in conn.window_updates if f.stream_id == 0]
        self.assertEqual(DEFAULT_WINDOW + sum(increments), 1 << 20,
                         f"connection receive window should be 1 MiB: updates {increments}")

    def test_valid_preface_gets_settings_first(self):
        # h2spec 3.5/1
        conn = self.h2(handshake=False)
        conn.send(PREFACE + frame_bytes(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535)))
        self.assertTrue(conn.pump(lambda: bool(conn.frames), 3), conn.describe_frames())
        self.assertEqual(conn.frames[0].type, SETTINGS)
        self.assertNotIn("ACK", conn.frames[0].flags)

    def test_invalid_preface_is_a_connection_error(self):
        # h2spec 3.5/2
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2(handshake=False)
        conn.try_send(b"INVALID CONNECTION PREFACE\r\n\r\n")
        self.assert_connection_error(conn, PROTOCOL_ERROR, "invalid preface")
        self.assertTrue(conn.wait_closed(3), "connection not closed after an invalid preface")
        self.assert_nothing_forwarded(snapshot, "invalid preface")
        self.assert_served()

    def test_http11_request_after_alpn_h2_is_refused(self):
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2(handshake=False)
        conn.try_send(b"GET /h1-in-h2 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        self.assertTrue(conn.wait_closed(3), conn.describe_frames())
        self.assert_nothing_forwarded(snapshot, "HTTP/1.1 bytes on an h2 connection")

    def test_first_frame_not_settings_is_a_connection_error(self):
        conn = self.h2(handshake=False)
        conn.try_send(PREFACE + frame_bytes(PING, 0, 0, b"\0" * 8))
        self.assert_connection_error(conn, PROTOCOL_ERROR, "PING before SETTINGS")

    def test_http2_false_listener_speaks_only_http11(self):
        for offered in (["h2", "http/1.1"], ["http/1.1", "h2"]):
            with self.subTest(offered=offered):
                conn = self.h2(self.h1_only_port, alpn=offered, handshake=False)
                self.assertEqual(conn.alpn, "http/1.1")
                conn.close()
        with self.subTest("h2-only client gets no h2"):
            snapshot = UpstreamSnapshot(self.echo)
            try:
                conn = self.h2(self.h1_only_port, alpn=["h2"], handshake=False)
            except (ssl.SSLError, OSError):
                return  # no_application_protocol alert: fine
            self.assertNotEqual(conn.alpn, "h2")
            conn.try_send(PREFACE + frame_bytes(SETTINGS, 0, 0))
            conn.pump(lambda: conn.closed, 3)
            self.assertIsNone(conn.server_settings, "HTTP/2 SETTINGS on an http2 = false listener")
            self.assert_nothing_forwarded(snapshot, "preface on an http2 = false listener")

    def test_h2c_prior_knowledge_when_enabled(self):
        conn = self.h2(self.h2c_port, tls=False)
        self.assertEqual(conn.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 100)
        before = len(self.echo.requests)
        response = conn.get("/h2c-request")
        self.assertEqual(response.status, 200, response.describe())
        self.assertTrue(self.echo.wait_for_requests(before + 1))
        forwarded = self.echo.requests[-1]
        self.assertEqual(forwarded.target, "/h2c-request")
        self.assertEqual(forwarded.headers.get_all("X-Forwarded-Proto"), ["http"])
        with self.subTest("HTTP/1.1 still works on the h2c listener"):
            with HttpClient(self.h2c_port) as client:
                self.assertEqual(client.request("GET", "/h1-on-h2c").status, 200)

    def test_preface_on_a_plain_listener_without_h2c_is_refused(self):
        snapshot = UpstreamSnapshot(self.echo)
        result = raw_request(self.plain_port, PREFACE + frame_bytes(SETTINGS, 0, 0), timeout=3)
        # As for any HTTP/2.0 request line today: 400 or 505 and a close.
        self.assertTrue(result.status in (400, 505) or (result.closed and not result.raw),
                        f"expected 400/505 or a close, got {result.raw[:200]!r}")
        self.assertTrue(result.closed, "connection left open after the preface")
        self.assertFalse(result.raw[3:4] == bytes([SETTINGS]), "answered with HTTP/2 SETTINGS")
        self.assert_nothing_forwarded(snapshot, "preface on a plain listener")
        with HttpClient(self.plain_port) as client:
            self.assertEqual(client.request("GET", "/plain-after").status, 200)


# --------------------------------------------------------------------------------------
# Frame format, frame size, header compression, extensions (h2spec 4.1-4.3, 5.5)
# --------------------------------------------------------------------------------------


class FrameFormatTest(SharedProxy):
    def test_unknown_frame_type_is_ignored(self):
        # h2spec 4.1/1 and 5.5/1
        conn = self.h2()
        conn.send(frame_bytes(0x16, 0, 0, b"\0" * 8) + frame_bytes(0xFF, 0xFF, 1, b"junk"))
        self.assertTrue(conn.ping_roundtrip(b"unknown!"), conn.describe_frames())
        self.assert_served(conn=conn)

    def test_undefined_flags_and_reserved_bit_are_ignored(self):
        # h2spec 4.1/2, 4.1/3
        conn = self.h2()
        conn.send(frame_bytes(PING, 0x16, 0, b"flags!!!"))
        conn.send(frame_bytes(PING, 0x16, 0x80000000, b"reserve!"))
        self.assertTrue(conn.pump(lambda: b"flags!!!" in conn.ping_acks and
                                  b"reserve!" in conn.ping_acks, 3), conn.describe_frames())
        # A request on a stream id with the reserved bit set is stream 1.
        block = conn.encode(request_headers("GET", "/reserved-bit"))
        conn.send(frame_bytes(HEADERS, 0x05 | 0x40, 0x80000001, block))
        conn.next_stream_id = 3
        response = conn.response(1)
        self.assertEqual(response.status, 200, response.describe())

    def test_data_frame_of_max_frame_size_is_accepted(self):
        # h2spec 4.2/1
        conn = self.h2()
        before = len(self.echo.requests)
        sid = conn.send_headers(None, request_headers("POST", "/max-frame"), end_stream=False)
        conn.send_data(sid, b"x" * 16384, end_stream=True)
        response = conn.response(sid)
        self.assertEqual(response.status, 200, response.describe())
        self.assertTrue(self.echo.wait_for_requests(before + 1))
        self.assertEqual(self.echo.requests[-1].body, b"x" * 16384)

    def test_data_frame_over_max_frame_size_is_frame_size_error(self):
        # h2spec 4.2/2
        snapshot_requests = len(self.echo.requests)
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", "/too-big-data"), end_stream=False)
        conn.send_data(sid, b"x" * 16385, end_stream=True)
        self.assert_stream_error(conn, sid, FRAME_SIZE_ERROR, "DATA over SETTINGS_MAX_FRAME_SIZE")
        time.sleep(SETTLE)
        self.assertNotIn("/too-big-data", self.echo.request_targets()[snapshot_requests:])
        self.assert_served()

    def test_headers_frame_over_max_frame_size_is_connection_error(self):
        # h2spec 4.2/3
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        headers = request_headers("GET", "/too-big-headers") + \
            [(f"x-dummy{i}", "x" * 4000) for i in range(5)]
        conn.send_headers(None, headers, raw=True)
        self.assert_connection_error(conn, FRAME_SIZE_ERROR, "HEADERS over max frame size")
        self.assert_nothing_forwarded(snapshot, "oversized HEADERS")
        self.assert_served()

    def test_invalid_header_block_is_compression_error(self):
        # h2spec 4.3/1
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        conn.send(frame_bytes(HEADERS, 0x05, 1, b"\x40"))
        self.assert_connection_error(conn, COMPRESSION_ERROR, "truncated literal")
        self.assert_nothing_forwarded(snapshot)
        self.assert_served()

    def test_priority_frame_inside_a_header_block_is_protocol_error(self):
        # h2spec 4.3/2 and 6.2/1
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        conn.send_headers(1, request_headers("GET", "/interleaved"), end_headers=False)
        conn.send_priority(1, 0, 255)
        conn.send_continuation(1, raw_block([("x-dummy", "x")]))
        self.assert_connection_error(conn, PROTOCOL_ERROR, "PRIORITY between HEADERS and CONTINUATION")
        self.assert_nothing_forwarded(snapshot)

    def test_headers_for_another_stream_inside_a_header_block_is_protocol_error(self):
        # h2spec 4.3/3 and 6.2/2
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        conn.send_headers(1, request_headers("GET", "/interleaved-a"), end_headers=False)
        conn.send_headers(3, request_headers("GET", "/interleaved-b"), raw=True)
        conn.send_continuation(1, raw_block([("x-dummy", "x")]))
        self.assert_connection_error(conn, PROTOCOL_ERROR, "HEADERS for stream 3 in stream 1's block")
        self.assert_nothing_forwarded(snapshot)

    def test_unknown_frame_inside_a_header_block_is_protocol_error(self):
        # h2spec 5.5/2
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        conn.send_headers(1, request_headers("GET", "/ext-in-block"), end_headers=False)
        conn.send(frame_bytes(0x16, 0, 0, b"\0" * 8))
        self.assert_connection_error(conn, PROTOCOL_ERROR, "extension frame in a header block")
        self.assert_nothing_forwarded(snapshot)


# --------------------------------------------------------------------------------------
# Stream states, identifiers, concurrency, priority, connection errors
# (h2spec 5.1, 5.1.1, 5.1.2, 5.3.1, 5.4.1)
# --------------------------------------------------------------------------------------


class StreamStateTest(SharedProxy):
    def test_idle_stream_data_is_an_error(self):
        # h2spec 5.1/1
        conn = self.h2()
        conn.send_data(1, b"test", end_stream=True)
        self.assert_stream_error(conn, 1, {PROTOCOL_ERROR, STREAM_CLOSED}, "DATA on idle stream")

    def test_idle_stream_rst_window_update_continuation_are_connection_errors(self):
        # h2spec 5.1/2-4
        cases = [("RST_STREAM", frame_bytes(RST_STREAM, 0, 1, struct.pack(">I", CANCEL))),
                 ("WINDOW_UPDATE", frame_bytes(WINDOW_UPDATE, 0, 1, struct.pack(">I", 100))),
                 ("CONTINUATION", frame_bytes(CONTINUATION, FLAG_END_HEADERS, 1,
                                              raw_block(request_headers("GET", "/idle-cont"))))]
        for name, data in cases:
            with self.subTest(name):
                snapshot = UpstreamSnapshot(self.echo)
                conn = self.h2()
                conn.send(data)
                self.assert_connection_error(conn, PROTOCOL_ERROR, f"{name} on idle stream")
                self.assert_nothing_forwarded(snapshot, name)

    def test_half_closed_remote_data_and_headers_are_stream_closed(self):
        # h2spec 5.1/5-6: /slow keeps the stream half-closed (remote) for 1 s.
        for name in ("DATA", "HEADERS"):
            with self.subTest(name):
                conn = self.h2()
                sid = conn.send_headers(None, request_headers("GET", f"/slow/half-closed-{name}"))
                time.sleep(0.1)
                if name == "DATA":
                    conn.send_data(sid, b"test", end_stream=True)
                else:
                    conn.send_headers(sid, request_headers("GET", "/slow/again"))
                codes = {STREAM_CLOSED} if name == "DATA" else {STREAM_CLOSED, PROTOCOL_ERROR}
                self.assert_stream_error(conn, sid, codes, f"{name} on half-closed stream")
                self.assert_served()

    def test_half_closed_remote_continuation_is_an_error(self):
        # h2spec 5.1/7
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("GET", "/slow/half-closed-cont"))
        conn.send_continuation(sid, raw_block([("x-dummy", "x")]))
        self.assert_stream_error(conn, sid, {STREAM_CLOSED, PROTOCOL_ERROR},
                                 "CONTINUATION on half-closed stream")

    def test_frames_after_client_reset_are_errors_or_ignored(self):
        # h2spec 5.1/8-10. nghttp2 forgets reset streams and ignores what follows.
        cases = ["DATA", "HEADERS", "CONTINUATION"]
        for name in cases:
            with self.subTest(name):
                conn = self.h2()
                sid = conn.send_headers(None, request_headers("POST", f"/after-rst-{name}"),
                                        end_stream=False)
                conn.send_rst(sid, CANCEL)
                if name == "DATA":
                    conn.send_data(sid, b"test", end_stream=True)
                elif name == "HEADERS":
                    conn.send_headers(sid, request_headers("GET", "/after-rst-reopened"), raw=True)
                else:
                    conn.send_continuation(sid, raw_block([("x-dummy", "x")]))
                # STREAM_CLOSED per h2spec; PROTOCOL_ERROR is the RFC 9113 §5.1.1 answer to a
                # HEADERS reusing a stream id, so both are accepted for HEADERS too.
                codes = {STREAM_CLOSED} if name == "DATA" else {STREAM_CLOSED, PROTOCOL_ERROR}
                self.assert_error_or_ignored(conn, sid, codes, f"{name} after RST_STREAM")
                time.sleep(SETTLE)
                self.assertNotIn("/after-rst-reopened", self.echo.request_targets())
                if name == "HEADERS":
                    self.assertFalse(self.echo.connections_with_head("/after-rst-reopened"),
                                     "HEADERS on a reset stream reached the upstream")
                self.assert_served()

    def test_frames_after_stream_closed_are_errors_or_ignored(self):
        # h2spec 5.1/11-13
        for name in ("DATA", "HEADERS", "CONTINUATION"):
            with self.subTest(name):
                conn = self.h2()
                response = conn.get(f"/closed-{name}")
                self.assertEqual(response.status, 200)
                sid = response.id
                if name == "DATA":
                    conn.send_data(sid, b"test", end_stream=True)
                elif name == "HEADERS":
                    conn.send_headers(sid, request_headers("GET", "/closed-reopened"), raw=True)
                else:
                    conn.send_continuation(sid, raw_block([("x-dummy", "x")]))
                codes = {STREAM_CLOSED} if name == "DATA" else {STREAM_CLOSED, PROTOCOL_ERROR}
                self.assert_error_or_ignored(conn, None, codes, f"{name} on a closed stream")
                time.sleep(SETTLE)
                self.assertFalse(self.echo.connections_with_head("/closed-reopened"),
                                 "HEADERS on a closed stream reached the upstream")
                self.assert_served()

    def test_even_stream_id_is_a_connection_error(self):
        # h2spec 5.1.1/1
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        conn.send_headers(2, request_headers("GET", "/even"))
        self.assert_connection_error(conn, PROTOCOL_ERROR, "even stream id")
        self.assert_nothing_forwarded(snapshot)

    def test_decreasing_stream_id_is_an_error_or_ignored(self):
        # h2spec 5.1.1/2 (nghttp2 ignores HEADERS on a lower, never-used id).
        conn = self.h2()
        conn.send_headers(5, request_headers("GET", "/stream-5"))
        conn.response(5)
        conn.send_headers(3, request_headers("GET", "/stream-3-late"), raw=True)
        self.assert_error_or_ignored(conn, 3, PROTOCOL_ERROR, "stream id lower than the last")
        time.sleep(SETTLE)
        self.assertFalse(self.echo.connections_with_head("/stream-3-late"),
                         "a request on a decreasing stream id reached the upstream")

    def test_stream_101_is_refused_and_the_first_100_are_served(self):
        # h2spec 5.1.2/1, with the upstream holding the first 100 exchanges.
        self.gate.release = threading.Event()
        self.addCleanup(self.gate.release.set)
        heads_before = len(self.gated.heads)
        conn = self.h2(timeout=10)
        sids = [conn.send_headers(None, request_headers("GET", f"/gate/{i}")) for i in range(100)]
        self.assertTrue(self.gated.wait_for_heads(heads_before + 100, timeout=10),
                        f"only {len(self.gated.heads) - heads_before} of 100 streams reached the "
                        f"upstream")
        extra = conn.send_headers(None, request_headers("GET", "/gate/extra-101"))
        outcome = conn.wait_stream_outcome(extra, timeout=3)
        state = conn.stream(extra)
        verbose(self, f"101st stream: {outcome} {error_name(state.reset)} "
                      f"{error_name(conn.last_goaway.error_code) if conn.goaways else ''}")
        if outcome == "reset":
            self.assertIn(state.reset, {REFUSED_STREAM, PROTOCOL_ERROR}, state.describe())
        elif outcome == "goaway":
            self.assertEqual(conn.last_goaway.error_code, PROTOCOL_ERROR)
            self.assertLess(conn.last_goaway.last_stream_id, extra)
        else:
            self.fail(f"101st stream neither refused nor a connection error: {outcome} "
                      f"{state.describe()}")
        if outcome == "reset":
            self.assertTrue(conn.ping_roundtrip(timeout=2), "connection stopped answering "
                                                            "with 100 streams open")
        time.sleep(SETTLE)
        self.assertFalse(self.gated.connections_with_head("/gate/extra-101"),
                         "the 101st stream reached the upstream")
        self.assertLessEqual(self.gate.peak_live, 100)
        self.gate.release.set()
        if outcome == "reset":
            conn.pump(lambda: all(conn.stream_done(s) for s in sids), 10)
            statuses = [conn.stream(s).status for s in sids]
            self.assertEqual(statuses, [200] * 100, f"statuses: {statuses}")
        self.assert_served()

    def test_priority_depending_on_itself(self):
        # h2spec 5.3.1/1 (HEADERS) and 5.3.1/2 (PRIORITY; ignored with
        # NO_RFC7540_PRIORITIES).
        with self.subTest("HEADERS"):
            snapshot = UpstreamSnapshot(self.echo)
            conn = self.h2()
            conn.send_headers(1, request_headers("GET", "/self-dep"), priority=(1, 15, False))
            self.assert_stream_error(conn, 1, PROTOCOL_ERROR, "HEADERS depending on itself")
            self.assert_nothing_forwarded(snapshot)
        with self.subTest("PRIORITY"):
            conn = self.h2()
            conn.send_priority(1, 1)
            self.assert_error_or_ignored(conn, 1, PROTOCOL_ERROR, "PRIORITY depending on itself")
            self.assert_served()

    def test_connection_error_sends_goaway_then_closes(self):
        # h2spec 5.4.1/1-2: invalid PING (stream 3) after a served stream.
        conn = self.h2()
        self.assertEqual(conn.get("/before-error").status, 200)
        conn.send(frame_bytes(PING, 0, 3, b"\0" * 8))
        self.assertTrue(conn.wait_connection_end(3), conn.describe_frames())
        self.assertTrue(conn.goaways, f"no GOAWAY before the close: {conn.describe_frames()}")
        self.assertEqual(conn.last_goaway.error_code, PROTOCOL_ERROR)
        self.assertEqual(conn.last_goaway.last_stream_id, 1)
        self.assertTrue(conn.wait_closed(3), "connection left open after GOAWAY")


# --------------------------------------------------------------------------------------
# Frame definitions (h2spec 6.x), error codes (7), server push (8.2), generic/
# --------------------------------------------------------------------------------------


class FrameRulesTest(SharedProxy):
    def connection_error_case(self, data: bytes, code: int, what: str, *, pre=None):
        """`pre` opens a valid stream first (which may legitimately reach the upstream);
        otherwise nothing at all may reach it."""
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        if pre:
            pre(conn)
        conn.try_send(data)
        self.assert_connection_error(conn, code, what)
        if not pre:
            self.assert_nothing_forwarded(snapshot, what)
        return conn

    # DATA (6.1)
    def test_data_on_stream_zero(self):
        self.connection_error_case(frame_bytes(DATA, 1, 0, b"test"), PROTOCOL_ERROR, "DATA stream 0")

    def test_data_on_closed_stream(self):
        # 6.1/2: DATA after END_STREAM on the request.
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", "/slow/data-closed"))
        conn.send_data(sid, b"test", end_stream=True)
        self.assert_stream_error(conn, sid, STREAM_CLOSED, "DATA on half-closed stream")

    def test_data_with_invalid_padding(self):
        def pre(conn):
            conn.send_headers(1, request_headers("POST", "/bad-pad"), end_stream=False)
        self.connection_error_case(frame_bytes(DATA, FLAG_PADDED | 1, 1, b"\x06Test"),
                                   PROTOCOL_ERROR, "DATA pad length > payload", pre=pre)
        time.sleep(SETTLE)
        self.assertNotIn("/bad-pad", self.echo.request_targets())

    # HEADERS (6.2)
    def test_headers_on_stream_zero(self):
        self.connection_error_case(frame_bytes(HEADERS, 0x05, 0, raw_block(
            request_headers("GET", "/stream-zero"))), PROTOCOL_ERROR, "HEADERS stream 0")

    def test_headers_with_invalid_padding(self):
        block = raw_block(request_headers("GET", "/bad-header-pad"))
        snapshot = UpstreamSnapshot(self.echo)
        conn = self.h2()
        conn.send(frame_bytes(HEADERS, 0x0D, 1, bytes([len(block) + 2]) + block))
        self.assert_stream_error(conn, 1, PROTOCOL_ERROR, "HEADERS pad length > payload")
        self.assert_nothing_forwarded(snapshot)

    # PRIORITY (6.3)
    def test_priority_on_stream_zero(self):
        conn = self.h2()
        conn.send_priority(0, 1)
        self.assert_error_or_ignored(conn, None, PROTOCOL_ERROR, "PRIORITY on stream 0")

    def test_priority_with_wrong_length(self):
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", "/slow/prio-len"), end_stream=False)
        conn.send(frame_bytes(PRIORITY, 0, sid, b"\x80\0\0\x01"))
        self.assert_stream_error(conn, sid, FRAME_SIZE_ERROR, "PRIORITY of 4 octets")

    # RST_STREAM (6.4)
    def test_rst_stream_on_stream_zero(self):
        self.connection_error_case(frame_bytes(RST_STREAM, 0, 0, struct.pack(">I", CANCEL)),
                                   PROTOCOL_ERROR, "RST_STREAM stream 0")

    def test_rst_stream_on_idle_stream(self):
        self.connection_error_case(frame_bytes(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)),
                                   PROTOCOL_ERROR, "RST_STREAM idle stream")

    def test_rst_stream_with_wrong_length(self):
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", "/slow/rst-len"), end_stream=False)
        conn.send(frame_bytes(RST_STREAM, 0, sid, b"\0\0\0"))
        self.assert_stream_error(conn, sid, FRAME_SIZE_ERROR, "RST_STREAM of 3 octets")

    # SETTINGS (6.5, 6.5.2, 6.5.3)
    def test_settings_frame_rules(self):
        cases = [
            ("ACK with payload", frame_bytes(SETTINGS, 1, 0, b"\0"), FRAME_SIZE_ERROR),
            ("stream id 1", frame_bytes(SETTINGS, 0, 1, b"\0\3\0\0\0\x64"), PROTOCOL_ERROR),
            ("length not a multiple of 6", frame_bytes(SETTINGS, 0, 0, b"\0\3\0"),
             {PROTOCOL_ERROR, FRAME_SIZE_ERROR}),
            ("ENABLE_PUSH = 2", frame_bytes(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_ENABLE_PUSH, 2)),
             PROTOCOL_ERROR),
            ("INITIAL_WINDOW_SIZE = 2^31", frame_bytes(SETTINGS, 0, 0, struct.pack(
                ">HI", SETTINGS_INITIAL_WINDOW_SIZE, 1 << 31)), FLOW_CONTROL_ERROR),
            ("MAX_FRAME_SIZE = 16383", frame_bytes(SETTINGS, 0, 0, struct.pack(
                ">HI", SETTINGS_MAX_FRAME_SIZE, 16383)), PROTOCOL_ERROR),
            ("MAX_FRAME_SIZE = 2^24", frame_bytes(SETTINGS, 0, 0, struct.pack(
                ">HI", SETTINGS_MAX_FRAME_SIZE, 1 << 24)), PROTOCOL_ERROR),
        ]
        for what, data, code in cases:
            with self.subTest(what):
                self.connection_error_case(data, code, f"SETTINGS {what}")
        self.assert_served()

    def test_settings_unknown_identifier_is_ignored_and_acked(self):
        conn = self.h2()
        acks = conn.settings_acks
        conn.send_settings([(0xFF, 1), (0x1234, 77)])
        self.assertTrue(conn.pump(lambda: conn.settings_acks > acks, 3), conn.describe_frames())
        self.assertTrue(conn.ping_roundtrip())
        self.assert_served(conn=conn)

    def test_settings_with_repeated_initial_window_size_uses_the_last(self):
        # 6.5.3/1: 100 then 1 -> the response DATA comes one byte at a time.
        conn = self.h2()
        conn.auto_window = False
        acks = conn.settings_acks
        conn.send_settings([(SETTINGS_INITIAL_WINDOW_SIZE, 100), (SETTINGS_INITIAL_WINDOW_SIZE, 1)])
        self.assertTrue(conn.pump(lambda: conn.settings_acks > acks, 3))
        sid = conn.send_headers(None, request_headers("GET", "/text/window-1"))
        self.assertTrue(conn.pump(lambda: conn.stream(sid).data_frames >= 1, 3),
                        conn.describe_frames())
        conn.drain(0.3)
        self.assertEqual(len(conn.stream(sid).data), 1, conn.describe_frames())

    # PING (6.7)
    def test_ping_is_answered_with_the_same_payload(self):
        conn = self.h2()
        self.assertTrue(conn.ping_roundtrip(b"\x01\x02\x03\x04\x05\x06\x07\x08"))

    def test_ping_ack_is_not_answered(self):
        conn = self.h2()
        conn.send_ping(b"unexpect", ack=True)
        self.assertTrue(conn.ping_roundtrip(b"expected"))
        self.assertNotIn(b"unexpect", conn.ping_acks)

    def test_ping_on_a_stream_and_with_wrong_length(self):
        self.connection_error_case(frame_bytes(PING, 0, 1, b"\0" * 8), PROTOCOL_ERROR,
                                   "PING on stream 1")
        self.connection_error_case(frame_bytes(PING, 0, 0, b"\0" * 6), FRAME_SIZE_ERROR,
                                   "PING of 6 octets")

    # GOAWAY (6.8)
    def test_goaway_on_a_stream(self):
        self.connection_error_case(frame_bytes(GOAWAY, 0, 1, b"\0" * 8), PROTOCOL_ERROR,
                                   "GOAWAY on stream 1")

    # WINDOW_UPDATE (6.9, 6.9.1, 6.9.2)
    def test_window_update_rules(self):
        self.connection_error_case(frame_bytes(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)),
                                   PROTOCOL_ERROR, "WINDOW_UPDATE 0 on the connection")
        self.connection_error_case(frame_bytes(WINDOW_UPDATE, 0, 0, b"\0\0\1"),
                                   FRAME_SIZE_ERROR, "WINDOW_UPDATE of 3 octets")
        self.connection_error_case(
            frame_bytes(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)) * 2,
            FLOW_CONTROL_ERROR, "connection window over 2^31-1")
        with self.subTest("increment 0 on a stream"):
            conn = self.h2()
            sid = conn.send_headers(None, request_headers("POST", "/slow/wu0"), end_stream=False)
            conn.send_window_update(sid, 0)
            self.assert_stream_error(conn, sid, PROTOCOL_ERROR, "WINDOW_UPDATE 0 on a stream")
        with self.subTest("stream window over 2^31-1"):
            conn = self.h2()
            sid = conn.send_headers(None, request_headers("POST", "/slow/wu-over"), end_stream=False)
            conn.send_window_update(sid, 0x7FFFFFFF)
            conn.send_window_update(sid, 0x7FFFFFFF)
            self.assert_stream_error(conn, sid, FLOW_CONTROL_ERROR, "stream window over 2^31-1")
        with self.subTest("INITIAL_WINDOW_SIZE over 2^31-1"):
            self.connection_error_case(frame_bytes(SETTINGS, 0, 0, b"\0\x04\x80\0\0\0"),
                                       FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE 2^31")
        self.assert_served()

    def test_initial_window_of_one_byte(self):
        # 6.9.1/1
        conn = self.h2(settings={SETTINGS_INITIAL_WINDOW_SIZE: 1})
        conn.auto_window = False
        sid = conn.send_headers(None, request_headers("GET", "/text/one-byte"))
        self.assertTrue(conn.pump(lambda: conn.stream(sid).data_frames >= 1, 3))
        conn.drain(0.3)
        self.assertEqual(len(conn.stream(sid).data), 1)
        self.assertEqual(conn.stream(sid).status, 200)

    def test_changing_initial_window_after_headers(self):
        # 6.9.2/1: window 0, request, then window 1 -> one byte of DATA.
        conn = self.h2(settings={SETTINGS_INITIAL_WINDOW_SIZE: 0})
        conn.auto_window = False
        sid = conn.send_headers(None, request_headers("GET", "/text/window-0"))
        conn.drain(0.5)
        self.assertEqual(len(conn.stream(sid).data), 0, "DATA sent with a zero window")
        conn.send_settings({SETTINGS_INITIAL_WINDOW_SIZE: 1})
        self.assertTrue(conn.pump(lambda: len(conn.stream(sid).data) >= 1, 3))
        conn.drain(0.3)
        self.assertEqual(len(conn.stream(sid).data), 1)

    def test_negative_window_after_settings_change(self):
        # 6.9.2/2: window 3 -> 3 bytes; window 2 makes it -1; +2 -> exactly 1 more byte.
        conn = self.h2(settings={SETTINGS_INITIAL_WINDOW_SIZE: 3})
        conn.auto_window = False
        sid = conn.send_headers(None, request_headers("GET", "/text/negative"))
        self.assertTrue(conn.pump(lambda: len(conn.stream(sid).data) >= 3, 3))
        conn.drain(0.2)
        self.assertEqual(len(conn.stream(sid).data), 3)
        acks = conn.settings_acks
        conn.send_settings({SETTINGS_INITIAL_WINDOW_SIZE: 2})
        self.assertTrue(conn.pump(lambda: conn.settings_acks > acks, 3))
        conn.send_window_update(sid, 2)
        conn.drain(0.5)
        self.assertEqual(len(conn.stream(sid).data), 4, conn.describe_frames())
        conn.send_window_update(sid, len(TEXT))
        conn.send_window_update(0, len(TEXT))
        self.assertTrue(conn.pump(lambda: conn.stream(sid).ended, 3))
        self.assertEqual(conn.stream(sid).body, TEXT)

    def test_window_update_on_half_closed_stream_releases_data(self):
        # generic 2/2-3: WINDOW_UPDATE (and PRIORITY) on a half-closed (remote) stream.
        conn = self.h2(settings={SETTINGS_INITIAL_WINDOW_SIZE: 1})
        conn.auto_window = False
        sid = conn.send_headers(None, request_headers("GET", "/text/wu-half-closed"))
        self.assertTrue(conn.pump(lambda: len(conn.stream(sid).data) >= 1, 3))
        conn.send_priority(sid, 0, 20)
        conn.send_window_update(sid, 1)
        self.assertTrue(conn.pump(lambda: len(conn.stream(sid).data) >= 2, 3),
                        conn.describe_frames())

    # CONTINUATION (6.10)
    def test_continuation_frames_are_assembled(self):
        conn = self.h2()
        block = conn.encode(request_headers("GET", "/continued") + [("x-part", "y" * 100)])
        sid = conn.new_stream_id()
        conn.send_headers(sid, block=block[:5], end_headers=False)
        conn.send_continuation(sid, block[5:10], end_headers=False)
        conn.send_continuation(sid, block[10:], end_headers=True)
        response = conn.response(sid)
        self.assertEqual(response.status, 200, response.describe())
        self.assertEqual(self.echo.requests[-1].headers.get("x-part"), "y" * 100)

    def test_continuation_violations(self):
        def headers_open(conn, path="/cont-bad", method="GET"):
            # A header block never completed: nothing of it may reach the upstream.
            conn.send_headers(1, request_headers(method, path), end_headers=False, end_stream=False)

        dummy = raw_block([("x-dummy", "x")])
        cases = [
            ("followed by DATA",
             lambda c: (headers_open(c, method="POST"),
                        c.send_continuation(1, dummy, end_headers=False),
                        c.try_send(frame_bytes(DATA, 1, 1, b"test")))),
            ("on stream 0",
             lambda c: (headers_open(c), c.try_send(frame_bytes(CONTINUATION, 4, 0, dummy)))),
            ("after END_HEADERS",
             lambda c: (c.send_headers(1, request_headers("GET", "/cont-after"), end_stream=False),
                        c.try_send(frame_bytes(CONTINUATION, 4, 1, dummy)))),
            ("after a CONTINUATION with END_HEADERS",
             lambda c: (headers_open(c, path="/cont-after"), c.send_continuation(1, dummy),
                        c.try_send(frame_bytes(CONTINUATION, 4, 1, raw_block([("x-b", "y")]))))),
            ("after DATA",
             lambda c: (c.send_headers(1, request_headers("POST", "/cont-after"), end_stream=False),
                        c.send_data(1, b"test", end_stream=True),
                        c.try_send(frame_bytes(CONTINUATION, 0, 1, dummy)))),
        ]
        for what, act in cases:
            with self.subTest(what):
                conn = self.h2()
                act(conn)
                self.assert_connection_error(conn, PROTOCOL_ERROR, f"CONTINUATION {what}")
        time.sleep(SETTLE)
        self.assertFalse(self.echo.connections_with_head("/cont-bad"),
                         "a request from an unfinished header block reached the upstream")
        self.assert_served()

    # Error codes (7), push (8.2), client GOAWAY
    def test_unknown_error_codes_have_no_effect(self):
        with self.subTest("GOAWAY"):
            conn = self.h2()
            conn.send_goaway(0, 0xFF)
            conn.try_send(frame_bytes(PING, 0, 0, b"unknown1"))
            ok = conn.pump(lambda: b"unknown1" in conn.ping_acks or conn.closed, 3)
            self.assertTrue(ok, "neither a PING ACK nor a close after GOAWAY(0xff)")
            if conn.goaways:
                self.assertNotEqual(conn.last_goaway.error_code, PROTOCOL_ERROR)
        with self.subTest("RST_STREAM"):
            conn = self.h2()
            sid = conn.send_headers(None, request_headers("POST", "/rst-unknown"), end_stream=False)
            conn.send_rst(sid, 0xFF)
            self.assertTrue(conn.ping_roundtrip(b"unknown2"), conn.describe_frames())
            self.assert_served(conn=conn)

    def test_client_push_promise_is_a_connection_error(self):
        self.connection_error_case(
            frame_bytes(PUSH_PROMISE, FLAG_END_HEADERS, 1,
                        struct.pack(">I", 2) + raw_block(request_headers("GET", "/pushed"))),
            PROTOCOL_ERROR, "PUSH_PROMISE from a client")

    def test_client_goaway_then_ping(self):
        # generic 3.8: GOAWAY(NO_ERROR) from the client; PING answered or a close.
        conn = self.h2()
        conn.send_goaway(0, NO_ERROR, b"gatehouse-test")
        conn.try_send(frame_bytes(PING, 0, 0, b"aftergoa"))
        self.assertTrue(conn.pump(lambda: b"aftergoa" in conn.ping_acks or conn.closed, 3))

    # generic/: every frame type accepted in a normal exchange
    def test_generic_frames_accepted(self):
        conn = self.h2()
        with self.subTest("DATA with padding"):
            sid = conn.send_headers(None, request_headers("POST", "/generic/padded"), end_stream=False)
            conn.send_data(sid, b"test", end_stream=True, pad=5)
            response = conn.response(sid)
            self.assertEqual(response.status, 200)
            self.assertEqual(self.echo.requests[-1].body, b"test")
        with self.subTest("multiple DATA frames"):
            sid = conn.send_headers(None, request_headers("POST", "/generic/multi"), end_stream=False)
            conn.send_data(sid, b"test")
            conn.send_data(sid, b"test", end_stream=True)
            self.assertEqual(conn.response(sid).status, 200)
            self.assertEqual(self.echo.requests[-1].body, b"testtest")
        with self.subTest("HEADERS with padding and priority"):
            sid = conn.send_headers(None, request_headers("GET", "/generic/hpad"), pad=7,
                                    priority=(0, 200, False))
            self.assertEqual(conn.response(sid).status, 200)
        with self.subTest("PRIORITY frames, also for idle streams"):
            conn.send_priority(conn.next_stream_id + 2, 0, 1)
            conn.send_priority(conn.next_stream_id, 0, 255, exclusive=True)
            sid = conn.send_headers(None, request_headers("GET", "/generic/prio"))
            self.assertEqual(conn.response(sid).status, 200)
        with self.subTest("WINDOW_UPDATE on stream 0 and on a stream"):
            conn.send_window_update(0, 1)
            sid = conn.send_headers(None, request_headers("GET", "/generic/wu"))
            conn.send_window_update(sid, 1)
            self.assertEqual(conn.response(sid).status, 200)
        with self.subTest("RST_STREAM then PING"):
            sid = conn.send_headers(None, request_headers("POST", "/slow/generic-rst"), end_stream=False)
            conn.send_rst(sid, CANCEL)
            self.assertTrue(conn.ping_roundtrip(b"afterrst"))
        with self.subTest("HEAD, POST, POST with trailers"):
            self.assertEqual(conn.response(conn.request("HEAD", "/generic/head")).status, 200)
            before = len(self.echo.requests)
            sid = conn.request("POST", "/generic/post", body=b"test")
            self.assertEqual(conn.response(sid).status, 200)
            sid = conn.send_headers(None, request_headers("POST", "/generic/trailers"), end_stream=False)
            conn.send_data(sid, b"test")
            conn.send_headers(sid, [("x-trailer", "yes")], raw=True, end_stream=True)
            response = conn.response(sid)
            self.assertEqual(response.status, 200, response.describe())
            self.assertTrue(self.echo.wait_for_requests(before + 2))
            self.assertEqual(self.echo.requests[-1].body, b"test")
        self.assertFalse(conn.goaways, conn.describe_frames())


# --------------------------------------------------------------------------------------
# HPACK (h2spec generic/5 and hpack/)
# --------------------------------------------------------------------------------------

HPACK_REPRESENTATIONS = [
    ("indexed", "ba"),
    ("incremental indexing, new name, Huffman", "4087b505b161cc5a93849c48aca4"),
    ("incremental indexing, new name", "400a757365722d6167656e7406683273706563"),
    ("incremental indexing, x-test", "4006782d7465737406683273706563"),
    ("incremental indexing, Huffman x-test", "4085f2b24a84ff849c48aca4"),
    ("without indexing", "000a757365722d6167656e7406683273706563"),
    ("without indexing, Huffman", "0087b505b161cc5a93849c48aca4"),
    ("without indexing, x-test", "0006782d7465737406683273706563"),
    ("without indexing, Huffman x-test", "0085f2b24a84ff849c48aca4"),
    ("never indexed", "100a757365722d6167656e7406683273706563"),
    ("never indexed, Huffman", "1087b505b161cc5a93849c48aca4"),
    ("never indexed, Huffman x-test", "1085f2b24a84ff849c48aca4"),
]


class HpackTest(SharedProxy):
    def test_header_field_representations(self):
        for what, hexrep in HPACK_REPRESENTATIONS:
            with self.subTest(what):
                rep = bytes.fromhex(hexrep)
                (name, value), = hpack.Decoder().decode(rep)
                conn = self.h2()
                path = f"/hpack/{what.replace(' ', '-').replace(',', '')}"
                block = raw_block(request_headers("GET", path)) + rep
                sid = conn.send_headers(None, block=block)
                response = conn.response(sid)
                self.assertEqual(response.status, 200, response.describe())
                forwarded = self.echo.requests[-1]
                self.assertEqual(forwarded.target, path)
                self.assertEqual(forwarded.headers.get_all(name), [value], forwarded.raw_head)

    def test_dynamic_table_size_updates(self):
        for what, prefix in [("one update", bytes.fromhex("3fe11f")),
                             ("two updates", bytes.fromhex("3f613fe11f")),
                             ("shrink to 0 then 4096", table_size_update(0) + table_size_update(4096))]:
            with self.subTest(what):
                conn = self.h2()
                sid = conn.send_headers(None, block=prefix + raw_block(
                    request_headers("GET", "/hpack/size-update")))
                self.assertEqual(conn.response(sid).status, 200, conn.describe_frames())

    def test_dynamic_table_is_shared_across_requests(self):
        conn = self.h2()
        first = literal_incremental(b"x-shared", b"value-1")   # becomes index 62
        sid = conn.send_headers(None, block=raw_block(request_headers("GET", "/hpack/t1")) + first)
        self.assertEqual(conn.response(sid).status, 200)
        sid = conn.send_headers(None, block=raw_block(request_headers("GET", "/hpack/t2")) + indexed(62))
        self.assertEqual(conn.response(sid).status, 200)
        self.assertEqual(self.echo.requests[-1].headers.get("x-shared"), "value-1")

    def test_invalid_representations_are_compression_errors(self):
        base = raw_block(request_headers("GET", "/hpack/invalid"))
        cases = [("index 0", base + b"\x80"),
                 ("index past the tables", base + b"\xc6"),
                 ("literal with an index past the tables", base + b"\x7f\x07\x00"),
                 ("size update at the end", base + b"\x21"),
                 ("size update above SETTINGS_HEADER_TABLE_SIZE", table_size_update(4097) + base),
                 ("Huffman padding longer than 7 bits", base + bytes.fromhex("0085f2b24a84ff8449509fff")),
                 ("Huffman padding with zeros", base + bytes.fromhex("0085f2b24a84ff83495090")),
                 ("Huffman EOS symbol", base + bytes.fromhex("0085f2b24a84ff874951fffffffa7f"))]
        for what, block in cases:
            with self.subTest(what):
                snapshot = UpstreamSnapshot(self.echo)
                conn = self.h2()
                conn.send(frame_bytes(HEADERS, 0x05, 1, block))
                self.assert_connection_error(conn, COMPRESSION_ERROR, what)
                self.assert_nothing_forwarded(snapshot, what)
        self.assert_served()


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


# --------------------------------------------------------------------------------------
# Security
# --------------------------------------------------------------------------------------


class Observer(threading.Thread):
    """Another client on its own h2 connection, one GET every `interval`, recording every
    failure, so an attack test shows that others were served meanwhile."""

    def __init__(self, port: int, interval: float = 0.05):
        super().__init__(daemon=True, name="h2-observer")
        self.port = port
        self.interval = interval
        self.ok = 0
        self.failures: list[str] = []
        self._halt = threading.Event()

    def run(self):
        conn = None
        n = 0
        while not self._halt.is_set():
            try:
                if conn is None:
                    conn = H2Conn(self.port, timeout=5).handshake()
                response = conn.get(f"/observer/{n}", timeout=5)
                if response.status == 200:
                    self.ok += 1
                else:
                    self.failures.append(response.describe())
                    conn.close()
                    conn = None
            except Exception as error:  # noqa: BLE001 - recorded
                self.failures.append(repr(error))
                if conn is not None:
                    conn.close()
                conn = None
            n += 1
            self._halt.wait(self.interval)
        if conn is not None:
            conn.close()

    def finish(self) -> tuple[int, list[str]]:
        self._halt.set()
        self.join(timeout=10)
        return self.ok, self.failures


class SecurityTest(H2TestCase):
    def setUp(self):
        self.probe = ConcurrencyProbe(hold=0.5, match="/rr")
        self.upstream = RecordingUpstream(self.probe, name="app")
        self.addCleanup(self.upstream.close)
        self.probe.port_of = lambda: self.upstream.port
        self.gh = self.start_gatehouse(h2_config(
            {"app": [self.upstream]}, listeners=[listener_section(), listener_section(tls=False, h2c=True)],
            timeouts={"upstream_read": "10s"}))
        self.port, self.h2c_port = self.gh.ports
        self.observer = Observer(self.port)

    def start_observer(self):
        self.observer.start()
        self.assertTrue(wait_for(lambda: self.observer.ok >= 1 or self.observer.failures, 5))

    def finish_observer(self, what: str):
        ok, failures = self.observer.finish()
        self.assertEqual(failures, [], f"{what}: another client was not served meanwhile")
        self.assertGreater(ok, 0, f"{what}: the observer got no answer at all")
        self.assertIsNone(self.gh.proc.poll(), f"{what}: gatehouse died")
        self.assert_served()

    def test_rapid_reset_ends_in_goaway_with_bounded_upstream_concurrency(self):
        self.start_observer()
        conn = self.h2(timeout=5)
        block = conn.encode(request_headers("GET", "/rr"))
        sent = 0
        pending = bytearray()
        try:
            for i in range(2000):
                sid = conn.new_stream_id()
                pending += frame_bytes(HEADERS, 0x05, sid, block)
                pending += frame_bytes(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
                if len(pending) > 4000:
                    conn.send(bytes(pending))
                    pending.clear()
                    # Keep reading so the GOAWAY is seen (and the proxy's input drained)
                    # before the connection closes.
                    conn.pump(lambda: bool(conn.goaways) or conn.closed, 0.02)
                    if conn.goaways or conn.closed:
                        break
                sent = i + 1
            if pending:
                conn.send(bytes(pending))
        except (H2Closed, OSError):
            pass
        conn.wait_connection_end(timeout=8)
        self.assertTrue(conn.goaways, f"no GOAWAY after {sent} HEADERS+RST_STREAM pairs "
                                      f"(closed={conn.closed}: if closed, the proxy closed without "
                                      f"a GOAWAY or reset the TCP connection before the client "
                                      f"could read it): {conn.describe_frames()}")
        self.assertIn(conn.last_goaway.error_code, {ENHANCE_YOUR_CALM, INTERNAL_ERROR, PROTOCOL_ERROR},
                      error_name(conn.last_goaway.error_code))
        time.sleep(1.0)
        self.assertLessEqual(self.probe.peak_live, 100,
                             f"{self.probe.peak_live} upstream exchanges at once for one client "
                             f"connection")
        self.finish_observer("rapid reset")
        verbose(self, f"GOAWAY {error_name(conn.last_goaway.error_code)} after {sent} pairs; "
                      f"upstream saw {self.upstream.connections} connections, peak "
                      f"{self.probe.peak} exchanges, {len(self.upstream.requests)} requests")

    def test_resets_after_the_upstream_started_keep_upstream_concurrency_bounded(self):
        # Rounds of 100 requests that reach the upstream (held there 0.5 s), all reset,
        # then the next 100 at once: the reset streams' exchanges must be released (or
        # still counted) before new ones start, so the upstream never sees more than 100.
        self.start_observer()
        conn = self.h2(timeout=5)
        block = conn.encode(request_headers("GET", "/rr/started"))
        rounds = 0
        try:
            for rounds in range(1, 6):
                sids = [conn.new_stream_id() for _ in range(100)]
                conn.send(b"".join(frame_bytes(HEADERS, 0x05, sid, block) for sid in sids))
                wait_for(lambda: self.probe.current >= 90 or conn.goaways or conn.closed, 0.7, 0.01)
                conn.send(b"".join(frame_bytes(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
                                   for sid in sids))
                conn.pump(lambda: bool(conn.goaways) or conn.closed, 0.02)
                if conn.goaways or conn.closed:
                    break
        except (H2Closed, OSError):
            pass
        conn.wait_connection_end(timeout=2)
        time.sleep(0.6)
        self.assertGreater(self.upstream.connections, 100, "the attack never reached the upstream")
        self.assertLessEqual(self.probe.peak_live, 100,
                             f"{self.probe.peak_live} upstream exchanges (connections the proxy "
                             f"still held open) at once for one client connection after {rounds} "
                             f"rounds of 100 resets; {self.probe.peak} as the upstream's threads "
                             f"counted")
        self.finish_observer("resets after the upstream started")
        verbose(self, f"{rounds} rounds, peak {self.probe.peak_live} live / {self.probe.peak} "
                      f"counted upstream exchanges, "
                      f"{self.probe.aborted} aborted upstream, GOAWAY "
                      f"{error_name(conn.last_goaway.error_code) if conn.goaways else None}")

    def test_premature_reset_ratio_ends_in_enhance_your_calm(self):
        # Below nghttp2's token bucket (1000): Gatehouse's own rule must fire.
        conn = self.h2(timeout=5)
        block = conn.encode(request_headers("GET", "/rr/ratio"))
        data = bytearray()
        for i in range(950):
            sid = conn.new_stream_id()
            data += frame_bytes(HEADERS, 0x05, sid, block)
            data += frame_bytes(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
        for offset in range(0, len(data), 8192):
            if not conn.try_send(bytes(data[offset:offset + 8192])):
                break
            conn.read_and_process(0)
        conn.wait_connection_end(timeout=5)
        self.assertTrue(conn.goaways, f"950 streams reset before any response: no GOAWAY "
                                      f"({conn.describe_frames()})")
        self.assertEqual(conn.last_goaway.error_code, ENHANCE_YOUR_CALM,
                         error_name(conn.last_goaway.error_code))
        self.assertLessEqual(self.probe.peak_live, 100)
        self.assert_served()

    def test_normal_cancellations_are_not_punished(self):
        # A browser-like client cancels some streams after their responses started.
        conn = self.h2(timeout=5)
        for i in range(60):
            sid = conn.request("GET", f"/cancel-some/{i}")
            if i % 3 == 0:
                conn.pump(lambda: conn.stream(sid).status is not None, 3)
                conn.send_rst(sid, CANCEL)
            else:
                self.assertEqual(conn.response(sid).status, 200)
        self.assertFalse(conn.goaways, conn.describe_frames())

    def test_continuation_flood_closes_the_connection(self):
        self.start_observer()
        conn = self.h2()
        block = conn.encode(request_headers("GET", "/cont-flood"))
        conn.send_headers(1, block=block, end_headers=False)
        flood = b"".join(frame_bytes(CONTINUATION, 0, 1, raw_block([(f"x-c{i}", "v")]))
                         for i in range(2000))
        for offset in range(0, len(flood), 4096):
            if not conn.try_send(flood[offset:offset + 4096]):
                break
        self.assertTrue(conn.wait_closed(5), f"connection still open after a CONTINUATION "
                                             f"flood: {conn.describe_frames()}")
        if conn.goaways:
            self.assertNotEqual(conn.last_goaway.error_code, NO_ERROR)
        self.assert_path_never_forwarded("/cont-flood", "CONTINUATION flood")
        self.finish_observer("CONTINUATION flood")

    def test_nine_continuations_are_too_many(self):
        snapshot = UpstreamSnapshot(self.upstream)
        conn = self.h2()
        block = raw_block(request_headers("GET", "/nine") + [(f"x-n{i}", "v") for i in range(9)])
        pieces = [block[i * 10:(i + 1) * 10] for i in range(10)]
        conn.send_headers(1, block=pieces[0], end_headers=False)
        for i, piece in enumerate(pieces[1:]):
            conn.try_send(frame_bytes(CONTINUATION, FLAG_END_HEADERS if i == 8 else 0, 1,
                                      piece if i < 8 else block[90:]))
        self.assertTrue(conn.wait_closed(3), f"HEADERS + 9 CONTINUATION accepted: "
                                             f"{conn.describe_frames()}")
        self.assert_nothing_forwarded(snapshot, "9 CONTINUATION frames")
        self.assert_served()

    def test_hpack_bomb_is_refused_and_memory_stays_flat(self):
        self.start_observer()
        conn = self.h2(timeout=10)
        before = tree_rss_kib(self.gh.pid)
        outcomes = []
        with RssSampler(self.gh.pid) as sampler:
            for round_ in range(20):
                head = raw_block(request_headers("GET", f"/bomb/{round_}"))
                if round_ == 0:   # a 4000-byte entry in the dynamic table (index 62)
                    head += literal_incremental(b"x-bomb", b"A" * 4000)
                block = head + indexed(62) * (8000 if round_ == 0 else 12000)
                sid = conn.new_stream_id()
                conn.send_headers(sid, block=block[:16000], end_headers=len(block) <= 16000)
                if len(block) > 16000:
                    conn.send_continuation(sid, block[16000:], end_headers=True)
                outcome = conn.wait_stream_outcome(sid, timeout=5)
                state = conn.stream(sid)
                outcomes.append(outcome)
                self.assertTrue(outcome == "reset" or state.status == 431,
                                f"bomb {round_}: {outcome} {state.describe()}")
                if conn.goaways or conn.closed:
                    break
        self.assert_path_never_forwarded("/bomb/", "HPACK bomb")
        if not conn.goaways and not conn.closed:
            # HPACK state still in sync: the entry is still usable in a normal request.
            self.assert_served(conn=conn, path="/after-bomb")
        self.assert_rss_growth(before, sampler, "HPACK bomb")
        self.finish_observer("HPACK bomb")

    def flood_without_reading(self, frame: bytes, what: str):
        self.start_observer()
        conn = self.h2(rcvbuf=4096, timeout=5)
        before = tree_rss_kib(self.gh.pid)
        batch = frame * (65536 // len(frame))
        sent = 0
        outcome = "still open"
        started = time.monotonic()
        with RssSampler(self.gh.pid) as sampler:
            while time.monotonic() - started < 20 and sent < 200 * 1024 * 1024:
                try:
                    conn.sock.sendall(batch)       # never reads
                    sent += len(batch)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as error:
                    outcome = f"closed ({type(error).__name__})"
                    break
                except (socket.timeout, TimeoutError):
                    outcome = "stalled: the proxy stopped reading but kept the connection"
                    break
                except OSError as error:
                    outcome = f"closed ({error!r})"
                    break
        self.assertTrue(outcome.startswith("closed"),
                        f"{what}: {outcome} after {sent} bytes in "
                        f"{time.monotonic() - started:.1f} s")
        self.assert_rss_growth(before, sampler, what)
        self.finish_observer(what)
        verbose(self, f"{what}: {outcome} after {sent // 1024} KiB; RSS {before} -> peak "
                      f"{sampler.peak_kib} KiB")

    def test_ping_flood_from_a_client_that_never_reads(self):
        self.flood_without_reading(frame_bytes(PING, 0, 0, b"pingpong"), "PING flood")

    def test_settings_flood_from_a_client_that_never_reads(self):
        self.flood_without_reading(frame_bytes(SETTINGS, 0, 0, b""), "SETTINGS flood")

    def test_connection_error_followed_by_oversized_frame_in_one_write(self):
        # CVE-2026-27135: nghttp2 < deb12u3 kept parsing after terminate_session and hit an
        # assertion on the next frame's FRAME_SIZE_ERROR, aborting the worker.
        triggers = [
            ("PING on stream 1", frame_bytes(PING, 0, 1, b"\0" * 8)),
            ("WINDOW_UPDATE 0 on the connection", frame_bytes(WINDOW_UPDATE, 0, 0, b"\0\0\0\0")),
            ("bad HPACK index", frame_bytes(HEADERS, 0x05, 1, b"\x80")),
            ("ENABLE_PUSH 2", frame_bytes(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_ENABLE_PUSH, 2))),
            ("even stream id", frame_bytes(HEADERS, 0x05, 2, raw_block(request_headers("GET", "/even")))),
        ]
        oversized = [
            ("DATA of 1 MiB", frame_bytes(DATA, 0, 1, b"", length=1 << 20) + b"x" * 200),
            ("HEADERS of 64 KiB", frame_bytes(HEADERS, 4, 3, b"", length=0x10000) + b"y" * 200),
            ("PING of 16 KiB", frame_bytes(PING, 0, 0, b"", length=0x4000) + b"z" * 200),
            ("SETTINGS of 60 KiB", frame_bytes(SETTINGS, 0, 0, b"", length=60000) + b"\0" * 200),
        ]
        for transport, port, tls in (("TLS", self.port, True), ("h2c", self.h2c_port, False)):
            for t_name, trigger in triggers:
                for o_name, big in oversized:
                    with self.subTest(transport=transport, trigger=t_name, oversized=o_name):
                        conn = H2Conn(port, tls=tls, timeout=3).handshake()
                        self.addCleanup(conn.close)
                        conn.try_send(trigger + big)      # one write, one TLS record
                        conn.wait_closed(3)
                        conn.close()
                        self.assertIsNone(self.gh.proc.poll(), "gatehouse died")
            with self.subTest(transport=transport, check="served after"):
                other = H2Conn(port, tls=tls, timeout=5).handshake()
                self.addCleanup(other.close)
                self.assertEqual(other.get("/after-cve").status, 200)
        self.assertNotIn("Assertion", self.gh.stderr())
        self.assertNotIn("abort", self.gh.stderr().lower())


# --------------------------------------------------------------------------------------
# Flow control as backpressure
# --------------------------------------------------------------------------------------


class CountingStream:
    """A handler streaming `total` deterministic bytes and counting what it has written;
    its socket send buffer is small so the count tracks what the proxy has read."""

    def __init__(self, total: int, seed: int):
        self.total = total
        self.seed = seed
        self.sent = 0

    def __call__(self, request, conn):
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        conn.send(f"HTTP/1.1 200 OK\r\nContent-Length: {self.total}\r\n\r\n".encode())
        for block in pattern_blocks(self.total, self.seed, block=16 * 1024):
            conn.send(block)
            self.sent += len(block)


class FlowControlTest(H2TestCase):
    SIZE = 16 * 1024 * 1024

    def test_small_window_slow_reader_gets_large_response_and_upstream_is_paused(self):
        stream = CountingStream(self.SIZE, seed=41)
        upstream = self.start_upstream(stream, name="download", record_raw=False)
        self.gh = self.start_gatehouse(h2_config({"app": [upstream]},
                                                 timeouts={"upstream_read": "30s"}))
        self.port = self.gh.port
        conn = self.h2(settings={SETTINGS_INITIAL_WINDOW_SIZE: 16384}, timeout=10)
        conn.auto_window = False
        before = tree_rss_kib(self.gh.pid)
        with RssSampler(self.gh.pid) as sampler:
            sid = conn.request("GET", "/download")
            self.assertTrue(conn.pump(lambda: len(conn.stream(sid).data) >= 16384, 5))
            time.sleep(1.5)                                    # the client reads nothing
            conn.drain(0.1)
            upstream_sent_paused = stream.sent
            received_paused = len(conn.stream(sid).data)
            # Slow phase: 16 KiB of window every 20 ms for a second.
            for _ in range(50):
                conn.send_window_update(sid, 16384)
                conn.send_window_update(0, 16384)
                conn.drain(0.02)
            # Then read at full speed.
            conn.send_window_update(sid, 1 << 30)
            conn.send_window_update(0, 1 << 30)
            conn.auto_window = True
            conn.pump(lambda: conn.stream_done(sid), 60)
        state = conn.stream(sid)
        verbose(self, f"upstream had sent {upstream_sent_paused} bytes while the client granted "
                      f"none; RSS {before} -> peak {sampler.peak_kib} KiB")
        self.assertEqual(received_paused, 16384, "DATA beyond the granted window")
        self.assertLess(upstream_sent_paused, 4 * 1024 * 1024,
                        f"the proxy kept reading the upstream while the client granted no window "
                        f"({upstream_sent_paused} of {self.SIZE} bytes read)")
        self.assertTrue(state.ended, state.describe())
        self.assertEqual(len(state.data), self.SIZE)
        self.assertEqual(hashlib.sha256(state.data).hexdigest(), pattern_sha256_16k(self.SIZE, 41),
                         "download corrupted")
        self.assert_rss_growth(before, sampler, "paused download")

    def test_request_window_given_back_only_as_the_upstream_reads(self):
        size = 16 * 1024 * 1024
        upstream = self.start_upstream(echo_only_digest, name="upload", store_bodies=False,
                                       record_raw=False, body_read_delay=2.0)
        self.gh = self.start_gatehouse(h2_config({"app": [upstream]}, limits={"body": "0"},
                                                 timeouts={"client_body": "30s",
                                                           "upstream_read": "30s"}))
        self.port = self.gh.port
        conn = self.h2(timeout=30)
        body = b"".join(pattern_blocks(size, seed=43))
        result = {}

        def upload():
            try:
                sid = conn.send_headers(None, request_headers("PUT", "/upload"), end_stream=False)
                result["sid"] = sid
                conn.upload(sid, body, end_stream=True, timeout=30)
                result["response"] = conn.response(sid, timeout=30)
            except Exception as error:  # noqa: BLE001 - asserted below
                result["error"] = error

        thread = threading.Thread(target=upload, daemon=True)
        before = tree_rss_kib(self.gh.pid)
        with RssSampler(self.gh.pid) as sampler:
            thread.start()
            time.sleep(1.2)                     # the upstream reads nothing for 2 s
            sent_while_paused = conn.data_sent
            thread.join(timeout=40)
        self.assertNotIn("error", result, result.get("error"))
        verbose(self, f"client sent {sent_while_paused} bytes while the upstream read nothing; "
                      f"RSS {before} -> peak {sampler.peak_kib} KiB")
        # Kernel socket buffers between the proxy and the upstream hold a few MiB (the
        # proxy's send buffer autotunes up to net.ipv4.tcp_wmem's 4 MiB); the rest must wait.
        self.assertLess(sent_while_paused, 8 * 1024 * 1024,
                        f"the client could send {sent_while_paused} bytes while the upstream "
                        f"read nothing: the window was given back before the bytes went upstream")
        response = result["response"]
        self.assertEqual(response.status, 200, response.describe())
        self.assertEqual(response.header("x-body-length"), str(size))
        self.assertEqual(response.header("x-body-sha256"), hashlib.sha256(body).hexdigest())
        self.assert_rss_growth(before, sampler, "paused upload")


def echo_only_digest(request, conn):
    conn.respond(200, echo_headers(request, conn))


def pattern_sha256_16k(total: int, seed: int) -> str:
    digest = hashlib.sha256()
    for block in pattern_blocks(total, seed, block=16 * 1024):
        digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# Lifecycle: SIGTERM, SIGHUP; access log and metrics
# --------------------------------------------------------------------------------------


class LifecycleTest(H2TestCase):
    def test_sigterm_sends_goaway_and_the_in_flight_stream_completes(self):
        slow = self.start_upstream(delayed_handler(1.5), name="slow")
        gh = self.start_gatehouse(h2_config({"app": [slow]}, server={"drain_timeout": "5s"}))
        self.port = gh.port
        conn = self.h2(timeout=8)
        sid = conn.request("POST", "/in-flight", body=b"payload")
        self.assertTrue(slow.wait_for_heads(1, timeout=3))
        started = time.monotonic()
        gh.signal(signal.SIGTERM)
        self.assertTrue(conn.pump(lambda: bool(conn.goaways), 3),
                        f"no GOAWAY after SIGTERM: {conn.describe_frames()}")
        self.assertEqual(conn.goaways[0].error_code, NO_ERROR)
        response = conn.response(sid, timeout=8)
        self.assertEqual(response.status, 200, f"in-flight stream: {response.describe()}")
        self.assertTrue(response.ended)
        self.assertEqual(response.body, b"payload")
        self.assertGreaterEqual(conn.last_goaway.last_stream_id, sid)
        # A stream opened after the final GOAWAY is not processed.
        if conn.last_goaway.last_stream_id < 2 ** 31 - 1 and not conn.closed:
            try:
                late = conn.request("GET", "/too-late")
                conn.pump(lambda: conn.stream_done(late) or conn.closed, 2)
                self.assertNotEqual(conn.stream(late).status, 200)
            except (H2Closed, OSError):
                pass   # the connection closed after the final GOAWAY: fine
            time.sleep(SETTLE)
            self.assertNotIn("/too-late", slow.request_targets())
        self.assertEqual(gh.wait(8), 0)
        self.assertLess(time.monotonic() - started, 5.5)

    def test_sighup_keeps_the_connection_and_new_streams_use_the_new_config(self):
        a = self.start_upstream(name="a")
        b = self.start_upstream(name="b")
        config_a = h2_config({"a": [a], "b": [b]}, [{"path_prefix": "/", "upstream": "a"}])
        config_b = h2_config({"a": [a], "b": [b]}, [{"path_prefix": "/", "upstream": "b"}])
        gh = self.start_gatehouse(config_a)
        self.port = gh.port
        conn = self.h2()
        self.assertEqual(conn.get("/before").header("x-upstream"), "a")
        self.assertTrue(gh.reload(config_b), gh.stderr()[-2000:])
        response = conn.get("/after")
        self.assertEqual(response.status, 200, response.describe())
        self.assertFalse(conn.goaways, f"SIGHUP ended the h2 connection: {conn.describe_frames()}")
        self.assertEqual(response.header("x-upstream"), "b", "new stream still on the old config")

    def test_access_log_and_metrics_by_protocol(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(h2_config({"app": [upstream]},
                                            listeners=[listener_section(), listener_section(tls=False)]))
        self.port = gh.port
        conn = self.h2()
        for i in range(3):
            self.assertEqual(conn.get(f"/logged-h2/{i}").status, 200)
        with HttpClient(gh.ports[1]) as client:
            self.assertEqual(client.request("GET", "/logged-h1").status, 200)

        def counters():
            status, text = admin_get(gh.admin_port, "/metrics")
            h2 = re.search(r'^gatehouse_requests_by_protocol_total\{protocol="h2"\} (\d+)', text, re.M)
            h1 = re.search(r'^gatehouse_requests_by_protocol_total\{protocol="http/1.1"\} (\d+)',
                           text, re.M)
            return (int(h2.group(1)) if h2 else None, int(h1.group(1)) if h1 else None, text)

        ok = wait_for(lambda: (lambda c: c[0] is not None and c[0] >= 3 and c[1] is not None
                               and c[1] >= 1)(counters()), 5)
        h2, h1, text = counters()
        self.assertTrue(ok, f"metrics by protocol: h2={h2} http/1.1={h1}\n"
                            f"{[l for l in text.splitlines() if 'protocol' in l]}")
        self.assertEqual(gh.stop(), 0)
        lines = gh.stdout().splitlines()
        for i in range(3):
            self.assertTrue(any(f'"GET /logged-h2/{i} HTTP/2.0"' in l for l in lines),
                            f"no access log line for /logged-h2/{i}:\n{gh.stdout()[-2000:]}")
        self.assertTrue(any('"GET /logged-h1 HTTP/1.1"' in l for l in lines), gh.stdout()[-2000:])


if __name__ == "__main__":
    unittest.main()
