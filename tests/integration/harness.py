"""Test harness for Gatehouse integration tests (Python 3 standard library only).

Pieces:
  * Gatehouse   - runs the binary on a generated config, waits for its ready file and
                  exposes the ports it bound; captures stdout/stderr to files.
  * Upstream    - a threaded raw-socket HTTP/1.1 origin server written here (not
                  http.server) that records every byte and every parsed request and
                  answers with a per-test handler function.
  * HttpClient  - a keep-alive client over one TCP connection; raw_request() for
                  one-shot raw bytes.
  * make_config - builds a TOML config from a few keyword arguments.
  * RssSampler  - samples the resident memory of a process tree.
  * GatehouseTestCase - unittest base class wiring the above into cleanups and printing
                  the proxy's logs when a test fails.

Everything binds 127.0.0.1 port 0, every socket has a timeout, and every process
started is ended by its PID.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Callable, Iterable, Iterator

GATEHOUSE_BIN = os.environ.get("GATEHOUSE_BIN") or "/work/main/build/proxy/gatehouse"
LOCALHOST = "127.0.0.1"
DEFAULT_HOST = "example.test"
CRLF = b"\r\n"


# --------------------------------------------------------------------------------------
# Headers and message parsing shared by the client and the upstream server
# --------------------------------------------------------------------------------------


class HttpParseError(Exception):
    """The peer sent bytes that are not a valid HTTP/1.1 message."""


class Headers:
    """An ordered list of (name, value) pairs with case-insensitive lookup."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()):
        self.items = list(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.items:
            if key.lower() == name.lower():
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.items if key.lower() == name.lower()]

    def names(self) -> set[str]:
        return {key.lower() for key, _ in self.items}

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.names()

    def __iter__(self):
        return iter(self.items)

    def __repr__(self) -> str:
        return f"Headers({self.items!r})"


def parse_head(head: bytes) -> tuple[str, Headers]:
    """Splits a head (ending in CRLF CRLF) into its start line and headers."""
    lines = head.split(CRLF)
    start = lines[0].decode("latin-1")
    items = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise HttpParseError(f"bad header line {line!r}")
        items.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return start, Headers(items)


def has_token(value: str | None, token: str) -> bool:
    """True when a comma-separated header value lists `token` (case-insensitive)."""
    if value is None:
        return False
    return token.lower() in (part.strip().lower() for part in value.split(","))


class BufferedReader:
    """Buffered reads from a socket (or from fixed bytes when `sock` is None).

    `on_data` sees every byte received, before it is parsed.
    """

    RECV_SIZE = 256 * 1024

    def __init__(self, sock: socket.socket | None, initial: bytes = b"",
                 on_data: Callable[[bytes], None] | None = None):
        self.sock = sock
        self.buf = bytearray(initial)
        self.on_data = on_data

    @classmethod
    def from_bytes(cls, data: bytes) -> "BufferedReader":
        return cls(None, data)

    def _fill(self) -> None:
        if self.sock is None:
            raise EOFError("end of data")
        data = self.sock.recv(self.RECV_SIZE)
        if not data:
            raise EOFError("connection closed by peer")
        if self.on_data:
            self.on_data(data)
        self.buf += data

    def at_eof(self) -> bool:
        """True when no byte is buffered and the peer closed (blocks until it knows)."""
        if self.buf:
            return False
        try:
            self._fill()
        except EOFError:
            return True
        return False

    def read_until(self, delimiter: bytes, limit: int) -> bytes:
        """Returns bytes up to and including `delimiter`."""
        start = 0
        while True:
            index = self.buf.find(delimiter, start)
            if index >= 0:
                end = index + len(delimiter)
                data = bytes(self.buf[:end])
                del self.buf[:end]
                return data
            if len(self.buf) > limit:
                raise HttpParseError(f"no {delimiter!r} within {limit} bytes")
            start = max(0, len(self.buf) - len(delimiter) + 1)
            self._fill()

    def read_line(self, limit: int = 64 * 1024) -> bytes:
        """Returns one CRLF-terminated line without the CRLF."""
        return self.read_until(CRLF, limit)[:-2]

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def stream_exact(self, n: int, sink: Callable[[bytes], None]) -> None:
        """Passes exactly n bytes to sink in pieces, without holding them all."""
        while n > 0:
            if not self.buf:
                self._fill()
            piece = bytes(self.buf[:n])
            del self.buf[:len(piece)]
            sink(piece)
            n -= len(piece)

    def stream_until_close(self, sink: Callable[[bytes], None]) -> None:
        while True:
            if self.buf:
                sink(bytes(self.buf))
                self.buf.clear()
            try:
                self._fill()
            except EOFError:
                return


def read_chunked_body(reader: BufferedReader, sink: Callable[[bytes], None]) -> Headers:
    """Decodes a chunked body into sink; returns the trailer fields."""
    while True:
        line = reader.read_line(limit=4096)
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if not size_text or not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
            raise HttpParseError(f"bad chunk size line {line!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        reader.stream_exact(size, sink)
        if reader.read_exact(2) != CRLF:
            raise HttpParseError("chunk data not followed by CRLF")
    trailers = []
    while True:
        line = reader.read_line()
        if not line:
            return Headers(trailers)
        name, _, value = line.partition(b":")
        trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))


def body_framing(headers: Headers) -> tuple[str, int]:
    """("chunked", 0), ("length", n) or ("none", 0) for a request's headers."""
    te = headers.get_all("Transfer-Encoding")
    if te:
        if [v.strip().lower() for v in te] != ["chunked"]:
            raise HttpParseError(f"unsupported Transfer-Encoding {te!r}")
        if "content-length" in headers:
            raise HttpParseError("both Content-Length and Transfer-Encoding")
        return "chunked", 0
    lengths = set(headers.get_all("Content-Length"))
    if len(lengths) > 1:
        raise HttpParseError(f"conflicting Content-Length {lengths!r}")
    if lengths:
        value = lengths.pop()
        if not value.isdigit():
            raise HttpParseError(f"bad Content-Length {value!r}")
        return "length", int(value)
    return "none", 0


# --------------------------------------------------------------------------------------
# Deterministic data
# --------------------------------------------------------------------------------------

PATTERN_BLOCK = 1 << 20


def pattern_blocks(total: int, seed: int = 1, block: int = PATTERN_BLOCK) -> Iterator[bytes]:
    """Deterministic pseudo-random bytes, `total` of them, in blocks of `block`."""
    index = 0
    while total > 0:
        size = min(block, total)
        yield hashlib.shake_128(f"gatehouse-{seed}-{block}-{index}".encode()).digest(size)
        total -= size
        index += 1


def pattern_bytes(total: int, seed: int = 1) -> bytes:
    return b"".join(pattern_blocks(total, seed))


@functools.lru_cache(maxsize=None)
def pattern_sha256(total: int, seed: int = 1) -> str:
    digest = hashlib.sha256()
    for block in pattern_blocks(total, seed):
        digest.update(block)
    return digest.hexdigest()


def encode_chunked(blocks: Iterable[bytes], chunk_sizes: Iterable[int] = (),
                   trailers: Iterable[tuple[str, str]] = ()) -> Iterator[bytes]:
    """Chunk-encodes `blocks`. With chunk_sizes, data is cut into chunks of those sizes
    (cycled); otherwise each block is one chunk."""
    sizes = list(chunk_sizes)
    pending = bytearray()
    turn = 0

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n" % len(data) + data + CRLF

    for block in blocks:
        if not sizes:
            if block:
                yield chunk(block)
            continue
        pending += block
        out = []
        while len(pending) >= sizes[turn % len(sizes)]:
            size = sizes[turn % len(sizes)]
            out.append(chunk(bytes(pending[:size])))
            del pending[:size]
            turn += 1
        if out:
            yield b"".join(out)
    if pending:
        yield chunk(bytes(pending))
    yield b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers) + CRLF


# --------------------------------------------------------------------------------------
# Upstream: the origin server behind the proxy
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Request:
    """One request as the upstream parsed it."""

    method: str
    target: str
    version: str
    headers: Headers
    framing: str            # "none", "length" or "chunked"
    body: bytes | None      # None when the upstream does not store bodies
    body_length: int
    body_sha256: str
    connection_id: int
    raw_head: bytes


class UpstreamConnection:
    """One accepted connection, handed to handlers to write the response."""

    def __init__(self, upstream: "Upstream", sock: socket.socket, connection_id: int):
        self.upstream = upstream
        self.sock = sock
        self.id = connection_id
        self.keep_alive = True
        self.received = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def respond(self, status: int = 200, headers: Iterable[tuple[str, str]] = (),
                body: bytes = b"", *, reason: str | None = None, chunked: bool = False,
                length: bool = True) -> None:
        """Sends a whole response. By default adds Content-Length (or chunked framing);
        length=False sends neither (for HEAD/204/304 or close-delimited bodies)."""
        lines = [f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        elif length:
            lines.append(f"Content-Length: {len(body)}")
        if not self.keep_alive:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if chunked:
            data += b"".join(encode_chunked([body]))
        else:
            data += body
        self.send(data)

    def close(self) -> None:
        """Ends the connection after the handler returns (nothing more is read)."""
        self.keep_alive = False

    def wait_read_by_peer(self, timeout: float = 2.0) -> bool:
        """True once the proxy has read every byte sent on this connection so far (its
        socket's receive queue is empty), False if it stopped reading."""
        proxy_port = self.sock.getpeername()[1]
        return wait_for(lambda: tcp_queues(proxy_port, self.upstream.port)[1] == 0,
                        timeout, 0.001)


Handler = Callable[[Request, UpstreamConnection], None]


class Upstream:
    """A threaded HTTP/1.1 origin server on 127.0.0.1 with a kernel-chosen port (or on
    `host` and `port` when given, e.g. another loopback address).

    Records: `connections` (accepted TCP connections), `requests` (complete parsed
    requests), `raw` (every byte received, when record_raw), `errors` (requests it could
    not parse). The response comes from `handler(request, conn)`; see the handler
    factories below. Bodies are hashed as they arrive, so store_bodies=False keeps
    memory flat for large uploads.
    """

    def __init__(self, handler: Handler | None = None, *, name: str = "upstream",
                 store_bodies: bool = True, record_raw: bool = True,
                 send_continue: bool = True, idle_timeout: float = 30.0,
                 body_read_delay: float = 0.0, host: str = LOCALHOST, port: int = 0):
        self.handler = handler or echo_handler
        self.name = name
        self.store_bodies = store_bodies
        self.record_raw = record_raw
        self.send_continue = send_continue
        self.idle_timeout = idle_timeout
        self.body_read_delay = body_read_delay
        self.connections = 0
        self.active = 0
        self.requests: list[Request] = []
        self.heads: list[bytes] = []
        self.errors: list[str] = []
        self.raw = bytearray()
        self._bytes_received = 0
        self._lock = threading.Condition()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._closing = threading.Event()
        self.listener = socket.create_server((host, port), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.address = f"{host}:{self.port}"
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name=f"{name}-accept")
        self._accept_thread.start()

    # -- public -------------------------------------------------------------------

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return self._bytes_received

    def received_bytes(self) -> bytes:
        with self._lock:
            return bytes(self.raw)

    def request_targets(self) -> list[str]:
        with self._lock:
            return [r.target for r in self.requests]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Waits until `count` complete requests were seen."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.requests) >= count, timeout)

    def wait_for_heads(self, count: int, timeout: float = 5.0) -> bool:
        """Waits until `count` request heads were seen (before their bodies)."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.heads) >= count, timeout)

    def pause(self, seconds: float) -> None:
        """Sleeps in a handler, but wakes up early when the upstream is closed."""
        self._closing.wait(seconds)

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
        for sock in [self.listener, *sockets]:  # shutdown() wakes blocked accept/recv
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        _close_quietly(self.listener)
        deadline = time.monotonic() + 2.0
        for thread in [self._accept_thread, *self._threads]:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "Upstream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    _close_quietly(sock)
                    return
                self.connections += 1
                connection_id = self.connections
                self._sockets.add(sock)
            thread = threading.Thread(target=self._serve, args=(sock, connection_id),
                                      daemon=True, name=f"{self.name}-conn{connection_id}")
            self._threads.append(thread)
            thread.start()

    def _on_data(self, conn: UpstreamConnection, data: bytes) -> None:
        with self._lock:
            self._bytes_received += len(data)
            if self.record_raw:
                self.raw += data
                conn.received += data

    def _serve(self, sock: socket.socket, connection_id: int) -> None:
        sock.settimeout(self.idle_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = UpstreamConnection(self, sock, connection_id)
        reader = BufferedReader(sock, on_data=lambda data: self._on_data(conn, data))
        try:
            while conn.keep_alive and not reader.at_eof():
                request = self._read_request(reader, conn)
                with self._lock:
                    self.requests.append(request)
                    self.active += 1
                    self._lock.notify_all()
                try:
                    if (has_token(request.headers.get("Connection"), "close")
                            or request.version == "HTTP/1.0"):
                        conn.keep_alive = False
                    self.handler(request, conn)
                finally:
                    with self._lock:
                        self.active -= 1
        except HttpParseError as error:
            with self._lock:
                self.errors.append(f"connection {connection_id}: {error}")
        except (EOFError, OSError):
            pass
        finally:
            with self._lock:
                self._sockets.discard(sock)
            _close_quietly(sock)

    def _read_request(self, reader: BufferedReader, conn: UpstreamConnection) -> Request:
        head = reader.read_until(b"\r\n\r\n", limit=1 << 20)
        with self._lock:
            self.heads.append(head)
            self._lock.notify_all()
        start, headers = parse_head(head)
        parts = start.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpParseError(f"bad request line {start!r}")
        method, target, version = parts
        framing, length = body_framing(headers)
        if self.send_continue and headers.get("Expect", "").lower() == "100-continue":
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.body_read_delay and framing != "none":
            self.pause(self.body_read_delay)
        digest = hashlib.sha256()
        stored = bytearray() if self.store_bodies else None
        size = 0

        def sink(data: bytes) -> None:
            nonlocal size
            digest.update(data)
            size += len(data)
            if stored is not None:
                stored.extend(data)

        if framing == "chunked":
            read_chunked_body(reader, sink)
        elif framing == "length":
            reader.stream_exact(length, sink)
        return Request(method, target, version, headers, framing,
                       bytes(stored) if stored is not None else None, size,
                       digest.hexdigest(), conn.id, head)


# Handler factories -------------------------------------------------------------------

REASONS = {100: "Continue", 200: "OK", 204: "No Content", 304: "Not Modified",
           400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


def echo_headers(request: Request, conn: UpstreamConnection) -> list[tuple[str, str]]:
    return [("X-Upstream", conn.upstream.name), ("X-Method", request.method),
            ("X-Target", request.target), ("X-Body-Length", str(request.body_length)),
            ("X-Body-Sha256", request.body_sha256), ("X-Framing", request.framing),
            ("X-Connection-Id", str(request.connection_id))]


def echo_handler(request: Request, conn: UpstreamConnection) -> None:
    """200 with the request body echoed (when stored) and its facts in X- headers."""
    conn.respond(200, echo_headers(request, conn), request.body or b"")


def static_handler(status: int = 200, body: bytes = b"",
                   headers: Iterable[tuple[str, str]] = (), length: bool = True) -> Handler:
    headers = list(headers)

    def handler(request: Request, conn: UpstreamConnection) -> None:
        conn.respond(status, headers + [("X-Upstream", conn.upstream.name)], body,
                     length=length)
    return handler


def stream_handler(total: int, seed: int = 1, *, chunked: bool = False,
                   block: int = 64 * 1024) -> Handler:
    """Streams `total` deterministic bytes (pattern_blocks) without holding them."""

    def handler(request: Request, conn: UpstreamConnection) -> None:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
        conn.send(f"HTTP/1.1 200 OK\r\n{framing}\r\nX-Upstream: {conn.upstream.name}"
                  f"\r\n\r\n".encode())
        blocks = pattern_blocks(total, seed)
        for piece in (encode_chunked(blocks) if chunked else blocks):
            for offset in range(0, len(piece), block):
                conn.send(piece[offset:offset + block])
    return handler


def delayed_handler(seconds: float, inner: Handler = echo_handler) -> Handler:
    def handler(request: Request, conn: UpstreamConnection) -> None:
        conn.upstream.pause(seconds)
        inner(request, conn)
    return handler


def close_handler(request: Request, conn: UpstreamConnection) -> None:
    """Closes the connection without any response."""
    conn.close()


def garbage_handler(request: Request, conn: UpstreamConnection) -> None:
    """Answers with bytes that are not HTTP, then closes."""
    conn.send(b"SSH-2.0-OpenSSH_9.2\r\nthis is not http\r\n\r\n")
    conn.close()


# --------------------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: Headers
    body: bytes
    interim: list[int] = dataclasses.field(default_factory=list)  # 1xx statuses seen


def build_request(method: str, target: str, headers: Iterable[tuple[str, str]] = (),
                  body: bytes | None = None, *, chunked: bool = False,
                  host: str | None = DEFAULT_HOST, version: str = "HTTP/1.1") -> bytes:
    """Serializes a request; adds Host (unless host is None) and body framing."""
    lines = [f"{method} {target} {version}"]
    headers = list(headers)
    if host is not None and not any(k.lower() == "host" for k, _ in headers):
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    payload = b""
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(encode_chunked([body or b""]))
    elif body is not None:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def read_response(reader: BufferedReader, method: str = "GET",
                  body_sink: Callable[[bytes], None] | None = None,
                  skip_interim: bool = True) -> Response:
    """Reads one response. 1xx responses are skipped (and listed in .interim) unless
    skip_interim is False. With body_sink the body is streamed to it and not kept."""
    interim = []
    while True:
        head = reader.read_until(b"\r\n\r\n", limit=1 << 20)
        start, headers = parse_head(head)
        match = re.fullmatch(r"(HTTP/1\.[01]) (\d{3})(?: (.*))?", start)
        if not match:
            raise HttpParseError(f"bad status line {start!r}")
        version, status, reason = match.group(1), int(match.group(2)), match.group(3) or ""
        if 100 <= status < 200 and status != 101 and skip_interim:
            interim.append(status)
            continue
        break
    chunks = []
    sink = body_sink or chunks.append
    no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
    if not no_body:
        te = headers.get("Transfer-Encoding")
        if te is not None and has_token(te, "chunked"):
            read_chunked_body(reader, sink)
        elif headers.get("Content-Length") is not None:
            reader.stream_exact(int(headers.get("Content-Length")), sink)
        else:
            reader.stream_until_close(sink)
    return Response(status, reason, version, headers, b"".join(chunks), interim)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((LOCALHOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class HttpClient:
    """One client connection to the proxy, for keep-alive and pipelining tests."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = connect(port, timeout)
        self.reader = BufferedReader(self.sock)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str = "GET", target: str = "/",
                headers: Iterable[tuple[str, str]] = (), body: bytes | None = None,
                **kwargs) -> Response:
        """Sends one request and reads its response."""
        self.send(build_request(method, target, headers, body, **kwargs))
        return self.read_response(method)

    def read_response(self, method: str = "GET", **kwargs) -> Response:
        return read_response(self.reader, method, **kwargs)

    def is_closed(self, wait: float = 1.0) -> bool:
        """True when the peer closes (or resets) the connection within `wait` seconds
        and has sent nothing more."""
        if self.reader.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(old)

    def read_until_close(self) -> tuple[bytes, bool]:
        """Everything the peer sends until it closes or the socket times out.
        Returns (bytes, closed)."""
        data = bytearray(self.reader.buf)
        self.reader.buf.clear()
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            return bytes(data), False
        return bytes(data), True

    def close(self) -> None:
        _close_quietly(self.sock)

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclasses.dataclass
class RawResult:
    status: int | None      # None when no complete status line arrived
    headers: Headers
    body: bytes
    closed: bool            # the proxy closed (or reset) the connection
    raw: bytes              # every byte received
    elapsed: float          # seconds from the first byte sent until close/timeout


def raw_request(port: int, data: bytes, timeout: float = 3.0, *,
                split_at: int | None = None, split_delay: float = 0.002,
                method: str = "GET") -> RawResult:
    """Sends raw bytes (optionally as two writes split at `split_at`), then reads until
    the proxy closes the connection or `timeout` passes, and parses the first response."""
    started = time.monotonic()
    received = bytearray()
    closed = False
    with connect(port, timeout) as sock:
        try:
            if split_at is None:
                sock.sendall(data)
            else:
                sock.sendall(data[:split_at])
                time.sleep(split_delay)
                sock.sendall(data[split_at:])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy may reject and close before everything was sent
        deadline = started + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            except socket.timeout:
                break
            if not chunk:
                closed = True
                break
            received += chunk
    elapsed = time.monotonic() - started
    status, headers, body = parse_partial_response(bytes(received), method)
    return RawResult(status, headers, body, closed, bytes(received), elapsed)


def parse_partial_response(raw: bytes, method: str = "GET") -> tuple[int | None, Headers, bytes]:
    """Best-effort parse of the first final response in `raw`."""
    reader = BufferedReader.from_bytes(raw)
    try:
        response = read_response(reader, method)
        return response.status, response.headers, response.body
    except (EOFError, HttpParseError, ValueError):
        match = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
        return (int(match.group(1)) if match else None), Headers(), b""


def refusing_port() -> socket.socket:
    """A bound but not listening socket: connecting to its port is refused. Keep the
    returned socket open while the port must stay refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOCALHOST, 0))
    return sock


def tcp_queues(local_port: int, remote_port: int) -> tuple[int, int]:
    """(tx_queue, rx_queue) of the 127.0.0.1 TCP socket from local_port to remote_port, from
    /proc/net/tcp: bytes it holds to send (all of them while the peer's window is closed)
    and bytes received that its process has not read yet; (0, 0) when there is none."""
    suffixes = (f":{local_port:04X}", f":{remote_port:04X}")
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1].endswith(suffixes[0]) and parts[2].endswith(suffixes[1]):
                tx, rx = parts[4].split(":")
                return int(tx, 16), int(rx, 16)
    return 0, 0


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


# --------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    """Polls predicate() until it returns a truthy value or `timeout` passes; returns the
    last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def toml_table(header: str, values: dict) -> str:
    body = "".join(f"{key} = {toml_value(val)}\n" for key, val in values.items())
    return f"{header}\n{body}"


def make_config(upstreams: dict, routes: list[dict] | None = None, *,
                server: dict | None = None, limits: dict | None = None,
                timeouts: dict | None = None, access_log: str = "text",
                listeners: int = 1, admin: bool = True,
                implicit_checks: bool | None = False) -> str:
    """Builds a config. `upstreams` maps a name to a list of "host:port" strings, ports,
    Upstream objects, or to a dict of [[upstream]] keys. Without `routes` every path goes
    to the first upstream. Defaults favour fast tests: one worker, short drain.

    `implicit_checks` is written as every upstream's `implicit_check` (unless its dict sets
    it): off by default because the implicit check's TCP probes are connections that tests
    counting an upstream's connections would see; None leaves the key out (Gatehouse's own
    default, on; see test_readiness.ImplicitCheckTest)."""
    sections = [toml_table("[server]", {"workers": 1, "drain_timeout": "3s",
                                        **(server or {})})]
    if limits:
        sections.append(toml_table("[limits]", limits))
    sections.append(toml_table("[timeouts]", {"request_header": "5s",
                                              "upstream_connect": "2s",
                                              **(timeouts or {})}))
    sections.append(toml_table("[access_log]", {"format": access_log}))
    for _ in range(listeners):
        sections.append(toml_table("[[listener]]", {"address": f"{LOCALHOST}:0"}))
    if admin:
        sections.append(toml_table("[admin]", {"address": f"{LOCALHOST}:0"}))
    for name, spec in upstreams.items():
        if not isinstance(spec, dict):
            spec = {"servers": spec}
        if implicit_checks is not None:
            spec = {"implicit_check": implicit_checks, **spec}
        servers = [_server_address(s) for s in spec["servers"]]
        sections.append(toml_table("[[upstream]]", {"name": name, **spec,
                                                    "servers": servers}))
    if routes is None:
        routes = [{"path_prefix": "/", "upstream": next(iter(upstreams))}]
    for route in routes:
        sections.append(toml_table("[[route]]", route))
    return "\n".join(sections)


def _server_address(server) -> str:
    if isinstance(server, Upstream):
        return server.address
    if isinstance(server, socket.socket):
        return f"{LOCALHOST}:{server.getsockname()[1]}"
    if isinstance(server, int):
        return f"{LOCALHOST}:{server}"
    return server


# --------------------------------------------------------------------------------------
# The proxy process
# --------------------------------------------------------------------------------------


class GatehouseError(Exception):
    pass


class Gatehouse:
    """Runs the gatehouse binary on `config_text` (context manager).

    After start(): .port (first listener), .ports, .admin_port, .generation, .proc,
    .stdout_path/.stderr_path (captured output), .config_path.
    """

    def __init__(self, config_text: str, *, ready_timeout: float = 10.0,
                 binary: str | None = None):
        self.config_text = config_text
        self.ready_timeout = ready_timeout
        self.binary = binary or GATEHOUSE_BIN
        self.dir = tempfile.mkdtemp(prefix="gatehouse-test-")
        self.config_path = os.path.join(self.dir, "gatehouse.toml")
        self.ready_path = os.path.join(self.dir, "ready")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc: subprocess.Popen | None = None
        self.ports: list[int] = []
        self.admin_port: int | None = None
        self.generation = 0
        self.exit_code: int | None = None

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def sanitized(self) -> bool:
        """True when the running binary uses AddressSanitizer (its memory use is then
        dominated by shadow memory and quarantine, not by the proxy)."""
        try:
            with open(f"/proc/{self.pid}/maps", encoding="ascii", errors="replace") as f:
                return any("libasan" in line for line in f)
        except OSError:
            return False

    def start(self) -> "Gatehouse":
        if not os.access(self.binary, os.X_OK):
            raise GatehouseError(f"gatehouse binary not found or not executable: "
                                 f"{self.binary} (set GATEHOUSE_BIN)")
        write_atomically(self.config_path, self.config_text)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [self.binary, "-c", self.config_path, "--ready-file", self.ready_path],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.dir)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GatehouseError(f"gatehouse exited with {self.proc.returncode} "
                                     f"before ready; stderr:\n{self.stderr()}")
            if self._read_ready_file():
                return self
            time.sleep(0.01)
        self.kill()
        raise GatehouseError(f"no ready file within {self.ready_timeout}s; "
                             f"stderr:\n{self.stderr()}")

    def _read_ready_file(self) -> bool:
        try:
            with open(self.ready_path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return False
        ports, admin, generation = [], None, None
        for line in text.splitlines():
            key, _, value = line.strip().partition(" ")
            if key == "listener":
                ports.append(int(value.rsplit(":", 1)[1]))
            elif key == "admin":
                admin = int(value.rsplit(":", 1)[1])
            elif key == "generation":
                generation = int(value)
        if not ports or generation is None:
            return False
        self.ports, self.admin_port, self.generation = ports, admin, generation
        return True

    def read_generation(self) -> int:
        self._read_ready_file()
        return self.generation

    def reload(self, new_config_text: str, timeout: float = 5.0) -> bool:
        """Rewrites the config, sends SIGHUP and waits for the generation to change.
        Returns False if it did not change within `timeout`."""
        before = self.read_generation()
        self.config_text = new_config_text
        write_atomically(self.config_path, new_config_text)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.read_generation() != before:
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """Waits for exit; returns the exit code, or None on timeout."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def stop(self, timeout: float = 8.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.kill()
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stdout(self) -> str:
        return _read_text(self.stdout_path)

    def stderr(self) -> str:
        return _read_text(self.stderr_path)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Gatehouse":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


def run_gatehouse(*args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Runs a one-shot subcommand (check, version, --help) and captures its output."""
    if not os.access(GATEHOUSE_BIN, os.X_OK):
        raise GatehouseError(f"gatehouse binary not found: {GATEHOUSE_BIN}")
    return subprocess.run([GATEHOUSE_BIN, *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def write_atomically(path: str, text: str) -> None:
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temp, path)


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


# --------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------


def vm_rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """PIDs of all descendants of `pid` (worker processes, if the proxy forks)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def tree_rss_kib(pid: int) -> int:
    return sum(vm_rss_kib(p) for p in [pid, *descendants(pid)])


class RssSampler:
    """Samples the RSS of a process tree every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid = pid
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss")

    @property
    def peak_kib(self) -> int:
        return max(self.samples, default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(tree_rss_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


# --------------------------------------------------------------------------------------
# unittest glue
# --------------------------------------------------------------------------------------


class GatehouseTestCase(unittest.TestCase):
    """Base class: helpers that register cleanups, and the proxy's logs printed to
    stderr when a test fails."""

    def start_upstream(self, handler: Handler | None = None, **kwargs) -> Upstream:
        upstream = Upstream(handler, **kwargs)
        self.addCleanup(upstream.close)
        return upstream

    def start_gatehouse(self, config_text: str) -> Gatehouse:
        gatehouse = Gatehouse(config_text)
        # Cleanups run last-in first-out: stop, print logs on failure, delete files.
        self.addCleanup(gatehouse.cleanup)
        self.addCleanup(self._dump_logs_on_failure, gatehouse)
        self.addCleanup(gatehouse.stop)
        gatehouse.start()
        return gatehouse

    def client(self, port: int, timeout: float = 5.0) -> HttpClient:
        client = HttpClient(port, timeout)
        self.addCleanup(client.close)
        return client

    def get(self, port: int, target: str = "/", **kwargs) -> Response:
        """One request on a fresh connection."""
        with HttpClient(port) as client:
            return client.request("GET", target, **kwargs)

    def _dump_logs_on_failure(self, gatehouse: Gatehouse) -> None:
        outcome = getattr(self, "_outcome", None)
        if outcome is None or getattr(outcome, "success", True):
            return
        for label, text in (("stderr", gatehouse.stderr()), ("stdout", gatehouse.stdout())):
            tail = text[-4000:]
            sys.stderr.write(f"\n---- gatehouse {label} ({self.id()}) ----\n{tail}\n")
