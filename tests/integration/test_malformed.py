"""Malformed and ambiguous requests: each must be answered with the right error status,
the connection must then be closed, and nothing may reach the upstream.

HEAD_CASES are rejected from the head alone, so the upstream must receive no byte at
all; they are replayed split into two writes at every offset, and on connections that
already served a valid request (pipelined and sequential). CHUNK_CASES have a valid
head and a broken chunked body: the head may already have been forwarded, so only the
status (or a close) and the absence of the smuggled request are checked. VALID_CASES
are unusual but valid requests that must still be served.
"""

import concurrent.futures
import threading
import unittest

from harness import (GatehouseTestCase, HttpClient, make_config, parse_partial_response,
                     raw_request)

HOST = b"Host: example.test\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"
BAD_VERSION = {400, 505}
BAD_TE = {400, 501}


def post(*headers: bytes, body: bytes = b"") -> bytes:
    """A POST head with Host plus `headers` (each a full line), then `body`."""
    return b"POST / HTTP/1.1\r\n" + HOST + b"".join(headers) + b"\r\n" + body


def get_with(*headers: bytes) -> bytes:
    return b"GET / HTTP/1.1\r\n" + HOST + b"".join(headers) + b"\r\n"


# (name, raw request, acceptable statuses)
HEAD_CASES = [
    # Line endings and bare CR/LF (CVE-2023-30589: bare CR accepted as line end).
    ("bare CR in header value", get_with(b"X-Foo: a\rb\r\n"), {400}),
    ("bare CR as header line end", b"GET / HTTP/1.1\r\nHost: example.test\rX-Foo: b\r\n\r\n",
     {400}),
    ("CR CR LF line end", get_with(b"X-Foo: a\r\r\n"), {400}),
    ("LF-only header line", b"GET / HTTP/1.1\r\nHost: example.test\nX-Foo: a\r\n\r\n", {400}),
    ("LF-only everywhere", b"GET / HTTP/1.1\nHost: example.test\n\n", {400}),
    ("LF-only request line", b"GET / HTTP/1.1\nHost: example.test\r\n\r\n", {400}),
    ("LF-only end of head", b"GET / HTTP/1.1\r\nHost: example.test\r\n\n", {400}),
    # CVE-2025-23167: "\r\n\rX" taken as the end of the head.
    ("CR-X after headers smuggle", b"GET / HTTP/1.1\r\nHost: example.test\r\n\rX" + SMUGGLED,
     {400}),
    # obs-fold, leading whitespace (CVE-2024-27982).
    ("space-prefixed Content-Length line", post(b" Content-Length: 5\r\n", body=b"hello"),
     {400}),
    ("obs-fold in value", get_with(b"X-Foo: a\r\n b\r\n"), {400}),
    ("obs-fold with tab", get_with(b"X-Foo: a\r\n\tb\r\n"), {400}),
    ("obs-fold on Transfer-Encoding",
     post(b"Transfer-Encoding:\r\n chunked\r\n", body=b"0\r\n\r\n" + SMUGGLED), {400}),
    ("tab-prefixed first header", b"GET / HTTP/1.1\r\n\tHost: example.test\r\n\r\n", {400}),
    # Header names.
    ("space before colon", get_with(b"X-Foo : a\r\n"), {400}),
    ("space before colon on Content-Length",
     post(b"Content-Length : 5\r\n", body=b"hello"), {400}),
    ("tab before colon", get_with(b"X-Foo\t: a\r\n"), {400}),
    ("empty header name", get_with(b": empty\r\n"), {400}),
    ("header without colon", get_with(b"X-Foo\r\n"), {400}),
    ("space inside header name", get_with(b"X Foo: a\r\n"), {400}),
    ("quote inside header name", get_with(b'X"Foo: a\r\n'), {400}),
    ("control char in header name", get_with(b"X\x01Foo: a\r\n"), {400}),
    # Header values.
    ("NUL in header value", get_with(b"X-Foo: a\x00b\r\n"), {400}),
    ("vertical tab in header value", get_with(b"X-Foo: a\x0bb\r\n"), {400}),
    ("DEL in header value", get_with(b"X-Foo: a\x7fb\r\n"), {400}),
    ("escape in header value", get_with(b"X-Foo: a\x1b[31mb\r\n"), {400}),
    # Framing: Content-Length.
    ("Content-Length and Transfer-Encoding",
     post(b"Content-Length: 4\r\n", b"Transfer-Encoding: chunked\r\n",
          body=b"0\r\n\r\n" + SMUGGLED), {400}),
    ("Transfer-Encoding and Content-Length",
     post(b"Transfer-Encoding: chunked\r\n", b"Content-Length: 48\r\n",
          body=b"0\r\n\r\n" + SMUGGLED), {400}),
    ("duplicate differing Content-Length",
     post(b"Content-Length: 5\r\n", b"Content-Length: 6\r\n", body=b"hello!"), {400}),
    ("Content-Length comma list", post(b"Content-Length: 5, 5\r\n", body=b"hello"), {400}),
    ("Content-Length plus sign", post(b"Content-Length: +5\r\n", body=b"hello"), {400}),
    ("Content-Length negative", post(b"Content-Length: -1\r\n"), {400}),
    ("Content-Length hex", post(b"Content-Length: 0x5\r\n", body=b"hello"), {400}),
    ("Content-Length inner space", post(b"Content-Length: 1 2\r\n", body=b"hello world!"),
     {400}),
    ("Content-Length empty", post(b"Content-Length: \r\n"), {400}),
    ("Content-Length letters", post(b"Content-Length: five\r\n", body=b"hello"), {400}),
    ("Content-Length overflow", post(b"Content-Length: 184467440737095516160\r\n"),
     {400, 413}),
    # Framing: Transfer-Encoding.
    ("Transfer-Encoding on HTTP/1.0",
     b"POST / HTTP/1.0\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n" + SMUGGLED, {400}),
    ("Transfer-Encoding gzip, chunked",
     post(b"Transfer-Encoding: gzip, chunked\r\n", body=b"0\r\n\r\n"), {501}),
    ("Transfer-Encoding chunked, identity",
     post(b"Transfer-Encoding: chunked, identity\r\n", body=b"0\r\n\r\n"), BAD_TE),
    ("Transfer-Encoding identity", post(b"Transfer-Encoding: identity\r\n"), BAD_TE),
    ("Transfer-Encoding chunked twice",
     post(b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: chunked\r\n",
          body=b"0\r\n\r\n"), BAD_TE),
    ("Transfer-Encoding xchunked", post(b"Transfer-Encoding: xchunked\r\n"), BAD_TE),
    ("Transfer-Encoding chunked then gzip line",
     post(b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip\r\n",
          body=b"0\r\n\r\n"), BAD_TE),
    # Host.
    ("missing Host", b"GET / HTTP/1.1\r\nX-Foo: a\r\n\r\n", {400}),
    ("duplicate identical Host", get_with(HOST), {400}),
    ("duplicate differing Host", get_with(b"Host: other.test\r\n"), {400}),
    ("Host with space", b"GET / HTTP/1.1\r\nHost: exa mple.test\r\n\r\n", {400}),
    ("Host with slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", {400}),
    ("Host with userinfo", b"GET / HTTP/1.1\r\nHost: user@example.test\r\n\r\n", {400}),
    ("Host with bad port", b"GET / HTTP/1.1\r\nHost: example.test:http\r\n\r\n", {400}),
    ("Host with unclosed bracket", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", {400}),
    # Request line.
    ("two spaces after method", b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("two spaces before version", b"GET /  HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("tab separator", b"GET\t/ HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("leading space", b" GET / HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("trailing space", b"GET / HTTP/1.1 \r\n" + HOST + b"\r\n", {400}),
    ("missing version", b"GET /\r\n" + HOST + b"\r\n", {400}),
    ("missing target", b"GET HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("extra token", b"GET / HTTP/1.1 extra\r\n" + HOST + b"\r\n", {400}),
    ("space in target", b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("lowercase version", b"GET / http/1.1\r\n" + HOST + b"\r\n", BAD_VERSION),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\n" + HOST + b"\r\n", BAD_VERSION),
    ("HTTP/2.0", b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", BAD_VERSION),
    ("HTTP/0.9", b"GET / HTTP/0.9\r\n" + HOST + b"\r\n", BAD_VERSION),
    ("version without minor", b"GET / HTTP/1\r\n" + HOST + b"\r\n", BAD_VERSION),
    ("version with extra digits", b"GET / HTTP/1.1.1\r\n" + HOST + b"\r\n", BAD_VERSION),
    ("NUL in target", b"GET /\x00 HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("control char in target", b"GET /a\x01b HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("DEL in target", b"GET /a\x7fb HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("method with separator", b"GE(T / HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    ("known method in lower case", b"head / HTTP/1.1\r\n" + HOST + b"\r\n", {400}),
    # RFC 9112 2.2 lets a few empty lines (CRLF) go before a request line, not more.
    ("flood of empty lines before request line", b"\r\n" * 9 + get_with(), {400}),
    ("bare LF before request line", b"\n" + get_with(), {400}),
    ("bare CR before request line", b"\r" + get_with(), {400}),
    ("plain garbage", b"hello world\r\n\r\n", {400}),
    ("TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)),
     {400}),
    # Limits (defaults: request line 8 KiB, head 32 KiB, 100 fields).
    ("request line too long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
     {414}),
    ("too many headers",
     get_with(*(b"X-H%d: v\r\n" % i for i in range(150))), {431}),
    ("header too big", get_with(b"X-Big: " + b"a" * 40000 + b"\r\n"), {431}),
]


def chunked_post(body: bytes) -> bytes:
    return post(b"Transfer-Encoding: chunked\r\n", body=body)


CHUNK_CASES = [
    ("non-hex chunk size", chunked_post(b"zz\r\nhello\r\n0\r\n\r\n"), {400}),
    ("negative chunk size", chunked_post(b"-1\r\nhello\r\n0\r\n\r\n"), {400}),
    ("hex prefix chunk size", chunked_post(b"0x5\r\nhello\r\n0\r\n\r\n"), {400}),
    ("underscore chunk size", chunked_post(b"1_0\r\nhello\r\n0\r\n\r\n"), {400}),
    ("empty chunk size line", chunked_post(b"\r\nhello\r\n0\r\n\r\n"), {400}),
    ("overflowing chunk size", chunked_post(b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
     {400, 413}),
    ("missing CRLF after chunk data", chunked_post(b"5\r\nhelloXX0\r\n\r\n"), {400}),
    ("chunk data longer than size", chunked_post(b"3\r\nhello\r\n0\r\n\r\n"), {400}),
    ("LF-only after chunk size", chunked_post(b"5\nhello\r\n0\r\n\r\n"), {400}),
    ("bare CR after chunk size", chunked_post(b"5\rhello\r\n0\r\n\r\n"), {400}),
    ("LF-only after chunk data", chunked_post(b"5\r\nhello\n0\r\n\r\n"), {400}),
    ("chunk extension too long",
     chunked_post(b"5;ext=" + b"a" * 4000 + b"\r\nhello\r\n0\r\n\r\n"), {400}),
    ("bare CR in chunk extension", chunked_post(b"5;a=b\rc\r\nhello\r\n0\r\n\r\n"), {400}),
    # RFC 9112 7.1.1: BWS only before ';' and around '='.
    ("whitespace before chunk size CRLF", chunked_post(b"5 \r\nhello\r\n0\r\n\r\n"), {400}),
    ("space inside chunk extension value", chunked_post(b"5;a=b c\r\nhello\r\n0\r\n\r\n"),
     {400}),
    ("chunk size 2^64-1", chunked_post(b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
     {400, 413}),
    ("bad trailer field", chunked_post(b"5\r\nhello\r\n0\r\nBad Trailer: x\r\n\r\n"), {400}),
]


CLOSE = b"Connection: close\r\n"

# (name, valid request, body the upstream must receive)
VALID_CASES = [
    ("chunk extension and trailer",
     post(CLOSE, b"Transfer-Encoding: chunked\r\n",
          body=b"5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"), b"hello"),
    ("transfer coding is case-insensitive",
     post(CLOSE, b"transfer-encoding: Chunked\r\n", body=b"3\r\nabc\r\n0\r\n\r\n"), b"abc"),
    ("empty header value", get_with(CLOSE, b"X-Empty:\r\n"), b""),
    ("tabs around header value", get_with(CLOSE, b"X-Tab:\t v \t\r\n"), b""),
    ("obs-text in header value", get_with(CLOSE, b"X-Latin: caf\xe9\r\n"), b""),
    ("host with port and upper case",
     b"GET / HTTP/1.1\r\nHost: Example.TEST:8080\r\n" + CLOSE + b"\r\n", b""),
    ("HTTP/1.0 without Host", b"GET /old HTTP/1.0\r\n\r\n", b""),
    ("empty lines before request line", b"\r\n\r\n" + get_with(CLOSE), b""),
    ("whitespace in chunk extensions",
     post(CLOSE, b"Transfer-Encoding: chunked\r\n", body=b"5 ; a = 1\r\nhello\r\n0\r\n\r\n"),
     b"hello"),
    ("unknown method token", post(CLOSE, b"Content-Length: 5\r\n", body=b"hello")
     .replace(b"POST", b"QUERY", 1), b"hello"),
    ("encoded target with query", b"GET /a%20b/c?x=1&y=%2F HTTP/1.1\r\n" + HOST + CLOSE
     + b"\r\n", b""),
    ("Content-Length zero", post(CLOSE, b"Content-Length: 0\r\n"), b""),
    ("Content-Length with OWS", post(CLOSE, b"Content-Length:  5 \r\n", body=b"hello"),
     b"hello"),
]


def split_offsets(length: int, full_below: int = 400, sampled: int = 48) -> list[int]:
    """Every split offset for short requests; for long ones, the first and last 16
    offsets plus evenly spaced ones."""
    if length <= full_below:
        return list(range(1, length))
    middle = [1 + i * (length - 2) // sampled for i in range(sampled)]
    return sorted(set(range(1, 17)) | set(range(length - 16, length)) | set(middle))


class MalformedTest(GatehouseTestCase):
    READ_TIMEOUT = 3.0  # request_header is 2 s: a proxy stuck waiting answers 408 by then

    def start(self, workers: int = 1):
        upstream = self.start_upstream(name="app")
        gatehouse = self.start_gatehouse(make_config(
            {"app": [upstream]}, server={"workers": workers},
            timeouts={"request_header": "2s", "client_body": "2s"}))
        return upstream, gatehouse

    def test_table_is_big_enough(self):
        self.assertGreaterEqual(len(HEAD_CASES) + len(CHUNK_CASES), 40)
        names = [name for name, _, _ in HEAD_CASES + CHUNK_CASES]
        self.assertEqual(len(names), len(set(names)), "duplicate case names")

    def test_head_cases(self):
        upstream, gatehouse = self.start()
        for name, data, statuses in HEAD_CASES:
            with self.subTest(name):
                result = raw_request(gatehouse.port, data, self.READ_TIMEOUT)
                self.assertIn(result.status, statuses, f"response: {result.raw[:200]!r}")
                self.assertTrue(result.closed, "connection left open after the error")
                if result.status == 400:
                    self.assertEqual(result.headers.get("Connection", "").lower(), "close")
                self.assertEqual(upstream.connections, 0, "upstream was contacted")
                self.assertEqual(upstream.bytes_received, 0, "upstream received bytes")

    def test_chunk_cases(self):
        upstream, gatehouse = self.start()
        for index, (name, data, statuses) in enumerate(CHUNK_CASES):
            with self.subTest(name):
                marker = b"/smuggled-%d" % index
                data = data.replace(b"POST / ", b"POST /case-%d " % index) + \
                    SMUGGLED.replace(b"/smuggled", marker)
                result = raw_request(gatehouse.port, data, self.READ_TIMEOUT)
                self.assertTrue(result.status in statuses or
                                (result.status is None and result.closed),
                                f"status {result.status}, response: {result.raw[:200]!r}")
                self.assertTrue(result.closed, "connection left open after the error")
                targets = upstream.request_targets()
                self.assertNotIn(marker.decode(), targets, "smuggled request reached upstream")
        self.assertFalse([t for t in upstream.request_targets() if "smuggled" in t])

    def test_head_cases_split_at_every_offset(self):
        upstream, gatehouse = self.start(workers=2)
        jobs = [(name, data, statuses, offset) for name, data, statuses in HEAD_CASES
                for offset in split_offsets(len(data))]
        failures = []
        lock = threading.Lock()
        max_failures = 40

        def run(job):
            name, data, statuses, offset = job
            if len(failures) >= max_failures:
                return
            try:
                result = raw_request(gatehouse.port, data, self.READ_TIMEOUT,
                                     split_at=offset, split_delay=0.002)
                problem = None
                if result.status not in statuses:
                    problem = f"status {result.status} not in {sorted(statuses)}"
                elif not result.closed:
                    problem = "connection left open"
            except OSError as error:
                problem = f"socket error {error!r}"
            if problem:
                with lock:
                    failures.append(f"{name} split at {offset}: {problem}")

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(run, jobs))
        self.assertEqual(failures, [], f"{len(failures)} of {len(jobs)} split requests "
                                       f"failed (stopped after {max_failures})")
        self.assertEqual(upstream.connections, 0, "upstream was contacted")
        self.assertEqual(upstream.bytes_received, 0)

    def check_after_valid_request(self, pipelined: bool):
        """Each head case sent on a connection that already served a valid request:
        it must get its error response (not a silent close), and the upstream must
        see the valid request only."""
        upstream, gatehouse = self.start()
        for index, (name, data, statuses) in enumerate(HEAD_CASES):
            with self.subTest(name):
                heads_before = len(upstream.heads)
                valid = b"GET /first-%d HTTP/1.1\r\n" % index + HOST + b"\r\n"
                with HttpClient(gatehouse.port, timeout=self.READ_TIMEOUT) as client:
                    if pipelined:
                        client.send(valid + data)
                        self.assertEqual(client.read_response().status, 200)
                    else:
                        self.assertEqual(client.request("GET", f"/first-{index}").status, 200)
                        try:
                            client.send(data)
                        except (BrokenPipeError, ConnectionResetError):
                            pass
                    rest, closed = client.read_until_close()
                self.assertTrue(closed, "connection left open after the error")
                self.assertTrue(rest, "no error response (connection closed silently)")
                status, _, _ = parse_partial_response(rest)
                self.assertIn(status, statuses, rest[:200])
                self.assertEqual(upstream.request_targets()[-1], f"/first-{index}")
                self.assertEqual(len(upstream.heads), heads_before + 1,
                                 f"upstream received: {upstream.heads[heads_before + 1:]}")

    def test_head_cases_pipelined_after_valid_request(self):
        self.check_after_valid_request(pipelined=True)

    def test_head_cases_on_reused_connection(self):
        self.check_after_valid_request(pipelined=False)

    def test_tricky_but_valid_requests_are_served(self):
        # Guards against a proxy that passes the battery by rejecting too much.
        upstream, gatehouse = self.start()
        for name, data, body in VALID_CASES:
            with self.subTest(name):
                result = raw_request(gatehouse.port, data, self.READ_TIMEOUT)
                self.assertEqual(result.status, 200, result.raw[:300])
                self.assertEqual(upstream.requests[-1].body, body)


if __name__ == "__main__":
    unittest.main()
