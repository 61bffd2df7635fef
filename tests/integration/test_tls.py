"""TLS termination through the real gatehouse binary (workers = 2): SNI certificate
selection (ECDSA P-256 and RSA), protocol versions and ALPN, session resumption across
workers and reloads, large bodies over HTTPS with curl, HSTS and X-Forwarded-Proto,
certificate reload on change and on SIGHUP (bad certificates refused), `gatehouse check`,
the handshake timeout, and Socket.IO over wss.

Clients are the `openssl` and `curl` command line tools and Python's ssl module, all on
loopback. Certificates come from a throwaway CA (tls_support) made once per module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import (LOCALHOST, BufferedReader, Gatehouse, GatehouseTestCase, HttpClient,
                     Upstream, connect, make_config, pattern_blocks, pattern_sha256,
                     run_gatehouse, stream_handler, wait_for, write_atomically)
from tls_support import OPENSSL, CertificateAuthority, days_from_now
from websocket import Replica, node_ready, run_clients

CURL = shutil.which("curl") or "/usr/bin/curl"
WORKERS = 2
RELOAD_DEADLINE = 5.0       # certificate files are polled every 2 s, applied 0.5 s later
BODY_SIZE = 6 * 1024 * 1024

# Filled by setUpModule: a CA and the certificates every test uses (never modified; tests
# that rewrite files on disk work on copies).
CERTS: dict = {}
_module_dir: tempfile.TemporaryDirectory | None = None


def setUpModule():
    global _module_dir
    _module_dir = tempfile.TemporaryDirectory(prefix="gatehouse-tls-")
    ca = CertificateAuthority(_module_dir.name)
    CERTS["ca"] = ca
    CERTS["a"] = ca.issue(["a.test", "www.a.test"])                      # ECDSA P-256
    CERTS["b"] = ca.issue(["b.test", "*.b.test"], key_type="rsa")        # RSA 2048
    CERTS["a2"] = ca.issue(["a.test", "www.a.test"])                     # a renewal of a
    CERTS["a3"] = ca.issue(["a.test", "www.a.test"])                     # and another
    CERTS["a_expired"] = ca.issue(["a.test"], not_before=days_from_now(-30),
                                  not_after=days_from_now(-1))
    CERTS["local"] = ca.issue(["localhost", "127.0.0.1"])               # for Node (IP SAN)


def tearDownModule():
    if _module_dir is not None:
        _module_dir.cleanup()


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def fingerprint_of(cert) -> str:
    """Lowercase hex SHA-256 of a tls_support.Certificate (as in its DER form)."""
    return cert.fingerprint().replace(":", "").lower()


def tls_listener(certificates, **settings) -> str:
    """A [[listener]] with [listener.tls]; certificates are (cert_path, key_path) pairs or
    tls_support.Certificate objects (their fullchain and key)."""
    entries = []
    for c in certificates:
        cert, key = (c.fullchain, c.key) if hasattr(c, "fullchain") else c
        entries.append(f"{{ cert = {json.dumps(cert)}, key = {json.dumps(key)} }}")
    lines = ["[[listener]]", f'address = "{LOCALHOST}:0"', "[listener.tls]",
             f"certificates = [{', '.join(entries)}]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def plain_listener() -> str:
    return f'[[listener]]\naddress = "{LOCALHOST}:0"\n'


def tls_config(upstreams: dict, listeners: list[str], routes=None, **kwargs) -> str:
    """make_config with `workers = 2` and the given listener sections (in ready-file order)."""
    server = {"workers": WORKERS, **kwargs.pop("server", {})}
    base = make_config(upstreams, routes, server=server, listeners=0, **kwargs)
    return base + "\n" + "\n".join(listeners)


def client_context(ca_file: str | None = None, check_hostname: bool = True,
                   version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file or CERTS["ca"].cert)
    ctx.check_hostname = check_hostname
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def handshake(port: int, server_name: str | None, *, check_hostname: bool = True,
              version: ssl.TLSVersion | None = None) -> dict:
    """One TLS handshake (certificate verified against the test CA); returns what the
    client saw: DER fingerprint, decoded certificate, version, cipher, ALPN."""
    ctx = client_context(check_hostname=check_hostname and server_name is not None,
                         version=version)
    with socket.create_connection((LOCALHOST, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
            return {"fingerprint": hashlib.sha256(der).hexdigest(), "cert": tls.getpeercert(),
                    "version": tls.version(), "cipher": tls.cipher()[0],
                    "alpn": tls.selected_alpn_protocol()}


def subject_cn(decoded: dict) -> str:
    for rdn in decoded.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""


def san_dns(decoded: dict) -> list[str]:
    return [value for kind, value in decoded.get("subjectAltName", ()) if kind == "DNS"]


class TlsClient(HttpClient):
    """HttpClient over a verified TLS connection (keep-alive requests on one socket)."""

    def __init__(self, port: int, server_name: str, timeout: float = 5.0):
        raw = connect(port, timeout)
        try:
            self.sock = client_context().wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise
        self.reader = BufferedReader(self.sock)
        self.server_name = server_name

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.sock.getpeercert(binary_form=True)).hexdigest()

    def get(self, target: str = "/"):
        return self.request("GET", target, host=self.server_name)


def s_client(port: int, *args: str, request: bytes | None = None,
             server_name: str | None = "a.test",
             timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Runs `openssl s_client` against the proxy. With `request`, sends it and reads until
    the proxy closes (-ign_eof), so TLS 1.3 session tickets are received too."""
    command = [OPENSSL, "s_client", "-connect", f"{LOCALHOST}:{port}", *args]
    if server_name:
        command += ["-servername", server_name]
    if request is not None:
        command.append("-ign_eof")
    return subprocess.run(command, input=request or b"", capture_output=True,
                          timeout=timeout, check=False)


def http_get(host: str, target: str = "/") -> bytes:
    return (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").encode()


def install(cert, cert_path: str, key_path: str, *, atomic: bool) -> None:
    """Puts `cert` (fullchain + key) at the given paths: by rename (certbot-like symlink
    swap) or rewritten in place (cp)."""
    for source, target in ((cert.key, key_path), (cert.fullchain, cert_path)):
        if atomic:
            temp = target + ".new"
            shutil.copyfile(source, temp)
            os.replace(temp, target)
        else:
            shutil.copyfile(source, target)


def served_fingerprint(port: int, name: str = "a.test") -> str | None:
    try:
        return handshake(port, name)["fingerprint"]
    except (OSError, ssl.SSLError):
        return None


# --------------------------------------------------------------------------------------
# One shared proxy: SNI, versions, resumption, bodies, headers, handshake timeout
# --------------------------------------------------------------------------------------


class TlsListenerTest(GatehouseTestCase):
    """Listeners: [0] TLS a (ECDSA, default) + b (RSA) with hsts = "365d" and
    handshake_timeout = "1s"; [1] TLS with the same certificates and no HSTS; [2] plain."""

    @classmethod
    def setUpClass(cls):
        cls.echo = Upstream(name="echo")
        cls.download = Upstream(stream_handler(BODY_SIZE, seed=3), name="download")
        cls.download_chunked = Upstream(stream_handler(BODY_SIZE, seed=4, chunked=True),
                                        name="download-chunked")
        cls.addClassCleanup(cls.echo.close)
        cls.addClassCleanup(cls.download.close)
        cls.addClassCleanup(cls.download_chunked.close)
        certificates = [CERTS["a"], CERTS["b"]]
        config = tls_config(
            {"echo": [cls.echo], "download": [cls.download],
             "download_chunked": [cls.download_chunked]},
            [tls_listener(certificates, hsts="365d", handshake_timeout="1s"),
             tls_listener(certificates), plain_listener()],
            routes=[{"path_prefix": "/", "upstream": "echo"},
                    {"path_prefix": "/download", "upstream": "download"},
                    {"path_prefix": "/download-chunked", "upstream": "download_chunked"}],
            limits={"body": "0"}, timeouts={"client_body": "30s", "upstream_read": "30s"})
        cls.gh = Gatehouse(config)
        cls.addClassCleanup(cls.gh.cleanup)
        cls.gh.start()
        cls.port, cls.port_no_hsts, cls.port_plain = cls.gh.ports

    def setUp(self):
        self.addCleanup(self._dump_logs_on_failure, self.gh)

    # -- certificates by SNI --------------------------------------------------------

    def test_sni_selects_certificate_and_unknown_names_get_the_default(self):
        a, b = fingerprint_of(CERTS["a"]), fingerprint_of(CERTS["b"])
        a_names, b_names = ["a.test", "www.a.test"], ["b.test", "*.b.test"]
        cases = [("a.test", a, a_names), ("www.a.test", a, a_names),
                 ("b.test", b, b_names), ("api.b.test", b, b_names),   # wildcard
                 ("B.TEST", b, b_names)]                               # case-insensitive
        for name, expected, names in cases:
            with self.subTest(name=name):
                seen = handshake(self.port, name)   # hostname verified against the CA
                self.assertEqual(seen["fingerprint"], expected)
                self.assertEqual(subject_cn(seen["cert"]), names[0])
                self.assertEqual(san_dns(seen["cert"]), names)
        for name in ("unknown.test", "a.b.c.b.test", None):   # no match, no SNI: default
            with self.subTest(name=name):
                seen = handshake(self.port, name, check_hostname=False)
                self.assertEqual(seen["fingerprint"], a)
                self.assertEqual(subject_cn(seen["cert"]), "a.test")

    def test_s_client_showcerts_subject_and_key_types(self):
        for name, subject, key_line, signature in [
                ("a.test", "subject=CN = a.test", "Server public key is 256 bit", "ECDSA"),
                ("b.test", "subject=CN = b.test", "Server public key is 2048 bit", "RSA"),
                ("nomatch.test", "subject=CN = a.test", "Server public key is 256 bit", "ECDSA")]:
            for version in ("-tls1_2", "-tls1_3"):
                with self.subTest(name=name, version=version):
                    result = s_client(self.port, version, "-showcerts", "-CAfile",
                                      CERTS["ca"].cert, request=http_get(name),
                                      server_name=name)
                    out = result.stdout.decode(errors="replace")
                    self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
                    self.assertIn(subject, out)
                    self.assertIn(key_line, out)
                    self.assertRegex(out, rf"Peer signature type: {signature}")
                    self.assertIn("Verify return code: 0 (ok)", out)
                    self.assertIn("HTTP/1.1 200 OK", out)
                    if version == "-tls1_2":   # the suite names the certificate's key type
                        suite_key = "ECDSA" if signature == "ECDSA" else "RSA"
                        self.assertRegex(out, rf"Cipher is ECDHE-{suite_key}-")

    # -- versions and ALPN ----------------------------------------------------------

    def test_tls_1_0_and_1_1_refused_by_the_server(self):
        for flag, name in (("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")):
            with self.subTest(version=name):
                # SECLEVEL=0 lets Debian's client offer the old version at all, so the
                # refusal below is the server's (alert 70 arrives: 7 bytes read).
                result = s_client(self.port, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
                text = (result.stdout + result.stderr).decode(errors="replace")
                self.assertNotEqual(result.returncode, 0, text)
                self.assertIn("alert protocol version", text)
                self.assertNotIn("no protocols available", text)   # not a client refusal
                self.assertIn("SSL alert number 70", text)
                self.assertIn("Cipher is (NONE)", text)
                self.assertNotIn("BEGIN CERTIFICATE", text)

    def test_tls_1_2_and_1_3_accepted_with_alpn_http11(self):
        for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            with self.subTest(version=name, alpn="h2,http/1.1"):
                # HTTP/2 is on by default: h2 is preferred when offered.
                result = s_client(self.port, flag, "-alpn", "h2,http/1.1", "-CAfile",
                                  CERTS["ca"].cert, "-verify_return_error")
                out = result.stdout.decode(errors="replace")
                self.assertIn("ALPN protocol: h2", out)
            for alpn in ("http/1.1",):
                with self.subTest(version=name, alpn=alpn):
                    result = s_client(self.port, flag, "-alpn", alpn, "-CAfile",
                                      CERTS["ca"].cert, "-verify_return_error",
                                      request=http_get("a.test"))
                    out = result.stdout.decode(errors="replace")
                    self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
                    self.assertIn(f"New, {name}, Cipher is", out)
                    self.assertIn("ALPN protocol: http/1.1", out)
                    self.assertIn("HTTP/1.1 200 OK", out)
            with self.subTest(version=name, client="python"):
                version = ssl.TLSVersion.TLSv1_2 if name == "TLSv1.2" else ssl.TLSVersion.TLSv1_3
                seen = handshake(self.port, "b.test", version=version)
                self.assertEqual((seen["version"], seen["alpn"]), (name, "http/1.1"))

    # -- session resumption ---------------------------------------------------------

    def resume_across_workers(self, flag: str, name: str):
        with tempfile.TemporaryDirectory(prefix="gatehouse-sess-") as tmp:
            session = os.path.join(tmp, "session.pem")
            first = s_client(self.port, flag, "-CAfile", CERTS["ca"].cert, "-sess_out", session,
                             request=http_get("a.test", "/first"))
            out = first.stdout.decode(errors="replace")
            self.assertIn(f"New, {name}", out)
            self.assertTrue(os.path.getsize(session) > 0, "no session written")
            upstream_connections = set(re.findall(r"X-Connection-Id: (\d+)", out))
            reused = []
            # Each worker has its own upstream pool: sequential requests through one
            # worker reuse its pooled connection, so two upstream connection ids mean the
            # connections were accepted by both workers (SO_REUSEPORT spreads them).
            for attempt in range(24):
                result = s_client(self.port, flag, "-CAfile", CERTS["ca"].cert,
                                  "-sess_in", session, request=http_get("a.test", f"/r{attempt}"))
                text = result.stdout.decode(errors="replace")
                status = re.search(r"^(New|Reused), (TLSv[\d.]+)", text, re.M)
                self.assertIsNotNone(status, text + result.stderr.decode(errors="replace"))
                reused.append(status.group(1))
                self.assertEqual(status.group(2), name)
                self.assertIn("HTTP/1.1 200 OK", text)
                upstream_connections.update(re.findall(r"X-Connection-Id: (\d+)", text))
                if attempt >= 7 and len(upstream_connections) >= WORKERS:
                    break
            self.assertEqual(reused, ["Reused"] * len(reused),
                             f"{name}: not every connection resumed the session")
            self.assertGreaterEqual(len(upstream_connections), WORKERS,
                                    f"all {len(reused)} connections landed on one worker?")

    def test_session_resumption_across_workers_tls13(self):
        self.resume_across_workers("-tls1_3", "TLSv1.3")

    def test_session_resumption_across_workers_tls12(self):
        self.resume_across_workers("-tls1_2", "TLSv1.2")

    # -- bodies over HTTPS (curl) ---------------------------------------------------

    def curl(self, name: str, path: str, *args: str, port: int | None = None):
        """curl over HTTPS/1.1 (these tests are about the HTTP/1.1 path; the test_http2_* modules cover
        h2) to name:port resolved to loopback, verified with the test CA.
        Returns (status, headers text, body path)."""
        port = port or self.port
        tmp = tempfile.mkdtemp(prefix="gatehouse-curl-")
        self.addCleanup(shutil.rmtree, tmp, True)
        body, headers = os.path.join(tmp, "body"), os.path.join(tmp, "headers")
        result = subprocess.run(
            [CURL, "-sS", "--max-time", "30", "--resolve", f"{name}:{port}:{LOCALHOST}",
             "--cacert", CERTS["ca"].cert, "-o", body, "-D", headers,
             "--http1.1", "-w", "%{http_code} %{http_version} %{ssl_verify_result}", *args,
             f"https://{name}:{port}{path}"], capture_output=True, text=True, timeout=40)
        self.assertEqual(result.returncode, 0, f"curl failed: {result.stderr}")
        code, http_version, verify = result.stdout.split()
        self.assertEqual((http_version, verify), ("1.1", "0"))
        with open(headers, encoding="latin-1") as f:
            head = f.read()
        return int(code), head, body

    @staticmethod
    def sha256_file(path: str) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def upload_file(self) -> str:
        tmp = tempfile.mkdtemp(prefix="gatehouse-upload-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "upload.bin")
        with open(path, "wb") as f:
            for block in pattern_blocks(BODY_SIZE, seed=5):
                f.write(block)
        return path

    def test_curl_large_downloads_intact(self):
        for name, path, chunked, seed in [("a.test", "/download", False, 3),
                                          ("b.test", "/download-chunked", True, 4)]:
            with self.subTest(name=name, path=path):
                status, head, body = self.curl(name, path)
                self.assertEqual(status, 200, head)
                self.assertEqual(bool(re.search(r"(?im)^transfer-encoding: chunked", head)),
                                 chunked, head)
                self.assertEqual(os.path.getsize(body), BODY_SIZE)
                self.assertEqual(self.sha256_file(body), pattern_sha256(BODY_SIZE, seed=seed))

    def test_curl_large_uploads_intact_with_length_and_chunked(self):
        upload = self.upload_file()
        expected = pattern_sha256(BODY_SIZE, seed=5)
        for name, extra, framing in [("a.test", [], "length"),
                                     ("b.test", ["-H", "Transfer-Encoding: chunked"], "chunked")]:
            with self.subTest(name=name, framing=framing):
                before = len(self.echo.requests)
                status, head, body = self.curl(name, "/echo", "--data-binary", f"@{upload}",
                                               "-H", "Content-Type: application/octet-stream",
                                               *extra)
                self.assertEqual(status, 200, head)
                self.assertRegex(head, rf"(?im)^x-body-sha256: {expected}\r?$")
                self.assertRegex(head, rf"(?im)^x-body-length: {BODY_SIZE}\r?$")
                self.assertRegex(head, rf"(?im)^x-framing: {framing}\r?$")
                self.assertEqual(self.sha256_file(body), expected, "echoed body corrupted")
                self.assertTrue(self.echo.wait_for_requests(before + 1))
                request = self.echo.requests[-1]
                self.assertEqual(request.headers.get("X-Forwarded-Proto"), "https")
                self.assertEqual(request.headers.get("Host"), f"{name}:{self.port}")

    # -- headers --------------------------------------------------------------------

    def test_hsts_and_x_forwarded_proto(self):
        cases = [(self.port, "https", "max-age=31536000"), (self.port_no_hsts, "https", None)]
        for port, proto, hsts in cases:
            with self.subTest(port=port):
                with TlsClient(port, "a.test") as client:
                    for target in ("/one", "/two"):       # keep-alive: both requests
                        before = len(self.echo.requests)
                        response = client.get(target)
                        self.assertEqual(response.status, 200)
                        self.assertEqual(response.headers.get("Strict-Transport-Security"), hsts)
                        self.assertEqual(len(response.headers.get_all(
                            "Strict-Transport-Security")), 1 if hsts else 0)
                        self.assertTrue(self.echo.wait_for_requests(before + 1))
                        forwarded = self.echo.requests[-1].headers
                        self.assertEqual(forwarded.get_all("X-Forwarded-Proto"), [proto])
        with self.subTest(listener="plain"):
            with HttpClient(self.port_plain) as client:
                before = len(self.echo.requests)
                response = client.request("GET", "/plain")
                self.assertEqual(response.status, 200)
                self.assertIsNone(response.headers.get("Strict-Transport-Security"))
                self.assertTrue(self.echo.wait_for_requests(before + 1))
                self.assertEqual(self.echo.requests[-1].headers.get("X-Forwarded-Proto"), "http")
        with self.subTest("curl sees HSTS"):
            status, head, _ = self.curl("www.a.test", "/curl")
            self.assertEqual(status, 200)
            self.assertRegex(head, r"(?im)^strict-transport-security: max-age=31536000\r?$")

    # -- handshake timeout ----------------------------------------------------------

    def time_until_closed(self, payload: bytes, limit: float = 5.0) -> float | None:
        started = time.monotonic()
        with connect(self.port, timeout=limit) as sock:
            if payload:
                sock.sendall(payload)
            try:
                while sock.recv(4096):
                    pass
            except socket.timeout:
                return None
            except ConnectionResetError:
                pass
        return time.monotonic() - started

    def test_handshake_timeout_closes_silent_and_stalled_clients(self):
        for label, payload in [("silent", b""),
                               ("partial ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01")]:
            with self.subTest(label):
                elapsed = self.time_until_closed(payload)
                self.assertIsNotNone(elapsed, "still open after 5 s (handshake_timeout = 1s)")
                self.assertGreater(elapsed, 0.8, "closed before the handshake timeout")
                self.assertLess(elapsed, 3.0)
        with self.subTest("a finished handshake is not cut at 1 s"):
            with TlsClient(self.port, "a.test") as client:
                time.sleep(1.5)
                self.assertEqual(client.get("/after-idle").status, 200)


# --------------------------------------------------------------------------------------
# Certificates changing on disk and on SIGHUP: a fresh proxy per test
# --------------------------------------------------------------------------------------


class CertificateReloadTest(GatehouseTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gatehouse-live-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.cert_path = os.path.join(self.tmp, "live", "a.test", "fullchain.pem")
        self.key_path = os.path.join(self.tmp, "live", "a.test", "privkey.pem")
        os.makedirs(os.path.dirname(self.cert_path))
        install(CERTS["a"], self.cert_path, self.key_path, atomic=False)
        self.upstream = self.start_upstream()

    def config(self, certificates=None) -> str:
        certificates = certificates or [(self.cert_path, self.key_path), CERTS["b"]]
        return tls_config({"app": [self.upstream]}, [tls_listener(certificates)])

    def start(self):
        self.gh = self.start_gatehouse(self.config())
        self.assertEqual(served_fingerprint(self.gh.port), fingerprint_of(CERTS["a"]))
        return self.gh

    def open_keepalive(self) -> TlsClient:
        client = TlsClient(self.gh.port, "a.test")
        self.addCleanup(client.close)
        self.assertEqual(client.get("/before").status, 200)
        return client

    def wait_served(self, cert, name: str = "a.test") -> float | None:
        """Seconds until new connections get `cert`, or None within RELOAD_DEADLINE."""
        started = time.monotonic()
        expected = fingerprint_of(cert)
        if wait_for(lambda: served_fingerprint(self.gh.port, name) == expected,
                    RELOAD_DEADLINE, 0.1):
            return time.monotonic() - started
        return None

    def wait_log(self, text: str, count: int = 1, timeout: float = RELOAD_DEADLINE) -> bool:
        return bool(wait_for(lambda: self.gh.stderr().count(text) >= count, timeout))

    def test_swapped_certificate_served_while_keepalive_connection_keeps_working(self):
        self.start()
        old_client = self.open_keepalive()
        self.assertEqual(old_client.fingerprint, fingerprint_of(CERTS["a"]))
        install(CERTS["a2"], self.cert_path, self.key_path, atomic=False)   # rewritten in place
        elapsed = self.wait_served(CERTS["a2"])
        self.assertIsNotNone(elapsed, f"new certificate not served within {RELOAD_DEADLINE}s; "
                                      f"stderr:\n{self.gh.stderr()[-2000:]}")
        self.assertIn("certificates reloaded", self.gh.stderr())
        # The connection from before the swap keeps its session and keeps working.
        response = old_client.get("/after-swap")
        self.assertEqual(response.status, 200)
        self.assertEqual(old_client.fingerprint, fingerprint_of(CERTS["a"]))
        # The other SNI certificate is unaffected; the generation is a config matter.
        self.assertEqual(served_fingerprint(self.gh.port, "b.test"), fingerprint_of(CERTS["b"]))
        self.assertEqual(self.gh.read_generation(), 1)
        # A second renewal, this time by rename (certbot's symlink swap).
        install(CERTS["a3"], self.cert_path, self.key_path, atomic=True)
        self.assertIsNotNone(self.wait_served(CERTS["a3"]), self.gh.stderr()[-2000:])
        self.assertEqual(old_client.get("/after-second-swap").status, 200)

    def test_bad_certificates_on_disk_are_refused_and_the_old_one_kept(self):
        self.start()
        old = fingerprint_of(CERTS["a"])
        refused = "certificates changed but were refused, keeping the old ones"
        steps = [
            # (what, cert to install as the cert file, key file source, expected in message)
            ("mismatched key", CERTS["a"].fullchain, CERTS["a2"].key,
             f"{self.key_path}: private key does not match certificate {self.cert_path}"),
            ("expired certificate", CERTS["a_expired"].fullchain, CERTS["a_expired"].key,
             f"{self.cert_path}: certificate expired on"),
        ]
        for count, (what, cert_source, key_source, message) in enumerate(steps, start=1):
            with self.subTest(what):
                for source, target in ((key_source, self.key_path), (cert_source, self.cert_path)):
                    temp = target + ".new"
                    shutil.copyfile(source, temp)
                    os.replace(temp, target)
                self.assertTrue(self.wait_log(refused, count),
                                f"no refusal logged within {RELOAD_DEADLINE}s:\n"
                                f"{self.gh.stderr()[-2000:]}")
                line = [l for l in self.gh.stderr().splitlines() if refused in l][-1]
                self.assertIn(message, line)
                self.assertEqual(served_fingerprint(self.gh.port), old)
                with TlsClient(self.gh.port, "a.test") as client:
                    self.assertEqual(client.get(f"/after-{count}").status, 200)
        self.assertNotIn("certificates reloaded", self.gh.stderr())
        # The watcher survives refusals: a good pair is then picked up.
        install(CERTS["a2"], self.cert_path, self.key_path, atomic=True)
        self.assertIsNotNone(self.wait_served(CERTS["a2"]), self.gh.stderr()[-2000:])
        self.assertTrue(self.gh.proc.poll() is None)

    def test_sighup_with_missing_certificate_keeps_the_old_config(self):
        self.start()
        client = self.open_keepalive()
        missing = os.path.join(self.tmp, "missing", "fullchain.pem")
        bad = self.config([(missing, self.key_path), CERTS["b"]])
        self.assertFalse(self.gh.reload(bad, timeout=2.0), "reload with a missing cert applied")
        self.assertEqual(self.gh.read_generation(), 1)
        self.assertTrue(self.wait_log("reload failed: ", timeout=2.0), self.gh.stderr()[-2000:])
        line = [l for l in self.gh.stderr().splitlines() if "reload failed: " in l][-1]
        self.assertIn(missing, line)
        self.assertIn("keeping the running config (generation 1)", line)
        self.assertEqual(served_fingerprint(self.gh.port), fingerprint_of(CERTS["a"]))
        self.assertEqual(served_fingerprint(self.gh.port, "b.test"), fingerprint_of(CERTS["b"]))
        self.assertEqual(client.get("/after-failed-reload").status, 200)
        self.assertIsNone(self.gh.proc.poll())

    def test_sighup_reload_switches_certificate_and_sessions_still_resume(self):
        self.start()
        session = os.path.join(self.tmp, "session.pem")
        tls13 = os.path.join(self.tmp, "session13.pem")
        for flag, path in (("-tls1_2", session), ("-tls1_3", tls13)):
            first = s_client(self.gh.port, flag, "-sess_out", path, request=http_get("a.test"))
            self.assertIn(b"New, TLSv1.", first.stdout)
        client = self.open_keepalive()
        good = self.config([CERTS["a2"], CERTS["b"]])
        self.assertTrue(self.gh.reload(good), self.gh.stderr()[-2000:])
        self.assertEqual(self.gh.generation, 2)
        self.assertEqual(served_fingerprint(self.gh.port), fingerprint_of(CERTS["a2"]))
        self.assertEqual(client.get("/after-reload").status, 200)
        # Ticket keys outlive the reload: sessions from before resume on the new contexts.
        for flag, path in (("-tls1_2", session), ("-tls1_3", tls13)):
            with self.subTest(flag):
                for attempt in range(4):
                    result = s_client(self.gh.port, flag, "-sess_in", path,
                                      request=http_get("a.test", f"/resume{attempt}"))
                    self.assertIn(b"Reused, TLSv1.", result.stdout,
                                  result.stdout.decode(errors="replace")[-1500:])
                    self.assertIn(b"HTTP/1.1 200 OK", result.stdout)


# --------------------------------------------------------------------------------------
# gatehouse check
# --------------------------------------------------------------------------------------


class CheckCommandTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gatehouse-check-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def check(self, certificates) -> subprocess.CompletedProcess:
        path = os.path.join(self.tmp, "gatehouse.toml")
        write_atomically(path, tls_config({"app": ["127.0.0.1:9"]}, [tls_listener(certificates)]))
        self.config_path = path
        return run_gatehouse("check", "-c", path)

    def test_good_config_passes(self):
        result = self.check([CERTS["a"], CERTS["b"]])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("is valid", result.stdout)

    def test_missing_certificate_and_key(self):
        for which in ("cert", "key"):
            with self.subTest(which):
                missing = os.path.join(self.tmp, f"missing-{which}.pem")
                b = CERTS["b"]
                pair = (missing, b.key) if which == "cert" else (b.fullchain, missing)
                result = self.check([CERTS["a"], pair])
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn(f"{missing}: cannot read: No such file or directory", result.stderr)
                self.assertIn(self.config_path, result.stderr)

    def test_mismatched_key(self):
        result = self.check([(CERTS["a"].fullchain, CERTS["a2"].key)])
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(f"{CERTS['a2'].key}: private key does not match certificate "
                      f"{CERTS['a'].fullchain}", result.stderr)

    def test_expired_certificate(self):
        result = self.check([CERTS["a"], CERTS["a_expired"]])
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(f"{CERTS['a_expired'].fullchain}: certificate expired on", result.stderr)

    def test_unusable_upstream_ca_file(self):
        missing = os.path.join(self.tmp, "missing-ca.pem")
        path = os.path.join(self.tmp, "gatehouse.toml")
        upstream = {"servers": ["127.0.0.1:9"], "tls": True, "tls_ca_file": missing}
        write_atomically(path, tls_config({"app": upstream}, [tls_listener([CERTS["a"]])]))
        result = run_gatehouse("check", "-c", path)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(f"upstream app: {missing}: no usable CA certificate", result.stderr)
        # The same file with a real CA bundle passes.
        upstream["tls_ca_file"] = CERTS["ca"].cert
        write_atomically(path, tls_config({"app": upstream}, [tls_listener([CERTS["a"]])]))
        self.assertEqual(run_gatehouse("check", "-c", path).returncode, 0)


# --------------------------------------------------------------------------------------
# Socket.IO over wss
# --------------------------------------------------------------------------------------


@unittest.skipIf(node_ready(), f"Socket.IO over TLS: {node_ready()}")
class SocketIoOverTlsTest(unittest.TestCase):
    CLIENTS = 50
    MESSAGES = 3

    def test_default_transports_through_wss_with_three_replicas(self):
        replicas = []
        try:
            replicas = [Replica(f"r{i}") for i in range(3)]
        finally:
            for r in replicas:
                self.addCleanup(r.proc.stdout.close)
                self.addCleanup(r.kill)
        config = tls_config({"app": [r.address for r in replicas]},
                            [tls_listener([CERTS["local"]])],
                            routes=[{"path_prefix": "/socket.io/", "upstream": "app"},
                                    {"path_prefix": "/", "upstream": "app"}])
        gh = Gatehouse(config)
        self.addCleanup(gh.cleanup)
        gh.start()
        env = {**os.environ, "NODE_EXTRA_CA_CERTS": CERTS["ca"].cert}
        env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)
        summary = run_clients(f"https://127.0.0.1:{gh.port}", self.CLIENTS, self.MESSAGES,
                              "polling,websocket", env=env)
        detail = f"{summary['errors'][:5]}\nstderr:\n{gh.stderr()[-2000:]}"
        self.assertEqual(summary["sessionUnknown"], 0, detail)
        self.assertEqual(summary["errors"], [], detail)
        self.assertEqual(summary["connected"], self.CLIENTS, detail)
        self.assertEqual(summary["acks"], self.CLIENTS * self.MESSAGES, detail)
        self.assertGreater(len(summary["replicas"]), 1, f"all clients on one replica: {summary}")
        self.assertGreater(summary["upgraded"], 0, "no client upgraded to wss")


if __name__ == "__main__":
    unittest.main()
