#!/usr/bin/python3
"""Opens N TLS connections that negotiate HTTP/2 (ALPN h2), completes the SETTINGS
exchange on each, then holds them open, silent.

Used by bench/run.py (scenario h2_idle, bench/h2bench.py) to measure the memory a proxy
spends per idle HTTP/2 client connection.

    idle_h2.py --port 8443 -n 1000 [--batch 100] [--hold 120]

On each connection: TCP connect, TLS handshake offering only `h2` (no certificate check;
the proxy must select h2), the client preface and an empty SETTINGS frame; then it reads
frames until it has both the server's SETTINGS (which it acknowledges) and the server's
ACK of its own SETTINGS. No request is sent. At most --batch connections are being set
up at once. Then the script prints one line

    READY ok=<connections with the SETTINGS exchange complete> failed=<the others>

(and the first few failure reasons on stderr), holds every connection open until its
stdin is closed (or --hold seconds pass), closes them all and exits. Python 3 standard
library only.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, GOAWAY = 0x4, 0x7
ACK = 0x1


def frame(ftype: int, flags: int, payload: bytes = b"", stream: int = 0) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


class Conn:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.fd = sock.fileno()  # wrap_socket detaches `sock`: the selector keys on the fd
        self.tls: ssl.SSLSocket | None = None
        self.out = b""
        self.buf = b""
        self.got_settings = False  # the server's SETTINGS (acknowledged by us)
        self.got_ack = False  # the server's ACK of ours
        self.done = False
        self.ok = False
        self.why = ""

    def fail(self, why: str) -> None:
        self.done, self.ok, self.why = True, False, why

    def step(self, ctx: ssl.SSLContext) -> int:
        """Advances as far as the socket allows; returns the events to wait for (0 = done)."""
        if self.tls is None:  # the non-blocking connect finished (writable)
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(f"connect: errno {err}")
                return 0
            self.tls = ctx.wrap_socket(self.sock, do_handshake_on_connect=False)
            self.out = None  # handshake pending
        if self.out is None:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                return selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                return selectors.EVENT_WRITE
            if self.tls.selected_alpn_protocol() != "h2":
                self.fail(f"ALPN selected {self.tls.selected_alpn_protocol()!r}, not h2")
                return 0
            self.out = PREFACE + frame(SETTINGS, 0)
        while True:
            while self.out:
                try:
                    self.out = self.out[self.tls.send(self.out):]
                except ssl.SSLWantWriteError:
                    return selectors.EVENT_WRITE
                except ssl.SSLWantReadError:
                    return selectors.EVENT_READ
            if self.got_settings and self.got_ack:
                self.done = self.ok = True
                return 0
            try:
                data = self.tls.recv(65536)
            except ssl.SSLWantReadError:
                return selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                return selectors.EVENT_WRITE
            if not data:
                self.fail("closed by the server")
                return 0
            self.buf += data
            while len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + length:
                    break
                ftype, flags = self.buf[3], self.buf[4]
                payload = self.buf[9:9 + length]
                self.buf = self.buf[9 + length:]
                if ftype == SETTINGS and flags & ACK:
                    self.got_ack = True
                elif ftype == SETTINGS:
                    self.got_settings = True
                    self.out += frame(SETTINGS, ACK)
                elif ftype == GOAWAY:
                    code = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else -1
                    self.fail(f"GOAWAY error code {code}")
                    return 0


def open_all(port: int, count: int, batch: int, deadline: float) -> list[Conn]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    sel = selectors.DefaultSelector()
    conns: list[Conn] = []
    pending = 0
    while (len(conns) < count or pending) and time.monotonic() < deadline:
        while len(conns) < count and pending < batch:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            conn = Conn(sock)
            conns.append(conn)
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            except OSError as exc:
                conn.fail(f"connect: {exc}")
                continue
            sel.register(conn.fd, selectors.EVENT_WRITE, conn)
            pending += 1
        for key, _ in sel.select(timeout=0.5):
            conn = key.data
            try:
                events = conn.step(ctx)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                conn.fail(f"{type(exc).__name__}: {exc}")
                events = 0
            if events:
                sel.modify(conn.fd, events, conn)
            else:
                sel.unregister(conn.fd)
                pending -= 1
    for conn in conns:
        if not conn.done:
            conn.fail("timed out")
    sel.close()
    return conns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-n", type=int, default=1000, help="connections to open")
    parser.add_argument("--batch", type=int, default=100, help="connections set up at once")
    parser.add_argument("--hold", type=float, default=120.0, help="max seconds to hold them")
    parser.add_argument("--open-timeout", type=float, default=60.0)
    args = parser.parse_args()

    conns = open_all(args.port, args.n, args.batch, time.monotonic() + args.open_timeout)
    ok = sum(1 for c in conns if c.ok)
    reasons: dict[str, int] = {}
    for c in conns:
        if not c.ok:
            reasons[c.why] = reasons.get(c.why, 0) + 1
    for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
        print(f"idle_h2: {n} failed: {why}", file=sys.stderr, flush=True)
    print(f"READY ok={ok} failed={args.n - ok}", flush=True)

    # Hold until the parent closes our stdin (or the hold time is up).
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        if sel.select(timeout=max(0.0, end - time.monotonic())):
            if not sys.stdin.buffer.read1(4096):
                break
    for conn in conns:
        (conn.tls or conn.sock).close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
