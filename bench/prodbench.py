"""What bench/pool_churn.py and bench/shared_cores.py share: run.py's Bench with each proxy
in its *natural production config* instead of run.py's equalised one, an upstream that
also reports its accepted connections (nginx stub_status), descriptor counts, and the
small bits of command line both scripts have.

Production configs, as issue 13 asks (derived from run.py's generators, then changed):
- Gatehouse: its defaults: no `keepalive` key on the upstream (the pool follows demand,
  capped at 1024), no `max_connections` (10,000 per worker); `workers` written out (its
  default is one per core); access log off, as for the others.
- nginx: `keepalive 64` on the upstream block (its usual production value), with
  `proxy_http_version 1.1` + `Connection ""`; `worker_processes` = the workers asked for.
- HAProxy: its defaults for connection reuse (`http-reuse safe`, no `pool-max-conn`),
  `nbthread` = the workers asked for.
Everything else (forwarding headers, timeouts, limits, access log off) is run.py's.

Python 3 standard library only. Not a program.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import run
from benchlib import PROXIES, BenchError, Proc, Target, http_get, log, machine_busy_pct, wait_until

NGINX_KEEPALIVE = 64
CLIENTS = 3000  # HAProxy maxconn and nginx worker_connections (×2): room for wrk -c1000

_original = {name: getattr(run, name) for name in
             ("gatehouse_conf", "nginx_proxy_conf", "haproxy_conf")}
_workers = {"n": 1}


def _gatehouse_defaults(workers, up, ws, tls, clients, h2=False, sink=None):
    text = _original["gatehouse_conf"](workers, up, ws, tls, clients, h2, sink)
    text = re.sub(r"^max_connections = \d+\n", "", text, flags=re.M)
    return re.sub(r"^keepalive = \d+\n", "", text, flags=re.M)


def _nginx_production(work, name, port, up, ws, tls, clients, h2=False, sink=None):
    text = _original["nginx_proxy_conf"](work, name, port, up, ws, tls, clients, h2, sink)
    text = text.replace("worker_processes 1;", f"worker_processes {_workers['n']};")
    return re.sub(r"keepalive \d+;", f"keepalive {NGINX_KEEPALIVE};", text)


def _haproxy_defaults(work, port, up, ws, tls, clients, h2=False, sink=None):
    text = _original["haproxy_conf"](work, port, up, ws, tls, clients, h2, sink)
    text = text.replace("nbthread 1", f"nbthread {_workers['n']}")
    text = text.replace("  http-reuse always\n", "")
    return re.sub(r" pool-max-conn \d+", "", text)


def set_workers(n: int) -> None:
    """Workers of the proxies started from now on (nginx worker_processes, HAProxy nbthread;
    Gatehouse gets its count through start_proxy's `workers`)."""
    _workers["n"] = n


# run.Bench.start_proxy calls these module functions by name: point them at the wrappers.
run.gatehouse_conf = _gatehouse_defaults
run.nginx_proxy_conf = _nginx_production
run.haproxy_conf = _haproxy_defaults


def status_server(port: int) -> str:
    """A second server block for the upstream nginx: stub_status on its own port."""
    return (f"  server {{\n    listen 127.0.0.1:{port};\n"
            f"    location = /status {{ stub_status; }}\n  }}\n")


class ProdBench(run.Bench):
    """run.Bench with production configs, no WebSocket tools, and an upstream nginx (the
    same `return 200` one) that also serves stub_status on a second port."""

    def __init__(self, args, workers: int, upstream_cpus: str | None):
        set_workers(workers)
        self.upstream_cpus = upstream_cpus
        super().__init__(args)
        self.clients = CLIENTS

    def compile_ws_tools(self):
        return None, None  # no WebSocket scenario here

    def start_upstreams(self) -> None:
        for attempt in range(3):
            self.up_port, self.status_port = run.free_port(), run.free_port()
            text = run.upstream_nginx_conf(self.work, self.up_port)
            text = text[:text.rstrip().rfind("}")] + status_server(self.status_port) + "}\n"
            conf = self.write("upstream.conf", text)
            proc = Proc("upstream", ["nginx", "-e", str(self.work / "upstream.log"), "-p",
                                     str(self.work), "-c", str(conf)], self.work,
                        self.upstream_cpus)
            try:
                wait_until("upstream nginx", lambda: http_get(self.up_port)[0] == 200
                           and self.upstream_status()["accepts"] > 0, proc=proc)
                self.upstream_proc, self.ws_port = proc, self.up_port  # /ws unused here
                self.upstream = Target("direct", self.up_port, None)
                self.commands["upstream"] = " ".join(proc.argv)
                return
            except BenchError:
                proc.stop()
                if attempt == 2:
                    raise

    def upstream_status(self) -> dict:
        """nginx stub_status: active connections, accepts, handled, requests. The reading
        connection itself is one of the accepts (and of the active connections)."""
        status, body = http_get(self.status_port, "/status")
        text = body.decode()
        active = int(re.search(r"Active connections:\s*(\d+)", text).group(1))
        accepts, handled, requests = (int(x) for x in
                                      re.search(r"\n\s*(\d+)\s+(\d+)\s+(\d+)", text).groups())
        return {"active": active, "accepts": accepts, "handled": handled, "requests": requests}


def fd_count(pids: list[int]) -> int:
    """Open descriptors of the processes (nginx: master + workers), from /proc/PID/fd."""
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def upstream_conns(pids: list[int], port: int) -> int:
    """Established TCP connections the processes hold to 127.0.0.1:port (their upstream
    pool, busy and idle), from their socket inodes and /proc/net/tcp."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[2] == f"0100007F:{port:04X}" and f[3] == "01" and f[9] in inodes:
            count += 1
    return count


def common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gatehouse", type=Path, default=run.DEFAULT_BIN,
                        help="binary to test (copied into the temp dir first)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    parser.add_argument("--wait-quiet", type=int, default=0, metavar="SECONDS",
                        help="first wait up to SECONDS until the machine is < 25%% busy")
    parser.add_argument("--out", type=Path, help="write the markdown report there too")


def bench_args(args, duration: int) -> argparse.Namespace:
    """The attributes run.Bench and benchlib.interleave read."""
    return argparse.Namespace(gatehouse=args.gatehouse, idle=0, h2_idle=0, quick=args.quick,
                              duration=duration, keep=args.keep)


def wait_for_binary(path: Path) -> None:
    for _ in range(60):  # someone's build may be relinking it
        if path.exists():
            return
        time.sleep(2)
    raise BenchError(f"{path} not found")


def wait_quiet(seconds: int) -> str:
    """Waits (bounded) for the machine to be < 25 % busy; returns the load line for reports."""
    load = os.getloadavg()
    busy = machine_busy_pct()
    deadline = time.monotonic() + seconds
    while busy > 25 and time.monotonic() < deadline:
        log(f"machine {busy:.0f} % busy with other work; waiting (--wait-quiet)")
        time.sleep(10)
        busy = machine_busy_pct()
    now = os.getloadavg()
    return (f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} when started, "
            f"{now[0]:.2f} when measuring began; all CPUs {busy:.0f} % busy just before")


def start_proxies(bench: ProdBench, workers: int, cpus: str | None) -> list[Target]:
    targets = [bench.start_proxy(kind, workers=workers, cpus=cpus) for kind in PROXIES]
    for t in targets:
        status, body = http_get(t.port, "/")
        if status != 200 or body != run.SMALL_BODY.encode():
            raise BenchError(f"{t.name}: GET / gave {status} {body[:80]!r}")
    return targets


def configs_section(bench: ProdBench) -> list[str]:
    L = ["## Configs", "", "As generated for this run.", ""]
    for name, text in bench.configs.items():
        L += [f"<details><summary>{name}</summary>", "", "```", text.rstrip(), "```", "",
              "</details>", ""]
    return L


def run_main(args, workers: int, seconds: int, body) -> int:
    """The frame of both scripts: descriptor limit, binary, --wait-quiet, the bench and its
    upstream; `body(bench, load_line)` measures and returns the report's lines, which are
    printed and (--out) written with the configs. Exit 0 fine, 1 errors in runs, 2 could
    not run. Stops everything started (by PID); removes the temp dir unless --keep."""
    atexit.register(run.stop_all)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(130))
    bench = None
    try:
        run.raise_fd_limit(CLIENTS)  # wrk -c1000 and the proxies inherit it
        wait_for_binary(args.gatehouse)
        load = wait_quiet(args.wait_quiet)
        log(load)
        bench = ProdBench(bench_args(args, seconds), workers, None)
        bench.start_upstreams()
        report = "\n".join(body(bench, load)) + "\n"
        print(report)
        if bench.problems:
            report += "\nProblems:\n\n" + "".join(f"- {p}\n" for p in bench.problems)
        if args.out:
            args.out.write_text(report + "\n" + "\n".join(configs_section(bench)))
            log(f"wrote {args.out}")
        return 1 if bench.problems else 0
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        run.stop_all()
        if bench and not args.keep and not bench.problems:
            shutil.rmtree(bench.work, ignore_errors=True)
        elif bench:
            log(f"kept {bench.work} (configs and logs)")
