#!/usr/bin/python3
"""Gatehouse vs nginx vs HAProxy on this machine, in one command; writes bench/RESULTS.md.

    bench/run.py            full run: 3 interleaved rounds of 10 s per target (~8 minutes)
    bench/run.py --quick    CI smoke run: 1 round of 3 s, fewer connections (~1 minute)

See bench/README.md for what every scenario measures and how to read the ratios.
Python 3 standard library only. Every process started here is stopped by its PID; every
load is bounded in time (wrk -d, openssl s_time -time) and in count (-c, -n); ports are
picked at run time on 127.0.0.1; scratch files live in a temp dir under /tmp.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import datetime
import hashlib
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DEFAULT_BIN = ROOT / "build" / "proxy" / "gatehouse"
PYTHON = "/usr/bin/python3"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXY_CPU, LOAD_CPU = "0", "1"  # proxy under test on CPU 0; wrk, upstream, clients on CPU 1
PROXIES = ("gatehouse", "nginx", "haproxy")
INSTALL_HINT = ("apt-get install -y nginx-light haproxy wrk   "
                "(or: GATEHOUSE_BENCH=1 scripts/setup.sh)")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------
# Processes: started with an optional CPU pin, stopped by PID (and their children too)
# --------------------------------------------------------------------------------------


def proc_children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


class Proc:
    """One started process. `pids()` is the process plus its direct children (nginx)."""

    running: list["Proc"] = []

    def __init__(self, name: str, argv: list[str], workdir: Path, cpus: str | None,
                 stdin=subprocess.DEVNULL, capture_stdout: bool = False):
        self.name = name
        self.argv = (["taskset", "-c", cpus] if cpus else []) + argv
        self.log_path = workdir / f"{name}.log"
        self.log_file = open(self.log_path, "ab")
        stdout = subprocess.PIPE if capture_stdout else self.log_file
        # taskset execs the command, so the PID is the program's own.
        self.popen = subprocess.Popen(self.argv, stdin=stdin, stdout=stdout,
                                      stderr=self.log_file, text=capture_stdout)
        self.pid = self.popen.pid
        self.seen_children: set[int] = set()
        Proc.running.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pids(self) -> list[int]:
        kids = proc_children(self.pid)
        self.seen_children.update(kids)
        return [self.pid] + kids

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        self.pids()  # remember the children before the parent goes
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        for kid in self.seen_children:  # e.g. an nginx worker orphaned by a killed master
            try:
                if Path(f"/proc/{kid}/cmdline").read_bytes().startswith(b"nginx"):
                    os.kill(kid, signal.SIGKILL)
            except OSError:
                pass
        self.log_file.close()
        if self in Proc.running:
            Proc.running.remove(self)


def stop_all() -> None:
    for proc in reversed(list(Proc.running)):
        proc.stop()


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime (all threads) of the given processes, in clock ticks."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total


def cpu_jiffies(cpu: str) -> tuple[int, int]:
    """(busy, total) clock ticks of one CPU so far, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
            return sum(v) - v[3] - v[4], sum(v)
    return 0, 0


def machine_busy_pct(seconds: float = 2.0) -> float:
    """How busy all CPUs are (anything: other people's builds and tests) over `seconds`."""
    def sample() -> tuple[int, int]:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(v) - v[3] - v[4], sum(v)
    (b0, t0), _ = sample(), time.sleep(seconds)
    b1, t1 = sample()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


def rss_kib(pids: list[int]) -> int:
    """Sum of Rss over the processes, from /proc/PID/smaps_rollup."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for programs that cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str = "/", method: str = "GET", body: bytes = b"",
             headers: dict[str, str] | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """One request on a fresh connection; returns (status, body)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_until(what: str, check, timeout: float = 10.0, proc: Proc | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and not proc.alive():
            raise BenchError(f"{what}: {proc.name} exited early:\n{proc.log_tail()}")
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.05)
    tail = f":\n{proc.log_tail()}" if proc else ""
    raise BenchError(f"timed out waiting for {what}{tail}")


# --------------------------------------------------------------------------------------
# Configs: one worker each, upstream keep-alive (UPSTREAM_POOL idle connections per
# worker), no access log, the same forwarding headers, nothing spilled to disk.
# --------------------------------------------------------------------------------------

# Idle upstream connections each proxy may keep. Larger than wrk's 50 connections, so in
# steady state no proxy closes and reopens upstream connections because its pool is full
# (with 32, 12–20 % of requests paid for a connect + close in every proxy).
UPSTREAM_POOL = 64

SMALL_BODY = "hello from the upstream\n"


def nginx_common(work: Path, name: str) -> str:
    return f"""worker_processes 1;
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 10000; }}
"""


def nginx_temp_paths(work: Path, name: str) -> str:
    return "".join(f"  {kind}_temp_path {work}/{name}-{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def upstream_nginx_conf(work: Path, port: int) -> str:
    """The fast upstream: `return 200` and a 64 KiB static file."""
    return nginx_common(work, "upstream") + f"""http {{
  access_log off;
  default_type text/plain;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_buffer_size 64k;
  sendfile on;
{nginx_temp_paths(work, "upstream")}  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = / {{ return 200 "{SMALL_BODY.strip()}\\n"; }}
    location = /64k {{ root {work}/www; }}
    location = /post {{ return 200 "ok\\n"; }}
  }}
}}
"""


def nginx_proxy_conf(work: Path, name: str, port: int, up: int, ws: int,
                     tls: dict | None) -> str:
    forward = """      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
"""
    listen = f"listen 127.0.0.1:{port} backlog=4096;"
    if tls:
        listen = (f"listen 127.0.0.1:{port} ssl backlog=4096;\n"
                  f"    ssl_certificate {tls['cert']};\n    ssl_certificate_key {tls['key']};\n"
                  f"    ssl_protocols TLSv1.2 TLSv1.3;  # 1.22's default lacks TLSv1.3\n"
                  f"    ssl_session_cache off; ssl_session_tickets on;  # as Gatehouse: tickets only")
    return nginx_common(work, name) + f"""http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_buffer_size 64k;
  client_max_body_size 1m;
{nginx_temp_paths(work, name)}  upstream app {{
    server 127.0.0.1:{up};
    keepalive {UPSTREAM_POOL};
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }}
  upstream ws {{ server 127.0.0.1:{ws}; }}
  server {{
    {listen}
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
{forward}      proxy_max_temp_file_size 0;
    }}
    location /ws {{
      proxy_pass http://ws;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
{forward}      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }}
  }}
}}
"""


def haproxy_conf(work: Path, port: int, up: int, ws: int, tls: dict | None) -> str:
    bind = f"bind 127.0.0.1:{port}"
    if tls:
        bind += f" ssl crt {tls['pem']}"  # stateless tickets on (default), as Gatehouse
    return f"""global
  nbthread 1
  maxconn 9000
  tune.ssl.cachesize 0  # no server-side session cache; Gatehouse has none either

defaults
  mode http
  option http-keep-alive
  option forwardfor
  http-reuse always
  maxconn 9000
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 60s
  timeout tunnel 1h

frontend fe
  {bind}
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Proto {"https" if tls else "http"}
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  use_backend ws if {{ path_beg /ws }}
  default_backend app

backend app
  server up 127.0.0.1:{up} pool-max-conn {UPSTREAM_POOL}

backend ws
  server ws 127.0.0.1:{ws}
"""


# The [listener.tls] shape follows config::ListenerTls (config/config.hpp). If the loader
# ends up spelling it differently, adjust it here: the TLS probe reports `check` errors.
GATEHOUSE_TLS_TOML = """
[listener.tls]
certificates = [{{ cert = "{cert}", key = "{key}" }}]
"""


def gatehouse_conf(workers: int, up: int, ws: int, tls: dict | None) -> str:
    tls_part = GATEHOUSE_TLS_TOML.format(**tls) if tls else ""
    return f"""[server]
workers = {workers}
max_connections = 10000

[access_log]
format = "off"

[[listener]]
address = "127.0.0.1:0"
{tls_part}
[[upstream]]
name = "app"
servers = ["127.0.0.1:{up}"]
keepalive = {UPSTREAM_POOL}

[[upstream]]
name = "ws"
servers = ["127.0.0.1:{ws}"]

[[route]]
path_prefix = "/ws"
upstream = "ws"

[[route]]
path_prefix = "/"
upstream = "app"
"""


# --------------------------------------------------------------------------------------
# Targets: a running proxy (or the upstream itself, "direct") and the port wrk hits
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    name: str
    port: int
    proc: Proc | None  # None for "direct": no proxy CPU to count
    tls: bool = False
    label: str = ""  # how reports name it; defaults to name

    def __post_init__(self):
        self.label = self.label or self.name

    def pids(self) -> list[int]:
        return self.proc.pids() if self.proc else []

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-", dir="/tmp"))
        self.work.chmod(0o755)  # nginx workers run as nobody and read www/ from here
        # Others rebuild build/ while we run: test a private copy, so that every scenario
        # runs the same binary, and describe that copy (commit and tree state right now).
        self.gatehouse_bin = str(self.work / "gatehouse")
        shutil.copy2(args.gatehouse, self.gatehouse_bin)
        self.gatehouse_desc = describe_gatehouse(Path(args.gatehouse), Path(self.gatehouse_bin))
        self.configs: dict[str, str] = {}  # name -> text, for the report
        self.commands: dict[str, str] = {}  # what -> exact command line, for the report
        self.up_port = 0
        self.ws_port = 0
        self.problems: list[str] = []  # errors seen in runs; a non-empty list fails the run
        self.tls_files: dict | None = None

    # ---- starting things -------------------------------------------------------------

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        self.configs.setdefault(name, text)
        return path

    def start_upstreams(self) -> None:
        www = self.work / "www"
        www.mkdir()
        (www / "64k").write_bytes(bytes(range(256)) * 256)  # 65,536 bytes
        (www / "64k").chmod(0o644)
        www.chmod(0o755)
        for attempt in range(3):
            self.up_port = free_port()
            conf = self.write("upstream.conf", upstream_nginx_conf(self.work, self.up_port))
            proc = Proc("upstream", ["nginx", "-e", str(self.work / "upstream.log"), "-p",
                                     str(self.work), "-c", str(conf)], self.work, LOAD_CPU)
            try:
                wait_until("upstream nginx", lambda: http_get(self.up_port)[0] == 200,
                           proc=proc)
                self.upstream = Target("direct", self.up_port, None)
                self.upstream_proc = proc
                self.commands["upstream"] = " ".join(proc.argv)
                break
            except BenchError:
                proc.stop()
                if attempt == 2:
                    raise
        port_file = self.work / "ws-upstream.port"
        self.ws_proc = Proc("ws-upstream", [PYTHON, str(BENCH / "ws_upstream.py"),
                                            "--port-file", str(port_file)], self.work, LOAD_CPU)
        wait_until("ws upstream", port_file.exists, proc=self.ws_proc)
        self.ws_port = int(port_file.read_text())

    def start_proxy(self, kind: str, workers: int = 1, cpus: str | None = PROXY_CPU,
                    tls: bool = False, label: str | None = None) -> Target:
        """Starts one proxy and waits until it answers through to the upstream."""
        label = label or kind
        tls_files = self.tls_files if tls else None
        for attempt in range(3):
            if kind == "gatehouse":
                conf = self.write(f"{label}.toml", gatehouse_conf(workers, self.up_port,
                                                                  self.ws_port, tls_files))
                ready = self.work / f"{label}.ready"
                ready.unlink(missing_ok=True)
                proc = Proc(label, [self.gatehouse_bin, "-c", str(conf), "--ready-file",
                                    str(ready)], self.work, cpus)

                def bound_port():
                    match = re.search(r"^listener \S+:(\d+)$", ready.read_text(), re.M)
                    return int(match.group(1)) if match else None
                port = wait_until(f"{label} ready file", bound_port, proc=proc)
            else:
                port = free_port()
                if kind == "nginx":
                    conf = self.write(f"{label}.conf", nginx_proxy_conf(
                        self.work, label, port, self.up_port, self.ws_port, tls_files))
                    argv = ["nginx", "-e", str(self.work / f"{label}.log"), "-p",
                            str(self.work), "-c", str(conf)]
                else:
                    conf = self.write(f"{label}.cfg", haproxy_conf(
                        self.work, port, self.up_port, self.ws_port, tls_files))
                    argv = ["haproxy", "-db", "-f", str(conf)]
                proc = Proc(label, argv, self.work, cpus)
            target = Target(kind, port, proc, tls, label)
            try:
                wait_until(f"{label} answering", lambda: self.probe_ok(target), proc=proc)
                self.commands[label] = " ".join(proc.argv)
                return target
            except BenchError:
                proc.stop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def probe_ok(self, target: Target) -> bool:
        if target.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", target.port), timeout=2) as raw:
                with ctx.wrap_socket(raw) as tls:
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n")
                    return tls.recv(64).startswith(b"HTTP/1.1 200")
        return http_get(target.port)[0] == 200

    def verify_paths(self, target: Target) -> None:
        """Every scenario's request answers as expected through this target."""
        status, body = http_get(target.port, "/")
        if status != 200 or body != SMALL_BODY.encode():
            raise BenchError(f"{target.name}: GET / gave {status} {body[:80]!r}")
        status, body = http_get(target.port, "/64k")
        if status != 200 or len(body) != 65536:
            raise BenchError(f"{target.name}: GET /64k gave {status}, {len(body)} bytes")
        status, body = http_get(target.port, "/post", "POST", b"x" * 16384,
                                {"Content-Type": "application/octet-stream"})
        if status != 200:
            raise BenchError(f"{target.name}: POST /post gave {status} {body[:80]!r}")

    # ---- load ------------------------------------------------------------------------

    def wrk(self, target: Target, path: str, duration: int, conns: int, script: str | None,
            cpus: str | None = LOAD_CPU, threads: int = 1, record: bool = True) -> dict:
        scheme = "https" if target.tls else "http"
        argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
        if script:
            argv += ["-s", str(BENCH / script)]
        argv.append(f"{scheme}://127.0.0.1:{target.port}{path}")
        if cpus:
            argv = ["taskset", "-c", cpus] + argv
        pids = target.pids()
        ticks0, cpu0_0, t0 = cpu_ticks(pids), cpu_jiffies(PROXY_CPU), time.monotonic()
        try:
            out = subprocess.run(argv, capture_output=True, text=True,
                                 timeout=duration + 30).stdout
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"wrk did not finish: {' '.join(argv)}") from exc
        ticks1, cpu0_1, elapsed = cpu_ticks(pids), cpu_jiffies(PROXY_CPU), time.monotonic() - t0
        result = parse_wrk(out)
        # Noise gauge: how busy the proxy's CPU was with anything but the proxy (other
        # people's compilers, the kernel for other tasks). Meaningful only when pinned.
        total = cpu0_1[1] - cpu0_0[1]
        if cpus == LOAD_CPU and total > 0 and pids:  # direct: CPU 0 idle, others take it
            result["others_pct"] = max(0.0, 100.0 * (cpu0_1[0] - cpu0_0[0] - (ticks1 - ticks0)) / total)
        else:
            result["others_pct"] = None
        result["cmd"] = " ".join(argv)
        result["proxy_cpu_s"] = (ticks1 - ticks0) / CLK_TCK if pids else None
        result["wall_s"] = elapsed
        if result["requests"] and pids:
            result["cpu_us"] = result["proxy_cpu_s"] * 1e6 / result["requests"]
        else:
            result["cpu_us"] = None
        if record and (result["errors"] or result["non2xx"] or not result["requests"]):
            self.problems.append(f"{target.name} {path}: {result['requests']} requests, "
                                 f"{result['non2xx']} non-2xx, socket errors "
                                 f"{result['errors']} ({result['cmd']})")
        return result


def parse_wrk(out: str) -> dict:
    def latency(pct: str) -> float | None:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    req = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(req.group(1)) if req else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "raw": out,
    }


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Scenario:
    key: str
    title: str
    path: str
    script: str | None = None


LOAD_SCENARIOS = [
    Scenario("small", "1. Small GET, keep-alive", "/"),
    Scenario("64k", "2. 64 KiB responses", "/64k"),
    Scenario("post16k", "3. POST 16 KiB bodies", "/post", "post16k.lua"),
]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict]) -> dict:
    return {
        "rps": median(r["rps"] for r in runs),
        "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "p50_ms": median(r["p50_ms"] for r in runs),
        "p99_ms": median(r["p99_ms"] for r in runs),
        "cpu_us": median(r["cpu_us"] for r in runs),
        "others_pct": median(r.get("others_pct") for r in runs),
        "errors": sum(r["errors"] + r["non2xx"] for r in runs),
        "runs": runs,
    }


def interleaved(bench: Bench, targets: list[Target], sc: Scenario, rounds: int,
                cpus: str | None = LOAD_CPU) -> dict[str, dict]:
    """Rounds of A B C D …: every target once per round, so slow drifts hit all alike."""
    a = bench.args
    for t in targets if not a.quick else []:  # warm-up (pools, caches, page faults)
        bench.wrk(t, sc.path, 1, a.connections, sc.script, cpus=cpus, record=False)
    runs: dict[str, list[dict]] = {t.label: [] for t in targets}
    for r in range(rounds):
        for t in targets:
            res = bench.wrk(t, sc.path, a.duration, a.connections, sc.script, cpus=cpus)
            runs[t.label].append(res)
            cpu = f", proxy {res['cpu_us']:.1f} µs/req" if res["cpu_us"] else ""
            if res["others_pct"] is not None:
                cpu += f", CPU 0 {res['others_pct']:.0f} % others"
            log(f"  {sc.key} round {r + 1}/{rounds} {t.label:<14} {res['rps']:>10,.0f} req/s"
                f"  p50 {fmt_ms(res['p50_ms'])}  p99 {fmt_ms(res['p99_ms'])}{cpu}")
    return {label: summarize(rs) for label, rs in runs.items()}


def idle_memory(bench: Bench, target: Target, count: int, websocket: bool) -> dict:
    """RSS of the proxy idle, then with `count` idle client connections (or tunnels)."""
    for _ in range(10):  # first requests: lazy initialisation, upstream pool
        http_get(target.port)
    time.sleep(0.5)
    pids = target.pids()
    base = rss_kib(pids)
    argv = [PYTHON, str(BENCH / "idle_conns.py"), "--port", str(target.port), "-n", str(count),
            "--hold", "120"]
    if websocket:
        argv += ["--websocket", "--path", "/ws"]
    client = Proc(f"idle-client-{target.label}", argv, bench.work, LOAD_CPU,
                  stdin=subprocess.PIPE, capture_stdout=True)
    bench.commands["idle client"] = " ".join(client.argv)
    try:
        line = client.popen.stdout.readline()  # bounded by --open-timeout in the client
        m = re.match(r"READY ok=(\d+) failed=(\d+)", line)
        if not m:
            raise BenchError(f"idle client for {target.label}: {line!r} {client.log_tail()}")
        ok, failed = int(m.group(1)), int(m.group(2))
        time.sleep(1.0)  # let the proxy settle (timers, pools)
        loaded = rss_kib(target.pids())
    finally:
        client.popen.stdin.close()
        client.popen.wait(timeout=30)
        client.stop()
    if failed:
        bench.problems.append(f"{target.label}: {failed} of {count} idle "
                              f"{'tunnels' if websocket else 'connections'} failed")
    return {"base_kib": base, "loaded_kib": loaded, "ok": ok, "failed": failed,
            "per_conn_kib": (loaded - base) / ok if ok else None}


# ---- hooks: TLS and WebSocket scenarios, run once a probe finds Gatehouse supports them


def make_tls_files(bench: Bench) -> dict:
    """A throw-away ECDSA P-256 self-signed certificate for all three proxies."""
    cert, key, pem = (bench.work / n for n in ("cert.pem", "key.pem", "combined.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=bench.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    pem.write_text(cert.read_text() + key.read_text())
    for p in (cert, key, pem):
        p.chmod(0o644)
    return {"cert": str(cert), "key": str(key), "pem": str(pem)}


def probe_gatehouse_tls(bench: Bench) -> tuple[bool, str]:
    """Supported = `gatehouse check` accepts a TLS listener and it completes a handshake."""
    bench.tls_files = bench.tls_files or make_tls_files(bench)
    conf = bench.work / "tls-probe.toml"
    conf.write_text(gatehouse_conf(1, bench.up_port, bench.ws_port, bench.tls_files))
    check = subprocess.run([bench.gatehouse_bin, "check", "-c", str(conf)],
                           capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        first = (check.stderr.strip().splitlines() or ["?"])[0].replace(str(bench.work), "…")
        return False, f"`gatehouse check` rejects a TLS listener ({first})"
    ready = bench.work / "tls-probe.ready"
    proc = Proc("gatehouse-tls-probe", [bench.gatehouse_bin, "-c", str(conf), "--ready-file",
                                        str(ready)], bench.work, PROXY_CPU)
    try:
        text = wait_until("TLS probe ready file", lambda: ready.exists() and ready.read_text(),
                          proc=proc)
        port = int(re.search(r"^listener \S+:(\d+)$", text, re.M).group(1))
        if not bench.probe_ok(Target("gatehouse", port, proc, tls=True)):
            return False, "config accepted, but no HTTP 200 over TLS from the listener"
    except (BenchError, OSError, AttributeError) as exc:
        why = str(exc).splitlines()[0][:120]
        return False, f"config accepted, but the listener does not complete a TLS handshake ({why})"
    finally:
        proc.stop()
    return True, "TLS listener accepted and answered over TLS"


def probe_gatehouse_websocket(bench: Bench, target: Target) -> tuple[bool, str]:
    """Supported = an Upgrade request through Gatehouse gets 101 and the tunnel echoes."""
    try:
        with socket.create_connection(("127.0.0.1", target.port), timeout=3) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: bench.test\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(4096)
                if not data:
                    break
                head += data
            if not head.startswith(b"HTTP/1.1 101"):
                status_line = head.split(b"\r\n")[0]
                return False, f"Upgrade answered {status_line!r}, not 101"
            rest = head.split(b"\r\n\r\n", 1)[1]
            sock.sendall(b"tunnel-probe")
            while len(rest) < 12:
                data = sock.recv(4096)
                if not data:
                    break
                rest += data
            if rest != b"tunnel-probe":
                return False, f"101 received but the tunnel echoed {rest!r}"
    except OSError as exc:
        return False, f"WebSocket probe failed: {exc}"
    return True, "Upgrade through Gatehouse got 101 and the tunnel echoed bytes"


def scenario_https_keepalive(bench: Bench, results: dict) -> None:
    """Hook: small GET over HTTPS keep-alive (wrk https://), like scenario 1."""
    kinds = tls_kinds(bench, results, "https")
    if not kinds:
        return
    targets = [bench.start_proxy(k, tls=True, label=f"{k}-tls") for k in kinds]
    for t in targets:
        t.label = t.name
    try:
        sc = Scenario("https", "HTTPS keep-alive small GET", "/")
        results["https"] = interleaved(bench, targets, sc, bench.args.rounds)
    finally:
        for t in targets:
            t.stop()


def tls_parameters(port: int) -> str:
    """Protocol and cipher a default client negotiates (to show all three proxies match)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with ctx.wrap_socket(raw) as tls:
            return f"{tls.version()} {tls.cipher()[0]}"


def scenario_tls_handshakes(bench: Bench, results: dict) -> None:
    """Hook: full TLS handshakes per second (parallel `openssl s_time -new`), and the proxy
    CPU per handshake (the capacity: 1 s ÷ that = handshakes/s one core could do)."""
    kinds = tls_kinds(bench, results, "handshake")
    if not kinds:
        return
    clients = 2 if bench.args.quick else 4  # one s_time is latency-bound, not CPU-bound
    targets = [bench.start_proxy(k, tls=True, label=f"{k}-tls") for k in kinds]
    results["tls_params"] = {k: tls_parameters(t.port) for k, t in zip(kinds, targets)}
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    try:
        for r in range(bench.args.rounds):
            for kind, t in zip(kinds, targets):
                argv = ["taskset", "-c", LOAD_CPU, "openssl", "s_time", "-connect",
                        f"127.0.0.1:{t.port}", "-new", "-time", str(bench.args.duration)]
                bench.commands["tls handshakes"] = f"{clients} × in parallel: {' '.join(argv)}"
                ticks0, t0 = cpu_ticks(t.pids()), time.monotonic()
                procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          text=True) for _ in range(clients)]
                outs = [p.communicate(timeout=bench.args.duration + 30)[0] for p in procs]
                wall = time.monotonic() - t0
                cpu_s = (cpu_ticks(t.pids()) - ticks0) / CLK_TCK
                n = sum(int(m.group(1)) for out in outs
                        for m in [re.search(r"(\d+) connections in \d+ real seconds", out)] if m)
                res = {"rps": n / wall, "handshakes": n, "cpu_us": cpu_s * 1e6 / n if n else None}
                if not n:
                    bench.problems.append(f"{kind}: openssl s_time completed no handshake")
                runs[kind].append(res)
                log(f"  tls round {r + 1} {kind:<10} {res['rps']:>8,.0f} handshakes/s, "
                    f"proxy {fmt_num(res['cpu_us'], 0)} µs CPU each")
    finally:
        for t in targets:
            t.stop()
    results["handshake"] = {k: {"rps": median(x["rps"] for x in v),
                                "cpu_us": median(x["cpu_us"] for x in v), "runs": v}
                            for k, v in runs.items()}


def tls_kinds(bench: Bench, results: dict, key: str) -> list[str]:
    """Which proxies a TLS scenario runs on; [] (and a skip note) while Gatehouse lacks TLS."""
    if "tls_probe" not in results:
        results["tls_probe"] = probe_gatehouse_tls(bench)
    supported, why = results["tls_probe"]
    if supported:
        return list(PROXIES)
    if bench.args.hooks_without_gatehouse:
        results.setdefault("notes", []).append(
            f"{key}: Gatehouse left out ({why}); nginx and HAProxy only (--hooks-without-gatehouse)")
        bench.tls_files = bench.tls_files or make_tls_files(bench)
        return ["nginx", "haproxy"]
    results.setdefault("skipped", {})[key] = f"skipped: {why}"
    return []


def scenario_idle_websockets(bench: Bench, results: dict, gatehouse: Target) -> None:
    """Hook: RSS per idle WebSocket tunnel (client and upstream side both held open)."""
    supported, why = probe_gatehouse_websocket(bench, gatehouse)
    results["ws_probe"] = (supported, why)
    if not supported and not bench.args.hooks_without_gatehouse:
        results.setdefault("skipped", {})["ws"] = f"skipped: {why}"
        return
    kinds = list(PROXIES) if supported else ["nginx", "haproxy"]
    results["ws"] = memory_scenario(bench, kinds, websocket=True)


def memory_scenario(bench: Bench, kinds: list[str], websocket: bool) -> dict:
    out = {}
    for kind in kinds:  # a fresh process each, so earlier load leaves no cached memory
        target = bench.start_proxy(kind, label=f"{kind}-mem")
        target.label = kind
        try:
            out[kind] = idle_memory(bench, target, bench.args.idle, websocket)
        finally:
            target.stop()
        m = out[kind]
        log(f"  {'ws' if websocket else 'idle'} {kind:<10} idle {m['base_kib'] / 1024:.1f} MiB, "
            f"+{m['ok']} → {m['loaded_kib'] / 1024:.1f} MiB = "
            f"{fmt_num(m['per_conn_kib'], 2)} KiB each")
    return out


def wrk_in_background(bench: Bench, target: Target, sc: Scenario, seconds: int) -> Proc:
    argv = ["wrk", "-t1", f"-c{bench.args.connections}", f"-d{seconds}s"]
    argv += ["-s", str(BENCH / sc.script)] if sc.script else []
    argv.append(f"http://127.0.0.1:{target.port}{sc.path}")
    return Proc(f"profile-wrk-{target.label}", argv, bench.work, LOAD_CPU)


def syscalls_per_request(bench: Bench, sc: Scenario, seconds: int) -> None:
    """Syscalls per request of each proxy (perf stat on the syscalls:sys_enter_* tracepoints).

    The count of requests comes from the upstream side being identical for all: wrk's
    req/s over the window. Tracing slows the proxies down; the counts per request hold.
    """
    print(f"\n## {sc.title}: syscalls per request (perf stat, {seconds} s window)\n")
    for kind in PROXIES:
        target = bench.start_proxy(kind, label=f"{kind}-syscalls")
        load = wrk_in_background(bench, target, sc, seconds + 4)
        try:
            time.sleep(2)
            pids = ",".join(str(p) for p in target.pids())
            stat = subprocess.run(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_*", "-p", pids,
                                   "--", "sleep", str(seconds)], capture_output=True, text=True,
                                  timeout=seconds + 60)
            load.popen.wait(timeout=seconds + 60)
        finally:
            load.stop()
            target.stop()
        m = re.search(r"Requests/sec:\s+([\d.]+)", load.log_path.read_text())
        requests = float(m.group(1)) * seconds if m else 0
        counts = {}
        for line in stat.stderr.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[0].isdigit() and int(f[0]) > 0:
                counts[f[2].removeprefix("syscalls:sys_enter_")] = int(f[0])
        if not requests or not counts:
            print(f"{kind:<10} no data ({stat.stderr.strip()[:200]})")
            continue
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
        print(f"{kind:<10} {sum(counts.values()) / requests:5.2f} per request: "
              + ", ".join(f"{name} {n / requests:.2f}" for name, n in top))


def profile_gatehouse(bench: Bench, key: str, seconds: int) -> None:
    """Syscalls per request of all three proxies, then perf record (DWARF call graphs) of a
    pinned Gatehouse under one scenario's wrk load."""
    sc = next(s for s in LOAD_SCENARIOS if s.key == key)
    syscalls_per_request(bench, sc, seconds)
    target = bench.start_proxy("gatehouse")
    bench.verify_paths(target)
    load = wrk_in_background(bench, target, sc, seconds + 4)
    time.sleep(2)  # past connection set-up
    data = bench.work / f"perf-{key}.data"
    try:
        subprocess.run(["perf", "record", "-F", "999", "--call-graph", "dwarf,16384", "-o",
                        str(data), "-p", str(target.proc.pid), "--", "sleep", str(seconds)],
                       capture_output=True, timeout=seconds + 120)
        load.popen.wait(timeout=seconds + 60)
    finally:
        load.stop()
        target.stop()
    user_dsos = f"{Path(bench.gatehouse_bin).name},libc.so.6,libuv.so.1.0.0,libstdc++.so.6.0.30"
    views = {"by DSO": ["--no-children", "-g", "none", "--sort", "dso"],
             "self, top symbols": ["--no-children", "-g", "none"],
             "self, user space only (% of user-space samples)":
                 ["--no-children", "-g", "none", "--dsos", user_dsos, "--percentage", "relative"],
             "inclusive (children)": ["--children", "-g", "none"]}
    for title, opts in views.items():
        out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", "dso,symbol",
                              "--percent-limit", "1", *opts],
                             capture_output=True, text=True, timeout=600).stdout
        lines = [re.sub(r"(\s+-)*\s*$", "", ln) for ln in out.splitlines()
                 if ln.strip() and not ln.startswith("#")]
        print(f"\n## {sc.title}: Gatehouse CPU profile, {title}\n" + "\n".join(lines[:30]))
    print(f"\nperf data: {data}  (perf report -i {data})")


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def fmt_num(v, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def fmt_pct(v) -> str:
    return "—" if v is None else f"{v:.0f} %"


def ratio(a, b) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}×"


def best_other(summary: dict, key: str, higher_is_better: bool):
    values = [summary[k][key] for k in ("nginx", "haproxy")
              if k in summary and summary[k][key] is not None]
    if not values:
        return None
    return max(values) if higher_is_better else min(values)


def tool_version(argv: list[str], pattern: str = r"(\S.*)") -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (p.stdout + p.stderr).strip()
    m = re.search(pattern, text)
    return m.group(1).strip() if m else text.splitlines()[0] if text else "?"


def describe_gatehouse(original: Path, copy: Path) -> str:
    """Version, build type, binary time and hash, and the commit the tree was at."""
    git = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    build_type = "?"
    cache = original.parent.parent / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", cache.read_text(), re.M)
        build_type = m.group(1) if m else "?"
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(original.stat().st_mtime, datetime.timezone.utc)
    return (f"{tool_version([str(copy), 'version'])} ({build_type}), {original} built "
            f"{built:%H:%M UTC}, sha256 {digest}…; tree at commit {git}"
            f"{' + uncommitted changes' if dirty else ''} when the run started")


def machine_info(bench: Bench) -> list[tuple[str, str]]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return [
        ("Date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu}, {os.cpu_count()} CPUs"),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Memory", f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB"),
        ("Gatehouse", bench.gatehouse_desc),
        ("nginx", tool_version(["nginx", "-v"], r"nginx version: (\S+)")
         + f" ({debian_package('nginx-light') or debian_package('nginx') or '?'})"),
        ("HAProxy", tool_version(["haproxy", "-v"], r"HAProxy version (\S+)")),
        ("wrk", tool_version(["wrk", "-v"], r"(wrk \S+)")),
        ("OpenSSL", tool_version(["openssl", "version"])),
        ("Python", platform.python_version()),
    ]


def debian_package(name: str) -> str | None:
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", name],
                       capture_output=True, text=True)
    if p.returncode == 0 and p.stdout.startswith("install ok installed"):
        return f"{name} {p.stdout.split()[-1]}"
    return None


def load_table(summary: dict, labels: list[str]) -> list[str]:
    rows = ["| target | req/s (median) | req/s min–max | p50 | p99 | proxy CPU µs/req | "
            "CPU 0 busy with others | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label in labels:
        if label not in summary:
            continue
        s = summary[label]
        rows.append(f"| {label} | {fmt_num(s['rps'])} | {fmt_num(s['rps_min'])}–"
                    f"{fmt_num(s['rps_max'])} | {fmt_ms(s['p50_ms'])} | {fmt_ms(s['p99_ms'])} | "
                    f"{fmt_num(s['cpu_us'], 1)} | {fmt_pct(s['others_pct'])} | {s['errors']} |")
    return rows


def ratio_line(summary: dict) -> str:
    g = summary.get("gatehouse")
    if not g:
        return ""
    rps_best = best_other(summary, "rps", True)
    parts = [f"req/s {ratio(g['rps'], rps_best)}",
             f"p50 {ratio(g['p50_ms'], best_other(summary, 'p50_ms', False))}",
             f"p99 {ratio(g['p99_ms'], best_other(summary, 'p99_ms', False))}",
             f"CPU/req {ratio(g['cpu_us'], best_other(summary, 'cpu_us', False))}"]
    line = "Gatehouse vs the better of nginx/HAProxy: " + ", ".join(parts)
    if "direct" in summary:
        line += f". Gatehouse vs direct: req/s {ratio(g['rps'], summary['direct']['rps'])}"
    return line + "."


def memory_table(mem: dict, count: int, what: str) -> list[str]:
    rows = [f"| proxy | idle RSS | RSS with {count:,} idle {what} | per {what[:-1]} | vs best other |",
            "| --- | ---: | ---: | ---: | ---: |"]
    others = [m["per_conn_kib"] for k, m in mem.items() if k != "gatehouse" and m["per_conn_kib"]]
    best = min(others) if others else None
    for kind, m in mem.items():
        vs = ratio(m["per_conn_kib"], best) if kind == "gatehouse" else ""
        fail = f" ({m['failed']} failed)" if m["failed"] else ""
        rows.append(f"| {kind} | {m['base_kib'] / 1024:.1f} MiB | {m['loaded_kib'] / 1024:.1f} MiB"
                    f"{fail} | {fmt_num(m['per_conn_kib'], 2)} KiB | {vs} |")
    return rows


def handshake_row(L: list[str], h: dict | None) -> None:
    if h and "gatehouse" in h:
        L.append(f"| 7. TLS handshakes/s (hook) | {fmt_num(h['gatehouse']['rps'])} | "
                 f"{fmt_num(h.get('nginx', {}).get('rps'))} | "
                 f"{fmt_num(h.get('haproxy', {}).get('rps'))} | | "
                 f"{ratio(h['gatehouse']['rps'], best_other(h, 'rps', True))} | | "
                 f"{ratio(h['gatehouse']['cpu_us'], best_other(h, 'cpu_us', False))} | |")


def write_report(bench: Bench, results: dict, info: list[tuple[str, str]], started: float,
                 loads: tuple[str, str]) -> str:
    a = bench.args
    mode = "quick (CI smoke: numbers are indicative only)" if a.quick else "full"
    L = ["# Gatehouse benchmark results", "",
         f"Written by `bench/run.py{''.join(' ' + x for x in sys.argv[1:])}` ({mode}); "
         f"{(time.monotonic() - started) / 60:.1f} minutes. How to read it: `bench/README.md`.", "",
         "| | |", "| --- | --- |"]
    L += [f"| {k} | {v} |" for k, v in info]
    L += [f"| Method | {a.rounds} interleaved round(s) × {a.duration} s per target; proxy pinned "
          f"to CPU {PROXY_CPU}, wrk + upstream + clients to CPU {LOAD_CPU}; one worker each |",
          f"| Load average | {loads[0]} at start, {loads[1]} at end |", ""]

    L += ["## Summary", "",
          "Ratios are Gatehouse ÷ the better of nginx and HAProxy (req/s: >1 = Gatehouse "
          "faster; latency and CPU/req: <1 = Gatehouse better) and Gatehouse ÷ direct "
          "(share of the upstream's own limit).", "",
          "| scenario | Gatehouse req/s | nginx | HAProxy | direct | GH ÷ best req/s | "
          "GH ÷ best p99 | GH ÷ best CPU/req | GH ÷ direct |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    def load_row(key: str, title: str) -> None:
        s = results.get(key)
        if not s or "gatehouse" not in s:
            return
        g = s["gatehouse"]
        get = lambda k: fmt_num(s[k]["rps"]) if k in s else "—"  # noqa: E731
        L.append(f"| {title} | {get('gatehouse')} | {get('nginx')} | {get('haproxy')} | "
                 f"{get('direct')} | {ratio(g['rps'], best_other(s, 'rps', True))} | "
                 f"{ratio(g['p99_ms'], best_other(s, 'p99_ms', False))} | "
                 f"{ratio(g['cpu_us'], best_other(s, 'cpu_us', False))} | "
                 f"{ratio(g['rps'], s['direct']['rps']) if 'direct' in s else '—'} |")

    def memory_row(key: str, title: str) -> None:
        m = results.get(key)
        if not m or "gatehouse" not in m:
            return
        others = [v["per_conn_kib"] for k, v in m.items() if k != "gatehouse" and v["per_conn_kib"]]
        L.append(f"| {title} | {fmt_num(m['gatehouse']['per_conn_kib'], 2)} | "
                 f"{fmt_num(m.get('nginx', {}).get('per_conn_kib'), 2)} | "
                 f"{fmt_num(m.get('haproxy', {}).get('per_conn_kib'), 2)} | | "
                 f"{ratio(m['gatehouse']['per_conn_kib'], min(others) if others else None)} "
                 f"(memory) | | | |")

    for sc in LOAD_SCENARIOS:
        load_row(sc.key, sc.title)
    if "scaling" in results:
        s = results["scaling"]
        L.append(f"| 4. Gatehouse 2 workers ÷ 1 worker (unpinned) | "
                 f"{fmt_num(s['gatehouse-2w']['rps'])} | | | | "
                 f"{ratio(s['gatehouse-2w']['rps'], s['gatehouse-1w']['rps'])} (2w ÷ 1w) | | "
                 f"{ratio(s['gatehouse-2w']['cpu_us'], s['gatehouse-1w']['cpu_us'])} | |")
    memory_row("idle", "5. KiB per idle connection")
    load_row("https", "6. HTTPS keep-alive (hook)")
    handshake_row(L, results.get("handshake"))
    memory_row("ws", "8. KiB per idle WebSocket tunnel (hook)")
    L.append("")

    for sc in LOAD_SCENARIOS:
        if sc.key not in results:
            continue
        L += [f"## {sc.title}", "",
              f"`{results[sc.key]['gatehouse']['runs'][0]['cmd']}` (same for every target, "
              "its port)", ""]
        L += load_table(results[sc.key], ["gatehouse", "nginx", "haproxy", "direct"])
        L += ["", ratio_line(results[sc.key]), ""]

    if "scaling" in results:
        s = results["scaling"]
        L += ["## 4. Gatehouse with 2 workers (scaling, unpinned)", "",
              "Gatehouse alone, 1 vs 2 workers, proxy and wrk unpinned (the upstream stays "
              "on CPU 1). On a 2-CPU machine wrk and the upstream need a CPU too, so "
              "the ceiling is well below 2×.", ""]
        L += load_table(s, ["gatehouse-1w", "gatehouse-2w"])
        L += ["", f"2 workers ÷ 1 worker: req/s "
                  f"{ratio(s['gatehouse-2w']['rps'], s['gatehouse-1w']['rps'])}, CPU/req "
                  f"{ratio(s['gatehouse-2w']['cpu_us'], s['gatehouse-1w']['cpu_us'])}.", ""]

    if "idle" in results:
        L += ["## 5. Idle keep-alive connections: memory", "",
              f"Fresh process each; {a.idle:,} client connections each send one GET / and stay "
              "open. RSS = sum of `Rss` in /proc/PID/smaps_rollup (nginx: master + worker); "
              "per connection = (RSS with connections − idle RSS) ÷ connections.", ""]
        L += memory_table(results["idle"], a.idle, "connections")
        L.append("")

    L += ["## Hooks: HTTPS, TLS handshakes, idle WebSocket tunnels", ""]
    for key, title in (("https", "HTTPS keep-alive (wrk https://)"),
                       ("handshake", "TLS handshake rate (openssl s_time -new)"),
                       ("ws", "Idle WebSocket tunnels: memory")):
        skipped = results.get("skipped", {}).get(key)
        if skipped:
            L.append(f"- **{title}**: {skipped}.")
        elif key == "https" and key in results:
            L += [f"- **{title}**:", ""] + load_table(results[key], list(PROXIES))
            L += ["", ratio_line(results[key]), ""]
        elif key == "handshake" and key in results:
            L.append(f"- **{title}**, parallel clients on CPU 1, medians (the clients, at ~3× the "
                     "proxy's CPU per handshake, are the limit of handshakes/s; compare the "
                     "proxy CPU per handshake): " + "; ".join(
                f"{k} {fmt_num(v['rps'])}/s, proxy {fmt_num(v['cpu_us'], 0)} µs CPU per "
                f"handshake" for k, v in results[key].items()) + ".")
        elif key == "ws" and key in results:
            L += [f"- **{title}** ({results['ws_probe'][1]}):", ""]
            L += memory_table(results["ws"], a.idle, "tunnels")
            L.append("")
    if "tls_params" in results:
        L.append("- Negotiated by a default client: " + "; ".join(
            f"{k} {v}" for k, v in results["tls_params"].items()) + ". Certificate: "
            "ECDSA P-256, self-signed; resumption by stateless tickets only (no session "
            "cache) everywhere, never used by `s_time -new`.")
    for note in results.get("notes", []):
        L.append(f"- {note}")
    L.append("")

    if bench.problems:
        L += ["## Problems seen during the run", ""] + [f"- {p}" for p in bench.problems] + [""]

    L += ["## Exact commands", "", "Ports were picked at run time; the temp dir was "
          f"`{bench.work}`.", "", "```"]
    L += [f"{k}: {v}" for k, v in bench.commands.items()]
    for sc in LOAD_SCENARIOS:
        if sc.key in results:
            for label, s in results[sc.key].items():
                L.append(f"{sc.key} {label}: {s['runs'][0]['cmd']}")
    L += ["```", ""]

    L += ["## Configs", "", "As generated for this run (the `-mem` instances of scenario 5 and "
          "`gatehouse-1w` differ only in port, pinning and worker count).", ""]
    for name, text in bench.configs.items():
        if any(part in name for part in ("probe", "-mem", "-1w")):
            continue
        L += [f"<details><summary>{name}</summary>", "", "```", text.rstrip(), "```", "",
              "</details>", ""]

    L += ["## Every run", "", "| scenario | target | round | req/s | p50 | p99 | CPU µs/req | "
          "CPU 0 busy with others |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key in [sc.key for sc in LOAD_SCENARIOS] + ["scaling", "https"]:
        for label, s in results.get(key, {}).items():
            for i, r in enumerate(s["runs"]):
                L.append(f"| {key} | {label} | {i + 1} | {fmt_num(r['rps'])} | "
                         f"{fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | "
                         f"{fmt_num(r['cpu_us'], 1)} | {fmt_pct(r.get('others_pct'))} |")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def check_tools() -> None:
    missing = [t for t in ("nginx", "haproxy", "wrk", "taskset", "openssl") if not shutil.which(t)]
    if missing:
        raise BenchError(f"missing: {', '.join(missing)}; install with: {INSTALL_HINT}")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("needs at least 2 CPUs (proxy on CPU 0, load on CPU 1)")


def build(args) -> None:
    """`cmake --build build -j2` for the proxy, retried while someone else's edit breaks it."""
    build_dir = Path(args.gatehouse).parent.parent
    for attempt in range(1, 4):
        log(f"building Gatehouse ({build_dir}), attempt {attempt}")
        p = subprocess.run(["cmake", "--build", str(build_dir), "-j2", "--target", "gatehouse"],
                           capture_output=True, text=True, timeout=1800)
        if p.returncode == 0:
            return
        print(p.stdout[-3000:], p.stderr[-3000:], sep="\n", file=sys.stderr)
        if attempt < 3:
            time.sleep(30)
    raise BenchError("build failed 3 times; fix it or run with --no-build")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: 1 round, 3 s runs, 20 connections, 500 idle")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, help="wrk -c (default 50)")
    parser.add_argument("--idle", type=int, help="idle connections for scenario 5 (default 4000)")
    parser.add_argument("--out", type=Path, help="report path (default bench/RESULTS.md, "
                        "bench/RESULTS-quick.md with --quick)")
    parser.add_argument("--gatehouse", type=Path, default=DEFAULT_BIN, help="binary to test")
    parser.add_argument("--no-build", action="store_true", help="do not run cmake --build first")
    parser.add_argument("--only", help="comma-separated subset: small,64k,post16k,scaling,idle,hooks")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    parser.add_argument("--wait-quiet", type=int, default=0, metavar="SECONDS",
                        help="before starting, wait up to SECONDS for the machine to be "
                             "less than 25%% busy")
    parser.add_argument("--profile", choices=[s.key for s in LOAD_SCENARIOS],
                        help="instead of the comparison: perf-profile Gatehouse under one "
                             "scenario (keeps the temp dir with perf.data)")
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument("--hooks-without-gatehouse", action="store_true",
                        help="run the TLS/WebSocket hooks on nginx and HAProxy even while "
                             "Gatehouse lacks the feature (to develop the hooks)")
    args = parser.parse_args()
    q = args.quick
    args.rounds = args.rounds or (1 if q else 3)
    args.duration = args.duration or (3 if q else 10)
    args.connections = args.connections or (20 if q else 50)
    args.idle = args.idle or (500 if q else 4000)
    args.out = args.out or BENCH / ("RESULTS-quick.md" if q else "RESULTS.md")
    only = set(args.only.split(",")) if args.only else None
    wanted = lambda key: only is None or key in only  # noqa: E731

    started = time.monotonic()
    waited = 0.0
    loads = [f"{os.getloadavg()[0]:.2f}", ""]
    bench = None
    atexit.register(stop_all)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(130))
    try:
        check_tools()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 2 * (args.idle or 0) + 1000
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        if not args.no_build:
            build(args)
        for _ in range(60):  # someone else's build may be relinking it right now
            if Path(args.gatehouse).exists():
                break
            time.sleep(2)
        else:
            raise BenchError(f"{args.gatehouse} not found; build it: cmake --build build -j2")
        busy = machine_busy_pct()
        deadline = time.monotonic() + args.wait_quiet
        while busy > 25 and time.monotonic() < deadline:
            log(f"machine {busy:.0f} % busy with other work; waiting (--wait-quiet)")
            time.sleep(10)
            busy = machine_busy_pct()
        if busy > 25:
            log(f"warning: the machine is {busy:.0f} % busy with other work: expect noisy "
                "req/s and latency; CPU µs/request holds up best")
        loads[0] += f" ({busy:.0f} % CPU busy before start)"
        waited = time.monotonic() - started
        bench = Bench(args)
        log(f"temp dir {bench.work}; {args.rounds} round(s) × {args.duration} s, "
            f"-c{args.connections}, {args.idle} idle connections")
        bench.start_upstreams()
        results: dict = {}
        if args.profile:
            if not shutil.which("perf"):
                raise BenchError("perf not found: apt-get install -y linux-perf")
            args.keep = True
            profile_gatehouse(bench, args.profile, args.profile_seconds)
            return 0

        targets = [bench.start_proxy(kind) for kind in PROXIES]
        for t in targets:
            bench.verify_paths(t)
        bench.verify_paths(bench.upstream)
        for sc in LOAD_SCENARIOS:
            if wanted(sc.key):
                log(f"scenario {sc.title}")
                results[sc.key] = interleaved(bench, targets + [bench.upstream], sc, args.rounds)

        gatehouse_pinned = targets[0]
        if wanted("hooks"):
            scenario_idle_websockets(bench, results, gatehouse_pinned)
        for t in targets:
            t.stop()

        if wanted("scaling"):
            log("scenario 4. Gatehouse 1 vs 2 workers, unpinned")
            scaled = []
            for workers in (1, 2):
                t = bench.start_proxy("gatehouse", workers=workers, cpus=None,
                                      label=f"gatehouse-{workers}w")
                scaled.append(t)
            results["scaling"] = interleaved(bench, scaled, LOAD_SCENARIOS[0], args.rounds,
                                             cpus=None)
            for t in scaled:
                t.stop()

        if wanted("idle"):
            log(f"scenario 5. {args.idle} idle keep-alive connections")
            results["idle"] = memory_scenario(bench, list(PROXIES), websocket=False)

        if wanted("hooks"):
            scenario_https_keepalive(bench, results)
            scenario_tls_handshakes(bench, results)

        loads[1] = f"{os.getloadavg()[0]:.2f}"
        info = machine_info(bench)
        report = write_report(bench, results, info, started + waited, tuple(loads))
        args.out.write_text(report)
        log(f"wrote {args.out}")
        summary = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
        print("## Summary" + summary)
        if bench.problems:
            log("problems:\n  " + "\n  ".join(bench.problems))
            return 1
        return 0
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        stop_all()
        if bench and not args.keep and not bench.problems:
            shutil.rmtree(bench.work, ignore_errors=True)
        elif bench:
            log(f"kept {bench.work} (configs and logs)")


if __name__ == "__main__":
    sys.exit(main())
