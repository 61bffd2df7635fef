"""One readiness answer over PostgreSQL and the app replicas, through the real binary:
/readyz aggregates the [[check]] probes, `gatehouse healthcheck` turns it into an exit
code (a Docker HEALTHCHECK without curl), and hosts failing their http check leave the
rotation."""

from __future__ import annotations

import subprocess
import time
import unittest
import urllib.error
import urllib.request

import pg_fixture
from harness import (GATEHOUSE_BIN, Gatehouse, HttpClient, Upstream, make_config,
                     static_handler, toml_table)


def get(port: int, path: str) -> tuple[int, str]:
    return get_with_headers(port, path)[:2]


def get_with_headers(port: int, path: str):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def wait_for(predicate, timeout: float = 10.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def healthcheck(admin_port: int, *flags: str) -> int:
    return subprocess.run([GATEHOUSE_BIN, "healthcheck", "--url",
                           f"http://127.0.0.1:{admin_port}/readyz", *flags],
                          capture_output=True, timeout=10).returncode


def check_table(**keys) -> str:
    return toml_table("[[check]]", keys) + "\n"


@unittest.skipIf(pg_fixture.available(), pg_fixture.available() or "")
class ReadinessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = pg_fixture.PgTemplate()

    @classmethod
    def tearDownClass(cls):
        cls.template.cleanup()

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

    def test_wrong_password_is_not_ready(self):
        # pg_isready would call this server up; the probe authenticates.
        gatehouse = self.start(password="wrong")
        time.sleep(1.5)
        status, body = get(gatehouse.admin_port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("28P01", body)


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
