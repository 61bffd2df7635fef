"""HTTP/2 test helpers around the frame-level client (h2_client): configs with h2
listeners, recording upstreams and an upstream concurrency probe, a WebSocket over TLS on
the listener that offers h2, and a Node.js http2 client runner.

Everything binds or connects to 127.0.0.1 and every socket operation has a timeout.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import Callable, Sequence

from h2_client import AUTHORITY, certificates, client_tls_context
from harness import LOCALHOST, Request, Upstream, UpstreamConnection, make_config


# --------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------


def listener_section(*, tls: bool = True, http2: bool | None = None,
                     h2c: bool | None = None, extra_tls: dict | None = None) -> str:
    """One [[listener]] (with [listener.tls] when tls) on 127.0.0.1:0. http2/h2c None =
    key left out (the default applies)."""
    lines = ["[[listener]]", f'address = "{LOCALHOST}:0"']
    if h2c is not None:
        lines.append(f"h2c = {'true' if h2c else 'false'}")
    if tls:
        certs = certificates()
        lines += ["[listener.tls]",
                  f"certificates = [{{ cert = {json.dumps(certs['cert'])}, "
                  f"key = {json.dumps(certs['key'])} }}]"]
        if http2 is not None:
            lines.append(f"http2 = {'true' if http2 else 'false'}")
        for key, value in (extra_tls or {}).items():
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def h2_config(upstreams: dict, routes: list[dict] | None = None, *,
              listeners: Sequence[str] | None = None, **kwargs) -> str:
    """make_config without its plain listener, plus `listeners` (listener_section()
    texts; default one TLS listener with the default http2 setting), in ready-file order."""
    base = make_config(upstreams, routes, listeners=0, **kwargs)
    return base + "\n" + "\n".join(listeners or [listener_section()])


# --------------------------------------------------------------------------------------
# Upstream helpers
# --------------------------------------------------------------------------------------


class RecordingUpstream(Upstream):
    """An Upstream that also records which connection carried each request head (before
    its body is read) and which connections have ended, so a test can tell whether a
    connection that carried a broken request was closed rather than reused.

    on_head(conn, head), when given, runs as soon as a head arrived, before its body is
    read: it may answer early, as an upstream that reads the body afterwards does."""

    def __init__(self, *args, on_head: Callable[[UpstreamConnection, bytes], None] | None = None,
                 **kwargs):
        self.head_log: list[tuple[int, bytes]] = []
        self.ended_ids: set[int] = set()
        self.on_head = on_head
        super().__init__(*args, **kwargs)

    def _read_request(self, reader, conn):
        if not getattr(reader, "_head_hooked", False):
            original = reader.read_until

            def read_until(delimiter: bytes, limit: int) -> bytes:
                data = original(delimiter, limit)
                if delimiter == b"\r\n\r\n":
                    with self._lock:
                        self.head_log.append((conn.id, data))
                    if self.on_head is not None:
                        self.on_head(conn, data)
                return data

            reader.read_until = read_until
            reader._head_hooked = True
        return super()._read_request(reader, conn)

    def _serve(self, sock, connection_id: int) -> None:
        try:
            super()._serve(sock, connection_id)
        finally:
            with self._lock:
                self.ended_ids.add(connection_id)
                self._lock.notify_all()

    def connections_with_head(self, marker: str) -> set[int]:
        """Ids of the connections that received a head for the target `marker` (exactly:
        "/cl/zero" must not match the "/cl/zero-late-next" of another test)."""
        needle = marker.encode("latin-1")
        with self._lock:
            return {cid for cid, head in self.head_log
                    if head.split(b"\r\n", 1)[0].split(b" ")[1:2] == [needle]}

    def complete_targets(self) -> list[str]:
        return self.request_targets()

    def wait_ended(self, ids: set[int], timeout: float = 3.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: ids <= self.ended_ids, timeout)


class UpstreamSnapshot:
    """What an Upstream had received at one moment, to assert nothing more arrived."""

    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.connections = upstream.connections
        self.bytes = upstream.bytes_received
        self.requests = len(upstream.requests)
        self.heads = len(upstream.heads)

    def new_bytes(self) -> bytes:
        return self.upstream.received_bytes()[self.bytes:]

    def unchanged(self) -> bool:
        return (self.upstream.connections, self.upstream.bytes_received,
                len(self.upstream.requests)) == (self.connections, self.bytes, self.requests)

    def describe(self) -> str:
        return (f"upstream got {self.upstream.connections - self.connections} new connections, "
                f"{self.upstream.bytes_received - self.bytes} bytes: {self.new_bytes()[:300]!r}")


def established_to(port: int) -> int:
    """ESTABLISHED TCP sockets whose local port is `port` (the server side of the
    connections to a listener on 127.0.0.1:port), from /proc/net/tcp. A connection the
    peer closed is CLOSE_WAIT there and not counted."""
    count = 0
    suffix = f":{port:04X}"
    try:
        with open("/proc/net/tcp", encoding="ascii") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1].endswith(suffix) and parts[3] == "01":
                    count += 1
    except OSError:
        return -1
    return count


TCP_ESTABLISHED = 1


def tcp_state(sock: socket.socket) -> int | None:
    """The kernel's TCP state of a socket (tcpi_state: 1 ESTABLISHED, 8 CLOSE_WAIT once the
    peer closed), without reading from it; None if unknown."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return None


def wait_readable_or_closed(sock: socket.socket, seconds: float) -> bool:
    """Waits up to `seconds`; True when the peer closed (EOF/reset) meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], remaining)
        except (OSError, ValueError):
            return True
        if readable:
            try:
                return sock.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True


class ConcurrencyProbe:
    """A handler that records how many exchanges are in progress at once: `peak` as this
    server's threads see it, `peak_live` counting only those whose connection the proxy
    still holds open (kernel TCP state, so a close is seen at once). `hold` seconds per request (ended early when the proxy closes
    the connection), or until `release` is set when `gate` is used. With `match`, only
    targets starting with it are held and counted; others are answered at once."""

    def __init__(self, hold: float = 0.0, gate: bool = False, body: bytes = b"ok",
                 port_of: Callable[[], int] | None = None, max_hold: float = 15.0,
                 match: str | None = None):
        self.match = match
        self.hold = hold
        self.release = threading.Event() if gate else None
        self.body = body
        self.port_of = port_of
        self.max_hold = max_hold
        self.lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.peak_live = 0
        self.peak_established = 0
        self._active: set[socket.socket] = set()
        self.aborted = 0
        self.finished = 0

    def __call__(self, request: Request, conn: UpstreamConnection) -> None:
        if self.match is not None and not request.target.startswith(self.match):
            conn.respond(200, [("X-Upstream", conn.upstream.name),
                               ("X-Target", request.target)], self.body)
            return
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
            self._active.add(conn.sock)
            # Kernel truth, free of this thread's lag in noticing a close: exchanges whose
            # connection the proxy has not closed yet (ESTABLISHED, not CLOSE_WAIT).
            live = sum(1 for s in self._active if tcp_state(s) == TCP_ESTABLISHED)
            self.peak_live = max(self.peak_live, live)
        if self.port_of is not None:
            established = established_to(self.port_of())
            with self.lock:
                self.peak_established = max(self.peak_established, established)
        try:
            if self.release is not None:
                deadline = time.monotonic() + self.max_hold
                closed = False
                while not self.release.is_set() and time.monotonic() < deadline:
                    if wait_readable_or_closed(conn.sock, 0.05):
                        closed = True
                        break
            else:
                closed = wait_readable_or_closed(conn.sock, self.hold) if self.hold else False
            if closed:
                with self.lock:
                    self.aborted += 1
                conn.close()
                return
            conn.respond(200, [("X-Upstream", conn.upstream.name),
                               ("X-Target", request.target)], self.body)
            with self.lock:
                self.finished += 1
        finally:
            with self.lock:
                self.current -= 1
                self._active.discard(conn.sock)


# --------------------------------------------------------------------------------------
# WebSocket over TLS with ALPN http/1.1 (the same listener that offers h2)
# --------------------------------------------------------------------------------------


def tls_websocket(port: int, path: str = "/ws", alpn: Sequence[str] | None = ("http/1.1",),
                  host: str = AUTHORITY, timeout: float = 5.0):
    """websocket.WebSocket over a TLS connection; returns (ws, negotiated ALPN)."""
    import base64
    from websocket import WebSocket

    raw = socket.create_connection((LOCALHOST, port), timeout=timeout)
    try:
        sock = client_tls_context(alpn).wrap_socket(raw, server_hostname=AUTHORITY)
    except BaseException:
        raw.close()
        raise
    ws = WebSocket.__new__(WebSocket)
    ws.sock = sock
    ws.buf = bytearray()
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = ws._read_until(b"\r\n\r\n")
    ws.status = int(head.split(b" ", 2)[1])
    ws.head = head.decode("latin-1")
    return ws, sock.selected_alpn_protocol()


# --------------------------------------------------------------------------------------
# Node.js http2 client
# --------------------------------------------------------------------------------------

NODE = os.environ.get("NODE", "node")
HERE = os.path.dirname(os.path.abspath(__file__))
SOCKETIO_DIR = os.path.join(HERE, "socketio")


def node_version() -> tuple[int, ...] | None:
    try:
        out = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        return tuple(int(p) for p in out.stdout.strip().lstrip("v").split("."))
    except ValueError:
        return None


# One script, several scenarios; the scenario is a JSON object on argv[2]. It prints one
# JSON line with the results (and exits 0 unless it crashed).
NODE_H2_CLIENT = r"""
'use strict';
const http2 = require('http2');
const crypto = require('crypto');
const fs = require('fs');

const cfg = JSON.parse(process.argv[2]);
const out = { errors: [] };
const ca = cfg.ca ? fs.readFileSync(cfg.ca) : undefined;

function connect(extra) {
  const session = http2.connect(cfg.url, Object.assign({ ca, servername: cfg.servername,
    settings: cfg.settings || {} }, extra || {}));
  session.on('error', (e) => out.errors.push('session: ' + e.message));
  return session;
}

function pattern(total, seed) {
  // Deterministic bytes (not the harness pattern; both ends hash what they see).
  const buf = Buffer.alloc(total);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < total; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; buf[i] = x & 0xff; }
  return buf;
}

function sha(buf) { return crypto.createHash('sha256').update(buf).digest('hex'); }

// One request; resolves {status, headers, sha, length, ms}.
function request(session, headers, body, opts) {
  opts = opts || {};
  return new Promise((resolve) => {
    const started = Date.now();
    const req = session.request(headers, { endStream: !body });
    const hash = crypto.createHash('sha256');
    let length = 0, status = 0, respHeaders = {};
    req.on('response', (h) => { status = h[':status']; respHeaders = h; });
    req.on('data', (chunk) => {
      hash.update(chunk); length += chunk.length;
      if (opts.slowRead) { req.pause(); setTimeout(() => req.resume(), opts.slowRead); }
    });
    req.on('end', () => resolve({ status, headers: respHeaders, sha: hash.digest('hex'), length,
                                  ms: Date.now() - started }));
    req.on('error', (e) => resolve({ status, error: e.message, length, ms: Date.now() - started }));
    req.on('close', () => { if (req.rstCode) resolve({ status, error: 'rst ' + req.rstCode, length,
                                                          ms: Date.now() - started }); });
    if (body) {
      // Write in pieces so flow control and backpressure are exercised.
      let offset = 0;
      const piece = 256 * 1024;
      const pump = () => {
        while (offset < body.length) {
          const end = Math.min(offset + piece, body.length);
          const ok = req.write(body.subarray(offset, end));
          offset = end;
          if (!ok) { req.once('drain', pump); return; }
        }
        req.end();
      };
      pump();
    }
  });
}

const scenarios = {
  // Uploads and downloads of the given sizes; both ends hash.
  async bodies() {
    const session = connect();
    out.results = [];
    for (const size of cfg.sizes) {
      const body = pattern(size, size + 7);
      const up = await request(session, { ':method': 'POST', ':path': '/echo/' + size,
        'content-type': 'application/octet-stream', ...(cfg.noContentLength ? {} : { 'content-length': String(size) }) },
        size ? body : null);
      out.results.push({ kind: 'upload', size, sent_sha: sha(body), ...up });
    }
    for (const size of cfg.downloads || []) {
      const down = await request(session, { ':method': 'GET', ':path': '/download/' + size });
      out.results.push({ kind: 'download', size, ...down });
    }
    out.remoteSettings = session.remoteSettings;
    out.alpn = session.alpnProtocol;
    session.close();
  },
  // N concurrent requests on one session.
  async concurrent() {
    const session = connect();
    await new Promise((r) => session.once('remoteSettings', r));
    out.remoteSettings = session.remoteSettings;
    const started = Date.now();
    const all = [];
    for (let i = 0; i < cfg.count; i++) all.push(request(session, { ':method': 'GET', ':path': cfg.path + i }));
    out.results = await Promise.all(all);
    out.ms = Date.now() - started;
    session.close();
  },
  // One slow request and many fast ones on the same session.
  async slowMixed() {
    const session = connect();
    const slow = request(session, { ':method': 'GET', ':path': cfg.slowPath });
    await new Promise((r) => setTimeout(r, 100));
    const fastStarted = Date.now();
    const fast = [];
    for (let i = 0; i < cfg.fastCount; i++) fast.push(request(session, { ':method': 'GET', ':path': cfg.fastPath + i }));
    out.fast = await Promise.all(fast);
    out.fastMs = Date.now() - fastStarted;
    out.slow = await slow;
    session.close();
  },
  // A client that reads one chunk, then pauses, over and over.
  async slowReader() {
    const session = connect();
    out.result = await request(session, { ':method': 'GET', ':path': cfg.path }, null, { slowRead: cfg.pauseMs });
    session.close();
  },
  // An in-flight request while the server sends GOAWAY.
  async goaway() {
    const session = connect();
    out.goaways = [];
    session.on('goaway', (code, last) => out.goaways.push({ code, last }));
    const pending = request(session, { ':method': 'GET', ':path': cfg.path });
    process.stdout.write(JSON.stringify({ started: true }) + '\n');
    out.result = await pending;
    await new Promise((r) => setTimeout(r, 200));
    session.close();
  },
  // Engine.IO v4 long-polling (Socket.IO protocol 5), every session on ONE h2 connection.
  async engineio() {
    const session = connect();
    const base = cfg.path || '/socket.io/';
    async function call(method, query, body) {
      const headers = { ':method': method, ':path': base + '?EIO=4&transport=polling' + query };
      if (body !== undefined) headers['content-type'] = 'text/plain;charset=UTF-8';
      const res = await new Promise((resolve) => {
        const req = session.request(headers, { endStream: body === undefined });
        const chunks = [];
        let status = 0;
        req.on('response', (h) => { status = h[':status']; });
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => resolve({ status, text: Buffer.concat(chunks).toString() }));
        req.on('error', (e) => resolve({ status, text: '', error: e.message }));
        if (body !== undefined) req.end(body);
      });
      if (res.status === 400 && /Session ID unknown/.test(res.text)) out.sessionUnknown++;
      return res;
    }
    async function client(i) {
      const hs = await call('GET', '&t=' + i + 'h');
      if (hs.status !== 200 || hs.text[0] !== '0') throw new Error('handshake ' + hs.status + ' ' + hs.text);
      const sid = JSON.parse(hs.text.slice(1)).sid;
      const q = '&sid=' + encodeURIComponent(sid);
      const connectRes = await call('POST', q, '40');
      if (connectRes.status !== 200) throw new Error('connect post ' + connectRes.status + ' ' + connectRes.text);
      const replicas = new Set();
      let acks = 0;
      let pending = '';
      // Poll until the CONNECT answer arrives; then per message: POST the event and
      // long-poll for its ack while the POST is in flight on the same connection.
      const pollUntil = async (pred) => {
        for (let n = 0; n < 20; n++) {
          const r = await call('GET', q + '&t=' + i + 'p' + n);
          if (r.status !== 200) throw new Error('poll ' + r.status + ' ' + r.text);
          for (const pkt of r.text.split('\x1e')) { pending = pkt; if (pred(pkt)) return pkt; }
        }
        throw new Error('no expected packet, last ' + pending);
      };
      await pollUntil((p) => p.startsWith('40'));
      for (let m = 0; m < cfg.messages; m++) {
        const ackId = m + 1;
        const poll = pollUntil((p) => p.startsWith('43' + ackId + '['));
        const post = call('POST', q, '42' + ackId + JSON.stringify(['echo', { i, m }]));
        const [ack, posted] = await Promise.all([poll, post]);
        if (posted.status !== 200) throw new Error('post ' + posted.status);
        const reply = JSON.parse(ack.slice(2 + String(ackId).length))[0];
        if (reply.payload.i !== i || reply.payload.m !== m) throw new Error('wrong echo');
        replicas.add(reply.replica);
        acks++;
      }
      await call('POST', q, '1');  // engine.io close
      return { sid, replicas: [...replicas], acks };
    }
    out.sessionUnknown = 0;
    const results = await Promise.all(Array.from({ length: cfg.clients }, (_, i) =>
      client(i).catch((e) => ({ error: e.message }))));
    out.results = results;
    session.close();
  },
};

const timer = setTimeout(() => { out.errors.push('overall timeout'); console.log(JSON.stringify(out)); process.exit(2); },
                         cfg.timeoutMs || 60000);
scenarios[cfg.scenario]().then(() => {
  clearTimeout(timer);
  console.log(JSON.stringify(out));
  process.exit(0);
}, (e) => {
  out.errors.push('crash: ' + (e && e.stack || e));
  console.log(JSON.stringify(out));
  process.exit(1);
});
"""

_node_script: str | None = None


def node_script() -> str:
    global _node_script
    if _node_script is None:
        directory = tempfile.mkdtemp(prefix="gatehouse-h2-node-")
        atexit.register(shutil.rmtree, directory, True)
        path = os.path.join(directory, "h2client.js")
        with open(path, "w", encoding="utf-8") as f:
            f.write(NODE_H2_CLIENT)
        _node_script = path
    return _node_script


def node_h2(scenario: dict, timeout: float = 90.0) -> dict:
    """Runs one scenario of the Node http2 client; returns its JSON result."""
    result = subprocess.run([NODE, node_script(), json.dumps(scenario)], capture_output=True,
                            text=True, timeout=timeout, cwd=HERE)
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise AssertionError(f"node printed no result (exit {result.returncode}):\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    data = json.loads(lines[-1])
    data["exit"] = result.returncode
    data["stderr"] = result.stderr[-2000:]
    return data


def node_h2_start(scenario: dict) -> subprocess.Popen:
    """Starts a scenario in the background (the caller waits and reads stdout)."""
    return subprocess.Popen([NODE, node_script(), json.dumps(scenario)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
