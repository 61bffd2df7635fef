#!/usr/bin/python3
"""Gatehouse vs nginx vs HAProxy on this machine, in one command; writes bench/RESULTS.md.

    bench/run.py            full run: 7 interleaved rounds of 10 s per target (~30 minutes)
    bench/run.py --quick    CI smoke run: 1 round of 2 s, fewer connections (~1 minute)

See bench/README.md for what every scenario measures and how to read the ratios.
Python 3 standard library only, plus three small C programs compiled at run time with the
system compiler (bench/ws_echo.c, bench/ws_load.c: WebSocket echo and message-rate client;
bench/body_sink.c: the upload upstream). The HTTP/2 scenarios live in bench/h2bench.py,
what both share in bench/benchlib.py.
Every process started here is stopped by its PID; every load is bounded in time (wrk -d,
openssl s_time -time, ws_load --duration, h2load -D) and in count (-c, -n); ports are
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h2bench
from benchlib import (BENCH, CLK_TCK, LOAD_CPU, PROXIES, PROXY_CPU, PYTHON, ROOT, BenchError,
                      CpuMeter, Proc, Target, cpu_ticks, fmt_ms, fmt_num, fmt_pct, fmt_paired,
                      free_port, http_get, interleave, load_table, log, machine_busy_pct, median,
                      memory_table, paired, paired_table, rss_kib, stop_all, summary_load_row,
                      summary_memory_row, wait_until)

DEFAULT_BIN = ROOT / "build" / "proxy" / "gatehouse"
INSTALL_HINT = ("apt-get install -y nginx-light haproxy wrk nghttp2-client   "
                "(or: GATEHOUSE_BENCH=1 scripts/setup.sh)")


# --------------------------------------------------------------------------------------
# Configs: one worker each, upstream keep-alive (UPSTREAM_POOL idle connections per
# worker), no access log, the same forwarding headers, nothing spilled to disk.
# --------------------------------------------------------------------------------------

# Idle upstream connections each proxy may keep. Larger than wrk's 50 connections and the
# h2 scenarios' 100 concurrent streams (-c10 -m10, -c100 -m1), so in steady state no proxy
# closes and reopens upstream connections because its pool is full (with 32, 12–20 % of
# requests paid for a connect + close in every proxy; with 64, the h2 scenarios churned).
UPSTREAM_POOL = 128

SMALL_BODY = "hello from the upstream\n"


def client_limit(idle: int) -> int:
    """Client connections each proxy is configured for: the idle scenarios' count plus
    headroom (Gatehouse max_connections, HAProxy maxconn; nginx worker_connections is twice
    this, as it counts upstream connections too and preallocates every one)."""
    return idle + 1000


def nginx_common(work: Path, name: str, clients: int) -> str:
    return f"""worker_processes 1;
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}.log warn;
worker_rlimit_nofile {2 * clients + 1000};
events {{ worker_connections {2 * clients}; }}
"""


def nginx_temp_paths(work: Path, name: str) -> str:
    return "".join(f"  {kind}_temp_path {work}/{name}-{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def upstream_nginx_conf(work: Path, port: int) -> str:
    """The fast upstream: `return 200` and a 64 KiB static file."""
    return nginx_common(work, "upstream", 5000) + f"""http {{
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
                     tls: dict | None, clients: int, h2: bool = False,
                     sink: int | None = None) -> str:
    """h2: offer HTTP/2 on the TLS listener (ALPN h2); sink: route /upload to that port
    (bench/body_sink.c), streamed like Gatehouse and HAProxy do (no request buffering)."""
    forward = """      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
"""
    listen = f"listen 127.0.0.1:{port} backlog=4096;"
    if tls:
        listen = (f"listen 127.0.0.1:{port} ssl{' http2' if h2 else ''} backlog=4096;\n"
                  f"    ssl_certificate {tls['cert']};\n    ssl_certificate_key {tls['key']};\n"
                  f"    ssl_protocols TLSv1.2 TLSv1.3;  # 1.22's default lacks TLSv1.3\n"
                  f"    ssl_session_cache off; ssl_session_tickets on;  # as Gatehouse: tickets only")
    if tls and h2:  # nginx's default is 128; Gatehouse and HAProxy allow 100
        listen += "\n    http2_max_concurrent_streams 100;"
    sink_upstream = sink_location = ""
    if sink:
        sink_upstream = (f"  upstream sink {{\n    server 127.0.0.1:{sink};\n"
                         f"    keepalive {UPSTREAM_POOL};\n    keepalive_requests 1000000;\n  }}\n")
        sink_location = f"""    location = /upload {{
      proxy_pass http://sink;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
{forward}      proxy_request_buffering off;  # stream the body, as Gatehouse and HAProxy do
    }}
"""
    return nginx_common(work, name, clients) + f"""http {{
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
{sink_upstream}  server {{
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
{sink_location}  }}
}}
"""


def haproxy_conf(work: Path, port: int, up: int, ws: int, tls: dict | None,
                 clients: int, h2: bool = False, sink: int | None = None) -> str:
    """h2: offer HTTP/2 on the TLS bind (2.6 needs the explicit alpn); sink: /upload there."""
    bind = f"bind 127.0.0.1:{port}"
    if tls:
        bind += f" ssl crt {tls['pem']}"  # stateless tickets on (default), as Gatehouse
        bind += " alpn h2,http/1.1" if h2 else ""
    sink_rule = "  use_backend sink if { path /upload }\n" if sink else ""
    sink_backend = (f"\nbackend sink\n  server sink 127.0.0.1:{sink} pool-max-conn "
                    f"{UPSTREAM_POOL}\n") if sink else ""
    # maxconn counts client connections; HAProxy sets its descriptor limit from it (2 each)
    return f"""global
  nbthread 1
  maxconn {clients}
  tune.ssl.cachesize 0  # no server-side session cache; Gatehouse has none either

defaults
  mode http
  option http-keep-alive
  option forwardfor
  http-reuse always
  maxconn {clients}
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
{sink_rule}  default_backend app

backend app
  server up 127.0.0.1:{up} pool-max-conn {UPSTREAM_POOL}

backend ws
  server ws 127.0.0.1:{ws}
{sink_backend}"""


# The [listener.tls] shape follows config::ListenerTls (config/config.hpp). If the loader
# ends up spelling it differently, adjust it here: the TLS probe reports `check` errors.
GATEHOUSE_TLS_TOML = """
[listener.tls]
certificates = [{{ cert = "{cert}", key = "{key}" }}]
"""


def gatehouse_conf(workers: int, up: int, ws: int, tls: dict | None, clients: int,
                   h2: bool = False, sink: int | None = None) -> str:
    """h2: HTTP/2 on the TLS listener, spelled out although it is the default (issue 11:
    `[listener.tls] http2 = true`); sink: /upload to that port."""
    tls_part = GATEHOUSE_TLS_TOML.format(**tls) if tls else ""
    if tls and h2:
        tls_part += "http2 = true\n"
    sink_part = (f'\n[[upstream]]\nname = "sink"\nservers = ["127.0.0.1:{sink}"]\n'
                 f'keepalive = {UPSTREAM_POOL}\n\n[[route]]\npath_prefix = "/upload"\n'
                 f'upstream = "sink"\n') if sink else ""
    return f"""[server]
workers = {workers}
max_connections = {clients}

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
{sink_part}"""


# --------------------------------------------------------------------------------------
# The bench: upstreams, proxies (Target, in benchlib) and wrk
# --------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-", dir="/tmp"))
        self.work.chmod(0o755)  # nginx workers run as nobody and read www/ from here
        # Others rebuild build/ while we run: test a private copy, so that every scenario
        # runs the same binary, and describe that copy (commit and tree state right now).
        # No binary at all is fine only for runs that leave Gatehouse out (main checks).
        self.gatehouse_bin: str | None = None
        self.gatehouse_desc = f"not run: no binary at {args.gatehouse}"
        if Path(args.gatehouse).exists():
            self.gatehouse_bin = str(self.work / "gatehouse")
            shutil.copy2(args.gatehouse, self.gatehouse_bin)
            self.gatehouse_desc = describe_gatehouse(Path(args.gatehouse),
                                                     Path(self.gatehouse_bin))
        self.configs: dict[str, str] = {}  # name -> text, for the report
        self.commands: dict[str, str] = {}  # what -> exact command line, for the report
        self.up_port = 0
        self.ws_port = 0
        self.problems: list[str] = []  # errors seen in runs; a non-empty list fails the run
        self.notes: list[str] = []  # things the report should say (fallbacks, skips)
        self.tls_files: dict | None = None
        self.clients = client_limit(max(args.idle, args.h2_idle))
        self.ws_echo_bin, self.ws_load_bin = self.compile_ws_tools()

    def compile_ws_tools(self) -> tuple[str | None, str | None]:
        """ws_echo.c (the WebSocket upstream) and ws_load.c (the ws_msgs client)."""
        return self.compile_tool("ws_echo", ["-lcrypto"]), self.compile_tool("ws_load", [])

    def compile_tool(self, name: str, libs: list[str]) -> str | None:
        """bench/NAME.c built into the temp dir with the system C compiler; its path, or
        None (and a note in the report) when it does not compile."""
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        out = self.work / name
        argv = [cc or "cc", "-O2", "-o", str(out), str(BENCH / f"{name}.c"), *libs]
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            ok = p.returncode == 0
            why = (p.stderr.strip().splitlines() or ["?"])[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, why = False, str(exc)
        if ok:
            self.commands[f"{name} build"] = " ".join(argv)
        else:
            self.notes.append(f"bench/{name}.c did not compile ({why[:160]})")
        return str(out) if ok else None

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
        self.start_ws_upstream()

    def start_ws_upstream(self) -> None:
        """The WebSocket echo upstream: ws_echo (C), or ws_upstream.py without a compiler."""
        port_file = self.work / "ws-upstream.port"
        if self.ws_echo_bin:
            argv = [self.ws_echo_bin, "--port-file", str(port_file)]
        else:
            argv = [PYTHON, str(BENCH / "ws_upstream.py"), "--port-file", str(port_file)]
            self.notes.append("WebSocket upstream: bench/ws_upstream.py (Python fallback)")
        self.ws_proc = Proc("ws-upstream", argv, self.work, LOAD_CPU)
        wait_until("ws upstream", port_file.exists, proc=self.ws_proc)
        self.ws_port = int(port_file.read_text())
        self.ws_direct = Target("direct", self.ws_port, None)
        self.commands["ws upstream"] = " ".join(self.ws_proc.argv)

    def start_proxy(self, kind: str, workers: int = 1, cpus: str | None = PROXY_CPU,
                    tls: bool = False, label: str | None = None, h2: bool = False,
                    sink: int | None = None) -> Target:
        """Starts one proxy and waits until it answers through to the upstream (over
        HTTP/1.1; h2: its TLS listener offers HTTP/2 too; sink: /upload goes there)."""
        label = label or kind
        tls_files = self.tls_files if tls else None
        for attempt in range(3):
            if kind == "gatehouse":
                conf = self.write(f"{label}.toml", gatehouse_conf(
                    workers, self.up_port, self.ws_port, tls_files, self.clients, h2, sink))
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
                        self.work, label, port, self.up_port, self.ws_port, tls_files,
                        self.clients, h2, sink))
                    argv = ["nginx", "-e", str(self.work / f"{label}.log"), "-p",
                            str(self.work), "-c", str(conf)]
                else:
                    conf = self.write(f"{label}.cfg", haproxy_conf(
                        self.work, port, self.up_port, self.ws_port, tls_files, self.clients,
                        h2, sink))
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
        meter = CpuMeter(target, pinned=cpus == LOAD_CPU)
        try:
            out = subprocess.run(argv, capture_output=True, text=True,
                                 timeout=duration + 30).stdout
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"wrk did not finish: {' '.join(argv)}") from exc
        result = parse_wrk(out)
        result.update(meter.stop(result["requests"]))
        result["cmd"] = " ".join(argv)
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


def interleaved(bench: Bench, targets: list[Target], sc: Scenario, rounds: int,
                cpus: str | None = LOAD_CPU) -> dict[str, dict]:
    """One wrk scenario over interleaved rounds (see `interleave`)."""
    a = bench.args

    def run(target: Target, seconds: int, record: bool) -> dict:
        return bench.wrk(target, sc.path, seconds, a.connections, sc.script, cpus=cpus,
                         record=record)
    return interleave(bench, targets, sc.key, rounds, run, "req")


# ---- WebSocket messages through an established tunnel (ws_msgs)

WS_CONNS, WS_WINDOW, WS_SIZE = 50, 8, 32  # tunnels, frames in flight on each, payload bytes
WS_WARMUP = 0.5  # seconds after the upgrades before ws_load starts counting


def ws_messages_run(bench: Bench, target: Target, seconds: int, record: bool) -> dict:
    """One ws_load run against a target: echoed messages/s, RTT p50/p99, proxy CPU/msg, and
    the share of CPU 1 that ws_load + ws_echo used (near 100 % = the load side is the limit).
    CPU times are read when ws_load starts and stops counting (its START/END lines)."""
    argv = [bench.ws_load_bin, "--port", str(target.port), "--path", "/ws", "-c", str(WS_CONNS),
            "--window", str(WS_WINDOW), "--size", str(WS_SIZE), "--warmup", str(WS_WARMUP),
            "--duration", str(seconds)]
    client = Proc(f"ws-load-{target.label}", argv, bench.work, LOAD_CPU, capture_stdout=True)
    try:
        first = client.popen.stdout.readline()  # bounded: ws_load ends itself (alarm)
        meter = CpuMeter(target) if first.startswith("START") else None
        echo_ticks = cpu_ticks([bench.ws_proc.pid])
        last = client.popen.stdout.readline() if meter else first
        echo_s = (cpu_ticks([bench.ws_proc.pid]) - echo_ticks) / CLK_TCK
        client.popen.wait(timeout=60)
    finally:
        client.stop()
    fields = dict(re.findall(r"(\w+)=([\d.]+)", last))
    msgs = int(fields.get("msgs", 0))
    seconds_measured = float(fields.get("seconds", 0)) or None
    result = {"requests": msgs, "rps": msgs / seconds_measured if seconds_measured else 0.0,
              "p50_ms": float(fields.get("p50_us", 0)) / 1000,
              "p99_ms": float(fields.get("p99_us", 0)) / 1000,
              "non2xx": 0, "errors": int(fields.get("errors", 0)) if meter else WS_CONNS,
              "cmd": " ".join(client.argv),
              # Is the load side the limit? CPU 1 share used by ws_load + ws_echo
              "load_pct": (100.0 * (float(fields.get("cpu_s", 0)) + echo_s) / seconds_measured
                           if seconds_measured else None)}
    result.update(meter.stop(msgs) if meter else {"cpu_us": None, "others_pct": None})
    if record and (result["errors"] or not msgs):
        bench.problems.append(f"{target.label} ws_msgs: {msgs} messages, {result['errors']} "
                              f"tunnels lost or not upgraded ({last.strip()!r}; "
                              f"{client.log_tail(3)!r})")
    return result


def scenario_ws_messages(bench: Bench, results: dict, proxies: list[Target]) -> None:
    """Messages/s through established WebSocket tunnels, all proxies and direct, interleaved."""
    kinds = ws_kinds(bench, results, "ws_msgs", proxies[0])
    if not kinds:
        return
    if not bench.ws_load_bin:
        results.setdefault("skipped", {})["ws_msgs"] = "skipped: bench/ws_load.c did not compile"
        return
    targets = [t for t in proxies if t.name in kinds] + [bench.ws_direct]
    results["ws_msgs"] = interleave(bench, targets, "ws_msgs", bench.args.rounds,
                                    lambda t, sec, rec: ws_messages_run(bench, t, sec, rec),
                                    "msg")
    bench.commands["ws_msgs client"] = (
        f"taskset -c {LOAD_CPU} ws_load --port PORT --path /ws -c {WS_CONNS} --window "
        f"{WS_WINDOW} --size {WS_SIZE} --warmup {WS_WARMUP} --duration {bench.args.duration}")


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
    conf.write_text(gatehouse_conf(1, bench.up_port, bench.ws_port, bench.tls_files,
                                   bench.clients))
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


def masked_text_frame(payload: bytes) -> bytes:
    """One client-to-server WebSocket text frame (FIN, masked), payload < 126 bytes."""
    mask = os.urandom(4)
    return (bytes([0x81, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i & 3] for i, b in enumerate(payload)))


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
            sock.sendall(masked_text_frame(b"tunnel-probe"))
            want = b"\x81\x0ctunnel-probe"  # the echo: unmasked, as a server sends it
            while len(rest) < len(want):
                data = sock.recv(4096)
                if not data:
                    break
                rest += data
            if rest != want:
                return False, f"101 received but the tunnel echoed {rest!r}"
    except OSError as exc:
        return False, f"WebSocket probe failed: {exc}"
    return True, "Upgrade through Gatehouse got 101 and the tunnel echoed a frame"


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


def tls_fetch(port: int, ctx: ssl.SSLContext, session=None) -> tuple:
    """GET / over one TLS connection, offering `session` for resumption; returns (the
    session to resume next time, whether this one was resumed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with ctx.wrap_socket(raw, session=session) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n")
            while tls.recv(65536):  # TLS 1.3 tickets arrive after the handshake
                pass
            return tls.session, tls.session_reused


def tickets_per_handshake(port: int) -> int | None:
    """How many TLS 1.3 NewSessionTicket messages one full handshake gets (s_client -msg)."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-msg",
            "-ign_eof", "-quiet"]
    try:
        p = subprocess.run(argv, input=b"GET / HTTP/1.1\r\nHost: bench.test\r\n"
                           b"Connection: close\r\n\r\n", capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    return (p.stdout + p.stderr).count(b"NewSessionTicket")


def tls_resumption(port: int) -> str:
    """What a client that resumes whenever it can (as wrk does on reconnect) gets."""
    parts = []
    for name, version in (("TLS 1.3", ssl.TLSVersion.TLSv1_3), ("TLS 1.2", ssl.TLSVersion.TLSv1_2)):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = version
        try:
            session, _ = tls_fetch(port, ctx)
            _, reused = tls_fetch(port, ctx, session)
            state = (f"ticket {'offered' if session and session.has_ticket else 'NOT offered'}, "
                     f"{'resumed' if reused else 'NOT resumed'}")
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            state = f"check failed ({exc})"
        parts.append(f"{name} {state}")
    tickets = tickets_per_handshake(port)
    return "; ".join(parts) + f"; {tickets if tickets is not None else '?'} TLS 1.3 ticket(s) " \
                              "per full handshake"


def scenario_tls_handshakes(bench: Bench, results: dict) -> None:
    """Hook: full TLS handshakes per second (parallel `openssl s_time -new`), and the proxy
    CPU per handshake (the capacity: 1 s ÷ that = handshakes/s one core could do)."""
    kinds = tls_kinds(bench, results, "handshake")
    if not kinds:
        return
    clients = 2 if bench.args.quick else 4  # one s_time is latency-bound, not CPU-bound
    targets = [bench.start_proxy(k, tls=True, label=f"{k}-tls") for k in kinds]
    results["tls_params"] = {k: tls_parameters(t.port) for k, t in zip(kinds, targets)}
    results["tls_resumption"] = {k: tls_resumption(t.port) for k, t in zip(kinds, targets)}
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


def ws_kinds(bench: Bench, results: dict, key: str, gatehouse: Target) -> list[str]:
    """Which proxies a WebSocket scenario runs on; [] (and a skip note) while Gatehouse
    cannot tunnel (the probe runs once, on the pinned Gatehouse)."""
    if "ws_probe" not in results:
        results["ws_probe"] = probe_gatehouse_websocket(bench, gatehouse)
    supported, why = results["ws_probe"]
    if supported:
        return list(PROXIES)
    if bench.args.hooks_without_gatehouse:
        return ["nginx", "haproxy"]
    results.setdefault("skipped", {})[key] = f"skipped: {why}"
    return []


def scenario_idle_websockets(bench: Bench, results: dict, gatehouse: Target) -> None:
    """RSS per idle WebSocket tunnel (client and upstream side both held open)."""
    kinds = ws_kinds(bench, results, "ws", gatehouse)
    if kinds:
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
        ("h2load", tool_version(["h2load", "--version"], r"(nghttp2/\S+)")),
        ("OpenSSL", tool_version(["openssl", "version"])),
        ("Python", platform.python_version()),
    ]


def debian_package(name: str) -> str | None:
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", name],
                       capture_output=True, text=True)
    if p.returncode == 0 and p.stdout.startswith("install ok installed"):
        return f"{name} {p.stdout.split()[-1]}"
    return None


def summary_rows(results: dict) -> list[str]:
    """One row per scenario: medians, then paired ratios (median, min–max)."""
    L = []

    def load_row(key: str, title: str, p99: bool = True) -> None:
        s = results.get(key)
        if s and "gatehouse" in s:
            L.append(summary_load_row(s, title, p99))

    def memory_row(key: str, title: str) -> None:
        m = results.get(key)
        if m and "gatehouse" in m:
            L.append(summary_memory_row(m, title))

    for sc in LOAD_SCENARIOS:
        load_row(sc.key, sc.title)
    if "scaling" in results:
        s = results["scaling"]
        L.append(f"| 4. Gatehouse 2 workers ÷ 1 worker (unpinned) | "
                 f"{fmt_num(s['gatehouse-2w']['rps'])} | | | | "
                 f"{fmt_paired(paired(s, 'rps', 'gatehouse-1w', True, 'gatehouse-2w'))} "
                 f"(2w ÷ 1w) | | | | "
                 f"{fmt_paired(paired(s, 'cpu_us', 'gatehouse-1w', False, 'gatehouse-2w'))} | |")
    memory_row("idle", "5. KiB per idle connection (memory, single run)")
    load_row("https", "6. HTTPS keep-alive")
    load_row("handshake", "7. TLS handshakes/s (CPU: per handshake)", p99=False)
    memory_row("ws", "8. KiB per idle WebSocket tunnel (memory, single run)")
    load_row("ws_msgs", "9. WebSocket messages/s (CPU: per message)")
    return L + h2bench.summary_rows(results)


def method_rows(bench: Bench, results: dict) -> list[str]:
    a = bench.args
    L = [f"| Method | {a.rounds} interleaved round(s) × {a.duration} s per target: each round "
         "runs Gatehouse, nginx, HAProxy (and direct) back to back; ratios are the median (and "
         "min–max) of the per-round paired ratios, Gatehouse_r ÷ other_r; proxy pinned to CPU "
         f"{PROXY_CPU}, wrk + upstream + clients to CPU {LOAD_CPU}; one worker each |",
         "| Proxy CPU | utime + stime of the proxy's processes and threads (/proc/PID/stat) over "
         "each measured run, ÷ requests (messages, handshakes) completed |",
         f"| Idle memory | `Rss` from /proc/PID/smaps_rollup summed over the proxy's processes "
         f"(nginx master + worker; Gatehouse and HAProxy are one process each), on a fresh "
         f"process, before and 1 s after opening {a.idle:,} connections (tunnels) |",
         f"| Connection limits | {bench.clients:,} client connections for every proxy "
         f"(Gatehouse `max_connections`, HAProxy `maxconn`; nginx `worker_connections "
         f"{2 * bench.clients:,}`, which counts upstream connections too); descriptor limit "
         f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,} for everything started here |"]
    resumption = results.get("tls_resumption")
    if resumption:
        same = len(set(resumption.values())) == 1
        checked = (f"all three: {next(iter(resumption.values()))}" if same else
                   "; ".join(f"{k}: {v}" for k, v in resumption.items()))
        L.append("| TLS resumption | the same for all: stateless session tickets, no server-side "
                 "session cache (Gatehouse: its default; nginx `ssl_session_cache off; "
                 "ssl_session_tickets on`; HAProxy `tune.ssl.cachesize 0`, tickets on by "
                 "default). wrk resumes on reconnect whenever a ticket is offered (keep-alive "
                 "runs reconnect rarely); `openssl s_time -new` never resumes. Checked at run "
                 f"time: {checked} |")
    return L


def hook_lines(results: dict, idle: int) -> list[str]:
    L = []
    for key, title in (("https", "HTTPS keep-alive (wrk https://)"),
                       ("handshake", "TLS handshake rate (openssl s_time -new)"),
                       ("ws", "Idle WebSocket tunnels: memory")):
        skipped = results.get("skipped", {}).get(key)
        if skipped:
            L.append(f"- **{title}**: {skipped}.")
        elif key == "https" and key in results:
            L += [f"- **{title}**:", ""] + load_table(results[key], list(PROXIES))
            L += [""] + paired_table(results[key]) + [""]
        elif key == "handshake" and key in results:
            h = results[key]
            L.append(f"- **{title}**, parallel clients on CPU 1, medians (the clients, at ~3× the "
                     "proxy's CPU per handshake, are the limit of handshakes/s; compare the "
                     "proxy CPU per handshake): " + "; ".join(
                f"{k} {fmt_num(v['rps'])}/s, proxy {fmt_num(v['cpu_us'], 0)} µs CPU per "
                f"handshake" for k, v in h.items()) + ". Paired ratios, Gatehouse ÷ better "
                f"other: handshakes/s {fmt_paired(paired(h, 'rps', 'best', True))}, CPU per "
                f"handshake {fmt_paired(paired(h, 'cpu_us', 'best', False))}.")
        elif key == "ws" and key in results:
            L += [f"- **{title}** ({results['ws_probe'][1]}):", ""]
            L += memory_table(results["ws"], idle, "tunnels")
            L.append("")
    if "tls_params" in results:
        L.append("- Negotiated by a default client: " + "; ".join(
            f"{k} {v}" for k, v in results["tls_params"].items()) + ". Certificate: "
            "ECDSA P-256, self-signed; resumption: see Method above.")
    return L


def ws_messages_section(bench: Bench, results: dict) -> list[str]:
    if "ws_msgs" not in results:
        skipped = results.get("skipped", {}).get("ws_msgs")
        return ["## 9. WebSocket messages through a tunnel", "", f"{skipped}.", ""] if skipped else []
    s = results["ws_msgs"]
    L = ["## 9. WebSocket messages through a tunnel", "",
         f"`ws_load` (bench/ws_load.c, compiled at run time) opens {WS_CONNS} WebSocket tunnels "
         f"to `/ws` and keeps {WS_WINDOW} masked {WS_SIZE}-byte text frames in flight on each; "
         "every echoed frame is counted and replaced (all replacements of one read in one "
         "write). The upstream, bench/ws_echo.c, echoes each frame unmasked as a server does. "
         f"Counting starts {WS_WARMUP} s after the upgrades; p50/p99 are round-trip times of "
         "single frames; proxy CPU is per echoed message (each message crosses the proxy "
         "twice). Direct = ws_load straight to ws_echo, both on CPU 1: the set-up's limit.", ""]
    L += load_table(s, ["gatehouse", "nginx", "haproxy", "direct"], "msg")
    L += [""] + paired_table(s, "msg") + [""]
    return L


def write_report(bench: Bench, results: dict, info: list[tuple[str, str]], started: float,
                 loads: tuple[str, str]) -> str:
    a = bench.args
    mode = "quick (CI smoke: numbers are indicative only)" if a.quick else "full"
    L = ["# Gatehouse benchmark results", "",
         f"Written by `bench/run.py{''.join(' ' + x for x in sys.argv[1:])}` ({mode}); "
         f"{(time.monotonic() - started) / 60:.1f} minutes. How to read it: `bench/README.md`.", "",
         "| | |", "| --- | --- |"]
    L += [f"| {k} | {v} |" for k, v in info]
    L += method_rows(bench, results)
    L += [f"| Load average | {loads[0]} at start, {loads[1]} at end |", ""]

    L += ["## Summary", "",
          "Medians per target, then Gatehouse's ratios as the **median of the per-round paired "
          "ratios (min–max)**: Gatehouse ÷ the better of nginx and HAProxy in the same round, "
          "÷ nginx, ÷ HAProxy (req/s, messages/s, handshakes/s: > 1 = Gatehouse faster; p99, "
          "CPU per request and KiB: < 1 = Gatehouse better), and ÷ direct (the share of the "
          "set-up's own limit).", "",
          "| scenario | Gatehouse | nginx | HAProxy | direct | GH ÷ best | GH ÷ nginx | "
          "GH ÷ HAProxy | GH ÷ best p99 | GH ÷ best CPU/req | GH ÷ direct |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    L += summary_rows(results) + [""]

    for sc in LOAD_SCENARIOS:
        if sc.key not in results:
            continue
        L += [f"## {sc.title}", "",
              f"`{results[sc.key]['gatehouse']['runs'][0]['cmd']}` (same for every target, "
              "its port)", ""]
        L += load_table(results[sc.key], ["gatehouse", "nginx", "haproxy", "direct"])
        L += [""] + paired_table(results[sc.key]) + [""]

    if "scaling" in results:
        s = results["scaling"]
        L += ["## 4. Gatehouse with 2 workers (scaling, unpinned)", "",
              "Gatehouse alone, 1 vs 2 workers, proxy and wrk unpinned (the upstream stays "
              "on CPU 1). On a 2-CPU machine wrk and the upstream need a CPU too, so "
              "the ceiling is well below 2×.", ""]
        L += load_table(s, ["gatehouse-1w", "gatehouse-2w"])
        L += ["", f"2 workers ÷ 1 worker, paired by round: req/s "
                  f"{fmt_paired(paired(s, 'rps', 'gatehouse-1w', True, 'gatehouse-2w'))}, CPU/req "
                  f"{fmt_paired(paired(s, 'cpu_us', 'gatehouse-1w', False, 'gatehouse-2w'))}.", ""]

    if "idle" in results:
        L += ["## 5. Idle keep-alive connections: memory", "",
              f"Fresh process each; {a.idle:,} client connections each send one GET / and stay "
              "open. RSS = sum of `Rss` in /proc/PID/smaps_rollup (nginx: master + worker); "
              "per connection = (RSS with connections − idle RSS) ÷ connections.", ""]
        L += memory_table(results["idle"], a.idle, "connections")
        L.append("")

    hooks = hook_lines(results, a.idle)
    hooks += [f"- {note}" for note in results.get("notes", []) + bench.notes]
    if hooks:
        L += ["## 6–8. HTTPS, TLS handshakes, idle WebSocket tunnels", ""] + hooks + [""]
    L += ws_messages_section(bench, results)
    L += h2bench.report_lines(bench, results)

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

    L += ["## Configs", "", "As generated for this run (the `-mem` instances of scenarios 5, "
          "8 and 14 and `gatehouse-1w` differ only in port, pinning and worker count).", ""]
    for name, text in bench.configs.items():
        if any(part in name for part in ("probe", "-mem", "-1w")):
            continue
        L += [f"<details><summary>{name}</summary>", "", "```", text.rstrip(), "```", "",
              "</details>", ""]

    L += ["## Every run", "", "Rates are req/s (msgs/s for ws_msgs, handshakes/s for "
          "handshake); CPU µs per request, message or handshake.", "",
          "| scenario | target | round | rate | p50 | p99 | CPU µs | "
          "CPU 0 busy with others |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key in ([sc.key for sc in LOAD_SCENARIOS] + ["scaling", "https", "handshake", "ws_msgs"]
                + list(h2bench.LOAD_KEYS)):
        for label, s in results.get(key, {}).items():
            for i, r in enumerate(s["runs"]):
                L.append(f"| {key} | {label} | {i + 1} | {fmt_num(r['rps'])} | "
                         f"{fmt_ms(r.get('p50_ms'))} | {fmt_ms(r.get('p99_ms'))} | "
                         f"{fmt_num(r['cpu_us'], 2)} | {fmt_pct(r.get('others_pct'))} |")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


DEFAULT_ROUNDS, DEFAULT_DURATION, DEFAULT_IDLE = 7, 10, 5000
ONLY_CHOICES = ("small", "64k", "post16k", "ws_msgs", "scaling", "idle", "ws_idle", "https",
                "handshake") + h2bench.KEYS
# Scenarios that need the plain HTTP/1.1 proxies started at the beginning (and Gatehouse)
H1_TARGET_KEYS = {"small", "64k", "post16k", "ws_msgs", "ws_idle"}


def selected_scenarios(parser, only: str | None) -> set[str] | None:
    """--only as a set of scenario keys (None = all); "hooks" stands for the TLS scenarios
    and the idle WebSocket tunnels, as before they all ran; "h2" for every HTTP/2 one."""
    if not only:
        return None
    keys = set()
    for key in only.split(","):
        if key == "hooks":
            keys |= {"https", "handshake", "ws_idle"}
        elif key == "h2":
            keys |= set(h2bench.KEYS)
        elif key in ONLY_CHOICES:
            keys.add(key)
        else:
            parser.error(f"--only: unknown scenario {key!r}; choose from "
                         f"{','.join(ONLY_CHOICES)},hooks,h2")
    return keys


def raise_fd_limit(idle: int) -> None:
    """Enough descriptors for everything started here (children inherit the limit): a proxy
    holds `idle` tunnels with two descriptors each (client and upstream side)."""
    need = 2 * client_limit(idle) + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    try:  # as root, the hard limit can be raised too
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, need)), hard))
        log(f"warning: descriptor limit {min(hard, need)} < {need}: {idle} idle tunnels may "
            "fail; run as root or raise `ulimit -Hn`")


def check_tools(h2: bool) -> None:
    """Everything the run needs (h2: h2load too, for the HTTP/2 scenarios)."""
    missing = [t for t in ("nginx", "haproxy", "wrk", "taskset", "openssl") + (("h2load",) if h2
               else ()) if not shutil.which(t)]
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
                        help="CI smoke run: 1 round, 2 s runs, 20 connections, 500 idle")
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument("--duration", type=int,
                        help=f"seconds per measured run (default {DEFAULT_DURATION})")
    parser.add_argument("--connections", type=int, help="wrk -c (default 50)")
    parser.add_argument("--idle", type=int, help="idle connections and idle WebSocket tunnels "
                        f"held in the memory scenarios (default {DEFAULT_IDLE:,})")
    parser.add_argument("--out", type=Path, help="report path (default bench/RESULTS.md, "
                        "bench/RESULTS-quick.md with --quick)")
    parser.add_argument("--gatehouse", type=Path, default=DEFAULT_BIN, help="binary to test")
    parser.add_argument("--no-build", action="store_true", help="do not run cmake --build first")
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(ONLY_CHOICES)
                        + " (hooks = https,handshake,ws_idle)")
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
    parser.add_argument("--h2-without-gatehouse", action="store_true",
                        help="run the HTTP/2 scenarios on nginx and HAProxy while Gatehouse "
                             "does not speak h2 (or, with only h2 scenarios selected, has no "
                             "binary at all)")
    parser.add_argument("--h2-idle", type=int, help="idle HTTP/2 connections held in h2_idle "
                        f"(default {h2bench.DEFAULT_IDLE:,}; --quick {h2bench.QUICK_IDLE})")
    args = parser.parse_args()
    q = args.quick
    args.rounds = args.rounds or (1 if q else DEFAULT_ROUNDS)
    args.duration = args.duration or (2 if q else DEFAULT_DURATION)
    args.connections = args.connections or (20 if q else 50)
    args.idle = args.idle or (500 if q else DEFAULT_IDLE)
    args.h2_idle = args.h2_idle or (h2bench.QUICK_IDLE if q else h2bench.DEFAULT_IDLE)
    args.out = args.out or BENCH / ("RESULTS-quick.md" if q else "RESULTS.md")
    only = selected_scenarios(parser, args.only)
    wanted = lambda key: only is None or key in only  # noqa: E731
    want_h2 = any(wanted(k) for k in h2bench.KEYS)
    # Only HTTP/2 scenarios, Gatehouse allowed to be left out: no binary needed.
    gatehouse_optional = args.h2_without_gatehouse and only is not None and only <= set(
        h2bench.KEYS)

    started = time.monotonic()
    waited = 0.0
    loads = [f"{os.getloadavg()[0]:.2f}", ""]
    bench = None
    atexit.register(stop_all)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(130))
    try:
        check_tools(want_h2)
        raise_fd_limit(max(args.idle, args.h2_idle))
        if not args.no_build:
            build(args)
        for _ in range(0 if gatehouse_optional else 60):  # someone's build may be relinking
            if Path(args.gatehouse).exists():
                break
            time.sleep(2)
        else:
            if not gatehouse_optional:
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

        targets = []
        if any(wanted(k) for k in H1_TARGET_KEYS):
            targets = [bench.start_proxy(kind) for kind in PROXIES]
            for t in targets:
                bench.verify_paths(t)
            bench.verify_paths(bench.upstream)
        for sc in LOAD_SCENARIOS:
            if wanted(sc.key):
                log(f"scenario {sc.title}")
                results[sc.key] = interleaved(bench, targets + [bench.upstream], sc, args.rounds)

        if wanted("ws_msgs"):
            log("scenario 9. WebSocket messages through a tunnel")
            scenario_ws_messages(bench, results, targets)
        if wanted("ws_idle"):
            log(f"scenario 8. {args.idle} idle WebSocket tunnels")
            scenario_idle_websockets(bench, results, targets[0])
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

        if wanted("https"):
            scenario_https_keepalive(bench, results)
        if wanted("handshake"):
            scenario_tls_handshakes(bench, results)
        if want_h2:
            bench.tls_files = bench.tls_files or make_tls_files(bench)
            h2bench.run(bench, results, wanted)

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
