"""Integration tests for the health probes (health/), through tests/health_probe_driver.

The driver runs one check on its own libuv loop and prints every probe result and state
change (see the driver's header). Peers are real: a PostgreSQL 15 server per scenario
(pg_fixture.py), Python HTTP servers as upstream hosts, a fake RESP server, and a real
redis-server when one is installed (skipped otherwise).

The driver is found through $HEALTH_PROBE_DRIVER, else next to $GATEHOUSE_BIN's build tree
(<build>/health/health_probe_driver), else ../../build/health/health_probe_driver from here.
Every wait is bounded; every process is ended by PID; temp files and dirs are removed.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import pg_fixture

HERE = os.path.dirname(os.path.abspath(__file__))


def find_driver() -> str:
    if os.environ.get("HEALTH_PROBE_DRIVER"):
        return os.environ["HEALTH_PROBE_DRIVER"]
    gatehouse = os.environ.get("GATEHOUSE_BIN")
    if gatehouse:
        candidate = os.path.join(os.path.dirname(os.path.dirname(gatehouse)), "health",
                                 "health_probe_driver")
        if os.path.exists(candidate):
            return candidate
    return os.path.normpath(os.path.join(HERE, "..", "..", "build", "health", "health_probe_driver"))


DRIVER = find_driver()
RESULT_RE = re.compile(r"^RESULT (\d+) (\S+) (\S+) (ok|fail) ?(.*)$")


class Driver:
    """One health_probe_driver process; its stdout lines are collected with arrival times."""

    def __init__(self, test: unittest.TestCase, args: list[str], duration: str = "120s"):
        if not os.access(DRIVER, os.X_OK):
            raise AssertionError(f"health_probe_driver not found at {DRIVER} (build it, or set "
                                 "HEALTH_PROBE_DRIVER)")
        self.args = args
        self.lines: list[tuple[float, str]] = []
        self.stderr: list[str] = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([DRIVER, *args, "--duration", duration], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True)]
        for t in self._threads:
            t.start()
        test.addCleanup(self.kill)
        self.test = test

    def _pump(self, stream, is_stdout: bool) -> None:
        for line in stream:
            with self.cond:
                if is_stdout:
                    self.lines.append((time.monotonic(), line.rstrip("\n")))
                else:
                    self.stderr.append(line.rstrip("\n"))
                self.cond.notify_all()

    def output(self) -> str:
        with self.cond:
            return "\n".join(l for _, l in self.lines) + "\n-- stderr --\n" + "\n".join(self.stderr[-40:])

    def mark(self) -> int:
        """An index: wait_for(after=mark) only looks at lines printed from now on."""
        with self.cond:
            return len(self.lines)

    def wait_for(self, pattern: str, timeout: float, after: int = 0) -> tuple[float, re.Match]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines[after:]:
                    m = regex.search(line)
                    if m:
                        return t, m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self._pumping():
                    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; driver "
                                         f"{' '.join(self.args)} printed:\n{self.output()}")
                self.cond.wait(min(left, 0.2))

    def _pumping(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def results(self, after: int = 0) -> list[tuple[float, re.Match]]:
        with self.cond:
            return [(t, m) for t, line in self.lines[after:] if (m := RESULT_RE.match(line))]

    def finish(self) -> None:
        """Ends the run with SIGTERM and checks the driver closed everything cleanly."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("driver did not stop within 15 s of SIGTERM:\n" + self.output())
        for t in self._threads:
            t.join(5)
        self.test.assertEqual(self.proc.returncode, 0, self.output())
        self.wait_for(r"^CLOSED loop_close=0$", 1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def secret_file(test: unittest.TestCase, content: str) -> str:
    fd, path = tempfile.mkstemp(prefix="gh-secret-")
    with os.fdopen(fd, "w") as f:
        f.write(content + "\n")
    test.addCleanup(os.unlink, path)
    return path


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------

TEMPLATE: pg_fixture.PgTemplate | None = None
PG_UNAVAILABLE = pg_fixture.available()


def setUpModule() -> None:
    global TEMPLATE
    if PG_UNAVAILABLE is None:
        TEMPLATE = pg_fixture.PgTemplate()


def tearDownModule() -> None:
    if TEMPLATE is not None:
        TEMPLATE.cleanup()


def pg_target(server: pg_fixture.PgServer, database: str = pg_fixture.DATABASE) -> str:
    return f"host=127.0.0.1 port={server.port} user={pg_fixture.ROLE} dbname={database} sslmode=disable"


class PgTestCase(unittest.TestCase):
    def new_server(self, options: list[str] | None = None, standby: bool = False,
                   expect: int = 0) -> pg_fixture.PgServer:
        server = TEMPLATE.server(options, standby)
        self.addCleanup(server.cleanup)
        server.start(expect=expect)
        return server

    def driver(self, target: str, *extra: str, password: str | None = pg_fixture.ROLE_PASSWORD,
               interval: str = "200ms", timeout: str = "2s") -> Driver:
        args = ["--type", "postgres", "--name", "db", "--target", target, "--interval", interval,
                "--timeout", timeout, "--rise", "1", "--fall", "1", *extra]
        if password is not None:
            args += ["--password-file", secret_file(self, password)]
        return Driver(self, args)


@unittest.skipIf(PG_UNAVAILABLE, f"PostgreSQL not available: {PG_UNAVAILABLE}")
class PostgresProbeTest(PgTestCase):
    """Scenarios that leave the server as it is: one server for the class."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = TEMPLATE.server()
        try:
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.cleanup()

    def test_correct_credentials_are_ok_and_reuse_one_connection(self):
        before = self.server.connections_authorized()
        d = self.driver(pg_target(self.server))
        d.wait_for(r"^STATE \d+ ready=1$", 15)
        d.wait_for(r"^CHECK \d+ db ok", 1)
        deadline = time.monotonic() + 20
        while len(d.results()) < 15 and time.monotonic() < deadline:
            time.sleep(0.1)
        d.finish()
        results = d.results()
        self.assertGreaterEqual(len(results), 15, d.output())
        self.assertTrue(all(m.group(4) == "ok" for _, m in results), d.output())
        # One connection per 5 probes: held between probes, fresh every 5th.
        connections = self.server.connections_authorized() - before
        expected = -(-len(results) // 5)
        self.assertIn(connections, (expected, expected + 1),
                      f"{connections} connections for {len(results)} probes")

    def test_wrong_password_fails_with_28P01_while_pg_isready_says_up(self):
        d = self.driver(pg_target(self.server), password="not-the-password")
        d.wait_for(r'^RESULT \d+ db - fail 28P01 password authentication failed for user "probe"$', 15)
        d.wait_for(r"^CHECK \d+ db fail 28P01 ", 1)
        self.assertEqual(pg_fixture.pg_isready(self.server.port), 0)  # "accepting connections"
        d.finish()
        self.assertNotIn("ready=1", d.output())

    def test_password_in_url_and_name_resolution(self):
        # localhost may resolve to ::1 too (nothing listens there): libpq gets every
        # address as hostaddr and tries them in turn; it never resolves anything itself.
        url = (f"postgresql://{pg_fixture.ROLE}:{pg_fixture.ROLE_PASSWORD}@localhost:{self.server.port}/"
               f"{pg_fixture.DATABASE}?sslmode=disable")
        d = self.driver(url, password=None)
        d.wait_for(r"^STATE \d+ ready=1$", 15)
        d.finish()

    def test_missing_database_fails_with_3D000(self):
        d = self.driver(pg_target(self.server, database="nope"))
        d.wait_for(r'^RESULT \d+ db - fail 3D000 database "nope" does not exist$', 15)
        d.finish()

    def test_failing_query_reports_its_sqlstate(self):
        d = self.driver(pg_target(self.server), "--query", "SELECT * FROM no_such_table")
        d.wait_for(r'^RESULT \d+ db - fail 42P01 relation "no_such_table" does not exist$', 15)
        d.finish()

    def test_require_primary_passes_on_a_primary(self):
        d = self.driver(pg_target(self.server), "--require-primary")
        d.wait_for(r"^RESULT \d+ db - ok ok \(primary\)$", 15)
        d.finish()


@unittest.skipIf(PG_UNAVAILABLE, f"PostgreSQL not available: {PG_UNAVAILABLE}")
class PostgresServerStateTest(PgTestCase):
    """Scenarios that stop, freeze, fill or demote the server: one server each."""

    def test_sigstopped_server_times_out_and_recovers(self):
        server = self.new_server()
        d = self.driver(pg_target(server), interval="300ms", timeout="1s")
        d.wait_for(r"^STATE \d+ ready=1$", 15)
        mark = d.mark()
        server.sigstop()
        stopped_at = time.monotonic()
        t, _ = d.wait_for(r"^RESULT \d+ db - fail timeout after 1000 ms$", 5, after=mark)
        # Any attempt under way or started after the stop ends within its timeout + 1 s.
        self.assertLessEqual(t - stopped_at, 0.3 + 1.0 + 1.0, d.output())
        d.wait_for(r"^STATE \d+ ready=0$", 1, after=mark)
        # Fresh connects to the frozen server (accepted by the kernel, never answered) too.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            fails = [(t, m) for t, m in d.results(mark) if m.group(4) == "fail"]
            if len(fails) >= 3:
                break
            time.sleep(0.1)
        times = [t for t, m in d.results(mark) if m.group(4) == "fail"]
        self.assertGreaterEqual(len(times), 3, d.output())
        for a, b in zip(times, times[1:]):
            self.assertLessEqual(b - a, 0.3 + 1.0 + 1.0, d.output())
        self.assertTrue(all(m.group(5) == "timeout after 1000 ms"
                            for _, m in d.results(mark) if m.group(4) == "fail"), d.output())
        mark = d.mark()
        server.cont()
        d.wait_for(r"^STATE \d+ ready=1$", 10, after=mark)
        d.finish()

    def test_stopped_server_is_refused_then_recovers(self):
        server = self.new_server()
        d = self.driver(pg_target(server))
        d.wait_for(r"^STATE \d+ ready=1$", 15)
        mark = d.mark()
        server.stop()
        d.wait_for(r"^RESULT \d+ db - fail .*[Cc]onnection refused", 10, after=mark)
        d.wait_for(r"^STATE \d+ ready=0$", 1, after=mark)
        mark = d.mark()
        server.start()
        d.wait_for(r"^STATE \d+ ready=1$", 10, after=mark)
        d.finish()

    def test_max_connections_exhaustion_is_seen_by_the_fresh_connect(self):
        # Two slots for ordinary roles: the probe's held connection and one more. The check
        # interval lets the holder's backend notice at once when its client is killed.
        server = self.new_server(["max_connections=3", "superuser_reserved_connections=1",
                                  "client_connection_check_interval=100ms"])
        d = self.driver(pg_target(server), "--fall", "2")
        d.wait_for(r"^STATE \d+ ready=1$", 15)
        holder = subprocess.Popen(
            [os.path.join(pg_fixture.PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U",
             pg_fixture.ROLE, "-d", pg_fixture.DATABASE, "-c", "SELECT pg_sleep(120)"],
            env=dict(os.environ, PGPASSWORD=pg_fixture.ROLE_PASSWORD), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def end_holder():
            if holder.poll() is None:
                holder.kill()
                holder.wait(10)

        self.addCleanup(end_holder)
        mark = d.mark()
        # Probes on the held connection still pass; the 5th probe's fresh connect does not.
        d.wait_for(r"^RESULT \d+ db - fail 53300 ", 10, after=mark)
        d.wait_for(r"^STATE \d+ ready=0$", 5, after=mark)
        mark = d.mark()
        end_holder()
        d.wait_for(r"^STATE \d+ ready=1$", 10, after=mark)
        d.finish()

    def test_libpq_moving_to_the_next_server_mid_connect(self):
        # libpq reads from the standby's socket, finds it read-only, closes that socket and
        # opens one to the primary inside PQconnectPoll, often with the same fd number. The
        # probe must close its poll handle before every PQconnectPoll and make a new one
        # (libuv 1.44 aborts on a stale watcher): the first probe and every 5th go this way.
        standby = self.new_server(["hot_standby=on"], standby=True)
        primary = self.new_server()
        target = (f"hostaddr=127.0.0.1,127.0.0.1 port={standby.port},{primary.port} "
                  f"user={pg_fixture.ROLE} dbname={pg_fixture.DATABASE} sslmode=disable "
                  "target_session_attrs=read-write")
        d = self.driver(target, "--require-primary", interval="100ms")
        d.wait_for(r"^STATE \d+ ready=1$", 15)
        deadline = time.monotonic() + 15
        while len(d.results()) < 12 and time.monotonic() < deadline:
            time.sleep(0.1)
        d.finish()
        results = d.results()
        self.assertGreaterEqual(len(results), 12, d.output())
        self.assertTrue(all(m.group(4) == "ok" for _, m in results), d.output())
        self.assertGreaterEqual(primary.connections_authorized(), 3)
        self.assertGreaterEqual(standby.connections_authorized(), 3)

    def test_standby_without_hot_standby_is_57P03(self):
        server = self.new_server(["hot_standby=off"], standby=True, expect=1)
        d = self.driver(pg_target(server))
        d.wait_for(r"^RESULT \d+ db - fail 57P03 the database system is not accepting connections$", 15)
        d.finish()

    def test_require_primary_fails_on_a_hot_standby(self):
        server = self.new_server(["hot_standby=on"], standby=True)
        plain = self.driver(pg_target(server))
        plain.wait_for(r"^STATE \d+ ready=1$", 15)  # the standby answers queries
        strict = self.driver(pg_target(server), "--require-primary")
        strict.wait_for(r"^RESULT \d+ db - fail server is in recovery \(a standby\) and "
                        r"require_primary is set$", 15)
        plain.finish()
        strict.finish()


# --------------------------------------------------------------------------------------
# HTTP: every host of an upstream
# --------------------------------------------------------------------------------------


class HealthServer:
    """A threaded HTTP server answering every GET with (status, body), changeable."""

    def __init__(self, test: unittest.TestCase, status: int = 200, body: bytes = b"ok\n"):
        self.status, self.body, self.requests = status, body, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Host")))
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        test.addCleanup(self.close)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class HttpUpstreamProbeTest(unittest.TestCase):
    def driver(self, servers: list[HealthServer], *extra: str) -> Driver:
        args = ["--type", "http", "--name", "app", "--path", "/healthz", "--interval", "100ms",
                "--timeout", "1s", "--rise", "1", "--fall", "1", *extra]
        for s in servers:
            args += ["--server", f"127.0.0.1:{s.port}"]
        return Driver(self, args)

    def test_each_host_is_tracked_and_the_check_needs_one_healthy(self):
        a, b = HealthServer(self, 200), HealthServer(self, 503)
        d = self.driver([a, b])
        d.wait_for(rf"^HOST \d+ app 127\.0\.0\.1:{a.port} ok$", 10)
        d.wait_for(rf"^HOST \d+ app 127\.0\.0\.1:{b.port} fail$", 10)
        d.wait_for(r"^STATE \d+ ready=1$", 10)
        self.assertEqual(a.requests[0], ("/healthz", f"127.0.0.1:{a.port}"))

        mark = d.mark()
        b.status = 200
        d.wait_for(rf"^HOST \d+ app 127\.0\.0\.1:{b.port} ok$", 10, after=mark)

        mark = d.mark()
        a.status = b.status = 500
        d.wait_for(r"^STATE \d+ ready=0$", 10, after=mark)
        d.wait_for(r"^CHECK \d+ app fail no healthy host in upstream app: .*HTTP 500", 1, after=mark)
        d.finish()

    def test_expected_body_and_status_range(self):
        s = HealthServer(self, 200, b"status: starting\n")
        d = self.driver([s], "--expect-body", "ready", "--status", "200-299")
        d.wait_for(r'^RESULT \d+ app \S+ fail HTTP 200: body does not contain "ready"$', 10)
        mark = d.mark()
        s.body = b"status: ready\n"
        d.wait_for(r"^STATE \d+ ready=1$", 10, after=mark)
        mark = d.mark()
        s.status = 302  # outside 200-299
        d.wait_for(r"^RESULT \d+ app \S+ fail HTTP 302$", 10, after=mark)
        d.finish()


# --------------------------------------------------------------------------------------
# Redis: a fake RESP server always; a real redis-server when installed
# --------------------------------------------------------------------------------------


class FakeRedis:
    """Speaks just enough RESP: AUTH and PING, with a configurable PING reply or silence."""

    def __init__(self, test: unittest.TestCase, password: str | None = None,
                 ping_reply: bytes = b"+PONG\r\n", silent: bool = False):
        self.password, self.ping_reply, self.silent = password, ping_reply, silent
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        test.addCleanup(self.close)

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        buf, authed = b"", self.password is None
        try:
            while not self.closed:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while (parsed := self._command(buf)) is not None:
                    words, buf = parsed
                    if self.silent:
                        continue
                    reply, authed = self._answer(words, authed)
                    conn.sendall(reply)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _command(buf: bytes):
        """([words], rest) for one complete RESP array of bulk strings, else None."""
        lines = buf.split(b"\r\n")
        if len(lines) < 2 or not lines[0].startswith(b"*"):
            return None
        count, words, i = int(lines[0][1:]), [], 1
        while len(words) < count:
            if i + 1 >= len(lines):
                return None
            words.append(lines[i + 1].decode())
            i += 2
        return words, b"\r\n".join(lines[i:])

    def _answer(self, words: list[str], authed: bool) -> tuple[bytes, bool]:
        if words[0].upper() == "AUTH":
            if self.password is None:
                return b"-ERR AUTH <password> called without any password configured\r\n", authed
            if words[-1] == self.password:
                return b"+OK\r\n", True
            return b"-WRONGPASS invalid username-password pair or user is disabled.\r\n", authed
        if not authed:
            return b"-NOAUTH Authentication required.\r\n", authed
        return self.ping_reply, authed

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for c in self.conns:
            c.close()
        self.thread.join(5)


def redis_driver(test: unittest.TestCase, port: int, password: str | None = None,
                 timeout: str = "1s") -> Driver:
    args = ["--type", "redis", "--name", "cache", "--target", f"127.0.0.1:{port}", "--interval",
            "100ms", "--timeout", timeout, "--rise", "1", "--fall", "1"]
    if password is not None:
        args += ["--password-file", secret_file(test, password)]
    return Driver(test, args)


class FakeRedisProbeTest(unittest.TestCase):
    def test_pong_is_ok(self):
        r = FakeRedis(self)
        d = redis_driver(self, r.port)
        d.wait_for(r"^RESULT \d+ cache - ok \+PONG$", 10)
        d.wait_for(r"^STATE \d+ ready=1$", 1)
        d.finish()

    def test_loading_fails_with_the_server_message(self):
        r = FakeRedis(self, ping_reply=b"-LOADING Redis is loading the dataset in memory\r\n")
        d = redis_driver(self, r.port)
        d.wait_for(r"^RESULT \d+ cache - fail -LOADING Redis is loading the dataset in memory$", 10)
        d.finish()

    def test_auth(self):
        r = FakeRedis(self, password="sekrit")
        good = redis_driver(self, r.port, password="sekrit")
        wrong = redis_driver(self, r.port, password="nope")
        missing = redis_driver(self, r.port)
        good.wait_for(r"^STATE \d+ ready=1$", 10)
        wrong.wait_for(r"^RESULT \d+ cache - fail -WRONGPASS invalid username-password pair", 10)
        missing.wait_for(r"^RESULT \d+ cache - fail -NOAUTH Authentication required\.$", 10)
        for d in (good, wrong, missing):
            d.finish()

    def test_silent_server_times_out(self):
        r = FakeRedis(self, silent=True)
        d = redis_driver(self, r.port, timeout="500ms")
        d.wait_for(r"^RESULT \d+ cache - fail timeout after 500 ms$", 10)
        d.finish()


REDIS_SERVER = shutil.which("redis-server")


@unittest.skipUnless(REDIS_SERVER, "redis-server is not installed (Debian package redis-server); "
                                   "real-Redis probe tests skipped, the fake RESP server tests ran")
class RealRedisProbeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="gh-redis-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", "sekrit",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self._stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.fail("redis-server did not listen within 10 s")

    def _stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def test_auth_and_ping(self):
        good = redis_driver(self, self.port, password="sekrit")
        wrong = redis_driver(self, self.port, password="nope")
        missing = redis_driver(self, self.port)
        good.wait_for(r"^RESULT \d+ cache - ok \+PONG$", 10)
        wrong.wait_for(r"^RESULT \d+ cache - fail -WRONGPASS ", 10)
        missing.wait_for(r"^RESULT \d+ cache - fail -NOAUTH ", 10)
        for d in (good, wrong, missing):
            d.finish()

    def test_stopped_server_is_refused(self):
        d = redis_driver(self, self.port, password="sekrit")
        d.wait_for(r"^STATE \d+ ready=1$", 10)
        mark = d.mark()
        self._stop()
        d.wait_for(r"^RESULT \d+ cache - fail connection refused", 10, after=mark)
        d.finish()


if __name__ == "__main__":
    unittest.main()
