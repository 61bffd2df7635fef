"""A frame-level HTTP/2 client for tests, its constants, and the test certificates.

H2Conn is a deliberately small HTTP/2 client written on hyperframe (frames) and hpack
(header blocks) instead of h2's state machine, so tests can send anything: frames on the
wrong stream, bad lengths, malformed header blocks, floods, several frames in one write.
It still does the client's normal duties unless told not to: it answers SETTINGS with an
ACK, PING with a PING ACK, and gives DATA back as WINDOW_UPDATE. Everything it receives is
recorded per stream (StreamState) and for the connection (GOAWAY, SETTINGS, PING ACKs), so
a test can assert what the server did:

    conn = H2Conn(port).handshake()
    response = conn.get("/path")                   # StreamState: status, headers, data
    sid = conn.send_headers(None, request_headers("GET", "/x") + [(b"x-a", b"b\\r\\n")])
    outcome = conn.wait_stream_outcome(sid)        # "response", "reset" or "goaway"/"closed"

Configs, upstreams and the Node.js client are in h2_support. Everything binds or connects
to 127.0.0.1 and every socket operation has a timeout.
"""

from __future__ import annotations

import atexit
import dataclasses
import select
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from typing import Callable, Iterable, Sequence

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame,
                              HeadersFrame, PingFrame, PushPromiseFrame, RstStreamFrame,
                              SettingsFrame, WindowUpdateFrame)

from harness import LOCALHOST
from tls_support import CertificateAuthority

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
AUTHORITY = "example.test"

# Frame types and flags (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xA
ENHANCE_YOUR_CALM = 0xB
INADEQUATE_SECURITY = 0xC
HTTP_1_1_REQUIRED = 0xD
ERROR_NAMES = {NO_ERROR: "NO_ERROR", PROTOCOL_ERROR: "PROTOCOL_ERROR",
               INTERNAL_ERROR: "INTERNAL_ERROR", FLOW_CONTROL_ERROR: "FLOW_CONTROL_ERROR",
               SETTINGS_TIMEOUT: "SETTINGS_TIMEOUT", STREAM_CLOSED: "STREAM_CLOSED",
               FRAME_SIZE_ERROR: "FRAME_SIZE_ERROR", REFUSED_STREAM: "REFUSED_STREAM",
               CANCEL: "CANCEL", COMPRESSION_ERROR: "COMPRESSION_ERROR",
               CONNECT_ERROR: "CONNECT_ERROR", ENHANCE_YOUR_CALM: "ENHANCE_YOUR_CALM",
               INADEQUATE_SECURITY: "INADEQUATE_SECURITY",
               HTTP_1_1_REQUIRED: "HTTP_1_1_REQUIRED"}

# SETTINGS identifiers.
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8
SETTINGS_NO_RFC7540_PRIORITIES = 0x9

DEFAULT_WINDOW = 65535
DEFAULT_MAX_FRAME = 16384


def error_name(code: int | None) -> str:
    if code is None:
        return "-"
    return ERROR_NAMES.get(code, f"0x{code:x}")


# --------------------------------------------------------------------------------------
# Certificates: one throwaway CA and one leaf per process
# --------------------------------------------------------------------------------------

_certs: dict = {}
_certs_lock = threading.Lock()


def certificates() -> dict:
    """{"ca": CA cert path, "cert": fullchain, "key": key} for example.test,
    *.example.test, localhost and 127.0.0.1 (made once per process, removed at exit)."""
    with _certs_lock:
        if not _certs:
            directory = tempfile.mkdtemp(prefix="gatehouse-h2-certs-")
            atexit.register(shutil.rmtree, directory, True)
            ca = CertificateAuthority(directory, name="Gatehouse H2 Test CA")
            leaf = ca.issue([AUTHORITY, f"*.{AUTHORITY}", "localhost", "127.0.0.1"])
            _certs.update(ca=ca.cert, cert=leaf.fullchain, key=leaf.key, dir=directory)
        return dict(_certs)


def client_tls_context(alpn: Sequence[str] | None = ("h2",)) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certificates()["ca"])
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


# --------------------------------------------------------------------------------------
# Frame building (raw bytes, so anything can be sent)
# --------------------------------------------------------------------------------------


def frame_bytes(frame_type: int, flags: int, stream_id: int, payload: bytes = b"",
                length: int | None = None) -> bytes:
    """A frame with an exact header: `length` overrides the length field (for lies)."""
    size = len(payload) if length is None else length
    return struct.pack(">I", size)[1:] + bytes([frame_type, flags]) + \
        struct.pack(">I", stream_id) + payload


def settings_payload(settings: dict[int, int] | Iterable[tuple[int, int]]) -> bytes:
    items = settings.items() if isinstance(settings, dict) else settings
    return b"".join(struct.pack(">HI", key, value) for key, value in items)


def hpack_int(value: int, prefix_bits: int, first_byte_flags: int = 0) -> bytes:
    """HPACK integer representation (RFC 7541 §5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(data: bytes) -> bytes:
    """A string literal without Huffman coding."""
    return hpack_int(len(data), 7) + data


def literal_never_indexed(name: bytes, value: bytes) -> bytes:
    """Literal header field never indexed, new name (0x10), no Huffman: any bytes go
    through, which is how malformed names and values are put on the wire unchanged."""
    return b"\x10" + hpack_string(name) + hpack_string(value)


def literal_incremental(name: bytes, value: bytes) -> bytes:
    """Literal header field with incremental indexing, new name (0x40)."""
    return b"\x40" + hpack_string(name) + hpack_string(value)


def literal_without_indexing(name: bytes, value: bytes) -> bytes:
    return b"\x00" + hpack_string(name) + hpack_string(value)


def indexed(index: int) -> bytes:
    return hpack_int(index, 7, 0x80)


def table_size_update(size: int) -> bytes:
    return hpack_int(size, 5, 0x20)


def raw_block(headers: Iterable[tuple]) -> bytes:
    """A header block with every field a never-indexed literal (stateless: safe to build
    without touching the connection's HPACK encoder)."""
    return b"".join(literal_never_indexed(_b(n), _b(v)) for n, v in headers)


def _b(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("latin-1")


def request_headers(method: str = "GET", path: str = "/", *, authority: str | None = AUTHORITY,
                    scheme: str = "https", extra: Iterable[tuple] = ()) -> list[tuple[bytes, bytes]]:
    headers = [(b":method", _b(method)), (b":scheme", _b(scheme)), (b":path", _b(path))]
    if authority is not None:
        headers.append((b":authority", _b(authority)))
    return headers + [(_b(n), _b(v)) for n, v in extra]


# --------------------------------------------------------------------------------------
# The frame-level client
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class StreamState:
    id: int
    header_blocks: list[list[tuple[str, str]]] = dataclasses.field(default_factory=list)
    data: bytearray = dataclasses.field(default_factory=bytearray)
    data_frames: int = 0
    ended: bool = False                 # END_STREAM received
    reset: int | None = None            # RST_STREAM error code received
    first_byte_at: float | None = None
    ended_at: float | None = None

    @property
    def informational(self) -> list[list[tuple[str, str]]]:
        return [b for b in self.header_blocks if _status_of(b) is not None
                and 100 <= _status_of(b) < 200]

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The final response's header fields (pseudo-headers included)."""
        for block in self.header_blocks:
            status = _status_of(block)
            if status is not None and status >= 200:
                return block
        return []

    @property
    def trailers(self) -> list[tuple[str, str]]:
        finals = [b for b in self.header_blocks if _status_of(b) is None]
        return finals[-1] if finals else []

    @property
    def status(self) -> int | None:
        return _status_of(self.headers) if self.headers else None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @property
    def body(self) -> bytes:
        return bytes(self.data)

    def describe(self) -> str:
        return (f"stream {self.id}: status={self.status} ended={self.ended} "
                f"reset={error_name(self.reset)} data={len(self.data)}B "
                f"headers={self.headers[:12]}")


def _status_of(block: list[tuple[str, str]]) -> int | None:
    for key, value in block:
        if key == ":status":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class H2Closed(Exception):
    pass


class H2Conn:
    """One HTTP/2 client connection (TLS with ALPN, or cleartext prior knowledge).

    auto_ack: answer SETTINGS; auto_pong: answer PING; auto_window: give every received
    DATA byte back right away (stream and connection). Received frames are all in
    `.frames`; GOAWAYs in `.goaways`; the server's first SETTINGS in `.server_settings`.
    """

    def __init__(self, port: int, *, tls: bool = True, alpn: Sequence[str] | None = ("h2",),
                 server_name: str | None = AUTHORITY, timeout: float = 5.0,
                 rcvbuf: int | None = None, sndbuf: int | None = None):
        self.port = port
        self.timeout = timeout
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        raw.settimeout(timeout)
        try:
            raw.connect((LOCALHOST, port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls:
                self.sock = client_tls_context(alpn).wrap_socket(raw, server_hostname=server_name)
                self.alpn = self.sock.selected_alpn_protocol()
            else:
                self.sock = raw
                self.alpn = None
        except BaseException:
            raw.close()
            raise
        self.tls = tls
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.buf = bytearray()
        self.frames: list[Frame] = []
        self.streams: dict[int, StreamState] = {}
        self.goaways: list[GoAwayFrame] = []
        self.server_settings: dict[int, int] | None = None
        self.settings_frames: list[SettingsFrame] = []
        self.settings_acks = 0
        self.ping_acks: list[bytes] = []
        self.pings_received: list[bytes] = []
        self.window_updates: list[WindowUpdateFrame] = []
        self.closed = False
        self.close_reason = ""
        self.auto_ack = True
        self.auto_pong = True
        self.auto_window = True
        self.next_stream_id = 1
        self.peer_max_frame = DEFAULT_MAX_FRAME
        self.peer_initial_window = DEFAULT_WINDOW
        self.conn_send_window = DEFAULT_WINDOW
        self.stream_send_windows: dict[int, int] = {}
        self._header_stream: int | None = None
        self._header_fragments = bytearray()
        self._header_end_stream = False
        self.bytes_received = 0
        self.data_sent = 0
        self.send_failed: str | None = None

    # -- sending ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Sends bytes; raises H2Closed when the server closed or reset the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, ssl.SSLEOFError) as error:
            # Not marked closed: what the server sent before closing (a GOAWAY) may still
            # be readable; reading ends at EOF or reset.
            self.send_failed = f"send failed: {error!r}"
            raise H2Closed(str(error)) from error

    def try_send(self, data: bytes) -> bool:
        """Sends bytes; False (instead of an exception) when the connection is gone."""
        try:
            self.send(data)
            return True
        except (H2Closed, OSError):
            return False

    def frame(self, frame_type: int, flags: int, stream_id: int, payload: bytes = b"",
              length: int | None = None) -> None:
        self.send(frame_bytes(frame_type, flags, stream_id, payload, length))

    def handshake(self, settings: dict[int, int] | None = None, *, wait: bool = True,
                  preface: bytes = PREFACE) -> "H2Conn":
        """Sends the preface and our SETTINGS, then (wait) reads until the server's
        SETTINGS arrived and ours was acknowledged."""
        self.send(preface + frame_bytes(SETTINGS, 0, 0, settings_payload(settings or {})))
        if settings and SETTINGS_INITIAL_WINDOW_SIZE in settings:
            pass  # our receive windows are the server's concern; nothing to track here
        if wait:
            ok = self.pump(lambda: self.server_settings is not None and self.settings_acks >= 1)
            if not ok:
                raise AssertionError(f"no SETTINGS exchange with the server "
                                     f"(closed={self.closed} {self.close_reason}; "
                                     f"frames={self.describe_frames()})")
        return self

    def new_stream_id(self) -> int:
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        return stream_id

    def encode(self, headers: Iterable[tuple]) -> bytes:
        """HPACK-encodes with the connection's encoder (dynamic table in use)."""
        return self.encoder.encode([(_b(n), _b(v)) for n, v in headers])

    def send_headers(self, stream_id: int | None, headers: Iterable[tuple] | None = None, *,
                     block: bytes | None = None, end_stream: bool = True,
                     end_headers: bool = True, priority: tuple[int, int, bool] | None = None,
                     pad: int | None = None, raw: bool = False) -> int:
        """HEADERS on stream_id (None = the next client stream id). `block` is a ready
        header block; otherwise `headers` are encoded (raw=True: as never-indexed
        literals exactly as given, bypassing the encoder's dynamic table)."""
        if stream_id is None:
            stream_id = self.new_stream_id()
        elif stream_id >= self.next_stream_id and stream_id % 2 == 1:
            self.next_stream_id = stream_id + 2
        if block is None:
            block = raw_block(headers or []) if raw else self.encode(headers or [])
        flags = (FLAG_END_STREAM if end_stream else 0) | (FLAG_END_HEADERS if end_headers else 0)
        payload = block
        if priority is not None:
            dependency, weight, exclusive = priority
            flags |= FLAG_PRIORITY
            payload = struct.pack(">IB", dependency | (0x80000000 if exclusive else 0),
                                  weight) + payload
        if pad is not None:
            flags |= FLAG_PADDED
            payload = bytes([pad]) + payload + b"\0" * pad
        self.stream_send_windows.setdefault(stream_id, self.peer_initial_window)
        self.streams.setdefault(stream_id, StreamState(stream_id))
        self.frame(HEADERS, flags, stream_id, payload)
        return stream_id

    def send_continuation(self, stream_id: int, block: bytes, end_headers: bool = True) -> None:
        self.frame(CONTINUATION, FLAG_END_HEADERS if end_headers else 0, stream_id, block)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False,
                  pad: int | None = None) -> None:
        """One DATA frame, no flow control (windows are tracked, not enforced)."""
        flags = FLAG_END_STREAM if end_stream else 0
        payload = data
        if pad is not None:
            flags |= FLAG_PADDED
            payload = bytes([pad]) + data + b"\0" * pad
        self.conn_send_window -= len(payload)
        self.data_sent += len(data)
        if stream_id in self.stream_send_windows:
            self.stream_send_windows[stream_id] -= len(payload)
        self.frame(DATA, flags, stream_id, payload)

    def send_rst(self, stream_id: int, code: int = CANCEL) -> None:
        self.frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))

    def send_settings(self, settings: dict[int, int] | Iterable[tuple[int, int]] = (),
                      ack: bool = False) -> None:
        self.frame(SETTINGS, FLAG_ACK if ack else 0, 0, settings_payload(settings))

    def send_ping(self, payload: bytes = b"\0" * 8, ack: bool = False) -> None:
        self.frame(PING, FLAG_ACK if ack else 0, 0, payload)

    def send_window_update(self, stream_id: int, increment: int) -> None:
        self.frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))

    def send_priority(self, stream_id: int, dependency: int = 0, weight: int = 15,
                      exclusive: bool = False) -> None:
        self.frame(PRIORITY, 0, stream_id,
                   struct.pack(">IB", dependency | (0x80000000 if exclusive else 0), weight))

    def send_goaway(self, last_stream_id: int = 0, code: int = NO_ERROR,
                    debug: bytes = b"") -> None:
        self.frame(GOAWAY, 0, 0, struct.pack(">II", last_stream_id, code) + debug)

    def upload(self, stream_id: int, data: bytes, end_stream: bool = True,
               timeout: float | None = None, chunk: int | None = None) -> None:
        """Sends `data` as DATA frames within the server's flow-control windows, reading
        (and processing) frames while waiting for WINDOW_UPDATEs."""
        view = memoryview(data)
        deadline = time.monotonic() + (timeout or self.timeout)
        offset = 0
        if not data and end_stream:
            self.send_data(stream_id, b"", end_stream=True)
            return
        while offset < len(data):
            window = min(self.conn_send_window, self.stream_send_windows.get(stream_id, 0),
                         self.peer_max_frame, chunk or self.peer_max_frame)
            if window <= 0:
                if self.closed or self.stream_done(stream_id):
                    raise H2Closed(f"stream {stream_id} ended during upload at {offset}")
                if time.monotonic() >= deadline:
                    raise AssertionError(f"upload stalled at {offset}/{len(data)} bytes "
                                         f"(conn window {self.conn_send_window}, stream window "
                                         f"{self.stream_send_windows.get(stream_id)})")
                self.read_and_process(min(0.2, max(0.01, deadline - time.monotonic())))
                continue
            piece = bytes(view[offset:offset + window])
            offset += len(piece)
            self.send_data(stream_id, piece, end_stream=end_stream and offset == len(data))
            # Process whatever already arrived (WINDOW_UPDATEs) without blocking.
            self.read_and_process(0)

    # -- receiving ----------------------------------------------------------------

    def _mark_closed(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason

    def _recv(self, timeout: float) -> bool:
        """Reads once into the buffer; False on timeout; marks closed on EOF/reset."""
        if self.closed:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            timeout = max(timeout, 0.001)
        else:
            try:
                readable, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            except (OSError, ValueError):
                self._mark_closed("select failed")
                return False
            if not readable:
                return False
        try:
            self.sock.settimeout(max(timeout, 0.001))
            data = self.sock.recv(256 * 1024)
        except ssl.SSLWantReadError:
            return False
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError) as error:
            self._mark_closed(f"reset: {error!r}")
            return False
        except (ssl.SSLError, OSError) as error:
            self._mark_closed(f"error: {error!r}")
            return False
        if not data:
            self._mark_closed("EOF")
            return False
        self.bytes_received += len(data)
        self.buf += data
        return True

    def _next_frame(self) -> Frame | None:
        if len(self.buf) < 9:
            return None
        length = int.from_bytes(self.buf[:3], "big")
        if len(self.buf) < 9 + length:
            return None
        header = bytes(self.buf[:9])
        body = bytes(self.buf[9:9 + length])
        del self.buf[:9 + length]
        frame, _ = Frame.parse_frame_header(memoryview(header))
        frame.parse_body(memoryview(body))
        return frame

    def read_and_process(self, timeout: float) -> list[Frame]:
        """Processes buffered frames, reading at most once (waiting up to `timeout`)."""
        frames = []
        while (frame := self._next_frame()) is not None:
            self._process(frame)
            frames.append(frame)
        if frames:
            return frames
        if self._recv(timeout):
            while (frame := self._next_frame()) is not None:
                self._process(frame)
                frames.append(frame)
        return frames

    def pump(self, until: Callable[[], bool] | None = None, timeout: float | None = None) -> bool:
        """Reads and processes frames until `until()` is true (returns True), the
        connection closes or `timeout` passes (returns until() then)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if until is not None and until():
                return True
            remaining = deadline - time.monotonic()
            if self.closed:
                # Frames may still be buffered after EOF.
                while (frame := self._next_frame()) is not None:
                    self._process(frame)
                return bool(until and until())
            if remaining <= 0:
                return bool(until and until())
            self.read_and_process(min(remaining, 0.25))

    def drain(self, seconds: float) -> None:
        """Processes frames for `seconds` (or until closed)."""
        self.pump(None, seconds)

    def _process(self, frame: Frame) -> None:
        self.frames.append(frame)
        if self._header_stream is not None and not isinstance(frame, ContinuationFrame):
            raise AssertionError(f"server interleaved {type(frame).__name__} in a header block")
        if isinstance(frame, SettingsFrame):
            if "ACK" in frame.flags:
                self.settings_acks += 1
            else:
                self.settings_frames.append(frame)
                if self.server_settings is None:
                    self.server_settings = dict(frame.settings)
                else:
                    self.server_settings.update(frame.settings)
                if SETTINGS_INITIAL_WINDOW_SIZE in frame.settings:
                    delta = frame.settings[SETTINGS_INITIAL_WINDOW_SIZE] - self.peer_initial_window
                    self.peer_initial_window = frame.settings[SETTINGS_INITIAL_WINDOW_SIZE]
                    for key in self.stream_send_windows:
                        self.stream_send_windows[key] += delta
                if SETTINGS_MAX_FRAME_SIZE in frame.settings:
                    self.peer_max_frame = frame.settings[SETTINGS_MAX_FRAME_SIZE]
                if self.auto_ack:
                    self.try_send(frame_bytes(SETTINGS, FLAG_ACK, 0))
        elif isinstance(frame, PingFrame):
            if "ACK" in frame.flags:
                self.ping_acks.append(bytes(frame.opaque_data))
            else:
                self.pings_received.append(bytes(frame.opaque_data))
                if self.auto_pong:
                    self.try_send(frame_bytes(PING, FLAG_ACK, 0, bytes(frame.opaque_data)))
        elif isinstance(frame, GoAwayFrame):
            self.goaways.append(frame)
        elif isinstance(frame, WindowUpdateFrame):
            self.window_updates.append(frame)
            if frame.stream_id == 0:
                self.conn_send_window += frame.window_increment
            else:
                self.stream_send_windows[frame.stream_id] = \
                    self.stream_send_windows.get(frame.stream_id, self.peer_initial_window) + \
                    frame.window_increment
        elif isinstance(frame, RstStreamFrame):
            self.stream(frame.stream_id).reset = frame.error_code
        elif isinstance(frame, DataFrame):
            state = self.stream(frame.stream_id)
            state.first_byte_at = state.first_byte_at or time.monotonic()
            state.data += frame.data
            state.data_frames += 1
            if "END_STREAM" in frame.flags:
                state.ended = True
                state.ended_at = time.monotonic()
            length = frame.flow_controlled_length
            if self.auto_window and length:
                updates = frame_bytes(WINDOW_UPDATE, 0, 0, struct.pack(">I", length))
                if "END_STREAM" not in frame.flags:
                    updates += frame_bytes(WINDOW_UPDATE, 0, frame.stream_id,
                                           struct.pack(">I", length))
                self.try_send(updates)
        elif isinstance(frame, HeadersFrame):
            self._header_stream = frame.stream_id
            self._header_fragments = bytearray(frame.data)
            self._header_end_stream = "END_STREAM" in frame.flags
            if "END_HEADERS" in frame.flags:
                self._finish_header_block()
        elif isinstance(frame, ContinuationFrame):
            if self._header_stream != frame.stream_id:
                raise AssertionError("server sent CONTINUATION outside a header block")
            self._header_fragments += frame.data
            if "END_HEADERS" in frame.flags:
                self._finish_header_block()
        elif isinstance(frame, PushPromiseFrame):
            raise AssertionError("server sent PUSH_PROMISE although the client never enabled push?")

    def _finish_header_block(self) -> None:
        stream_id = self._header_stream
        block = bytes(self._header_fragments)
        self._header_stream = None
        self._header_fragments = bytearray()
        fields = [(n.decode("latin-1") if isinstance(n, bytes) else n,
                   v.decode("latin-1") if isinstance(v, bytes) else v)
                  for n, v in self.decoder.decode(block, raw=True)]
        state = self.stream(stream_id)
        state.first_byte_at = state.first_byte_at or time.monotonic()
        state.header_blocks.append(fields)
        if self._header_end_stream:
            state.ended = True
            state.ended_at = time.monotonic()

    def stream(self, stream_id: int) -> StreamState:
        if stream_id not in self.streams:
            self.streams[stream_id] = StreamState(stream_id)
        return self.streams[stream_id]

    def stream_done(self, stream_id: int) -> bool:
        state = self.streams.get(stream_id)
        return bool(state and (state.ended or state.reset is not None))

    # -- requests -----------------------------------------------------------------

    def request(self, method: str = "GET", path: str = "/", *, headers: Iterable[tuple] = (),
                body: bytes | None = None, authority: str | None = AUTHORITY,
                scheme: str | None = None, end_stream: bool | None = None) -> int:
        """Opens a stream with a well-formed request; uploads `body` (flow-controlled)."""
        scheme = scheme or ("https" if self.tls else "http")
        fields = request_headers(method, path, authority=authority, scheme=scheme,
                                 extra=headers)
        no_body = body is None
        stream_id = self.send_headers(None, fields,
                                      end_stream=no_body if end_stream is None else end_stream)
        if body is not None:
            self.upload(stream_id, body, end_stream=True if end_stream is None else end_stream)
        return stream_id

    def response(self, stream_id: int, timeout: float | None = None) -> StreamState:
        """Waits until the stream ended or was reset (or the connection closed)."""
        self.pump(lambda: self.stream_done(stream_id), timeout)
        return self.stream(stream_id)

    def get(self, path: str = "/", **kwargs) -> StreamState:
        timeout = kwargs.pop("timeout", None)
        return self.response(self.request("GET", path, **kwargs), timeout)

    def wait_stream_outcome(self, stream_id: int, timeout: float | None = None) -> str:
        """"response" (ended with a final status), "reset", "goaway" or "closed" (or
        "timeout") — whichever the server did first for this stream."""
        self.pump(lambda: self.stream_done(stream_id) or bool(self.goaways) or self.closed,
                  timeout)
        state = self.stream(stream_id)
        if state.reset is not None:
            return "reset"
        if state.ended and state.status is not None:
            return "response"
        if self.goaways:
            return "goaway"
        if self.closed:
            return "closed"
        return "timeout"

    def wait_connection_end(self, timeout: float | None = None) -> bool:
        """True when a GOAWAY arrived or the connection closed within `timeout`."""
        return self.pump(lambda: bool(self.goaways) or self.closed, timeout)

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self.pump(lambda: self.closed, timeout)

    def ping_roundtrip(self, payload: bytes = b"alive!!!", timeout: float | None = None) -> bool:
        """Sends a PING and waits for its ACK; False if the connection is gone."""
        if not self.try_send(frame_bytes(PING, 0, 0, payload)):
            return False
        return self.pump(lambda: payload in self.ping_acks, timeout)

    @property
    def last_goaway(self) -> GoAwayFrame | None:
        return self.goaways[-1] if self.goaways else None

    def describe_frames(self, limit: int = 20) -> str:
        out = []
        for frame in self.frames[-limit:]:
            name = type(frame).__name__.replace("Frame", "")
            extra = ""
            if isinstance(frame, GoAwayFrame):
                extra = (f" last={frame.last_stream_id} code={error_name(frame.error_code)}"
                         f" debug={bytes(frame.additional_data)[:80]!r}")
            elif isinstance(frame, RstStreamFrame):
                extra = f" code={error_name(frame.error_code)}"
            elif isinstance(frame, DataFrame):
                extra = f" len={len(frame.data)}"
            out.append(f"{name}[{frame.stream_id}]{sorted(frame.flags)}{extra}")
        return " ".join(out) + (f" | closed: {self.close_reason}" if self.closed else "") + \
            (f" | {self.send_failed}" if self.send_failed else "")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "H2Conn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
