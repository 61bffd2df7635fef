"""Test helpers for WebSocket and Socket.IO: real Node.js replicas (tests/integration/
socketio, packages from npm installed by scripts/setup.sh) and a minimal RFC 6455 client."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOCKETIO_DIR = os.path.join(HERE, "socketio")
NODE = os.environ.get("NODE", "node")


def node_ready() -> str | None:
    """None when Node.js and the npm packages are there, else why not."""
    if not os.path.isdir(os.path.join(SOCKETIO_DIR, "node_modules", "socket.io")):
        return "npm packages missing: run scripts/setup.sh"
    try:
        subprocess.run([NODE, "--version"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return f"node not usable: {e}"
    return None


class Replica:
    """One Socket.IO app replica (node replica.js) on a kernel-chosen port."""

    def __init__(self, replica_id: str):
        self.id = replica_id
        self.proc = subprocess.Popen([NODE, os.path.join(SOCKETIO_DIR, "replica.js"), "0", replica_id],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.kill()
            raise RuntimeError(f"replica {replica_id} failed to start: {line!r}")
        self.port = int(line.split()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def run_clients(url: str, count: int, messages: int, transports: str,
                timeout_ms: int = 15000, env: dict | None = None) -> dict:
    """Runs clients.js (with `env` as its environment when given, e.g. to set
    NODE_EXTRA_CA_CERTS for https URLs); returns its JSON summary."""
    result = subprocess.run([NODE, os.path.join(SOCKETIO_DIR, "clients.js"), url, str(count),
                             str(messages), transports, str(timeout_ms)],
                            capture_output=True, text=True, timeout=timeout_ms / 1000 * 3 + 15,
                            env=env)
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"clients.js printed no summary: {result.stdout}\n{result.stderr}")
    return json.loads(lines[-1])


class WebSocket:
    """A minimal RFC 6455 client over a plain socket: enough to test a proxy's tunnel
    with large, fragmented and binary frames."""

    def __init__(self, port: int, path: str = "/ws", host: str = "gatehouse.test",
                 timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = bytearray()
        head = self._read_until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode("latin-1")

    def _recv(self) -> bytes:
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("connection closed")
        return data

    def _read_until(self, delimiter: bytes) -> bytes:
        while delimiter not in self.buf:
            self.buf += self._recv()
        end = self.buf.index(delimiter) + len(delimiter)
        out = bytes(self.buf[:end])
        del self.buf[:end]
        return out

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self._recv()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        header = bytearray([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        header += mask
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            _mask_fast(payload, mask)
        self.sock.sendall(bytes(header) + masked)

    def send_message(self, payload: bytes, binary: bool = True, fragments: int = 1) -> None:
        size = max(1, -(-len(payload) // fragments))
        parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
        for i, part in enumerate(parts):
            opcode = (2 if binary else 1) if i == 0 else 0
            self.send_frame(opcode, part, fin=i == len(parts) - 1)

    def read_message(self) -> tuple[int, bytes]:
        """Reads frames until a complete data message; returns (opcode, payload)."""
        opcode, payload = None, bytearray()
        while True:
            b0, b1 = self._read_exact(2)
            op, fin, n = b0 & 0x0F, b0 & 0x80, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read_exact(8))[0]
            data = self._read_exact(n)
            if op >= 8:
                if op == 8:
                    raise EOFError("close frame")
                continue  # ping/pong
            if op != 0:
                opcode = op
            payload += data
            if fin:
                return opcode, bytes(payload)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _mask_fast(payload: bytes, mask: bytes) -> bytes:
    """XOR with the repeating 4-byte mask, via one big integer (fast for large frames)."""
    padded = payload + b"\0" * (-len(payload) % 4)
    key = mask * (len(padded) // 4)
    out = (int.from_bytes(padded, "big") ^ int.from_bytes(key, "big")).to_bytes(len(padded), "big")
    return out[:len(payload)]


def wait_closed(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the peer closes `sock` (EOF or reset), or None on timeout."""
    started = time.monotonic()
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started
