"""HTTP/2 scenarios of the benchmark, run by bench/run.py: h2load over TLS (ALPN h2) against
Gatehouse, nginx and HAProxy, one worker each, pinned and interleaved like the HTTP/1.1
scenarios, with the same upstream, plus memory per idle h2 connection.

| --only key | load (h2load on CPU 1, proxy on CPU 0) |
| --- | --- |
| h2_small | small GET `/`, `-c10 -m10` (10 connections × 10 concurrent streams) |
| h2_small_c100 | small GET `/`, `-c100 -m1` (many connections, one stream each) |
| h2_64k | 64 KiB responses `/64k`, `-c10 -m10` |
| h2_upload | 1 MiB POST bodies to `/upload` (`h2load -d`), `-c8 -m4`, answered by bench/body_sink.c once it has read the whole body |
| h2_idle | N TLS + h2 connections, SETTINGS exchanged, held open (bench/idle_h2.py): RSS and PSS per connection |

Every h2load run offers only `h2` in ALPN (so nothing silently falls back to HTTP/1.1) and
only TLS_AES_128_GCM_SHA256 for TLS 1.3 (the same record cipher for all three proxies).
Its `--warm-up-time` phase is not measured: the proxy's CPU time is read exactly when
h2load prints that its main phase starts and ends, req/s is h2load's (main phase), and
p50/p99 come from its `--log-file` (requests started in the main phase).

Not a program: `bench/run.py --only h2_small,...` (see bench/README.md).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

from benchlib import (BENCH, LOAD_CPU, OTHERS, PROXIES, PYTHON, BenchError, CpuMeter, Proc,
                      Target, fmt_ms, fmt_num, http_get, interleave, load_table, log,
                      paired_table, ratio, summary_load_row, wait_until)


@dataclasses.dataclass
class H2Scenario:
    key: str
    title: str
    path: str
    clients: int  # h2load -c: connections
    streams: int  # h2load -m: concurrent streams per connection
    upload: bool = False  # POST the UPLOAD_BYTES file (h2load -d)


LOAD_SCENARIOS = [
    H2Scenario("h2_small", "10. HTTP/2 small GET, 10 connections × 10 streams", "/", 10, 10),
    H2Scenario("h2_small_c100", "11. HTTP/2 small GET, 100 connections × 1 stream", "/", 100, 1),
    H2Scenario("h2_64k", "12. HTTP/2 64 KiB responses", "/64k", 10, 10),
    H2Scenario("h2_upload", "13. HTTP/2 1 MiB uploads", "/upload", 8, 4, upload=True),
]
LOAD_KEYS = tuple(sc.key for sc in LOAD_SCENARIOS)
KEYS = LOAD_KEYS + ("h2_idle",)
DEFAULT_IDLE, QUICK_IDLE = 1000, 200  # idle h2 connections held (h2_idle)
UPLOAD_BYTES = 1 << 20  # = every proxy's body limit (Gatehouse limits.body, nginx 1m): allowed
TLS13_CIPHER = "TLS_AES_128_GCM_SHA256"
WARMUP = "500ms"  # h2load --warm-up-time per measured run (full mode; quick: none)
# What a correct answer carries, per path (h2load counts DATA bytes: "(N) data").
BODY_BYTES = {"/": 24, "/64k": 65536, "/upload": 3}


class H2Bench:
    """The state of the HTTP/2 part of one run: the upload file, the body sink, and which
    proxies take part."""

    def __init__(self, bench):
        self.bench = bench
        self.upload_file = bench.work / "upload-1m.bin"
        self.upload_file.write_bytes(os.urandom(UPLOAD_BYTES))
        self.sink_port: int | None = None
        self.sink_proc: Proc | None = None
        self.tls_seen: dict[str, str] = {}  # proxy -> "TLSv1.3 TLS_AES_128_GCM_SHA256, h2"

    # ---- the upload upstream ---------------------------------------------------------

    def start_sink(self) -> None:
        """bench/body_sink.c on CPU 1 (None when it does not compile: h2_upload skipped)."""
        binary = self.bench.compile_tool("body_sink", [])
        if not binary:
            return
        port_file = self.bench.work / "body-sink.port"
        self.sink_proc = Proc("body-sink", [binary, "--port-file", str(port_file)],
                              self.bench.work, LOAD_CPU)
        wait_until("body sink", port_file.exists, proc=self.sink_proc)
        self.sink_port = int(port_file.read_text())
        self.bench.commands["upload upstream"] = " ".join(self.sink_proc.argv)

    def sink_stats(self) -> dict[str, int]:
        status, body = http_get(self.sink_port, "/sink-stats")
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", body.decode())}

    # ---- h2load ----------------------------------------------------------------------

    def h2load_argv(self, target: Target, path: str, upload: bool, extra: list[str]) -> list[str]:
        argv = ["h2load", "-t1", *extra, "--npn-list=h2", f"--tls13-ciphers={TLS13_CIPHER}"]
        if upload:
            argv += ["-d", str(self.upload_file)]
        return argv + [f"https://127.0.0.1:{target.port}{path}"]

    def check_paths(self, target: Target) -> str | None:
        """Every h2 scenario's request answers over h2 with the right body size through this
        target (3 requests each on one connection); None, or what went wrong."""
        for path in ("/", "/64k", "/upload") if self.sink_port else ("/", "/64k"):
            argv = self.h2load_argv(target, path, path == "/upload", ["-n3", "-c1", "-m1"])
            try:
                out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
            except subprocess.TimeoutExpired:
                return f"{path}: h2load -n3 did not finish in 30 s (stall)"
            r = parse_h2load(out)
            if r["protocol"] != "h2" or r["succeeded"] != 3 or r["status_2xx"] != 3 \
                    or r["data_bytes"] != 3 * BODY_BYTES[path]:
                return (f"{path}: protocol {r['protocol']}, {r['succeeded']}/3 succeeded, "
                        f"{r['status_2xx']} 2xx, {r['data_bytes']} DATA bytes (want "
                        f"{3 * BODY_BYTES[path]}): {summary_lines(out)}")
            self.tls_seen[target.name] = f"{r['tls']} {r['cipher']}, ALPN {r['protocol']}"
        return None

    def run_h2load(self, target: Target, sc: H2Scenario, seconds: int, record: bool) -> dict:
        """One measured h2load run: req/s, p50/p99, proxy CPU per request (main phase)."""
        bench = self.bench
        warm = [] if bench.args.quick else [f"--warm-up-time={WARMUP}"]
        log_file = bench.work / "h2load-requests.tsv"  # one run at a time; deleted after it
        argv = self.h2load_argv(target, sc.path, sc.upload,
                                [f"-c{sc.clients}", f"-m{sc.streams}", "-D", str(seconds),
                                 *warm, f"--log-file={log_file}"])
        bench.commands[f"{sc.key} client"] = (
            "taskset -c " + LOAD_CPU + " " + " ".join(argv).replace(str(target.port), "PORT"))
        sink0 = self.sink_stats() if sc.upload else None
        client = Proc(f"h2load-{target.label}", argv, bench.work, LOAD_CPU, capture_stdout=True)
        watchdog = threading.Timer(seconds + 40, kill, [client])  # h2load -D ends itself
        watchdog.start()
        lines, meter, cpu, main_start = [], None, None, None
        try:
            for line in client.popen.stdout:
                lines.append(line)
                if line.startswith("Main benchmark duration is started"):
                    meter, main_start = CpuMeter(target), time.time()
                elif line.startswith("Main benchmark duration is over") and meter:
                    cpu = meter.stop(1)
            client.popen.wait(timeout=30)
        finally:
            watchdog.cancel()
            client.stop()
        out = "".join(lines)
        r = parse_h2load(out)
        p50, p99, pmax = latency_percentiles(log_file, main_start)
        log_file.unlink(missing_ok=True)
        done = r["done"]
        result = {"requests": done, "rps": r["rps"], "p50_ms": p50, "p99_ms": p99,
                  "max_ms": pmax, "errors": r["failed"] + r["errored"] + r["timeout"],
                  "non2xx": r["status_other"], "in_flight_at_end": r["started"] - done,
                  "protocol": r["protocol"], "cmd": " ".join(client.argv)}
        cpu = cpu or {"proxy_cpu_s": None, "others_pct": None}
        result["others_pct"] = cpu["others_pct"]
        result["cpu_us"] = (cpu["proxy_cpu_s"] * 1e6 / done
                            if cpu["proxy_cpu_s"] is not None and done else None)
        if not record:
            return result
        why = []
        if r["protocol"] != "h2":
            why.append(f"protocol {r['protocol']!r}")
        if result["errors"] or result["non2xx"] or not done:
            why.append(f"{done} done, {r['failed']} failed, {r['errored']} errored, "
                       f"{r['timeout']} timeout, {result['non2xx']} non-2xx")
        if meter is None:
            why.append("h2load never reached its main phase")
        if sc.upload and sink0 is not None:  # every answer must come from the sink
            answered = self.sink_stats().get("requests", 0) - sink0.get("requests", 0)
            if answered < done:
                why.append(f"only {answered} of {done} uploads reached the upstream whole")
        if why:
            bench.problems.append(f"{target.label} {sc.key}: {'; '.join(why)} "
                                  f"({summary_lines(out)}; {client.log_tail(3)!r})")
        return result

    # ---- idle connections ------------------------------------------------------------

    def idle_memory(self, kind: str, count: int) -> dict:
        """Rss and Pss of a fresh proxy, then with `count` idle h2 connections."""
        bench = self.bench
        target = bench.start_proxy(kind, tls=True, h2=True, sink=self.sink_port,
                                   label=f"{kind}-h2-mem")
        target.label = kind
        try:
            # First requests: lazy initialisation (TLS, the h2 codec, the upstream pool).
            subprocess.run(["taskset", "-c", LOAD_CPU] + self.h2load_argv(
                target, "/", False, ["-n100", "-c10", "-m1"]),
                capture_output=True, timeout=30)
            time.sleep(0.5)
            base = smaps_kib(target.pids())
            argv = [PYTHON, str(BENCH / "idle_h2.py"), "--port", str(target.port), "-n",
                    str(count), "--hold", "120"]
            client = Proc(f"idle-h2-{kind}", argv, bench.work, LOAD_CPU,
                          stdin=subprocess.PIPE, capture_stdout=True)
            bench.commands["idle h2 client"] = " ".join(client.argv).replace(
                str(target.port), "PORT")
            try:
                line = client.popen.stdout.readline()  # bounded by --open-timeout
                m = re.match(r"READY ok=(\d+) failed=(\d+)", line)
                if not m:
                    raise BenchError(f"idle h2 client for {kind}: {line!r} {client.log_tail()}")
                ok, failed = int(m.group(1)), int(m.group(2))
                time.sleep(1.0)  # let the proxy settle (timers, pools)
                loaded = smaps_kib(target.pids())
            finally:
                client.popen.stdin.close()
                client.popen.wait(timeout=30)
                client.stop()
        finally:
            target.stop()
        if failed:
            bench.problems.append(f"{kind}: {failed} of {count} idle h2 connections failed "
                                  f"({client.log_tail(3)!r})")
        per = lambda f: (loaded[f] - base[f]) / ok if ok else None  # noqa: E731
        return {"base_kib": base["Rss"], "loaded_kib": loaded["Rss"], "ok": ok,
                "failed": failed, "per_conn_kib": per("Rss"), "base_pss_kib": base["Pss"],
                "per_conn_pss_kib": per("Pss")}


# --------------------------------------------------------------------------------------
# Entry point from run.py
# --------------------------------------------------------------------------------------


def run(bench, results: dict, wanted) -> None:
    """Runs the selected h2 scenarios (`wanted(key)`) into `results`. bench is run.py's
    Bench with its TLS files made; Gatehouse takes part once it speaks h2 (probe), else
    it is left out (--h2-without-gatehouse) or the scenarios are skipped with a note."""
    keys = [k for k in KEYS if wanted(k)]
    if not keys:
        return
    h2 = H2Bench(bench)
    try:
        h2.start_sink()
        if not h2.sink_port and "h2_upload" in keys:
            keys.remove("h2_upload")
            results.setdefault("skipped", {})["h2_upload"] = \
                "skipped: bench/body_sink.c did not compile"
        kinds = h2_kinds(bench, results, h2, keys)
        if not kinds:
            return
        load = [sc for sc in LOAD_SCENARIOS if sc.key in keys]
        if load:
            started, targets = [], []
            try:
                for kind in kinds:
                    t = bench.start_proxy(kind, tls=True, h2=True, sink=h2.sink_port,
                                          label=f"{kind}-h2")
                    started.append(t)
                    t.label = kind
                    why = h2.check_paths(t)
                    if why:  # a proxy that cannot do h2 correctly is left out, not measured
                        bench.problems.append(f"{kind} over h2: {why}")
                        results.setdefault("h2_notes", []).append(
                            f"HTTP/2: {kind} left out, its h2 answers were wrong ({why[:200]})")
                    else:
                        targets.append(t)
                for sc in load:
                    log(f"scenario {sc.title}")
                    results[sc.key] = interleave(
                        bench, targets, sc.key, bench.args.rounds,
                        lambda t, sec, rec, sc=sc: h2.run_h2load(t, sc, sec, rec), "req")
            finally:
                for t in started:
                    t.stop()
        results["h2_tls"] = dict(h2.tls_seen)
        if "h2_idle" in keys:
            count = bench.args.h2_idle
            log(f"scenario 14. {count} idle HTTP/2 connections")
            mem = {}
            for kind in kinds:  # a fresh process each
                mem[kind] = m = h2.idle_memory(kind, count)
                log(f"  h2 idle {kind:<10} idle {m['base_kib'] / 1024:.1f} MiB, +{m['ok']} → "
                    f"{m['loaded_kib'] / 1024:.1f} MiB = {fmt_num(m['per_conn_kib'], 2)} KiB "
                    f"each (Pss {fmt_num(m['per_conn_pss_kib'], 2)} KiB)")
            results["h2_idle"] = mem
    finally:
        if h2.sink_proc:
            h2.sink_proc.stop()


def h2_kinds(bench, results: dict, h2: H2Bench, keys: list[str]) -> list[str]:
    """Which proxies the h2 scenarios run on: all three once Gatehouse speaks h2 (probe);
    else nginx and HAProxy with --h2-without-gatehouse, else none (a skip note each)."""
    supported, why = probe_gatehouse_h2(bench, h2)
    results["h2_probe"] = (supported, why)
    log(f"HTTP/2 probe: {why}")
    if supported:
        return list(PROXIES)
    if bench.args.h2_without_gatehouse:
        results.setdefault("h2_notes", []).append(
            f"HTTP/2: Gatehouse left out ({why}); nginx and HAProxy only "
            "(--h2-without-gatehouse)")
        return [k for k in PROXIES if k != "gatehouse"]
    for key in keys:
        results.setdefault("skipped", {})[key] = f"skipped: {why}"
    return []


def probe_gatehouse_h2(bench, h2: H2Bench) -> tuple[bool, str]:
    """Supported = Gatehouse starts with `http2 = true` on its TLS listener, selects h2 in
    ALPN and answers the scenarios' requests correctly over it."""
    if not bench.gatehouse_bin:
        return False, f"no Gatehouse binary at {bench.args.gatehouse}"
    try:
        target = bench.start_proxy("gatehouse", tls=True, h2=True, sink=h2.sink_port,
                                   label="gatehouse-h2-probe")
    except BenchError as exc:
        tail = " ".join(str(exc).split())[-240:]
        return False, f"Gatehouse does not start with an h2 TLS listener ({tail})"
    try:
        why = h2.check_paths(target)
        selected = alpn_selected(target.port)
    finally:
        target.stop()
    if why and selected == "h2":  # it speaks h2, but wrongly: a bug, not a missing feature
        bench.problems.append(f"gatehouse over h2 (probe): {why}")
        return False, f"Gatehouse selects h2 but answers wrongly over it ({why[:300]})"
    if why:
        return False, f"Gatehouse's TLS listener does not select h2 in ALPN (selected: " \
                      f"{selected or 'none'})"
    return True, "Gatehouse selects h2 in ALPN and answers /, /64k and /upload over it"


# --------------------------------------------------------------------------------------
# Parsing and small helpers
# --------------------------------------------------------------------------------------


def parse_h2load(out: str) -> dict:
    def num(pattern: str, group: int = 1, cast=int):
        m = re.search(pattern, out, re.M)
        return cast(m.group(group)) if m else 0
    req = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", out, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    c = [int(x) for x in codes.groups()] if codes else [0, 0, 0, 0]
    proto = re.search(r"^Application protocol: (\S+)", out, re.M)
    r = [int(x) for x in req.groups()] if req else [0] * 7
    return {"rps": num(r"^finished in \S+, ([\d.]+) req/s", cast=float),
            "started": r[1], "done": r[2], "succeeded": r[3], "failed": r[4], "errored": r[5],
            "timeout": r[6], "status_2xx": c[0], "status_other": sum(c[1:]),
            "data_bytes": num(r"\((\d+)\) data"),
            "protocol": proto.group(1) if proto else "none negotiated",
            "tls": (re.search(r"^TLS Protocol: (\S+)", out, re.M) or [None, "?"])[1],
            "cipher": (re.search(r"^Cipher: (\S+)", out, re.M) or [None, "?"])[1]}


def summary_lines(out: str) -> str:
    keep = [ln.strip() for ln in out.splitlines()
            if ln.startswith(("finished in", "requests:", "status codes:", "Application",
                              "No protocol", "Aborted", "TLS Protocol"))]
    return " / ".join(keep) or " ".join(out.split())[-200:] or "no output"


def latency_percentiles(log_file: Path, since: float | None):
    """p50, p99 and max in ms of the requests h2load logged as started at or after `since`
    (epoch seconds: the main phase); its log has start µs, status, duration µs per line."""
    if not log_file.exists():
        return None, None, None
    since_us = int(since * 1e6) if since else 0
    durations = []
    with open(log_file) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) == 3 and int(parts[0]) >= since_us:
                durations.append(int(parts[2]))
    if not durations:
        return None, None, None
    durations.sort()
    pick = lambda q: durations[min(len(durations) - 1, int(q * len(durations)))] / 1000  # noqa
    return pick(0.50), pick(0.99), durations[-1] / 1000


def alpn_selected(port: int) -> str | None:
    """The protocol a TLS listener selects when a client offers h2 and http/1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
            with ctx.wrap_socket(raw) as tls:
                return tls.selected_alpn_protocol()
    except OSError as exc:  # ssl.SSLError is an OSError
        return f"no TLS handshake: {exc}"


def smaps_kib(pids: list[int]) -> dict[str, int]:
    """Rss and Pss summed over the processes, from /proc/PID/smaps_rollup."""
    total = {"Rss": 0, "Pss": 0}
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name = line.split(":", 1)[0]
            if name in total:
                total[name] += int(line.split()[1])
    return total


def kill(proc: Proc) -> None:
    """The watchdog: h2load did not end in time (a stalled proxy); kill it by PID."""
    if proc.alive():
        log(f"  {proc.name} still running: killed")
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def check_tool() -> str | None:
    """None when h2load is there, else how to install it."""
    return None if shutil.which("h2load") else "h2load (apt-get install -y nghttp2-client)"


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def summary_rows(results: dict) -> list[str]:
    L = [summary_load_row(results[sc.key], sc.title)
         for sc in LOAD_SCENARIOS if results.get(sc.key)]
    m = results.get("h2_idle")
    if m:
        kib = {k: v["per_conn_kib"] for k, v in m.items()}
        others = [kib[k] for k in OTHERS if kib.get(k)]
        gh = kib.get("gatehouse")
        L.append(f"| 14. KiB per idle HTTP/2 connection (Rss; memory, single run) | "
                 f"{fmt_num(gh, 2)} | {fmt_num(kib.get('nginx'), 2)} | "
                 f"{fmt_num(kib.get('haproxy'), 2)} | | "
                 f"{ratio(gh, min(others) if others else None)} | {ratio(gh, kib.get('nginx'))} | "
                 f"{ratio(gh, kib.get('haproxy'))} | | | |")
    return L


def report_lines(bench, results: dict) -> list[str]:
    if not any(k in results for k in KEYS) and not any(
            k in results.get("skipped", {}) for k in KEYS):
        return []
    a = bench.args
    L = ["## 10–14. HTTP/2 to clients (h2load over TLS, ALPN h2)", "",
         "`h2load -t1` on CPU 1 against each proxy's TLS listener with HTTP/2 on (nginx "
         "`listen … ssl http2` + `http2_max_concurrent_streams 100`, HAProxy `bind … ssl crt … "
         "alpn h2,http/1.1`, Gatehouse `[listener.tls] http2 = true`), proxies to the same "
         "HTTP/1.1 upstreams over their keep-alive pools. h2load offers only `h2` and, for "
         f"TLS 1.3, only {TLS13_CIPHER}. "
         + ("" if a.quick else f"Each run starts with a {WARMUP.replace('ms', ' ms')} h2load "
            "warm-up that is not measured. ")
         + "The proxy's CPU is read when h2load's main phase starts and ends; req/s is "
         "h2load's for the main phase; p50/p99 are over the requests it logged "
         "(`--log-file`) in the main phase. Uploads: 1 MiB (1,048,576-byte) POST bodies to "
         "`/upload`, which every proxy routes to bench/body_sink.c; it answers only after "
         "reading the whole body (nginx streams it: `proxy_request_buffering off`, as "
         "Gatehouse and HAProxy do). After each upload run the sink's count of answered "
         "requests is checked against h2load's.", ""]
    skipped = results.get("skipped", {})
    for sc in LOAD_SCENARIOS:
        if sc.key in skipped:
            L += [f"### {sc.title}", "", f"{skipped[sc.key]}.", ""]
        if sc.key not in results:
            continue
        s = results[sc.key]
        cmd = next(iter(s.values()))["runs"][0]["cmd"]
        L += [f"### {sc.title}", "", f"`{cmd}` (same for every target, its port)", ""]
        L += load_table(s, list(PROXIES)) + [""]
        pairs = paired_table(s)
        L += pairs + [""] if pairs else []
        stalls = [f"{label} round {i + 1}: max {fmt_ms(r.get('max_ms'))}"
                  for label, t in s.items() for i, r in enumerate(t["runs"])
                  if r.get("max_ms") and r["max_ms"] > 1000]
        if stalls:
            L += ["Requests that took over 1 s: " + "; ".join(stalls) + ".", ""]
    if "h2_idle" in skipped:
        L += ["### 14. Idle HTTP/2 connections: memory", "", f"{skipped['h2_idle']}.", ""]
    if "h2_idle" in results:
        mem = results["h2_idle"]
        L += ["### 14. Idle HTTP/2 connections: memory", "",
              f"Fresh process each, warmed with 100 h2 requests; then bench/idle_h2.py opens "
              f"{a.h2_idle:,} TLS connections, ALPN h2, sends the preface and SETTINGS, "
              "acknowledges the server's SETTINGS and waits for the ACK of its own (no "
              "request), and holds them. Rss and Pss summed from /proc/PID/smaps_rollup "
              "(nginx: master + worker), 1 s after the last one is set up; per connection = "
              "(with − before) ÷ connections.", "",
              f"| proxy | idle RSS | RSS with {a.h2_idle:,} idle h2 connections | per connection "
              "(Rss) | per connection (Pss) | vs best other (Rss) |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
        others = [m["per_conn_kib"] for k, m in mem.items() if k != "gatehouse"
                  and m["per_conn_kib"]]
        for kind, m in mem.items():
            vs = ratio(m["per_conn_kib"], min(others) if others else None) \
                if kind == "gatehouse" else ""
            fail = f" ({m['failed']} failed)" if m["failed"] else ""
            L.append(f"| {kind} | {m['base_kib'] / 1024:.1f} MiB | "
                     f"{m['loaded_kib'] / 1024:.1f} MiB{fail} | "
                     f"{fmt_num(m['per_conn_kib'], 2)} KiB | "
                     f"{fmt_num(m['per_conn_pss_kib'], 2)} KiB | {vs} |")
        L.append("")
    if results.get("h2_tls"):
        L += ["Negotiated by h2load: " + "; ".join(
            f"{k} {v}" for k, v in results["h2_tls"].items()) + ".", ""]
    if "h2_probe" in results:
        L += [f"- HTTP/2 probe of Gatehouse: {results['h2_probe'][1]}."]
    L += [f"- {note}" for note in results.get("h2_notes", [])] + [""]
    return L

