#!/usr/bin/python3
"""One upstream replica for the soak (stdlib asyncio, one process per replica).

    replica.py --port PORT --name NAME

Binds 127.0.0.1:PORT (SO_REUSEADDR, so a restarted replica takes the same port back) and
serves HTTP/1.1 keep-alive; every answer carries `X-Replica: NAME`:

  GET  /health              200 "ok"
  GET  /small/<id>          200, body b"small <id>\n"
  GET  /large/<id>?n=BYTES  200, BYTES bytes of large_body(BYTES) (a repeating pattern)
  POST /post/<id>           reads the Content-Length body, 200 with "<length> <sha256>\n"
  GET  /ws/<id> + Upgrade   101, then every WebSocket frame is echoed back unmasked
                            (close gets close, then EOF)

Anything else is 404. Connections never time out here (Gatehouse's pool decides), so a
pooled connection is closed only by Gatehouse or by this process dying.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import signal
import sys

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PATTERN = bytes(range(256)) * 256  # 64 KiB


def large_body(size: int) -> bytes:
    """The /large body of `size` bytes (the client checks it byte for byte)."""
    reps = size // len(PATTERN) + 1
    return (PATTERN * reps)[:size]


class Replica:
    def __init__(self, name: str):
        self.name = name
        self.large_cache: dict[int, bytes] = {}

    def response(self, status: int, body: bytes, reason: str = "OK",
                 extra: str = "") -> bytes:
        return (f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
                f"X-Replica: {self.name}\r\n{extra}\r\n").encode() + body

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        key, _, value = line.partition(":")
                        headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    body = await self.read_chunked(reader)
                else:
                    body = await reader.readexactly(length) if length else b""
                path, _, query = target.partition("?")
                if headers.get("upgrade", "").lower() == "websocket" and path.startswith("/ws/"):
                    key = headers.get("sec-websocket-key", "").encode()
                    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
                    writer.write((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                  f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                                  f"X-Replica: {self.name}\r\n\r\n").encode())
                    await writer.drain()
                    await self.echo_frames(reader, writer)
                    return
                if path == "/health":
                    writer.write(self.response(200, b"ok\n"))
                elif path.startswith("/small/"):
                    writer.write(self.response(200, b"small " + path[7:].encode() + b"\n"))
                elif path.startswith("/large/"):
                    size = int(query.partition("n=")[2] or 1048576)
                    data = self.large_cache.get(size)
                    if data is None:
                        data = self.large_cache.setdefault(size, large_body(size))
                    writer.write(self.response(200, data))
                elif path.startswith("/post/") and method == "POST":
                    digest = hashlib.sha256(body).hexdigest()
                    writer.write(self.response(200, f"{len(body)} {digest}\n".encode()))
                else:
                    writer.write(self.response(404, b"not found\n", "Not Found"))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError):
            return
        finally:
            writer.close()

    async def read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)

    async def echo_frames(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            mask = await reader.readexactly(4) if second & 0x80 else b""
            payload = await reader.readexactly(length)
            if mask:
                full = (mask * (length // 4 + 1))[:length]
                payload = (int.from_bytes(payload, "big") ^ int.from_bytes(full, "big")
                           ).to_bytes(length, "big")
            n = len(payload)
            if n < 126:
                header = bytes([first, n])
            elif n < 65536:
                header = bytes([first, 126]) + n.to_bytes(2, "big")
            else:
                header = bytes([first, 127]) + n.to_bytes(8, "big")
            opcode = first & 0x0F
            if opcode == 9:  # ping -> pong
                header = bytes([0x80 | 10]) + header[1:]
            writer.write(header + payload)
            await writer.drain()
            if opcode == 8:
                return


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    replica = Replica(args.name)
    server = await asyncio.start_server(replica.serve, "127.0.0.1", args.port,
                                        reuse_address=True, backlog=512)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sys.stdout.write(f"listening {args.port}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
