"""Shared pieces of the frame-level HTTP/2 test modules (test_http2_connection,
test_http2_frames, test_http2_requests, test_http2_abuse): the H2TestCase assertions on
H2Conn outcomes, the SharedProxy fixture (one proxy per class with four listeners) and a
few constants.

Where nghttp2 (Debian 1.52.0-1+deb12u3) deliberately ignores a frame that h2spec expects
an error for (frames on streams it no longer tracks, PRIORITY with NO_RFC7540_PRIORITIES),
assert_error_or_ignored accepts "ignored" too; the tests still require that nothing
reaches the upstream and that the connection keeps working.
"""

from __future__ import annotations

import os
import time
import unittest

from h2_client import CANCEL, NO_ERROR, PROTOCOL_ERROR, H2Conn, error_name
from h2_support import (ConcurrencyProbe, RecordingUpstream, UpstreamSnapshot, h2_config,
                        listener_section)
from harness import (Gatehouse, GatehouseTestCase, RssSampler, Upstream, delayed_handler,
                     static_handler)

TEXT = b"hello from the text upstream\n" * 64          # 1856 bytes, several DATA frames
SETTLE = 0.3        # seconds to let anything that was (wrongly) forwarded reach the upstream
RSS_GROWTH_LIMIT_KIB = int(os.environ.get("GATEHOUSE_H2_RSS_GROWTH_MB", "16")) * 1024


def verbose(test: unittest.TestCase, text: str) -> None:
    """Measurements worth seeing, printed with GATEHOUSE_H2_VERBOSE=1."""
    if os.environ.get("GATEHOUSE_H2_VERBOSE"):
        print(f"\n{test.id()}: {text}", flush=True)


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
