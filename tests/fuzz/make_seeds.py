#!/usr/bin/env python3
"""Regenerates the seed corpora in tests/fuzz/corpus/<target>/ from the vectors of the
unit tests (C++ string literals), tests/integration/test_malformed.py and deploy/*.toml.

Seeds are named by the SHA-1 of their bytes (as libFuzzer names corpus files), so running
this again only adds files. Kept small on purpose: tens of seeds per target; the fuzzers
find the rest.
    python3 tests/fuzz/make_seeds.py
"""

import hashlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
MAX_SEEDS = 60

sys.path.insert(0, str(ROOT / "tests" / "integration"))
import test_malformed  # noqa: E402  (its case tables only; no server is started)

LITERAL = re.compile(rb'R"\((.*?)\)"|"((?:[^"\\\n]|\\.)*)"', re.S)
ESCAPES = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\", b'"': b'"',
           b"'": b"'", b"a": b"\a", b"v": b"\v", b"f": b"\f"}


def unescape(body: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(body):
        if body[i:i + 1] != b"\\":
            out += body[i:i + 1]
            i += 1
        elif body[i + 1:i + 2] == b"x":
            digits = re.match(rb"[0-9a-fA-F]{1,2}", body[i + 2:i + 4]).group(0)
            out.append(int(digits, 16))
            i += 2 + len(digits)
        else:
            out += ESCAPES.get(body[i + 1:i + 2], body[i + 1:i + 2])
            i += 2
    return bytes(out)


def literals(path: pathlib.Path) -> list:
    """String literals of a C++ file; adjacent ones ("a" "b") joined as the compiler does."""
    text = path.read_bytes()
    found, last_end = [], None
    for match in LITERAL.finditer(text):
        value = match.group(1) if match.group(1) is not None else unescape(match.group(2))
        if last_end is not None and text[last_end:match.start()].strip() == b"" and found:
            found[-1] += value
        else:
            found.append(value)
        last_end = match.end()
    return found


def unit(name: str) -> list:
    return literals(ROOT / "tests" / "unit" / name)


def is_request(b: bytes) -> bool:
    return re.match(rb"[A-Z]+ \S", b) is not None and b"HTTP/" in b


def is_response(b: bytes) -> bool:
    return b.startswith(b"HTTP/1")


def head_and_body(message: bytes):
    end = message.find(b"\r\n\r\n")
    return (message, b"") if end < 0 else (message[:end + 4], message[end + 4:])


def write(target: str, seeds) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(s for s in seeds if s is not None))[:MAX_SEEDS]
    for seed in unique:
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    print(f"{target}: {len(unique)} seeds")


def main() -> None:
    head_literals = unit("http_head_test.cpp") + unit("http_parser_test.cpp")
    malformed = [case[1] for case in test_malformed.HEAD_CASES]
    chunk_messages = [case[1] for case in test_malformed.CHUNK_CASES]
    valid = [case[1] for case in test_malformed.VALID_CASES]

    requests = [b for b in head_literals if is_request(b)] + valid + malformed + chunk_messages
    responses = [b for b in head_literals if is_response(b)]
    responses += [b for b in unit("health_probe_logic_test.cpp") if is_response(b)]
    responses += [
        b"HTTP/1.1 200\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
    ]
    write("head_request", requests)
    write("head_response", responses)
    write("head_vs_llhttp", valid + [b for b in requests if b in valid or b"\r\n\r\n" in b][:40])

    bodies = [head_and_body(m)[1] for m in chunk_messages + valid if b"chunked" in m]
    bodies += [b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"A;x=1\r\n0123456789\r\n0\r\nT: v\r\n\r\n",
               b"ffffffffffffffff\r\n", b"00000000000000001\r\nx\r\n0\r\n\r\n"]
    write("chunked", bodies)

    write("http_parser", [b"\0" + r for r in requests[:30]] + [b"\1" + r for r in responses] +
          [b"\3HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"])

    write("rewrite", [b"\0" + r for r in requests[:30]] +
          [bytes([1 | (i % 8) << 1]) + r for i, r in enumerate(responses)])

    write("probe_http", [bytes([i % 4]) + r for i, r in enumerate(responses)] +
          [b"\1SSH-2.0-OpenSSH_9.2\r\n\r\n"])
    redis = [b for b in unit("health_probe_logic_test.cpp")
             if b[:1] in (b"+", b"-", b":", b"$", b"*") and b"\r\n" in b]
    write("probe_redis", redis + [b"-NOAUTH Authentication required.\r\n+PONG\r\n",
                                  b"+OK\r\n+PONG\r\n", b"*1\r\n*1\r\n*-1\r\n"])
    write("probe_pg_error", [b for b in unit("health_probe_logic_test.cpp")
                             if b"failed" in b or b"FATAL" in b or b"ERROR" in b] + [b""])
    write("engineio_sid", [b for b in unit("affinity_test.cpp") if b"sid" in b or b"=" in b])

    toml = [p.read_bytes() for p in sorted((ROOT / "deploy").glob("*.toml"))]
    toml += [b for b in unit("config_test.cpp") if b"[" in b and b"=" in b]
    write("config", toml)


if __name__ == "__main__":
    main()
