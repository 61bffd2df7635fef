"""TLS to upstreams through the real gatehouse binary: an HTTPS origin (Python's ssl
module, certificates from a throwaway CA) behind an [[upstream]] with tls = true.

Covers: verification against tls_ca_file (by name through tls_server_name, and by IP for
an IP-literal server), the SNI the origin sees, a wrong-name or untrusted certificate
refused with 502 and a log line naming the verification failure, tls_verify = false,
keep-alive reuse of the upstream TLS connection, and request bodies over it.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import time
import unittest

from harness import GatehouseTestCase, Upstream, make_config, pattern_bytes, pattern_sha256
from tls_support import CertificateAuthority

CERTS: dict = {}
_module_dir: tempfile.TemporaryDirectory | None = None


def setUpModule():
    global _module_dir
    _module_dir = tempfile.TemporaryDirectory(prefix="gatehouse-upstream-tls-")
    ca = CertificateAuthority(_module_dir.name)
    CERTS["ca"] = ca
    CERTS["api"] = ca.issue(["api.test"])
    CERTS["other"] = ca.issue(["other.test"])
    CERTS["ip"] = ca.issue(["127.0.0.1"])
    CERTS["stranger"] = CertificateAuthority(_module_dir.name + "/stranger",
                                             name="Stranger CA").issue(["api.test"])


def tearDownModule():
    if _module_dir is not None:
        _module_dir.cleanup()


class TlsUpstream(Upstream):
    """The harness's origin server with TLS on every accepted connection. Records the SNI
    name of each handshake (`server_names`, None = no SNI), whether each handshake resumed
    a session (`resumed`), and failed handshakes."""

    def __init__(self, cert, max_version: ssl.TLSVersion | None = None, **kwargs):
        self.server_names: list[str | None] = []
        self.resumed: list[bool] = []
        self.handshake_errors: list[str] = []
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert.fullchain, cert.key)
        if max_version:
            self.context.maximum_version = max_version
        self.context.set_alpn_protocols(["http/1.1"])
        self.context.sni_callback = self._on_sni
        super().__init__(**kwargs)

    def _on_sni(self, _ssl_socket, name, _context):
        with self._lock:
            self.server_names.append(name)

    def _serve(self, sock: socket.socket, connection_id: int) -> None:
        sock.settimeout(5.0)
        try:
            tls_sock = self.context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as error:
            with self._lock:
                self.handshake_errors.append(str(error))
                self._sockets.discard(sock)
            sock.close()
            return
        with self._lock:
            self.resumed.append(tls_sock.session_reused)
            self._sockets.discard(sock)
            self._sockets.add(tls_sock)
        super()._serve(tls_sock, connection_id)


def closing_handler(request, conn) -> None:
    conn.close()
    conn.respond(200, [], b"closed after this")


class UpstreamTlsTest(GatehouseTestCase):
    def start_tls_upstream(self, cert) -> TlsUpstream:
        upstream = TlsUpstream(cert, name="secure")
        self.addCleanup(upstream.close)
        return upstream

    def start_proxy(self, upstream: TlsUpstream, **tls_keys):
        spec = {"servers": [upstream], "tls": True, **tls_keys}
        return self.start_gatehouse(make_config({"secure": spec}))

    def wait_for_log(self, gatehouse, text: str, timeout: float = 3.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            log = gatehouse.stderr()
            if text in log or time.monotonic() > deadline:
                return log
            time.sleep(0.05)

    def test_verified_by_name_sends_sni(self):
        upstream = self.start_tls_upstream(CERTS["api"])
        gatehouse = self.start_proxy(upstream, tls_ca_file=CERTS["ca"].cert,
                                     tls_server_name="api.test")
        response = self.get(gatehouse.port, "/hello")
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual(response.headers.get("X-Upstream"), "secure")
        self.assertEqual(response.headers.get("X-Target"), "/hello")
        self.assertEqual(upstream.server_names, ["api.test"])
        self.assertEqual(upstream.handshake_errors, [])

    def test_ip_literal_server_verified_by_ip_without_sni(self):
        upstream = self.start_tls_upstream(CERTS["ip"])
        gatehouse = self.start_proxy(upstream, tls_ca_file=CERTS["ca"].cert)
        response = self.get(gatehouse.port, "/ip")
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual(upstream.server_names, [None])

    def test_keepalive_reuses_the_upstream_tls_connection(self):
        upstream = self.start_tls_upstream(CERTS["api"])
        gatehouse = self.start_proxy(upstream, tls_ca_file=CERTS["ca"].cert,
                                     tls_server_name="api.test")
        for i in range(5):  # fresh client connections: the pool carries the upstream one
            self.assertEqual(self.get(gatehouse.port, f"/fresh/{i}").status, 200)
        with self.client(gatehouse.port) as client:  # and one keep-alive client
            for i in range(5):
                response = client.request("GET", f"/kept/{i}")
                self.assertEqual(response.status, 200)
                self.assertEqual(response.headers.get("X-Connection-Id"), "1")
        self.assertEqual(upstream.connections, 1)
        self.assertEqual(len(upstream.requests), 10)

    def test_new_connections_resume_the_tls_session(self):
        # The origin closes after every response, so each request needs a new connection:
        # all but the first resume (tickets kept per upstream address and name).
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version.name):
                upstream = TlsUpstream(CERTS["api"], version, name="secure",
                                       handler=closing_handler)
                self.addCleanup(upstream.close)
                gatehouse = self.start_proxy(upstream, tls_ca_file=CERTS["ca"].cert,
                                             tls_server_name="api.test")
                for i in range(4):
                    self.assertEqual(self.get(gatehouse.port, f"/r/{i}").status, 200)
                    time.sleep(0.05)  # a TLS 1.3 ticket arrives just after the handshake
                self.assertEqual(upstream.connections, 4)
                self.assertEqual(upstream.resumed, [False, True, True, True])

    def test_request_and_response_bodies(self):
        upstream = self.start_tls_upstream(CERTS["api"])
        gatehouse = self.start_proxy(upstream, tls_ca_file=CERTS["ca"].cert,
                                     tls_server_name="api.test")
        size = 300 * 1024
        with self.client(gatehouse.port) as client:
            response = client.request("POST", "/upload", body=pattern_bytes(size))
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers.get("X-Body-Sha256"), pattern_sha256(size))
        self.assertEqual(response.body, pattern_bytes(size))

    def assert_refused(self, cert, *expected_log: str) -> None:
        upstream = self.start_tls_upstream(cert)
        gatehouse = self.start_proxy(upstream, tls_ca_file=CERTS["ca"].cert,
                                     tls_server_name="api.test")
        response = self.get(gatehouse.port, "/")
        self.assertEqual(response.status, 502)
        log = self.wait_for_log(gatehouse, expected_log[0])
        for text in expected_log:
            self.assertIn(text, log)
        self.assertEqual(upstream.requests, [])

    def test_wrong_name_is_refused_with_502(self):
        self.assert_refused(CERTS["other"], "(api.test): TLS handshake failed",
                            "certificate verify failed: hostname mismatch")

    def test_untrusted_issuer_is_refused_with_502(self):
        self.assert_refused(CERTS["stranger"],
                            "certificate verify failed: unable to get local issuer certificate")

    def test_verify_off_accepts_any_certificate(self):
        upstream = self.start_tls_upstream(CERTS["stranger"])
        gatehouse = self.start_proxy(upstream, tls_verify=False, tls_server_name="wrong.test")
        response = self.get(gatehouse.port, "/unverified")
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual(upstream.server_names, ["wrong.test"])
        self.assertIn("tls_verify: false", gatehouse.stderr() + gatehouse.stdout())

    def test_plain_upstream_refused_by_tls_client_gives_502(self):
        plain = self.start_upstream()
        gatehouse = self.start_gatehouse(make_config(
            {"secure": {"servers": [plain], "tls": True, "tls_ca_file": CERTS["ca"].cert}}))
        response = self.get(gatehouse.port, "/")
        self.assertEqual(response.status, 502)


if __name__ == "__main__":
    unittest.main()
