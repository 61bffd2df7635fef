"""Shared pieces of the Gatehouse benchmark (bench/run.py and bench/h2bench.py): processes
started with a CPU pin and stopped by PID, CPU and memory readings from /proc, the
interleaved-rounds driver with its paired ratios, and the report's number formatting.

Python 3 standard library only. Not a program: bench/run.py is the entry point.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = "/usr/bin/python3"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXY_CPU, LOAD_CPU = "0", "1"  # proxy under test on CPU 0; wrk, upstream, clients on CPU 1
PROXIES = ("gatehouse", "nginx", "haproxy")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------
# Processes: started with an optional CPU pin, stopped by PID (and their children too)
# --------------------------------------------------------------------------------------


def proc_children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


class Proc:
    """One started process. `pids()` is the process plus its direct children (nginx)."""

    running: list["Proc"] = []

    def __init__(self, name: str, argv: list[str], workdir: Path, cpus: str | None,
                 stdin=subprocess.DEVNULL, capture_stdout: bool = False):
        self.name = name
        self.argv = (["taskset", "-c", cpus] if cpus else []) + argv
        self.log_path = workdir / f"{name}.log"
        self.log_file = open(self.log_path, "ab")
        stdout = subprocess.PIPE if capture_stdout else self.log_file
        # taskset execs the command, so the PID is the program's own.
        self.popen = subprocess.Popen(self.argv, stdin=stdin, stdout=stdout,
                                      stderr=self.log_file, text=capture_stdout)
        self.pid = self.popen.pid
        self.seen_children: set[int] = set()
        Proc.running.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pids(self) -> list[int]:
        kids = proc_children(self.pid)
        self.seen_children.update(kids)
        return [self.pid] + kids

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        self.pids()  # remember the children before the parent goes
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        for kid in self.seen_children:  # e.g. an nginx worker orphaned by a killed master
            try:
                if Path(f"/proc/{kid}/cmdline").read_bytes().startswith(b"nginx"):
                    os.kill(kid, signal.SIGKILL)
            except OSError:
                pass
        self.log_file.close()
        if self in Proc.running:
            Proc.running.remove(self)


def stop_all() -> None:
    for proc in reversed(list(Proc.running)):
        proc.stop()


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime (all threads) of the given processes, in clock ticks."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total


def cpu_jiffies(cpu: str) -> tuple[int, int]:
    """(busy, total) clock ticks of one CPU so far, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
            return sum(v) - v[3] - v[4], sum(v)
    return 0, 0


def machine_busy_pct(seconds: float = 2.0) -> float:
    """How busy all CPUs are (anything: other people's builds and tests) over `seconds`."""
    def sample() -> tuple[int, int]:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(v) - v[3] - v[4], sum(v)
    (b0, t0), _ = sample(), time.sleep(seconds)
    b1, t1 = sample()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


def rss_kib(pids: list[int]) -> int:
    """Sum of Rss over the processes, from /proc/PID/smaps_rollup."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for programs that cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str = "/", method: str = "GET", body: bytes = b"",
             headers: dict[str, str] | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """One request on a fresh connection; returns (status, body)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_until(what: str, check, timeout: float = 10.0, proc: Proc | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and not proc.alive():
            raise BenchError(f"{what}: {proc.name} exited early:\n{proc.log_tail()}")
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.05)
    tail = f":\n{proc.log_tail()}" if proc else ""
    raise BenchError(f"timed out waiting for {what}{tail}")


# --------------------------------------------------------------------------------------
# Targets (a running proxy, or the upstream itself: "direct") and their CPU time
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    name: str
    port: int
    proc: Proc | None  # None for "direct": no proxy CPU to count
    tls: bool = False
    label: str = ""  # how reports name it; defaults to name

    def __post_init__(self):
        self.label = self.label or self.name

    def pids(self) -> list[int]:
        return self.proc.pids() if self.proc else []

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


class CpuMeter:
    """The proxy's CPU time (utime + stime of all its processes and threads) over one run,
    and the noise gauge: how busy the proxy's CPU was with anything but the proxy (other
    people's compilers, the kernel for other tasks); meaningful only when pinned."""

    def __init__(self, target: Target, pinned: bool = True):
        self.pids = target.pids()
        self.pinned = pinned
        self.ticks, self.cpu0, self.t0 = cpu_ticks(self.pids), cpu_jiffies(PROXY_CPU), time.monotonic()

    def stop(self, count: int) -> dict:
        """proxy_cpu_s, cpu_us (per request or message: `count` of them), others_pct, wall_s."""
        ticks = cpu_ticks(self.pids) - self.ticks
        busy, total = (b - a for a, b in zip(self.cpu0, cpu_jiffies(PROXY_CPU)))
        proxy_s = ticks / CLK_TCK if self.pids else None
        return {
            "wall_s": time.monotonic() - self.t0,
            "proxy_cpu_s": proxy_s,
            "cpu_us": proxy_s * 1e6 / count if proxy_s is not None and count else None,
            # direct: no proxy, CPU 0 idle apart from others; so no gauge either
            "others_pct": (max(0.0, 100.0 * (busy - ticks) / total)
                           if self.pinned and total > 0 and self.pids else None),
        }


# --------------------------------------------------------------------------------------
# Interleaved rounds: medians per target, paired ratios between targets
# --------------------------------------------------------------------------------------


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict]) -> dict:
    return {
        "rps": median(r["rps"] for r in runs),
        "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "p50_ms": median(r["p50_ms"] for r in runs),
        "p99_ms": median(r["p99_ms"] for r in runs),
        "cpu_us": median(r["cpu_us"] for r in runs),
        "others_pct": median(r.get("others_pct") for r in runs),
        "load_pct": median(r.get("load_pct") for r in runs),
        "errors": sum(r["errors"] + r["non2xx"] for r in runs),
        "runs": runs,
    }


def interleave(bench, targets: list[Target], key: str, rounds: int, run,
               unit: str) -> dict[str, dict]:
    """Rounds of A B C D …: every target once per round, back to back, so slow drifts hit
    all alike and round r of one target can be paired with round r of the others.
    `run(target, seconds, record)` does one measured run and returns its result dict;
    `bench` is run.py's Bench (its args: quick, duration)."""
    a = bench.args
    for t in targets if not a.quick else []:  # warm-up (pools, caches, page faults)
        run(t, 1, False)
    runs: dict[str, list[dict]] = {t.label: [] for t in targets}
    for r in range(rounds):
        for t in targets:
            res = run(t, a.duration, True)
            runs[t.label].append(res)
            cpu = f", proxy {res['cpu_us']:.2f} µs/{unit}" if res["cpu_us"] else ""
            if res["others_pct"] is not None:
                cpu += f", CPU 0 {res['others_pct']:.0f} % others"
            if res.get("load_pct") is not None:
                cpu += f", CPU 1 {res['load_pct']:.0f} % ws_load + ws_echo"
            log(f"  {key} round {r + 1}/{rounds} {t.label:<14} {res['rps']:>10,.0f} {unit}/s"
                f"  p50 {fmt_ms(res['p50_ms'])}  p99 {fmt_ms(res['p99_ms'])}{cpu}")
    return {label: summarize(rs) for label, rs in runs.items()}


# --------------------------------------------------------------------------------------
# Report helpers: numbers, paired ratios, tables
# --------------------------------------------------------------------------------------


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def fmt_num(v, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def fmt_pct(v) -> str:
    return "—" if v is None else f"{v:.0f} %"


def ratio(a, b) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}×"


OTHERS = ("nginx", "haproxy")


def round_value(summary: dict, label: str, i: int, metric: str):
    runs = summary.get(label, {}).get("runs", [])
    return runs[i].get(metric) if i < len(runs) else None


def paired(summary: dict, metric: str, versus: str, higher_is_better: bool,
           subject: str = "gatehouse") -> list[float]:
    """Per-round ratios subject_r ÷ versus_r (the runs of one round are back to back).
    versus "best" = the better of nginx and HAProxy in that same round."""
    ratios = []
    for i, run in enumerate(summary.get(subject, {}).get("runs", [])):
        refs = [round_value(summary, k, i, metric)
                for k in (OTHERS if versus == "best" else (versus,))]
        refs = [v for v in refs if v]
        if run.get(metric) is not None and refs:
            ratios.append(run[metric] / (max(refs) if higher_is_better else min(refs)))
    return ratios


def fmt_paired(ratios: list[float]) -> str:
    """Median of the paired ratios, with their min–max."""
    if not ratios:
        return "—"
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}×"
    return f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"


def load_table(summary: dict, labels: list[str], unit: str = "req") -> list[str]:
    ws = unit == "msg"  # plus how busy the load side kept CPU 1
    rows = [f"| target | {unit}/s (median) | {unit}/s min–max | p50 | p99 | proxy CPU µs/{unit} | "
            "CPU 0 busy with others | " + ("CPU 1 used by ws_load + ws_echo | " if ws else "")
            + "errors |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | "
            + ("---: | " if ws else "") + "---: |"]
    for label in labels:
        if label not in summary:
            continue
        s = summary[label]
        load = f"{fmt_pct(s.get('load_pct'))} | " if ws else ""
        rows.append(f"| {label} | {fmt_num(s['rps'])} | {fmt_num(s['rps_min'])}–"
                    f"{fmt_num(s['rps_max'])} | {fmt_ms(s['p50_ms'])} | {fmt_ms(s['p99_ms'])} | "
                    f"{fmt_num(s['cpu_us'], 2 if ws else 1)} | {fmt_pct(s['others_pct'])} | "
                    f"{load}{s['errors']} |")
    return rows


def paired_table(summary: dict, unit: str = "req") -> list[str]:
    """Gatehouse ÷ best other / nginx / HAProxy per metric, as medians of paired ratios."""
    if "gatehouse" not in summary:
        return []
    n = len(summary["gatehouse"]["runs"])
    rows = [f"Gatehouse ÷ the others, paired by round (round r of Gatehouse ÷ round r of the "
            f"other, run back to back): median of {n} per-round ratios (min–max).", "",
            "| metric | ÷ better of nginx/HAProxy | ÷ nginx | ÷ HAProxy |",
            "| --- | ---: | ---: | ---: |"]
    for metric, title, higher in (("rps", f"{unit}/s (> 1: Gatehouse faster)", True),
                                  ("p50_ms", "p50 latency (< 1: Gatehouse better)", False),
                                  ("p99_ms", "p99 latency", False),
                                  ("cpu_us", f"proxy CPU per {unit} (< 1: Gatehouse better)", False)):
        cells = [fmt_paired(paired(summary, metric, v, higher)) for v in ("best",) + OTHERS]
        if any(c != "—" for c in cells):
            rows.append(f"| {title} | " + " | ".join(cells) + " |")
    if "direct" in summary:
        rows += ["", f"Gatehouse ÷ direct, {unit}/s (share of the set-up's limit left with "
                 f"Gatehouse in the path): {fmt_paired(paired(summary, 'rps', 'direct', True))}."]
    return rows


def memory_table(mem: dict, count: int, what: str) -> list[str]:
    rows = [f"| proxy | idle RSS | RSS with {count:,} idle {what} | per {what[:-1]} | vs best other |",
            "| --- | ---: | ---: | ---: | ---: |"]
    others = [m["per_conn_kib"] for k, m in mem.items() if k != "gatehouse" and m["per_conn_kib"]]
    best = min(others) if others else None
    for kind, m in mem.items():
        vs = ratio(m["per_conn_kib"], best) if kind == "gatehouse" else ""
        fail = f" ({m['failed']} failed)" if m["failed"] else ""
        rows.append(f"| {kind} | {m['base_kib'] / 1024:.1f} MiB | {m['loaded_kib'] / 1024:.1f} MiB"
                    f"{fail} | {fmt_num(m['per_conn_kib'], 2)} KiB | {vs} |")
    return rows


def summary_load_row(s: dict, title: str, p99: bool = True) -> str:
    """The Summary table's row for one load scenario: medians, then paired ratios (median,
    min–max); "—" where a target (Gatehouse, when left out) did not run."""
    value = lambda k: fmt_num(s[k]["rps"]) if k in s else "—"  # noqa: E731
    return (f"| {title} | {value('gatehouse')} | {value('nginx')} | {value('haproxy')} | "
            f"{value('direct') if 'direct' in s else ''} | "
            + " | ".join(fmt_paired(paired(s, "rps", v, True)) for v in ("best",) + OTHERS)
            + f" | {fmt_paired(paired(s, 'p99_ms', 'best', False)) if p99 else ''} | "
            f"{fmt_paired(paired(s, 'cpu_us', 'best', False))} | "
            f"{fmt_paired(paired(s, 'rps', 'direct', True)) if 'direct' in s else ''} |")


def summary_memory_row(m: dict, title: str) -> str:
    """The Summary table's row for one memory scenario: KiB per connection and plain ratios."""
    kib = {k: v["per_conn_kib"] for k, v in m.items()}
    others = [kib[k] for k in OTHERS if kib.get(k)]
    gh = kib.get("gatehouse")
    return (f"| {title} | {fmt_num(gh, 2)} | {fmt_num(kib.get('nginx'), 2)} | "
            f"{fmt_num(kib.get('haproxy'), 2)} | | "
            f"{ratio(gh, min(others) if others else None)} | "
            f"{ratio(gh, kib.get('nginx'))} | "
            f"{ratio(gh, kib.get('haproxy'))} | | | |")
