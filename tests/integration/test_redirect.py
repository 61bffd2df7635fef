"""A plain listener that redirects to HTTPS and serves ACME http-01 challenge files from
a webroot (certbot --webroot), the port-80 server block of a typical nginx setup."""

from __future__ import annotations

import os
import shutil
import tempfile
import unittest

from harness import Gatehouse, HttpClient, Upstream, build_request, raw_request


class RedirectTest(unittest.TestCase):
    def setUp(self):
        self.upstream = Upstream()
        self.addCleanup(self.upstream.close)
        self.webroot = tempfile.mkdtemp(prefix="gatehouse-webroot-")
        self.addCleanup(shutil.rmtree, self.webroot, ignore_errors=True)
        challenge_dir = os.path.join(self.webroot, ".well-known", "acme-challenge")
        os.makedirs(challenge_dir)
        with open(os.path.join(challenge_dir, "tok_EN-123"), "w") as f:
            f.write("tok_EN-123.thumbprint")
        with open(os.path.join(self.webroot, "secret"), "w") as f:
            f.write("not for you")
        config = f"""
[[listener]]
address = "127.0.0.1:0"
redirect_to_https = true
acme_webroot = "{self.webroot}"

[[upstream]]
name = "app"
servers = ["{self.upstream.address}"]
implicit_check = false  # its TCP probes would count as upstream connections

[[route]]
path_prefix = "/"
upstream = "app"
"""
        self.gatehouse = Gatehouse(config).start()
        self.addCleanup(self.gatehouse.stop)

    def get(self, target: str, host: str = "example.com"):
        with HttpClient(self.gatehouse.port) as client:
            return client.request("GET", target, headers=[("Host", host)])

    def test_redirects_to_https_with_host_and_path(self):
        response = self.get("/a/b?x=1", host="Example.com:80")
        self.assertEqual(response.status, 301)
        self.assertEqual(response.headers.get("location"), "https://example.com/a/b?x=1")
        self.assertEqual(self.upstream.connections, 0)

    def test_serves_acme_challenge_from_webroot(self):
        response = self.get("/.well-known/acme-challenge/tok_EN-123")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"tok_EN-123.thumbprint")

    def test_unknown_or_hostile_tokens_are_404(self):
        for target in ["/.well-known/acme-challenge/missing",
                       "/.well-known/acme-challenge/../../secret",
                       "/.well-known/acme-challenge/%2e%2e%2fsecret",
                       "/.well-known/acme-challenge/"]:
            with self.subTest(target):
                self.assertEqual(self.get(target).status, 404)
        self.assertEqual(self.upstream.connections, 0)

    def test_access_log_names_the_request_line(self):
        self.assertEqual(self.get("/logged/path?q=1").status, 301)
        self.assertEqual(self.gatehouse.stop(), 0)
        self.assertIn('"GET /logged/path?q=1 HTTP/1.1" 301', self.gatehouse.stdout())

    def test_connect_and_oversized_body_are_refused_before_redirecting(self):
        for request, status in [
                (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
                (build_request("POST", "/upload", [("Host", "example.com"),
                                                   ("Content-Length", str(2 << 20))]), 413)]:
            with self.subTest(request.split(b" ", 1)[0]):
                result = raw_request(self.gatehouse.port, request, timeout=2)
                self.assertEqual(result.status, status, result.raw[:300])
                self.assertNotIn(b"Location:", result.raw)
        self.assertEqual(self.upstream.connections, 0)

    def test_http10_without_host_gets_400(self):
        result = raw_request(self.gatehouse.port, b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(result.status, 400)


if __name__ == "__main__":
    unittest.main()
