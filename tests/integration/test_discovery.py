"""Replica discovery through DNS: an upstream server given by name becomes one host per
address the name resolves to, re-resolved every resolve_interval, so the replica set
grows and shrinks without a restart or a reload, and a name that does not resolve yet
answers 503 with Retry-After until it does.

The name is `replicas.test` in a hosts file the test owns: gatehouse runs in a private
mount namespace (`unshare --mount`) where that file is bind-mounted over /etc/hosts and a
`hosts: files` nsswitch.conf over /etc/nsswitch.conf, so glibc's getaddrinfo reads it and
asks no DNS server. The file is rewritten in place (a rename would leave the bind mount on
the old inode). Replicas are harness Upstreams on 127.0.0.2, 127.0.0.3 and 127.0.0.4, all
on the same port, each answering with its own address. Needs root (skipped otherwise, or
when unshare/mount do not work here).

Every step of the launch execs (sh -> unshare -> sh -> gatehouse), so the PID the harness
started is gatehouse's own; the tests check that, and that no process is left in the
namespace once it has exited."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from collections import Counter

from harness import (GATEHOUSE_BIN, Gatehouse, GatehouseTestCase, HttpClient, HttpParseError,
                     Upstream, has_token, make_config, static_handler)

NAME = "replicas.test"
REPLICAS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
RESOLVE_INTERVAL = "500ms"
CHANGE_DEADLINE = 10.0  # seconds for a hosts-file change to show: 20 resolve intervals
NSSWITCH = "hosts: files\n"


def namespace_unavailable() -> str | None:
    """None when a private mount namespace with our own /etc/hosts works here, else why not."""
    if os.geteuid() != 0:
        return "needs root (unshare --mount, mount --bind)"
    for tool in ("unshare", "mount", "getent"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    for address in REPLICAS:
        try:
            socket.create_server((address, 0)).close()
        except OSError as e:
            return f"cannot listen on {address}: {e}"
    with tempfile.TemporaryDirectory(prefix="gh-ns-probe-") as d:
        hosts, nss = os.path.join(d, "hosts"), os.path.join(d, "nsswitch.conf")
        with open(hosts, "w") as f:
            f.write(f"127.0.0.2 {NAME}\n")
        with open(nss, "w") as f:
            f.write(NSSWITCH)
        try:
            out = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/nsswitch.conf && '
                 f"getent ahostsv4 {NAME}", hosts, nss],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"unshare --mount failed: {e}"
        if out.returncode != 0 or "127.0.0.2" not in out.stdout:
            return (f"a private /etc/hosts does not work here (unshare --mount, mount --bind, "
                    f"getent): exit {out.returncode}: {out.stderr.strip()}")
    return None


def mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def pids_in_namespace(namespace: str) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and mount_namespace(int(entry)) == namespace]


class Load:
    """GET /who through the proxy in a thread, one request after another on a keep-alive
    connection (reopened only if the proxy closes it), recording the status and the
    answering replica of each, or the exception that ended it."""

    def __init__(self, port: int, pause: float = 0.005):
        self.port = port
        self.pause = pause
        self.results: list[tuple[int | None, str | None]] = []
        self.failures: list[str] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load")
        self._thread.start()

    def _run(self) -> None:
        client = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = HttpClient(self.port, timeout=5)
                response = client.request("GET", "/who")
                result = (response.status, response.headers.get("X-Upstream"))
                if has_token(response.headers.get("Connection"), "close"):
                    client.close()
                    client = None
            except (OSError, EOFError, HttpParseError) as e:
                result = (None, None)
                with self._cond:
                    self.failures.append(f"request {len(self.results)}: {e!r}")
                if client is not None:
                    client.close()
                client = None
            with self._cond:
                self.results.append(result)
                self._cond.notify_all()
            self._stop.wait(self.pause)
        if client is not None:
            client.close()

    def count(self) -> int:
        with self._cond:
            return len(self.results)

    def since(self, mark: int) -> list[tuple[int | None, str | None]]:
        with self._cond:
            return self.results[mark:]

    def wait_until(self, predicate, timeout: float) -> bool:
        """Waits until predicate(results) holds, re-checked after each response."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.results):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_for_more(self, count: int, timeout: float = 15.0) -> bool:
        target = self.count() + count
        return self.wait_until(lambda results: len(results) >= target, timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def replicas(results) -> Counter:
    return Counter(replica for _, replica in results)


class DiscoveryTest(GatehouseTestCase):
    @classmethod
    def setUpClass(cls):
        reason = namespace_unavailable()
        if reason:
            raise unittest.SkipTest(reason)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="gh-discovery-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.hosts_path = os.path.join(self.dir, "hosts")
        self.nsswitch_path = os.path.join(self.dir, "nsswitch.conf")
        with open(self.hosts_path, "w") as f:
            f.write("127.0.0.1 localhost\n")
        with open(self.nsswitch_path, "w") as f:
            f.write(NSSWITCH)
        self.hosts_inode = os.stat(self.hosts_path).st_ino

    # -- helpers ---------------------------------------------------------------------

    def write_hosts(self, addresses) -> None:
        """Rewrites the hosts file in place (same inode: the bind mount stays on it), in
        one write after the truncation: a lookup sees the old file, the new one or an
        empty one (no answer: gatehouse keeps the addresses it had)."""
        text = "127.0.0.1 localhost\n" + "".join(f"{a} {NAME}\n" for a in addresses)
        with open(self.hosts_path, "r+") as f:
            f.truncate(0)
            f.write(text)
        self.assertEqual(os.stat(self.hosts_path).st_ino, self.hosts_inode)

    def start_replicas(self) -> dict[str, Upstream]:
        """One Upstream per address of REPLICAS, all on one port (retried if another
        process holds that port on one of the addresses)."""
        for _ in range(20):
            started: dict[str, Upstream] = {}
            try:
                for address in REPLICAS:
                    port = next(iter(started.values())).port if started else 0
                    started[address] = Upstream(static_handler(200, address.encode()),
                                                name=address, host=address, port=port)
            except OSError:
                for upstream in started.values():
                    upstream.close()
                continue
            for upstream in started.values():
                self.addCleanup(upstream.close)
            return started
        self.fail(f"no port free on all of {REPLICAS}")

    def start_in_namespace(self, config_text: str) -> Gatehouse:
        """Runs gatehouse (the harness's Gatehouse, through a wrapper script) with our
        hosts file and nsswitch.conf bind-mounted in a private mount namespace."""
        if not os.access(GATEHOUSE_BIN, os.X_OK):
            self.fail(f"gatehouse binary not found: {GATEHOUSE_BIN} (set GATEHOUSE_BIN)")
        wrapper = os.path.join(self.dir, "gatehouse-in-namespace")
        inner = ('mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/nsswitch.conf '
                 '&& shift && exec "$@"')
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    f"exec unshare --mount --propagation private sh -c {shlex.quote(inner)} "
                    f"{shlex.quote(self.hosts_path)} {shlex.quote(self.nsswitch_path)} "
                    f'{shlex.quote(GATEHOUSE_BIN)} "$@"\n')
        os.chmod(wrapper, 0o755)
        gatehouse = Gatehouse(config_text, binary=wrapper)
        # Cleanups run last-in first-out: stop, print logs on failure, end anything left
        # in the namespace, delete files.
        self.addCleanup(gatehouse.cleanup)
        self.addCleanup(self._end_namespace)
        self.addCleanup(self._dump_logs_on_failure, gatehouse)
        self.addCleanup(gatehouse.stop)
        self.namespace = None
        gatehouse.start()
        # The chain exec'd all the way: the PID we started is gatehouse, in its own namespace.
        self.assertEqual(os.path.realpath(f"/proc/{gatehouse.pid}/exe"),
                         os.path.realpath(GATEHOUSE_BIN))
        self.namespace = mount_namespace(gatehouse.pid)
        self.assertIsNotNone(self.namespace)
        self.assertNotEqual(self.namespace, mount_namespace(os.getpid()))
        self.assertEqual(pids_in_namespace(self.namespace), [gatehouse.pid])
        return gatehouse

    def stop_and_check_namespace(self, gatehouse: Gatehouse) -> None:
        self.assertEqual(gatehouse.stop(), 0, gatehouse.stderr()[-2000:])
        self.assertEqual(pids_in_namespace(self.namespace), [],
                         "processes left in gatehouse's mount namespace")

    def _end_namespace(self) -> None:
        """After a failure: SIGKILL whatever is left in the namespace we created."""
        if not getattr(self, "namespace", None):
            return
        for pid in pids_in_namespace(self.namespace):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def config(self, port: int) -> str:
        return make_config({"app": {"servers": [f"{NAME}:{port}"],
                                    "resolve_interval": RESOLVE_INTERVAL}})

    def start_load(self, port: int) -> Load:
        load = Load(port)
        self.addCleanup(load.stop)
        return load

    # -- tests -----------------------------------------------------------------------

    def test_replica_set_grows_and_shrinks_with_the_name(self):
        a, b, c = REPLICAS
        upstreams = self.start_replicas()
        port = upstreams[a].port
        self.write_hosts([a, b])
        gatehouse = self.start_in_namespace(self.config(port))
        generation = gatehouse.generation
        load = self.start_load(gatehouse.port)

        # Both addresses of the name are hosts: round robin spreads requests over them.
        self.assertTrue(load.wait_for_more(40), "the load made no progress")
        seen = replicas(load.since(0))
        self.assertEqual(set(seen), {a, b}, seen)
        self.assertGreaterEqual(min(seen.values()), len(load.since(0)) // 4, seen)

        # A third address: within a few resolve intervals it gets traffic too.
        self.write_hosts([a, b, c])
        mark, started = load.count(), time.monotonic()
        self.assertTrue(load.wait_until(lambda r: c in replicas(r[mark:]), CHANGE_DEADLINE),
                        f"{c} got no request within {CHANGE_DEADLINE}s: "
                        f"{replicas(load.since(mark))}")
        grew_after = time.monotonic() - started
        mark = load.count()
        self.assertTrue(load.wait_for_more(60))
        self.assertEqual(set(replicas(load.since(mark))), {a, b, c})

        # The first address leaves the name: it stops getting requests, the others share.
        self.write_hosts([b, c])
        mark, started = load.count(), time.monotonic()
        self.assertTrue(load.wait_until(
            lambda r: len(r) - mark >= 30 and a not in replicas(r[-30:]), CHANGE_DEADLINE),
            f"{a} still got requests {CHANGE_DEADLINE}s after leaving: "
            f"{replicas(load.since(mark))}")
        shrank_after = time.monotonic() - started
        requests_at_a = len(upstreams[a].requests)
        mark = load.count()
        time.sleep(1.0)  # two more resolve rounds, under load
        self.assertTrue(load.wait_for_more(60))
        self.assertEqual(len(upstreams[a].requests), requests_at_a, "a removed host got requests")
        self.assertEqual(set(replicas(load.since(mark))), {b, c})

        load.stop()
        results = load.since(0)
        print(f"\n{self.id()}: {len(results)} requests; {c} joined after {grew_after:.2f} s, "
              f"{a} left after {shrank_after:.2f} s (resolve_interval {RESOLVE_INTERVAL}); "
              f"per replica {dict(replicas(results))}")
        # No client request failed across the changes, and no reload or restart happened.
        self.assertEqual(load.failures, [])
        self.assertEqual(Counter(status for status, _ in results), Counter({200: len(results)}))
        self.assertEqual(gatehouse.proc.poll(), None)
        self.assertEqual(gatehouse.read_generation(), generation)
        self.stop_and_check_namespace(gatehouse)

    def test_unresolvable_name_is_503_until_it_resolves(self):
        a = REPLICAS[0]
        upstreams = self.start_replicas()
        gatehouse = self.start_in_namespace(self.config(upstreams[a].port))
        generation, pid = gatehouse.generation, gatehouse.pid

        # Started anyway; the route has no host yet.
        with HttpClient(gatehouse.port) as client:
            response = client.request("GET", "/who")
        self.assertEqual(response.status, 503)
        self.assertIsNotNone(response.headers.get("Retry-After"))

        self.write_hosts([a])
        started = time.monotonic()
        deadline = started + CHANGE_DEADLINE
        while True:
            with HttpClient(gatehouse.port) as client:
                response = client.request("GET", "/who")
            if response.status == 200 or time.monotonic() > deadline:
                break
            self.assertEqual(response.status, 503)
            time.sleep(0.05)
        resolved_after = time.monotonic() - started
        print(f"\n{self.id()}: 200 after {resolved_after:.2f} s "
              f"(resolve_interval {RESOLVE_INTERVAL})")
        self.assertEqual(response.status, 200, f"still {response.status} after "
                                               f"{CHANGE_DEADLINE}s")
        self.assertEqual(response.headers.get("X-Upstream"), a)
        self.assertEqual(response.body, a.encode())
        # Same process, same config generation: no restart, no reload.
        self.assertEqual(gatehouse.pid, pid)
        self.assertEqual(gatehouse.read_generation(), generation)
        self.stop_and_check_namespace(gatehouse)


if __name__ == "__main__":
    unittest.main()
