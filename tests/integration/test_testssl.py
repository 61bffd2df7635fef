"""The TLS defaults as a scanner sees them, through the real binary: a listener with only
`certificates` set (one ECDSA P-256 and one RSA 2048 certificate, so both suite families
are reachable).

- What tls/TESTSSL.md reports, asserted with the `openssl` tool and Python's ssl module
  (fast, always run): no TLS 1.0/1.1, exactly the six ECDHE AEAD TLS 1.2 suites of Mozilla
  "intermediate" (every other suite OpenSSL knows is offered one at a time and refused),
  the server's cipher order, client-initiated renegotiation refused, no compression.
- Debian's testssl.sh on a subset (protocols, cipher categories, server preferences,
  forward secrecy, renegotiation, CRIME/BREACH): no finding rated HIGH or CRITICAL.
  It takes minutes (over 2 on the 2-core dev box), so it runs only with
  GATEHOUSE_TESTSSL=1 and testssl installed (`apt-get install testssl.sh`); the fast
  tests above assert the same properties on every run.

Loopback only; testssl runs with --nodns none (no DNS, no OCSP/CRL fetches).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import LOCALHOST, Gatehouse, Upstream, make_config
from tls_support import OPENSSL, CertificateAuthority

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")
# Mozilla intermediate (v5.7) TLS 1.2 suites without the DHE ones.
EXPECTED_TLS12 = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
}
# Findings about the throwaway certificate, not about Gatehouse's settings.
CERTIFICATE_FINDINGS = ("cert_", "intermediate_cert", "OCSP_", "DNS_CAA")

_dir: tempfile.TemporaryDirectory | None = None
_gatehouse: Gatehouse | None = None
_upstream: Upstream | None = None
CA: CertificateAuthority | None = None
PORT = 0


def setUpModule():
    global _dir, _gatehouse, _upstream, CA, PORT
    _dir = tempfile.TemporaryDirectory(prefix="gatehouse-testssl-")
    CA = CertificateAuthority(_dir.name)
    ecdsa = CA.issue(["localhost"])
    rsa = CA.issue(["localhost"], key_type="rsa")
    _upstream = Upstream(name="app")
    entries = ", ".join(f"{{ cert = {json.dumps(c.fullchain)}, key = {json.dumps(c.key)} }}"
                        for c in (ecdsa, rsa))
    config = make_config({"app": [_upstream]}, listeners=0) + "\n" + "\n".join([
        "[[listener]]", f'address = "{LOCALHOST}:0"', "[listener.tls]",
        f"certificates = [{entries}]", ""])
    _gatehouse = Gatehouse(config).start()
    PORT = _gatehouse.port


def tearDownModule():
    if _gatehouse is not None:
        _gatehouse.stop()
    if _upstream is not None:
        _upstream.close()
    if _dir is not None:
        _dir.cleanup()


UNOFFERABLE = "(the client cannot offer it)"


def tls12_handshake(ciphers: str) -> str | None:
    """The suite a TLS 1.2 handshake offering only `ciphers` ends with, None if the server
    refuses, UNOFFERABLE if this client cannot offer them (PSK or SRP suites without their
    callbacks). SECLEVEL=0 lets the client offer anything OpenSSL still knows."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
    except ssl.SSLError:
        return UNOFFERABLE
    try:
        with socket.create_connection((LOCALHOST, PORT), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.cipher()[0]
    except (ssl.SSLError, ConnectionResetError):
        return None


def s_client(*args: str, stdin: bytes = b"", timeout: float = 10) -> str:
    result = subprocess.run([OPENSSL, "s_client", "-connect", f"{LOCALHOST}:{PORT}",
                             "-servername", "localhost", *args],
                            input=stdin, capture_output=True, timeout=timeout, check=False)
    return (result.stdout + result.stderr).decode(errors="replace")


class TlsDefaultsTest(unittest.TestCase):
    def test_tls_1_0_and_1_1_are_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            with self.subTest(flag=flag):
                out = s_client(flag, "-cipher", "DEFAULT:@SECLEVEL=0")
                self.assertIn("alert protocol version", out)
                self.assertIn("Cipher is (NONE)", out)

    def test_exactly_the_intermediate_suites_in_tls_1_2(self):
        listed = subprocess.run([OPENSSL, "ciphers", "-tls1_2", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                                capture_output=True, text=True, check=True).stdout
        # TLS 1.3 suites (TLS_*) are not set through the cipher list.
        suites = sorted({s for s in listed.strip().split(":") if not s.startswith("TLS_")})
        results = {s: tls12_handshake(s) for s in suites}
        offered = [s for s, r in results.items() if r != UNOFFERABLE]
        self.assertGreater(len(offered), 40, "the client offers too few suites to prove much")
        accepted = {s for s, r in results.items() if r == s}
        # CBC (AES-SHA, AES-SHA256), no forward secrecy (RSA key exchange), DHE, 3DES,
        # CAMELLIA, ARIA, PSK, NULL: all refused.
        self.assertEqual(accepted, EXPECTED_TLS12)

    def test_server_cipher_order_with_chacha_for_clients_that_prefer_it(self):
        # Without a server order the client's first choice (AES-256) would win.
        self.assertEqual(tls12_handshake("ECDHE-ECDSA-AES256-GCM-SHA384:"
                                         "ECDHE-ECDSA-AES128-GCM-SHA256"),
                         "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(tls12_handshake("ECDHE-ECDSA-CHACHA20-POLY1305:"
                                         "ECDHE-ECDSA-AES128-GCM-SHA256"),
                         "ECDHE-ECDSA-CHACHA20-POLY1305")

    def test_client_renegotiation_is_refused_and_nothing_is_compressed(self):
        # "R" on s_client's stdin asks for a renegotiation (TLS 1.2 has them).
        out = s_client("-tls1_2", stdin=b"R\n")
        self.assertIn("Compression: NONE", out)
        self.assertIn("RENEGOTIATING", out)
        self.assertIn("no renegotiation", out)


@unittest.skipUnless(os.environ.get("GATEHOUSE_TESTSSL") == "1",
                     "slow (minutes): set GATEHOUSE_TESTSSL=1 to run testssl.sh")
@unittest.skipIf(TESTSSL is None, "testssl.sh not found (apt-get install testssl.sh)")
class TestsslScanTest(unittest.TestCase):
    def test_no_high_or_critical_findings(self):
        with tempfile.TemporaryDirectory(prefix="gatehouse-testssl-scan-") as tmp:
            report = os.path.join(tmp, "scan.json")
            started = time.monotonic()
            result = subprocess.run(
                [TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
                 "--protocols", "--std", "--server-preference", "--pfs", "--renegotiation",
                 "--crime", "--breach", "--jsonfile", report, f"https://{LOCALHOST}:{PORT}/"],
                capture_output=True, text=True, timeout=900, check=False)
            elapsed = time.monotonic() - started
            self.assertTrue(os.path.exists(report), result.stdout + result.stderr)
            with open(report, encoding="utf-8") as f:
                findings = json.load(f)
        ids = {f["id"] for f in findings}
        # The scan really ran the checks this test is about.
        for wanted in ("TLS1", "TLS1_1", "cipher_order", "secure_client_renego", "CRIME_TLS"):
            self.assertIn(wanted, ids, result.stdout)
        bad = [f"{f['severity']} {f['id']}: {f['finding']}" for f in findings
               if f["severity"] in ("HIGH", "CRITICAL")
               and not f["id"].startswith(CERTIFICATE_FINDINGS)]
        self.assertEqual(bad, [], result.stdout)
        print(f"\ntestssl subset: {len(findings)} findings in {elapsed:.0f} s")


if __name__ == "__main__":
    unittest.main()
