"""HTTP/2 through the real gatehouse binary with real clients: curl --http2, nghttp
(nghttp2-client) and Node.js's built-in http2 module, plus Socket.IO replicas and a
WebSocket over HTTP/1.1 on the same TLS listener.

  * curl: --http2 with --cacert and with -k, 10 MiB bodies both ways (content-length and
    unknown length), --http2-prior-knowledge on an h2c listener, --http1.1 on the same
    TLS listener, parallel transfers multiplexed on one connection;
  * nghttp: the server's SETTINGS in a frame trace, an upload without content-length,
    small windows (-w/-W), CONTINUATION (--continuation), trailers, many streams (-m);
  * Node http2: bodies up to 10 MiB both ways with sha256 at both ends, 100 concurrent
    streams on one connection, a slow stream not blocking the others, a slow reader
    (flow control) with bounded proxy memory, Engine.IO long-polling over one h2
    connection with 3 real Socket.IO replicas (each sid stays on one replica), GOAWAY on
    SIGTERM with an in-flight stream completing;
  * WebSocket: an HTTP/1.1 Upgrade on the TLS listener that offers h2.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from h2_client import AUTHORITY, H2Conn, certificates
from h2_cases import H2TestCase
from h2_support import (ConcurrencyProbe, h2_config, listener_section, node_h2, node_h2_start,
                        node_version, tls_websocket)
from harness import (LOCALHOST, Gatehouse, GatehouseTestCase, RssSampler, Upstream,
                     delayed_handler, echo_handler, pattern_blocks, pattern_sha256,
                     tree_rss_kib, wait_for)
from websocket import Replica, node_ready

CURL = shutil.which("curl") or "/usr/bin/curl"
NGHTTP = shutil.which("nghttp") or "/usr/bin/nghttp"
MIB = 1024 * 1024
BIG = 10 * MIB


def curl_missing() -> str | None:
    try:
        out = subprocess.run([CURL, "--version"], capture_output=True, text=True, timeout=10)
    except OSError as error:
        return f"curl not usable: {error}"
    return None if "HTTP2" in out.stdout else "curl without HTTP/2 support"


def nghttp_missing() -> str | None:
    return None if os.access(NGHTTP, os.X_OK) else "nghttp not installed (nghttp2-client)"


def node_missing() -> str | None:
    version = node_version()
    if version is None:
        return "node not usable"
    return None if version >= (16,) else f"node {version} too old for this http2 client"


def setUpModule():
    certificates()


def seed_of(size: int) -> int:
    return size % 997 + 1


def sized_download(request, conn):
    """GET /download/N (any prefix): N deterministic bytes (pattern_blocks, seed_of(N));
    ?chunked for Transfer-Encoding: chunked."""
    path, _, query = request.target.partition("?")
    size = int(path.rstrip("/").rsplit("/", 1)[1])
    chunked = "chunked" in query
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    conn.send(f"HTTP/1.1 200 OK\r\n{framing}\r\nContent-Type: application/octet-stream\r\n\r\n"
              .encode())
    for block in pattern_blocks(size, seed_of(size), block=256 * 1024):
        conn.send((b"%x\r\n" % len(block) + block + b"\r\n") if chunked else block)
    if chunked:
        conn.send(b"0\r\n\r\n")


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class ClientsBase(H2TestCase):
    """One proxy per class: [0] TLS (h2 default), [1] plain with h2c = true.
    Routes: / -> echo, /download -> sized_download, /slow -> 3 s, /c/ -> held until the
    test releases them."""

    @classmethod
    def setUpClass(cls):
        cls.echo = Upstream(echo_handler, name="echo")
        cls.download = Upstream(sized_download, name="download", record_raw=False)
        cls.slow = Upstream(delayed_handler(3.0), name="slow")
        cls.probe = ConcurrencyProbe(gate=True, match="/c/")
        cls.held = Upstream(cls.probe, name="held")
        cls.probe.port_of = lambda: cls.held.port
        for upstream in (cls.echo, cls.download, cls.slow, cls.held):
            cls.addClassCleanup(upstream.close)
        config = h2_config(
            {"echo": [cls.echo], "download": [cls.download], "slow": [cls.slow],
             "held": [cls.held]},
            [{"path_prefix": "/", "upstream": "echo"},
             {"path_prefix": "/download", "upstream": "download"},
             {"path_prefix": "/slow", "upstream": "slow"},
             {"path_prefix": "/c/", "upstream": "held"}],
            listeners=[listener_section(), listener_section(tls=False, h2c=True)],
            limits={"body": "16MiB"},
            timeouts={"upstream_read": "30s", "client_body": "30s"})
        cls.gh = Gatehouse(config)
        cls.addClassCleanup(cls.gh.cleanup)
        cls.gh.start()
        cls.port, cls.h2c_port = cls.gh.ports
        cls.tmp = tempfile.mkdtemp(prefix="gatehouse-h2-clients-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def setUp(self):
        self.addCleanup(self._dump_logs_on_failure, self.gh)

    @classmethod
    def pattern_file(cls, size: int, seed: int) -> str:
        path = os.path.join(cls.tmp, f"pattern-{size}-{seed}.bin")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                for block in pattern_blocks(size, seed):
                    f.write(block)
        return path

    def url(self, path: str, *, host: str = AUTHORITY) -> str:
        return f"https://{host}:{self.port}{path}"


# --------------------------------------------------------------------------------------
# curl
# --------------------------------------------------------------------------------------


@unittest.skipIf(curl_missing(), curl_missing() or "")
class CurlTest(ClientsBase):
    def curl(self, *args: str, expect_version: str | None = "2", timeout: float = 60):
        """Runs curl; returns (status, http_version, head text, body path)."""
        tmp = tempfile.mkdtemp(prefix="curl-", dir=self.tmp)
        body, head = os.path.join(tmp, "body"), os.path.join(tmp, "head")
        result = subprocess.run(
            [CURL, "-sS", "--max-time", str(int(timeout - 5)), "-o", body, "-D", head,
             "-w", "%{http_code} %{http_version} %{num_connects}\\n", *args],
            capture_output=True, text=True, timeout=timeout)
        self.assertEqual(result.returncode, 0, f"curl failed: {result.stderr}")
        lines = result.stdout.split("\n")
        code, version, _ = lines[0].split()
        if expect_version is not None:
            self.assertEqual(version, expect_version, result.stdout)
        with open(head, encoding="latin-1") as f:
            return int(code), version, f.read(), body

    def resolve(self) -> list[str]:
        return ["--resolve", f"{AUTHORITY}:{self.port}:{LOCALHOST}",
                "--cacert", certificates()["ca"]]

    def test_http2_get_verified_with_cacert(self):
        before = len(self.echo.requests)
        status, _, head, _ = self.curl("--http2", *self.resolve(), self.url("/curl-get?x=1"))
        self.assertEqual(status, 200, head)
        self.assertTrue(head.startswith("HTTP/2 200"), head)
        names = re.findall(r"(?m)^([^:\s]+):", head)
        self.assertEqual(names, [n.lower() for n in names], head)
        self.assertTrue(self.echo.wait_for_requests(before + 1))
        forwarded = self.echo.requests[-1]
        self.assertEqual(forwarded.target, "/curl-get?x=1")
        self.assertEqual(forwarded.headers.get_all("host"), [f"{AUTHORITY}:{self.port}"])
        self.assertEqual(forwarded.headers.get("x-forwarded-proto"), "https")
        self.assertEqual(forwarded.version, "HTTP/1.1")

    def test_http2_with_insecure_and_no_sni(self):
        status, _, head, _ = self.curl("--http2", "-k", f"https://{LOCALHOST}:{self.port}/curl-k")
        self.assertEqual(status, 200, head)

    def test_http11_on_the_same_listener(self):
        status, _, head, _ = self.curl("--http1.1", *self.resolve(), self.url("/curl-h1"),
                                       expect_version="1.1")
        self.assertEqual(status, 200, head)

    def test_prior_knowledge_on_the_h2c_listener(self):
        before = len(self.echo.requests)
        status, _, head, _ = self.curl("--http2-prior-knowledge",
                                       f"http://{LOCALHOST}:{self.h2c_port}/curl-h2c")
        self.assertEqual(status, 200, head)
        self.assertTrue(self.echo.wait_for_requests(before + 1))
        self.assertEqual(self.echo.requests[-1].headers.get("x-forwarded-proto"), "http")

    def test_10_mib_uploads_with_and_without_content_length(self):
        upload = self.pattern_file(BIG, seed=5)
        expected = pattern_sha256(BIG, seed=5)
        cases = [("content-length", ["--data-binary", f"@{upload}"], "length"),
                 ("unknown length (stdin)", ["-T", "-"], "chunked")]
        for what, args, framing in cases:
            with self.subTest(what):
                before = len(self.echo.requests)
                stdin = open(upload, "rb") if "-T" in args else None
                try:
                    tmp = tempfile.mkdtemp(prefix="curl-", dir=self.tmp)
                    body, head = os.path.join(tmp, "body"), os.path.join(tmp, "head")
                    result = subprocess.run(
                        [CURL, "-sS", "--http2", "--max-time", "60", *self.resolve(), "-o", body,
                         "-D", head, "-w", "%{http_code} %{http_version}", "-X", "PUT",
                         "-H", "Content-Type: application/octet-stream", *args,
                         self.url("/upload")],
                        stdin=stdin or subprocess.DEVNULL, capture_output=True, text=True,
                        timeout=70)
                finally:
                    if stdin:
                        stdin.close()
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stdout.split(), ["200", "2"])
                with open(head, encoding="latin-1") as f:
                    text = f.read()
                self.assertRegex(text, rf"(?im)^x-body-sha256: {expected}\r?$")
                self.assertRegex(text, rf"(?im)^x-body-length: {BIG}\r?$")
                self.assertRegex(text, rf"(?im)^x-framing: {framing}\r?$")
                self.assertEqual(file_sha256(body), expected, "echoed body corrupted")
                self.assertTrue(self.echo.wait_for_requests(before + 1))

    def test_10_mib_downloads_content_length_and_chunked(self):
        for query in ("", "?chunked"):
            with self.subTest(query=query or "content-length"):
                status, _, head, body = self.curl("--http2", *self.resolve(),
                                                  self.url(f"/download/{BIG}{query}"))
                self.assertEqual(status, 200, head)
                self.assertNotRegex(head, r"(?im)^transfer-encoding:")
                self.assertEqual(os.path.getsize(body), BIG)
                self.assertEqual(file_sha256(body), pattern_sha256_256k(BIG))

    def test_parallel_transfers_share_one_connection(self):
        urls = [self.url(f"/parallel/{i}") for i in range(40)]
        result = subprocess.run(
            [CURL, "-sS", "--http2", "--parallel", "--parallel-max", "40", *self.resolve(),
             "-w", "%{http_code} %{http_version} %{num_connects}\\n",
             *[arg for url in urls for arg in (url, "-o", "/dev/null")]],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = [line.split() for line in result.stdout.strip().splitlines()]
        self.assertEqual(len(rows), 40, result.stdout)
        self.assertEqual({(r[0], r[1]) for r in rows}, {("200", "2")})
        self.assertEqual(sum(int(r[2]) for r in rows), 1,
                         f"expected one connection for 40 multiplexed transfers: {rows}")


def pattern_sha256_256k(size: int) -> str:
    digest = hashlib.sha256()
    for block in pattern_blocks(size, seed_of(size), block=256 * 1024):
        digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# nghttp
# --------------------------------------------------------------------------------------


@unittest.skipIf(nghttp_missing(), nghttp_missing() or "")
class NghttpTest(ClientsBase):
    def nghttp(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([NGHTTP, *args], capture_output=True, timeout=timeout)

    def test_frame_trace_shows_the_server_settings(self):
        result = self.nghttp("-nv", f"https://{LOCALHOST}:{self.port}/nghttp-trace")
        out = result.stdout.decode("latin-1")
        self.assertEqual(result.returncode, 0, out[-2000:] + result.stderr.decode("latin-1"))
        self.assertIn("The negotiated protocol: h2", out)
        settings = out[out.index("recv SETTINGS frame"):]
        settings = settings[:settings.index("\n[", 1)] if "\n[" in settings[1:] else settings
        self.assertIn("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100]", settings)
        self.assertIn("[SETTINGS_MAX_HEADER_LIST_SIZE(0x06):32768]", settings)
        self.assertRegex(settings, r"\(0x09\):1\]")           # NO_RFC7540_PRIORITIES
        self.assertNotIn("(0x08)", settings, "ENABLE_CONNECT_PROTOCOL advertised")
        self.assertRegex(out, r"recv \(stream_id=\d+\) :status: 200")
        self.assertRegex(out, r"recv WINDOW_UPDATE frame <length=4, flags=0x00, stream_id=0>\s+"
                              r"\(window_size_increment=983041\)")

    def test_upload_without_content_length_arrives_chunked(self):
        size = 3 * MIB + 17
        upload = self.pattern_file(size, seed=9)
        before = len(self.echo.requests)
        result = self.nghttp("-v", "--no-content-length", "-d", upload,
                             f"https://{LOCALHOST}:{self.port}/nghttp-upload")
        self.assertEqual(result.returncode, 0, result.stderr.decode("latin-1")[-2000:])
        self.assertTrue(self.echo.wait_for_requests(before + 1))
        forwarded = self.echo.requests[-1]
        self.assertEqual(forwarded.framing, "chunked")
        self.assertEqual(forwarded.body_length, size)
        self.assertEqual(forwarded.body_sha256, pattern_sha256(size, seed=9))
        self.assertEqual(forwarded.method, "POST")

    def test_small_windows_download_intact(self):
        size = 4 * MIB
        result = self.nghttp("-w", "12", "-W", "16",
                             f"https://{LOCALHOST}:{self.port}/download/{size}", timeout=90)
        self.assertEqual(result.returncode, 0, result.stderr.decode("latin-1")[-2000:])
        self.assertEqual(len(result.stdout), size)
        self.assertEqual(hashlib.sha256(result.stdout).hexdigest(), pattern_sha256_256k(size))

    def test_continuation_and_trailers(self):
        with self.subTest("--continuation"):
            result = self.nghttp("-nv", "--continuation",
                                 f"https://{LOCALHOST}:{self.port}/nghttp-continuation")
            out = result.stdout.decode("latin-1")
            self.assertEqual(result.returncode, 0, out[-2000:])
            # nghttp logs the header block as one HEADERS line; over 16384 bytes it went out
            # as HEADERS + CONTINUATION (the server's SETTINGS_MAX_FRAME_SIZE is 16384).
            sizes = [int(n) for n in re.findall(r"send HEADERS frame <length=(\d+)", out)]
            self.assertTrue(sizes and max(sizes) > 16384, sizes)
            self.assertRegex(out, r"recv \(stream_id=\d+\) :status: 200")
        with self.subTest("--trailer"):
            upload = self.pattern_file(100_000, seed=3)
            before = len(self.echo.requests)
            result = self.nghttp("-nv", "--no-content-length", "--trailer=x-checksum: abc",
                                 "-d", upload, f"https://{LOCALHOST}:{self.port}/nghttp-trailer")
            out = result.stdout.decode("latin-1")
            self.assertEqual(result.returncode, 0, out[-2000:])
            self.assertRegex(out, r"recv \(stream_id=\d+\) :status: 200")
            self.assertTrue(self.echo.wait_for_requests(before + 1))
            self.assertEqual(self.echo.requests[-1].body_sha256, pattern_sha256(100_000, seed=3))

    def test_many_streams_on_one_connection(self):
        result = self.nghttp("-nv", "-m", "50", f"https://{LOCALHOST}:{self.port}/nghttp-many")
        out = result.stdout.decode("latin-1")
        self.assertEqual(result.returncode, 0, out[-2000:])
        self.assertEqual(len(re.findall(r"recv \(stream_id=\d+\) :status: 200", out)), 50)
        self.assertEqual(out.count("Connected"), 1)
        self.assertNotIn("recv GOAWAY", out)


# --------------------------------------------------------------------------------------
# Node.js http2
# --------------------------------------------------------------------------------------


@unittest.skipIf(node_missing(), node_missing() or "")
class NodeHttp2Test(ClientsBase):
    def scenario(self, **kwargs) -> dict:
        return {"url": f"https://{LOCALHOST}:{self.port}", "ca": certificates()["ca"],
                "servername": AUTHORITY, **kwargs}

    def run_node(self, timeout: float = 120, **kwargs) -> dict:
        result = node_h2(self.scenario(**kwargs), timeout=timeout)
        self.assertEqual(result["errors"], [], result)
        self.assertEqual(result["exit"], 0, result.get("stderr"))
        return result

    def test_bodies_up_to_10_mib_both_ways_with_sha256_at_both_ends(self):
        sizes = [0, 1, 16383, 16384, 65535, 65536, MIB + 7, BIG]
        result = self.run_node(scenario="bodies", sizes=sizes, downloads=sizes, timeoutMs=110000)
        self.assertEqual(result["alpn"], "h2")
        uploads = [r for r in result["results"] if r["kind"] == "upload"]
        downloads = [r for r in result["results"] if r["kind"] == "download"]
        for r in uploads:
            with self.subTest(upload=r["size"]):
                self.assertEqual(r["status"], 200, r)
                self.assertEqual(r["headers"]["x-body-length"], str(r["size"]))
                self.assertEqual(r["headers"]["x-body-sha256"], r["sent_sha"],
                                 "the upstream received other bytes than node sent")
                self.assertEqual(r["sha"], r["sent_sha"], "the echo node received differs")
                self.assertEqual(r["length"], r["size"])
                if r["size"]:
                    self.assertEqual(r["headers"]["x-framing"], "length")
        for r in downloads:
            with self.subTest(download=r["size"]):
                self.assertEqual(r["status"], 200, r)
                self.assertEqual(r["length"], r["size"])
                self.assertEqual(r["sha"], pattern_sha256_256k(r["size"]),
                                 "node received other bytes than the upstream sent")

    def test_upload_without_content_length_is_chunked_upstream(self):
        result = self.run_node(scenario="bodies", sizes=[5 * MIB + 3], noContentLength=True)
        r = result["results"][0]
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(r["headers"]["x-framing"], "chunked")
        self.assertEqual(r["headers"]["x-body-sha256"], r["sent_sha"])
        self.assertEqual(r["sha"], r["sent_sha"])

    def test_100_concurrent_streams_on_one_connection(self):
        # The upstream holds every exchange until all 100 are in flight at once (or 10 s).
        self.probe.peak = 0
        self.probe.release = threading.Event()
        self.addCleanup(self.probe.release.set)
        watcher = threading.Thread(target=lambda: (wait_for(lambda: self.probe.current >= 100, 10, 0.01),
                                                   self.probe.release.set()), daemon=True)
        watcher.start()
        result = self.run_node(scenario="concurrent", count=100, path="/c/n")
        self.assertEqual(result["remoteSettings"]["maxConcurrentStreams"], 100)
        self.assertFalse(result["remoteSettings"].get("enableConnectProtocol"),
                         "extended CONNECT advertised")
        statuses = [r["status"] for r in result["results"]]
        self.assertEqual(statuses, [200] * 100, [r for r in result["results"] if r["status"] != 200][:3])
        self.assertEqual(self.probe.peak, 100, "the 100 streams were not in flight upstream at once")
        self.assertLess(result["ms"], 9_000, f"100 streams took {result['ms']} ms")

    def test_slow_stream_does_not_block_the_others(self):
        result = self.run_node(scenario="slowMixed", slowPath="/slow/one", fastPath="/fast/",
                               fastCount=20)
        self.assertEqual([r["status"] for r in result["fast"]], [200] * 20)
        self.assertLess(result["fastMs"], 1500, f"fast streams waited for the slow one: "
                                                f"{result['fastMs']} ms")
        self.assertEqual(result["slow"]["status"], 200)
        self.assertGreaterEqual(result["slow"]["ms"], 2900)

    def test_slow_reader_gets_a_large_response_intact_with_bounded_memory(self):
        size = 24 * MIB
        before = tree_rss_kib(self.gh.pid)
        with RssSampler(self.gh.pid) as sampler:
            result = self.run_node(scenario="slowReader", path=f"/download/{size}", pauseMs=2,
                                   settings={"initialWindowSize": 65535}, timeoutMs=110000)
        r = result["result"]
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(r["length"], size)
        self.assertEqual(r["sha"], pattern_sha256_256k(size))
        self.assert_rss_growth(before, sampler, f"a client reading {size} bytes slowly")


@unittest.skipIf(node_missing(), node_missing() or "")
class NodeGoawayTest(GatehouseTestCase):
    def test_goaway_on_sigterm_and_the_in_flight_stream_completes(self):
        certificates()
        slow = self.start_upstream(delayed_handler(2.0), name="slow")
        gh = self.start_gatehouse(h2_config({"app": [slow]}, server={"drain_timeout": "6s"}))
        proc = node_h2_start({"url": f"https://{LOCALHOST}:{gh.port}", "ca": certificates()["ca"],
                              "servername": AUTHORITY, "scenario": "goaway", "path": "/in-flight",
                              "timeoutMs": 20000})
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.assertTrue(slow.wait_for_heads(1, timeout=10), "the request never reached the upstream")
        started = time.monotonic()
        gh.signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        lines = [l for l in stdout.splitlines() if l.startswith("{")]
        self.assertTrue(lines, f"node printed nothing: {stderr[-2000:]}")
        result = json.loads(lines[-1])
        self.assertEqual(result["errors"], [], f"{result} {stderr[-1000:]}")
        self.assertTrue(result["goaways"], f"node saw no GOAWAY: {result}")
        self.assertEqual(result["goaways"][0]["code"], 0)
        self.assertEqual(result["result"]["status"], 200, result)
        self.assertEqual(gh.wait(10), 0)
        self.assertLess(time.monotonic() - started, 6.5)


# --------------------------------------------------------------------------------------
# Socket.IO replicas: Engine.IO long-polling over h2; WebSocket over HTTP/1.1 on the same
# TLS listener
# --------------------------------------------------------------------------------------


@unittest.skipIf(node_ready() or node_missing(), node_ready() or node_missing() or "")
class SocketIoOverH2Test(GatehouseTestCase):
    @classmethod
    def setUpClass(cls):
        certificates()
        cls.replicas = []
        try:
            cls.replicas = [Replica(f"r{i}") for i in range(3)]
        except BaseException:
            for r in cls.replicas:
                r.kill()
            raise
        for r in cls.replicas:
            cls.addClassCleanup(r.proc.stdout.close)
            cls.addClassCleanup(r.kill)
        config = h2_config({"app": [r.address for r in cls.replicas]},
                           [{"path_prefix": "/socket.io/", "upstream": "app"},
                            {"path_prefix": "/", "upstream": "app"}],
                           server={"workers": 2})
        cls.gh = Gatehouse(config)
        cls.addClassCleanup(cls.gh.cleanup)
        cls.gh.start()
        cls.port = cls.gh.port

    def setUp(self):
        self.addCleanup(self._dump_logs_on_failure, self.gh)

    def test_engineio_long_polling_over_one_h2_connection_stays_on_one_replica_per_sid(self):
        clients, messages = 12, 3
        result = node_h2({"url": f"https://{LOCALHOST}:{self.port}", "ca": certificates()["ca"],
                          "servername": AUTHORITY, "scenario": "engineio", "clients": clients,
                          "messages": messages, "timeoutMs": 60000}, timeout=90)
        detail = f"{result}\nstderr:\n{self.gh.stderr()[-2000:]}"
        self.assertEqual(result["errors"], [], detail)
        self.assertEqual(result["sessionUnknown"], 0, detail)
        failed = [r for r in result["results"] if "error" in r]
        self.assertEqual(failed, [], detail)
        for r in result["results"]:
            self.assertEqual(r["acks"], messages, r)
            self.assertEqual(len(r["replicas"]), 1, f"sid {r['sid']} answered by {r['replicas']}")
        used = {r["replicas"][0] for r in result["results"]}
        self.assertGreater(len(used), 1, f"all sessions of one h2 connection on one replica: {used}"
                                         f" (pinning must be per stream, by sid)")

    def test_websocket_over_http11_on_the_same_tls_listener(self):
        for alpn in (["http/1.1"], None):
            with self.subTest(alpn=alpn):
                ws, negotiated = tls_websocket(self.port, "/ws", alpn=alpn)
                self.addCleanup(ws.close)
                self.assertIn(negotiated, ("http/1.1", None))
                self.assertEqual(ws.status, 101, ws.head)
                hello = ws.read_message()[1].decode()
                self.assertIn('"replica":"r', hello)
                # An h2 connection to the same listener works meanwhile.
                conn = H2Conn(self.port).handshake()
                self.addCleanup(conn.close)
                self.assertEqual(conn.alpn, "h2")
                self.assertEqual(conn.get("/").status, 200)
                payload = os.urandom(300_000)
                ws.send_message(payload, binary=True, fragments=3)
                self.assertEqual(ws.read_message(), (2, payload))
                ws.send_message("héllo".encode(), binary=False)
                self.assertEqual(ws.read_message(), (1, "héllo".encode()))
                ws.close()


if __name__ == "__main__":
    unittest.main()
