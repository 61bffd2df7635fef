"""Probe cost: /readyz answers from cached state, so however hard it is asked, the
database sees one probe per check interval. wrk hammers /readyz for 10 s while a real
PostgreSQL 15 (pg_fixture.py) logs every statement (log_statement = all); the probe runs a
query of its own (`SELECT 1 AS gatehouse_probe`), counted in the server log over the
measured window. Were each /readyz to probe, the count would be in the thousands.

Skipped when wrk or PostgreSQL is missing. wrk connects to 127.0.0.1 only, and runs for a
fixed duration under a subprocess timeout."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import pg_fixture
from harness import GatehouseTestCase, make_config, static_handler, toml_table, wait_for

WRK = shutil.which("wrk")
PROBE_QUERY = "SELECT 1 AS gatehouse_probe"
# log_statement = all logs a simple query as "LOG:  statement: ..." (and an extended one
# as "LOG:  execute <name>: ..."); a failing one is repeated in a "STATEMENT:" line, which
# this does not count twice.
PROBE_LOG_LINE = re.compile(r"LOG:\s+(?:statement|execute [^:]*): " + re.escape(PROBE_QUERY))
INTERVAL_S = 1.0
DURATION_S = 10
MIN_REQUESTS = 2000  # a release build does tens of thousands here, ASan several thousand


def readyz_status(admin_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def parse_wrk(output: str) -> dict[str, int]:
    """Requests, non-2xx/3xx answers and socket errors from wrk's summary."""
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    if not total:
        raise AssertionError(f"no request count in wrk output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    connect, read, write, timeout = (int(n) for n in errors.groups()) if errors else (0, 0, 0, 0)
    return {"requests": int(total.group(1)), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "connect_errors": connect, "read_errors": read, "write_errors": write,
            "timeouts": timeout}


@unittest.skipIf(WRK is None, "wrk not found (apt-get install wrk)")
@unittest.skipIf(pg_fixture.available(), pg_fixture.available() or "")
class ProbeCostTest(pg_fixture.SharedTemplate, GatehouseTestCase):
    def setUp(self):
        self.pg = self.template.server(options=["log_statement=all"])
        self.addCleanup(self.pg.cleanup)
        self.pg.start()

    def probe_count(self, start: int, end: int | None = None) -> int:
        """Probe queries in the server log between byte offsets start and end."""
        with open(self.pg.log_path, "rb") as f:
            f.seek(start)
            text = f.read(None if end is None else end - start).decode("utf-8", "replace")
        return len(PROBE_LOG_LINE.findall(text))

    def test_hammering_readyz_does_not_add_probes(self):
        dsn = (f"postgresql://{pg_fixture.ROLE}:{pg_fixture.ROLE_PASSWORD}@127.0.0.1:"
               f"{self.pg.port}/{pg_fixture.DATABASE}")
        app = self.start_upstream(static_handler(200, b"ok"))
        config = make_config({"app": [app]}) + "\n" + toml_table("[[check]]", {
            "name": "db", "type": "postgres", "target": dsn, "query": PROBE_QUERY,
            "interval": f"{INTERVAL_S:g}s", "timeout": "800ms"}) + "\n"
        gatehouse = self.start_gatehouse(config)
        self.assertEqual(wait_for(lambda: readyz_status(gatehouse.admin_port) == 200, 15), True,
                         "/readyz never turned 200")
        # The counter works: probes are in the log before the load starts.
        self.assertTrue(wait_for(lambda: self.probe_count(0) > 0, 5),
                        f"no {PROBE_QUERY!r} in the server log:\n{self.pg.log()}")

        before = os.path.getsize(self.pg.log_path)
        started = time.monotonic()
        out = subprocess.run([WRK, "-t1", "-c20", f"-d{DURATION_S}s", "--timeout", "5s",
                              f"http://127.0.0.1:{gatehouse.admin_port}/readyz"],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=DURATION_S + 30)
        window = time.monotonic() - started
        after = os.path.getsize(self.pg.log_path)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        stats = parse_wrk(out.stdout)
        probes = self.probe_count(before, after)
        expected = window / INTERVAL_S
        summary = (f"{stats['requests']} /readyz requests, {probes} probes in {window:.2f} s "
                   f"(expected ~{expected:.1f}); wrk:\n{out.stdout}")
        print(f"\n{self.id()}: {summary}")

        self.assertGreater(stats["requests"], MIN_REQUESTS, summary)
        # Readiness stayed green all along: the load did not starve the prober.
        self.assertEqual(stats["non2xx"], 0, summary)
        self.assertEqual(stats["connect_errors"] + stats["timeouts"], 0, summary)
        # About one probe per interval: a probe per /readyz would give thousands, a
        # starved prober none.
        self.assertGreaterEqual(probes, math.floor(expected / 2), summary)
        self.assertLessEqual(probes, math.ceil(expected * 1.5), summary)


if __name__ == "__main__":
    unittest.main()
