#!/usr/bin/python3
"""A minimal WebSocket-capable upstream for the idle-tunnel scenario (stdlib asyncio).

    ws_upstream.py --port 0 --port-file PATH

A request with `Upgrade: websocket` gets `101 Switching Protocols` (with a correct
Sec-WebSocket-Accept) and from then on every frame is echoed as a server sends it: same
FIN and opcode, payload unmasked, no mask (ping gets pong, close gets close). Any other
request gets `200 ok` with keep-alive. The bound port is written to --port-file once
listening.

bench/run.py uses the faster ws_echo.c (the same behaviour in C) and falls back to this
script only when no C compiler is found; at a few tens of thousands of frames per second
it is fast enough for idle tunnels, not for the ws_msgs message rate.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def echo_frames(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echoes WebSocket frames (RFC 6455 5.2) until close or EOF."""
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
            payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        opcode = first & 0x0F
        head = bytes([(first & 0xF0) | (0xA if opcode == 0x9 else opcode)])
        if length < 126:
            head += bytes([length])
        elif length < 65536:
            head += bytes([126]) + length.to_bytes(2, "big")
        else:
            head += bytes([127]) + length.to_bytes(8, "big")
        writer.write(head + payload)
        await writer.drain()  # returns at once unless the client is slow to read
        if opcode == 0x8:
            return


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)
            if headers.get("upgrade", "").lower() == "websocket":
                key = headers.get("sec-websocket-key", "")
                accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                await writer.drain()
                await echo_frames(reader, writer)
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    server = await asyncio.start_server(handle, "127.0.0.1", args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, args.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
