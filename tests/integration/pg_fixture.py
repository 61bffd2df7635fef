"""A throwaway PostgreSQL 15 server for the health probe tests (Python stdlib only).

PgTemplate runs initdb once (as a non-root system user: PostgreSQL refuses to run as
root; tests run as root, so the user `gatehouse-test` is created with `useradd --system`
when missing), starts it once to create the test role and database, and stops it.
PgServer copies that template into its own temp dir and runs `postgres` directly (not
pg_ctl) on 127.0.0.1 and a free port, in its own session, so its PID is the postmaster's
and SIGSTOP/SIGCONT can go to the whole process group. Every wait is bounded; every
process is ended by PID; every temp dir is removed.

Note: every PostgreSQL child process calls setsid() (InitPostmasterChild), so freezing the
server means signalling the postmaster and each of its children, not one process group.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
TEST_USER = "gatehouse-test"
SUPERUSER = "postgres"
ROLE = "probe"
ROLE_PASSWORD = "probe-secret-1"
DATABASE = "appdb"


def available() -> str | None:
    """None when PostgreSQL can be used here, else why not."""
    for tool in ("initdb", "postgres", "psql", "pg_isready"):
        if not os.access(os.path.join(PG_BIN, tool), os.X_OK):
            return f"{PG_BIN}/{tool} not found (install postgresql-15)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_user() -> str | None:
    """The user to run PostgreSQL as: TEST_USER when root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], check=True, timeout=30)
    return TEST_USER


def _chown_tree(path: str, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, entry.pw_uid, entry.pw_gid)


def _run_as(user: str | None, argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, user=user, group=None if user is None else pwd.getpwnam(user).pw_gid,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def psql(port: int, sql: str, user: str = SUPERUSER, password: str | None = None,
         database: str = "postgres", timeout: float = 20) -> str:
    """Runs SQL over TCP (scram) and returns stdout; raises on failure."""
    env = dict(os.environ, PGPASSWORD=password or "", PGCONNECT_TIMEOUT="5")
    out = subprocess.run([os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", user,
                          "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr.strip()}")
    return out.stdout


def pg_isready(port: int) -> int:
    """0 accepting, 1 rejecting (starting up), 2 no response, 3 bad call."""
    out = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-t", "3"],
                         capture_output=True, text=True, timeout=10)
    return out.returncode


class PgServer:
    """One postmaster on a copy of a data directory. Use start()/stop()/cleanup()."""

    def __init__(self, datadir_source: str, user: str | None, options: list[str] | None = None,
                 standby: bool = False):
        self.user = user
        self.options = options or []
        self.dir = tempfile.mkdtemp(prefix="gh-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        shutil.copytree(datadir_source, self.data, symlinks=True)
        if standby:
            open(os.path.join(self.data, "standby.signal"), "w").close()
        os.chmod(self.dir, 0o700)
        _chown_tree(self.dir, user)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, expect: int = 0, timeout: float = 30) -> None:
        """Starts postgres; waits until pg_isready answers `expect` (0 accepting, 1 rejecting)."""
        argv = [os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port),
                "-k", self.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "log_connections=on"]
        for option in self.options:
            argv += ["-c", option]
        self._log = open(self.log_path, "ab")
        group = None if self.user is None else pwd.getpwnam(self.user).pw_gid
        self.proc = subprocess.Popen(argv, user=self.user, group=group, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log()}")
            if pg_isready(self.port) == expect:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready (pg_isready {expect}) after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 15) -> None:
        """Fast shutdown (SIGINT to the postmaster), SIGKILL to the group if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.cont()  # a stopped server cannot shut down
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def sigstop(self) -> None:
        """Freezes the postmaster first (no new children), then every child."""
        self._signal(self.proc.pid, signal.SIGSTOP)
        for child in self._children():
            self._signal(child, signal.SIGSTOP)

    def cont(self) -> None:
        if self.proc is None:
            return
        for child in self._children():
            self._signal(child, signal.SIGCONT)
        self._signal(self.proc.pid, signal.SIGCONT)

    def _children(self) -> list[int]:
        """PIDs whose parent is the postmaster (each is its own session: see above)."""
        if self.proc is None:
            return []
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == self.proc.pid:
                children.append(int(entry))
        return children

    def _signal(self, pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _signal_group(self, signum: int) -> None:
        """The postmaster and its children."""
        if self.proc is not None and self.proc.poll() is None:
            for pid in [self.proc.pid, *self._children()]:
                self._signal(pid, signum)

    def log(self, tail: int | None = 8000) -> str:
        """The server log (its last `tail` characters; None: all of it)."""
        try:
            with open(self.log_path, "r", errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        return text if tail is None else text[-tail:]

    def connections_authorized(self, user: str = ROLE) -> int:
        """How many connections of `user` the server has authorized so far (log_connections)."""
        return self.log(None).count(f"connection authorized: user={user} ")

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class PgTemplate:
    """An initialized data directory with the role ROLE (scram password) and DATABASE."""

    def __init__(self):
        self.user = _ensure_user()
        self.dir = tempfile.mkdtemp(prefix="gh-pgtpl-")
        self.data = os.path.join(self.dir, "data")
        os.chmod(self.dir, 0o700)
        _chown_tree(self.dir, self.user)
        try:
            self._init()
        except BaseException:
            self.cleanup()
            raise

    def _init(self) -> None:
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write("superpass\n")
        _chown_tree(self.dir, self.user)
        out = _run_as(self.user, [os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", SUPERUSER,
                                  "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
                                  "--no-sync", "-E", "UTF8", "--locale=C"], timeout=120, cwd=self.dir)
        os.unlink(pwfile)
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.stdout}\n{out.stderr}")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nwal_level = replica\nhot_standby = on\n")
        server = PgServer(self.data, self.user)
        try:
            server.start()
            env_password = "superpass"
            psql(server.port, f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}'", password=env_password)
            psql(server.port, f"CREATE DATABASE {DATABASE} OWNER {ROLE}", password=env_password)
            server.stop()
            shutil.rmtree(self.data)
            shutil.copytree(server.data, self.data, symlinks=True)
            _chown_tree(self.dir, self.user)
        finally:
            server.cleanup()

    def server(self, options: list[str] | None = None, standby: bool = False) -> PgServer:
        return PgServer(self.data, self.user, options, standby)

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class SharedTemplate:
    """Test-class mixin: one initdb'd template per class (`cls.template`); each test copies
    it with `self.template.server()`, which is much faster than an initdb per test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.template = PgTemplate()

    @classmethod
    def tearDownClass(cls):
        cls.template.cleanup()
        super().tearDownClass()
