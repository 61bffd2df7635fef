"""Self-tests of the harness (no gatehouse binary needed): the Upstream server's parser
and recording, the client helpers and the config builder."""

import hashlib
import tomllib
import unittest

from harness import (HttpClient, Upstream, build_request, delayed_handler,
                     encode_chunked, make_config, pattern_blocks, pattern_bytes,
                     pattern_sha256, raw_request, refusing_port, stream_handler)


class UpstreamTest(unittest.TestCase):
    def setUp(self):
        self.upstream = Upstream(name="u1")
        self.addCleanup(self.upstream.close)

    def test_content_length_and_chunked_bodies_on_one_connection(self):
        with HttpClient(self.upstream.port) as client:
            first = client.request("POST", "/a", body=b"hello")
            second = client.request("PUT", "/b", body=b"x" * 70000, chunked=True)
        self.assertEqual((first.status, first.body), (200, b"hello"))
        self.assertEqual(second.headers.get("X-Framing"), "chunked")
        self.assertEqual(second.body, b"x" * 70000)
        self.assertEqual(second.headers.get("X-Body-Sha256"),
                         hashlib.sha256(b"x" * 70000).hexdigest())
        self.assertEqual(self.upstream.connections, 1)
        self.assertEqual(self.upstream.request_targets(), ["/a", "/b"])
        self.assertTrue(self.upstream.received_bytes().startswith(b"POST /a HTTP/1.1\r\n"))

    def test_pipelined_requests_and_close(self):
        data = (build_request("GET", "/1") + build_request("GET", "/2")
                + build_request("GET", "/3", [("Connection", "close")]))
        result = raw_request(self.upstream.port, data)
        self.assertTrue(result.closed)
        self.assertEqual(result.status, 200)
        self.assertEqual(result.raw.count(b"HTTP/1.1 200 OK"), 3)
        self.assertEqual(self.upstream.request_targets(), ["/1", "/2", "/3"])

    def test_bad_chunk_is_a_parse_error(self):
        data = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"zz\r\n")
        result = raw_request(self.upstream.port, data, timeout=2)
        self.assertTrue(result.closed)
        self.assertIsNone(result.status)
        self.assertEqual(self.upstream.requests, [])
        self.assertEqual(len(self.upstream.errors), 1)

    def test_streamed_download_matches_pattern(self):
        upstream = Upstream(stream_handler(3_000_000, seed=5, chunked=True))
        self.addCleanup(upstream.close)
        digest = hashlib.sha256()
        with HttpClient(upstream.port) as client:
            client.send(build_request("GET", "/"))
            response = client.read_response(body_sink=digest.update)
        self.assertEqual(response.status, 200)
        self.assertEqual(digest.hexdigest(), pattern_sha256(3_000_000, seed=5))

    def test_delayed_handler_times_out_client(self):
        upstream = Upstream(delayed_handler(1.0))
        self.addCleanup(upstream.close)
        result = raw_request(upstream.port, build_request("GET", "/"), timeout=0.3)
        self.assertIsNone(result.status)
        self.assertFalse(result.closed)


class HelpersTest(unittest.TestCase):
    def test_pattern_is_deterministic_and_seeded(self):
        self.assertEqual(pattern_bytes(5000, 1), pattern_bytes(5000, 1))
        self.assertNotEqual(pattern_bytes(5000, 1), pattern_bytes(5000, 2))
        self.assertEqual(sum(map(len, pattern_blocks(3 << 20 | 7))), 3 << 20 | 7)

    def test_encode_chunked_with_sizes(self):
        encoded = b"".join(encode_chunked([b"abcdefg"], chunk_sizes=[1, 3]))
        self.assertEqual(encoded, b"1\r\na\r\n3\r\nbcd\r\n1\r\ne\r\n2\r\nfg\r\n0\r\n\r\n")

    def test_make_config_is_valid_toml(self):
        refused = refusing_port()
        self.addCleanup(refused.close)
        text = make_config({"a": [1234, refused], "b": {"servers": ["127.0.0.1:5"],
                                                        "balance": "least_conn"}},
                           routes=[{"host": "*.x.test", "path_prefix": "/", "upstream": "b"}],
                           limits={"body": "0"}, timeouts={"upstream_read": "1s"})
        parsed = tomllib.loads(text)
        self.assertEqual(parsed["server"]["workers"], 1)
        self.assertEqual(parsed["upstream"][0]["servers"][0], "127.0.0.1:1234")
        self.assertEqual(parsed["upstream"][1]["balance"], "least_conn")
        self.assertEqual(parsed["route"][0]["host"], "*.x.test")
        self.assertEqual(parsed["listener"][0]["address"], "127.0.0.1:0")


if __name__ == "__main__":
    unittest.main()
