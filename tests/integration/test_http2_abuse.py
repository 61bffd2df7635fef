"""HTTP/2 under abuse and load, and its lifecycle, through the real gatehouse binary.

  * security: Rapid Reset (before and after the upstream started), the premature-reset
    ratio, CONTINUATION floods, HPACK bomb, PING/SETTINGS floods from a client that never
    reads, empty DATA floods, the CVE-2026-27135 shape; each with another client served
    meanwhile or afterwards;
  * flow control as backpressure, downloads and uploads, with bounded proxy memory; the
    window of a refused or failed upload given back;
  * SIGTERM (GOAWAY, the in-flight stream completes, the final GOAWAY comes although the
    client keeps opening streams), SIGHUP (new streams use the new config), the access log
    and metrics by protocol.

The client is h2_client.H2Conn; the origin is h2_support.RecordingUpstream; the shared
fixture and assertions are in h2_cases.
"""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import ssl
import struct
import threading
import time
import unittest

from h2_client import (CANCEL, CONTINUATION, DATA, ENHANCE_YOUR_CALM, FLAG_END_HEADERS,
                       FLAG_END_STREAM, HEADERS, INTERNAL_ERROR, NO_ERROR, PING, PROTOCOL_ERROR,
                       RST_STREAM, SETTINGS, SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE,
                       WINDOW_UPDATE, H2Closed, H2Conn, certificates, error_name, frame_bytes,
                       indexed, literal_incremental, raw_block, request_headers)
from h2_cases import SETTLE, H2TestCase, verbose
from h2_support import (ConcurrencyProbe, RecordingUpstream, UpstreamSnapshot, h2_config,
                        listener_section)
from harness import (HttpClient, RssSampler, delayed_handler, echo_headers, pattern_blocks,
                     pattern_bytes, tree_rss_kib, wait_for)


def setUpModule():
    certificates()   # make the CA and leaf once, before any proxy starts


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

    def test_empty_data_flood_ends_in_enhance_your_calm(self):
        # Gatehouse allows at most 16 empty DATA frames (no END_STREAM) in a row.
        with self.subTest("16 in a row, then the body"):
            conn = self.h2()
            sid = conn.send_headers(None, request_headers("POST", "/empty-data/16"),
                                    end_stream=False)
            conn.send(frame_bytes(DATA, 0, sid) * 16 +
                      frame_bytes(DATA, FLAG_END_STREAM, sid, b"done"))
            response = conn.response(sid)
            self.assertEqual(response.status, 200,
                             f"{response.describe()}; frames: {conn.describe_frames()}")
            self.assertFalse(conn.goaways, conn.describe_frames())
            self.assertEqual(self.upstream.requests[-1].target, "/empty-data/16")
            self.assertEqual(self.upstream.requests[-1].body, b"done")
        path = "/empty-data/flood"
        conn = self.h2()
        sid = conn.send_headers(None, request_headers("POST", path), end_stream=False)
        conn.send_data(sid, b"head")
        # That DATA goes upstream as a chunk before END_STREAM: wait for it, so everything
        # that may legitimately reach the upstream is in the snapshot.
        chunk = b"4\r\nhead\r\n"
        self.assertTrue(wait_for(lambda: self.upstream.received_bytes().endswith(chunk), 3),
                        f"the first DATA never reached the upstream: "
                        f"{self.upstream.received_bytes()[-300:]!r}")
        snapshot = UpstreamSnapshot(self.upstream)
        conn.try_send(frame_bytes(DATA, 0, sid) * 1000)       # one write
        conn.wait_connection_end(timeout=3)
        self.assertTrue(conn.goaways, f"no GOAWAY after 1000 empty DATA frames: "
                                      f"{conn.describe_frames()}")
        self.assertEqual(conn.last_goaway.error_code, ENHANCE_YOUR_CALM,
                         error_name(conn.last_goaway.error_code))
        self.assert_nothing_forwarded(snapshot, "empty DATA flood")
        self.assertNotIn(path, self.upstream.request_targets(),
                         "the flooded request completed upstream")
        carried = self.upstream.connections_with_head(path)
        self.assertTrue(self.upstream.wait_ended(carried),
                        f"upstream connection {carried} of the flooded stream left open")
        self.assert_served()

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

    def test_window_given_back_after_a_413_or_a_504_on_an_upload(self):
        # Streams whose upload the proxy refuses (413) or gives up on (504) while an
        # upstream that reads nothing holds their bytes in flight: together they use the
        # whole 1 MiB connection window, which must come back for the next upload.
        stuck = self.start_upstream(delayed_handler(10), name="stuck", body_read_delay=10)
        stuck.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        echo = self.start_upstream(name="echo")
        self.gh = self.start_gatehouse(h2_config(
            {"echo": [echo], "stuck": [stuck]},
            [{"path_prefix": "/", "upstream": "echo"},
             {"path_prefix": "/stuck", "upstream": "stuck"}],
            limits={"body": "48KiB"}, timeouts={"upstream_read": "1s"}))
        self.port = self.gh.port
        for status, streams, size, end_stream in ((413, 16, 65535, False),
                                                  (504, 21, 48 * 1024, False)):
            with self.subTest(status=status):
                conn = self.h2(timeout=5)
                sids = [conn.send_headers(None, request_headers("POST", f"/stuck/{status}"),
                                          end_stream=False) for _ in range(streams)]
                for sid in sids:
                    conn.upload(sid, b"u" * size, end_stream=end_stream)
                conn.pump(lambda: all(conn.stream(s).status for s in sids), 4)
                self.assertEqual({conn.stream(s).status for s in sids}, {status},
                                 conn.describe_frames())
                body = pattern_bytes(48 * 1024, seed=status)
                sid = conn.send_headers(None, request_headers("POST", "/after"), end_stream=False)
                try:
                    conn.upload(sid, body)
                except (AssertionError, H2Closed) as error:      # no window left
                    self.fail(f"after {streams} uploads answered {status}: {error}; "
                              f"{conn.stream(sid).describe()}")
                response = conn.response(sid)
                self.assertEqual(response.status, 200, response.describe())
                self.assertEqual(response.header("x-body-sha256"), hashlib.sha256(body).hexdigest())


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


def admin_get(port: int, path: str) -> tuple[int, str]:
    with HttpClient(port) as client:
        response = client.request("GET", path)
        return response.status, response.body.decode("utf-8", "replace")


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

    def test_sigterm_final_goaway_comes_while_the_client_keeps_opening_streams(self):
        # A busy client opens a stream every 50 ms: new streams must not hold back the
        # final GOAWAY (sent 1 s after the notice), and every stream it accepted completes.
        slow = self.start_upstream(delayed_handler(0.3), name="slow")
        gh = self.start_gatehouse(h2_config({"app": [slow]}, server={"drain_timeout": "5s"}))
        self.port = gh.port
        conn = self.h2(timeout=8)
        opened, signalled, final_at = [], None, None
        while final_at is None and (signalled is None or time.monotonic() - signalled < 3):
            if signalled is None and len(opened) == 10:
                gh.signal(signal.SIGTERM)
                signalled = time.monotonic()
            try:
                opened.append(conn.request("GET", f"/busy/{len(opened)}"))
            except (H2Closed, OSError):
                break
            conn.drain(0.05)
            if any(g.last_stream_id < 2 ** 31 - 1 for g in conn.goaways):
                final_at = time.monotonic()
        self.assertIsNotNone(final_at, f"no final GOAWAY within 3 s of SIGTERM while the client "
                                       f"kept opening streams: {conn.describe_frames()}")
        self.assertLess(final_at - signalled, 2.5)
        last = min(g.last_stream_id for g in conn.goaways)
        accepted = [sid for sid in opened if sid <= last]
        conn.pump(lambda: all(conn.stream_done(sid) for sid in accepted), 4)
        self.assertEqual([conn.stream(sid).status for sid in accepted], [200] * len(accepted),
                         conn.describe_frames())
        self.assertTrue(all(conn.stream(sid).ended for sid in accepted))
        refused = {f"/busy/{i}" for i, sid in enumerate(opened) if sid > last}
        time.sleep(SETTLE)
        self.assertFalse(refused & set(slow.request_targets()), "streams after the final "
                                                                "GOAWAY reached the upstream")
        self.assertEqual(gh.wait(8), 0)

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
