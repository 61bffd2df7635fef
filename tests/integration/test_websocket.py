"""WebSocket tunnels and Socket.IO stickiness through the real gatehouse binary, with
real Socket.IO replicas and clients from npm (tests/integration/socketio)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import unittest

from harness import Gatehouse, HttpClient, Upstream, make_config
from websocket import Replica, WebSocket, node_ready, run_clients, wait_closed

CLIENTS = 50
MESSAGES = 3


def socketio_config(replicas, *, sticky: str | None = None, workers: int = 2, extra_route=None) -> str:
    route = {"path_prefix": "/socket.io/", "upstream": "app"}
    if sticky:
        route["sticky"] = sticky
    routes = [route, {"path_prefix": "/", "upstream": "app"}]
    return make_config({"app": [r.address for r in replicas]}, routes, server={"workers": workers})


@unittest.skipIf(node_ready(), node_ready() or "")
class SocketIoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.replicas = [Replica(f"r{i}") for i in range(3)]

    @classmethod
    def tearDownClass(cls):
        for r in cls.replicas:
            r.kill()

    def start(self, config: str) -> Gatehouse:
        gatehouse = Gatehouse(config).start()
        self.addCleanup(gatehouse.stop)
        return gatehouse

    def assert_clean_run(self, summary: dict, clients: int = CLIENTS):
        self.assertEqual(summary["sessionUnknown"], 0, summary["errors"][:5])
        self.assertEqual(summary["errors"], [], summary["errors"][:5])
        self.assertEqual(summary["connected"], clients)
        self.assertEqual(summary["acks"], clients * MESSAGES)
        self.assertGreater(len(summary["replicas"]), 1, f"all clients on one replica: {summary}")

    def test_default_transports_polling_then_upgrade(self):
        gatehouse = self.start(socketio_config(self.replicas))  # sticky "auto" -> socketio
        summary = run_clients(f"http://127.0.0.1:{gatehouse.port}", CLIENTS, MESSAGES,
                              "polling,websocket")
        self.assert_clean_run(summary)
        self.assertGreater(summary["upgraded"], 0, "no client upgraded to websocket")

    def test_polling_only(self):
        gatehouse = self.start(socketio_config(self.replicas))
        summary = run_clients(f"http://127.0.0.1:{gatehouse.port}", CLIENTS, MESSAGES, "polling")
        self.assert_clean_run(summary)

    def test_websocket_only(self):
        gatehouse = self.start(socketio_config(self.replicas))
        summary = run_clients(f"http://127.0.0.1:{gatehouse.port}", CLIENTS, MESSAGES, "websocket")
        self.assert_clean_run(summary)

    def test_without_stickiness_polling_breaks(self):
        # The control experiment: the same clients with sticky = "none" hit other
        # replicas with their sid, as behind nginx without ip_hash.
        gatehouse = self.start(socketio_config(self.replicas, sticky="none"))
        summary = run_clients(f"http://127.0.0.1:{gatehouse.port}", 20, MESSAGES, "polling",
                              timeout_ms=5000)
        self.assertLess(summary["acks"], 20 * MESSAGES, summary)


@unittest.skipIf(node_ready(), node_ready() or "")
class WebSocketTunnelTest(unittest.TestCase):
    def setUp(self):
        self.replica = Replica("solo")
        self.addCleanup(self.replica.kill)
        self.config = make_config({"app": [self.replica.address]})
        self.gatehouse = Gatehouse(self.config).start()
        self.addCleanup(self.gatehouse.stop)

    def open(self) -> WebSocket:
        ws = WebSocket(self.gatehouse.port)
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101, ws.head)
        self.assertIn('"replica":"solo"', ws.read_message()[1].decode())
        return ws

    def test_large_and_fragmented_frames_echo_intact(self):
        ws = self.open()
        for size, fragments in [(10, 1), (70_000, 1), (1_000_000, 1), (300_000, 7), (5, 5)]:
            payload = os.urandom(size)
            ws.send_message(payload, binary=True, fragments=fragments)
            opcode, echoed = ws.read_message()
            self.assertEqual(opcode, 2)
            self.assertEqual(echoed, payload, f"size {size} fragments {fragments}")
        ws.send_message("héllo".encode(), binary=False, fragments=3)
        self.assertEqual(ws.read_message(), (1, "héllo".encode()))

    def test_replica_killed_closes_client_promptly(self):
        ws = self.open()
        self.replica.kill()
        elapsed = wait_closed(ws.sock, timeout=5)
        self.assertIsNotNone(elapsed, "client tunnel still open 5 s after the replica died")
        self.assertLess(elapsed, 2.0)

    def test_reload_keeps_open_tunnels(self):
        ws = self.open()
        self.assertTrue(self.gatehouse.reload(self.config.replace('drain_timeout = "3s"',
                                                                  'drain_timeout = "4s"')))
        ws.send_message(b"after reload")
        self.assertEqual(ws.read_message()[1], b"after reload")

    def test_sigterm_closes_tunnels_after_drain_timeout(self):
        ws = self.open()
        started = time.monotonic()
        self.gatehouse.signal(signal.SIGTERM)
        ws.send_message(b"still open while draining")
        self.assertEqual(ws.read_message()[1], b"still open while draining")
        self.assertEqual(self.gatehouse.wait(10), 0)
        self.assertGreaterEqual(time.monotonic() - started, 2.5)  # drain_timeout = 3s
        self.assertIsNotNone(wait_closed(ws.sock, timeout=2))


class HalfCloseTest(unittest.TestCase):
    """A raw upgrade peer: after 101 it echoes until the client's FIN, then sends "bye"
    and closes. Needs the proxy to pass the FIN on and keep the other direction open."""

    def test_half_close_is_propagated(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        self.addCleanup(listener.close)

        def serve():
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                             b"Upgrade: raw\r\n\r\n")
                received = bytearray()
                while chunk := conn.recv(4096):
                    received += chunk
                conn.sendall(b"echo:" + bytes(received) + b"|bye")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        gatehouse = Gatehouse(make_config({"app": [f"127.0.0.1:{listener.getsockname()[1]}"]})).start()
        self.addCleanup(gatehouse.stop)
        with socket.create_connection(("127.0.0.1", gatehouse.port), timeout=5) as sock:
            sock.sendall(b"GET /raw HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            sock.sendall(b"payload")
            sock.shutdown(socket.SHUT_WR)
            rest = head.split(b"\r\n\r\n", 1)[1]
            while chunk := sock.recv(4096):
                rest += chunk
        self.assertEqual(rest, b"echo:payload|bye")
        thread.join(timeout=5)


class AffinityTest(unittest.TestCase):
    def start(self, sticky: str):
        upstreams = [Upstream(name=f"u{i}") for i in range(3)]
        for u in upstreams:
            self.addCleanup(u.close)
        config = make_config({"app": upstreams},
                             [{"path_prefix": "/", "upstream": "app", "sticky": sticky}])
        gatehouse = Gatehouse(config).start()
        self.addCleanup(gatehouse.stop)
        return gatehouse, upstreams

    @staticmethod
    def served_by(upstreams) -> list[int]:
        return [len(u.requests) for u in upstreams]

    def test_cookie_mode_pins_a_client(self):
        gatehouse, upstreams = self.start("cookie")
        with HttpClient(gatehouse.port) as client:
            first = client.request("GET", "/a")
            cookie = first.headers.get("set-cookie")
            self.assertIsNotNone(cookie, first.headers)
            self.assertIn("HttpOnly", cookie)
            pair = cookie.split(";", 1)[0]
            for _ in range(9):
                response = client.request("GET", "/b", headers=[("Cookie", pair)])
                self.assertIsNone(response.headers.get("set-cookie"))
        counts = self.served_by(upstreams)
        self.assertEqual(sorted(counts), [0, 0, 10], counts)

    def test_ip_mode_is_consistent(self):
        gatehouse, upstreams = self.start("ip")
        for _ in range(12):
            with HttpClient(gatehouse.port) as client:
                client.request("GET", "/x")
        counts = self.served_by(upstreams)
        self.assertEqual(sorted(counts), [0, 0, 12], counts)

    def test_without_affinity_requests_spread(self):
        gatehouse, upstreams = self.start("none")
        for _ in range(12):
            with HttpClient(gatehouse.port) as client:
                client.request("GET", "/x")
        self.assertEqual(self.served_by(upstreams), [4, 4, 4])


if __name__ == "__main__":
    unittest.main()
