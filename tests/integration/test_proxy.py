"""End-to-end behaviour of the proxy: forwarding, headers, keep-alive, routing,
balancing, failures, timeouts, limits, the CLI, signals and the admin listener."""

import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
import unittest

from harness import (LOCALHOST, BufferedReader, GatehouseTestCase, HttpClient,
                     HttpParseError, build_request, close_handler, connect, delayed_handler,
                     echo_handler, garbage_handler, make_config, pattern_bytes, raw_request,
                     read_response, refusing_port, run_gatehouse, static_handler,
                     tcp_queues, write_atomically)


def trickle(port, data, interval, give_up):
    """Sends `data` one byte per `interval` until the proxy closes the connection or
    `give_up` seconds pass. Returns (bytes received, closed, seconds elapsed)."""
    received = bytearray()
    started = time.monotonic()
    with connect(port) as sock:
        sock.settimeout(interval)
        sent = 0
        while time.monotonic() - started < give_up:
            if 0 <= sent < len(data):
                try:
                    sock.sendall(data[sent:sent + 1])
                    sent += 1
                except (BrokenPipeError, ConnectionResetError):
                    sent = -1  # stop sending, keep reading what was answered
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return bytes(received), True, time.monotonic() - started
            received += chunk
    return bytes(received), False, time.monotonic() - started


class ForwardingTest(GatehouseTestCase):
    def setUp(self):
        self.upstream = self.start_upstream(name="app")
        self.gh = self.start_gatehouse(make_config({"app": [self.upstream]}))

    def test_methods_with_bodies_pass_through(self):
        body = bytes(range(256)) * 300  # 76800 bytes, every byte value
        client = self.client(self.gh.port)
        cases = [("GET", None, False), ("POST", body, False), ("POST", body, True),
                 ("PUT", body, False), ("PUT", body, True), ("DELETE", b"gone", False),
                 ("DELETE", b"gone", True), ("PATCH", b"", False)]
        for index, (method, payload, chunked) in enumerate(cases):
            with self.subTest(method=method, chunked=chunked):
                target = f"/item/{index}?q=a%20b&x=1"
                response = client.request(method, target, body=payload, chunked=chunked)
                self.assertEqual(response.status, 200)
                self.assertEqual(response.headers.get("X-Method"), method)
                self.assertEqual(response.headers.get("X-Target"), target)
                self.assertEqual(response.body, payload or b"")
                seen = self.upstream.requests[-1]
                self.assertEqual(seen.body, payload or b"")
                has_cl = "content-length" in seen.headers
                has_te = "transfer-encoding" in seen.headers
                self.assertFalse(has_cl and has_te, "upstream got both CL and TE")
                if payload:
                    self.assertTrue(has_cl or has_te, "body forwarded without framing")

    def test_forwarding_headers(self):
        response = self.get(self.gh.port, "/h", headers=[("Host", "shop.example:8080"),
                                                        ("X-Forwarded-For", "10.1.2.3"),
                                                        ("X-Custom", "kept")])
        self.assertEqual(response.status, 200)
        seen = self.upstream.requests[-1].headers
        self.assertEqual(seen.get_all("Host"), ["shop.example:8080"])
        self.assertEqual(seen.get("X-Forwarded-Host"), "shop.example:8080")
        self.assertEqual(seen.get("X-Forwarded-Proto"), "http")
        self.assertEqual(seen.get("X-Real-IP"), "127.0.0.1")
        self.assertEqual(seen.get("X-Custom"), "kept")
        forwarded_for = ", ".join(seen.get_all("X-Forwarded-For")).replace(" ", "")
        self.assertEqual(forwarded_for, "10.1.2.3,127.0.0.1")

    def test_forwarded_for_added_when_absent(self):
        self.get(self.gh.port, "/")
        seen = self.upstream.requests[-1].headers
        self.assertEqual(seen.get_all("X-Forwarded-For"), ["127.0.0.1"])

    def test_hop_by_hop_headers_are_stripped(self):
        request = build_request("GET", "/hop", [
            ("Connection", "close, X-Secret"), ("X-Secret", "1"),
            ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Trailer", "X-Sum"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="), ("Proxy-Connection", "keep-alive"),
            ("X-End-To-End", "yes")])
        result = raw_request(self.gh.port, request)
        self.assertEqual(result.status, 200)
        self.assertTrue(result.closed, "Connection: close from the client was ignored")
        seen = self.upstream.requests[-1].headers
        for name in ("X-Secret", "Keep-Alive", "TE", "Trailer", "Proxy-Authorization",
                     "Proxy-Connection"):
            self.assertNotIn(name, seen, f"{name} was forwarded upstream")
        self.assertEqual(seen.get("X-End-To-End"), "yes")
        self.assertFalse(any("x-secret" in v.lower() for v in seen.get_all("Connection")))

    def test_connection_named_header_stripped_on_keep_alive_connection(self):
        client = self.client(self.gh.port)
        response = client.request("GET", "/a", [("Connection", "X-Private"),
                                                ("X-Private", "s3cret")])
        self.assertEqual(response.status, 200)
        self.assertNotIn("X-Private", self.upstream.requests[-1].headers)
        self.assertEqual(client.request("GET", "/b").status, 200)

    def test_hop_by_hop_response_headers_are_stripped(self):
        upstream = self.start_upstream(static_handler(200, b"ok", headers=[
            ("Connection", "X-Upstream-Secret"), ("X-Upstream-Secret", "1"),
            ("Keep-Alive", "timeout=99"), ("X-Visible", "yes")]))
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        response = self.get(gh.port)
        self.assertEqual((response.status, response.body), (200, b"ok"))
        self.assertEqual(response.headers.get("X-Visible"), "yes")
        self.assertNotIn("X-Upstream-Secret", response.headers)
        self.assertNotIn("Keep-Alive", response.headers)


class ResponseFramingTest(GatehouseTestCase):
    def test_chunked_response_with_trailer(self):
        def handler(request, conn):
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: 1\r\n\r\n")

        upstream = self.start_upstream(handler)
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        client = self.client(gh.port)
        for _ in range(2):  # twice: the connection must stay in sync
            response = client.request("GET", "/")
            self.assertEqual((response.status, response.body), (200, b"hello world"))

    def test_close_delimited_response(self):
        def handler(request, conn):
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 100_000)
            conn.close()

        upstream = self.start_upstream(handler)
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        client = self.client(gh.port)
        response = client.request("GET", "/")
        self.assertEqual((response.status, response.body), (200, b"z" * 100_000))
        if not client.is_closed(wait=0.2):  # re-framed: the connection may be reused
            self.assertEqual(client.request("GET", "/").body, b"z" * 100_000)

    def test_close_delimited_response_ends_when_the_fin_comes_during_a_write(self):
        # The client reads nothing; the upstream sends 4 KiB at a time until the proxy
        # keeps what it read (its write to the client waits), then its tail and FIN: the
        # re-chunked body must still end with the tail and the terminator.
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(client.close)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)  # a small send buffer
        sent = bytearray()
        done = threading.Event()

        def handler(request, conn):
            conn.close()
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            queued = -1
            while conn.wait_read_by_peer() and len(sent) < 64 << 20:
                now = tcp_queues(gh.port, client.getsockname()[1])[0]
                if now == queued and now > 0:
                    break                       # the last piece stayed in the proxy
                queued = now
                piece = pattern_bytes(4096, seed=len(sent))
                conn.send(piece)
                sent.extend(piece)
            conn.send(b"TAIL")
            sent.extend(b"TAIL")
            done.set()

        upstream = self.start_upstream(handler)
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        client.settimeout(2)
        client.connect((LOCALHOST, gh.port))
        client.sendall(build_request("GET", "/close-delimited"))
        self.assertTrue(done.wait(20), "the proxy never stopped writing to a client that "
                                       "reads nothing")
        time.sleep(0.3)                                 # the proxy reads the tail and FIN
        body = bytearray()
        try:
            response = read_response(BufferedReader(client), body_sink=body.extend)
        except (OSError, EOFError, HttpParseError) as error:
            self.fail(f"body not ended after {len(body)} of {len(sent)} bytes: {error!r}")
        self.assertEqual(response.headers.get("Transfer-Encoding"), "chunked")
        self.assertEqual(len(body), len(sent))
        self.assertTrue(body == sent, "body corrupted")

    def test_http10_client(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        result = raw_request(gh.port, build_request("POST", "/old", body=b"ten",
                                                    version="HTTP/1.0"))
        self.assertEqual((result.status, result.body), (200, b"ten"))
        self.assertTrue(result.closed, "HTTP/1.0 connection without keep-alive left open")
        self.assertNotIn(b"Transfer-Encoding: chunked", result.raw)

    def test_upstream_stalls_mid_body_closes_client_connection(self):
        def handler(request, conn):
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"p" * 100)
            conn.upstream.pause(4)

        upstream = self.start_upstream(handler)
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              timeouts={"upstream_read": "1s"}))
        result = raw_request(gh.port, build_request("GET", "/"), timeout=3.5)
        self.assertEqual(result.status, 200)
        self.assertTrue(result.closed, "truncated response left the client hanging")
        self.assertLess(result.elapsed, 3.0)
        self.assertLess(len(result.raw.split(b"\r\n\r\n", 1)[1]), 1000)

    def test_client_abort_does_not_disturb_others(self):
        upstream = self.start_upstream(delayed_handler(0.5))
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        for i in range(5):  # each client leaves while its request is at the upstream
            with connect(gh.port) as sock:
                sock.sendall(build_request("POST", "/abandoned", body=b"x" * 1000))
                self.assertTrue(upstream.wait_for_heads(i + 1, timeout=3))
        self.assertEqual(self.get(gh.port, "/after").status, 200)
        self.assertIsNone(gh.proc.poll())


class KeepAliveTest(GatehouseTestCase):
    def test_sequential_requests_reuse_both_connections(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        client = self.client(gh.port)
        for i in range(20):
            response = client.request("POST" if i % 2 else "GET", f"/r{i}",
                                      body=b"b%d" % i if i % 2 else None)
            self.assertEqual(response.status, 200, f"request {i}")
            self.assertEqual(response.headers.get("X-Target"), f"/r{i}")
        self.assertEqual(len(upstream.requests), 20)
        self.assertLessEqual(upstream.connections, 2,
                             "upstream connections are not pooled/reused")

    def test_pipelined_requests_answered_in_order(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        client = self.client(gh.port)
        client.send(build_request("GET", "/p1") + build_request("POST", "/p2", body=b"two")
                    + build_request("GET", "/p3"))
        responses = [client.read_response() for _ in range(3)]
        self.assertEqual([r.status for r in responses], [200, 200, 200])
        self.assertEqual([r.headers.get("X-Target") for r in responses], ["/p1", "/p2", "/p3"])
        self.assertEqual(responses[1].body, b"two")

    def test_responses_without_body_keep_connection_usable(self):
        def handler(request, conn):
            if request.target == "/head":
                conn.respond(200, [("Content-Length", "1234")], length=False)
            elif request.target == "/204":
                conn.respond(204, length=False)
            elif request.target == "/304":
                conn.respond(304, [("ETag", '"v1"')], length=False)
            else:
                echo_handler(request, conn)

        upstream = self.start_upstream(handler)
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        client = self.client(gh.port)
        for method, target, status in (("HEAD", "/head", 200), ("GET", "/204", 204),
                                       ("GET", "/304", 304)):
            with self.subTest(target=target):
                response = client.request(method, target)
                self.assertEqual((response.status, response.body), (status, b""))
                # Anything the proxy wrongly sent as a body would be read here instead
                # of the next status line.
                follow = client.request("GET", "/next")
                self.assertEqual(follow.status, 200)
                self.assertEqual(follow.headers.get("X-Target"), "/next")

    def test_bytes_after_a_complete_response_never_answer_the_next_request(self):
        # A response with a second one stuck to it ("EVIL"), in the same write or a moment
        # later while the connection idles: the client's next request gets its own answer.
        ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        extra = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"

        def handler(request, conn):
            if request.target == "/first/same-write":
                conn.send(ok + extra)
            elif request.target == "/first/late":
                conn.send(ok)
                conn.upstream.pause(0.1)
                conn.send(extra)
            else:
                conn.respond(200, body=b"good")

        upstream = self.start_upstream(handler)
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        for first in ("/first/same-write", "/first/late"):
            with self.subTest(first), HttpClient(gh.port) as client:
                self.assertEqual(client.request("GET", first).body, b"ok")
                time.sleep(0.3)
                second = client.request("GET", "/second")
                self.assertEqual((second.status, second.body), (200, b"good"))
                self.assertEqual(upstream.request_targets()[-1], "/second")

    def test_pooled_connection_closed_by_upstream_is_not_an_error(self):
        upstream = self.start_upstream(idle_timeout=0.2)  # closes idle keep-alives fast
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        self.assertEqual(self.get(gh.port, "/1").status, 200)
        time.sleep(0.6)
        self.assertEqual(self.get(gh.port, "/2").status, 200)
        self.assertEqual(upstream.request_targets(), ["/1", "/2"])

    def test_expect_100_continue(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        client = self.client(gh.port)
        body = b"x" * 5000
        client.send(build_request("PUT", "/upload", [("Expect", "100-continue"),
                                                     ("Content-Length", str(len(body)))]))
        # curl: wait up to 1 s for "100 Continue", then send the body regardless.
        client.sock.settimeout(1.0)
        try:
            interim = client.read_response(skip_interim=False)
        except socket.timeout:
            interim = None
        client.sock.settimeout(5.0)
        client.send(body)
        response = client.read_response()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, body)
        self.assertIsNotNone(interim, "no 100 Continue within 1 s")
        self.assertEqual(interim.status, 100)
        self.assertEqual(client.request("GET", "/after").status, 200)

    def test_expect_100_continue_with_body_over_limit_gets_413(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              limits={"body": "1KiB"}))
        request = build_request("POST", "/", [("Expect", "100-continue"),
                                              ("Content-Length", "4096")])
        result = raw_request(gh.port, request, timeout=3)
        self.assertEqual(result.status, 413)
        self.assertNotIn(b"100 Continue", result.raw)
        self.assertEqual(upstream.requests, [])


class RoutingTest(GatehouseTestCase):
    def test_host_and_longest_prefix(self):
        a = self.start_upstream(name="a")
        b = self.start_upstream(name="b")
        routes = [
            {"path_prefix": "/", "upstream": "a"},
            {"path_prefix": "/api", "upstream": "b"},
            {"path_prefix": "/api/special", "upstream": "a"},
            {"host": "b.example", "path_prefix": "/", "upstream": "b"},
            {"host": "*.wild.example", "path_prefix": "/", "upstream": "b"},
        ]
        gh = self.start_gatehouse(make_config({"a": [a], "b": [b]}, routes))
        cases = [("other.example", "/", "a"), ("other.example", "/index.html", "a"),
                 ("other.example", "/api/users", "b"), ("other.example", "/api", "b"),
                 ("other.example", "/api/special/1", "a"), ("b.example", "/", "b"),
                 ("b.example", "/anything", "b"), ("B.Example", "/x", "b"),
                 ("b.example:8080", "/x", "b"), ("deep.sub.wild.example", "/", "b"),
                 ("x.wild.example", "/p", "b"), ("wild.example.evil", "/", "a")]
        client = self.client(gh.port)
        for host, path, expected in cases:
            with self.subTest(host=host, path=path):
                response = client.request("GET", path, [("Host", host)])
                self.assertEqual(response.status, 200)
                self.assertEqual(response.headers.get("X-Upstream"), expected)


    def test_no_matching_route(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config(
            {"app": [upstream]}, [{"host": "a.example", "path_prefix": "/", "upstream": "app"}]))
        self.assertEqual(self.get(gh.port, "/", host="a.example").status, 200)
        response = self.get(gh.port, "/", host="b.example")
        self.assertIn(response.status, (404, 503))
        self.assertEqual(upstream.request_targets(), ["/"])


class BalancingTest(GatehouseTestCase):
    def test_round_robin_spreads_requests(self):
        first = self.start_upstream(name="s1")
        second = self.start_upstream(name="s2")
        gh = self.start_gatehouse(make_config(
            {"app": {"servers": [first, second], "balance": "round_robin"}}))
        client = self.client(gh.port)
        for _ in range(10):
            self.assertEqual(client.request("GET", "/").status, 200)
        self.assertEqual(len(first.requests) + len(second.requests), 10)
        self.assertGreaterEqual(len(first.requests), 4)
        self.assertGreaterEqual(len(second.requests), 4)

    def test_least_conn_avoids_busy_server(self):
        def handler(request, conn):
            if request.target == "/slow":
                conn.upstream.pause(1.5)
            echo_handler(request, conn)

        first = self.start_upstream(handler, name="s1")
        second = self.start_upstream(handler, name="s2")
        gh = self.start_gatehouse(make_config(
            {"app": {"servers": [first, second], "balance": "least_conn"}}))
        slow = self.client(gh.port)
        slow.send(build_request("GET", "/slow"))
        deadline = time.monotonic() + 3
        while first.active + second.active == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        busy = first if first.active else second
        idle = second if busy is first else first
        for i in range(5):
            response = self.get(gh.port, f"/fast{i}")
            self.assertEqual(response.headers.get("X-Upstream"), idle.name)
        self.assertEqual(slow.read_response().status, 200)

    def test_dead_server_is_skipped(self):
        dead = refusing_port()
        self.addCleanup(dead.close)
        live = self.start_upstream(name="live")
        gh = self.start_gatehouse(make_config({"app": [dead, live]}))
        for i in range(10):
            response = self.get(gh.port, f"/{i}")
            self.assertEqual(response.status, 200, f"request {i}")
        self.assertEqual(len(live.requests), 10)

    def test_post_body_survives_retry_on_next_server(self):
        dead = refusing_port()
        self.addCleanup(dead.close)
        live = self.start_upstream(name="live")
        gh = self.start_gatehouse(make_config({"app": [dead, live]}))
        client = self.client(gh.port)
        for i in range(4):
            response = client.request("POST", "/p", body=b"payload-%d" % i)
            self.assertEqual((response.status, response.body), (200, b"payload-%d" % i))

    def test_all_servers_dead_is_502(self):
        dead = [refusing_port(), refusing_port()]
        for sock in dead:
            self.addCleanup(sock.close)
        gh = self.start_gatehouse(make_config({"app": dead}))
        for _ in range(3):
            response = self.get(gh.port)
            self.assertEqual(response.status, 502)
            self.assertLess(len(response.body), 1024)


class UpstreamFailureTest(GatehouseTestCase):
    def test_502_for_a_whole_request_keeps_the_connection(self):
        # Like nginx: the requests pipelined behind a failed one are still answered.
        live = self.start_upstream()
        dead = refusing_port()
        self.addCleanup(dead.close)
        gh = self.start_gatehouse(make_config(
            {"app": [live], "dead": [dead]},
            routes=[{"path_prefix": "/dead", "upstream": "dead"},
                    {"path_prefix": "/", "upstream": "app"}]))
        client = self.client(gh.port)
        client.send(build_request("GET", "/dead/1") + build_request("GET", "/p2"))
        first, second = client.read_response(), client.read_response()
        self.assertEqual((first.status, first.headers.get("Connection")), (502, None))
        self.assertEqual((second.status, second.headers.get("X-Target")), (200, "/p2"))
        self.assertEqual(client.request("GET", "/dead/3").status, 502)
        self.assertEqual(client.request("GET", "/p4").status, 200)
        self.assertFalse(client.is_closed(0.2))

    def test_502_for_a_head_request_keeps_the_connection(self):
        # The local answer to HEAD is its head only (Content-Length of the body a GET
        # gets), so the connection stays usable, as for GET.
        live = self.start_upstream()
        dead = refusing_port()
        self.addCleanup(dead.close)
        gh = self.start_gatehouse(make_config(
            {"app": [live], "dead": [dead]},
            routes=[{"path_prefix": "/dead", "upstream": "dead"},
                    {"path_prefix": "/", "upstream": "app"}]))
        client = self.client(gh.port)
        get_length = int(client.request("GET", "/dead/1").headers.get("Content-Length"))
        response = client.request("HEAD", "/dead/2")
        self.assertEqual((response.status, response.headers.get("Connection"), response.body),
                         (502, None, b""))
        self.assertEqual(int(response.headers.get("Content-Length")), get_length)
        self.assertEqual(client.request("GET", "/p3").status, 200)

    def test_upstream_closes_without_response_is_502(self):
        upstream = self.start_upstream(close_handler)
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        self.assertEqual(self.get(gh.port).status, 502)

    def test_upstream_garbage_is_502(self):
        upstream = self.start_upstream(garbage_handler)
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        self.assertEqual(self.get(gh.port).status, 502)

    def test_slow_upstream_is_504(self):
        upstream = self.start_upstream(delayed_handler(4.0))
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              timeouts={"upstream_read": "1s"}))
        started = time.monotonic()
        response = self.get(gh.port)
        elapsed = time.monotonic() - started
        self.assertEqual(response.status, 504)
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 3.0)


class ClientLimitsTest(GatehouseTestCase):
    def test_slowloris_head_times_out(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              timeouts={"request_header": "1s"}))
        head = b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Slow: " + b"a" * 100
        received, closed, elapsed = trickle(gh.port, head, interval=0.1, give_up=3.0)
        self.assertTrue(closed, "a head trickling in was not cut off")
        self.assertLess(elapsed, 2.5)
        if received:
            self.assertTrue(received.startswith(b"HTTP/1.1 408"), received[:100])
        self.assertEqual(upstream.connections, 0)

    def test_stalled_body_times_out(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              timeouts={"client_body": "1s"}))
        request = build_request("POST", "/stall", [("Content-Length", "100")]) + b"x" * 10
        result = raw_request(gh.port, request, timeout=4)
        self.assertTrue(result.closed, "stalled body did not time out")
        self.assertLess(result.elapsed, 3.0)
        self.assertIn(result.status, (408, None))
        self.assertNotIn("/stall", upstream.request_targets())

    def test_idle_keepalive_connection_is_closed(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              timeouts={"keepalive": "1s"}))
        client = self.client(gh.port)
        self.assertEqual(client.request("GET", "/").status, 200)
        started = time.monotonic()
        self.assertTrue(client.is_closed(wait=3), "idle connection kept past keepalive")
        self.assertGreater(time.monotonic() - started, 0.5)

    def test_body_over_limit_is_413(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              limits={"body": "1KiB"}))
        ok = self.get(gh.port, "/ok", body=b"x" * 1024)
        self.assertEqual(ok.status, 200)
        result = raw_request(gh.port, build_request("POST", "/big", body=b"x" * 2048))
        self.assertEqual(result.status, 413)
        self.assertNotIn("/big", upstream.request_targets())
        chunked = raw_request(gh.port, build_request("POST", "/bigc", body=b"y" * 4096,
                                                     chunked=True))
        self.assertEqual(chunked.status, 413)
        self.assertNotIn("/bigc", upstream.request_targets())

    def test_unknown_expectation_is_417(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        result = raw_request(gh.port, build_request("GET", "/", [("Expect", "teapot")]),
                             timeout=2)
        self.assertEqual(result.status, 417)
        self.assertEqual(upstream.connections, 0)

    def test_error_responses_are_short_plain_text(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        result = raw_request(gh.port, b"GET / HTTP/1.1\r\nHost: a\r\nX Bad: 1\r\n\r\n")
        self.assertEqual(result.status, 400)
        self.assertTrue(result.closed)
        self.assertEqual(result.headers.get("Connection", "").lower(), "close")
        self.assertTrue(result.headers.get("Content-Type", "").startswith("text/plain"))
        self.assertLess(len(result.body), 512)


GOOD_CONFIG = """\
[server]
workers = 2
drain_timeout = "30s"

[limits]
body = "1MiB"

[timeouts]
upstream_read = "60s"

[[listener]]
address = "127.0.0.1:0"

[[upstream]]
name = "app"
servers = ["127.0.0.1:9001", "127.0.0.1:9002"]
balance = "round_robin"

[[route]]
path_prefix = "/"
upstream = "app"
"""


class CliTest(unittest.TestCase):
    def check(self, text):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "conf.toml")
            write_atomically(path, text)
            return path, run_gatehouse("check", "-c", path)

    def assert_error_at(self, text, line, *, alternatives=()):
        """`gatehouse check` fails with a FILE:LINE:COL error at `line`."""
        path, result = self.check(text)
        self.assertEqual(result.returncode, 1, result.stderr)
        lines = {line, *alternatives}
        pattern = re.compile(re.escape(path) + r":(\d+):(\d+): \S")
        found = [(int(m.group(1)), int(m.group(2))) for m in pattern.finditer(result.stderr)]
        self.assertTrue(found, f"no FILE:LINE:COL error in stderr:\n{result.stderr}")
        self.assertTrue(any(l in lines and c >= 1 for l, c in found),
                        f"expected an error on line {sorted(lines)}, got {found}:\n"
                        f"{result.stderr}")
        return found

    def test_good_config(self):
        path, result = self.check(GOOD_CONFIG)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(result.stdout.strip().splitlines()), 1, result.stdout)
        self.assertIn(path, result.stdout)

    def test_unknown_key(self):
        self.assert_error_at(GOOD_CONFIG.replace('drain_timeout = "30s"',
                                                 'drain_timeout = "30s"\nbogus = 1'), 4)

    def test_wrong_type(self):
        self.assert_error_at(GOOD_CONFIG.replace("workers = 2", 'workers = "two"'), 2)

    def test_bad_duration(self):
        self.assert_error_at(GOOD_CONFIG.replace('"30s"', '"30 parsecs"'), 3)

    def test_bad_size(self):
        self.assert_error_at(GOOD_CONFIG.replace('"1MiB"', '"lots"'), 6)

    def test_bad_address(self):
        self.assert_error_at(GOOD_CONFIG.replace("127.0.0.1:0", "127.0.0.1:99999"), 12)

    def test_route_to_missing_upstream(self):
        self.assert_error_at(GOOD_CONFIG.replace('upstream = "app"', 'upstream = "nope"'),
                             21, alternatives=(19,))

    def test_every_error_is_reported(self):
        text = GOOD_CONFIG.replace("workers = 2", 'workers = "two"').replace(
            'upstream = "app"', 'upstream = "nope"')
        found = self.assert_error_at(text, 2)
        self.assertTrue({21, 19} & {l for l, _ in found}, f"only {found} reported")

    def test_toml_syntax_error(self):
        self.assert_error_at(GOOD_CONFIG.replace("workers = 2", "workers = = 2"), 2)

    def test_missing_file(self):
        result = run_gatehouse("check", "-c", "/nonexistent/gatehouse.toml")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("/nonexistent/gatehouse.toml", result.stderr)

    def test_version(self):
        result = run_gatehouse("version")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\d+\.\d+")

    def test_help(self):
        result = run_gatehouse("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("usage", result.stdout.lower())
        self.assertIn("check", result.stdout)


class SignalTest(GatehouseTestCase):
    def test_reload_with_good_config_switches_new_connections(self):
        a = self.start_upstream(name="a")
        b = self.start_upstream(name="b")
        upstreams = {"a": [a], "b": [b]}
        gh = self.start_gatehouse(make_config(upstreams, [{"path_prefix": "/",
                                                           "upstream": "a"}]))
        port = gh.port
        self.assertEqual(gh.generation, 1)
        self.assertEqual(self.get(port).headers.get("X-Upstream"), "a")
        existing = self.client(port)
        self.assertEqual(existing.request("GET", "/").status, 200)
        reloaded = gh.reload(make_config(upstreams, [{"path_prefix": "/", "upstream": "b"}]))
        self.assertTrue(reloaded, "generation did not change after SIGHUP")
        self.assertEqual(gh.generation, 2)
        self.assertEqual(gh.port, port, "listener port changed on reload")
        self.assertEqual(self.get(port).headers.get("X-Upstream"), "b")
        # A connection opened before the reload is not dropped by it.
        self.assertEqual(existing.request("GET", "/").status, 200)
        self.assertTrue(gh.reload(make_config(upstreams, [{"path_prefix": "/",
                                                          "upstream": "a"}])))
        self.assertEqual(gh.generation, 3)
        self.assertEqual(self.get(port).headers.get("X-Upstream"), "a")

    def test_reload_with_bad_config_keeps_old_one(self):
        a = self.start_upstream(name="a")
        gh = self.start_gatehouse(make_config({"a": [a]}))
        bad = make_config({"a": [a]}, [{"path_prefix": "/", "upstream": "missing"}])
        self.assertFalse(gh.reload(bad, timeout=1.5), "bad config was accepted")
        self.assertEqual(gh.read_generation(), 1)
        self.assertIsNone(gh.proc.poll(), "gatehouse exited on a bad reload")
        self.assertEqual(self.get(gh.port).headers.get("X-Upstream"), "a")
        self.assertIn(os.path.basename(gh.config_path), gh.stderr())

    def test_sigterm_drains_in_flight_request(self):
        upstream = self.start_upstream(delayed_handler(1.0))
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              server={"drain_timeout": "10s"}))
        client = self.client(gh.port)
        client.send(build_request("POST", "/slow", body=b"in flight"))
        self.assertTrue(upstream.wait_for_requests(1, timeout=3))
        gh.signal(signal.SIGTERM)
        time.sleep(0.2)
        try:  # a new connection must not be served any more
            late = raw_request(gh.port, build_request("GET", "/late"), timeout=2)
            self.assertNotEqual(late.status, 200, "request accepted after SIGTERM")
        except ConnectionRefusedError:
            pass
        response = client.read_response()
        self.assertEqual((response.status, response.body), (200, b"in flight"))
        # The drained connection is closed once its request is done, and the process
        # does not sit out the whole drain_timeout (10 s) once the client has gone.
        self.assertTrue(client.is_closed(wait=2), "drained connection kept open")
        client.close()
        self.assertEqual(gh.wait(timeout=2), 0, "no prompt exit after the last request")
        self.assertNotIn("/late", upstream.request_targets())

    def test_sigint_exits_zero(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        self.assertEqual(self.get(gh.port).status, 200)
        gh.signal(signal.SIGINT)
        self.assertEqual(gh.wait(timeout=5), 0)

    def test_sigterm_with_idle_keepalive_client_exits_promptly(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]},
                                              server={"drain_timeout": "10s"}))
        client = self.client(gh.port)
        self.assertEqual(client.request("GET", "/").status, 200)
        started = time.monotonic()
        gh.signal(signal.SIGTERM)
        self.assertEqual(gh.wait(timeout=5), 0, "idle keep-alive connection held the drain")
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(client.is_closed(wait=1))


class AdminAndLogTest(GatehouseTestCase):
    def test_livez_and_readyz(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        self.assertIsNotNone(gh.admin_port, "no admin line in the ready file")
        self.assertEqual(self.get(gh.admin_port, "/livez").status, 200)
        self.assertEqual(self.get(gh.admin_port, "/readyz").status, 200)
        self.assertEqual(upstream.connections, 0)

    def test_text_access_log_line_per_request(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}))
        client = self.client(gh.port)
        for i in range(3):
            client.request("GET", f"/logged{i}")
        client.close()
        self.assertEqual(gh.stop(), 0)
        lines = [l for l in gh.stdout().splitlines() if "/logged" in l]
        self.assertEqual(len(lines), 3, gh.stdout())
        self.assertIn("200", lines[0])

    def test_json_access_log(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}, access_log="json"))
        self.get(gh.port, "/j1")
        self.get(gh.port, "/j2")
        self.assertEqual(gh.stop(), 0)
        records = [json.loads(l) for l in gh.stdout().splitlines() if l.strip()]
        self.assertEqual(len(records), 2, gh.stdout())
        self.assertTrue(all(isinstance(r, dict) for r in records))
        self.assertIn("/j1", json.dumps(records[0]))

    def test_access_log_off(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}, access_log="off"))
        self.get(gh.port, "/quiet")
        self.assertEqual(gh.stop(), 0)
        self.assertEqual(gh.stdout().strip(), "")

    def test_multiple_listeners(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}, listeners=2))
        self.assertEqual(len(gh.ports), 2)
        self.assertNotEqual(gh.ports[0], gh.ports[1])
        for port in gh.ports:
            self.assertEqual(self.get(port).status, 200)


class ConcurrencyTest(GatehouseTestCase):
    def test_parallel_clients_with_two_workers(self):
        upstream = self.start_upstream()
        gh = self.start_gatehouse(make_config({"app": [upstream]}, server={"workers": 2}))
        failures = []

        def run(worker):
            try:
                with HttpClient(gh.port) as client:
                    for i in range(20):
                        body = b"%d-%d" % (worker, i)
                        response = client.request("POST", "/c", body=body)
                        if (response.status, response.body) != (200, body):
                            failures.append((worker, i, response.status))
            except Exception as error:  # noqa: BLE001 - reported below
                failures.append((worker, repr(error)))

        threads = [threading.Thread(target=run, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        self.assertEqual(failures, [])
        self.assertEqual(len(upstream.requests), 160)


if __name__ == "__main__":
    unittest.main()
