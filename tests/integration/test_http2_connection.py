"""HTTP/2 connections and streams at the frame level, through the real gatehouse binary:
the h2spec groups for starting HTTP/2 and for streams (RFC 9113 §3, §5).

  * listeners: ALPN h2/http1.1 choice, `http2 = false`, h2c prior knowledge opt-in and
    its absence, the server's SETTINGS and connection window, the preface (h2spec 3.5);
  * stream states, identifiers, concurrency (the 101st stream), priority depending on
    itself, connection errors ending in GOAWAY (h2spec 5.1, 5.1.1, 5.1.2, 5.3.1, 5.4.1).

The client is h2_client.H2Conn; the origin is h2_support.RecordingUpstream; the shared
fixture and assertions are in h2_cases. Every error case also checks that nothing reached
the upstream and that the same connection (after a stream error) or a new one is served.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
import unittest

from h2_client import (AUTHORITY, CANCEL, CONTINUATION, DEFAULT_WINDOW, FLAG_END_HEADERS, PING,
                       PREFACE, PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM, SETTINGS,
                       SETTINGS_ENABLE_CONNECT_PROTOCOL, SETTINGS_INITIAL_WINDOW_SIZE,
                       SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_HEADER_LIST_SIZE,
                       SETTINGS_NO_RFC7540_PRIORITIES, STREAM_CLOSED, WINDOW_UPDATE,
                       certificates, client_tls_context, error_name, frame_bytes, raw_block,
                       request_headers)
from h2_cases import SETTLE, SharedProxy, verbose
from h2_support import UpstreamSnapshot
from harness import LOCALHOST, HttpClient, raw_request


def setUpModule():
    certificates()   # make the CA and leaf once, before any proxy starts


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


if __name__ == "__main__":
    unittest.main()
