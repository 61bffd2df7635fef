"""HTTP/2 streams whose peer stops halfway, through the real gatehouse binary:

  * deadlines: a header block that never ends (timeouts.request_header: the connection
    goes), a request body that stops coming or never ends (timeouts.client_body: 408), a
    response the client's window holds back (timeouts.upstream_read: RST_STREAM CANCEL
    and the upstream connection let go);
  * a close-delimited upstream response whose FIN arrives while the client's window holds
    the response back: it still ends, with all its bytes.

The client is h2_client.H2Conn over h2c; the origin is h2_support.RecordingUpstream; the
assertions are in h2_cases.
"""

from __future__ import annotations

import threading
import time
import unittest

from h2_client import (CANCEL, SETTINGS_INITIAL_WINDOW_SIZE, H2Conn, error_name,
                       request_headers)
from h2_cases import SETTLE, H2TestCase
from h2_support import RecordingUpstream, h2_config, listener_section
from harness import Gatehouse, pattern_bytes

# request_header and client_body, in seconds; upstream_read (the deadline of a response the
# client's window holds back) is twice as long, so a stalled body meets client_body first.
DEADLINE = 1.0


class StreamDeadlineTest(H2TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = RecordingUpstream(name="echo")
        cls.addClassCleanup(cls.upstream.close)
        cls.gh = Gatehouse(h2_config(
            {"app": [cls.upstream]}, listeners=[listener_section(tls=False, h2c=True)],
            timeouts={"request_header": "1s", "client_body": "1s", "upstream_read": "2s"}))
        cls.addClassCleanup(cls.gh.cleanup)
        cls.gh.start()
        cls.port = cls.gh.port

    def setUp(self):
        self.addCleanup(self._dump_logs_on_failure, self.gh)

    def h2c(self, **kwargs) -> H2Conn:
        return self.h2(tls=False, **kwargs)

    def headers(self, method: str, path: str, extra=()):
        return request_headers(method, path, scheme="http", extra=extra)

    def assert_late_but_not_never(self, started: float, what: str,
                                  deadline: float = DEADLINE) -> None:
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, deadline * 0.8, f"{what}: before the deadline")
        self.assertLess(elapsed, deadline + 2, what)

    def test_unfinished_header_block_ends_the_connection(self):
        conn = self.h2c()
        conn.send_headers(None, self.headers("GET", "/stalls/no-end-headers"), end_headers=False)
        started = time.monotonic()
        self.assertTrue(conn.wait_connection_end(DEADLINE + 3),
                        f"HEADERS without END_HEADERS held the connection: "
                        f"{conn.describe_frames()}")
        self.assert_late_but_not_never(started, "header block deadline")
        self.assertTrue(conn.goaways or conn.closed)
        self.assert_path_never_forwarded("/stalls/no-end-headers", "unfinished header block")
        self.assert_served(conn=self.h2c())

    def test_request_body_that_stops_coming_is_answered_408(self):
        cases = [("content-length 0 without END_STREAM", "/stalls/cl0", [("content-length", "0")],
                  b""),
                 ("three bytes, then nothing", "/stalls/stopped", [], b"abc")]
        for name, path, extra, data in cases:
            with self.subTest(name):
                conn = self.h2c()
                sid = conn.send_headers(None, self.headers("POST", path, extra), end_stream=False)
                if data:
                    conn.send_data(sid, data)
                started = time.monotonic()
                outcome = conn.wait_stream_outcome(sid, DEADLINE + 3)
                state = conn.stream(sid)
                self.assertTrue(outcome == "reset" or state.status == 408,
                                f"{name}: {outcome} {state.describe()}")
                self.assert_late_but_not_never(started, name)
                time.sleep(SETTLE)
                self.assertNotIn(path, self.upstream.request_targets(),
                                 f"{name}: the upstream got a complete request")
                carried = self.upstream.connections_with_head(path)
                self.assertTrue(self.upstream.wait_ended(carried), f"{name}: upstream "
                                                                   f"connection kept")
                self.assert_served(conn=conn)

    def test_response_held_by_a_closed_window_is_reset(self):
        # The client grants no window; three streams, started 0.3 s apart, each holding a
        # complete response: each is reset (CANCEL) once upstream_read (2 s) passed.
        conn = self.h2c(settings={SETTINGS_INITIAL_WINDOW_SIZE: 0})
        sids, started = [], time.monotonic()
        for i in range(3):
            sids.append(conn.request("POST", f"/stalls/held/{i}", body=b"held" * 25))
            conn.drain(0.3)
        conn.pump(lambda: all(conn.stream_done(sid) for sid in sids), 2 * DEADLINE + 3)
        for sid in sids:
            state = conn.stream(sid)
            self.assertEqual((state.status, state.reset), (200, CANCEL),
                             f"{state.describe()} reset={error_name(state.reset)}; "
                             f"{conn.describe_frames()}")
        self.assert_late_but_not_never(started + 0.6, "held responses", 2 * DEADLINE)
        carried = set().union(*(self.upstream.connections_with_head(f"/stalls/held/{i}")
                                for i in range(3)))
        self.assertTrue(self.upstream.wait_ended(carried),
                        "the upstream connections of the reset streams were kept")
        self.assertFalse(conn.goaways, conn.describe_frames())
        self.assert_served(conn=self.h2c())


class CloseDelimitedResponseTest(H2TestCase):
    def test_response_ends_when_the_fin_comes_while_the_window_holds_it(self):
        # The upstream sends one window (64 KiB) and 4 KiB more, 4 KiB at a time, each
        # read by the proxy before the next (the last ones wait there for the client's
        # window), then its tail and FIN: once the client opens its window, the body ends
        # with all its bytes.
        body = pattern_bytes(65535 + 4096) + b"TAIL"
        done = threading.Event()

        def handler(request, conn):
            conn.close()
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            for offset in range(0, len(body) - 4, 4096):
                conn.send(body[offset:min(offset + 4096, len(body) - 4)])
                if not conn.wait_read_by_peer():
                    break
            conn.send(body[-4:])
            done.set()

        upstream = self.start_upstream(handler, name="close")
        gh = self.start_gatehouse(h2_config({"app": [upstream]}, listeners=[
            listener_section(tls=False, h2c=True)]))
        conn = self.h2(gh.port, tls=False)
        conn.auto_window = False
        sid = conn.request("GET", "/close-delimited")
        self.assertTrue(conn.pump(lambda: done.is_set() and len(conn.stream(sid).data) >= 65535, 5),
                        conn.describe_frames())
        conn.drain(SETTLE)                                # the proxy reads the tail and FIN
        conn.auto_window = True
        conn.send_window_update(0, 1 << 20)
        conn.send_window_update(sid, 1 << 20)
        state = conn.response(sid, 3)
        self.assertTrue(state.ended, f"no END_STREAM: {state.describe()}")
        self.assertEqual(len(state.data), len(body))
        self.assertTrue(state.data == body, "body corrupted")


if __name__ == "__main__":
    unittest.main()
