"""HTTP/2 frames at the frame level, through the real gatehouse binary: the h2spec groups
for frames, error codes and header compression (RFC 9113 §4, §6, §7, §8.4; RFC 7541).

  * frame format and size, header blocks interleaved with other frames, extension
    frames (h2spec 4.1-4.3, 5.5);
  * every frame type's rules: DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING,
    GOAWAY, WINDOW_UPDATE and flow-control windows, CONTINUATION (h2spec 6.x), unknown
    error codes (7), a client's PUSH_PROMISE (8.2), every frame type in a normal exchange
    (generic/);
  * HPACK: every field representation, dynamic table size updates, the dynamic table
    across requests, invalid representations (h2spec generic/5, hpack/).

The client is h2_client.H2Conn; the origin is h2_support.RecordingUpstream; the shared
fixture and assertions are in h2_cases. Every error case also checks that nothing reached
the upstream and that the same connection (after a stream error) or a new one is served.
"""

from __future__ import annotations

import struct
import time
import unittest

import hpack

from h2_client import (CANCEL, COMPRESSION_ERROR, CONTINUATION, DATA, FLAG_END_HEADERS,
                       FLAG_PADDED, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, GOAWAY, HEADERS,
                       NO_ERROR, PING, PRIORITY, PROTOCOL_ERROR, PUSH_PROMISE, RST_STREAM,
                       SETTINGS, SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE,
                       SETTINGS_MAX_FRAME_SIZE, STREAM_CLOSED, WINDOW_UPDATE, certificates,
                       frame_bytes, indexed, literal_incremental, raw_block, request_headers,
                       table_size_update)
from h2_cases import SETTLE, TEXT, SharedProxy
from h2_support import UpstreamSnapshot


def setUpModule():
    certificates()   # make the CA and leaf once, before any proxy starts


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


if __name__ == "__main__":
    unittest.main()
