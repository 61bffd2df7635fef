"""One readiness answer over PostgreSQL and the app replicas, through the real binary:
/readyz aggregates the [[check]] probes, `gatehouse healthcheck` turns it into an exit
code (a Docker HEALTHCHECK without curl), and hosts failing their http check leave the
rotation."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import pg_fixture
from harness import (GATEHOUSE_BIN, Gatehouse, HttpClient, Upstream, make_config,
                     raw_request, static_handler, toml_table, wait_for)


def get(port: int, path: str) -> tuple[int, str]:
    return get_with_headers(port, path)[:2]


def get_with_headers(port: int, path: str):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def healthcheck(admin_port: int, *flags: str) -> int:
    return run_healthcheck(admin_port, *flags).returncode


def run_healthcheck(admin_port: int, *flags: str, path: str = "/readyz?verbose"):
    return subprocess.run([GATEHOUSE_BIN, "healthcheck", "--url",
                           f"http://127.0.0.1:{admin_port}{path}", *flags],
                          capture_output=True, text=True, timeout=10)


def get_json(port: int, path: str, accept: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def check_table(**keys) -> str:
    return toml_table("[[check]]", keys) + "\n"


@unittest.skipIf(pg_fixture.available(), pg_fixture.available() or "")
class ReadinessTest(pg_fixture.SharedTemplate, unittest.TestCase):
    def setUp(self):
        self.pg = self.template.server()
        self.addCleanup(self.pg.cleanup)
        self.pg.start()
        self.healthy = Upstream(static_handler(200, b"ok"))
        self.failing = Upstream(static_handler(503, b"starting"))
        for u in (self.healthy, self.failing):
            self.addCleanup(u.close)

    def start(self, password: str = pg_fixture.ROLE_PASSWORD) -> Gatehouse:
        dsn = (f"postgresql://{pg_fixture.ROLE}:{password}@127.0.0.1:{self.pg.port}/"
               f"{pg_fixture.DATABASE}")
        config = make_config({"app": [self.healthy, self.failing]}) + "\n" + \
            check_table(name="db", type="postgres", target=dsn, interval="300ms",
                        timeout="250ms", rise=1, fall=1) + \
            check_table(name="app", type="http", upstream="app", path="/health",
                        interval="300ms", timeout="250ms", rise=1, fall=1)
        gatehouse = Gatehouse(config).start()
        self.addCleanup(gatehouse.stop)
        return gatehouse

    def test_ready_when_db_and_a_replica_pass(self):
        gatehouse = self.start()
        status, body = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
            get(gatehouse.admin_port, "/readyz")), timeout=10) or get(gatehouse.admin_port, "/readyz")
        self.assertEqual(status, 200, body)
        self.assertIn("db", body)
        self.assertEqual(healthcheck(gatehouse.admin_port), 0)
        self.assertEqual(get(gatehouse.admin_port, "/livez")[0], 200)
        # Kubernetes-style verbose lines, with the probe's latency.
        status, body = get(gatehouse.admin_port, "/readyz?verbose")
        self.assertEqual(status, 200, body)
        self.assertRegex(body, r"(?m)^\[\+\]db ok \d+ms$")
        self.assertTrue(body.endswith("readyz check passed\n"), body)
        status, doc = get_json(gatehouse.admin_port, "/readyz/db?format=json")
        self.assertEqual((status, doc["status"], doc["type"]), (200, "ok", "postgres"))
        self.assertGreaterEqual(doc["consecutive_successes"], 1)
        self.assertEqual(doc["consecutive_failures"], 0)
        self.assertLess(doc["age_ms"], 2000)

    def test_failing_replica_leaves_rotation(self):
        gatehouse = self.start()
        wait_for(lambda: get(gatehouse.admin_port, "/readyz")[0] == 200)
        time.sleep(0.5)  # the failing host's check has flipped by now
        before = len(self.failing.requests)
        for _ in range(10):
            with HttpClient(gatehouse.port) as client:
                self.assertEqual(client.request("GET", "/page").status, 200)
        page_requests = [r for r in self.failing.requests[before:] if r.target == "/page"]
        self.assertEqual(page_requests, [])

    def test_database_down_fails_readiness_and_healthcheck(self):
        gatehouse = self.start()
        wait_for(lambda: get(gatehouse.admin_port, "/readyz")[0] == 200)
        self.pg.stop()
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
            get(gatehouse.admin_port, "/readyz")), timeout=5) or get(gatehouse.admin_port, "/readyz")
        self.assertEqual(status, 503, body)
        self.assertIn("fail db", body)
        self.assertEqual(healthcheck(gatehouse.admin_port), 1)
        # Liveness never depends on upstreams; one check can be asked on its own.
        self.assertEqual(healthcheck(gatehouse.admin_port, "--live"), 0)
        status, body, headers = get_with_headers(gatehouse.admin_port, "/readyz/db")
        self.assertEqual(status, 503, body)
        self.assertEqual(headers.get("Cache-Control"), "no-store")
        self.assertIsNotNone(headers.get("Retry-After"))
        self.assertEqual(get(gatehouse.admin_port, "/readyz/app")[0], 200)
        self.assertEqual(get(gatehouse.admin_port, "/readyz/nope")[0], 404)

    def test_database_restart_is_ready_again_after_rise(self):
        gatehouse = self.start()
        self.assertTrue(wait_for(lambda: get(gatehouse.admin_port, "/readyz")[0] == 200))
        self.pg.stop()
        # fall (1) × interval (300 ms) + timeout (250 ms), with room for a loaded machine.
        self.assertTrue(wait_for(lambda: get(gatehouse.admin_port, "/readyz")[0] == 503,
                                 timeout=3))
        self.pg.start()
        status, body = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
            get(gatehouse.admin_port, "/readyz")), timeout=5) or get(gatehouse.admin_port, "/readyz")
        self.assertEqual(status, 200, body)

    def test_stopped_postmaster_times_out_while_traffic_flows(self):
        gatehouse = self.start()
        self.assertTrue(wait_for(lambda: get(gatehouse.admin_port, "/readyz")[0] == 200))
        self.pg.sigstop()
        try:
            status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
                get(gatehouse.admin_port, "/readyz/db")), timeout=5) or \
                get(gatehouse.admin_port, "/readyz/db")
            self.assertEqual(status, 503, body)
            self.assertIn("timeout", body)
            # The probe hangs on the database, nothing else does.
            self.assertEqual(get(gatehouse.admin_port, "/livez")[0], 200)
            with HttpClient(gatehouse.port) as client:
                for _ in range(5):
                    self.assertEqual(client.request("GET", "/page").status, 200)
        finally:
            self.pg.cont()
        self.assertTrue(wait_for(lambda: get(gatehouse.admin_port, "/readyz")[0] == 200,
                                 timeout=10))

    def test_wrong_password_is_not_ready(self):
        # pg_isready would call this server up; the probe authenticates.
        gatehouse = self.start(password="wrong")
        time.sleep(1.5)
        status, body = get(gatehouse.admin_port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("28P01", body)
        status, doc = get_json(gatehouse.admin_port, "/readyz", accept="application/json")
        db = next(c for c in doc["checks"] if c["name"] == "db")
        self.assertEqual((status, doc["status"], db["status"]), (503, "not ready", "failed"))
        self.assertIn("28P01", db["last_error"])
        self.assertGreaterEqual(db["consecutive_failures"], 2)


class ReplicaQuorumTest(unittest.TestCase):
    """min_healthy, the verbose and JSON answers, the healthcheck's output and /metrics,
    over three app replicas of which one fails its /health."""

    def setUp(self):
        self.replicas = [Upstream(static_handler(200, b"ok"), name=f"ok{i}") for i in range(2)]
        self.replicas.append(Upstream(static_handler(500, b"broken"), name="broken"))
        for u in self.replicas:
            self.addCleanup(u.close)

    def start(self, min_healthy: int) -> Gatehouse:
        config = make_config({"app": {"servers": [f"127.0.0.1:{u.port}" for u in self.replicas],
                                      "min_healthy": min_healthy}}) + "\n" + \
            check_table(name="app", type="http", upstream="app", path="/health",
                        interval="200ms", timeout="150ms", rise=1, fall=1)
        gatehouse = Gatehouse(config).start()
        self.addCleanup(gatehouse.stop)
        # Every host has a result once the broken one is counted.
        self.assertTrue(wait_for(lambda: all(
            h["status"] != "unknown" for h in
            get_json(gatehouse.admin_port, "/readyz/app?format=json")[1]["hosts"]), timeout=5))
        return gatehouse

    def test_two_of_three_healthy_is_not_enough_for_min_healthy_3(self):
        gatehouse = self.start(min_healthy=3)
        status, body = get(gatehouse.admin_port, "/readyz?verbose")
        self.assertEqual(status, 503, body)
        self.assertIn("[-]app failed: 2/3 hosts healthy in upstream app, need 3: "
                      f"127.0.0.1:{self.replicas[2].port}: HTTP 500", body)
        self.assertTrue(body.endswith("readyz check failed\n"), body)
        # The healthcheck subcommand prints the verbose answer and exits 1 (never 2).
        result = run_healthcheck(gatehouse.admin_port)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("503", result.stdout)
        self.assertIn("[-]app failed: 2/3", result.stdout)
        # JSON: per host status, the failing host's error and counts.
        status, doc = get_json(gatehouse.admin_port, "/readyz", accept="application/json")
        self.assertEqual((status, doc["status"]), (503, "not ready"))
        app = doc["checks"][0]
        self.assertEqual((app["healthy_hosts"], app["min_healthy"]), (2, 3))
        broken = next(h for h in app["hosts"] if h["host"].endswith(f":{self.replicas[2].port}"))
        self.assertEqual(broken["status"], "failed")
        self.assertEqual(broken["last_error"], "HTTP 500")
        self.assertGreaterEqual(broken["consecutive_failures"], 1)

    def test_two_of_three_healthy_is_ready_for_min_healthy_2(self):
        gatehouse = self.start(min_healthy=2)
        status, body = get(gatehouse.admin_port, "/readyz?verbose")
        self.assertEqual(status, 200, body)
        self.assertRegex(body, r"(?m)^\[\+\]app ok \d+ms$")
        result = run_healthcheck(gatehouse.admin_port)
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertIn("readyz check passed", result.stdout)

    def test_metrics(self):
        gatehouse = self.start(min_healthy=2)
        with HttpClient(gatehouse.port) as client:
            for _ in range(5):
                self.assertEqual(client.request("GET", "/page").status, 200)
        raw_request(gatehouse.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")

        def scrape():
            status, text, headers = get_with_headers(gatehouse.admin_port, "/metrics")
            self.assertEqual(status, 200)
            self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            return text
        # Workers publish their counters every 250 ms.
        text = wait_for(lambda: (lambda t: t if metric(
            t, "gatehouse_requests_total", route="-", **{"class": "4xx"}) else None)(scrape()),
            timeout=3) or scrape()
        self.assertEqual(metric(text, "gatehouse_requests_total", route="/",
                                **{"class": "2xx"}), 5, text)
        self.assertEqual(metric(text, "gatehouse_requests_total", route="-",
                                **{"class": "4xx"}), 1, text)
        self.assertGreaterEqual(metric(text, "gatehouse_connections_accepted_total"), 2)
        self.assertEqual(metric(text, "gatehouse_ready"), 1)
        self.assertEqual(metric(text, "gatehouse_check_up", check="app", type="http"), 1)
        self.assertEqual(metric(text, "gatehouse_check_healthy_targets", check="app"), 2)
        self.assertIsNotNone(metric(text, "gatehouse_check_latency_seconds", check="app"))
        broken = f"127.0.0.1:{self.replicas[2].port}"
        self.assertEqual(metric(text, "gatehouse_upstream_host_up", upstream="app",
                                host=broken), 0, text)
        self.assertEqual(metric(text, "gatehouse_upstream_host_up", upstream="app",
                                host=f"127.0.0.1:{self.replicas[0].port}"), 1, text)
        self.assertEqual(metric(text, "gatehouse_tls_handshakes_total", result="full"), 0)


def upgrade_then_close(request, conn) -> None:
    """Accepts a WebSocket upgrade, then ends the tunnel at once."""
    conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\n\r\n")
    conn.close()


class TunnelMetricsTest(unittest.TestCase):
    def test_tunnels_count_when_they_end(self):
        ws = Upstream(upgrade_then_close, name="ws")
        self.addCleanup(ws.close)
        config = make_config({"ws": [ws]}, [{"path_prefix": "/ws/", "upstream": "ws"}])
        gatehouse = Gatehouse(config).start()
        self.addCleanup(gatehouse.stop)
        result = raw_request(gatehouse.port, b"GET /ws/chat HTTP/1.1\r\nHost: a\r\n"
                             b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             b"Sec-WebSocket-Version: 13\r\n\r\n")
        self.assertEqual(result.status, 101)
        self.assertTrue(result.closed)
        text = wait_for(lambda: (lambda t: t if metric(
            t, "gatehouse_requests_total", route="/ws/", **{"class": "1xx"}) else None)(
            get(gatehouse.admin_port, "/metrics")[1]), timeout=3)
        self.assertTrue(text, "the tunnel was never counted")
        self.assertEqual(metric(text, "gatehouse_requests_total", route="/ws/",
                                **{"class": "1xx"}), 1, text)


def unused_port() -> int:
    """A loopback port nothing listens on (bound and closed: connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_status(admin_port: int, status: int, timeout: float) -> tuple[int, str]:
    """Polls /readyz?verbose until it answers `status`; returns the last answer."""
    wait_for(lambda: get(admin_port, "/readyz?verbose")[0] == status, timeout=timeout,
             interval=0.2)
    return get(admin_port, "/readyz?verbose")


class ImplicitCheckTest(unittest.TestCase):
    """An upstream no [[check]] names gets an implicit TCP connect check ("upstream:NAME",
    the [[check]] defaults: every 5 s, rise 2) that counts for /readyz and
    `gatehouse healthcheck`; `implicit_check = false` turns it off."""

    def start(self, upstreams: dict) -> Gatehouse:
        # implicit_checks=None: Gatehouse's default, not the harness's.
        gatehouse = Gatehouse(make_config(upstreams, implicit_checks=None)).start()
        self.addCleanup(gatehouse.stop)
        return gatehouse

    def test_nothing_listening_is_not_ready_until_the_upstream_listens(self):
        port = unused_port()
        gatehouse = self.start({"app": [port]})
        status, body = wait_status(gatehouse.admin_port, 503, timeout=5)
        self.assertEqual(status, 503, body)
        self.assertIn(f"[-]upstream:app failed: no healthy host in upstream app: "
                      f"127.0.0.1:{port}: connection refused", body)
        self.assertTrue(body.endswith("readyz check failed\n"), body)
        status, plain = get(gatehouse.admin_port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("fail upstream:app (tcp, implicit)", plain)
        result = run_healthcheck(gatehouse.admin_port)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("upstream:app", result.stdout)
        status, doc = get_json(gatehouse.admin_port, "/readyz/upstream:app?format=json")
        self.assertEqual((status, doc["type"], doc["implicit"], doc["upstream"]),
                         (503, "tcp", True, "app"))

        app = Upstream(static_handler(200, b"ok"), port=port)
        self.addCleanup(app.close)
        # rise = 2 at a 5 s interval: ready within about two intervals.
        status, body = wait_status(gatehouse.admin_port, 200, timeout=15)
        self.assertEqual(status, 200, body)
        self.assertRegex(body, r"(?m)^\[\+\]upstream:app ok \d+ms$")
        self.assertEqual(healthcheck(gatehouse.admin_port), 0)
        # A TCP connect is the whole probe: the app saw connections, no request.
        self.assertEqual(app.requests, [])

    def test_implicit_check_false_is_ready_with_nothing_listening(self):
        gatehouse = self.start({"app": {"servers": [unused_port()], "implicit_check": False}})
        time.sleep(0.5)  # an implicit check would have failed by now
        self.assertEqual(get(gatehouse.admin_port, "/readyz"), (200, "ok (no checks)\n"))
        self.assertEqual(healthcheck(gatehouse.admin_port), 0)

    def test_names_are_probed_at_each_resolved_address(self):
        app = Upstream(static_handler(200, b"ok"))
        self.addCleanup(app.close)
        port = app.address.rsplit(":", 1)[1]
        gatehouse = self.start({"app": [f"localhost:{port}"]})
        status, body = wait_status(gatehouse.admin_port, 200, timeout=5)
        self.assertEqual(status, 200, body)
        status, doc = get_json(gatehouse.admin_port, "/readyz/upstream:app?format=json")
        labels = [h["host"] for h in doc["hosts"]]
        self.assertIn(f"127.0.0.1:{port}", labels, doc)


class UnresolvedUpstreamTest(unittest.TestCase):
    def test_starts_and_answers_503_until_the_name_resolves(self):
        config = make_config({"app": ["no-such-host.invalid:3000"]})
        gatehouse = Gatehouse(config).start()
        self.addCleanup(gatehouse.stop)
        with HttpClient(gatehouse.port) as client:
            response = client.request("GET", "/")
        self.assertEqual(response.status, 503)
        self.assertIsNotNone(response.headers.get("retry-after"))


if __name__ == "__main__":
    unittest.main()
