"""100 MiB uploads and downloads through the proxy: sha256 checked at both ends, and the
proxy's resident memory sampled during each transfer must stay bounded (it streams, it
does not buffer whole bodies). Each transfer has a pause on the far side so that a
proxy without back-pressure would have to buffer."""

import hashlib
import os
import time

from harness import (GatehouseTestCase, RssSampler, build_request, echo_headers,
                     encode_chunked, make_config, pattern_blocks, pattern_sha256,
                     stream_handler, tree_rss_kib)

SIZE = 100 * 1024 * 1024
RSS_LIMIT_KIB = int(os.environ.get("GATEHOUSE_RSS_LIMIT_MB", "64")) * 1024
PAUSE = 1.0  # seconds the receiving side waits before reading the body
TIMEOUT = 60.0


def digest_handler(request, conn):
    """Answers with the size and sha256 of the body it received (body not stored)."""
    conn.respond(200, echo_headers(request, conn))


class LargeTransferTest(GatehouseTestCase):
    def start(self, upstream):
        return self.start_gatehouse(make_config(
            {"app": [upstream]}, limits={"body": "0"},
            timeouts={"client_body": "30s", "upstream_read": "30s"}))

    def assert_bounded(self, gatehouse, sampler):
        if gatehouse.sanitized:
            self.skipTest("RSS is not meaningful under AddressSanitizer")
        self.assertGreater(len(sampler.samples), 5, "too few RSS samples")
        self.assertLess(sampler.peak_kib, RSS_LIMIT_KIB,
                        f"proxy RSS peaked at {sampler.peak_kib} KiB during the transfer")

    def upload(self, chunked):
        upstream = self.start_upstream(digest_handler, store_bodies=False,
                                       record_raw=False, body_read_delay=PAUSE)
        gh = self.start(upstream)
        client = self.client(gh.port, timeout=TIMEOUT)
        framing = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(SIZE))
        client.send(build_request("PUT", "/upload", [framing]))
        pieces = pattern_blocks(SIZE, seed=11)
        if chunked:  # odd chunk sizes, so chunk boundaries differ from read boundaries
            pieces = encode_chunked(pieces, chunk_sizes=[1, 4093, 65536, 999_983])
        started = time.monotonic()
        with RssSampler(gh.pid) as sampler:
            for piece in pieces:
                client.send(piece)
            response = client.read_response()
        elapsed = time.monotonic() - started
        self.assertEqual(response.status, 200)
        self.assertLess(elapsed, TIMEOUT)
        with self.subTest("body"):
            self.assertEqual(response.headers.get("X-Body-Length"), str(SIZE))
            self.assertEqual(response.headers.get("X-Framing"),
                             "chunked" if chunked else "length")
            self.assertEqual(response.headers.get("X-Body-Sha256"),
                             pattern_sha256(SIZE, seed=11), "upload corrupted")
        with self.subTest("memory"):
            self.assert_bounded(gh, sampler)

    def download(self, chunked):
        upstream = self.start_upstream(stream_handler(SIZE, seed=22, chunked=chunked))
        gh = self.start(upstream)
        client = self.client(gh.port, timeout=TIMEOUT)
        digest = hashlib.sha256()
        received = 0

        def sink(data):
            nonlocal received
            received += len(data)
            digest.update(data)

        with RssSampler(gh.pid) as sampler:
            client.send(build_request("GET", "/download"))
            # Read the first byte of the response, then stall: the proxy must stop
            # reading from the upstream instead of buffering the rest.
            first = client.reader.read_exact(1)
            time.sleep(PAUSE)
            client.reader.buf[0:0] = first
            response = client.read_response(body_sink=sink)
        self.assertEqual(response.status, 200)
        with self.subTest("body"):
            self.assertEqual(received, SIZE)
            self.assertEqual(digest.hexdigest(), pattern_sha256(SIZE, seed=22),
                             "download corrupted")
        with self.subTest("memory"):
            self.assert_bounded(gh, sampler)

    def test_upload_content_length(self):
        self.upload(chunked=False)

    def test_upload_chunked(self):
        self.upload(chunked=True)

    def test_download_content_length(self):
        self.download(chunked=False)

    def test_download_chunked(self):
        self.download(chunked=True)

    def test_many_sequential_uploads_do_not_grow_memory(self):
        # 50 x 1 MiB on one connection: a leak per request shows up as growth.
        upstream = self.start_upstream(digest_handler, store_bodies=False, record_raw=False)
        gh = self.start(upstream)
        client = self.client(gh.port, timeout=TIMEOUT)
        body = b"".join(pattern_blocks(1 << 20, seed=3))
        expected = hashlib.sha256(body).hexdigest()
        rss = []
        for i in range(50):
            response = client.request("POST", f"/u{i}", body=body, chunked=bool(i % 2))
            self.assertEqual(response.headers.get("X-Body-Sha256"), expected, f"upload {i}")
            if i in (9, 49):
                rss.append(tree_rss_kib(gh.pid))
        if gh.sanitized:
            self.skipTest("RSS is not meaningful under AddressSanitizer")
        self.assertLess(rss[1] - rss[0], 16 * 1024,
                        f"RSS grew from {rss[0]} to {rss[1]} KiB over 40 uploads")

