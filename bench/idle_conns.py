#!/usr/bin/python3
"""Opens N keep-alive client connections, sends one request on each, keeps them open.

Used by bench/run.py to measure the memory a proxy spends per idle client connection
(or, with --websocket, per idle WebSocket tunnel).

    idle_conns.py --port 8080 -n 4000 [--path /] [--websocket] [--hold 120]

Connections are opened at most --batch at a time (so no listen backlog overflows); each
sends one request and reads the whole response (HTTP/1.1, Content-Length body) or, with
--websocket, the 101 head. Then the script prints one line

    READY ok=<connections that got the expected answer> failed=<the others>

and holds every connection open, silent, until its stdin is closed (or --hold seconds
pass), then closes them all and exits. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import os
import selectors
import socket
import sys
import time


def request_bytes(path: str, websocket: bool) -> bytes:
    if not websocket:
        return f"GET {path} HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: idle-conns\r\n\r\n".encode()
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: bench.test\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()


class Conn:
    def __init__(self, sock: socket.socket, request: bytes):
        self.sock = sock
        self.out = request
        self.buf = b""
        self.done = False
        self.ok = False

    def response_complete(self, websocket: bool) -> bool:
        """Sets ok/done once the expected answer is fully in buf."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = self.buf[:end].decode("latin-1").split("\r\n")
        parts = head[0].split(" ")
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if websocket:
            self.ok = status == 101
            return True
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(self.buf) < end + 4 + length:
            return False
        self.ok = status == 200
        return True


def open_all(port: int, count: int, path: str, websocket: bool, batch: int,
             deadline: float) -> list[Conn]:
    sel = selectors.DefaultSelector()
    conns: list[Conn] = []
    pending = 0
    opened = 0
    while (opened < count or pending) and time.monotonic() < deadline:
        while opened < count and pending < batch:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            conn = Conn(sock, request_bytes(path, websocket))
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            except OSError:
                conn.done = True
                conns.append(conn)
                opened += 1
                continue
            sel.register(sock, selectors.EVENT_WRITE, conn)
            conns.append(conn)
            opened += 1
            pending += 1
        for key, events in sel.select(timeout=0.5):
            conn: Conn = key.data
            try:
                if events & selectors.EVENT_WRITE and conn.out:
                    sent = conn.sock.send(conn.out)
                    conn.out = conn.out[sent:]
                    if not conn.out:
                        sel.modify(conn.sock, selectors.EVENT_READ, conn)
                    continue
                data = conn.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed")
                conn.buf += data
                if not conn.response_complete(websocket):
                    continue
            except (OSError, ValueError):
                conn.ok = False
            conn.done = True
            sel.unregister(conn.sock)
            pending -= 1
    sel.close()
    return conns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("-n", type=int, default=4000, help="connections to open")
    parser.add_argument("--path", default="/")
    parser.add_argument("--websocket", action="store_true", help="send an Upgrade, expect 101")
    parser.add_argument("--batch", type=int, default=200, help="connections in flight at once")
    parser.add_argument("--hold", type=float, default=120.0, help="max seconds to hold them")
    parser.add_argument("--open-timeout", type=float, default=60.0)
    args = parser.parse_args()

    conns = open_all(args.port, args.n, args.path, args.websocket, args.batch,
                     time.monotonic() + args.open_timeout)
    ok = sum(1 for c in conns if c.ok)
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
        conn.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
