#!/usr/bin/python3
"""Soak under faults: mixed load through Gatehouse (2 workers) while replicas die,
PostgreSQL stops, the config is reloaded and the certificate is swapped.

    /usr/bin/python3 tests/soak/soak.py --seconds 60 --bin build/proxy/gatehouse   # CI
    /usr/bin/python3 tests/soak/soak.py --minutes 10 --bin build/proxy/gatehouse --report out.md

Everything runs on 127.0.0.1 with ports chosen at run time; every process it starts
(Gatehouse, 3 replicas, PostgreSQL) is ended by its PID and every temp dir removed.
Exit status 0 only when every must-show property holds (see README.md next to this
file): no crash, RSS and descriptors flat after warm-up, no unattributed error on an
idempotent request (or a tunnel), zero leaked upstream connections at the end.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
from harness import (BufferedReader, Gatehouse, HttpClient, HttpParseError,  # noqa: E402
                     build_request, read_response, write_atomically)
import pg_fixture  # noqa: E402
from tls_support import CertificateAuthority  # noqa: E402
from websocket import WebSocket  # noqa: E402

sys.path.insert(0, HERE)
from replica import large_body  # noqa: E402
import procstat  # noqa: E402

HOST = "example.test"
CLIENT_TIMEOUT = 10.0
LARGE_SIZE = 4 << 20
POST_SIZE = 64 << 10
ABORT_SIZE = 512 << 10
UPSTREAM_KEEPALIVE_S = 5

_ids = itertools.count(1)


def log(msg: str) -> None:
    sys.stderr.write(f"[soak {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------------------


class Stats:
    """Outcomes per period (a minute, or a sixth of a short run)."""

    def __init__(self, t0: float, period: float):
        self.t0 = t0
        self.period = period
        self.lock = threading.Lock()
        self.ok = collections.Counter()          # (period, scenario) -> count
        self.errors: list[dict] = []
        self.aborted = collections.Counter()     # period -> POSTs aborted by design
        self.handshakes = collections.Counter()  # "full", "resumed", "resume_refused"
        self.fingerprints: list[tuple[float, str]] = []  # full handshakes: (time, sha256)

    def index(self, t: float) -> int:
        return max(0, int((t - self.t0) // self.period))

    def success(self, scenario: str, n: int = 1) -> None:
        with self.lock:
            self.ok[(self.index(time.monotonic()), scenario)] += n

    def error(self, scenario: str, kind: str, rid: str, start: float, *, strict: bool = True,
              replica: str | None = None, detail: str = "") -> None:
        end = time.monotonic()
        with self.lock:
            self.errors.append(dict(scenario=scenario, kind=kind, rid=rid, start=start,
                                    end=end, strict=strict, replica=replica,
                                    detail=detail[:200], period=self.index(end)))


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, EOFError):
        return "eof"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, HttpParseError):
        return "bad_response"
    if isinstance(exc, OSError):
        return "oserror"
    return type(exc).__name__


def status_kind(status: int) -> str:
    return f"status_{status}"


# --------------------------------------------------------------------------------------
# Load: one function per scenario, each loops until `stop` is set
# --------------------------------------------------------------------------------------


class Load:
    def __init__(self, port: int, tls_port: int, ca_file: str, stats: Stats,
                 stop: threading.Event):
        self.port = port
        self.tls_port = tls_port
        self.stats = stats
        self.stop = stop
        self.ca_file = ca_file
        self.large = large_body(LARGE_SIZE)

    def tls_context(self, alpn: list[str]) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.set_alpn_protocols(alpn)
        return ctx

    # -- HTTP/1.1 keep-alive GETs -----------------------------------------------

    def keepalive_get(self) -> None:
        client = None
        count = 0
        while not self.stop.is_set():
            rid = f"ka-{next(_ids)}"
            start = time.monotonic()
            try:
                if client is None or count >= 200:
                    if client:
                        client.close()
                    client = HttpClient(self.port, CLIENT_TIMEOUT)
                    count = 0
                count += 1
                response = client.request("GET", f"/small/{rid}", host=HOST)
                if response.status != 200:
                    self.stats.error("keepalive_get", status_kind(response.status), rid, start)
                    client.close()
                    client = None
                elif response.body != f"small {rid}\n".encode():
                    self.stats.error("keepalive_get", "wrong_body", rid, start,
                                     detail=repr(response.body[:80]))
                else:
                    self.stats.success("keepalive_get")
            except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
                self.stats.error("keepalive_get", error_kind(exc), rid, start, detail=repr(exc))
                if client:
                    client.close()
                client = None
        if client:
            client.close()

    # -- HTTP/1.1 one request per connection -------------------------------------

    def new_connection_get(self) -> None:
        turn = 0
        while not self.stop.is_set():
            rid = f"nc-{next(_ids)}"
            start = time.monotonic()
            turn += 1
            try:
                with HttpClient(self.port, CLIENT_TIMEOUT) as client:
                    headers = [("Connection", "close")] if turn % 2 else []
                    response = client.request("GET", f"/small/{rid}", headers, host=HOST)
                if response.status != 200:
                    self.stats.error("new_conn_get", status_kind(response.status), rid, start)
                elif response.body != f"small {rid}\n".encode():
                    self.stats.error("new_conn_get", "wrong_body", rid, start)
                else:
                    self.stats.success("new_conn_get")
            except Exception as exc:  # noqa: BLE001
                self.stats.error("new_conn_get", error_kind(exc), rid, start, detail=repr(exc))

    # -- pipelined GETs ------------------------------------------------------------

    def pipelined(self, depth: int = 8) -> None:
        client = None
        while not self.stop.is_set():
            rids = [f"pl-{next(_ids)}" for _ in range(depth)]
            start = time.monotonic()
            done = 0
            try:
                if client is None:
                    client = HttpClient(self.port, CLIENT_TIMEOUT)
                client.send(b"".join(build_request("GET", f"/small/{rid}", host=HOST)
                                     for rid in rids))
                for rid in rids:
                    response = client.read_response("GET")
                    done += 1
                    if response.status != 200:
                        self.stats.error("pipelined", status_kind(response.status), rid, start)
                    elif response.body != f"small {rid}\n".encode():
                        self.stats.error("pipelined", "wrong_body", rid, start,
                                         detail=repr(response.body[:80]))
                    else:
                        self.stats.success("pipelined")
                    if harness.has_token(response.headers.get("Connection"), "close"):
                        raise EOFError("closed after this response")
            except Exception as exc:  # noqa: BLE001
                # The request being read and every later one in the batch got no answer.
                kind = error_kind(exc)
                for rid in rids[done:]:
                    self.stats.error("pipelined", kind, rid, start, detail=repr(exc))
                if client:
                    client.close()
                client = None
        if client:
            client.close()

    # -- HTTPS: full and resumed handshakes ----------------------------------------

    def https(self) -> None:
        ctx = self.tls_context(["http/1.1"])
        session = None
        turn = 0
        while not self.stop.is_set():
            turn += 1
            resume = session is not None and turn % 2 == 0
            rid = f"tls-{next(_ids)}"
            start = time.monotonic()
            raw = None
            try:
                raw = socket.create_connection((harness.LOCALHOST, self.tls_port),
                                               timeout=CLIENT_TIMEOUT)
                sock = ctx.wrap_socket(raw, server_hostname=HOST,
                                       session=session if resume else None)
                raw = sock
                if sock.session_reused:
                    self.stats.handshakes["resumed"] += 1
                elif resume:
                    self.stats.handshakes["resume_refused"] += 1
                else:
                    self.stats.handshakes["full"] += 1
                    fingerprint = hashlib.sha256(sock.getpeercert(True)).hexdigest()
                    with self.stats.lock:
                        self.stats.fingerprints.append((time.monotonic(), fingerprint))
                reader = BufferedReader(sock)
                for i in range(2):
                    if i:
                        rid = f"tls-{next(_ids)}"
                        start = time.monotonic()
                    sock.sendall(build_request("GET", f"/small/{rid}", host=HOST))
                    response = read_response(reader, "GET")
                    if response.status != 200:
                        self.stats.error("https", status_kind(response.status), rid, start)
                        break
                    if response.body != f"small {rid}\n".encode():
                        self.stats.error("https", "wrong_body", rid, start)
                        break
                    self.stats.success("https")
                if not resume:
                    session = sock.session  # TLS 1.3 tickets arrive after the handshake
            except Exception as exc:  # noqa: BLE001
                self.stats.error("https", error_kind(exc), rid, start, detail=repr(exc))
            finally:
                if raw is not None:
                    raw.close()

    # -- HTTP/2 over TLS -------------------------------------------------------------

    def http2(self, streams: int = 10, rounds: int = 3) -> None:
        import h2.config
        import h2.connection
        import h2.events
        ctx = self.tls_context(["h2"])
        while not self.stop.is_set():
            sock = None
            pending: dict[int, dict] = {}
            start = time.monotonic()
            try:
                raw = socket.create_connection((harness.LOCALHOST, self.tls_port),
                                               timeout=CLIENT_TIMEOUT)
                sock = raw
                sock = ctx.wrap_socket(raw, server_hostname=HOST)
                if sock.selected_alpn_protocol() != "h2":
                    raise ssl.SSLError(f"ALPN gave {sock.selected_alpn_protocol()!r}")
                conn = h2.connection.H2Connection(h2.config.H2Configuration(
                    client_side=True, header_encoding="utf-8"))
                conn.initiate_connection()
                sock.sendall(conn.data_to_send())
                for _ in range(rounds):
                    if self.stop.is_set():
                        break
                    start = time.monotonic()
                    for _ in range(streams):
                        sid = conn.get_next_available_stream_id()
                        rid = f"h2-{next(_ids)}"
                        conn.send_headers(sid, [(":method", "GET"), (":path", f"/small/{rid}"),
                                                (":scheme", "https"), (":authority", HOST)],
                                          end_stream=True)
                        pending[sid] = dict(rid=rid, status=None, body=b"")
                    sock.sendall(conn.data_to_send())
                    while pending:
                        data = sock.recv(65536)
                        if not data:
                            raise EOFError("h2 connection closed")
                        for event in conn.receive_data(data):
                            if isinstance(event, h2.events.ResponseReceived):
                                status = dict(event.headers).get(":status")
                                pending[event.stream_id]["status"] = int(status)
                            elif isinstance(event, h2.events.DataReceived):
                                pending[event.stream_id]["body"] += event.data
                                conn.acknowledge_received_data(event.flow_controlled_length,
                                                               event.stream_id)
                            elif isinstance(event, h2.events.StreamEnded):
                                item = pending.pop(event.stream_id)
                                if item["status"] != 200:
                                    self.stats.error("http2", status_kind(item["status"]),
                                                     item["rid"], start)
                                elif item["body"] != f"small {item['rid']}\n".encode():
                                    self.stats.error("http2", "wrong_body", item["rid"], start)
                                else:
                                    self.stats.success("http2")
                            elif isinstance(event, h2.events.StreamReset):
                                item = pending.pop(event.stream_id, None)
                                if item:
                                    self.stats.error("http2", "stream_reset", item["rid"], start,
                                                     detail=str(event.error_code))
                            elif isinstance(event, h2.events.ConnectionTerminated):
                                raise EOFError(f"GOAWAY {event.error_code}")
                        out = conn.data_to_send()
                        if out:
                            sock.sendall(out)
                conn.close_connection()
                sock.sendall(conn.data_to_send())
            except Exception as exc:  # noqa: BLE001
                kind = error_kind(exc)
                if pending:
                    for item in pending.values():
                        self.stats.error("http2", kind, item["rid"], start, detail=repr(exc))
                else:
                    self.stats.error("http2", kind, f"h2conn-{next(_ids)}", start,
                                     detail=repr(exc))
            finally:
                if sock is not None:
                    sock.close()

    # -- WebSocket tunnels -----------------------------------------------------------

    def websocket(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            rid = f"ws-{next(_ids)}"
            start = time.monotonic()
            ws = None
            replica = None
            try:
                ws = WebSocket(self.port, path=f"/ws/{rid}", host=HOST, timeout=CLIENT_TIMEOUT)
                match = re.search(r"(?im)^x-replica:\s*(\S+)", ws.head)
                replica = match.group(1) if match else None
                if ws.status != 101:
                    self.stats.error("websocket", status_kind(ws.status), rid, start,
                                     replica=replica)
                    continue
                for phase in range(2):
                    for _ in range(3):
                        payload = rng.randbytes(rng.choice((10, 200, 5000, 70000)))
                        ws.send_message(payload)
                        opcode, echoed = ws.read_message()
                        if echoed != payload:
                            raise HttpParseError("websocket echo differs")
                    if phase == 0:
                        self.stop.wait(rng.uniform(0.5, 8.0))  # idle tunnel
                ws.send_frame(8, b"\x03\xe8")
                try:
                    ws.read_message()
                except EOFError:
                    pass  # the close frame came back
                self.stats.success("websocket")
            except Exception as exc:  # noqa: BLE001
                self.stats.error("websocket", error_kind(exc), rid, start, replica=replica,
                                 detail=repr(exc))
            finally:
                if ws is not None:
                    ws.close()

    # -- POST bodies, some aborted mid-body ------------------------------------------

    def posts(self) -> None:
        rng = random.Random(7)
        body = rng.randbytes(POST_SIZE)
        digest = hashlib.sha256(body).hexdigest()
        partial = rng.randbytes(ABORT_SIZE // 3)
        turn = 0
        while not self.stop.is_set():
            turn += 1
            rid = f"post-{next(_ids)}"
            start = time.monotonic()
            if turn % 2:
                # Abort: announce ABORT_SIZE, send a third, then close (every 4th with RST).
                try:
                    sock = harness.connect(self.port, CLIENT_TIMEOUT)
                    head = build_request("POST", f"/post/{rid}", [
                        ("Content-Length", str(ABORT_SIZE))], host=HOST)
                    sock.sendall(head + partial)
                    time.sleep(0.01)
                    if turn % 4 == 1:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.close()
                    with self.stats.lock:
                        self.stats.aborted[self.stats.index(time.monotonic())] += 1
                except Exception as exc:  # noqa: BLE001
                    self.stats.error("post_abort", error_kind(exc), rid, start, strict=False,
                                     detail=repr(exc))
                continue
            try:
                with HttpClient(self.port, CLIENT_TIMEOUT) as client:
                    response = client.request("POST", f"/post/{rid}", body=body, host=HOST)
                if response.status != 200:
                    self.stats.error("post", status_kind(response.status), rid, start,
                                     strict=False)
                elif response.body != f"{POST_SIZE} {digest}\n".encode():
                    self.stats.error("post", "wrong_body", rid, start, strict=False)
                else:
                    self.stats.success("post")
            except Exception as exc:  # noqa: BLE001
                self.stats.error("post", error_kind(exc), rid, start, strict=False,
                                 detail=repr(exc))

    # -- slow reader of a large response ------------------------------------------------

    def slow_reader(self) -> None:
        while not self.stop.is_set():
            rid = f"slow-{next(_ids)}"
            start = time.monotonic()
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
                sock.settimeout(CLIENT_TIMEOUT)
                with sock:
                    sock.connect((harness.LOCALHOST, self.port))
                    sock.sendall(build_request("GET", f"/large/{rid}?n={LARGE_SIZE}",
                                               host=HOST))
                    received = bytearray()

                    def sink(data: bytes) -> None:
                        received.extend(data)

                    class Slow(BufferedReader):
                        RECV_SIZE = 32 * 1024

                        def _fill(self) -> None:
                            time.sleep(0.008)  # ~4 MB/s at most: the proxy must buffer/wait
                            super()._fill()

                    response = read_response(Slow(sock), "GET", body_sink=sink)
                if response.status != 200:
                    self.stats.error("slow_reader", status_kind(response.status), rid, start)
                elif bytes(received) != self.large:
                    self.stats.error("slow_reader", "wrong_body", rid, start,
                                     detail=f"{len(received)} bytes")
                else:
                    self.stats.success("slow_reader")
            except Exception as exc:  # noqa: BLE001
                self.stats.error("slow_reader", error_kind(exc), rid, start, detail=repr(exc))

    def threads(self) -> list[threading.Thread]:
        plan = [("keepalive_get", self.keepalive_get, ()), ("keepalive_get", self.keepalive_get, ()),
                ("new_conn_get", self.new_connection_get, ()), ("pipelined", self.pipelined, ()),
                ("https", self.https, ()), ("http2", self.http2, ()),
                ("posts", self.posts, ()), ("slow_reader", self.slow_reader, ())]
        plan += [("websocket", self.websocket, (seed,)) for seed in range(8)]
        return [threading.Thread(target=self._guard, args=(fn, args), name=name, daemon=True)
                for name, fn, args in plan]

    def _guard(self, fn, args) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a driver bug must not pass silently
            self.stats.error(threading.current_thread().name, "driver_crash", "-",
                             time.monotonic(), detail=traceback.format_exc())


# --------------------------------------------------------------------------------------
# The processes: replicas, PostgreSQL, Gatehouse
# --------------------------------------------------------------------------------------


class ReplicaProc:
    def __init__(self, name: str, port: int, log_dir: str):
        self.name = name
        self.port = port
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            with open(self.log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    [sys.executable, os.path.join(HERE, "replica.py"), "--port", str(self.port),
                     "--name", self.name], stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break  # e.g. port still in use: try again
                try:
                    socket.create_connection((harness.LOCALHOST, self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.02)
            if time.monotonic() >= deadline:
                raise RuntimeError(f"replica {self.name} did not start on {self.port}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)


def make_config(replicas: list[ReplicaProc], cert: str, key: str, pg_port: int | None,
                pg_password_file: str | None, generation_note: int) -> str:
    servers = ", ".join(f'"127.0.0.1:{r.port}"' for r in replicas)
    text = f"""# soak config, reload {generation_note}
[server]
workers = 2
drain_timeout = "3s"

[timeouts]
request_header = "10s"
upstream_connect = "2s"
upstream_read = "20s"
upstream_keepalive = "{UPSTREAM_KEEPALIVE_S}s"

[access_log]
format = "text"

[[listener]]
address = "127.0.0.1:0"

[[listener]]
address = "127.0.0.1:0"
[listener.tls]
certificates = [ {{ cert = "{cert}", key = "{key}" }} ]

[admin]
address = "127.0.0.1:0"

[[upstream]]
name = "app"
servers = [{servers}]
passive_cooldown = "3s"

[[route]]
path_prefix = "/"
upstream = "app"
tunnel_idle = "60s"

[[check]]
name = "app"
type = "http"
upstream = "app"
path = "/health"
interval = "2s"
timeout = "1500ms"
rise = 1
fall = 2
"""
    if pg_port is not None:
        text += f"""
[[check]]
name = "db"
type = "postgres"
target = "postgresql://{pg_fixture.ROLE}@127.0.0.1:{pg_port}/{pg_fixture.DATABASE}"
password_file = "{pg_password_file}"
interval = "1s"
timeout = "800ms"
rise = 1
fall = 2
"""
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind((harness.LOCALHOST, 0))
        return s.getsockname()[1]


def admin_get(port: int, path: str) -> tuple[int, str]:
    with HttpClient(port, 5.0) as client:
        response = client.request("GET", path, host="127.0.0.1")
    return response.status, response.body.decode("utf-8", "replace")


def parse_metrics(text: str) -> dict:
    """{'requests': total responses, 'idle': {host: n}, 'in_flight': {host: n}, ...}"""
    out = dict(requests=0.0, idle={}, in_flight={}, open=0.0, generation=0.0, tls={})
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name, _, labels = name_labels.partition("{")
        val = float(value)
        host = re.search(r'host="([^"]*)"', labels)
        if name == "gatehouse_requests_total":
            out["requests"] += val
        elif name == "gatehouse_upstream_idle_connections" and host:
            out["idle"][host.group(1)] = val
        elif name == "gatehouse_upstream_in_flight" and host:
            out["in_flight"][host.group(1)] = val
        elif name == "gatehouse_connections_open":
            out["open"] = val
        elif name == "gatehouse_config_generation":
            out["generation"] = val
        elif name == "gatehouse_tls_handshakes_total":
            result = re.search(r'result="([^"]*)"', labels)
            out["tls"][result.group(1) if result else "?"] = val
    return out


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.duration = args.seconds if args.seconds else args.minutes * 60
        self.period = 60.0 if self.duration >= 300 else self.duration / 6.0
        self.dir = tempfile.mkdtemp(prefix="gatehouse-soak-")
        self.replicas: list[ReplicaProc] = []
        self.pg_template = None
        self.pg = None
        self.gatehouse: Gatehouse | None = None
        self.events: list[tuple[float, str, str]] = []   # (time, what, detail)
        self.kills: list[tuple[float, str, int]] = []    # (time, replica name, port)
        self.failures: list[str] = []
        self.samples: list[dict] = []
        self.readyz: list[tuple[float, int, str]] = []
        self.stop_load = threading.Event()
        self.stop_all = threading.Event()
        self.reload_count = 0
        self.swaps: list[tuple[float, str]] = []           # (time, new fingerprint)
        self.crashed: str | None = None

    # -- setup -----------------------------------------------------------------------

    def setup(self) -> None:
        certs = os.path.join(self.dir, "certs")
        self.ca = CertificateAuthority(certs, name="Gatehouse Soak CA")
        self.cert_path = os.path.join(certs, "fullchain.pem")
        self.key_path = os.path.join(certs, "privkey.pem")
        self.current_fp = self.install_certificate()
        for i in range(3):
            replica = ReplicaProc(f"r{i + 1}", free_port(), self.dir)
            replica.start()
            self.replicas.append(replica)
        pg_port = password_file = None
        if not self.args.no_postgres:
            why = pg_fixture.available()
            if why:
                raise RuntimeError(f"PostgreSQL not available: {why} (or pass --no-postgres)")
            self.pg_template = pg_fixture.PgTemplate()
            self.pg = self.pg_template.server()
            self.pg.start()
            pg_port = self.pg.port
            password_file = os.path.join(self.dir, "pg_password")
            with open(password_file, "w") as f:
                f.write(pg_fixture.ROLE_PASSWORD + "\n")
        self.config_args = (self.replicas, self.cert_path, self.key_path, pg_port, password_file)
        self.gatehouse = Gatehouse(make_config(*self.config_args, 0), binary=self.args.bin,
                                   ready_timeout=20)
        self.gatehouse.start()
        self.pid = self.gatehouse.pid
        self.upstream_ports = {r.port for r in self.replicas}
        log(f"gatehouse pid {self.pid} http :{self.gatehouse.ports[0]} "
            f"https :{self.gatehouse.ports[1]} admin :{self.gatehouse.admin_port}; replicas "
            + ", ".join(f"{r.name}:{r.port}" for r in self.replicas)
            + (f"; postgres :{self.pg.port}" if self.pg else ""))

    def install_certificate(self) -> str:
        """Issues a new leaf and moves it (key, then cert) over the configured paths."""
        leaf = self.ca.issue([HOST, "localhost", "127.0.0.1"])
        for source, target in ((leaf.key, self.key_path), (leaf.fullchain, self.cert_path)):
            shutil.copyfile(source, target + ".new")
            os.replace(target + ".new", target)
        der = ssl.PEM_cert_to_DER_cert(open(leaf.cert).read())
        return hashlib.sha256(der).hexdigest()

    # -- faults ------------------------------------------------------------------------

    def schedule(self) -> list[tuple[float, str, int]]:
        d = self.duration
        plan = []
        k = 0
        t = 10.0
        while t < d - 8:
            plan.append((t, "kill", k % 3))
            plan.append((t + 4.0, "restart", k % 3))
            k += 1
            t += self.args.kill_interval
        n = 0
        t = 15.0
        while t < d - 4:
            plan.append((t, "reload", n))
            n += 1
            t += self.args.reload_interval
        if self.pg:
            t = 20.0
            while t < d - 8:
                plan.append((t, "pg_stop", 0))
                plan.append((min(t + 15.0, d - 3), "pg_start", 0))
                t += 60.0
        return sorted(plan)

    def event(self, what: str, detail: str = "") -> None:
        self.events.append((time.monotonic(), what, detail))
        log(f"{what} {detail}")

    def faults(self) -> None:
        for at, what, arg in self.schedule():
            if self.stop_all.wait(max(0.0, self.t0 + at - time.monotonic())):
                return
            try:
                self.fault(what, arg)
            except Exception as exc:  # noqa: BLE001
                self.failures.append(f"fault {what} failed: {exc!r}")
                log(f"fault {what} failed: {traceback.format_exc()}")

    def fault(self, what: str, arg: int) -> None:
        if what == "kill":
            replica = self.replicas[arg]
            self.kills.append((time.monotonic(), replica.name, replica.port))
            replica.kill()
            self.event("kill", f"{replica.name} :{replica.port}")
        elif what == "restart":
            self.replicas[arg].start()
            self.event("restart", self.replicas[arg].name)
        elif what == "pg_stop":
            self.pg.stop()
            self.event("pg_stop")
        elif what == "pg_start":
            self.pg.start()
            self.event("pg_start")
        elif what == "reload":
            swap = arg % 4 == 1
            if swap:
                self.current_fp = self.install_certificate()
                self.swaps.append((time.monotonic(), self.current_fp))
            self.reload_count += 1
            ok = self.gatehouse.reload(make_config(*self.config_args, self.reload_count),
                                       timeout=10)
            self.event("reload", f"#{self.reload_count} generation {self.gatehouse.generation}"
                       + (" with a new certificate" if swap else "") + ("" if ok else " FAILED"))
            if not ok:
                self.failures.append(f"reload #{self.reload_count} did not take effect")

    # -- sampling ------------------------------------------------------------------------

    def sampler(self) -> None:
        admin = self.gatehouse.admin_port
        while not self.stop_all.is_set():
            now = time.monotonic()
            if self.gatehouse.proc.poll() is not None:
                self.crashed = f"gatehouse exited with {self.gatehouse.proc.returncode}"
                log(self.crashed)
                self.stop_load.set()
                return
            sample = dict(t=now, rss=procstat.rss_kib(self.pid), fds=procstat.fd_count(self.pid),
                          cpu=procstat.cpu_seconds(self.pid))
            try:
                sample.update(parse_metrics(admin_get(admin, "/metrics")[1]))
                status, body = admin_get(admin, "/readyz?verbose")
                self.readyz.append((now, status, body))
            except Exception as exc:  # noqa: BLE001
                sample["admin_error"] = repr(exc)
            self.samples.append(sample)
            self.stop_all.wait(1.0)

    # -- end checks ----------------------------------------------------------------------

    def upstream_sockets(self) -> dict[int, str]:
        return procstat.tcp_sockets_to(self.pid, self.upstream_ports)

    def leak_check(self) -> dict:
        """After the load stopped: accounted for by the pool now, none after its timeout."""
        admin = self.gatehouse.admin_port
        result = {}
        # Every replica up, so that nothing is refused while we look.
        for replica in self.replicas:
            if not replica.running:
                replica.start()
        # 1. In flight drops to zero; connections held equal those the pool reports idle.
        deadline = time.monotonic() + 10
        while True:
            time.sleep(0.6)  # workers publish counters every 250 ms
            metrics = parse_metrics(admin_get(admin, "/metrics")[1])
            socks = self.upstream_sockets()
            established = sum(1 for s in socks.values() if s == "ESTABLISHED")
            in_flight = sum(metrics["in_flight"].values())
            idle = sum(metrics["idle"].values())
            result["accounting"] = dict(sockets=len(socks), established=established,
                                        idle=idle, in_flight=in_flight,
                                        client_open=metrics["open"],
                                        states=dict(collections.Counter(socks.values())))
            if (in_flight == 0 and metrics["open"] == 0 and len(socks) <= idle) \
                    or time.monotonic() > deadline:
                break
        acc = result["accounting"]
        if acc["in_flight"] != 0:
            self.failures.append(f"{acc['in_flight']:.0f} upstream exchanges still in flight "
                                 "after the load stopped")
        if acc["client_open"] != 0:
            self.failures.append(f"{acc['client_open']:.0f} client connections still open "
                                 "after every client closed")
        if acc["sockets"] > acc["idle"]:
            self.failures.append(f"{acc['sockets']} sockets to upstreams but the pools report "
                                 f"{acc['idle']:.0f} idle: {acc['states']}")
        # 2. After upstream_keepalive, no connection survives (health probes come and go:
        #    only a socket seen in every sample over 3 s counts).
        time.sleep(UPSTREAM_KEEPALIVE_S + 2.5)
        seen = None
        for _ in range(4):
            socks = self.upstream_sockets()
            inodes = set(socks)
            seen = inodes if seen is None else seen & inodes
            time.sleep(1.0)
        metrics = parse_metrics(admin_get(admin, "/metrics")[1])
        result["after_timeout"] = dict(persistent_sockets=len(seen),
                                       idle=sum(metrics["idle"].values()),
                                       in_flight=sum(metrics["in_flight"].values()))
        if seen:
            self.failures.append(f"{len(seen)} upstream connections still open "
                                 f"{UPSTREAM_KEEPALIVE_S + 6}s after the load stopped "
                                 f"(upstream_keepalive {UPSTREAM_KEEPALIVE_S}s)")
        if result["after_timeout"]["idle"]:
            self.failures.append("pools still report idle connections after upstream_keepalive")
        return result

    # -- main ----------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.setup()
            self.t0 = time.monotonic()
            self.wall0 = time.time()
            self.stats = Stats(self.t0, self.period)
            load = Load(self.gatehouse.ports[0], self.gatehouse.ports[1], self.ca.cert,
                        self.stats, self.stop_load)
            sampler = threading.Thread(target=self.sampler, daemon=True, name="sampler")
            faults = threading.Thread(target=self.faults, daemon=True, name="faults")
            workers = load.threads()
            sampler.start()
            for thread in workers:
                thread.start()
            faults.start()
            end = self.t0 + self.duration
            while time.monotonic() < end and not self.stop_load.is_set():
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            self.stop_load.set()
            self.load_end = time.monotonic()
            log("load stopped; waiting for clients")
            for thread in workers:
                thread.join(timeout=CLIENT_TIMEOUT + 10)
                if thread.is_alive():
                    self.failures.append(f"load thread {thread.name} did not stop")
            self.stop_all.set()
            faults.join(timeout=40)
            sampler.join(timeout=10)
            if self.pg and self.pg.proc is None:
                self.pg.start()
            if self.crashed:
                self.failures.append(f"crash: {self.crashed}")
                self.leaks = {}
            else:
                self.leaks = self.leak_check()
            self.exit_code = self.gatehouse.stop(timeout=10)
            if not self.crashed and self.exit_code != 0:
                self.failures.append(f"gatehouse exited with {self.exit_code} on SIGTERM")
            self.analyse()
            return 1 if self.failures else 0
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        self.stop_load.set()
        self.stop_all.set()
        if self.gatehouse:
            try:
                self.stderr_text = self.gatehouse.stderr()
            except Exception:  # noqa: BLE001
                self.stderr_text = ""
            self.stderr_tail = self.stderr_text[-3000:]
            self.gatehouse.stop(timeout=5)
            if not self.args.keep:
                self.gatehouse.cleanup()
        for replica in self.replicas:
            replica.stop()
        if self.pg:
            self.pg.cleanup()
        if self.pg_template:
            self.pg_template.cleanup()
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- analysis ------------------------------------------------------------------------

    def access_log_entries(self, rids: set[str]) -> dict[str, tuple[int, str]]:
        """rid -> (status, upstream label) from Gatehouse's access log."""
        found = {}
        if not rids:
            return found
        pattern = re.compile(r'"[A-Z]+ /[a-z]+/([a-z0-9]+-\d+)\S* HTTP/[\d.]+" (\d+) \d+ (\S+)')
        with open(self.gatehouse.stdout_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                match = pattern.search(line)
                if match and match.group(1) in rids:
                    found[match.group(1)] = (int(match.group(2)), match.group(3))
        return found

    def attribute(self) -> None:
        """An error is attributed to a killed replica when a kill happened while the request
        was in flight (±0.5 s) and, when known, it was the replica that served it."""
        errors = self.stats.errors
        entries = self.access_log_entries({e["rid"] for e in errors})
        for e in errors:
            status, upstream = entries.get(e["rid"], (None, None))
            e["logged_status"], e["logged_upstream"] = status, upstream
            cause = None
            for t, name, port in self.kills:
                if not e["start"] - 0.5 <= t <= e["end"] + 0.5:
                    continue
                if e["replica"] and e["replica"] != name:
                    continue
                if upstream and upstream not in ("-", f"127.0.0.1:{port}"):
                    continue
                cause = f"{name} killed at +{t - self.t0:.1f}s"
                break
            e["cause"] = cause

    def analyse(self) -> None:
        self.attribute()
        errors = self.stats.errors
        self.unattributed = [e for e in errors if e["strict"] and not e["cause"]]
        if self.unattributed:
            self.failures.append(f"{len(self.unattributed)} errors on idempotent requests or "
                                 "tunnels not explained by a killed replica")
        crashes = [e for e in errors if e["kind"] == "driver_crash"]
        if crashes:
            self.failures.append(f"driver crashed: {crashes[0]['detail']}")
        self.rows = self.period_rows()
        usable = [r for r in self.rows[1:] if r["samples"]]
        self.slopes = {}
        for key, unit, tolerance in (("rss", "KiB", None), ("fds", "fds", None)):
            xs = [r["mid_min"] for r in usable]
            ys = [r[key] for r in usable]
            fit = procstat.least_squares(xs, ys)
            mean = statistics.mean(ys) if ys else 0
            span = (xs[-1] - xs[0]) if len(xs) > 1 else 0
            drift = fit["slope"] * span
            allowed = max(2048.0, 0.05 * mean) if key == "rss" else max(8.0, 0.1 * mean)
            noise = 2 * fit["slope_se"] * span
            flat = drift <= max(allowed, noise)
            self.slopes[key] = dict(fit, mean=mean, span=span, drift=drift, allowed=allowed,
                                    noise=noise, flat=flat, unit=unit)
            if len(xs) < 3:
                self.failures.append(f"too few periods to fit the {key} slope")
            elif not flat:
                self.failures.append(f"{key} grows {fit['slope']:.1f} {unit}/min after warm-up "
                                     f"({drift:.0f} {unit} over {span:.1f} min; allowed "
                                     f"{max(allowed, noise):.0f})")
        if self.swaps:
            t, fp = self.swaps[-1]
            served = [ft for ft, f in self.stats.fingerprints if f == fp and ft >= t]
            if not served:
                self.failures.append("no full handshake presented the swapped certificate")
        if not self.stats.handshakes["resumed"]:
            self.failures.append("no TLS session was resumed")
        self.check_readiness()
        stderr = getattr(self, "stderr_text", "")
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            if marker in stderr:
                self.failures.append(f"gatehouse stderr has {marker!r}")
        ok_total = sum(self.stats.ok.values())
        if ok_total == 0:
            self.failures.append("no request succeeded")

    def check_readiness(self) -> None:
        """/readyz must follow PostgreSQL: 503 while it is stopped, 200 again after."""
        stops = [t for t, w, _ in self.events if w == "pg_stop"]
        starts = [t for t, w, _ in self.events if w == "pg_start"]
        last_poll = self.readyz[-1][0] if self.readyz else 0
        self.readiness = []
        for ts in stops:
            te = min([t for t in starts if t > ts], default=None)
            saw_down = any(ts < t <= (te or last_poll) and s == 503 for t, s, _ in self.readyz)
            back = None
            if te is not None:
                back = next((t - te for t, s, _ in self.readyz if t > te and s == 200), None)
            self.readiness.append(dict(stop=ts - self.t0, start=(te - self.t0) if te else None,
                                       saw_503=saw_down, back_after=back))
            if not saw_down:
                self.failures.append(f"/readyz never answered 503 while PostgreSQL was stopped "
                                     f"(+{ts - self.t0:.0f}s)")
            if te is not None and back is None and last_poll > te + 10:
                self.failures.append(f"/readyz did not answer 200 again after PostgreSQL "
                                     f"started (+{te - self.t0:.0f}s)")

    def period_rows(self) -> list[dict]:
        n = max(1, int(round(self.duration / self.period)))
        rows = []
        for i in range(n):
            lo, hi = self.t0 + i * self.period, self.t0 + (i + 1) * self.period
            inside = [s for s in self.samples if lo <= s["t"] < hi]
            before = [s for s in self.samples if s["t"] < lo] or self.samples[:1]
            first = before[-1] if before else None
            last = inside[-1] if inside else None
            row = dict(period=i + 1, mid_min=(i + 0.5) * self.period / 60.0,
                       samples=len(inside))
            if inside:
                row["rss"] = statistics.median(s["rss"] for s in inside)
                row["rss_max"] = max(s["rss"] for s in inside)
                row["fds"] = statistics.median(s["fds"] for s in inside)
                row["fds_max"] = max(s["fds"] for s in inside)
                row["cpu"] = last["cpu"] - first["cpu"]
                row["gh_requests"] = last.get("requests", 0) - first.get("requests", 0)
                row["cpu_us_per_req"] = (1e6 * row["cpu"] / row["gh_requests"]
                                         if row["gh_requests"] else 0)
            ok = {scen: c for (p, scen), c in self.stats.ok.items() if p == i}
            row["ok"] = sum(ok.values())
            row["ok_by"] = ok
            errs = [e for e in self.stats.errors if e["period"] == i]
            row["errors"] = dict(collections.Counter(e["kind"] for e in errs))
            row["unattributed"] = sum(1 for e in errs if e["strict"] and not e["cause"])
            row["aborted"] = self.stats.aborted[i]
            row["events"] = collections.Counter(w for t, w, _ in self.events if lo <= t < hi)
            rows.append(row)
        return rows

    # -- report ----------------------------------------------------------------------------

    def report(self) -> str:
        unit = "min" if self.period == 60 else f"{self.period:.0f}s"
        lines = [f"Soak: {self.duration:.0f} s, period {unit}, gatehouse pid {self.pid}, "
                 f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self.wall0))}",
                 "",
                 f"| {unit} | RSS KiB (median/max) | fds (median/max) | CPU s | requests (proxy) "
                 "| ok (clients) | CPU µs/req | errors by kind | unattributed | aborted POSTs "
                 "| faults |",
                 "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
        for r in self.rows:
            if not r["samples"]:
                continue
            errs = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "-"
            faults = ", ".join(f"{k} {v}" for k, v in sorted(r["events"].items())) or "-"
            lines.append(
                f"| {r['period']} | {r['rss']:.0f} / {r['rss_max']} "
                f"| {r['fds']:.0f} / {r['fds_max']} | {r['cpu']:.1f} | {r['gh_requests']:.0f} "
                f"| {r['ok']} | {r['cpu_us_per_req']:.0f} | {errs} | {r['unattributed']} "
                f"| {r['aborted']} | {faults} |")
        lines.append("")
        for key, s in self.slopes.items():
            lines.append(f"{key} slope over periods 2..N: {s['slope']:+.2f} {s['unit']}/min "
                         f"(±{s['slope_se']:.2f} s.e.), drift {s['drift']:+.0f} {s['unit']} "
                         f"over {s['span']:.2f} min, mean {s['mean']:.0f}, allowed "
                         f"{max(s['allowed'], s['noise']):.0f} -> "
                         f"{'flat' if s['flat'] else 'GROWING'}")
        late = [r for r in self.rows[len(self.rows) // 2:] if r["samples"]]
        if len(late) >= 4:
            for key, unit in (("rss", "KiB"), ("fds", "fds")):
                fit = procstat.least_squares([r["mid_min"] for r in late], [r[key] for r in late])
                lines.append(f"{key} slope over periods {late[0]['period']}..{late[-1]['period']} "
                             f"(for information): {fit['slope']:+.2f} {unit}/min "
                             f"(±{fit['slope_se']:.2f} s.e.)")
        by_scen = collections.Counter()
        for (p, scen), c in self.stats.ok.items():
            by_scen[scen] += c
        lines.append("ok by scenario: " + ", ".join(f"{k} {v}" for k, v in sorted(by_scen.items())))
        lines.append(f"TLS (client side): {dict(self.stats.handshakes)}; certificate swaps "
                     f"{len(self.swaps)}; reloads {self.reload_count}; kills {len(self.kills)}")
        pg_down = [s for t, s, _ in self.readyz if s == 503]
        lines.append(f"/readyz: {len(self.readyz)} polls, {len(pg_down)} answered 503; "
                     "PostgreSQL stops: " + ", ".join(
                         f"+{r['stop']:.0f}s 503 {'seen' if r['saw_503'] else 'NOT SEEN'}, "
                         f"200 again {r['back_after']:.1f}s after start"
                         if r["back_after"] is not None else
                         f"+{r['stop']:.0f}s 503 {'seen' if r['saw_503'] else 'NOT SEEN'}"
                         for r in getattr(self, "readiness", [])))
        errs = collections.Counter((e["scenario"], e["kind"], bool(e["cause"]))
                                   for e in self.stats.errors)
        lines.append("errors (scenario, kind, attributed): " + (", ".join(
            f"{s}/{k}/{'killed replica' if a else 'UNEXPLAINED'} {n}"
            for (s, k, a), n in sorted(errs.items())) or "none"))
        for e in self.unattributed[:20]:
            lines.append(f"  unexplained: {e['scenario']} {e['kind']} {e['rid']} at "
                         f"+{e['start'] - self.t0:.2f}..+{e['end'] - self.t0:.2f}s "
                         f"logged {e['logged_status']} {e['logged_upstream']} {e['detail']}")
        lines.append(f"leak check: {json.dumps(self.leaks)}")
        lines.append(f"gatehouse exit code on SIGTERM: {self.exit_code}")
        lines.append("VERDICT: " + ("PASS" if not self.failures else
                                    "FAIL\n  - " + "\n  - ".join(self.failures)))
        return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=None,
                        help="overrides --minutes (CI: 60)")
    parser.add_argument("--bin", default=harness.GATEHOUSE_BIN)
    parser.add_argument("--kill-interval", type=float, default=20)
    parser.add_argument("--reload-interval", type=float, default=30)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--report", help="also write the report (and JSON rows) here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()
    args.bin = os.path.abspath(args.bin)

    def interrupt(signum, frame):  # SIGTERM (a CI timeout) cleans up like Ctrl-C
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    soak = Soak(args)
    interrupted = False
    code = 1
    try:
        code = soak.run()
    except KeyboardInterrupt:
        interrupted = True
    if interrupted or not hasattr(soak, "rows"):
        if hasattr(soak, "stderr_tail"):
            sys.stderr.write(soak.stderr_tail)
        return 1
    text = soak.report()
    print(text)
    if code and getattr(soak, "stderr_tail", ""):
        sys.stderr.write("---- gatehouse stderr (tail) ----\n" + soak.stderr_tail + "\n")
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")
        with open(args.report + ".json", "w") as f:
            json.dump(dict(rows=soak.rows, slopes=soak.slopes, leaks=soak.leaks,
                           failures=soak.failures, events=[(t - soak.t0, w, d) for t, w, d in
                                                           soak.events],
                           errors=[{k: (v - soak.t0 if k in ("start", "end") else v)
                                    for k, v in e.items()} for e in soak.stats.errors]),
                      f, indent=1, default=str)
    log(f"done in {time.monotonic() - started:.0f}s, exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
